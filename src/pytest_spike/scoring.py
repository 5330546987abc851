"""Findings -> points -> score -> level, and the scorecard of a run.

The score is the sum of the points of a candidate's findings. A finding's points come from
its code's weight when one is set (``import.deprecation = 2``), else from its severity's
weight. Only the candidate's own findings score: an ``unchecked`` one (the environment's or
the spike's fault) and one under an active waiver score 0 and are shown with the reason.
The level follows from the score; a critical finding of the candidate's makes it BLOCKED.

:func:`build_scorecard` turns the probe results gathered for each candidate into the
scorecard; it is pure: the controller hands it the results, the rules and the hooks.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from pytest_spike.data.budgets import Rate, budget_findings, timebox_finding
from pytest_spike.model import (
    BUILTIN_KINDS,
    Candidate,
    CandidateResult,
    Finding,
    Level,
    ProbeResult,
    Scorecard,
    Scored,
    Severity,
    SpikeError,
)
from pytest_spike.waivers import Waiver, waiver_for

DEFAULT_WEIGHTS: Mapping[Severity, float] = {
    Severity.CRITICAL: 100.0,
    Severity.HIGH: 30.0,
    Severity.MEDIUM: 10.0,
    Severity.LOW: 3.0,
    Severity.INFO: 0.0,
}
#: The lowest score of each level below BLOCKED.
LEVEL_THRESHOLDS: Mapping[Level, float] = {Level.MEDIUM: 10.0, Level.HIGH: 30.0}

_CODE_RE = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z0-9_]+)+$")


@dataclass(frozen=True)
class Weights:
    """Points per severity, with optional per-code overrides."""

    severity: Mapping[Severity, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    codes: Mapping[str, float] = field(default_factory=dict)

    def points(self, finding: Finding) -> float:
        if finding.unchecked:
            return 0.0  # not the candidate's fault: shown, never scored
        if finding.code in self.codes:
            return self.codes[finding.code]
        return self.severity[finding.severity]

    @classmethod
    def parse(cls, lines: Iterable[str], where: str) -> Weights:
        """Parse ``name = number`` lines: a severity (``high = 25``) or a code (``signals.stale = 0``)."""
        severity = dict(DEFAULT_WEIGHTS)
        codes: dict[str, float] = {}
        for raw in lines:
            for entry in re.split(r"[,\n]", raw):
                entry = entry.strip()
                if not entry or entry.startswith("#"):
                    continue
                name, sep, number = entry.partition("=")
                name = name.strip().lower()
                try:
                    value = float(number)
                except ValueError:
                    value = math.nan
                if not sep or not math.isfinite(value) or value < 0:
                    raise SpikeError(
                        f"{where}: {entry!r} is not 'name = points' with points >= 0, "
                        "e.g. 'high = 25' or 'signals.stale = 0'"
                    )
                if name in {s.value for s in Severity}:
                    severity[Severity(name)] = value
                elif _CODE_RE.match(name):
                    codes[name] = value
                else:
                    raise SpikeError(
                        f"{where}: {name!r} is neither a severity "
                        "(critical, high, medium, low, info) nor a finding code like 'import.slow'"
                    )
        return cls(severity, codes)


def level_for(score: float, findings: Iterable[Finding]) -> Level:
    """The level a score reaches; a critical finding of the candidate's blocks whatever the score.

    Pass the findings that count (``CandidateResult.counted_findings``): a waived one blocks nothing.
    """
    if any(f.severity is Severity.CRITICAL and not f.unchecked for f in findings):
        return Level.BLOCKED
    if score >= LEVEL_THRESHOLDS[Level.HIGH]:
        return Level.HIGH
    if score >= LEVEL_THRESHOLDS[Level.MEDIUM]:
        return Level.MEDIUM
    return Level.LOW


def score(
    findings: Iterable[tuple[Finding, str | None]],
    points: Callable[[Finding], float],
    waiver: Callable[[Finding], Waiver | None] = lambda finding: None,
    today: dt.date | None = None,
) -> list[Scored]:
    """Each (finding, probe node id) with the points ``points`` gives it.

    A finding ``waiver`` covers scores 0 while the waiver is active (until its date,
    inclusive, seen from ``today``); an expired waiver is recorded and the points count.
    """
    today = today or dt.date.today()
    scored = []
    for finding, probe in findings:
        covering = waiver(finding)
        if covering is None:
            scored.append(Scored(finding, points(finding), probe))
            continue
        given = 0.0 if covering.active(today) else points(finding)
        scored.append(Scored(finding, given, probe, covering.to_dict(today)))
    return scored


def _waiver_lookup(waivers: Sequence[Waiver], candidate: str) -> Callable[[Finding], Waiver | None]:
    def lookup(finding: Finding) -> Waiver | None:
        return waiver_for(waivers, candidate, finding)

    return lookup


class ScoringHooks(Protocol):
    """What other plugins may say while a scorecard is built (see hookspec.py)."""

    def add_findings(self, result: CandidateResult) -> Iterable[Iterable[Finding] | None]:
        """Extra findings for a candidate, one iterable (or None) per answering plugin."""
        ...

    def weight(self, finding: Finding) -> float | None:
        """A finding's points, or None to keep the weights' own."""
        ...

    def level(self, result: CandidateResult) -> Level | None:
        """A scored candidate's level, or None to keep the one its score gives."""
        ...


class NoHooks:
    """No plugin says anything: the weights and the score decide."""

    def add_findings(self, result: CandidateResult) -> Iterable[Iterable[Finding] | None]:
        return ()

    def weight(self, finding: Finding) -> float | None:
        return None

    def level(self, result: CandidateResult) -> Level | None:
        return None


@dataclass(frozen=True)
class _Rules:
    """How one run scores its candidates: weights, hooks, time box, cost and waivers."""

    weights: Weights
    hooks: ScoringHooks
    timebox: float
    cost: Rate | None
    waivers: tuple[Waiver, ...]
    today: dt.date | None

    def points(self, finding: Finding) -> float:
        override = self.hooks.weight(finding)
        return float(override) if override is not None else self.weights.points(finding)

    def result(self, candidate: Candidate, probes: Sequence[ProbeResult]) -> CandidateResult:
        """One candidate's probes, findings, points, score and level."""
        result = CandidateResult(candidate=candidate, probes=sorted(probes, key=lambda p: p.nodeid))
        result.version = _version_of(result.probes)
        if self.cost is not None:
            result.cost = cost_summary(self.cost, result.duration_s)
        pairs = self._findings(candidate, result)
        result.scored = score(pairs, self.points, _waiver_lookup(self.waivers, candidate.name), self.today)
        result.score = sum(s.points for s in result.scored)
        level = self.hooks.level(result)
        result.level = level if level is not None else level_for(result.score, result.counted_findings)
        return result

    def _findings(self, candidate: Candidate, result: CandidateResult) -> list[tuple[Finding, str | None]]:
        """(finding, probe node id): the probes' own, budget overruns, the time box, the hooks'."""
        pairs: list[tuple[Finding, str | None]] = [(f, p.nodeid) for p in result.probes for f in p.findings]
        pairs += [
            (f, p.nodeid)
            for p in result.probes
            if p.kind not in BUILTIN_KINDS
            for f in budget_findings(candidate, p)
        ]
        boxed = timebox_finding(candidate, candidate.timebox or self.timebox, result.probes)
        if boxed is not None:
            pairs.append((boxed, None))
        for extra in self.hooks.add_findings(result):
            pairs += [(f, None) for f in extra or ()]
        return pairs


def _version_of(probes: Sequence[ProbeResult]) -> str | None:
    """The install probe's version, else the first one a probe saw."""
    version = None
    for probe in probes:
        if probe.version and (version is None or probe.kind == "install"):
            version = probe.version
    return version


def build_scorecard(
    gathered: Sequence[tuple[Candidate, Sequence[ProbeResult]]],
    *,
    weights: Weights | None = None,
    timebox: float,
    cost: Rate | None = None,
    hooks: ScoringHooks | None = None,
    complete: bool = True,
    cell: Mapping[str, str] | None = None,
    plugin_version: str = "",
    created: str = "",
    fail_on: Level | None = None,
    waivers: Sequence[Waiver] = (),
    today: dt.date | None = None,
    settings: Mapping[str, Any] | None = None,
) -> Scorecard:
    """Score each candidate's probe results, in the order given.

    A candidate's version is its install probe's, else the first one a probe saw. Its
    findings are its probes' own, the budget overruns of its tests, one finding for what
    its time box cut (``timebox`` unless the candidate sets its own) and what ``hooks``
    add; ``weights`` (default: :data:`DEFAULT_WEIGHTS`) give their points unless ``hooks``
    do, and ``waivers`` active on ``today`` (default: today) make them 0. ``cost`` turns
    each candidate's time into money; ``settings`` records the rules used.
    """
    rules = _Rules(
        weights if weights is not None else Weights(),
        hooks if hooks is not None else NoHooks(),
        timebox,
        cost,
        tuple(waivers),
        today,
    )
    results = [rules.result(candidate, probes) for candidate, probes in gathered]
    return Scorecard(
        cell=dict(cell or {}),
        candidates=results,
        complete=complete,
        plugin_version=plugin_version,
        created=created,
        fail_on=fail_on,
        settings=dict(settings or {}),
    )


def cost_summary(rate: Rate, seconds: float) -> dict[str, Any]:
    """What ``seconds`` of compute cost at ``rate``, as the results file records it."""
    return {
        "seconds": round(seconds, 3),
        "per_hour": rate.per_hour,
        "currency": rate.currency,
        "amount": round(rate.cost(seconds), 6),
        "text": f"{rate.format(rate.cost(seconds))} for {seconds:.1f}s of compute at {rate.format(rate.per_hour)}/h",
    }
