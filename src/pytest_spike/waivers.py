"""Waivers: a finding a team has read and accepts, until a date (evidence rule 4).

Written one per line in the ini key ``spike_waivers``::

    spike_waivers = ["toml signals.stale until 2027-06-30: pinned, replacing in Q2"]

A waived finding keeps showing, with the reason, and scores 0 until the date (inclusive).
After it, the finding scores again and the scorecard says the waiver expired. A malformed
line is a usage error naming the line.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from packaging.utils import canonicalize_name

from pytest_spike.model import Finding, SpikeError

_LINE = re.compile(
    r"^(?P<candidate>[A-Za-z0-9][A-Za-z0-9._-]*)\s+(?P<code>[a-z_][a-z0-9_]*(?:\.[a-z0-9_]+)+)"
    r"\s+until\s+(?P<until>\d{4}-\d{2}-\d{2})\s*:\s*(?P<reason>\S.*)$"
)
_EXAMPLE = "'toml signals.stale until 2027-06-30: pinned, replacing in Q2'"


@dataclass(frozen=True)
class Waiver:
    """One accepted finding: ``candidate``'s ``code`` is accepted until ``until``, for ``reason``."""

    candidate: str
    code: str
    until: dt.date
    reason: str

    def matches(self, candidate: str, finding: Finding) -> bool:
        return canonicalize_name(candidate) == self.candidate and finding.code == self.code

    def active(self, today: dt.date) -> bool:
        return today <= self.until

    def to_dict(self, today: dt.date) -> dict[str, Any]:
        return {
            "until": self.until.isoformat(),
            "reason": self.reason,
            "expired": not self.active(today),
        }

    def __str__(self) -> str:
        return f"{self.candidate} {self.code} until {self.until.isoformat()}: {self.reason}"


def parse_waivers(lines: Iterable[str], where: str) -> tuple[Waiver, ...]:
    """Parse waiver lines; the error names ``where`` they came from and the bad line."""
    waivers = []
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if not match:
            raise SpikeError(
                f"{where}: {line!r} is not a waiver; write 'CANDIDATE CODE until YYYY-MM-DD: reason', "
                f"e.g. {_EXAMPLE}"
            )
        try:
            until = dt.date.fromisoformat(match["until"])
        except ValueError:
            raise SpikeError(f"{where}: {line!r}: {match['until']!r} is not a date (YYYY-MM-DD)") from None
        waivers.append(
            Waiver(canonicalize_name(match["candidate"]), match["code"], until, match["reason"].strip())
        )
    return tuple(waivers)


def waiver_for(waivers: Iterable[Waiver], candidate: str, finding: Finding) -> Waiver | None:
    """The waiver that covers ``candidate``'s ``finding``: the one lasting longest, or None."""
    found = [w for w in waivers if w.matches(candidate, finding)]
    return max(found, key=lambda w: w.until) if found else None
