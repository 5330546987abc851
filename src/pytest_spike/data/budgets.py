"""Time boxes, per-test budgets and the money a candidate's compute time costs.

A time box is the wall time all probes of one candidate may take together (per process:
under pytest-xdist each worker keeps its own account). An in-process test that is still
running when the box runs out is interrupted by a timer signal (POSIX, main thread);
subprocess probes get the remaining time as their limit.
"""

from __future__ import annotations

import math
import re
import signal
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

from pytest_spike.model import Candidate, Finding, ProbeResult, Severity, SpikeError

_MONEY = re.compile(r"^\s*([^\d\s.,-]*)\s*(\d+(?:\.\d+)?)\s*([A-Za-z]{3})?\s*$")


class TimeboxExceeded(Exception):
    """Raised inside a test whose candidate's time box ran out."""


@contextmanager
def alarm(seconds: float, message: str) -> Iterator[bool]:
    """Raise TimeboxExceeded(message) in this thread after ``seconds``; yields whether it can."""
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable or not math.isfinite(seconds):
        yield False
        return

    def ring(signum: int, frame: FrameType | None) -> None:
        raise TimeboxExceeded(message)

    previous = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.001))
    try:
        yield True
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def timebox_finding(candidate: Candidate, limit: float, probes: Sequence[ProbeResult]) -> Finding | None:
    """One finding listing what the time box cut or never ran."""
    cut = [p.nodeid for p in probes if p.details.get("timebox")]
    if not cut:
        return None
    shown = ", ".join(cut[:5]) + (f" (+{len(cut) - 5} more)" if len(cut) > 5 else "")
    return Finding(
        "timebox.exceeded",
        Severity.HIGH,
        f"{candidate.name}'s time box of {limit:g}s ran out; not finished: {shown}",
        {"timebox_s": f"{limit:g}", "not_finished": "\n".join(cut)},
    )


def budget_findings(candidate: Candidate, probe: ProbeResult) -> list[Finding]:
    """Medium findings for a test that went over its candidate's per-test budget."""
    limits = dict(candidate.budget)
    findings = []
    seconds = limits.get("seconds")
    if seconds is not None and probe.duration_s > seconds:
        findings.append(
            Finding(
                "budget.seconds",
                Severity.MEDIUM,
                f"{probe.nodeid} took {probe.duration_s:.2f}s, over its budget of {seconds:g}s",
                {"nodeid": probe.nodeid, "measured_s": f"{probe.duration_s:.3f}", "budget_s": f"{seconds:g}"},
            )
        )
    memory = limits.get("memory_mb")
    if memory is not None and probe.peak_memory_mb is not None and probe.peak_memory_mb > memory:
        findings.append(
            Finding(
                "budget.memory",
                Severity.MEDIUM,
                f"{probe.nodeid} grew the peak memory by {probe.peak_memory_mb:.0f} MB, over its "
                f"budget of {memory:g} MB",
                {
                    "nodeid": probe.nodeid,
                    "measured_mb": f"{probe.peak_memory_mb:.1f}",
                    "budget_mb": f"{memory:g}",
                },
            )
        )
    return findings


@dataclass(frozen=True)
class Rate:
    """Money per hour of compute, e.g. ``3.20``, ``$3.20``, ``2.5 EUR``."""

    per_hour: float
    currency: str = "$"

    @classmethod
    def parse(cls, text: str, where: str) -> Rate:
        match = _MONEY.match(str(text))
        if not match or (match.group(1) and match.group(3)):
            raise SpikeError(f"{where}: {text!r} is not a rate per hour like '3.20', '$3.20' or '2.5 EUR'")
        return cls(float(match.group(2)), match.group(1) or match.group(3) or "$")

    def cost(self, seconds: float) -> float:
        return self.per_hour * seconds / 3600.0

    def format(self, amount: float) -> str:
        number = f"{amount:.4f}" if amount < 1 else f"{amount:,.2f}"
        return f"{self.currency}{number}" if len(self.currency) == 1 else f"{number} {self.currency}"
