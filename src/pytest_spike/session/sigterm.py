"""SIGTERM stops a spike run like Ctrl-C (registered by plugin.py in every ``--spike`` process)."""

from __future__ import annotations

from typing import Callable

import pytest

from pytest_spike._core.interrupt import sigterm_as_interrupt


class SigtermAsInterrupt:
    """For the length of the session, the first SIGTERM raises KeyboardInterrupt.

    CI cancels with SIGTERM: stopping like Ctrl-C kills the probes' processes and lets the
    controller write the results so far, marked incomplete, instead of none at all.
    """

    def __init__(self) -> None:
        self._restore: Callable[[], None] = lambda: None

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self._restore = sigterm_as_interrupt()

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self._restore()  # a SIGTERM from here on ends the process; results are written atomically

    def pytest_unconfigure(self) -> None:
        self._restore()  # also when the session never reached its finish
