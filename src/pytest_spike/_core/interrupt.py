"""Turn SIGTERM into the same orderly stop as Ctrl-C, for the length of a session.

CI runners cancel a job with SIGTERM, whose default action ends the process on the spot:
no results file, and candidate processes (each in a session of its own) left running.
Raising KeyboardInterrupt instead lets pytest end the session as interrupted, so the
runner kills the probe's process group and the results written are marked incomplete.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Callable


def sigterm_as_interrupt() -> Callable[[], None]:
    """Make the first SIGTERM raise KeyboardInterrupt; return the function that undoes it.

    A second SIGTERM gets the previous handler back (by default: end the process), so a
    run stuck in its own clean-up can still be stopped. Does nothing off the main thread
    or where there is no SIGTERM.
    """
    if not hasattr(signal, "SIGTERM") or threading.current_thread() is not threading.main_thread():
        return lambda: None
    # None: a handler set outside Python, which cannot be put back; fall back to the default.
    previous = signal.getsignal(signal.SIGTERM) or signal.SIG_DFL

    def interrupt(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGTERM, previous)
        raise KeyboardInterrupt("SIGTERM")

    signal.signal(signal.SIGTERM, interrupt)

    def restore() -> None:
        if signal.getsignal(signal.SIGTERM) is interrupt:
            signal.signal(signal.SIGTERM, previous)

    return restore
