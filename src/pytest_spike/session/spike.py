"""The hooks of a spike run (``--spike``): built-in items, running, reports, the scorecard.

Registered by ``plugin.py`` only when spike mode is on, so a test run without ``--spike``
imports none of this. Probe results travel on test reports as JSON strings
(``report.spike_probe``), so they survive pytest-xdist; scoring and printing happen once,
on the controller.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from collections.abc import Generator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import pytest

from pytest_spike import __version__
from pytest_spike._core.files import write_atomic
from pytest_spike._core.interrupt import sigterm_as_interrupt
from pytest_spike._core.runner import peak_rss_mb
from pytest_spike.data.budgets import TimeboxExceeded, alarm, budget_findings, timebox_finding
from pytest_spike.data.folder import data_findings
from pytest_spike.envs import layer
from pytest_spike.envs.manager import EnvManager
from pytest_spike.fixtures import DATA_USED, SpikeRecorder
from pytest_spike.index.client import IndexClient
from pytest_spike.marks import CANDIDATE_KEY as _CANDIDATE
from pytest_spike.marks import KIND_KEY as _KIND
from pytest_spike.marks import candidate_from_values
from pytest_spike.model import (
    BUILTIN_KINDS,
    Candidate,
    CandidateResult,
    Finding,
    ProbeResult,
    Scorecard,
    Severity,
    SpikeError,
    current_cell,
)
from pytest_spike.probes.base import ProbeContext
from pytest_spike.probes.items import ProbeItem, make_items
from pytest_spike.report import results, terminal
from pytest_spike.scoring import level_for, score
from pytest_spike.settings import Settings

PLAN_SCHEMA = "pytest-spike-plan/1"
#: Severity of a failing user test, by its probe kind.
USER_FAILURE_SEVERITY = {
    "hello_world": Severity.HIGH,
    "real_data": Severity.HIGH,
    "upstream": Severity.MEDIUM,
    "custom": Severity.MEDIUM,
}

_FINDINGS = pytest.StashKey["list[Finding]"]()
_PEAK = pytest.StashKey[float]()
#: What a child pytest in the candidate's environment reported for this test.
_CHILD = pytest.StashKey[ProbeResult]()
_LONGREPR = pytest.StashKey[str]()
#: Seconds left in the candidate's time box when the test started; whether the box cut it.
_REMAINING = pytest.StashKey[float]()
_TIMEBOX = pytest.StashKey[bool]()
#: Characters of a failing user test's report kept in the results (for child runs too).
MAX_LONGREPR = 4000


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


class SpikeSession:
    """Per-run state and the hooks that need it (registered as ``spike-session``)."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.candidates: list[Candidate] = []
        self.probes: dict[str, ProbeResult] = {}
        self.order: dict[str, int] = {}
        self.scorecard: Scorecard | None = None
        self.memo: dict[Any, Any] = {}
        self.known: dict[str, Candidate] = {}
        self.user_nodeids: dict[str, list[str]] = {}
        #: wall time each candidate's probes took in this process, for its time box
        self.spent: dict[str, float] = {}
        self.workdir: Path | None = None
        self.written: list[str] = []
        self.write_errors: list[str] = []
        self.started = datetime.now(timezone.utc)
        self._restore_sigterm: Callable[[], None] = lambda: None

    # -- collection ---------------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        spike_items = [item for item in items if _CANDIDATE in item.stash]
        try:
            self.candidates = self._gather(spike_items)
        except SpikeError as exc:
            raise pytest.UsageError(str(exc)) from None
        keep = {c.name for c in self.candidates}
        for item in spike_items:
            self.user_nodeids.setdefault(item.stash[_CANDIDATE].name, []).append(item.nodeid)
        deselected = [item for item in spike_items if item.stash[_CANDIDATE].name not in keep]
        if deselected:
            config.hook.pytest_deselected(items=deselected)
            gone = set(map(id, deselected))
            items[:] = [item for item in items if id(item) not in gone]
        if self.settings.plan_path is not None:
            self._write_plan(spike_items)
        items[:0] = list(make_items(session, self.candidates, self._context, self.settings.probes))
        self.order = {c.name: i for i, c in enumerate(self.candidates)}

    def pytest_report_collectionfinish(self, config: pytest.Config) -> list[str]:
        if not self.settings.enabled:
            return []
        names = ", ".join(c.name for c in self.candidates) or "none"
        count = len(self.candidates)
        return [
            f"spike: {count} candidate{'s' if count != 1 else ''} ({names}); "
            "built-in probes added as spike::<name>::<probe>"
        ]

    def _gather(self, spike_items: list[pytest.Item]) -> list[Candidate]:
        """Candidates of the collected tests, then of --spike-candidate, filtered by --spike-select."""
        found: dict[str, tuple[Candidate, str]] = {}
        for item in spike_items:
            cand = item.stash[_CANDIDATE]
            first = found.setdefault(cand.name, (cand, item.nodeid))
            if first[0] != cand:
                raise SpikeError(
                    f"candidate {cand.name!r} is declared twice with different settings: "
                    f"{first[1]} has {_describe(first[0])}, {item.nodeid} has {_describe(cand)}; "
                    "declare it once (e.g. in the module's pytestmark)"
                )
        for req in self.settings.candidates:
            cand = candidate_from_values(req, where=f"--spike-candidate {req!r}")
            found.setdefault(cand.name, (cand, "--spike-candidate"))  # a file's own declaration wins
        selected = self.settings.select
        if selected:
            from packaging.utils import canonicalize_name

            wanted = {canonicalize_name(s) for s in selected}
            unknown = sorted(wanted - set(found))
            if unknown:
                raise SpikeError(
                    f"--spike-select {', '.join(unknown)} matches no candidate "
                    f"(candidates: {', '.join(found) or 'none'})"
                )
            found = {name: v for name, v in found.items() if name in wanted}
        return [cand for cand, _ in found.values()]

    def _write_plan(self, spike_items: list[pytest.Item]) -> None:
        """The marks are the plan: candidates, their versions and Pythons, and their tests."""
        tests: dict[str, list[str]] = {c.name: [] for c in self.candidates}
        for item in spike_items:
            tests.get(item.stash[_CANDIDATE].name, []).append(item.nodeid)
        versions = self.settings.versions_default
        plan = {
            "schema": PLAN_SCHEMA,
            "rootdir": str(self.config.rootpath),
            "inifile": str(self.config.inipath) if self.config.inipath else None,
            "defaults": {
                "python": list(self.settings.python_default),
                "versions": list(versions) if isinstance(versions, tuple) else versions,
            },
            "candidates": [dict(c.to_dict(), tests=tests[c.name]) for c in self.candidates],
        }
        assert self.settings.plan_path is not None
        try:
            write_atomic(self.settings.plan_path, json.dumps(plan, indent=2) + "\n")
        except OSError as exc:
            raise pytest.UsageError(
                f"--spike-plan: cannot write {self.settings.plan_path}: {exc.strerror or exc}"
            ) from None

    def _timebox(self, candidate: Candidate) -> float:
        return candidate.timebox or self.settings.timebox  # the mark wins over options and ini

    def _remaining(self, candidate: Candidate) -> float:
        return self._timebox(candidate) - self.spent.get(candidate.name, 0.0)

    def _context(self, candidate: Candidate) -> ProbeContext:
        return ProbeContext(
            candidate=candidate,
            host_python=sys.executable,
            timeout=max(1.0, min(self.settings.probe_timeout, self._remaining(candidate))),
            workdir=self._workdir(),
            memo=self.memo,
            index_factory=self._index_client,
            env_factory=self._env_manager,
            isolation=self.settings.isolation,
            backend=self.settings.backend,
            stale_after_days=self.settings.stale_after_days,
            requirement_files=self.settings.requirement_files,
            rootdir=self.config.rootpath,
            upstream_sample=self.settings.upstream_sample,
            upstream_seed=self.settings.upstream_seed,
            cache_dir=self.settings.cache_dir,
            say=self._say,
        )

    def _env_manager(self) -> EnvManager:
        try:
            return EnvManager(
                self.settings.cache_dir / "envs",
                fresh=self.settings.fresh,
                backend=self.settings.backend,
                progress=self._say,
            )
        except SpikeError as exc:
            raise SpikeError(f"--spike-backend: {exc}") from None

    def _say(self, text: str) -> None:
        """Show a long step while it runs; quiet under -q, and on xdist workers."""
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None or _is_worker(self.config) or self.config.getoption("verbose") < 0:
            return
        capture = self.config.pluginmanager.get_plugin("capturemanager")
        if capture is None:
            reporter.write_line(f"spike: {text}")
            return
        # The probe runs inside a test, where output is captured; this is for the user now.
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"spike: {text}")

    def _index_client(self) -> IndexClient:
        return IndexClient(
            self.settings.index_url,
            cache_dir=self.settings.cache_dir / "index",
            offline=self.settings.offline,
        )

    def _workdir(self) -> Path:
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="pytest-spike-"))
        return self.workdir

    def pytest_unconfigure(self) -> None:
        self._restore_sigterm()  # also when the session never reached its finish
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # -- running ------------------------------------------------------------------------

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        if self.settings.enabled:
            # CI cancels with SIGTERM: stop like Ctrl-C, so probes are killed and the
            # results written so far are marked incomplete instead of never written.
            self._restore_sigterm = sigterm_as_interrupt()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(
        self, item: pytest.Item, nextitem: pytest.Item | None
    ) -> Generator[None, Any, Any]:
        candidate = _candidate(item) if self.settings.enabled else None
        if candidate is None:
            return (yield)
        start = time.monotonic()
        try:
            return (yield)
        finally:
            self.spent[candidate.name] = self.spent.get(candidate.name, 0.0) + time.monotonic() - start

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        candidate = _candidate(item) if self.settings.enabled else None
        if candidate is None:
            return
        remaining = item.stash[_REMAINING] = self._remaining(candidate)
        if remaining <= 0:
            item.stash[_TIMEBOX] = True
            pytest.skip(f"{candidate.name}'s time box of {self._timebox(candidate):g}s is used up")

    @pytest.hookimpl(tryfirst=True)
    def pytest_pyfunc_call(self, pyfuncitem: pytest.Function) -> bool | None:
        """Run the test in its candidate's own environment when the candidate lives there."""
        if not self.settings.enabled or _CANDIDATE not in pyfuncitem.stash:
            return None
        candidate = pyfuncitem.stash[_CANDIDATE]
        target = self._context(candidate).target()
        if not target.isolated:
            return None
        if target.python is None:
            pytest.skip(f"{candidate.project} could not be installed: see spike::{candidate.name}::install")
        outcome = self._child_results(candidate, target.python)
        if isinstance(outcome, str):
            pytest.fail(outcome, pytrace=False)
        result = outcome.get(pyfuncitem.nodeid)
        if result is None:
            pytest.fail(f"the child pytest in {target.python} did not report this test", pytrace=False)
        pyfuncitem.stash[_CHILD] = result
        headline = result.findings[0].message if result.findings else result.outcome
        text = f"{headline} (in {candidate.project}'s environment: {target.python})"
        if result.details.get("longrepr"):
            text += "\n" + str(result.details["longrepr"])
        if result.outcome == "skipped":
            pytest.skip(text)
        if result.outcome != "passed":
            pytest.fail(text, pytrace=False)
        return True

    def _child_results(self, candidate: Candidate, python: str) -> dict[str, ProbeResult] | str:
        """Run all of the candidate's tests once in its environment (per process)."""

        def run() -> dict[str, ProbeResult] | str:
            root = self.config.rootpath
            nodeids = [
                str(root / n.split("::", 1)[0]) + n[len(n.split("::", 1)[0]) :]
                for n in self.user_nodeids.get(candidate.name, [])
            ]
            args = [
                "--spike",
                "--spike-probes=none",
                "--spike-isolation=never",
                "-p",
                "no:cacheprovider",
                "-q",
                "-o",
                "addopts=",
                "--rootdir",
                str(root),
                "--spike-probe-timeout",
                str(self.settings.probe_timeout),
            ]
            if self.config.inipath:
                args += ["-c", str(self.config.inipath)]
            if self.settings.data:
                args += ["--spike-data", str(self.settings.data[0])]
            try:
                layer_dir = layer.build_layer(self.settings.cache_dir)
                found = layer.run_child(
                    python,
                    layer_dir,
                    nodeids,
                    args,
                    cwd=self.config.invocation_params.dir,
                    timeout=candidate.timebox or self.settings.probe_timeout * max(1, len(nodeids)),
                )
            except SpikeError as exc:
                return str(exc)
            return found  # node ids are relative to the rootdir, the same as here

        key = ("child", candidate.name)
        if key not in self.memo:
            self.memo[key] = run()
        result: dict[str, ProbeResult] | str = self.memo[key]
        return result

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, Any, Any]:
        if _CANDIDATE not in item.stash:
            return (yield)
        before = peak_rss_mb()
        candidate = item.stash[_CANDIDATE]
        message = f"{candidate.name}'s time box of {self._timebox(candidate):g}s ran out during this test"
        try:
            with alarm(item.stash.get(_REMAINING, self._remaining(candidate)), message):
                return (yield)
        finally:
            item.stash[_PEAK] = max(0.0, peak_rss_mb() - before)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if report.when == "call" and _REMAINING in item.stash and call.duration >= item.stash[_REMAINING]:
            item.stash[_TIMEBOX] = True  # the time box ended this probe, whatever it reported
        if isinstance(item, ProbeItem):
            if report.skipped and isinstance(report.longrepr, tuple):
                # Point the skip at the probe item, not at the line of ours that raised it.
                report.longrepr = (item.nodeid, None, report.longrepr[2])
            payload = self._builtin_payload(item)
        elif _CANDIDATE in item.stash and self.settings.enabled:
            payload = self._user_payload(item, call, report)
        else:
            return report
        report.spike_probe = json.dumps(payload)  # type: ignore[attr-defined]
        return report

    def _builtin_payload(self, item: ProbeItem) -> dict[str, Any]:
        outcome = getattr(item, "outcome", None)
        probe = ProbeResult(candidate=item.candidate.name, kind=item.kind, nodeid=item.nodeid)
        if outcome is not None:
            probe.findings = list(outcome.findings)
            probe.details = outcome.details
            probe.version = outcome.version
            probe.peak_memory_mb = outcome.peak_memory_mb
        if item.stash.get(_TIMEBOX, False):
            probe.details["timebox"] = True
        return self._payload(item.candidate, probe)

    def _user_payload(
        self, item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport
    ) -> dict[str, Any]:
        candidate, kind = item.stash[_CANDIDATE], item.stash[_KIND]
        findings = item.stash.setdefault(_FINDINGS, [])
        recorder = SpikeRecorder.of(item)
        remote = item.stash.get(_CHILD, None)
        if remote is not None and report.when == "call":
            # The test ran in the candidate's environment: its findings, metrics and notes
            # come from there, not from the failure we re-raised here.
            findings[:] = remote.findings
            recorder.metrics.update(remote.metrics)
            recorder.notes.extend(n for n in remote.notes if n not in recorder.notes)
        elif (
            report.failed
            and call.excinfo is not None
            and not hasattr(report, "wasxfail")
            and not call.excinfo.errisinstance(TimeboxExceeded)  # timebox.exceeded says it
        ):
            error = call.excinfo.exconly().strip().splitlines()
            first = error[0] if error else call.excinfo.typename
            if report.when == "call":
                code, severity, what = f"{kind}.failed", USER_FAILURE_SEVERITY[kind], "failed"
            else:
                code, severity, what = f"{kind}.error", Severity.MEDIUM, f"errored in {report.when}"
            finding = Finding(
                code,
                severity,
                f"{item.name} {what}: {first}",
                {"nodeid": item.nodeid, "excerpt": "\n".join(error[-5:])[:800]},
            )
            data = item.stash.get(DATA_USED, None)
            if kind == "real_data" and report.when == "call" and data and data.current_record:
                # Name the record the test failed on, as the team would when checking by hand.
                finding = data_findings(True, item.nodeid, first, data.current_record)[0]
            findings.append(finding)
            if report.when == "call":
                item.stash[_LONGREPR] = str(report.longrepr)[-MAX_LONGREPR:]
        data = item.stash.get(DATA_USED, None)
        if data is not None and data.profile_notes:
            recorder.notes.extend(n for n in data.profile_notes if n not in recorder.notes)
        probe = ProbeResult(
            candidate=candidate.name,
            kind=kind,
            nodeid=item.nodeid,
            version=remote.version if remote else _installed_version(candidate),
            findings=list(findings),
            peak_memory_mb=remote.peak_memory_mb if remote else item.stash.get(_PEAK, None),
            metrics=dict(recorder.metrics),
            notes=list(recorder.notes),
        )
        if _LONGREPR in item.stash:
            probe.details["longrepr"] = item.stash[_LONGREPR]
        if item.stash.get(_TIMEBOX, False):
            probe.details["timebox"] = True
        return self._payload(candidate, probe)

    def _payload(self, candidate: Candidate, probe: ProbeResult) -> dict[str, Any]:
        return {
            "candidate": candidate.to_dict(),
            "order": self.order.get(candidate.name, len(self.order)),
            "probe": probe.to_dict(),
        }

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        raw = getattr(report, "spike_probe", None)
        if raw is None or _is_worker(self.config):
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
        self.probes[report.nodeid] = fresh

    # -- the end ------------------------------------------------------------------------

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        self._restore_sigterm()  # a SIGTERM from here on ends the process; writes are atomic
        if not self.settings.enabled or _is_worker(self.config) or self.config.option.collectonly:
            return
        self.scorecard = self._build_scorecard(complete=exitstatus != pytest.ExitCode.INTERRUPTED)
        self.config.hook.pytest_spike_scorecard(scorecard=self.scorecard, config=self.config)
        self.written, self.write_errors = results.write_outputs(self.scorecard, self.settings)
        if self.settings.keep_envs:
            self.written += [f"spike environment: {line}" for line in _environments(self.scorecard)]
        if self.write_errors:
            session.exitstatus = pytest.ExitCode.USAGE_ERROR
        fail_on = self.settings.fail_on
        if fail_on and self.scorecard.reaching(fail_on) and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def _build_scorecard(self, complete: bool) -> Scorecard:
        by_name: dict[str, CandidateResult] = {}
        for cand in sorted(self.known.values(), key=lambda c: self.order.get(c.name, 1 << 30)):
            by_name[cand.name] = CandidateResult(candidate=cand)
        for probe in sorted(self.probes.values(), key=lambda p: p.nodeid):
            result = by_name.get(probe.candidate)
            if result is None:
                continue
            result.probes.append(probe)
            if probe.version and (result.version is None or probe.kind == "install"):
                result.version = probe.version
        hook = self.config.hook
        for result in by_name.values():
            pairs = [(f, p.nodeid) for p in result.probes for f in p.findings]
            pairs += [
                (f, p.nodeid)
                for p in result.probes
                if p.kind not in BUILTIN_KINDS
                for f in budget_findings(result.candidate, p)
            ]
            boxed = timebox_finding(result.candidate, self._timebox(result.candidate), result.probes)
            if boxed is not None:
                pairs.append((boxed, None))
            if self.settings.cost is not None:
                rate = self.settings.cost
                result.cost = {
                    "seconds": round(result.duration_s, 3),
                    "per_hour": rate.per_hour,
                    "currency": rate.currency,
                    "amount": round(rate.cost(result.duration_s), 6),
                    "text": f"{rate.format(rate.cost(result.duration_s))} for "
                    f"{result.duration_s:.1f}s of compute at {rate.format(rate.per_hour)}/h",
                }
            for extra in hook.pytest_spike_add_findings(result=result, config=self.config):
                pairs += [(f, None) for f in extra or ()]
            result.scored = score(pairs, lambda f: self._points(f))
            result.score = sum(s.points for s in result.scored)
            level = hook.pytest_spike_level(result=result, config=self.config)
            result.level = level if level is not None else level_for(result.score, result.findings)
        cell = current_cell()
        if self.settings.cell:
            cell["id"] = self.settings.cell
        return Scorecard(
            cell=cell,
            candidates=list(by_name.values()),
            complete=complete,
            plugin_version=__version__,
            created=self.started.isoformat(timespec="seconds"),
            fail_on=self.settings.fail_on,
        )

    def _points(self, finding: Finding) -> float:
        override = self.config.hook.pytest_spike_weight(finding=finding, config=self.config)
        return float(override) if override is not None else self.settings.weights.points(finding)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.scorecard is None:
            return
        terminal.write_scorecard(terminalreporter, self.scorecard, self.written, self.write_errors)


def _candidate(item: pytest.Item) -> Candidate | None:
    """The candidate a probe item or a user test belongs to."""
    if isinstance(item, ProbeItem):
        return item.candidate
    return item.stash.get(_CANDIDATE, None)


def _environments(scorecard: Scorecard) -> list[str]:
    """Where each candidate's environment is (for --spike-keep-envs)."""
    lines = []
    for result in scorecard.candidates:
        for probe in result.probes:
            if probe.kind == "install":
                where = probe.details.get("env") or (
                    f"the running environment ({probe.details.get('python')})"
                    if probe.details.get("installed")
                    else "none (not installed)"
                )
                lines.append(f"{result.name}: {where}")
    return lines


def _merge_outcome(previous: str, report: pytest.TestReport) -> str:
    if report.skipped:
        return "skipped" if previous == "passed" else previous
    if report.failed:
        return "failed" if report.when == "call" else "error"
    return previous


def _describe(candidate: Candidate) -> str:
    data = candidate.to_dict()
    return ", ".join(f"{k}={v!r}" for k, v in data.items() if v not in (None, [], "") and k != "name")


def _installed_version(candidate: Candidate) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(candidate.project)
    except metadata.PackageNotFoundError:
        return None
