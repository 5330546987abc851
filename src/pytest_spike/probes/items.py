"""Built-in probes as pytest items: ``spike::<candidate>::<kind>``."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest

from pytest_spike import kinds
from pytest_spike._core import behaviour
from pytest_spike.model import Blame, Candidate, Finding, Severity, SpikeError
from pytest_spike.probes import evidence
from pytest_spike.probes.base import ProbeContext, ProbeOutcome

#: A probe item fails when it produced a finding of the candidate's of one of these severities.
FAILING = (Severity.CRITICAL, Severity.HIGH)


class ProbeFailed(Exception):
    """Raised by a probe item whose findings make it fail; printed without a traceback."""


class SpikeNode(pytest.Collector):
    """The ``spike`` or ``spike::<candidate>`` node: holds the built-in items."""

    children: list[pytest.Item | pytest.Collector]

    def collect(self) -> list[pytest.Item | pytest.Collector]:
        return self.children


class ProbeItem(pytest.Item):
    """One built-in probe of one candidate."""

    candidate: Candidate
    kind: str
    context_factory: Callable[[Candidate], ProbeContext]

    def setup(self) -> None:
        self.outcome: ProbeOutcome | None = None
        #: the outcome with when it was taken, and the key it is kept under (None: not kept)
        self.evidence: evidence.Evidence | None = None
        self.evidence_key: str | None = None
        self.kept = False
        #: how the outcome was taken (None: the probe raised, or never ran)
        self.taken: Taken | None = None

    def runtest(self) -> None:
        ctx = self.context_factory(self.candidate)
        # The session's prebuild may have run this probe ahead (or be running it): take
        # that outcome, else run it now.
        self.taken = ctx.memo.take(
            ahead_key(self.candidate, self.kind), lambda: timed_evidence(self.kind, ctx)
        )
        self.evidence_key, self.evidence = self.taken.key, self.taken.evidence
        self.outcome = self.evidence.outcome
        if self.outcome.skipped:
            pytest.skip(self.outcome.skipped)
        failing = failing_findings(self.outcome)
        if failing:
            raise ProbeFailed("\n".join(f"[{f.severity}] {f.code}: {f.message}" for f in failing))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, ProbeFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, self.nodeid


def failing_findings(outcome: ProbeOutcome) -> list[Finding]:
    """The findings that make a probe fail: the candidate's own, high or critical."""
    return [f for f in outcome.findings if f.severity in FAILING and not f.unchecked]


def run_probe(kind: str, ctx: ProbeContext) -> ProbeOutcome:
    """Run the built-in probe ``kind``; one that cannot do its work says why, as a finding.

    That is pytest-spike's failure, not the candidate's, so the probe holds no evidence.
    """
    probe = kinds.kind(kind)
    try:
        with behaviour.recording() as seen:
            outcome: ProbeOutcome = probe.function(ctx)
        if probe.locates_environment:
            # The environment's build (install, its backends) may have run earlier, for
            # another probe or the prebuild: what it tried is kept with the environment.
            env = ctx.target().env
            built = [behaviour.Behaviour.from_dict(b) for b in env.behaviour] if env else []
            for step in built:
                step.ran_setup = bool(env and env.sdists) and step.stage == "install"
            seen[:0] = built
        return with_behaviour(outcome, seen)
    except SpikeError as exc:
        why = f"{kind} probe could not run: {exc}"
        return ProbeOutcome(
            findings=[Finding(probe.error_code, Severity.INFO, why, blame=Blame.SPIKE)], skipped=why
        )


def with_behaviour(outcome: ProbeOutcome, seen: list[behaviour.Behaviour]) -> ProbeOutcome:
    """The outcome with what its boxed steps tried: ``behaviour.*`` findings, and the steps
    with a one-line summary in its details (``behaviour``)."""
    if not seen:
        return outcome
    outcome.findings.extend(behaviour.findings(seen))
    outcome.details["behaviour"] = {
        "summary": behaviour.summary(seen),
        "steps": [step.to_dict() for step in seen],
    }
    return outcome


def take_evidence(kind: str, ctx: ProbeContext) -> tuple[str | None, evidence.Evidence]:
    """(the evidence's cache key or None, the evidence): kept evidence that still holds
    (unless ``--spike-fresh`` / ``--spike-fresh-probes``), else the probe's outcome now."""
    reuse = not (ctx.settings.fresh or ctx.settings.fresh_probes)
    entry_key, found = evidence.lookup(ctx, kind, reuse=reuse)
    if found is None:
        found = evidence.taken_now(run_probe(kind, ctx))
    return entry_key, found


def ahead_key(candidate: Candidate, kind: str) -> tuple[str, Candidate, str]:
    """The memo key of ``candidate``'s ``kind`` probe run ahead (see ProbeMemo.ahead)."""
    return ("probe-ahead", candidate, kind)


@dataclass(frozen=True)
class Taken:
    """A probe's evidence as :func:`timed_evidence` took it."""

    #: the evidence's cache key (None: not kept)
    key: str | None
    evidence: evidence.Evidence
    #: how long taking it took
    seconds: float
    #: run ahead by the session's prebuild: what its candidate's time box had left then
    #: (None: the probe ran in its own item, under the item's time box)
    ahead_box: float | None = None

    @property
    def cut(self) -> bool:
        """Run ahead, and its time box ended it (whatever it reported)."""
        return self.ahead_box is not None and self.seconds >= self.ahead_box


def timed_evidence(kind: str, ctx: ProbeContext, ahead_box: float | None = None) -> Taken:
    """:func:`take_evidence`, with the seconds it took (``ahead_box``: see Taken)."""
    start = time.monotonic()
    entry_key, found = take_evidence(kind, ctx)
    return Taken(entry_key, found, time.monotonic() - start, ahead_box)


def make_items(
    session: pytest.Session,
    candidates: list[Candidate],
    context_factory: Callable[[Candidate], ProbeContext],
    kinds: Sequence[str],
) -> Iterator[ProbeItem]:
    """Build ``spike::<name>::<kind>`` items for every candidate and each of ``kinds``."""
    root = SpikeNode.from_parent(session, name="spike", nodeid="spike")
    root.children = []
    for cand in candidates:
        node = SpikeNode.from_parent(root, name=cand.name)
        node.children = []
        root.children.append(node)
        for kind in kinds:
            item = ProbeItem.from_parent(node, name=kind)
            item.candidate = cand
            item.kind = kind
            item.context_factory = context_factory
            node.children.append(item)
            yield item
