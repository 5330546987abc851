#!/usr/bin/env python3
"""The structure drawing: pytest-spike's floors and the imports between them, with the standard library only.

    python benchmarks/imports.py            # src/pytest_spike: the floors, then any problem
    python benchmarks/imports.py --edges    # also every module's imports of the package

Reads every ``import`` and ``from ... import`` of ``pytest_spike`` with :mod:`ast`, wherever it
is written (module top, inside a function, under ``TYPE_CHECKING``: each is an arrow the code
relies on). Exits 1 when the imports form a cycle between modules, or when a module imports one
on a higher floor (DESIGN.md, Layout: lower floors never import higher ones). A module's floor
is that of the longest prefix of its name listed in :data:`FLOORS`.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

DEFAULT_SRC = Path(__file__).resolve().parent.parent / "src" / "pytest_spike"

#: Lowest first. A module may import its own floor and those below it, never one above.
FLOORS: tuple[tuple[str, ...], ...] = (
    # value types, files, subprocesses: everything stands on these
    ("pytest_spike.model", "pytest_spike.kinds", "pytest_spike._core"),
    # the package root (its version), marks and the parts that know nothing of pytest
    (
        "pytest_spike",
        "pytest_spike.marks",
        "pytest_spike.index",
        "pytest_spike.envs",
        "pytest_spike.readme",
        "pytest_spike.upstream",
        "pytest_spike.data",
        "pytest_spike.scoring",
        "pytest_spike.waivers",
        # a report's data: the results file's schema, the report view and its grids
        "pytest_spike.report.schema",
        "pytest_spike.report.view",
    ),
    # how a run is configured, and what it is given (the formats' registry: options come from it)
    (
        "pytest_spike.settings",
        "pytest_spike.services",
        "pytest_spike.hookspec",
        "pytest_spike.report.formats",
    ),
    # what a run does and how its result is shown
    ("pytest_spike.probes", "pytest_spike.report", "pytest_spike.fixtures"),
    # a pytest session: the spike's, the upgrade's
    ("pytest_spike.session", "pytest_spike.upgrade"),
    # many runs
    ("pytest_spike.matrix",),
    # entry points
    ("pytest_spike.plugin", "pytest_spike.cli", "pytest_spike.__main__"),
)


def modules(src: Path) -> dict[str, Path]:
    """Every module of the package under ``src`` by its dotted name (a package by its own)."""
    found = {}
    for path in sorted(src.rglob("*.py")):
        parts = list(path.relative_to(src.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports(path: Path, known: Mapping[str, Path]) -> set[str]:
    """The package's modules ``path`` imports (``from a import b`` is ``a.b`` when that is a module)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] != "pytest_spike":
                continue
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                out.add(full if full in known else node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == "pytest_spike")
    return out


def graph(src: Path) -> dict[str, set[str]]:
    known = modules(src)
    return {name: imports(path, known) - {name} for name, path in known.items()}


def floor(module: str) -> int:
    """The floor of the longest listed prefix of ``module``."""
    best, level = -1, -1
    for i, names in enumerate(FLOORS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and len(name) > best:
                best, level = len(name), i
    if level < 0:
        raise SystemExit(f"imports.py: {module} is on no floor: add it to FLOORS")
    return level


def cycles(edges: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(edges)))
    for node in sorted(edges):
        if node not in index:
            visit(node)
    return groups


def upward(edges: Mapping[str, set[str]]) -> Iterator[str]:
    """``a (floor 2) -> b (floor 3)`` for each import of a higher floor."""
    for module in sorted(edges):
        for target in sorted(edges[module]):
            if floor(target) > floor(module):
                yield f"{module} (floor {floor(module)}) -> {target} (floor {floor(target)})"


def problems(src: Path = DEFAULT_SRC) -> list[str]:
    """Every cycle and upward import, one line each (empty: the structure holds)."""
    edges = graph(src)
    found = [f"cycle: {' <-> '.join(group)}" for group in cycles(edges)]
    return found + [f"upward: {line}" for line in upward(edges)]


def drawing(src: Path = DEFAULT_SRC) -> list[str]:
    """The floors, top first, with each floor's modules and how many imports leave it downwards."""
    edges = graph(src)
    lines = []
    for level in reversed(range(len(FLOORS))):
        mine = sorted(m for m in edges if floor(m) == level)
        down = sum(1 for m in mine for t in edges[m] if floor(t) < level)
        lines.append(f"floor {level}: {len(mine)} modules, {down} imports down")
        lines.append("    " + ", ".join(m.removeprefix("pytest_spike.") for m in mine))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("src", nargs="?", type=Path, default=DEFAULT_SRC, help="the package folder")
    parser.add_argument("--edges", action="store_true", help="also print every module's imports")
    args = parser.parse_args(argv)
    for line in drawing(args.src):
        print(line)
    if args.edges:
        for module, targets in sorted(graph(args.src).items()):
            print(f"{module} -> {', '.join(sorted(targets)) or '-'}")
    found = problems(args.src)
    for line in found:
        print(line)
    print(f"{len(found)} problem(s)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
