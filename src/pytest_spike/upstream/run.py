"""Run a deterministic sample of a candidate's own upstream tests against the installed copy.

The sdist is fetched and unpacked safely (``sdist``), its tests are found and copied alone
(``upstream.layout``), then pytest runs *in the candidate's interpreter*, as a subprocess
through ``runner.run``, from a folder holding only the tests, so ``import pkg`` can only
resolve to the installed package. This module never imports pytest.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import json
import re
import shutil
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_spike._core import runner
from pytest_spike.envs.manager import pip_command
from pytest_spike.model import Finding, Severity, SpikeError
from pytest_spike.upstream.layout import (
    Harness,
    TestLayout,
    copy_tests,
    find_tests,
    harness_requirements,
)
from pytest_spike.upstream.sdist import UnsafeArchive, fetch_sdist, redact, safe_extract

DEFAULT_SAMPLE = 5
#: Always passed: unknown upstream marks must not abort the run (dateutil's conftest uses one).
BASE_OPTIONS = ("-p", "no:cacheprovider", "-p", "no:spike", "-W", "ignore::pytest.PytestUnknownMarkWarning")
_ERROR_LINE = re.compile(r"^(?:E\s+)?([A-Za-z_.]*(?:Error|Exception|Interrupt)\b.*)$")
_COLLECT_ERRORS = re.compile(r"collected.*?(\d+) errors?")
_NO_MODULE = re.compile(r"No module named '([^']+)'")
_CONFTEST_FAILED = "while loading conftest"
_PROJECT_FILES = ("PKG-INFO", "pyproject.toml", "setup.py", "setup.cfg")
_TARGET_INFO = """
import importlib, importlib.util, json, sys
if sys.version_info >= (3, 11) and sys.path and sys.path[0] in ("", "."):
    del sys.path[0]  # what -P will do for pytest
info = {"python": list(sys.version_info[:2]), "pytest": None, "origins": {}}
try:  # found, not imported: importing pytest costs half a second
    if importlib.util.find_spec("pytest") is not None:
        import importlib.metadata
        info["pytest"] = importlib.metadata.version("pytest")
except Exception as exc:
    info["pytest_error"] = f"{type(exc).__name__}: {exc}"
for name in sys.argv[1:]:
    try:
        mod = importlib.import_module(name)
        info["origins"][name] = getattr(mod, "__file__", None) or repr(list(mod.__path__))
    except BaseException as exc:
        info["origins"][name] = f"error: {type(exc).__name__}: {exc}"
print(json.dumps(info))
"""


@dataclass(frozen=True)
class TestOutcome:
    """One sampled test: ``passed``, ``failed``, ``skipped`` or ``error``, and why."""

    __test__ = False

    outcome: str
    message: str = ""


@dataclass
class UpstreamResult:
    """What the upstream probe saw; ``status`` is none, uncollectable, collected or ran."""

    status: str
    reason: str = ""
    collected: int = 0
    collected_files: str = ""
    sampled: list[str] = field(default_factory=list)
    outcomes: dict[str, TestOutcome] = field(default_factory=dict)
    seed: int = 0
    harness: Harness | None = None
    mode: str = "importlib"
    low_confidence: bool = False
    notes: list[str] = field(default_factory=list)
    duration_s: float = 0.0

    def count(self, outcome: str) -> int:
        return sum(1 for o in self.outcomes.values() if o.outcome == outcome)


@dataclass(frozen=True)
class HarnessInstall:
    """How installing the upstream test harness went."""

    ok: bool
    errors: tuple[str, ...] = ()
    duration_s: float = 0.0


def install_harness(
    python: str,
    reqs: Sequence[str],
    timeout: float,
    *,
    pin: str | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> HarnessInstall:
    """``python -m pip install reqs`` through ``runner.run``; ``pin`` (``name==version``) is
    passed as a constraint so the harness cannot replace the version under test."""
    if not reqs:
        return HarnessInstall(True)
    with tempfile.TemporaryDirectory(prefix="spike-harness-") as tmp:
        argv = [*pip_command(python), "install", "--disable-pip-version-check", *reqs]
        if pin:
            constraints = Path(tmp, "constraints.txt")
            constraints.write_text(pin + "\n")
            argv += ["-c", str(constraints)]
        result = runner.run(argv, timeout=timeout, extra_env=extra_env)
    if result.ok:
        return HarnessInstall(True, duration_s=result.duration_s)
    err = [ln.strip() for ln in result.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in err if ln.startswith("ERROR")][:2] or err[-2:] or [result.describe()]
    # pip explains a resolver conflict on stdout, under "The conflict is caused by:"
    cause = result.stdout.partition("caused by:\n")[2].split("\n\n")[0]
    errors += [ln.strip() for ln in cause.splitlines() if ln.strip()][:4]
    return HarnessInstall(False, tuple(errors), result.duration_s)


def choose_sample(nodeids: Sequence[str], n: int = DEFAULT_SAMPLE, seed: int = 0) -> list[str]:
    """Pick ``n`` node ids: files ordered by a seeded hash, one test per file per round, so the
    same collection and seed always give the same sample, whatever order pytest listed."""

    def key(text: str) -> str:
        return _hash_key(seed, text)

    by_file: dict[str, list[str]] = {}
    for nodeid in nodeids:
        by_file.setdefault(nodeid.split("::")[0], []).append(nodeid)
    queues = [sorted(by_file[f], key=key) for f in sorted(by_file, key=key)]
    picked: list[str] = []
    for depth in range(max((len(q) for q in queues), default=0)):
        picked += [q[depth] for q in queues if depth < len(q)]
    return picked[: max(n, 0)]


def _hash_key(seed: int, text: str) -> str:
    return hashlib.sha256(f"{seed}:{text}".encode()).hexdigest()


def render_ini(layout: TestLayout) -> str:
    """Our own ini file: upstream's kept keys, never their ``addopts``."""
    lines = ["[pytest]", "junit_family = xunit1"]
    for key, value in layout.config.ini.items():
        if isinstance(value, bool):
            value = str(value).lower()
        items = value if isinstance(value, (list, tuple)) else str(value).splitlines()
        body = "\n    ".join(str(v).strip() for v in items if str(v).strip())
        lines.append(f"{key} =\n    {body}" if len(items) > 1 else f"{key} = {body}")
    return "\n".join(lines) + "\n"


def first_error_line(text: str) -> str:
    """The first line that names an exception (pytest's ``E   ...`` lines first)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for line in [ln for ln in lines if ln.startswith("E ")] + lines:
        match = _ERROR_LINE.match(line)
        if match:
            return match.group(1).strip()
    return lines[-1] if lines else ""


class SpikeUpstream:
    """The upstream tests of one installed candidate: collect them, sample, run the sample.

    ``source`` is an sdist URL, a local sdist archive, a folder (an unpacked sdist, a
    checkout, or a tests folder), or None when the index has no sdist. ``extra_env``
    reaches every subprocess; ``timeout`` limits each one.
    """

    def __init__(
        self,
        python: str,
        dist_name: str,
        version: str,
        source: str | Path | None,
        workdir: str | Path,
        timeout: float = 120.0,
        *,
        package_modules: Sequence[str] = (),
        seed: int = 0,
        extra_env: Mapping[str, str] | None = None,
        sha256: str | None = None,
    ) -> None:
        self.python, self.dist_name, self.version = python, dist_name, version
        self.source = None if source is None else str(source)
        self.workdir, self.timeout = Path(workdir), timeout
        self.package_modules = tuple(package_modules) or (dist_name.replace("-", "_").lower(),)
        self.seed, self.sha256 = seed, sha256
        self.env = {**(extra_env or {}), "PYTEST_ADDOPTS": "", "PYTEST_PLUGINS": ""}
        self.run_dir = self.workdir / "run"
        self.meta_dir = self.workdir / "meta"
        self.mode, self.noconftest = "importlib", False
        self.notes: list[str] = []
        self._layout: TestLayout | None = None
        self._src_root: Path | None = None
        self._harness: Harness | None = None
        self._paths: list[str] = []
        self._info: dict[str, Any] | None = None
        self._collected: list[str] | None = None
        self.reason = ""

    # -- preparing ---------------------------------------------------------------------

    @property
    def layout(self) -> TestLayout:
        """Fetch, unpack and read the sdist once; copy its tests into ``workdir/run``."""
        if self._layout is None:
            root = self._source_root()
            layout = find_tests(root, self.package_modules)
            if not layout.test_dirs and not any((root / n).exists() for n in _PROJECT_FILES):
                # a bare tests folder: the folder itself is what to copy
                layout = dataclasses.replace(
                    layout, root=root.parent, test_dirs=(root.name,), test_files=(), conftest=False
                )
            self.notes += layout.notes
            if self.run_dir.exists():
                shutil.rmtree(self.run_dir)
            self._paths = copy_tests(layout, self.run_dir)
            self.meta_dir.mkdir(parents=True, exist_ok=True)
            (self.meta_dir / "pytest.ini").write_text(render_ini(layout))
            self._src_root, self._layout = root, layout
        return self._layout

    def _source_root(self) -> Path:
        if self.source is None:
            raise SpikeError(f"the package index has no sdist of {self.dist_name} {self.version}")
        local = Path(self.source)
        if local.is_dir():
            return local
        if "://" in self.source:
            archive = fetch_sdist(
                self.source, self.workdir / "download", timeout=self.timeout, sha256=self.sha256
            )
        elif local.is_file():
            archive = local
        else:
            raise SpikeError(f"upstream source {redact(self.source)!r} is not a URL, file or folder")
        src = self.workdir / "src"
        if src.exists():
            shutil.rmtree(src)
        return safe_extract(archive, src)

    @property
    def harness(self) -> Harness:
        """The upstream test requirements and where they were found."""
        if self._harness is None:
            _ = self.layout  # fetches and extracts the sdist once
            assert self._src_root is not None
            self._harness = harness_requirements(self._src_root, self.dist_name)
        return self._harness

    def with_source(self, source: str | Path) -> SpikeUpstream:
        """The same candidate and interpreter with other tests: a local checkout, a tests
        folder or another sdist."""
        return SpikeUpstream(
            self.python,
            self.dist_name,
            self.version,
            source,
            self.workdir.with_name(self.workdir.name + "-local"),
            self.timeout,
            package_modules=self.package_modules,
            seed=self.seed,
            extra_env={k: v for k, v in self.env.items() if k not in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS")},
        )

    def install_harness(self, timeout: float | None = None) -> HarnessInstall:
        """Install the harness into the candidate's interpreter, pinning the candidate."""
        return install_harness(
            self.python,
            self.harness.requirements,
            timeout or self.timeout,
            pin=f"{self.dist_name}=={self.version}",
            extra_env=self.env,
        )

    def target_info(self) -> dict[str, Any]:
        """The target's Python version, pytest version, and where its modules import from."""
        if self._info is None:
            _ = self.layout  # fetches and extracts the sdist once
            result = runner.run(
                [self.python, "-c", _TARGET_INFO, *self.package_modules],
                timeout=min(self.timeout, 60.0),
                cwd=self.run_dir,
                extra_env=self.env,
            )
            try:
                self._info = json.loads(result.stdout.strip().splitlines()[-1])
            except (ValueError, IndexError):
                raise SpikeError(
                    f"cannot run {self.python!r} ({result.describe()}: {result.last_error_line()}); "
                    "check the candidate's interpreter"
                ) from None
        return self._info

    # -- collecting --------------------------------------------------------------------

    def pytest_argv(self, *args: str) -> list[str]:
        """The pytest command line in the target, in the current import mode."""
        info = self.target_info()
        safe_path = ["-P"] if tuple(info["python"]) >= (3, 11) else []
        config = self.layout.config
        argv = [
            self.python,
            *safe_path,
            "-m",
            "pytest",
            "-c",
            str(self.meta_dir / "pytest.ini"),
            "--rootdir",
            str(self.run_dir),
            f"--import-mode={self.mode}",
            *BASE_OPTIONS,
        ]
        for plugin in config.plugins:
            argv += ["-p", plugin]
        if config.markexpr:
            argv += ["-m", config.markexpr]
        if self.noconftest:
            argv.append("--noconftest")
        return argv + list(args)

    def collect(self, keyword: str | None = None, paths: Sequence[str] | None = None) -> list[str]:
        """Node ids that collect (from ``paths`` in the copied tests, default all of them);
        falls back to prepend mode, then to ``--noconftest``. Empty when nothing collects,
        with the cause in ``reason``."""
        everything = keyword is None and paths is None
        if self._collected is not None and everything:
            return self._collected
        if not self.layout.has_tests:
            self.reason = "the sdist has no tests"
            return []
        info = self.target_info()
        if not info.get("pytest"):
            why = info.get("pytest_error", "not found")
            self.reason = (
                f"pytest is not installed in {self.python} ({why}); install it in the candidate's environment"
            )
            return []
        extra = (["-k", keyword] if keyword else []) + list(paths or self._paths)
        ids, output = self._collect_once(extra)
        missing = set(_NO_MODULE.findall(output))
        if self.mode == "importlib" and any(self._is_local(m) for m in missing):
            self.mode = "prepend"
            retry, retry_out = self._collect_once(extra)
            if len(retry) > len(ids):
                ids, output = retry, retry_out
                self.notes.append("importlib import mode could not import a test helper; used prepend")
            else:
                self.mode = "importlib"
        if not ids and _CONFTEST_FAILED in output:
            self.noconftest = True
            retry, retry_out = self._collect_once(extra)
            if retry:
                ids = retry
                self.notes.append(
                    f"the root conftest failed to import ({first_error_line(output)}); "
                    "collected with --noconftest: results are low-confidence"
                )
            else:
                self.noconftest = False
        if not ids:
            self.reason = self._why_empty(output)
        errors = _COLLECT_ERRORS.search(output)
        if ids and errors:
            self.notes.append(
                f"{errors.group(1)} collection error(s) beside {len(ids)} tests: {first_error_line(output)}"
            )
        if everything:
            self._collected = ids
        return ids

    def _collect_once(self, extra: list[str]) -> tuple[list[str], str]:
        result = runner.run(
            self.pytest_argv("--collect-only", "-q", *extra),
            timeout=self.timeout,
            cwd=self.run_dir,
            extra_env=self.env,
        )
        output = result.stdout + "\n" + result.stderr
        if result.timed_out:
            return [], f"collection {result.describe()}"
        ids = [
            ln.strip()
            for ln in result.stdout.splitlines()
            if "::" in ln and (self.run_dir / ln.strip().split("::")[0]).is_file()
        ]
        return ids, output

    def _is_local(self, module: str) -> bool:
        top = module.split(".")[0]
        return any(p.stem == top for p in self.run_dir.rglob(f"{top}.py")) or any(
            p.is_dir() for p in self.run_dir.rglob(top)
        )

    def _why_empty(self, output: str) -> str:
        missing = [m for m in _NO_MODULE.findall(output) if not self._is_local(m)]
        if missing:
            return f"missing harness dependency '{missing[0].split('.')[0]}' ({first_error_line(output)})"
        line = first_error_line(output)
        return line if line and "collected" not in line else "no tests collected"

    def sample(self, n: int = DEFAULT_SAMPLE, keyword: str | None = None) -> list[str]:
        """A deterministic sample of ``n`` collected tests (seeded by ``seed``)."""
        return choose_sample(self.collect(keyword), n, self.seed)

    # -- running -----------------------------------------------------------------------

    def run(self, nodeids: Sequence[str]) -> UpstreamResult:
        """Run the given node ids in one pytest process; outcomes come from JUnit XML."""
        result = self._result("ran")
        result.sampled = list(nodeids)
        if not nodeids:
            return result
        xml = self.meta_dir / "junit.xml"
        xml.unlink(missing_ok=True)
        proc = runner.run(
            self.pytest_argv("-q", f"--junitxml={xml}", *nodeids),
            timeout=self.timeout,
            cwd=self.run_dir,
            extra_env=self.env,
        )
        result.duration_s = proc.duration_s
        found = _read_junit(xml) if xml.is_file() and not proc.timed_out else {}
        problem = proc.describe() if proc.timed_out else first_error_line(proc.stdout + proc.stderr)
        for nodeid in nodeids:
            result.outcomes[nodeid] = found.get(_junit_key(nodeid)) or TestOutcome(
                "error", f"did not run: {problem or proc.describe()}"
            )
        return result

    def probe(
        self, n: int = DEFAULT_SAMPLE, *, install: bool = False, full_collection: bool = False
    ) -> UpstreamResult:
        """The whole probe: fetch, (install the harness), collect, sample, run. Only the
        ``n`` hash-chosen files are collected unless one of them yields nothing or
        ``full_collection`` is set; the sample is the same either way. Problems with the
        sdist become the result's status and reason, never an exception."""
        try:
            layout = self.layout
        except UnsafeArchive as exc:
            return self._result("unsafe", str(exc))
        except SpikeError as exc:
            return self._result("none", str(exc))
        if not layout.has_tests:
            return self._result("none", "the sdist has no tests")
        if install:
            done = self.install_harness()
            if not done.ok:
                self.notes.append("installing the test harness failed: " + " | ".join(done.errors))
        files = self.test_files()
        head = sorted(files, key=lambda f: _hash_key(self.seed, f))[:n]
        try:
            self._check_origins()
            kept_notes = len(self.notes)
            ids = [] if full_collection else self.collect(paths=head)
            if len({i.split("::")[0] for i in ids}) < len(head):
                # a chosen file gave nothing (named alone, it escapes collect_ignore too)
                del self.notes[kept_notes:]
                ids, head = self.collect(), files
            if not ids:
                return self._result("uncollectable", self.reason)
            result = self.run(choose_sample(ids, n, self.seed))
        except SpikeError as exc:  # the target interpreter itself would not run
            return self._result("uncollectable", str(exc))
        result.collected = len(ids)
        result.collected_files = f"{len(head)} of {len(files)}"
        return result

    def _check_origins(self) -> None:
        """Note where the candidate's modules import from, next to the copied tests."""
        run_dir = str(self.run_dir.resolve())
        for module, origin in self.target_info()["origins"].items():
            if origin.startswith("error:"):
                self.notes.append(f"cannot import {module} in the target: {origin[7:]}")
            elif origin.startswith(run_dir):
                self.notes.append(
                    f"{module} imports from the copied tests ({origin}), not from the installed package"
                )

    def test_files(self) -> list[str]:
        """The copied test files pytest would collect by upstream's ``python_files``."""
        _ = self.layout  # fetches and extracts the sdist once
        patterns = self.layout.config.python_files
        return sorted(
            p.relative_to(self.run_dir).as_posix()
            for p in self.run_dir.rglob("*.py")
            if any(fnmatch.fnmatch(p.name, pat) for pat in patterns)
        )

    def _result(self, status: str, reason: str = "") -> UpstreamResult:
        harness = None
        if self._src_root is not None:
            harness = self.harness
        return UpstreamResult(
            status=status,
            reason=reason,
            collected=len(self._collected or []),
            seed=self.seed,
            harness=harness,
            mode=self.mode + ("+noconftest" if self.noconftest else ""),
            low_confidence=self.noconftest,
            notes=list(self.notes),
        )


def _junit_key(nodeid: str) -> tuple[str, str]:
    """(classname, name) as pytest's junitxml derives them from a node id."""
    path, bracket, params = nodeid.partition("[")
    names = path.split("::")
    names[0] = re.sub(r"\.py$", "", names[0].replace("/", "."))
    names[-1] += bracket + params
    return ".".join(names[:-1]), names[-1]


def _read_junit(path: Path) -> dict[tuple[str, str], TestOutcome]:
    try:
        tree = ET.parse(path)
    except ET.ParseError:
        return {}
    outcomes: dict[tuple[str, str], TestOutcome] = {}
    for case in tree.iter("testcase"):
        key = (case.get("classname", ""), case.get("name", ""))
        outcome = TestOutcome("passed")
        for tag, name in (("skipped", "skipped"), ("error", "error"), ("failure", "failed")):
            child = case.find(tag)
            if child is not None:  # a failing test with a failing teardown: failure wins
                message = child.get("message") or (child.text or "")
                outcome = TestOutcome(name, message.strip().splitlines()[0] if message.strip() else "")
        if key not in outcomes or outcome.outcome != "passed":
            outcomes[key] = outcome
    return outcomes


def upstream_findings(result: UpstreamResult) -> tuple[list[Finding], dict[str, Any]]:
    """Turn an upstream result into findings plus the details the report shows."""
    failed = {k: v for k, v in result.outcomes.items() if v.outcome in ("failed", "error")}
    details: dict[str, Any] = {
        "status": result.status,
        "collected": result.collected,
        "collected_files": result.collected_files,
        "sampled": len(result.sampled),
        "passed": result.count("passed"),
        "failed": result.count("failed"),
        "errors": result.count("error"),
        "skipped": result.count("skipped"),
        "seed": result.seed,
        "harness": result.harness.source if result.harness else "none",
        "mode": result.mode,
        "sample": list(result.sampled),
        "notes": list(result.notes),
    }
    if result.reason:
        details["reason"] = result.reason
    findings: list[Finding] = []
    if result.status == "unsafe":
        findings.append(
            Finding(
                "upstream.unsafe",
                Severity.HIGH,
                f"the sdist was refused: {result.reason}",
                {"reason": result.reason},
            )
        )
    elif result.status == "none":
        findings.append(
            Finding(
                "upstream.unavailable",
                Severity.LOW,
                f"no upstream tests to sample: {result.reason or 'the sdist has no tests'}",
            )
        )
    elif result.status == "uncollectable":
        harness = result.harness.source if result.harness else "none"
        findings.append(
            Finding(
                "upstream.uncollectable",
                Severity.MEDIUM,
                f"upstream tests do not collect: {result.reason}",
                {"reason": result.reason, "harness": harness},
            )
        )
    if failed:
        n, total = len(failed), len(result.sampled)
        first_id, first = next(iter(failed.items()))
        weak = " (one failure is weak evidence: environment noise can cause it)" if n == 1 else ""
        findings.append(
            Finding(
                "upstream.failed",
                Severity.HIGH,
                f"{n} of {total} sampled upstream tests failed{weak}: {first_id}: {first.message}",
                {"nodeids": " ".join(failed), "first_error": first.message, "seed": str(result.seed)},
            )
        )
    if result.low_confidence:
        findings.append(
            Finding(
                "upstream.low_confidence",
                Severity.INFO,
                "upstream tests collected only with --noconftest (fixtures and "
                "collect_ignore lost): results are low-confidence",
                {"mode": result.mode},
            )
        )
    return findings, details
