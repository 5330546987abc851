"""The side of a spike run that collects and runs: candidates, probe items, time boxes, payloads.

Registered by ``plugin.py`` where tests are collected and run: in a run without xdist and
on each xdist worker (never on the xdist controller, which runs nothing). Each probe's
result leaves this process as a JSON string on its test report (``report.spike_probe``),
so it survives xdist; ``controller.py`` gathers them.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Generator
from typing import Any, Callable

import pytest

from pytest_spike._core import behaviour
from pytest_spike._core.files import write_atomic
from pytest_spike._core.runner import peak_rss_mb
from pytest_spike.data.budgets import TimeboxExceeded, alarm
from pytest_spike.data.folder import data_findings
from pytest_spike.fixtures import DATA_USED, SpikeRecorder
from pytest_spike.marks import CANDIDATE_KEY as _CANDIDATE
from pytest_spike.marks import KIND_KEY as _KIND
from pytest_spike.marks import candidate_from_values
from pytest_spike.model import Blame, Candidate, Finding, ProbeResult, Severity, SpikeError
from pytest_spike.probes import evidence
from pytest_spike.probes.base import ProbeContext, ProbeMemo
from pytest_spike.probes.items import ProbeItem, ahead_key, make_items
from pytest_spike.services import Services
from pytest_spike.session.prebuild import Prebuild
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
#: What the candidate's code tried in the child pytest (on the first of its tests to report).
_BEHAVIOUR = pytest.StashKey[dict[str, Any]]()
_LONGREPR = pytest.StashKey[str]()
#: Seconds left in the candidate's time box when the test started; whether the box cut it.
_REMAINING = pytest.StashKey[float]()
_TIMEBOX = pytest.StashKey[bool]()
#: Characters of a failing user test's report kept in the results (for child runs too).
MAX_LONGREPR = 4000


class SpikeWorker:
    """Collects the candidates, adds their probe items and runs them in their time boxes.

    ``services`` (index client, environments, work folder) and ``memo`` are this process's;
    ``say`` is quiet on xdist workers and under ``-q``.
    """

    def __init__(self, config: pytest.Config, settings: Settings, services: Services) -> None:
        self.config = config
        self.settings = settings
        self.services = services
        # A probe waiting for a background build shows that build's progress meanwhile.
        self.memo = ProbeMemo(on_wait=services.flush)
        self.prebuild: Prebuild | None = None
        #: evidence the probes took in this run, kept when the session ends uninterrupted
        self.to_keep: list[tuple[Candidate, str, str, evidence.Evidence]] = []
        #: None until collected, and when the candidates could not be gathered
        self.candidates: list[Candidate] | None = None
        self.order: dict[str, int] = {}
        self.user_nodeids: dict[str, list[str]] = {}
        #: wall time each candidate's probes took in this process, for its time box
        self.spent: dict[str, float] = {}
        self._spent_lock = threading.Lock()  # the prebuild's threads charge probes run ahead
        #: one line per candidate the package index could not be asked about
        self.unchecked: tuple[str, ...] = ()
        #: what each candidate's child pytest reported, by node id, or why it could not run
        self._child: dict[str, dict[str, ProbeResult] | str] = {}
        #: What the candidate's code tried in its child pytest, until a test of it reports it.
        self._child_behaviour: dict[str, list[behaviour.Behaviour]] = {}

    # -- collection ---------------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        spike_items = [item for item in items if _CANDIDATE in item.stash]
        try:
            candidates = gather_candidates(spike_items, self.settings)
        except SpikeError as exc:
            raise pytest.UsageError(str(exc)) from None
        self.candidates = candidates
        keep = {c.name for c in candidates}
        for item in spike_items:
            self.user_nodeids.setdefault(item.stash[_CANDIDATE].name, []).append(item.nodeid)
        # on an xdist worker a usage error would be lost: the controller checks (controller.py)
        if not config.getoption("collectonly") and not hasattr(config, "workerinput"):
            self.unchecked = self._check_names(candidates)
        deselected = [item for item in spike_items if item.stash[_CANDIDATE].name not in keep]
        if deselected:
            config.hook.pytest_deselected(items=deselected)
            gone = set(map(id, deselected))
            items[:] = [item for item in items if id(item) not in gone]
        if self.settings.plan_path is not None:
            self._write_plan(spike_items, candidates)
        probes = list(make_items(session, candidates, self.context, self.settings.probes))
        items[:0] = probes
        if probes:
            # Count them where pytest counts collected items ("collected N items"): they
            # come from no collector, so report them as the result of the "spike" node's.
            config.hook.pytest_collectreport(
                report=pytest.CollectReport("spike", "passed", None, list(probes))
            )
        self.order = {c.name: i for i, c in enumerate(candidates)}

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Get the candidates ready at once, and run their probes side by side (see
        prebuild.py), for the items this session will run (after ``-k``, ``--lf``...)."""
        candidates = self.candidates or []
        if not candidates or not self.settings.probes or self.config.getoption("collectonly"):
            return
        ahead: dict[str, list[str]] = {}
        wanted: set[str] = set()
        for item in session.items:
            if isinstance(item, ProbeItem):
                wanted.add(item.candidate.name)
                ahead.setdefault(item.candidate.name, []).append(item.kind)
            elif _CANDIDATE in item.stash:
                wanted.add(item.stash[_CANDIDATE].name)
        if hasattr(self.config, "workerinput"):
            ahead.clear()  # an xdist worker runs only the items it is sent
        self.prebuild = Prebuild(
            self.context, self.settings.probes, ahead=ahead, remaining=self._remaining, charge=self._charge
        )
        self.prebuild.start([c for c in candidates if c.name in wanted])

    def pytest_report_collectionfinish(self, config: pytest.Config, items: list[pytest.Item]) -> list[str]:
        if self.candidates is None:
            return []  # a usage error says what went wrong, alone
        names = ", ".join(c.name for c in self.candidates) or "none"
        count = len(self.candidates)
        probes = sum(isinstance(item, ProbeItem) for item in items)
        return [
            f"spike: {count} candidate{'s' if count != 1 else ''} ({names}); "
            f"{probes} built-in probe{'s' if probes != 1 else ''} added as spike::<name>::<probe>"
        ] + [f"spike: {line}" for line in self.unchecked]

    def _check_names(self, candidates: list[Candidate]) -> tuple[str, ...]:
        """Refuse a misspelt candidate or a version never released, before anything runs; the
        names an unreachable index left unchecked (said, never called misspellings)."""
        from pytest_spike.index.names import check_candidates

        declared = []
        for cand in candidates:
            nodeids = self.user_nodeids.get(cand.name)
            where = (
                f"{nodeids[0]}: candidate {cand.requirement!r}"
                if nodeids
                else f"--spike-candidate {cand.requirement!r}"
            )
            declared.append((cand, where))
        check = check_candidates(declared, self.services.index, isolation=self.settings.isolation)
        if check.errors:
            raise pytest.UsageError("\n".join(check.errors))
        return check.unchecked

    def _write_plan(self, spike_items: list[pytest.Item], candidates: list[Candidate]) -> None:
        """The marks are the plan: candidates, their versions and Pythons, and their tests."""
        tests: dict[str, list[str]] = {c.name: [] for c in candidates}
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
            "candidates": [dict(c.to_dict(), tests=tests[c.name]) for c in candidates],
        }
        assert self.settings.plan_path is not None
        try:
            write_atomic(self.settings.plan_path, json.dumps(plan, indent=2) + "\n")
        except OSError as exc:
            raise pytest.UsageError(
                f"--spike-plan: cannot write {self.settings.plan_path}: {exc.strerror or exc}"
            ) from None

    # -- the time box -------------------------------------------------------------------

    def _timebox(self, candidate: Candidate) -> float:
        return candidate.timebox or self.settings.timebox  # the mark wins over options and ini

    def _remaining(self, candidate: Candidate) -> float:
        return self._timebox(candidate) - self.spent.get(candidate.name, 0.0)

    def _charge(self, candidate: Candidate, seconds: float) -> None:
        with self._spent_lock:
            self.spent[candidate.name] = self.spent.get(candidate.name, 0.0) + seconds

    def context(self, candidate: Candidate) -> ProbeContext:
        """What a probe of ``candidate`` gets: its subprocess limit is what its time box has left."""
        return ProbeContext(
            candidate=candidate,
            settings=self.settings,
            services=self.services,
            timeout=max(1.0, min(self.settings.probe_timeout, self._remaining(candidate))),
            memo=self.memo,
        )

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(
        self, item: pytest.Item, nextitem: pytest.Item | None
    ) -> Generator[None, Any, Any]:
        candidate = _candidate(item)
        if candidate is None:
            return (yield)
        self.services.flush()  # what the background builds said meanwhile
        start = time.monotonic()
        try:
            return (yield)
        finally:
            self.services.flush()  # what they said while this item ran (the last item's too)
            taken = getattr(item, "taken", None)
            if taken is None or taken.ahead_box is None:  # a probe run ahead is charged already
                self._charge(candidate, time.monotonic() - start)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        candidate = _candidate(item)
        if candidate is None:
            return
        if isinstance(item, ProbeItem) and self.memo.ahead_started(ahead_key(candidate, item.kind)):
            # Run (or running) ahead in what the time box had left then: waiting for it is
            # bounded by the whole box, and the probe is not skipped for what it cost.
            item.stash[_REMAINING] = self._timebox(candidate)
            return
        remaining = item.stash[_REMAINING] = self._remaining(candidate)
        if remaining <= 0:
            item.stash[_TIMEBOX] = True
            pytest.skip(f"{candidate.name}'s time box of {self._timebox(candidate):g}s is used up")

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

    # -- user tests in the candidate's own environment ----------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_pyfunc_call(self, pyfuncitem: pytest.Function) -> bool | None:
        """Run the test in its candidate's own environment when the candidate lives there."""
        if _CANDIDATE not in pyfuncitem.stash:
            return None
        candidate = pyfuncitem.stash[_CANDIDATE]
        target = self.context(candidate).target()
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
        if candidate.name not in self._child:
            with behaviour.recording() as seen:
                self._child[candidate.name] = self._run_child(candidate, python)
            # Your tests run there too: what they tried themselves is not the candidate's.
            environment = os.path.dirname(os.path.dirname(python))
            self._child_behaviour[candidate.name] = behaviour.attributed(seen, [environment])
        return self._child[candidate.name]

    def _run_child(self, candidate: Candidate, python: str) -> dict[str, ProbeResult] | str:
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
        # Imported here: with it come the environment manager, file locks and pip's
        # configuration, which a matrix cell (its candidate installed) never needs.
        from pytest_spike.envs import layer

        try:
            layer_dir = layer.build_layer(self.settings.cache_dir, self.services.say)
            return layer.run_child(
                python,
                layer_dir,
                nodeids,
                args,
                cwd=self.config.invocation_params.dir,
                timeout=candidate.timebox or self.settings.probe_timeout * max(1, len(nodeids)),
                project=root,
                read=[str(self.settings.data[0])] if self.settings.data else [],
            )  # node ids are relative to the rootdir, the same as here
        except SpikeError as exc:
            return str(exc)

    # -- payloads: each probe's result, on its report -----------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if report.when == "call" and _REMAINING in item.stash and call.duration >= item.stash[_REMAINING]:
            item.stash[_TIMEBOX] = True  # the time box ended this probe, whatever it reported
        if isinstance(item, ProbeItem):
            taken = getattr(item, "taken", None)
            if report.when == "call" and taken is not None and taken.ahead_box is not None:
                # Run ahead, beside other candidates' probes: its time is what the probe
                # took, not the wait for it (the scorecard's time, --durations, JUnit).
                report.duration = taken.seconds
            if report.skipped and isinstance(report.longrepr, tuple):
                # Point the skip at the probe item, not at the line of ours that raised it.
                report.longrepr = (item.nodeid, None, report.longrepr[2])  # type: ignore[assignment]  # no line: the item is ours
            payload = self._builtin_payload(item)
        elif _CANDIDATE in item.stash:
            payload = self._user_payload(item, call, report)
        else:
            return report
        report.spike_probe = json.dumps(payload)  # type: ignore[attr-defined]
        return report

    def _builtin_payload(self, item: ProbeItem) -> dict[str, Any]:
        probe = ProbeResult(candidate=item.candidate.name, kind=item.kind, nodeid=item.nodeid)
        found = getattr(item, "evidence", None)  # None: the probe raised, or never ran
        taken = getattr(item, "taken", None)
        cut = item.stash.get(_TIMEBOX, False) or (taken is not None and taken.cut)
        if found is not None:
            evidence.record(probe, found)
            if not cut and item.evidence_key is not None and not found.cached and not item.kept:
                # Kept for the next run when the session ends, unless it was interrupted;
                # never what a time box cut short.
                self.to_keep.append((item.candidate, item.kind, item.evidence_key, found))
                item.kept = True  # once, not again for the teardown's report
        if cut:
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
            steps = self._child_behaviour.pop(candidate.name, [])
            if steps:  # once per candidate (and process): the first of its tests to report
                findings.extend(behaviour.findings(steps))
                item.stash[_BEHAVIOUR] = {
                    "summary": behaviour.summary(steps),
                    "steps": [step.to_dict() for step in steps],
                }
            recorder.metrics.update(remote.metrics)
            recorder.notes.extend(n for n in remote.notes if n not in recorder.notes)
        elif (
            report.failed
            and call.excinfo is not None
            and not hasattr(report, "wasxfail")
            and not call.excinfo.errisinstance(TimeboxExceeded)  # timebox.exceeded says it
        ):
            findings.append(_failure_finding(item, kind, call, report))
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
        probe.taken = evidence.iso_time(time.time())  # the user's own tests always run
        if _BEHAVIOUR in item.stash:
            probe.details["behaviour"] = item.stash[_BEHAVIOUR]
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

    def pytest_sessionfinish(self, exitstatus: int | pytest.ExitCode) -> None:
        if self.prebuild is not None:
            self.prebuild.stop()
        if exitstatus != pytest.ExitCode.INTERRUPTED:
            # An interrupted run (Ctrl-C, SIGTERM) keeps nothing: a probe may have seen its
            # subprocess die of the same signal and taken that for the candidate's doing.
            for candidate, kind, key, found in self.to_keep:
                evidence.save(self.context(candidate), kind, key, found)
        self.to_keep.clear()

    def pytest_unconfigure(self) -> None:
        self.services.close()


def gather_candidates(spike_items: list[pytest.Item], settings: Settings) -> list[Candidate]:
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
    for req in settings.candidates:
        cand = candidate_from_values(req, where=f"--spike-candidate {req!r}")
        found.setdefault(cand.name, (cand, "--spike-candidate"))  # a file's own declaration wins
    selected = settings.select
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


def terminal_say(config: pytest.Config) -> Callable[[str], None]:
    """Show a long step while it runs, in whole lines between pytest's progress rows (a live
    status on a terminal): see report/progress.py."""
    from pytest_spike.report.progress import terminal_progress

    return terminal_progress(config)


def _failure_finding(
    item: pytest.Item, kind: str, call: pytest.CallInfo[None], report: pytest.TestReport
) -> Finding:
    """The finding of a user test that failed or errored here."""
    assert call.excinfo is not None
    error = call.excinfo.exconly().strip().splitlines()
    first = error[0] if error else call.excinfo.typename
    if report.when == "call":
        code, severity, what = f"{kind}.failed", USER_FAILURE_SEVERITY[kind], "failed"
    else:
        code, severity, what = f"{kind}.error", Severity.MEDIUM, f"errored in {report.when}"
    if call.excinfo.errisinstance(SpikeError):
        # pytest-spike's own error, or the test's use of a fixture (an unsupported format, a
        # file that is not in the data folder): the test fails, the candidate is not charged.
        return Finding(
            f"{kind}.spike_error",
            Severity.MEDIUM,
            f"{item.name} stopped on pytest-spike's error, not the candidate's: {first}",
            {"nodeid": item.nodeid, "excerpt": "\n".join(error[-5:])[:800]},
            blame=Blame.SPIKE,
        )
    data = item.stash.get(DATA_USED, None)
    if kind == "real_data" and report.when == "call" and data and data.current_record:
        # Name the record the test failed on, as the team would when checking by hand.
        return data_findings(True, item.nodeid, first, data.current_record)[0]
    return Finding(
        code,
        severity,
        f"{item.name} {what}: {first}",
        {"nodeid": item.nodeid, "excerpt": "\n".join(error[-5:])[:800]},
    )


def _candidate(item: pytest.Item) -> Candidate | None:
    """The candidate a probe item or a user test belongs to."""
    if isinstance(item, ProbeItem):
        return item.candidate
    return item.stash.get(_CANDIDATE, None)


def _describe(candidate: Candidate) -> str:
    data = candidate.to_dict()
    return ", ".join(f"{k}={v!r}" for k, v in data.items() if v not in (None, [], "") and k != "name")


def _installed_version(candidate: Candidate) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(candidate.project)
    except metadata.PackageNotFoundError:
        return None
