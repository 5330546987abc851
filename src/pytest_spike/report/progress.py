"""What a long step is doing, shown while it runs, in whole lines between pytest's progress rows.

pytest writes its progress as rows (``spike ...s.``); a step of a probe (building an
environment, fetching an sdist) starts in the middle of such a row. :class:`TerminalProgress`
ends the row, writes its own line, and starts the row again with its prefix, the way
pytest-xdist keeps its worker lines whole. On a terminal (a TTY) the line is a live status,
``spike: tomli upstream: fetching the sdist of tomli 2.5.0 for its tests (3s)``, whose clock
ticks until the step ends; elsewhere (a CI log, a file) it is one plain line per step.
Under ``-q`` and on xdist workers nothing is shown (plugin.py gives no progress then).
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from collections.abc import Generator
from contextlib import contextmanager
from typing import Any

import pytest

from pytest_spike.services import BACKGROUND

#: Seconds between two ticks of the live status's clock.
TICK = 1.0
_PROGRESS = pytest.StashKey["TerminalProgress"]()


def terminal_progress(config: pytest.Config) -> TerminalProgress:
    """The one progress writer of this session (registered as a plugin on first use)."""
    progress = config.stash.get(_PROGRESS, None)
    if progress is None:
        progress = config.stash[_PROGRESS] = TerminalProgress(config)
        config.pluginmanager.register(progress, "spike-progress")
    return progress


def step_label(nodeid: str) -> str:
    """Which candidate and which step: ``tomli upstream`` for ``spike::tomli::upstream``,
    the test's name for a user test."""
    parts = nodeid.split("::")
    if len(parts) == 3 and parts[0] == "spike":
        return f"{parts[1]} {parts[2]}"
    return parts[-1]


def fmt_elapsed(seconds: float) -> str:
    return f"{seconds:.0f}s" if seconds < 60 else f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


class TerminalProgress:
    """Call it with what a step is doing; it keeps pytest's rows whole."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self._live: _Ticker | None = None
        #: pytest's row that the live status interrupted: written again when the step ends
        self._row: Any = None
        self._fd: int | None = None

    # -- pytest's side --------------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.finish()  # before pytest writes the result letter of the step's item

    @pytest.hookimpl(tryfirst=True)
    def pytest_terminal_summary(self) -> None:
        self.finish()

    def pytest_unconfigure(self) -> None:
        self.finish()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    # -- the lines ------------------------------------------------------------------------

    def __call__(self, text: str) -> None:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None:
            return
        with self._uncaptured():
            self._finish(reporter)
            # The test running now (pytest sets it for setup, call and teardown): whose step.
            current = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" (", 1)[0]
            # a background build's line names its own candidate; the running step is another's
            label = step_label(current) if current and not text.startswith(BACKGROUND) else None
            line = f"spike: {label}: {text}" if label else f"spike: {text}"
            # pytest's row to start again afterwards; none once the tests have run (a step at
            # the session's end, such as an upgrade spike's, would leave a dangling prefix)
            row = reporter.currentfspath if current else None
            if reporter.isatty and self._terminal_fd() is not None:
                reporter.ensure_newline()
                width = max(shutil.get_terminal_size().columns - 8, 20)
                line = line if len(line) <= width else line[: width - 3] + "..."
                reporter.write(line)
                reporter.flush()
                assert self._fd is not None
                self._live = _Ticker(self._fd, line)
                self._row = row
            else:
                reporter.write_line(line)
                self._resume(reporter, row)

    def finish(self) -> None:
        """End the live status, if one is shown: its line stays with the time the step took."""
        if self._live is None:
            return
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        with self._uncaptured():
            self._finish(reporter)

    def _finish(self, reporter: Any) -> None:
        live, self._live = self._live, None
        if live is None:
            return
        elapsed = live.stop()
        if reporter is None:
            return
        reporter.rewrite(f"{live.line} ({fmt_elapsed(elapsed)})", erase=True)
        reporter.write("\n")
        reporter.currentfspath = None
        self._resume(reporter, self._row)
        self._row = None

    @staticmethod
    def _resume(reporter: Any, row: Any) -> None:
        """Start pytest's interrupted row again with its own prefix, as pytest would."""
        if not row or reporter.currentfspath:
            return
        if isinstance(row, str):  # -v: the prefix is the test's location line
            reporter.write(row)
        elif row == -2:  # -v, the result already written: the next test starts its own line
            return
        else:
            reporter.write(os.path.relpath(row, reporter.startpath) + " ")
        reporter.currentfspath = row

    def _terminal_fd(self) -> int | None:
        """A copy of the terminal's file descriptor, which output capture leaves alone (the
        ticking clock writes there from its thread, while the step runs captured)."""
        if self._fd is None:
            try:
                sys.stdout.flush()
                self._fd = os.dup(sys.stdout.fileno())
            except (OSError, ValueError, AttributeError):
                return None
        return self._fd

    @contextmanager
    def _uncaptured(self) -> Generator[None, None, None]:
        capture = self.config.pluginmanager.get_plugin("capturemanager")
        if capture is None:
            yield
            return
        # The step runs inside a test, where output is captured; this is for the user now.
        with capture.global_and_fixture_disabled():
            yield


class _Ticker:
    """Rewrites ``line (Ns)`` on the terminal every :data:`TICK` seconds until stopped."""

    def __init__(self, fd: int, line: str) -> None:
        self.fd = fd
        self.line = line
        self.start = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="spike-progress", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(TICK):
            text = f"\r{self.line} ({fmt_elapsed(time.monotonic() - self.start)})"
            try:
                os.write(self.fd, text.encode(errors="replace"))
            except OSError:
                return

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return time.monotonic() - self.start
