"""Run a deterministic sample of a candidate's own upstream tests against the installed copy.

The sdist is fetched and unpacked safely (``sdist``), its tests are found and copied alone
(``upstream.layout``), then pytest runs *in the candidate's interpreter*, as a subprocess
through ``runner.run``, from a folder holding only the tests, so ``import pkg`` can only
resolve to the installed package. This module never imports pytest.

:class:`SpikeUpstream` is the ``spike_upstream`` fixture's API (layout, harness, collect,
sample, run, probe); how a collection falls back when it fails is ``upstream.collect``,
the values it gives (and the JUnit reading) ``upstream.results``, and the probe's findings
``upstream.findings``.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_spike._core import runner, sandbox, witness
from pytest_spike.envs.manager import installer_box, installer_cache, pip_command
from pytest_spike.model import SpikeError, default_cache_root
from pytest_spike.upstream.collect import Collector
from pytest_spike.upstream.layout import (
    Harness,
    TestLayout,
    copy_tests,
    find_tests,
    harness_requirements,
)
from pytest_spike.upstream.results import (
    Collection,
    TestOutcome,
    UpstreamResult,
    first_error_line,
    junit_key,
    read_junit,
)
from pytest_spike.upstream.sdist import ArchiveTooLarge, UnsafeArchive, fetch_sdist, redact, safe_extract
from pytest_spike.upstream.verdict import harness_gap, shared_teardown

DEFAULT_SAMPLE = 5
#: Always passed: unknown upstream marks must not abort the run (dateutil's conftest uses one),
#: nor ini keys of plugins the harness lacks (warnings are errors in many upstream configs).
BASE_OPTIONS = (
    "-p",
    "no:cacheprovider",
    "-p",
    "no:spike",
    "-W",
    "ignore::pytest.PytestUnknownMarkWarning",
    "-W",
    "ignore::pytest.PytestConfigWarning",
)
_SELECT_PLUGIN = "_spike_upstream_select"
#: A pytest plugin, loaded with ``-p`` from the meta folder: keeps only the chosen items.
_SELECT_SOURCE = """
import os
import pytest

# Read when ``-p`` loads the plugin, before any conftest or test module can change the file.
with open(os.environ["SPIKE_UPSTREAM_SELECT"], encoding="utf-8") as f:
    _wanted = set(f.read().splitlines())

@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    wanted = _wanted
    config.hook.pytest_deselected(items=[i for i in items if i.nodeid not in wanted])
    items[:] = [i for i in items if i.nodeid in wanted]
"""
_PLAN_PLUGIN = "_spike_upstream_plan"
#: A pytest plugin, loaded with ``-p`` from the meta folder, so that one child both collects
#: and runs: it writes what collected and keeps the sample ``choose_sample`` picks (compared
#: with the parent's; a test keeps the two in step). When collection had errors, the child
#: goes on as ``--collect-only`` would (its listing is the first try of ``Collector``); when a
#: chosen file gave no test, it runs nothing.
_PLAN_SOURCE = """
import hashlib
import json
import os
import pytest

# Read when ``-p`` loads the plugin, before any conftest or test module can change the file.
with open(os.environ["SPIKE_UPSTREAM_PLAN"], encoding="utf-8") as f:
    _plan = json.load(f)
_failed = []


def pytest_collectreport(report):
    if report.failed:
        _failed.append(report.nodeid)


def _key(seed, text):
    return hashlib.sha256(("%s:%s" % (seed, text)).encode()).hexdigest()


def _sample(ids, n, seed):
    by_file = {}
    for nodeid in ids:
        by_file.setdefault(nodeid.split("::")[0], []).append(nodeid)
    order = sorted(by_file, key=lambda f: _key(seed, f))
    queues = [sorted(by_file[f], key=lambda t: _key(seed, t)) for f in order]
    picked = []
    for depth in range(max([len(q) for q in queues] or [0])):
        picked += [q[depth] for q in queues if depth < len(q)]
    return picked[: max(n, 0)]


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    plan = _plan
    root = str(config.rootdir)
    ids = [i.nodeid for i in items]
    tests = [i for i in ids if "::" in i and os.path.isfile(os.path.join(root, i.split("::")[0]))]
    files = {i.split("::")[0] for i in tests}
    short = [f for f in plan["require"] if f not in files]
    picked = [] if (_failed or short) else _sample(tests, plan["n"], plan["seed"])
    with open(plan["out"], "w", encoding="utf-8") as f:
        json.dump({"ids": ids, "errors": len(_failed), "short": short, "picked": picked}, f)
    if _failed:
        config.option.collectonly = True  # pytest stops here; it lists and sums up as --collect-only
        return
    wanted = set(picked)
    config.hook.pytest_deselected(items=[i for i in items if i.nodeid not in wanted])
    items[:] = [i for i in items if i.nodeid in wanted]
"""
_PLUGINS = {_SELECT_PLUGIN: _SELECT_SOURCE, _PLAN_PLUGIN: _PLAN_SOURCE}
_PROJECT_FILES = ("PKG-INFO", "pyproject.toml", "setup.py", "setup.cfg")
_TARGET_INFO = """
import importlib, importlib.util, json, sys
if sys.version_info >= (3, 11) and sys.path and sys.path[0] in ("", "."):
    del sys.path[0]  # what -P will do for pytest
ask = json.loads(sys.argv[1])
sys.path[:0] = ask["path"]  # the pythonpath the sample run will have
info = {"python": list(sys.version_info[:2]), "pytest": None, "origins": {}, "plugins": {}}
try:  # found, not imported: importing pytest costs half a second
    if importlib.util.find_spec("pytest") is not None:
        import importlib.metadata
        info["pytest"] = importlib.metadata.version("pytest")
        entry = {e.name for e in importlib.metadata.entry_points(group="pytest11")}
        for name in ask["plugins"]:
            try:
                info["plugins"][name] = name in entry or importlib.util.find_spec(name) is not None
            except Exception:
                info["plugins"][name] = False
except Exception as exc:
    info["pytest_error"] = f"{type(exc).__name__}: {exc}"
for name in ask["modules"]:
    try:
        mod = importlib.import_module(name)
        info["origins"][name] = getattr(mod, "__file__", None) or repr(list(mod.__path__))
    except BaseException as exc:
        info["origins"][name] = f"error: {type(exc).__name__}: {exc}"
print(json.dumps(info))
"""


@dataclass(frozen=True)
class _OneChild:
    """What :meth:`SpikeUpstream._collect_and_run` gave. ``state``: ``ran`` (collected clean,
    the sample ran: ``found``, ``sample``, ``ran``), ``short`` (a chosen file gave no test),
    ``listed`` (collection errors: the child stopped as ``--collect-only -q`` would; its ids
    and output in ``listing``), ``unclean`` (nothing of it is kept)."""

    state: str
    found: Collection = Collection()
    sample: tuple[str, ...] = ()
    ran: tuple[dict[str, TestOutcome], float] | None = None
    listing: tuple[list[str], str] | None = None


def _how(collection: Collection) -> Collection:
    """How ``collection`` was collected (its mode, conftest, folders left out), without what."""
    return dataclasses.replace(collection, ids=(), reason="", gap=False, notes=())


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
        # the candidate's installer cache: its harness's builds cannot reach another's
        cache = installer_cache(default_cache_root(), pin) if pin else None
        boxed = installer_box(
            Path(python).parent.parent, python, write=(tmp,), cache=cache, extra_env=extra_env
        )
        result = runner.run(argv, timeout=timeout, **boxed)
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


def render_ini(layout: TestLayout, pythonpath: Sequence[str] = ()) -> str:
    """Our own ini file: upstream's kept keys, never their ``addopts``; ``pythonpath`` as
    absolute paths (pytest reads it relative to the ini file, which is not beside the tests)."""
    lines = ["[pytest]", "junit_family = xunit1"]
    if pythonpath:
        lines.append("pythonpath =\n    " + "\n    ".join(pythonpath))
    for key, value in layout.config.ini.items():
        if isinstance(value, bool):
            value = str(value).lower()
        items = value if isinstance(value, (list, tuple)) else str(value).splitlines()
        body = "\n    ".join(str(v).strip() for v in items if str(v).strip())
        lines.append(f"{key} =\n    {body}" if len(items) > 1 else f"{key} = {body}")
    return "\n".join(lines) + "\n"


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
        self._python, self.dist_name, self.version = python, dist_name, version
        self.source = None if source is None else str(source)
        self.workdir, self.timeout = Path(workdir), timeout
        self.package_modules = tuple(package_modules) or (dist_name.replace("-", "_").lower(),)
        self.seed, self.sha256 = seed, sha256
        self.env = {**(extra_env or {}), "PYTEST_ADDOPTS": "", "PYTEST_PLUGINS": ""}
        self.run_dir = self.workdir / "run"
        self.meta_dir = self.workdir / "meta"
        self.notes: list[str] = []
        #: node id -> how the child's JUnit file contradicted what it announced (a forgery)
        self.tampered: dict[str, str] = {}
        self._layout: TestLayout | None = None
        self._src_root: Path | None = None
        self._harness: Harness | None = None
        self._paths: list[str] = []
        self._info: dict[str, Any] | None = None
        self._collected: Collection | None = None

    @property
    def python(self) -> str:
        return self._python

    @python.setter
    def python(self, python: str) -> None:
        """Another interpreter (an environment with the harness): forget what the old one saw."""
        self._python, self._info, self._collected = python, None, None

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
                    layout,
                    root=root.parent,
                    test_dirs=(root.name,),
                    test_files=(),
                    conftest=False,
                    support=(),
                    imported=(),
                )
            self.notes += layout.notes
            if self.run_dir.exists():
                shutil.rmtree(self.run_dir)
            self._paths = copy_tests(layout, self.run_dir)
            self.meta_dir.mkdir(parents=True, exist_ok=True)
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

    @property
    def box(self) -> sandbox.Box:
        """The box of upstream's tests: the candidate's environment read-only (in view as the
        interpreter's), only this run's folders (tests, outputs) writable."""
        return sandbox.Box("upstream", write=(str(self.workdir),))

    @property
    def pythonpath(self) -> list[str]:
        """What goes on ``sys.path`` for the tests: the copied folder when the tests import a
        sibling folder or upstream's pythonpath holds ``.``; the copied folders upstream's
        pythonpath names. Never the package source: it was not copied."""
        layout = self.layout
        paths = []
        if layout.imported or any(p.strip("/") in ("", ".") for p in layout.config.pythonpath):
            paths.append(str(self.run_dir))
        for entry in layout.config.pythonpath:
            path = self.run_dir / entry
            if entry.strip("./") and path.is_dir():
                paths.append(str(path))
        return list(dict.fromkeys(paths))

    def target_info(self) -> dict[str, Any]:
        """The target's Python version, pytest version, where its modules import from (with
        the tests' pythonpath) and which of upstream's ``-p`` plugins it has."""
        if self._info is None:
            ask = {
                "modules": list(self.package_modules),
                "plugins": [p for p in self.layout.config.plugins if not p.startswith("no:")],
                "path": self.pythonpath,
            }
            result = runner.run(
                [self.python, "-c", _TARGET_INFO, json.dumps(ask)],
                timeout=min(self.timeout, 60.0),
                cwd=self.run_dir,
                extra_env=self.env,
                box=self.box,
            )
            try:
                self._info = runner.last_json_line(result, "asking the target interpreter")
            except SpikeError:
                raise SpikeError(
                    f"cannot run {self.python!r} ({result.describe()}: {result.last_error_line()}); "
                    "check the candidate's interpreter"
                ) from None
        return self._info

    # -- collecting --------------------------------------------------------------------

    def pytest_argv(self, *args: str, how: Collection | None = None) -> list[str]:
        """The pytest command line in the target, collected or run the way ``how`` says."""
        how = how or Collection()
        info = self.target_info()
        safe_path = ["-P"] if tuple(info["python"]) >= (3, 11) else []
        config = self.layout.config
        ini = self.meta_dir / "pytest.ini"
        ini.write_text(render_ini(self.layout, self.pythonpath))
        argv = [
            self.python,
            *safe_path,
            "-m",
            "pytest",
            "-c",
            str(ini),
            "--rootdir",
            str(self.run_dir),
            f"--import-mode={how.mode}",
            *BASE_OPTIONS,
        ]
        available = info.get("plugins", {})
        for plugin in config.plugins:
            if plugin.startswith("no:") or available.get(plugin, True):
                argv += ["-p", plugin]
        if config.markexpr:
            argv += ["-m", config.markexpr]
        if how.noconftest:
            argv.append("--noconftest")
        for folder in how.ignored:
            argv.append(f"--ignore={folder}")
        return argv + list(args)

    def collect(
        self,
        keyword: str | None = None,
        paths: Sequence[str] | None = None,
        *,
        first: tuple[list[str], str] | None = None,
        collect_once: Callable[[list[str], Collection], tuple[list[str], str]] | None = None,
    ) -> Collection:
        """What collects (from ``paths`` in the copied tests, default all of them), and how:
        falls back to prepend mode, then leaves out folders whose conftest fails to import,
        then to ``--noconftest``. When nothing collects, the returned ``reason`` says why.
        ``first``: the first try's ids and output, when a child made it already;
        ``collect_once``: how each try collects (see ``Collector``)."""
        everything = keyword is None and paths is None
        if self._collected is not None and everything:
            return self._collected
        result = self._collector(collect_once).collect(keyword, paths, first=first)
        if everything:
            self._collected = result
        return result

    def _collector(
        self, collect_once: Callable[[list[str], Collection], tuple[list[str], str]] | None = None
    ) -> Collector:
        # layout first: reading it copies the tests and finds the sdist's root
        layout = self.layout
        return Collector(
            python=self.python,
            run_dir=self.run_dir,
            timeout=self.timeout,
            env=self.env,
            package_modules=self.package_modules,
            layout=layout,
            paths=self._paths,
            src_root=self._src_root,
            pytest_argv=self.pytest_argv,
            target_info=self.target_info,
            box=self.box,
            collect_once=collect_once,
        )

    def sample(self, n: int = DEFAULT_SAMPLE, keyword: str | None = None) -> list[str]:
        """A deterministic sample of ``n`` collected tests (seeded by ``seed``)."""
        return choose_sample(self.collect(keyword).ids, n, self.seed)

    # -- running -----------------------------------------------------------------------

    def run(
        self,
        nodeids: Sequence[str],
        how: Collection | None = None,
        *,
        rerun: bool = True,
        ran: tuple[dict[str, TestOutcome], float] | None = None,
    ) -> UpstreamResult:
        """Run the given node ids in one pytest process (the way ``how`` collected them,
        default: the full collection's way); outcomes come from JUnit XML. A failure or
        error that is not a harness gap is run once more, alone: one that passes then is
        ``flaky``. ``ran``: the outcomes and seconds of a run already made (see
        ``_collect_and_run``)."""
        how = how or self.collect()
        result = self._result("ran", how)
        result.sampled = list(nodeids)
        if not nodeids:
            return result
        outcomes, duration = ran or self._run_once(nodeids, how)
        again = [n for n in nodeids if outcomes[n].counts_against] if rerun else []
        if again:
            second, more = self._run_once(again, how)
            duration += more
            for nodeid in again:
                if second[nodeid].outcome == "passed":
                    first = outcomes[nodeid]
                    outcomes[nodeid] = TestOutcome("flaky", f"passed when run again; first: {first.message}")
        result.outcomes, result.duration_s = outcomes, duration
        result.tampered = dict(self.tampered)
        return result

    def _run_once(self, nodeids: Sequence[str], how: Collection) -> tuple[dict[str, TestOutcome], float]:
        """One pytest process over the files of ``nodeids``, keeping exactly those items: a
        node id named on the command line must be found by name, and classes a plugin makes
        while collecting (sqlalchemy's per-backend ones) are not."""
        chosen = self.meta_dir / "selected.txt"
        chosen.write_text("\n".join(nodeids) + "\n", encoding="utf-8")
        files = list(dict.fromkeys(n.split("::")[0] for n in nodeids))
        proc = self._pytest(how, files, _SELECT_PLUGIN, SPIKE_UPSTREAM_SELECT=str(chosen))
        return self._outcomes(proc, nodeids, how), proc.duration_s

    def _collect_and_run(
        self,
        head: Sequence[str] | None,
        n: int,
        how: Collection | None = None,
        paths: Sequence[str] | None = None,
    ) -> _OneChild:
        """Collect ``head``'s files (None: every test path; ``paths``: these arguments
        instead) the way ``how`` says and run the sample of what collected in one pytest
        process, where the usual way takes two (``collect``, then ``run``). When that
        collection is not clean, see ``_OneChild``: the caller collects the usual way, with
        its fallbacks, from the child's listing when it left one."""
        if not self.target_info().get("pytest"):
            return _OneChild("unclean")  # collect() says why
        plan, out = self.meta_dir / "plan.json", self.meta_dir / "collected.json"
        out.unlink(missing_ok=True)
        plan.write_text(
            json.dumps({"seed": self.seed, "n": n, "require": list(head or ()), "out": str(out)}),
            encoding="utf-8",
        )
        how = Collection() if how is None else how
        where = list(paths) if paths is not None else list(head or self._paths)
        proc = self._pytest(how, where, _PLAN_PLUGIN, SPIKE_UPSTREAM_PLAN=str(plan))
        if proc.timed_out:  # in the collection or in the sample's run: collected apart
            return _OneChild("unclean")
        try:
            seen = json.loads(out.read_text(encoding="utf-8"))
            listed, errors = [str(i) for i in seen["ids"]], int(seen["errors"])
            short, picked = bool(seen["short"]), [str(i) for i in seen["picked"]]
        except (OSError, ValueError, KeyError, TypeError):
            return _OneChild("unclean")
        collector = self._collector()
        if errors:
            # The witness pointed the child's stdout at stderr: pytest's listing is there.
            listing = collector.listed(proc.stderr.splitlines())
            return _OneChild("listed", listing=(listing, proc.stderr + "\n"))
        if short:
            return _OneChild("short")
        ids = collector.listed(listed)
        if not ids or picked != choose_sample(ids, n, self.seed):
            return _OneChild("unclean")
        found = dataclasses.replace(how, ids=tuple(ids), notes=collector.missing_plugin_notes())
        ran = (self._outcomes(proc, picked, found), proc.duration_s)
        return _OneChild("ran", found, tuple(picked), ran)

    def _pytest(self, how: Collection, paths: Sequence[str], plugin: str, **env: str) -> runner.RunResult:
        """The target's pytest over ``paths`` (the way ``how`` says) with ``plugin`` (one of
        ``_PLUGINS``), the witness and a JUnit file; ``env`` for the plugin."""
        xml = self.meta_dir / "junit.xml"
        xml.unlink(missing_ok=True)
        watching = witness.place_plugin(self.meta_dir)  # clears the folder's compiled copies
        (self.meta_dir / f"{plugin}.py").write_text(_PLUGINS[plugin])
        path = self.env.get("PYTHONPATH", os.environ.get("PYTHONPATH", ""))
        full_env = {
            **self.env,
            "PYTHONPATH": os.pathsep.join(p for p in (str(self.meta_dir), path) if p),
            **env,
        }
        return runner.run(
            self.pytest_argv("-p", watching, "-q", f"--junitxml={xml}", "-p", plugin, *paths, how=how),
            timeout=self.timeout,
            cwd=self.run_dir,
            extra_env=full_env,
            box=self.box,
        )

    def _outcomes(
        self, proc: runner.RunResult, nodeids: Sequence[str], how: Collection
    ) -> dict[str, TestOutcome]:
        """The outcome of each of ``nodeids`` in ``proc``'s run: the JUnit file, checked
        against what the child announced, and each failure judged (a harness gap or not)."""
        xml = self.meta_dir / "junit.xml"
        found = read_junit(xml) if xml.is_file() and not proc.timed_out else {}
        seen = witness.read_seen(proc.stdout)
        found.update(self._observed(found, nodeids, seen, complete=not proc.stdout_truncated))
        problem = proc.describe() if proc.timed_out else first_error_line(proc.stdout + proc.stderr)
        outcomes = {}
        for nodeid in nodeids:
            outcome = found.get(junit_key(nodeid)) or TestOutcome(
                "error", f"did not run: {problem or proc.describe()}"
            )
            if outcome.outcome in ("failed", "error"):
                gap = harness_gap(
                    outcome.message if outcome.message.startswith("did not run") else outcome.detail,
                    run_dir=self.run_dir,
                    src_root=self._src_root,
                    packages=self.package_modules,
                )
                if how.noconftest and not gap:
                    gap = "collected without its conftest (--noconftest): the fixtures and set-up it lost may cause this"
                outcome = dataclasses.replace(outcome, gap=gap)
            outcomes[nodeid] = outcome
        # Judged over the tests that ran and are not already the harness's (a set-up error).
        teardown = shared_teardown(
            [o.message for o in outcomes.values() if o.outcome != "skipped" and not o.gap]
        )
        if teardown:
            outcomes = {k: o if o.gap else dataclasses.replace(o, gap=teardown) for k, o in outcomes.items()}
        return outcomes

    def _observed(
        self,
        found: Mapping[tuple[str, str], TestOutcome],
        nodeids: Sequence[str],
        seen: witness.Seen | None,
        *,
        complete: bool,
    ) -> dict[tuple[str, str], TestOutcome]:
        """The outcomes the child announced where the JUnit file contradicts them (see
        ``_core.witness``), noted in ``tampered``; the file's own tests where it agrees."""
        if seen is None:
            return {}
        reported = {n: found[junit_key(n)].outcome for n in nodeids if junit_key(n) in found}
        wrong = witness.contradictions(seen, reported, complete=complete)
        self.tampered.update(wrong)
        observed = {}
        for nodeid in wrong:
            if nodeid in seen.outcomes:
                error = seen.errors.get(nodeid, "")
                observed[junit_key(nodeid)] = TestOutcome(seen.outcomes[nodeid], error, detail=error)
            elif junit_key(nodeid) in found:
                observed[junit_key(nodeid)] = TestOutcome("error", "did not run: never seen to finish")
        return observed

    def probe(
        self, n: int = DEFAULT_SAMPLE, *, install: bool = False, full_collection: bool = False
    ) -> UpstreamResult:
        """The whole probe: fetch, (install the harness), collect, sample, run. Only the
        ``n`` hash-chosen files are collected unless one of them yields nothing or
        ``full_collection`` is set; the sample is the same either way. Problems with the
        sdist become the result's status and reason, never an exception."""
        try:
            layout = self.layout
        except ArchiveTooLarge as exc:
            reason = f"the sdist is larger than pytest-spike unpacks ({exc}): not sampled"
            return self._result("none", reason=reason, gap=True)
        except UnsafeArchive as exc:
            return self._result("unsafe", reason=str(exc))
        except SpikeError as exc:
            return self._result("none", reason=str(exc), gap=True)
        if not layout.has_tests:
            return self._result("none", reason="the sdist has no tests", gap=True)
        if install:
            done = self.install_harness()
            if not done.ok:
                self.notes.append("installing the test harness failed: " + " | ".join(done.errors))
        files = self.test_files()
        head = sorted(files, key=lambda f: _hash_key(self.seed, f))[:n]
        if full_collection or len(head) == len(files):
            head = files  # every file: collected from the test folders, as upstream would
        try:
            self._check_origins()
            one = self._collect_and_run(None if head is files else head, n)
            if one.state == "short":
                # a chosen file gave nothing (named alone, it escapes collect_ignore too)
                head, one = files, self._collect_and_run(None, n)
            if one.state == "ran":
                found = one.found
                result = self.run(one.sample, found, ran=one.ran)
            else:  # collected the usual way, with its fallbacks
                tries: dict[Collection, _OneChild] = {}
                paths = None if head is files else head
                found = self.collect(
                    paths=paths, first=one.listing, collect_once=self._running(paths, n, tries)
                )
                if len({i.split("::")[0] for i in found.ids}) < len(head):
                    found, head = self.collect(), files
                if not found.ids:
                    return self._result("uncollectable", found, reason=found.reason, gap=found.gap)
                sample = choose_sample(found.ids, n, self.seed)
                ran = tries.get(_how(found))
                if ran is not None and ran.found.ids == found.ids and list(ran.sample) == sample:
                    result = self.run(sample, found, ran=ran.ran)  # the try that collected it ran it
                else:
                    result = self.run(sample, found)
        except SpikeError as exc:  # the target interpreter itself would not run
            return self._result("uncollectable", reason=str(exc), gap=True)
        result.collected = len(found.ids)
        result.collected_files = f"{len(head)} of {len(files)}"
        return result

    def _running(
        self, head: Sequence[str] | None, n: int, tries: dict[Collection, _OneChild]
    ) -> Callable[[list[str], Collection], tuple[list[str], str]]:
        """How each fallback try of the probe's collection collects: in one child with the
        sample's run (``_collect_and_run``), kept in ``tries`` by the way it collected. A
        clean try is the last one (the fallbacks only act on errors), so the probe takes
        its run when the collection it ends with is that try's and picks the same sample
        (tomlkit's tests need prepend mode: 3 child pytests instead of 4). A try that was not
        clean gives its listing as ``--collect-only -q`` would, or is collected that way."""

        def collect_once(extra: list[str], how: Collection) -> tuple[list[str], str]:
            if _how(how) == Collection():  # the first try's, which the probe made already
                return self._collector().collect_only(extra, how)
            one = self._collect_and_run(head, n, how, paths=extra)
            if one.state == "ran":
                tries[_how(how)] = one
                return list(one.found.ids), ""
            if one.listing is not None:  # collection errors: listed as --collect-only -q would
                return one.listing
            return self._collector().collect_only(extra, how)

        return collect_once

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
        """The copied test files pytest would collect by upstream's ``python_files`` (in the
        test folders only: support folders beside them are never sampled)."""
        _ = self.layout  # fetches and extracts the sdist once
        patterns = self.layout.config.python_files
        found: set[str] = set()
        for rel in self._paths:
            path = self.run_dir / rel
            for p in path.rglob("*.py") if path.is_dir() else [path]:
                if any(fnmatch.fnmatch(p.name, pat) for pat in patterns):
                    found.add(p.relative_to(self.run_dir).as_posix())
        return sorted(found)

    def _result(
        self, status: str, how: Collection | None = None, *, reason: str = "", gap: bool = False
    ) -> UpstreamResult:
        how = how or Collection()
        harness = None
        if self._src_root is not None:
            harness = self.harness
        return UpstreamResult(
            status=status,
            reason=reason,
            collected=len(how.ids),
            seed=self.seed,
            harness=harness,
            mode=how.label,
            low_confidence=how.noconftest,
            notes=list(dict.fromkeys([*self.notes, *how.notes])),
            gap=gap,
            tampered=dict(self.tampered),
        )
