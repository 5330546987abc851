"""The side of a spike run that gathers, scores and reports: once per run, on the controller.

Registered by ``plugin.py`` in a run without xdist and on the xdist controller (never on a
worker, never with ``--collect-only``). It reads each probe's result off its test report
(``report.spike_probe``, see ``worker.py``), builds the scorecard with
:func:`pytest_spike.scoring.build_scorecard` when the session ends, writes the results
files and prints the scorecard in the terminal summary.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

import pytest

from pytest_spike import __version__, kinds
from pytest_spike.model import (
    YOUNG_RELEASE_DAYS,
    Candidate,
    CandidateResult,
    Finding,
    Level,
    ProbeResult,
    Scorecard,
    current_cell,
)
from pytest_spike.report import terminal
from pytest_spike.report.formats import write_reports
from pytest_spike.report.view import ReportView
from pytest_spike.scoring import build_scorecard
from pytest_spike.settings import Settings


class PluginHooks:
    """The scoring hooks of hookspec.py, as :class:`pytest_spike.scoring.ScoringHooks`."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def add_findings(self, result: CandidateResult) -> Iterable[Iterable[Finding] | None]:
        answers: list[Iterable[Finding] | None] = self.config.hook.pytest_spike_add_findings(
            result=result, config=self.config
        )
        return answers

    def weight(self, finding: Finding) -> float | None:
        points: float | None = self.config.hook.pytest_spike_weight(finding=finding, config=self.config)
        return points

    def level(self, result: CandidateResult) -> Level | None:
        level: Level | None = self.config.hook.pytest_spike_level(result=result, config=self.config)
        return level


class SpikeController:
    """Gathers every probe's result, then scores, writes and prints them once."""

    def __init__(self, config: pytest.Config, settings: Settings, *, distributed: bool = False) -> None:
        self.config = config
        self.settings = settings
        #: on the xdist controller, which collects nothing: the workers' usage errors are lost
        self.distributed = distributed
        self.probes: dict[str, ProbeResult] = {}
        self.known: dict[str, Candidate] = {}
        self.order: dict[str, int] = {}
        self.collect_errors = 0
        #: probes that got to an outcome: a passed setup whose call never reported was interrupted
        self.finished: set[str] = set()
        self.scorecard: Scorecard | None = None
        self.written: list[str] = []
        self.write_errors: list[str] = []
        self.started = datetime.now(timezone.utc)

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """Under xdist, refuse a misspelt ``--spike-candidate`` here, before the workers start:
        raised on a worker, the usage error would end in "no candidates" and exit 0."""
        if not self.distributed or not self.settings.candidates:
            return
        from pytest_spike.index.names import check_candidates
        from pytest_spike.marks import candidate_from_values
        from pytest_spike.model import SpikeError
        from pytest_spike.services import INDEX_CACHE, index_client

        try:
            declared = [
                (candidate_from_values(req, where=f"--spike-candidate {req!r}"), f"--spike-candidate {req!r}")
                for req in self.settings.candidates
            ]
        except SpikeError as exc:
            raise pytest.UsageError(str(exc)) from None
        settings = self.settings
        check = check_candidates(
            declared,
            lambda: index_client(
                settings.index_url, cache_dir=settings.cache_dir / INDEX_CACHE, offline=settings.offline
            ),
            isolation=settings.isolation,
        )
        if check.errors:
            raise pytest.UsageError("\n".join(check.errors))

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.collect_errors += 1

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        raw = getattr(report, "spike_probe", None)
        if raw is None:
            return
        payload = json.loads(raw)
        candidate = Candidate.from_dict(payload["candidate"])
        self.known.setdefault(candidate.name, candidate)
        self.order.setdefault(candidate.name, payload["order"])
        fresh = ProbeResult.from_dict(payload["probe"])
        known = self.probes.get(report.nodeid)
        if known is not None:
            fresh.duration_s = known.duration_s
            fresh.outcome = known.outcome
        fresh.duration_s += report.duration
        fresh.outcome = _merge_outcome(fresh.outcome if known else "passed", report)
        if report.when == "call" or not report.passed:
            self.finished.add(report.nodeid)
        if report.skipped and "unknown" not in fresh.details and isinstance(report.longrepr, tuple):
            # a skipped test holds no evidence: keep why, for the scorecard's coverage line
            fresh.details["unknown"] = str(report.longrepr[2]).removeprefix("Skipped: ")
        self.probes[report.nodeid] = fresh

    def _never_ran(self, exitstatus: int) -> bool:
        """Whether the session stopped before its tests: a usage or collection error says why, alone."""
        if exitstatus == pytest.ExitCode.USAGE_ERROR:
            return True
        stopped_by_collection = not self.config.getoption("continue_on_collection_errors", False)
        return exitstatus == pytest.ExitCode.INTERRUPTED and self.collect_errors > 0 and stopped_by_collection

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self._never_ran(exitstatus):
            return
        self.scorecard = self._scorecard(complete=exitstatus != pytest.ExitCode.INTERRUPTED)
        from pytest_spike.upgrade.stash import UPGRADES  # set by the upgrade plugin, if any

        self.scorecard.upgrades = self.config.stash.get(UPGRADES, [])
        self.config.hook.pytest_spike_scorecard(scorecard=self.scorecard, config=self.config)
        done = write_reports(ReportView(self.scorecard), self.settings.reports, step_summary=True)
        self.written, self.write_errors = done.lines, done.errors
        if self.settings.keep_envs:
            self.written += [f"spike environment: {line}" for line in _environments(self.scorecard)]
        if self.write_errors:
            session.exitstatus = pytest.ExitCode.USAGE_ERROR
        fail_on = self.settings.fail_on
        if fail_on and self.scorecard.reaching(fail_on) and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def _scorecard(self, complete: bool) -> Scorecard:
        candidates = sorted(self.known.values(), key=lambda c: self.order.get(c.name, 1 << 30))
        by_name: dict[str, list[ProbeResult]] = {c.name: [] for c in candidates}
        for nodeid, probe in self.probes.items():
            if nodeid not in self.finished:
                _interrupted(probe)
            by_name[probe.candidate].append(probe)
        gathered = [(c, by_name[c.name]) for c in candidates]
        cell = current_cell()
        if self.settings.cell:
            cell["id"] = self.settings.cell
        return build_scorecard(
            gathered,
            weights=self.settings.weights,
            timebox=self.settings.timebox,
            cost=self.settings.cost,
            hooks=PluginHooks(self.config),
            complete=complete,
            cell=cell,
            plugin_version=__version__,
            created=self.started.isoformat(timespec="seconds"),
            fail_on=self.settings.fail_on,
            waivers=self.settings.waivers,
            settings=verdict_settings(self.settings),
        )

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.scorecard is None:
            return
        terminal.write_scorecard(terminalreporter, self.scorecard, self.written, self.write_errors)


def verdict_settings(settings: Settings) -> dict[str, Any]:
    """The rules a verdict used, recorded in the results so a reader can check every point."""
    from pytest_spike.scoring import LEVEL_THRESHOLDS, Weights

    weights = settings.weights or Weights()
    return {
        "stale_after_days": settings.stale_after_days,
        "young_release_days": YOUNG_RELEASE_DAYS,
        "level_thresholds": {level.value: points for level, points in LEVEL_THRESHOLDS.items()},
        "weights": {
            "severity": {severity.value: points for severity, points in weights.severity.items()},
            "codes": dict(weights.codes),
        },
        "waivers": [str(w) for w in settings.waivers],
        "allow_network": settings.allow_network,
        "sandbox": sandbox_line(),
        "upstream_sample": settings.upstream_sample,
        "upstream_seed": settings.upstream_seed,
        "probes": list(settings.probes),
    }


def sandbox_line() -> str:
    """'sandboxed (bubblewrap)' or 'not sandboxed: why; candidate code ran as you'."""
    from pytest_spike._core import sandbox

    return sandbox.status().describe()


def _environments(scorecard: Scorecard) -> list[str]:
    """Where each candidate's environment is (for --spike-keep-envs)."""
    lines = []
    for result in scorecard.candidates:
        for probe in result.probes:
            kind = kinds.find(probe.kind)
            if kind is not None and kind.locates_environment:
                where = probe.details.get("env") or (
                    f"the running environment ({probe.details.get('python')})"
                    if probe.details.get("installed")
                    else "none (not installed)"
                )
                lines.append(f"{result.name}: {where}")
    return lines


def _interrupted(probe: ProbeResult) -> None:
    """A probe stopped in its call (Ctrl-C, SIGTERM) is unknown: never passed, never evidence."""
    probe.outcome = "skipped"
    probe.findings = []
    probe.details = {"unknown": "interrupted before it finished", "interrupted": True}


def _merge_outcome(previous: str, report: pytest.TestReport) -> str:
    if report.skipped:
        return "skipped" if previous == "passed" else previous
    if report.failed:
        return "failed" if report.when == "call" else "error"
    return previous
