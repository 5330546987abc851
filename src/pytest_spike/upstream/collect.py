"""Collecting upstream tests, with the fallbacks real sdists need.

Importlib import mode first; then prepend mode when a local test helper would not import;
files of the sdist a conftest reads by path; folders whose conftest fails to import left
out; the root conftest left out (``--noconftest``, low confidence). When nothing collects,
the :class:`~pytest_spike.upstream.results.Collection` says why, and whether the cause is
the harness's. :class:`~pytest_spike.upstream.run.SpikeUpstream` makes one
:class:`Collector` per collection.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from pytest_spike._core import runner, sandbox
from pytest_spike.upstream.layout import TestLayout
from pytest_spike.upstream.results import NO_MODULE as _NO_MODULE
from pytest_spike.upstream.results import Collection, first_error_line
from pytest_spike.upstream.verdict import MISSING_FILE, copied_package

_COLLECT_ERRORS = re.compile(r"collected.*?(\d+) errors?")
_CONFTEST_FAILED = "while loading conftest"
_FAILED_CONFTEST = re.compile(r"while loading conftest '([^']+)'")


@dataclass(frozen=True)
class _Attempt:
    """One try at collecting: what collected, pytest's output, how, and the notes so far."""

    ids: list[str]
    output: str
    how: Collection
    notes: tuple[str, ...]

    def then(self, ids: list[str], output: str, how: Collection, note: str) -> _Attempt:
        """The next try, with ``note`` saying why it was made."""
        return _Attempt(ids, output, how, (*self.notes, note))


@dataclass
class Collector:
    """One collection of the copied tests in ``run_dir`` by the target's pytest.

    ``pytest_argv`` builds the command line the way a ``Collection`` says; ``paths`` are the
    copied test paths, ``src_root`` the unpacked sdist (files are brought from it),
    ``target_info`` what the target interpreter has (pytest, upstream's plugins).
    """

    python: str
    run_dir: Path
    timeout: float
    env: Mapping[str, str]
    package_modules: tuple[str, ...]
    layout: TestLayout
    paths: Sequence[str]
    src_root: Path | None
    pytest_argv: Callable[..., list[str]]
    target_info: Callable[[], dict[str, Any]]
    #: the box upstream's tests run in (see SpikeUpstream.box)
    box: sandbox.Box | None = None
    #: how each try collects, ``(extra arguments, how) -> (ids, output)`` (default: a
    #: ``--collect-only -q`` child); the probe's collects and runs its sample in one child
    collect_once: Callable[[list[str], Collection], tuple[list[str], str]] | None = None

    def collect(
        self,
        keyword: str | None = None,
        paths: Sequence[str] | None = None,
        *,
        first: tuple[list[str], str] | None = None,
    ) -> Collection:
        """What collects (from ``paths`` in the copied tests, default all of them), and how:
        falls back to prepend mode, then leaves out folders whose conftest fails to import,
        then to ``--noconftest``. When nothing collects, the returned ``reason`` says why.
        ``first``: the ids and output of the first try (the default way), made already."""
        blocked = self._cannot_collect()
        if blocked is not None:
            return blocked
        extra = (["-k", keyword] if keyword else []) + list(paths or self.paths)
        how = Collection()
        attempt = _Attempt(*(first or self._collect_once(extra, how)), how, self.missing_plugin_notes())
        for fallback in (
            self._try_prepend,
            self._try_bringing_files,
            self._try_leaving_out_conftests,
            self._try_noconftest,
        ):
            attempt = fallback(extra, attempt)
        return self._collection(attempt)

    def _cannot_collect(self) -> Collection | None:
        """Why nothing can collect at all (no tests, no pytest in the target), or None."""
        if not self.layout.has_tests:
            return Collection(reason="the sdist has no tests", gap=True)
        info = self.target_info()
        if info.get("pytest"):
            return None
        why = info.get("pytest_error", "not found")
        reason = (
            f"pytest is not installed in {self.python} ({why}); install it in the candidate's environment"
        )
        return Collection(reason=reason, gap=True)

    def missing_plugin_notes(self) -> tuple[str, ...]:
        return tuple(
            f"upstream's '-p {p}' left out: not installed in the target"
            for p, ok in self.target_info().get("plugins", {}).items()
            if not ok
        )

    def _try_prepend(self, extra: list[str], attempt: _Attempt) -> _Attempt:
        """A local test helper importlib mode cannot import: prepend mode, if it collects more."""
        missing = set(_NO_MODULE.findall(attempt.output))
        if not any(self._is_local(m) for m in missing):
            return attempt
        prepend = dataclasses.replace(attempt.how, mode="prepend")
        ids, output = self._collect_once(extra, prepend)
        if len(ids) <= len(attempt.ids):
            return attempt
        return attempt.then(
            ids, output, prepend, "importlib import mode could not import a test helper; used prepend"
        )

    def _try_bringing_files(self, extra: list[str], attempt: _Attempt) -> _Attempt:
        """A conftest reads a file of the sdist we did not copy: copy it (three times at most)."""
        for _ in range(3):
            brought = self._bring_missing(attempt.output) if not attempt.ids else None
            if brought is None:
                break
            ids, output = self._collect_once(extra, attempt.how)
            note = f"copied {brought} from the sdist: a conftest or test module reads it"
            attempt = attempt.then(ids, output, attempt.how, note)
        return attempt

    def _try_leaving_out_conftests(self, extra: list[str], attempt: _Attempt) -> _Attempt:
        """A conftest below the root that fails to import: leave its folder out (three at most)."""
        for _ in range(3):
            failed = self._failed_conftest(attempt.output) if not attempt.ids else None
            if failed is None:
                break
            narrower = dataclasses.replace(attempt.how, ignored=(*attempt.how.ignored, failed))
            ids, output = self._collect_once(extra, narrower)
            if not ids and output == attempt.output:
                break
            note = f"left out {failed}: its conftest failed to import ({first_error_line(output)})"
            attempt = attempt.then(ids, output, narrower, note)
        return attempt

    def _try_noconftest(self, extra: list[str], attempt: _Attempt) -> _Attempt:
        """The root conftest fails to import: collect with ``--noconftest`` (low confidence)."""
        if attempt.ids or _CONFTEST_FAILED not in attempt.output:
            return attempt
        bare = dataclasses.replace(attempt.how, noconftest=True)
        ids, _ = self._collect_once(extra, bare)
        if not ids:
            return attempt
        note = (
            f"the root conftest failed to import ({first_error_line(attempt.output)}); "
            "collected with --noconftest: results are low-confidence"
        )
        return attempt.then(ids, attempt.output, bare, note)  # the failure's output stays

    def _collection(self, attempt: _Attempt) -> Collection:
        """The final ``Collection``: what collected, or why nothing did."""
        notes = list(attempt.notes)
        errors = _COLLECT_ERRORS.search(attempt.output)
        if attempt.ids and errors:
            notes.append(
                f"{errors.group(1)} collection error(s) beside {len(attempt.ids)} tests: "
                f"{first_error_line(attempt.output)}"
            )
        reason, gap = ("", False) if attempt.ids else self._why_empty(attempt.output)
        return dataclasses.replace(
            attempt.how, ids=tuple(attempt.ids), reason=reason, gap=gap, notes=tuple(notes)
        )

    def _collect_once(self, extra: list[str], how: Collection) -> tuple[list[str], str]:
        if self.collect_once is not None:
            return self.collect_once(extra, how)
        return self.collect_only(extra, how)

    def collect_only(self, extra: list[str], how: Collection) -> tuple[list[str], str]:
        """One ``--collect-only -q`` child: the ids it listed, and its output."""
        result = runner.run(
            self.pytest_argv("--collect-only", "-q", *extra, how=how),
            timeout=self.timeout,
            cwd=self.run_dir,
            extra_env=self.env,
            box=self.box,
        )
        output = result.stdout + "\n" + result.stderr
        if result.timed_out:
            return [], f"collection {result.describe()}"
        return self.listed(result.stdout.splitlines()), output

    def listed(self, lines: Iterable[str]) -> list[str]:
        """The node ids among ``lines`` (``--collect-only -q``'s listing) of files in the copied
        tests."""
        return [
            ln.strip() for ln in lines if "::" in ln and (self.run_dir / ln.strip().split("::")[0]).is_file()
        ]

    def _bring_missing(self, output: str) -> str | None:
        """Copy the folder of a file the output says is missing from the copied tests but
        exists in the sdist (sqlalchemy's conftest runs ``lib/sqlalchemy/testing/plugin/
        bootstrap.py`` by path); never a folder that is the package itself."""
        if self.src_root is None:
            return None
        run_dir = self.run_dir.resolve()
        for name in MISSING_FILE.findall(output):
            path = Path(os.path.normpath(self.run_dir / name))
            try:
                rel = path.relative_to(run_dir if path.is_relative_to(run_dir) else self.run_dir)
            except ValueError:
                continue
            source = self.src_root / rel
            folder = rel.parent
            if not source.is_file() or path.exists() or self._is_package_dir(folder):
                continue
            if folder == Path("."):
                shutil.copy2(source, self.run_dir / rel, follow_symlinks=False)
                return rel.as_posix()
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo")
            target = self.run_dir / folder
            shutil.copytree(self.src_root / folder, target, symlinks=True, ignore=ignore, dirs_exist_ok=True)
            return folder.as_posix() + "/"
        return None

    def _is_package_dir(self, folder: Path) -> bool:
        """``pkg``, ``src/pkg`` or ``lib/pkg``: the package source, never copied."""
        parts = folder.parts
        return bool(parts) and parts[-1] in self.package_modules and len(parts) <= 2

    def _failed_conftest(self, output: str) -> str | None:
        """The folder (relative to the copied tests) of a failing conftest below the root."""
        match = _FAILED_CONFTEST.search(output)
        if not match:
            return None
        try:
            folder = Path(match.group(1)).parent.resolve().relative_to(self.run_dir.resolve())
        except ValueError:
            return None
        if folder == Path(".") or folder.as_posix() in self.paths:
            return None  # the root's or a test folder's own conftest: nothing left to run
        return folder.as_posix()

    def _is_local(self, module: str) -> bool:
        top = module.split(".")[0]
        return any(p.stem == top for p in self.run_dir.rglob(f"{top}.py")) or any(
            p.is_dir() for p in self.run_dir.rglob(top)
        )

    def _why_empty(self, output: str) -> tuple[str, bool]:
        """Why nothing collected, and whether the cause is the harness's."""
        missing = [m for m in _NO_MODULE.findall(output) if not self._is_local(m)]
        ours = [m for m in missing if m.split(".")[0] in self.package_modules]
        if missing and not ours:
            line = first_error_line(output)
            return f"missing harness dependency '{missing[0].split('.')[0]}' ({line})", True
        line = first_error_line(output)
        reason = line if line and "collected" not in line else "no tests collected"
        copied = copied_package(output, self.run_dir)
        if copied:
            return f"{reason} ({copied})", True
        names = "|".join(map(re.escape, self.package_modules))
        if ours or re.search(rf"cannot import name .* from '({names})[.']", output):
            return reason, False  # the installed package lacks what its own tests import
        return reason, True
