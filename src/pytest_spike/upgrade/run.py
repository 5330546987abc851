"""The runs of an upgrade spike: the upgraded environment, the child pytest, the re-runs.

For each target version: resolve the project's requirements with the package moved (the
fit check's resolver, so the clash is named when there is no solution), build the
environment (cached like candidate environments), install the project the way it is
installed now, run the same tests there with a child pytest, re-run what flipped once on
both sides, and hand the runs to :func:`pytest_spike.upgrade.findings.diff`.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, TypeVar

import pytest

from pytest_spike._core import runner, sandbox, witness
from pytest_spike._core.files import json_object, json_objects, load_json_document
from pytest_spike.envs.fit import check_fit, describe_change, exact_pins
from pytest_spike.envs.manager import EnvManager, EnvResult, pip_command, tool_env, uv_index_args
from pytest_spike.model import (
    TAMPERED,
    Blame,
    CandidateResult,
    Finding,
    Level,
    Severity,
    SpikeError,
    UpgradeTarget,
)
from pytest_spike.upgrade import findings
from pytest_spike.upgrade._child import CHILD_ENV, OUT_ENV, PROGRESS_ENV, WANT_ENV
from pytest_spike.upgrade.findings import SuiteRun
from pytest_spike.upgrade.plan import Upgrade, without

# The child's entry point: add the layer (pytest and pytest-spike) after the environment's
# own packages, so the environment's pytest wins when it has one. Then the objects there are
# so far (the interpreter's, pytest's: none of the project's, whose code pytest imports
# later) are frozen out of the collector's passes, which otherwise walk them all again at
# each full pass. In a 500-test child: the full passes' time (gc.callbacks) fell from ~0.29
# to ~0.05 s, its CPU from 0.70 to 0.67 s (medians of 6, boxed, benchmark 6). The project's
# objects are collected as in its own run (a frozen cycle would never be, and
# gc.get_objects() leaves it out).
#
# Where the host's pytest keeps its rewritten test modules under a PYTHONPYCACHEPREFIX (see
# _rewritten), the child's pytest reads them there: the box keeps no prefix (the layer's and
# the environment's compiled modules lie beside their sources), and in the project, read-only
# in the box, it found none and rewrote every test module in every child (~0.5 s of a
# 500-test child, benchmark 6). Only pytest's rewriting looks there; a pytest of another
# version (the environment's own) finds no module of its tag there and rewrites as before.
_BOOT = """
import gc, os, site, sys
site.addsitedir(sys.argv[1])
import pytest
_kept = os.environ.get("PYTEST_SPIKE_REWRITTEN")
if _kept:
    from pathlib import Path
    from _pytest.assertion import rewrite
    if hasattr(rewrite, "get_cache_dir"):
        rewrite.get_cache_dir = lambda file_path: Path(_kept, *Path(file_path).parts[1:-1])
if hasattr(gc, "freeze"):
    gc.freeze()
sys.exit(pytest.main(sys.argv[2:]))
"""
#: Names the folder under which the host's pytest kept its rewritten test modules.
REWRITTEN_ENV = "PYTEST_SPIKE_REWRITTEN"
#: Warnings the child shows whatever the project's filters say, so deprecations are seen.
_WARNING_ARGS = (
    "-W",
    "default::DeprecationWarning",
    "-W",
    "default::PendingDeprecationWarning",
    "-W",
    "default::FutureWarning",
)
#: Bytes of the witness's stream allowed per test, beside its node id: an announcement is
#: about 75 bytes and a failure's first error line at most 300 characters more. The reader
#: keeps twice the cap (each end), so the stream of a suite of failures is kept whole.
_ANNOUNCED_PER_TEST = 256

_T = TypeVar("_T")


@dataclass
class Project:
    """The project whose tests an upgrade spike runs, and where."""

    rootdir: Path
    inifile: Path | None
    requirements: list[str]
    #: installer arguments that install the project as it is installed now (``-e DIR``)
    install: list[str]
    #: the child pytest's layer, built in the background while the first environment builds
    layer_build: Future[Path]
    timeout: float

    @property
    def layer(self) -> Path:
        """The layer, once built (its build's error is raised here: SpikeError)."""
        return self.layer_build.result()


def in_background(
    work: Callable[[], _T], name: str, threads: list[threading.Thread] | None = None
) -> Future[_T]:
    """``work()`` in a daemon thread (an interrupted run does not wait for it): its future.
    The thread is added to ``threads`` (to stop what it started, see
    :func:`pytest_spike._core.runner.stop_started_by`)."""
    done: Future[_T] = Future()

    def run() -> None:
        try:
            done.set_result(work())
        except BaseException as exc:  # handed to whoever asks for the result
            done.set_exception(exc)

    thread = threading.Thread(target=run, name=name, daemon=True)
    if threads is not None:
        threads.append(thread)
    thread.start()
    return done


#: Signals that say the code under test crashed the interpreter (not a kill from outside).
CRASH_SIGNALS = frozenset({"SIGSEGV", "SIGABRT", "SIGBUS", "SIGILL", "SIGFPE"})
#: Crashes after which the tests not yet run are given up (each crash costs a child run).
MAX_CRASHES = 3


def run_tests(python: str, project: Project, nodeids: Sequence[str], *, upgraded: bool = True) -> SuiteRun:
    """Run ``nodeids`` with a child pytest in ``python``; SpikeError when it reports nothing.

    A test that crashes the interpreter (a signal of :data:`CRASH_SIGNALS`) is an ``error``
    naming the crash, and the tests it kept from running run in a new child (at most
    :data:`MAX_CRASHES` crashes). In the ``upgraded`` environment the child gets no
    PYTHONPATH: it would put the running environment's packages, the old versions among
    them, in front of the new ones.
    """
    total = SuiteRun()
    remaining = list(nodeids)
    for _ in range(MAX_CRASHES + 1):
        run, crashed = _run_child(python, project, remaining, upgraded)
        total.absorb(run)
        remaining = [n for n in remaining if n not in total.outcomes and not total.collect_error(n)]
        if crashed is None or not remaining:
            return total
    for nodeid in remaining:
        total.outcomes[nodeid] = "error"
        total.errors[nodeid] = f"not run: the interpreter crashed in {MAX_CRASHES + 1} other tests first"
    return total


def _run_child(
    python: str, project: Project, nodeids: Sequence[str], upgraded: bool
) -> tuple[SuiteRun, str | None]:
    """One child pytest: (what it reported, the test that crashed it or None)."""
    files = list(dict.fromkeys(nodeid.split("::")[0] for nodeid in nodeids))
    with tempfile.TemporaryDirectory(prefix="spike-upgrade-") as tmp:
        out, want, progress = Path(tmp) / "outcomes.json", Path(tmp) / "want.json", Path(tmp) / "progress"
        want.write_text(json.dumps(list(nodeids)), "utf-8")
        config = ["-c", str(project.inifile)] if project.inifile else []
        argv = [
            python,
            "-c",
            _BOOT,
            str(project.layer),
            "-p",
            witness.PLUGIN,
            "-p",
            "pytest_spike.upgrade._child",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(project.rootdir),
            *config,
            *_WARNING_ARGS,
            "-q",
            *files,
        ]
        extra = {
            "PYTEST_ADDOPTS": "",
            CHILD_ENV: "1",
            OUT_ENV: str(out),
            WANT_ENV: str(want),
            PROGRESS_ENV: str(progress),
        }
        kept = _rewritten(project.rootdir)
        if kept:
            extra[REWRITTEN_ENV] = str(sys.pycache_prefix)
        env = tool_env() if upgraded else None
        # The upgraded release's code runs here: the project read-only (without .git and
        # secrets files), the layer and the project's rewritten tests read-only, only this
        # run's outputs writable.
        box = sandbox.Box(
            "tests", read=(str(project.layer), *kept), write=(tmp,), project=str(project.rootdir)
        )
        done = runner.run(
            argv,
            timeout=project.timeout,
            cwd=project.rootdir,
            env=env,
            extra_env=extra,
            box=box,
            cap=_stream_cap(nodeids),
        )
        seen = witness.read_seen(done.stdout)
        if out.is_file():
            data = load_json_document(out, f"outcomes of the child pytest in {python}", json_object)
            return _observed(SuiteRun.from_dict(data), seen, done, "the upgrade child's outcomes"), None
        if _finished(seen, done):
            # The session wrote the file (an error there ends pytest with status 3): code
            # that ran after it removed it. No file is a file that leaves every test out.
            return _observed(SuiteRun(), seen, done, "the upgrade child's outcomes (the file is gone)"), None
        crash = _crash_line(done, project.rootdir)
        if _signal_name(done) not in CRASH_SIGNALS:
            raise SpikeError(f"the child pytest wrote no outcomes ({done.describe()}): {crash} ({python})")
        return _crashed_run(progress, nodeids, f"the interpreter crashed ({done.describe()}): {crash}")


def _stream_cap(nodeids: Sequence[str]) -> int:
    """The output cap of a child running ``nodeids``: large enough that the output cap never
    cuts the witness's stream (a cut stream is checked only for what it still shows)."""
    return max(runner.OUTPUT_CAP, sum(_ANNOUNCED_PER_TEST + len(n) for n in nodeids))


def _rewritten(rootdir: Path) -> tuple[str, ...]:
    """The folder under this process's ``sys.pycache_prefix`` that mirrors ``rootdir``, where
    its pytest kept the project's rewritten test modules (compiled forms of files the child
    reads anyway), when there is one; else nothing."""
    prefix = getattr(sys, "pycache_prefix", None)
    if not prefix:
        return ()
    mirror = Path(prefix, *Path(os.path.abspath(rootdir)).parts[1:])
    return (str(mirror),) if mirror.is_dir() else ()


def _finished(seen: witness.Seen | None, done: runner.RunResult) -> bool:
    """True when the child announced every test it collected finished, its whole stream was
    read and pytest ended as it does after a session (tests passed or failed)."""
    return (
        seen is not None
        and bool(seen.outcomes)
        and len(seen.outcomes) == seen.collected
        and done.returncode in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED)
        and not done.stdout_truncated
    )


def _observed(run: SuiteRun, seen: witness.Seen | None, done: runner.RunResult, results: str) -> SuiteRun:
    """``run`` (what the outcomes file says, named ``results``) where it agrees with what the
    child announced; where it contradicts it, the announced outcomes and ``spike.tampered``
    (see ``_core.witness``). A test the file reports but that was never seen to finish did
    not run."""
    if seen is None:
        return run
    wrong = witness.contradictions(seen, run.outcomes, complete=not done.stdout_truncated)
    if not wrong:
        return run
    run.tampered.append(witness.tampered_finding(wrong, seen, results))
    for nodeid in wrong:
        outcome = seen.outcomes.get(nodeid)
        run.outcomes[nodeid] = outcome or "error"
        error = seen.errors.get(nodeid, "") if outcome else "did not run: never seen to finish"
        run.errors.pop(nodeid, None)
        if outcome != "passed":
            run.errors[nodeid] = error
    return run


def _signal_name(done: runner.RunResult) -> str:
    try:
        return signal.Signals(done.signal).name if done.signal else ""
    except ValueError:
        return ""


def _crashed_run(progress: Path, nodeids: Sequence[str], why: str) -> tuple[SuiteRun, str | None]:
    """What a crashed child's progress file tells: the tests done before the crash, and the one
    it was running (an ``error`` naming the crash); crashed while collecting: every test is."""
    run = SuiteRun()
    started: str | None = None
    lines = progress.read_text("utf-8").splitlines() if progress.is_file() else []
    for event in json_objects(lines):  # the line the crash cut short is left out
        if "collect_error" in event:
            run.collect_errors[str(event["collect_error"])] = str(event.get("error", ""))
        elif "start" in event:
            started = str(event["start"])
        elif "done" in event:
            nodeid = str(event["done"])
            run.outcomes[nodeid] = str(event.get("outcome", "passed"))
            if event.get("error"):
                run.errors[nodeid] = str(event["error"])
            started = None if started == nodeid else started
    if started is None:
        # no test was running: it crashed while collecting (or between tests)
        for nodeid in nodeids:
            if nodeid not in run.outcomes:
                run.outcomes[nodeid] = "error"
                run.errors[nodeid] = f"{why} (while collecting)"
        return run, None
    run.outcomes[started] = "error"
    run.errors[started] = why
    return run, started


def _crash_line(done: runner.RunResult, rootdir: Path) -> str:
    """What ended a child that wrote nothing: faulthandler's fatal error and the innermost
    frame in the project (the test that was running), else its last error line."""
    lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
    fatal = next((line for line in lines if line.startswith("Fatal Python error:")), "")
    frames = (re.match(r'File "(.+)", line (\d+) in (.+)', line) for line in lines)
    frame = next((f for f in frames if f and Path(f[1]).is_relative_to(rootdir)), None)
    where = f"in {Path(frame[1]).relative_to(rootdir)}, line {frame[2]} in {frame[3]}" if frame else ""
    return " ".join(part for part in (fatal, where) if part) or done.last_error_line() or "no output"


#: The release's own evidence of a target version, given the upgraded environment if built.
ReleaseEvidence = Callable[[str, Optional[EnvResult]], Optional[CandidateResult]]


@dataclass
class Built:
    """A target version whose environment was built (or could not be): what
    :func:`finish_target` needs to run the tests there. Built ahead, while the baseline
    runs, so the suite starts as soon as the baseline ends."""

    target: UpgradeTarget
    env: EnvResult | None
    #: when the build started (``time.monotonic()``): the target's duration counts from it
    started: float


@dataclass
class EarlySuite:
    """A target's suite run while the baseline still ran (``--spike-upgrade-overlap``)."""

    #: the node ids it runs (the session's collected items)
    nodeids: list[str]
    done: Future[SuiteRun] = field(default_factory=Future)
    #: when its child started (``time.monotonic()``), None until then
    started: float | None = None
    #: stops the child it runs (see :meth:`pytest_spike.upgrade.ahead.Ahead.stop_suites`)
    stop: Callable[[], None] = lambda: None


def build_target(
    upgrade: Upgrade, version: str, project: Project, envs: EnvManager, say: Callable[[str], None]
) -> Built:
    """The environment of one target version, with the project installed; a failure to
    build is a finding in the target (see :func:`_build`). Then :func:`finish_target`."""
    start = time.monotonic()
    target = UpgradeTarget(version, moved=[describe_change(upgrade.package, upgrade.current, version)])
    return Built(target, _build(target, upgrade, project, envs, say), start)


def finish_target(
    built: Built,
    upgrade: Upgrade,
    project: Project,
    baseline: SuiteRun,
    say: Callable[[str], None],
    release: ReleaseEvidence | None = None,
    early: EarlySuite | None = None,
) -> UpgradeTarget:
    """Run, re-run and diff in the built environment; the release's own evidence
    (``release``) is taken meanwhile, in the background, and the target's level reaches its
    level at least. ``early``: the suite, run while the baseline ran (--spike-upgrade-overlap)."""
    target, env = built.target, built.env
    evidence = _Background(release) if release is not None else None
    if env is not None and env.ok and not target.findings:  # every failure above is a finding
        _suite(target, upgrade, env, project, baseline, say, evidence, early)
    if evidence is not None:
        say(f"upgrade: the release's own evidence on {upgrade.package} {target.version}")
        target.release = evidence.result(target.version, env)
        if target.release is not None and target.release.level.rank > target.level.rank:
            target.level = target.release.level
    target.duration_s = time.monotonic() - built.started
    return target


class _Background:
    """The release's own evidence, taken in a thread while the child pytest runs: both wait
    on subprocesses. Its progress lines are the quiet services' (none), so the terminal's
    lines stay whole."""

    def __init__(self, release: ReleaseEvidence) -> None:
        self.release = release
        self.future: Future[CandidateResult | None] | None = None

    def start(self, version: str, env: EnvResult | None) -> None:
        self.future = in_background(lambda: self.release(version, env), "spike-upgrade-release")

    def result(self, version: str, env: EnvResult | None) -> CandidateResult | None:
        """The evidence (taken now, when it was not started in the background)."""
        if self.future is None:
            return self.release(version, env)
        return self.future.result()


def _build(
    target: UpgradeTarget, upgrade: Upgrade, project: Project, envs: EnvManager, say: Callable[[str], None]
) -> EnvResult | None:
    """The upgraded environment, with the project installed; None or a failed one with the
    finding in ``target`` when it cannot be had.

    The project's requirements with the package moved are installed as they are; only when
    that fails does the fit check resolve them with the pins it names relaxed, to tell a
    clash (``upgrade.unresolvable``) from what else has to move (``numpy 1.26.4 -> 2.1.3``).
    """
    version = target.version
    others = without(project.requirements, upgrade.package)
    moved_req = f"{upgrade.package}=={version}"
    say(f"upgrade: building the environment for {moved_req} and the project's {len(others)} requirements")
    env = envs.ensure([moved_req, *others])
    if not env.ok:
        say(f"upgrade: resolving {moved_req} with the project's requirements, what they pin may move")
        _, details = check_fit(
            envs.python,
            moved_req,
            others,
            project.timeout,
            constraints=False,
            backend=envs.backend,
            cache_root=envs.cache_dir.parent,
        )
        resolved: dict[str, str] = details.get("resolved") or {}
        if not resolved and details.get("fits") is False:
            why, clashing = details["explanation"], details["clashing"]  # the fit check's reading
            target.findings.append(findings.unresolvable(upgrade.package, version, why, clashing))
            _done(target, Level.BLOCKED, False)
            return None
        if resolved:
            pins = exact_pins(others)
            target.moved += [
                describe_change(name, old, resolved[name])
                for name, old in pins.items()
                if resolved.get(name, old) != old
            ]
            again = [moved_req] + [f"{n}=={v}" for n, v in sorted(resolved.items()) if n != upgrade.package]
            env = envs.ensure(again)
        # else no solution that names none of the project's requirements (the index could
        # not be reached, the release does not build): not a clash; the build's error says it
    target.env = env.path
    if not env.ok:
        blame = Blame.ENVIRONMENT if env.not_candidate else Blame.CANDIDATE
        target.findings.append(
            Finding(
                "upgrade.install_failed",
                Severity.INFO if env.not_candidate else Severity.HIGH,
                f"{moved_req} could not be installed with the project ({env.backend}): {env.error_line}",
                {"resolver": env.error},
                blame=blame,
            )
        )
        _done(target, Level.HIGH if not env.not_candidate else Level.LOW, None)
        return env
    if project.install:
        installed = _install_project(env.python, project, envs)
        if installed:
            target.findings.append(
                _unchecked(f"the project could not be installed in the new environment: {installed}")
            )
            _done(target, Level.LOW, None)
    return env


def _suite(
    target: UpgradeTarget,
    upgrade: Upgrade,
    env: EnvResult,
    project: Project,
    baseline: SuiteRun,
    say: Callable[[str], None],
    evidence: _Background | None,
    early: EarlySuite | None = None,
) -> None:
    """Run the tests in ``env`` (the release's evidence meanwhile), re-run what flipped, and
    put the diff in ``target``. A suite run ``early`` is taken when it ran exactly the
    tests the baseline did, within the time limit the baseline's time sets."""
    moved_req = f"{upgrade.package}=={target.version}"
    wanted = list(baseline.outcomes)
    try:
        if evidence is not None:
            evidence.start(target.version, env)
        after = _early_outcomes(early, wanted, project, moved_req, say) if early is not None else None
        if after is None:
            say(f"upgrade: running {len(wanted)} tests on {moved_req}")
            after = run_tests(env.python, project, wanted)
        flips = findings.flipped(baseline, after)
        rerun_before = rerun_after = None
        if flips:
            say(f"upgrade: re-running {len(flips)} flipped tests on both sides")
            rerun_before = run_tests(sys.executable, project, flips, upgraded=False)
            rerun_after = run_tests(env.python, project, flips)
    except SpikeError as exc:
        target.findings.append(_unchecked(str(exc)))
        _done(target, Level.LOW, None)
        return
    result = findings.diff(upgrade.package, target.version, baseline, after, rerun_before, rerun_after)
    target.findings += result.findings
    target.compared, target.broken = result.compared, len(result.broken)
    # A release that forged its outcomes is not one the suite "passes on", whatever ran.
    forged = any(f.code == TAMPERED and not f.unchecked for f in result.findings)
    _done(target, result.level, not result.broken and not forged)


#: How long a suite run early is waited for once it was stopped at its time limit.
_STOPPED_WAIT_S = 10.0


def _early_outcomes(
    early: EarlySuite, wanted: Sequence[str], project: Project, moved_req: str, say: Callable[[str], None]
) -> SuiteRun | None:
    """The outcomes of the suite run early, or None (then it runs now): it ran other tests
    than the baseline did (``-x`` stopped the baseline, a test was deselected late). Held to
    the time limit the baseline's time sets (``project.timeout``, from the child's start):
    past it, the child is stopped and SpikeError says so, as a child run now would."""
    if set(early.nodeids) != set(wanted):
        _stopped(early)
        say(f"upgrade: the suite run early on {moved_req} ran other tests than this run: running them again")
        return None
    say(f"upgrade: {len(wanted)} tests on {moved_req}, started while this run's tests ran")
    while not early.done.done():
        # from its child's start, as a child started now would be timed (None: not started yet)
        left = (early.started or time.monotonic()) + project.timeout - time.monotonic()
        if left <= 0:
            _stopped(early)
            raise SpikeError(f"the child pytest ran past its time limit ({project.timeout:.0f}s)")
        wait([early.done], timeout=min(left, 0.1))
    return early.done.result()


def _stopped(early: EarlySuite) -> None:
    """Stop the suite run early, its child and any it starts next (a crashed child's tests
    run in a new one), until it ends (at most :data:`_STOPPED_WAIT_S`)."""
    end = time.monotonic() + _STOPPED_WAIT_S
    while not early.done.done() and time.monotonic() < end:
        early.stop()
        wait([early.done], timeout=0.05)


def skipped_target(upgrade: Upgrade, version: str, python: str, why: str) -> UpgradeTarget:
    """A target version this run's Python cannot install (its requires-python): unknown, never passed."""
    message = (
        f"{upgrade.package} {version} was not tried: {why}; run the upgrade spike on a Python it "
        "supports to know whether your tests pass on it"
    )
    finding = Finding("upgrade.skipped", Severity.INFO, message, {"python": python}, blame=Blame.ENVIRONMENT)
    return UpgradeTarget(
        version, moved=[describe_change(upgrade.package, upgrade.current, version)], findings=[finding]
    )


def _done(target: UpgradeTarget, level: Level, passes: bool | None) -> None:
    target.level, target.passes = level, passes


def _unchecked(message: str) -> Finding:
    return Finding("upgrade.unchecked", Severity.INFO, message, blame=Blame.SPIKE)


def _install_project(python: str, project: Project, envs: EnvManager) -> str:
    """Install the project into the new environment as it is installed now; "" or the error."""
    if envs.uv is not None:
        argv = [
            envs.uv,
            "pip",
            "install",
            "--python",
            python,
            "--no-deps",
            *uv_index_args(),
            *project.install,
        ]
    else:
        argv = [*pip_command(python), "install", "--no-deps", "--disable-pip-version-check", *project.install]
    done = runner.run(argv, timeout=project.timeout, env=tool_env())
    return "" if done.ok else done.last_error_line() or done.describe()
