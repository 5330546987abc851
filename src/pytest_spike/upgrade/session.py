"""The hook surface of an upgrade spike: gather this run's outcomes, then run the upgrade.

Registered by ``plugin.py`` only when an upgrade is asked for (``--spike-upgrade``, or ini
``spike_upgrades`` with ``--spike``), where results meet: a run without xdist or the xdist
controller (xdist replays every worker's reports and warnings there). This run's own
outcomes are the baseline. Each target version's environment is built while it runs,
from the session's start (:mod:`pytest_spike.upgrade.ahead`), and at the end of the
session the same tests run there (:mod:`pytest_spike.upgrade.run`). The results are
kept in ``config.stash[UPGRADES]`` (:mod:`pytest_spike.upgrade.stash`): the spike
controller puts them on its scorecard, and without ``--spike`` this plugin writes
``--spike-json`` / ``--spike-md`` itself.
"""

from __future__ import annotations

import sys
import time
import warnings
from datetime import datetime, timezone
from functools import partial
from typing import Any

import pytest
from packaging.version import Version

from pytest_spike import __version__
from pytest_spike._core import timeline
from pytest_spike.envs.inspection import host_python
from pytest_spike.model import Scorecard, SpikeError, UpgradeResult, current_cell
from pytest_spike.services import Services
from pytest_spike.settings import Settings
from pytest_spike.upgrade.ahead import Ahead, Planned, Relay
from pytest_spike.upgrade.findings import SuiteRun
from pytest_spike.upgrade.run import Project, finish_target, skipped_target
from pytest_spike.upgrade.stash import UPGRADES

#: How often the interpreter switches threads while this run's tests run beside an upgrade's
#: builds (Python's default: every 5 ms); restored when the tests end. A building thread
#: gives up the interpreter lock at each of its ~500 system calls a boxed step and, while a
#: test computes, waited up to the whole interval to take it back: beside a CPU-bound suite
#: of ~0.85 s the environment was built at 0.94 s, switching every 0.5 ms at 0.58 s, the
#: suite's own time the same (medians of five runs each in turn).
BUILD_SWITCH_S = 0.0005


def suite_limit(probe_timeout: float, baseline_s: float) -> float:
    """A child pytest's time limit on a new version: it follows the baseline's time (four
    times it, and a minute), and is never below ``--spike-probe-timeout``."""
    return max(probe_timeout, 4 * baseline_s + 60)


class SpikeUpgrade:
    """Gathers this run's outcomes and warnings; runs and reports the upgrade spikes."""

    def __init__(self, config: pytest.Config, settings: Settings, *, writes_results: bool) -> None:
        self.config = config
        self.settings = settings
        self.writes_results = writes_results
        self.baseline = SuiteRun()
        self.results: list[UpgradeResult] = []
        self.errors: list[str] = []
        self.written: list[str] = []
        #: what the plan left out that a reader must know (downgrades not asked for)
        self.notes: list[str] = []
        self.started = datetime.now(timezone.utc)
        self._start = time.perf_counter()
        self._epoch = time.time()  # the baseline's start on the timeline (PYTEST_SPIKE_TIMELINE)
        #: what was started with the session (None before, and once the upgrade has run)
        self._ahead: Ahead | None = None
        #: the switch interval the tests ran with before the builds started (None: restored)
        self._switch: float | None = None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if getattr(report, "spike_probe", None) is not None or report.nodeid.startswith("spike::"):
            return  # the spike's own probes are not the project's tests
        outcomes = self.baseline.outcomes
        before = outcomes.get(report.nodeid, "passed")
        if report.failed:
            outcomes[report.nodeid] = "failed" if report.when == "call" else "error"
        elif report.skipped and before == "passed":
            outcomes[report.nodeid] = "skipped"
        else:
            outcomes.setdefault(report.nodeid, "passed")

    def pytest_warning_recorded(self, warning_message: warnings.WarningMessage, nodeid: str) -> None:
        text = str(warning_message.message)
        self.baseline.warnings.append(
            {"category": warning_message.category.__name__, "message": text.splitlines()[0] if text else ""}
        )

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        # The targets, their environments and the layer need no baseline: made while it runs.
        self._ahead = self._start_ahead()
        self._switch = sys.getswitchinterval()
        if self._switch > BUILD_SWITCH_S:
            sys.setswitchinterval(BUILD_SWITCH_S)

    def _restore_switch(self) -> None:
        if self._switch is not None:
            sys.setswitchinterval(self._switch)
            self._switch = None

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self._restore_switch()  # a session that never finished

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """With --spike-upgrade-overlap: each target's suite starts once its environment is
        built, while this run's tests run (in the box: each its own files and ports).
        Not under xdist (its controller collects nothing), nor for a run with spike tests."""
        if not self.settings.upgrade_overlap or self._ahead is None or not session.items:
            return
        from pytest_spike._core import sandbox
        from pytest_spike.marks import CANDIDATE_MARK

        why = ""
        if any(
            item.nodeid.startswith("spike::") or item.get_closest_marker(CANDIDATE_MARK)
            for item in session.items
        ):
            why = "with --spike or spike tests in the run"
        elif not sandbox.status().boxed:
            why = "without the box (bubblewrap), two suites could meet in /tmp, ports and files"
        if why:
            self.notes.append(
                f"spike upgrade: --spike-upgrade-overlap is off {why}: the suites ran after this run's tests"
            )
            return
        self._ahead.start_suites([item.nodeid for item in session.items])

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        self._restore_switch()
        if exitstatus in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.USAGE_ERROR):
            if self._ahead is not None:
                self._ahead.close(abandon=True)
                self._ahead = None
            return
        self.baseline.duration_s = time.perf_counter() - self._start
        timeline.record("upgrade-baseline", self._epoch, time.time(), tests=len(self.baseline.outcomes))
        try:
            self.results = self._run()
        except SpikeError as exc:
            self.errors.append(f"spike upgrade: {exc}")
            session.exitstatus = pytest.ExitCode.USAGE_ERROR
            return
        self.config.stash[UPGRADES] = self.results
        if self.writes_results:
            from pytest_spike.report.formats import write_reports
            from pytest_spike.report.view import ReportView

            scorecard = Scorecard(
                cell=current_cell(),
                candidates=[],
                plugin_version=__version__,
                created=self.started.isoformat(timespec="seconds"),
                fail_on=self.settings.fail_on,
                upgrades=self.results,
                settings={"sandbox": _sandbox_line()},
            )
            done = write_reports(ReportView(scorecard), self.settings.reports, step_summary=True)
            self.written = done.lines
            self.errors += done.errors
        fail_on = self.settings.fail_on
        reached = fail_on is not None and any(u.reaching(fail_on) for u in self.results)
        if reached and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def _run(self) -> list[UpgradeResult]:
        ahead = self._ahead if self._ahead is not None else self._start_ahead()
        self._ahead = None
        # the release's evidence is taken in a thread while the tests run: it says nothing
        quiet = Services(self.settings, rootdir=self.config.rootpath, say=lambda text: None)
        try:
            project = ahead.relay.wait(ahead.project_ready)
            project.timeout = suite_limit(self.settings.probe_timeout, self.baseline.duration_s)
            plans = ahead.relay.wait(ahead.plans)
            found = [self._upgrade(plan, project, quiet, ahead) for plan in plans]
            ahead.relay.wait(project.layer_build)  # a layer that could not be built is the run's error
        except BaseException:
            ahead.close(abandon=True)
            raise
        finally:
            quiet.close()
        ahead.close()
        return found

    def _upgrade(self, plan: Planned, project: Project, quiet: Services, ahead: Ahead) -> UpgradeResult:
        """One ``--spike-upgrade``: each target's suite (its environment built ahead, its
        suite maybe run already: --spike-upgrade-overlap)."""
        say = ahead.relay
        upgrade = plan.upgrade
        note = plan.targets.older_note(upgrade)
        if note:
            self.notes.append(f"spike upgrade: {note}")
            say(f"spike upgrade: {note}")
        result = UpgradeResult(
            upgrade.requirement,
            upgrade.package,
            upgrade.current,
            baseline={
                "source": "this run",
                "tests": len(self.baseline.outcomes),
                "passed": sum(o == "passed" for o in self.baseline.outcomes.values()),
                "duration_s": round(self.baseline.duration_s, 3),
            },
        )
        release = partial(
            _release_evidence,
            upgrade.package,
            settings=self.settings,
            services=quiet,
            current=upgrade.current,
        )
        for version, building in plan.builds:
            built = say.wait(building)
            early = ahead.claim_suite(upgrade.requirement, version)
            result.targets.append(finish_target(built, upgrade, project, self.baseline, say, release, early))
        python = host_python()
        result.targets += [skipped_target(upgrade, v, python, why) for v, why in plan.targets.skipped.items()]
        result.targets.sort(key=lambda t: Version(t.version))
        return result

    def _start_ahead(self) -> Ahead:
        """Start what needs no baseline: the targets, their environments, the layer."""
        from pytest_spike.report.progress import terminal_progress

        config = self.config
        say = terminal_progress(config) if config.getoption("verbose") >= 0 else (lambda text: None)
        return Ahead(self.settings, config.rootpath, config.inipath, Relay(say))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        from pytest_spike.report.terminal import output_width, upgrade_lines

        if not self.results and not self.errors:
            return
        terminalreporter.write_sep("=", "spike upgrade")
        for text, markup in upgrade_lines(self.results, output_width()):
            terminalreporter.write_line(text, **markup)
        for line in self.notes:
            terminalreporter.write_line(line, yellow=True)
        if self.results:
            said = _sandbox_line()
            terminalreporter.write_line(f"candidate code: {said}", yellow=said.startswith("not"))
        for line in self.written:
            terminalreporter.write_line(line)
        for line in self.errors:
            terminalreporter.write_line(line, red=True, bold=True)


def _sandbox_line() -> str:
    """'sandboxed (bubblewrap)' or 'not sandboxed: why...', as every report says it."""
    from pytest_spike._core import sandbox

    return sandbox.status().describe()


def _release_evidence(package: str, version: str, upgraded: Any, **kwargs: Any) -> Any:
    """:func:`pytest_spike.upgrade.release.release_evidence`, imported where it runs (in the
    background, while the tests run: it imports every probe)."""
    from pytest_spike.upgrade.release import release_evidence

    return release_evidence(package, version, upgraded, **kwargs)
