#!/usr/bin/env python3
"""Code size and complexity of pytest-spike's source, with the standard library only.

    python benchmarks/code_stats.py                  # src/pytest_spike
    python benchmarks/code_stats.py --over 20 --longest 10 path/to/src

Prints the number of modules per folder, the functions whose cyclomatic complexity is over
``--over`` and the ``--longest`` longest functions. Complexity is counted the way radon's
``cc`` counts it (so the numbers compare with ``radon cc -s``): 1, plus 1 per ``if``, ``elif``,
conditional expression, loop (and its ``else``), ``except`` (and ``try``'s ``else``), ``case``
other than ``_``, comprehension ``for`` and ``if``, ``assert`` (not what it holds), and each
extra operand of ``and``/``or``. Nested functions count on their own, not in the function around them.
Functions and methods are listed; closures are not. Length is the lines from ``def`` to the
last line of the body.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

DEFAULT_SRC = Path(__file__).resolve().parent.parent / "src" / "pytest_spike"


@dataclass(frozen=True)
class Function:
    path: str
    name: str  # Class.method or function
    line: int
    lines: int
    complexity: int


def complexity_of(statement: ast.stmt) -> int:
    """Decision points of one statement of a function's body, and of what it holds."""
    return complexity(ast.Module(body=[statement], type_ignores=[]))


def complexity(node: ast.AST) -> int:
    """Decision points in ``node``'s children (not in functions or classes defined inside it)."""
    points = 0
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        if isinstance(child, ast.Assert):
            points += 1  # radon doesn't look inside an assert
            continue
        if isinstance(child, ast.Try) or type(child).__name__ == "TryStar":
            points += len(child.handlers) + bool(child.orelse)  # type: ignore[attr-defined]
        elif isinstance(child, ast.BoolOp):
            points += len(child.values) - 1
        elif isinstance(child, (ast.If, ast.IfExp)):
            points += 1
        elif isinstance(child, (ast.For, ast.AsyncFor, ast.While)):
            points += 1 + bool(child.orelse)
        elif isinstance(child, ast.comprehension):
            points += 1 + len(child.ifs)
        elif sys.version_info >= (3, 10) and isinstance(child, ast.Match):
            wildcard = any(getattr(c.pattern, "pattern", False) is None for c in child.cases)
            points += max(0, len(child.cases) - wildcard)
        points += complexity(child)
    return points


def functions(tree: ast.AST, path: str, prefix: str = "") -> Iterator[Function]:
    """Module-level functions and methods of (nested) classes."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.ClassDef):
            yield from functions(node, path, f"{prefix}{node.name}.")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            end = node.end_lineno or node.lineno
            yield Function(
                path,
                prefix + node.name,
                node.lineno,
                end - node.lineno + 1,
                1 + sum(map(complexity_of, node.body)),
            )


def collect(src: Path) -> tuple[list[Function], Counter[str]]:
    found: list[Function] = []
    modules: Counter[str] = Counter()
    for file in sorted(src.rglob("*.py")):
        relative = file.relative_to(src)
        modules[str(relative.parent) if relative.parent != Path(".") else "(top)"] += 1
        tree = ast.parse(file.read_text(encoding="utf-8"), str(file))
        found.extend(functions(tree, str(relative)))
    return found, modules


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", nargs="?", type=Path, default=DEFAULT_SRC, help="package folder")
    parser.add_argument("--over", type=int, default=20, help="complexity threshold (default 20)")
    parser.add_argument("--longest", type=int, default=10, help="how many longest functions (default 10)")
    args = parser.parse_args(argv)
    found, modules = collect(args.src)
    print(f"{sum(modules.values())} modules, {len(found)} functions in {args.src}")
    print("modules per folder: " + ", ".join(f"{k} {v}" for k, v in sorted(modules.items())))
    over = sorted((f for f in found if f.complexity > args.over), key=lambda f: -f.complexity)
    print(f"\n{len(over)} functions with cyclomatic complexity over {args.over}:")
    for f in over:
        print(f"  {f.complexity:4d}  {f.path}:{f.line} {f.name}")
    print(f"\n{args.longest} longest functions (lines):")
    for f in sorted(found, key=lambda f: (-f.lines, f.path, f.line))[: args.longest]:
        print(f"  {f.lines:4d}  {f.path}:{f.line} {f.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
