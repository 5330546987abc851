"""Findings -> points -> score -> level.

The score is the sum of the points of a candidate's findings. A finding's points come from
its code's weight when one is set (``import.deprecation = 2``), else from its severity's
weight. The level follows from the score; any critical finding makes the candidate BLOCKED.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Callable

from pytest_spike.model import Finding, Level, Scored, Severity, SpikeError

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
    """The level a score reaches; a critical finding of the candidate's blocks whatever the score."""
    if any(f.severity is Severity.CRITICAL and not f.unchecked for f in findings):
        return Level.BLOCKED
    if score >= LEVEL_THRESHOLDS[Level.HIGH]:
        return Level.HIGH
    if score >= LEVEL_THRESHOLDS[Level.MEDIUM]:
        return Level.MEDIUM
    return Level.LOW


def score(findings: Iterable[tuple[Finding, str | None]], points: Callable[[Finding], float]) -> list[Scored]:
    """Each (finding, probe node id) with the points ``points`` gives it."""
    return [Scored(f, points(f), probe) for f, probe in findings]
