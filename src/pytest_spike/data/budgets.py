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
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any

from pytest_spike.model import Blame, Candidate, Finding, ProbeResult, Severity, SpikeError

_MONEY = re.compile(r"^\s*([^\d\s.,-]*)\s*(\d+(?:\.\d+)?)\s*([A-Za-z]{3})?\s*$")


class TimeboxExceeded(Exception):
    """Raised inside a test whose candidate's time box ran out."""


@contextmanager
def alarm(seconds: float, message: str) -> Iterator[bool]:
    """Raise TimeboxExceeded(message) in this thread after ``seconds``; yields whether it can.

    The timer (``ITIMER_REAL``, ``SIGALRM``) is shared with whoever armed it first, such as
    pytest-timeout's signal method: while the box is open the earlier of the two deadlines is
    armed, the other's handler is called when its deadline comes first, and on exit the other's
    handler and remaining time are put back. A handler set outside Python can't be put back,
    so then the box doesn't use the timer.

    Where there is no timer signal (Windows), off the main thread, or with such a handler,
    a watchdog thread raises the exception in this thread instead (see ``_watchdog``).
    """
    if not math.isfinite(seconds):
        yield False
        return
    if not _timer_usable():
        with _watchdog(seconds, message) as usable:
            yield usable
        return
    other = _OtherTimer.take()
    deadline = time.monotonic() + max(seconds, 0.001)

    def ring(signum: int, frame: FrameType | None) -> None:
        __tracebackhide__ = True
        now = time.monotonic()
        if now >= deadline - _SLACK_S:
            raise TimeboxExceeded(message)
        due = other.due(now)  # else a stray signal: arm again and carry on
        if due:
            other.advance()
        other.arm_earliest(deadline, now)  # before the other's handler: it may raise
        if due:
            other.ring(signum, frame)

    other.ours = ring
    signal.signal(signal.SIGALRM, ring)
    other.arm_earliest(deadline, time.monotonic())
    try:
        yield True
    finally:
        other.give_back()


def _timer_usable() -> bool:
    """Whether the box can use ITIMER_REAL: POSIX, the main thread, a handler Python can restore."""
    return (
        hasattr(signal, "setitimer")
        and hasattr(signal, "SIGALRM")
        and threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGALRM) is not None
    )


def _async_raiser() -> Callable[[int, Any], int] | None:
    """CPython's ``PyThreadState_SetAsyncExc`` (thread id, exception class or None), if there is one."""
    try:
        import ctypes

        function = ctypes.pythonapi.PyThreadState_SetAsyncExc
    except (ImportError, AttributeError):  # PyPy, or no ctypes
        return None
    function.argtypes = [ctypes.c_ulong, ctypes.py_object]
    function.restype = ctypes.c_int

    def raise_in(thread: int, exception: Any) -> int:
        # None clears a pending one: that takes a NULL pointer, an empty py_object.
        return int(function(thread, ctypes.py_object() if exception is None else ctypes.py_object(exception)))

    return raise_in


@contextmanager
def _watchdog(seconds: float, message: str) -> Iterator[bool]:
    """The time box without a timer signal: a thread that raises TimeboxExceeded in this one.

    At the deadline the watchdog thread sets an asynchronous exception on this thread
    (``PyThreadState_SetAsyncExc``). Python raises it at the next bytecode it runs here, so a
    test in Python code, or waiting on a child in ``runner.run`` (which polls), is stopped.
    The limit: a call blocking in C (``time.sleep`` of an hour, a socket read without a
    timeout, a lock acquired forever) is not interrupted; the exception comes when that call
    returns. (``_thread.interrupt_main`` would reach a blocking call on the main thread, but
    only as KeyboardInterrupt, which pytest takes for the user's Ctrl-C and ends the session.)
    Yields False where the interpreter has no such call (then nothing is raised).
    """
    raise_in = _async_raiser()
    if raise_in is None:
        yield False
        return
    target = threading.get_ident()
    # A class of its own: the exception is raised from its class, so the message is carried there.
    exceeded = type(
        "TimeboxExceeded",
        (TimeboxExceeded,),
        {"__init__": lambda self, *args: Exception.__init__(self, message)},
    )
    exceeded.__module__ = TimeboxExceeded.__module__
    guard = threading.Lock()
    closed = threading.Event()
    state = {"fired": False, "open": True}

    def watch() -> None:
        if closed.wait(max(seconds, 0.001)):
            return
        with guard:
            if state["open"]:
                state["fired"] = True
                raise_in(target, exceeded)

    watcher = threading.Thread(target=watch, name="spike-timebox-watchdog", daemon=True)
    watcher.start()
    try:
        yield True
    finally:
        with guard:
            state["open"] = False
            if state["fired"]:
                raise_in(target, None)  # not yet raised (the block ended first): never raise it later
        closed.set()


#: A timer signal this early is taken for the deadline it was armed for (itimers may ring early
#: by a clock tick against the monotonic clock).
_SLACK_S = 0.005


@dataclass
class _OtherTimer:
    """What another user of ITIMER_REAL had armed when a time box opened, and how to hand it back."""

    handler: Callable[[int, FrameType | None], Any] | int | signal.Handlers
    deadline: float | None  # monotonic; None: not armed, or rang and was one-shot
    interval: float
    ours: Callable[[int, FrameType | None], Any] | None = None  # the box's handler

    @classmethod
    def take(cls) -> _OtherTimer:
        handler = signal.getsignal(signal.SIGALRM)
        assert handler is not None  # alarm() checked
        value, interval = signal.setitimer(signal.ITIMER_REAL, 0)  # stop it while we take over
        return cls(handler, time.monotonic() + value if value > 0 else None, interval)

    def due(self, now: float) -> bool:
        return self.deadline is not None and now >= self.deadline - _SLACK_S

    def advance(self) -> None:
        """The other's deadline passed: its next one, if it repeats."""
        if self.deadline is not None:
            self.deadline = self.deadline + self.interval if self.interval > 0 else None

    def arm_earliest(self, own: float, now: float) -> None:
        """Arm the earlier of the box's deadline and the other's next one."""
        target = own if self.deadline is None else min(own, self.deadline)
        signal.setitimer(signal.ITIMER_REAL, max(target - now, 0.001))

    def ring(self, signum: int, frame: FrameType | None) -> None:
        """The other's deadline came first: do what its handler would have done."""
        __tracebackhide__ = True
        if callable(self.handler):
            self.handler(signum, frame)
        elif self.handler == signal.SIG_DFL:  # the default action of SIGALRM: the process ends
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
            signal.raise_signal(signal.SIGALRM)

    def give_back(self) -> None:
        """Put the other's handler and remaining time back, unless someone took the timer since."""
        current = signal.getsignal(signal.SIGALRM)
        if current is not self.ours and signal.getitimer(signal.ITIMER_REAL)[0] > 0:
            return  # armed inside the box by someone else who kept it: theirs now
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self.handler)
        if self.deadline is not None:
            remaining = max(self.deadline - time.monotonic(), 0.001)  # overdue: rings at once
            signal.setitimer(signal.ITIMER_REAL, remaining, self.interval)


def timebox_finding(candidate: Candidate, limit: float, probes: Sequence[ProbeResult]) -> Finding | None:
    """One finding listing what the time box cut or never ran."""
    cut = [p.nodeid for p in probes if p.details.get("timebox")]
    if not cut:
        return None
    shown = ", ".join(cut[:5]) + (f" (+{len(cut) - 5} more)" if len(cut) > 5 else "")
    # Only built-in probes were cut (a big upstream harness to install, slow README examples
    # on a loaded machine): the box measured our probes' cost, not the candidate's code.
    ours = all(nodeid.startswith("spike::") for nodeid in cut)
    why = " (built-in probes only: their cost, not the candidate's fault)" if ours else ""
    return Finding(
        "timebox.exceeded",
        Severity.HIGH,
        f"{candidate.name}'s time box of {limit:g}s ran out; not finished: {shown}{why}",
        {"timebox_s": f"{limit:g}", "not_finished": "\n".join(cut)},
        blame=Blame.ENVIRONMENT if ours else Blame.CANDIDATE,
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
