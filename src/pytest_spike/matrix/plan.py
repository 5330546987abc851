"""The matrix plan: the marks' candidates, versions and Pythons as cells.

Planning collects the spike in the host environment (``pytest --spike --collect-only
--spike-plan``: candidates are imported inside tests, so none needs to be installed),
resolves each candidate's ``versions`` against the package index, and crosses them with
its Pythons. A cell whose release excludes its Python (requires-python) or whose
interpreter is absent is kept in the plan as ``skipped`` with the reason: it is shown in
every output and never counted as a pass.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.version import Version

import pytest_spike
from pytest_spike._core import runner
from pytest_spike._core.files import json_object, load_json_document, write_atomic
from pytest_spike.envs.inspection import host_python
from pytest_spike.envs.manager import INDEX_ENV_VARS, pip_index_settings
from pytest_spike.index.client import IndexClient
from pytest_spike.index.versions import python_allows, resolve
from pytest_spike.matrix.interpreters import (
    MIN_PYTHON,
    Finder,
    Interpreter,
    parse_python,
    sort_pythons,
)
from pytest_spike.model import SpikeError, default_cache_root
from pytest_spike.services import index_client

PYTEST_PLAN_SCHEMA = "pytest-spike-plan/1"
MATRIX_SCHEMA = "pytest-spike-matrix/1"
#: Collecting a spike runs conftest files and imports test modules: give it time.
COLLECT_TIMEOUT = 300.0
#: A cached plan is as fresh as the index answers it rests on (the index client's max_age).
PLAN_MAX_AGE = 3600.0
#: Where cached plans live in the spike cache.
PLANS_CACHE = "plans"
_CACHE_VERSION = "1"
#: Files whose change can change what collection finds, besides the test modules.
_CONFIG_FILES = ("pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg", "conftest.py")
#: Folders never searched for test files: environments, caches, VCS data.
_SKIP_DIRS = {"node_modules", "__pycache__", "site-packages", "build", "dist"}


@dataclass(frozen=True)
class Cell:
    """One (python, candidate, version) of the matrix.

    ``status`` is ``run`` or ``skipped``; ``interpreter`` is the path found for ``python``
    on this machine (None where it is absent or not looked up), ``reason`` says why a
    cell is skipped.
    """

    python: str
    candidate: str
    requirement: str
    version: str
    status: str = "run"
    reason: str = ""
    interpreter: str | None = None

    @property
    def id(self) -> str:
        """Stable across runs and machines: ``py3.11-tomli-2.2.1``."""
        return cell_id(self.python, self.candidate, self.version)

    @property
    def pin(self) -> str:
        """The requirement pinned to this cell's version, extras kept: ``requests[socks]==2.31.0``."""
        req = Requirement(self.requirement)
        extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
        return f"{req.name}{extras}=={self.version}"

    def to_dict(self) -> dict[str, Any]:
        return dict(asdict(self), id=self.id, pin=self.pin)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Cell:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


def cell_id(python: str, candidate: str, version: str) -> str:
    return f"py{python}-{candidate}-{version}"


@dataclass
class MatrixPlan:
    """All cells of a spike, with the pytest paths that run them."""

    rootdir: str
    paths: list[str]
    cells: list[Cell] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def runnable(self) -> list[Cell]:
        return [c for c in self.cells if c.status == "run"]

    def skipped(self) -> list[Cell]:
        return [c for c in self.cells if c.status != "run"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": MATRIX_SCHEMA,
            "rootdir": self.rootdir,
            "paths": list(self.paths),
            "cells": [c.to_dict() for c in self.cells],
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MatrixPlan:
        if not isinstance(data, Mapping) or data.get("schema") != MATRIX_SCHEMA:
            found = data.get("schema") if isinstance(data, Mapping) else None
            raise SpikeError(
                f"matrix plan schema {found!r} is not {MATRIX_SCHEMA!r}: "
                "write it again with 'pytest-spike matrix --json'"
            )
        return cls(
            rootdir=str(data.get("rootdir", "")),
            paths=[str(p) for p in data.get("paths") or ()],
            cells=[Cell.from_dict(c) for c in data.get("cells") or ()],
            notes=[str(n) for n in data.get("notes") or ()],
        )


def load_matrix_plan(path: Path) -> MatrixPlan:
    """Read a plan written by ``pytest-spike matrix --json``; errors are one line."""
    return load_json_document(path, "matrix plan", MatrixPlan.from_dict)


def plugin_pythonpath() -> str:
    """The folder holding the running ``pytest_spike`` package, for child processes.

    Planning runs pytest in a child with this on PYTHONPATH, so a development checkout
    (``src/`` layout, not installed) plans the same way as an installed release.
    """
    return str(Path(pytest_spike.__file__).resolve().parent.parent)


def collect(
    paths: Sequence[str],
    *,
    cwd: str | os.PathLike[str] | None = None,
    candidates: Sequence[str] = (),
    python: str | None = None,
    timeout: float = COLLECT_TIMEOUT,
) -> dict[str, Any]:
    """Run ``pytest --spike --collect-only --spike-plan`` and return the pytest plan."""
    with tempfile.TemporaryDirectory(prefix="spike-plan-") as tmp:
        out = Path(tmp) / "plan.json"
        argv = [python or sys.executable, "-m", "pytest", "--spike", "--collect-only", "-q"]
        argv += ["-p", "no:cacheprovider", "--spike-plan", str(out)]
        if python is None and not _plugin_installed():
            argv += ["-p", "pytest_spike.plugin"]  # a checkout on PYTHONPATH has no entry point
        for req in candidates:
            argv += ["--spike-candidate", req]
        pythonpath = os.pathsep.join(p for p in (plugin_pythonpath(), os.environ.get("PYTHONPATH", "")) if p)
        done = runner.run([*argv, *paths], timeout=timeout, cwd=cwd, extra_env={"PYTHONPATH": pythonpath})
        # 0, or 5 (no tests: a zero-file spike); anything else (a collection error: a syntax
        # error, a bad versions=) means the plan lacks what the broken files declare
        if done.returncode not in (0, 5) or not out.is_file():
            raise SpikeError(
                f"collecting the spike in {', '.join(paths) or '.'} failed ({done.describe()}): "
                f"{_collection_errors(done.stdout, done.stderr) or done.last_error_line() or done.describe()}; "
                "run 'pytest --spike --collect-only' there to see why"
            )
        data = load_json_document(out, "plan from pytest --spike-plan", json_object)
    if data.get("schema") != PYTEST_PLAN_SCHEMA:
        raise SpikeError(
            f"pytest wrote a plan of schema {data.get('schema')!r}, not {PYTEST_PLAN_SCHEMA!r}: "
            "the pytest-spike in that environment is of another version"
        )
    return data


def _collection_errors(stdout: str, stderr: str) -> str:
    """What pytest said went wrong in collection, per file (``ERROR collecting`` sections: their
    ``E   SyntaxError: ...`` line, else their last line), or a usage error's ``ERROR: ...`` line;
    "" when it said nothing of the kind."""
    said = (stderr + "\n" + stdout).splitlines()
    reasons: list[str] = []
    for i, line in enumerate(said):
        if "ERROR collecting" not in line:
            continue
        block = []
        for text in said[i + 1 :]:
            if text.startswith(("___", "===")):
                break
            if text.strip():
                block.append(text)
        errors = [t[1:].strip() for t in block if t.startswith("E ") and "error" in t.lower()]
        where = line.strip("_ ").removeprefix("ERROR collecting ")
        reason = (errors or block or ["?"])[-1].strip()
        reasons.append(reason if reason.startswith(where) else f"{where}: {reason}")
    usage = [line.strip() for line in said if line.startswith("ERROR: ")]
    return "; ".join(reasons) or (usage[:1] or [""])[0]


def _plugin_installed() -> bool:
    from importlib.metadata import entry_points

    found = entry_points()
    # Python 3.9's entry_points() is a dict of groups; 3.10+ has select().
    group = found.select(group="pytest11") if hasattr(found, "select") else found.get("pytest11", ())
    return any(ep.value.startswith("pytest_spike") for ep in group)


def _spec_of(candidate: Mapping[str, Any], defaults: Mapping[str, Any]) -> Any:
    if candidate.get("versions") is not None:
        return candidate["versions"]
    if defaults.get("versions") is not None:
        return defaults["versions"]
    return str(Requirement(candidate["requirement"]).specifier) or None


def build_plan(
    pytest_plan: Mapping[str, Any],
    client: IndexClient,
    *,
    paths: Sequence[str] = (),
    finder: Finder | None = None,
    pythons: Sequence[str] = (),
    versions: str | None = None,
) -> MatrixPlan:
    """Cross each candidate's resolved versions with its Pythons.

    ``pythons`` overrides every candidate's Python list (as ``--python`` on the command
    line does), ``versions`` overrides their ``versions=`` specs. With a ``finder``, each
    Python's interpreter is looked up and a cell whose interpreter is absent is skipped;
    without one (GitHub Actions installs its own Pythons) only unsupported Pythons are.
    """
    defaults = pytest_plan.get("defaults") or {}
    plan = MatrixPlan(rootdir=str(pytest_plan.get("rootdir", "")), paths=list(paths))
    lookup = finder or Finder(search_path="", pyenv=False, uv=False)
    candidates = list(pytest_plan.get("candidates") or ())
    lookup.find_all(p for cand in candidates for p in _wanted_pythons(pythons, cand, defaults))
    for cand in candidates:
        wanted = _wanted_pythons(pythons, cand, defaults)
        spec = versions or _spec_of(cand, defaults)
        chosen = _chosen_versions(client, cand, spec, wanted)
        if not chosen:
            plan.notes.append(
                f"{cand['name']}: no release matches {spec or 'the newest release'} "
                f"on Python {', '.join(wanted)}"
            )
        releases = client.releases(cand["name"])
        for python in wanted:
            interp = lookup.find(python)
            for version in sorted(chosen):
                requires = releases[version].requires_python if version in releases else None
                cell = Cell(python, cand["name"], cand["requirement"], str(version))
                plan.cells.append(_placed(cell, interp, requires, local=finder is not None))
    return plan


def _wanted_pythons(
    pythons: Sequence[str], cand: Mapping[str, Any], defaults: Mapping[str, Any]
) -> list[str]:
    """The command line's Pythons, else the candidate's, else the defaults', else this one."""
    return sort_pythons(
        list(pythons)
        or list(cand.get("python") or ())
        or list(defaults.get("python") or ())
        or [host_python()]
    )


def _chosen_versions(
    client: IndexClient, cand: Mapping[str, Any], spec: Any, wanted: Sequence[str]
) -> set[Version]:
    """The versions ``spec`` picks on any supported Python of ``wanted`` (or on none named,
    when none is supported), within the candidate's requirement."""
    req = Requirement(cand["requirement"])
    asked: list[str | None] = [p for p in wanted if _supported(p)] or [None]
    chosen: set[Version] = set()
    for python in asked:
        found = resolve(client, cand["name"], spec, python=python).versions
        chosen.update(v for v in found if not req.specifier or req.specifier.contains(v, True))
    return chosen


def _placed(cell: Cell, interp: Interpreter, requires: str | None, *, local: bool) -> Cell:
    """``cell`` skipped (no interpreter, or its release excludes the Python), or with its
    interpreter when planning for this machine."""
    if not interp.found and (local or not _supported(cell.python)):
        return _skip(cell, interp.reason)
    if not python_allows(requires, cell.python):
        return _skip(cell, f"{cell.pin} requires-python {requires} excludes {cell.python}")
    if local:
        return Cell(**dict(asdict(cell), interpreter=interp.path))
    return cell


def _skip(cell: Cell, reason: str) -> Cell:
    return Cell(**dict(asdict(cell), status="skipped", reason=reason))


def _supported(python: str) -> bool:
    try:
        return parse_python(python) >= MIN_PYTHON
    except ValueError:
        return False


def plan_matrix(
    paths: Sequence[str] = (),
    *,
    cwd: str | os.PathLike[str] | None = None,
    candidates: Sequence[str] = (),
    pythons: Sequence[str] = (),
    versions: str | None = None,
    local: bool = True,
    index_url: str | None = None,
    offline: bool = False,
    cache_dir: Path | None = None,
) -> MatrixPlan:
    """Collect the spike at ``paths`` and build its plan.

    ``local=True`` looks up each Python's interpreter on this machine (PATH, pyenv, uv)
    and skips cells whose interpreter is absent; ``local=False`` plans for a CI service
    that brings its own Pythons.
    """
    finder = Finder() if local else None
    # The Pythons a command line names need no collection: looked up while it runs (a pyenv
    # shim answers in 0.1-0.2 s; a cold collection takes ~0.9 s, and a cold matrix's layers
    # waited for both, one after the other).
    lookup = None
    if finder is not None and pythons:
        lookup = threading.Thread(
            target=finder.find_all, args=(list(pythons),), name="spike-find-pythons", daemon=True
        )
        lookup.start()
    try:
        pytest_plan = collect(paths, cwd=cwd, candidates=candidates)
    finally:
        if lookup is not None:
            lookup.join()
    client = index_client(index_url, cache_dir=cache_dir, offline=offline)
    return build_plan(
        pytest_plan, client, paths=list(paths), finder=finder, pythons=pythons, versions=versions
    )


def _stamps(paths: Sequence[str], cwd: Path) -> list[tuple[str, int, int]]:
    """(file, mtime_ns, size) of every Python and config file the paths can collect.

    Hidden folders (``.venv``, ``.nox``, ``.spike``, ``.git``) and environments are not
    walked. mtimes and sizes, not contents: a stat is cheap, and an editor saving a file
    changes its mtime.
    """
    found: list[tuple[str, int, int]] = []
    cache = default_cache_root().resolve()

    def walked(folder: str, name: str) -> bool:
        if name.startswith(".") or name in _SKIP_DIRS:
            return False
        path = Path(folder) / name
        # environments and the spike cache (layers of pytest) change with every run
        return not (path / "pyvenv.cfg").exists() and path.resolve() != cache

    def add(path: Path) -> None:
        try:
            st = path.stat()
        except OSError:
            return
        found.append((str(path), st.st_mtime_ns, st.st_size))

    for name in _CONFIG_FILES:
        add(cwd / name)
    for item in paths or ["."]:
        root = cwd / item.split("::")[0]
        if root.is_file():
            add(root)
            continue
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if walked(folder, d))
            for name in sorted(files):
                if name.endswith((".py", ".ini", ".cfg", ".toml")):
                    add(Path(folder) / name)
    return found


def plan_key(
    paths: Sequence[str],
    cwd: Path,
    **options: Any,
) -> str:
    """The cache key of a plan: its options, the test files' stamps, index settings, our version."""
    index_env = {name: os.environ[name] for name in INDEX_ENV_VARS if name in os.environ}
    ident = {
        "v": _CACHE_VERSION,
        "plugin": pytest_spike.__version__,
        "python": sys.executable,
        "cwd": str(cwd),
        "paths": list(paths),
        "options": {k: list(v) if isinstance(v, (list, tuple)) else v for k, v in sorted(options.items())},
        "files": _stamps(paths, cwd),
        "index": {"settings": pip_index_settings(), "env": index_env},
        "path_env": os.environ.get("PATH", ""),
    }
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:24]


def cached_plan(
    paths: Sequence[str] = (),
    *,
    cwd: str | os.PathLike[str] | None = None,
    candidates: Sequence[str] = (),
    pythons: Sequence[str] = (),
    versions: str | None = None,
    local: bool = True,
    index_url: str | None = None,
    cache_dir: Path | None = None,
    max_age: float = PLAN_MAX_AGE,
    refresh: bool = False,
) -> tuple[MatrixPlan, bool]:
    """:func:`plan_matrix`, reusing a plan made with the same inputs; (plan, reused).

    The key holds the options, every test and config file's mtime and size, pip's index
    settings, PATH (interpreter discovery) and pytest-spike's version; a plan older than
    ``max_age`` (the index answers' freshness) or naming an interpreter that is gone is
    planned again. ``refresh`` plans again regardless (and stores the new plan).
    """
    where = Path(cwd or os.getcwd()).resolve()
    root = (cache_dir or default_cache_root()) / PLANS_CACHE
    key = plan_key(
        paths, where, candidates=candidates, pythons=pythons, versions=versions, local=local,
        index_url=index_url,
    )  # fmt: skip
    entry = root / f"{key}.json"
    if not refresh:
        plan = _load_cached(entry, max_age)
        if plan is not None:
            return plan, True
    plan = plan_matrix(
        paths, cwd=cwd, candidates=candidates, pythons=pythons, versions=versions, local=local,
        index_url=index_url,
    )  # fmt: skip
    try:
        write_atomic(entry, json.dumps({"created": time.time(), "plan": plan.to_dict()}) + "\n")
    except OSError:
        pass  # a read-only cache costs the next run a planning, nothing else
    return plan, False


def _load_cached(entry: Path, max_age: float) -> MatrixPlan | None:
    try:
        data = json.loads(entry.read_text("utf-8"))
        created = float(data["created"])
        plan = MatrixPlan.from_dict(data["plan"])
    except (OSError, ValueError, KeyError, TypeError, SpikeError):
        return None
    if not 0 <= time.time() - created <= max_age:
        return None
    if any(c.interpreter and not Path(c.interpreter).exists() for c in plan.runnable()):
        return None
    return plan
