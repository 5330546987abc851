"""Whose fault a failing upstream test is: the candidate's, or the harness's.

A sampled test that fails because of something our harness did not bring (a file of the
sdist we did not copy, a config section a plugin reads, a package or pytest plugin that was
not installed, a test written to run as a script) says nothing about the installed package.
Such a failure is a *harness gap*: shown, never scored. Everything else counts.

Only the report's text is read; nothing here runs code.
"""

from __future__ import annotations

import ast
import re
import warnings
from collections.abc import Sequence
from pathlib import Path

_NO_MODULE = re.compile(r"No module named '([^']+)'")
_ASYNC = re.compile(
    r"async def functions are not natively supported|requested an async fixture .*with no plugin"
)
_FIXTURE = re.compile(r"fixture '([^']+)' not found")
_CONFIG = re.compile(r"(?:configparser\.)?(NoSectionError|NoOptionError)\b[^\n]*|No section: '[^']+'")
MISSING_FILE = re.compile(
    r"(?:No such file or directory|FileNotFoundError|can't open file)[^'\"\n]*['\"]([^'\"\n]+)['\"]"
)
_PYTEST_INTERNALS = re.compile(
    r"module '_pytest[\w.]*' has no attribute '\w+'|cannot import name '\w+' from '_pytest[\w.]*'"
)
_SCRIPT_EXIT = re.compile(r"SystemExit\b")
#: What a test says when the credentials or the service it needs are not there: pytest-spike
#: scrubs credentials from the environment, and an integration test's service is the reader's.
_SERVICE = re.compile(
    r"NoCredentialsError|Unable to locate credentials|DefaultCredentialsError|credentials were not found"
    r"|ConnectionRefusedError|Connection refused|Name or service not known|Temporary failure in name resolution"
    r"|Network is unreachable"
)
_SCRIPT_HINT = re.compile(r"unittest[/\\.]main|argparse|usage: ")
#: Assertions on log records that the project's own test runner sets up (a log capture
#: fixture that fails on anything it did not expect).
_LOG_RECORDS = re.compile(r"Unexpected log(?: record)?s? (?:found|emitted|captured)[^\n]{0,120}")
#: A test that reads the project's git checkout, which an sdist does not ship.
_GIT = re.compile(r"not a git repository|(?:^|[/\\'\"])\.git(?:[/\\'\"]|$)", re.MULTILINE)
_GIT_ERROR = re.compile(
    r"not a git repository|(?:NotGitRepository|InvalidGitRepositoryError)[^\n]*"
    r"|(?:FileNotFoundError|No such file or directory)[^\n]*[/\\]\.git(?:[/\\][^\n]*|\b)",
    re.IGNORECASE,
)
_UNDEFINED = re.compile(r"NameError: name '(\w+)' is not defined")
_TB_FILE = re.compile(r"([^\s:'\"]+\.py):\d+")
#: pytest's JUnit message for an error in a fixture's teardown.
_TEARDOWN = re.compile(r'^failed on teardown with "([^"\n]*)"?$')
#: What a bare assertion looks like: no message on its line, so it says nothing of the candidate.
_BARE = re.compile(r"^(?:AssertionError:?|assert \w+)$")
#: A test that needs a GPU (CUDA) or its driver: hardware this machine may not have.
_GPU = re.compile(
    r"CudaSupportError[^\n]*|no CUDA-capable device[^\n]*|CUDA driver (?:version )?(?:is )?(?:insufficient|not found)"
    r"|Found no NVIDIA driver[^\n]*|CUDA_ERROR_NO_DEVICE|libcuda\.so[^\n]*"
)


def harness_gap(text: str, *, run_dir: Path, src_root: Path | None, packages: Sequence[str]) -> str:
    """Why ``text`` (a failure's report) shows a gap in the harness, or ``""`` when it
    does not, so the failure counts against the candidate."""
    if text.startswith("did not run"):
        return f"the test {text}"
    if _ASYNC.search(text):
        return "an async test, and no async plugin ran it (anyio/pytest-asyncio not loaded)"
    for module in _NO_MODULE.findall(text):
        if module.split(".")[0] not in packages:
            return f"No module named '{module}' (a package or folder the harness did not bring)"
        if module in packages:
            # The target imports the candidate (checked before the run): the test started
            # another interpreter (psutil's scripts run under the real path of the venv's
            # python). A missing submodule (``pkg._ext``) still counts.
            return f"No module named '{module}' in a child interpreter the test started, not the target"
    match = _CONFIG.search(text)
    if match:
        return f"upstream configuration the harness lacks ({match.group(0).strip()})"
    match = _PYTEST_INTERNALS.search(text)
    if match:
        return f"the tests use pytest internals this pytest lacks ({match.group(0)})"
    match = _FIXTURE.search(text)
    if match:
        return f"fixture '{match.group(1)}' not found (a conftest or plugin the harness lacks)"
    copied = copied_package(text, run_dir)
    if copied:
        return copied
    for name in MISSING_FILE.findall(text):
        if _GIT.search(name):
            return f"the test reads the project's git checkout, which an sdist does not ship ({name})"
        if _ours(name, run_dir, src_root):
            return f"a file the harness did not bring: {name}"
    match = _LOG_RECORDS.search(text)
    if match:
        return (
            "the test asserts on log records that the project's own test runner sets up "
            f"({match.group(0).strip()[:120]})"
        )
    match = _GIT_ERROR.search(text)
    if match:
        return f"the test reads the project's git checkout, which an sdist does not ship ({match.group(0)[:120]})"
    match = _UNDEFINED.search(text)
    guarded = _guarded_import(match.group(1), text, run_dir, packages) if match else ""
    if match and guarded:
        return (
            f"name {match.group(1)!r} is not defined: {guarded} imports it behind an optional-import "
            "guard (an optional package the harness did not bring)"
        )
    match = _GPU.search(text)
    if match:
        return f"needs a GPU (CUDA) this machine does not have ({match.group(0).strip()[:120]})"
    match = _SERVICE.search(text)
    if match:
        return f"credentials or a service the test needs are not here ({match.group(0)})"
    if _SCRIPT_EXIT.search(text) and _SCRIPT_HINT.search(text):
        return "the test calls SystemExit (written to run as a script, not under pytest)"
    return ""


def _ours(name: str, run_dir: Path, src_root: Path | None) -> bool:
    """True for a relative path or one inside the copied tests or the unpacked sdist; a
    missing file in site-packages is the candidate's (data left out of its wheel)."""
    path = Path(name)
    if not path.is_absolute():
        return True
    roots = [run_dir.resolve(), run_dir] + ([src_root.resolve(), src_root] if src_root else [])
    return any(path == root or root in path.parents for root in roots)


def _guarded_import(name: str, text: str, run_dir: Path, packages: Sequence[str]) -> str:
    """Whether a file in the traceback (a test, or the package it calls) binds ``name`` by a
    guarded import: inside a ``try`` whose handler catches ImportError (``try: import
    matplotlib.pyplot as plt``), a ``with try_import():`` block, or an ``if`` (``if
    _imports.is_successful(): from ... import plt``). The guard left it undefined here.
    Returns the file's name ("" when none does, or when the module imported is the
    candidate's own: its failing import is the candidate's)."""
    for found in dict.fromkeys(_TB_FILE.findall(text)):
        path = Path(found) if Path(found).is_absolute() else run_dir / found
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"))
        except (OSError, SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Try, ast.With, ast.If)):
                continue
            guarded = (
                (isinstance(node, ast.Try) and _catches_import_error(node))
                or (isinstance(node, ast.With) and _import_guard(node))
                or (isinstance(node, ast.If) and "TYPE_CHECKING" not in ast.dump(node.test))
            )
            modules = _imports(node.body, name) if guarded else []
            if modules and not any(_missing_own(m, path, packages) for m in modules):
                return path.name
    return ""


def _missing_own(module: str, near: Path, packages: Sequence[str]) -> bool:
    """Whether ``module`` is the candidate's own and not installed beside ``near`` (a file of
    the package): the guard then hid the candidate's own broken import. An own module that
    is there (optuna's ``_matplotlib_imports``, itself a guard around matplotlib) is not."""
    top = module.split(".")[0]
    if module == "." or (top in packages and top not in near.parts):
        return True  # relative, or named from a test file: cannot tell, so the candidate's
    if top not in packages:
        return False
    index = len(near.parts) - 1 - near.parts[::-1].index(top)
    base = Path(*near.parts[:index], *module.split("."))
    return not (base.with_suffix(".py").is_file() or (base / "__init__.py").is_file())


def _import_guard(node: ast.With) -> bool:
    """``with try_import() as _imports:``, ``with suppress(ImportError):``."""
    return any("import" in ast.dump(item.context_expr).lower() for item in node.items)


def _catches_import_error(node: ast.Try) -> bool:
    for handler in node.handlers:
        kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        for kind in kinds:
            if kind is None or (
                isinstance(kind, ast.Name) and kind.id in ("ImportError", "ModuleNotFoundError", "Exception")
            ):
                return True
    return False


def _imports(body: Sequence[ast.stmt], name: str) -> list[str]:
    """The modules that the imports in ``body`` binding ``name`` import from."""
    found = []
    for stmt in body:
        for node in ast.walk(stmt):
            if isinstance(node, ast.Import):
                found += [a.name for a in node.names if (a.asname or a.name.split(".")[0]) == name]
            elif isinstance(node, ast.ImportFrom) and any((a.asname or a.name) == name for a in node.names):
                found.append("." if node.level else node.module or "")
    return found


def shared_teardown(messages: Sequence[str]) -> str:
    """Why errors are the harness's when every sampled test (two or more) failed in the same
    teardown with the same bare assertion: a fixture of the project's conftest checking its
    own state, not the installed package ("" otherwise)."""
    if len(messages) < 2 or len(set(messages)) != 1:
        return ""
    match = _TEARDOWN.match(messages[0].strip())
    if not match or not _BARE.match(match.group(1).strip()):
        return ""
    return (
        "every sampled test failed in the same teardown with the same bare assertion "
        f"({match.group(1).strip()}): a fixture of the project's test harness, not the package"
    )


_IMPORTED_FROM = re.compile(r"cannot import name '[^']+' from '([\w.]+)' \(([^)\n]+)\)")


def copied_package(text: str, run_dir: Path) -> str:
    """Why an import failed in the harness's copy of the package rather than the installed one
    (matplotlib's in-package tests: ``cannot import name '_c_internal_utils' from 'matplotlib'
    (.../run/lib/matplotlib/__init__.py)``: the copy has no compiled modules), or ""."""
    for module, where in _IMPORTED_FROM.findall(text):
        path = Path(where.strip())
        if path.is_absolute() and _ours(str(path), run_dir, None):
            return (
                f"the tests imported the sdist's copy of {module} ({where.strip()}), not the installed "
                "package: the copy lacks its compiled modules"
            )
    return ""
