"""The hook surface of an upgrade spike: gather this run's outcomes, then run the upgrade.

Registered by ``plugin.py`` only when an upgrade is asked for (``--spike-upgrade``, or ini
``spike_upgrades`` with ``--spike``), where results meet: a run without xdist or the xdist
controller (xdist replays every worker's reports and warnings there). This run's own
outcomes are the baseline; at the end of the session each target version's environment
is built and the same tests run there (:mod:`pytest_spike.upgrade.run`). The results are
kept in ``config.stash[UPGRADES]``: the spike controller puts them on its scorecard, and
without ``--spike`` this plugin writes ``--spike-json`` / ``--spike-md`` itself.
"""

from __future__ import annotations

import time
import warnings
from datetime import datetime, timezone
from functools import partial
from typing import Any

import pytest
from packaging.version import Version

from pytest_spike import __version__
from pytest_spike.model import Scorecard, SpikeError, UpgradeResult, current_cell
from pytest_spike.settings import Settings
from pytest_spike.upgrade.findings import SuiteRun

UPGRADES = pytest.StashKey["list[UpgradeResult]"]()


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

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if exitstatus in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.USAGE_ERROR):
            return
        self.baseline.duration_s = time.perf_counter() - self._start
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
        from pytest_spike.envs import layer
        from pytest_spike.envs.fit import project_requirements
        from pytest_spike.envs.inspection import host_python
        from pytest_spike.report.progress import terminal_progress
        from pytest_spike.services import Services
        from pytest_spike.upgrade.plan import Upgrade, plan_targets, project_install
        from pytest_spike.upgrade.run import Project, in_background, skipped_target, upgrade_target

        say = terminal_progress(self.config) if self.config.getoption("verbose") >= 0 else (lambda text: None)
        services = Services(self.settings, rootdir=self.config.rootpath, say=say)
        # the release's evidence is taken in a thread while the tests run: it says nothing
        quiet = Services(self.settings, rootdir=self.config.rootpath, say=lambda text: None)
        rootdir = self.config.rootpath
        # The layer is built while the index is asked and the first environment builds; what
        # its build says is said from here, after the run (the terminal is this thread's).
        heard: list[str] = []
        cache_dir = self.settings.cache_dir
        project = Project(
            rootdir=rootdir,
            inifile=self.config.inipath,
            requirements=project_requirements(self.settings.requirement_files, root=rootdir),
            install=project_install(rootdir),
            layer_build=in_background(
                lambda: layer.build_layer(cache_dir, heard.append), "spike-upgrade-layer"
            ),
            timeout=max(self.settings.probe_timeout, 4 * self.baseline.duration_s + 60),
        )
        found = []
        try:
            for text in self.settings.upgrades:
                upgrade = Upgrade.parse(text)
                python = host_python()
                planned = plan_targets(
                    services.index(),
                    upgrade,
                    self.settings.upgrade_versions,
                    python=python,
                    downgrades=self.settings.upgrade_downgrades,
                )
                versions, skipped = planned.versions, planned.skipped
                note = planned.older_note(upgrade)
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
                for version in versions:
                    result.targets.append(
                        upgrade_target(
                            upgrade, version, project, self.baseline, services.envs(), say, release
                        )
                    )
                result.targets += [skipped_target(upgrade, v, python, why) for v, why in skipped.items()]
                result.targets.sort(key=lambda t: Version(t.version))
                found.append(result)
            project.layer_build.result()  # a layer that could not be built is the run's error
        finally:
            services.close()
            quiet.close()
            for line in heard:
                say(line)
        return found

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
