"""A plugin for child pytests that tells the host what ran, while it runs.

Loaded with ``-p`` into a child pytest that runs candidate code (the team's tests in the
candidate's environment, upstream's tests, an upgrade's). ``-p`` plugins are imported
before any conftest, test module or entry-point plugin, so at import it duplicates stdout
for itself and points stdout at stderr: from then on what the tests print goes to stderr,
and only this plugin writes on the stream the host reads as the child's stdout. It
announces how many tests were collected before the first one runs, then each test's outcome
when it finished; at the end of the session it closes the stream, before the exit hooks
(the candidate's ``atexit`` ones) run. The host checks the child's results file against
what it announced (``pytest_spike._core.witness``).

Standard library only, Python 3.9+: upstream's tests run with the candidate's own pytest,
where pytest-spike is not installed, so the host copies this file beside them. It never
imports pytest: its hooks are found by name.
"""

from __future__ import annotations

import json
import os
from typing import Any

#: Starts every line this plugin writes (the host ignores other lines).
MARK = "@@pytest-spike-witness@@"
#: Longest first error line announced per test.
ERROR_CHARS = 300

_WRITE = os.write
_STREAM = [os.dup(1)]
os.dup2(2, 1)
_outcomes: dict[str, str] = {}
_errors: dict[str, str] = {}


def _say(**event: Any) -> None:
    if not _STREAM:
        return
    view = memoryview((MARK + json.dumps(event) + "\n").encode("utf-8", "replace"))
    try:
        while view:
            view = view[_WRITE(_STREAM[0], view) :]
    except OSError:
        pass


def _first_line(report: Any) -> str:
    crash = getattr(getattr(report, "longrepr", None), "reprcrash", None)
    text = str(getattr(crash, "message", "") or getattr(report, "longreprtext", "") or "")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0][:ERROR_CHARS] if lines else ""


def pytest_collection_finish(session: Any) -> None:
    _say(collected=len(session.items))


def pytest_runtest_logreport(report: Any) -> None:
    # A failure anywhere is the test's outcome ("failed" in its call, "error" in its set-up
    # or teardown); a skip only where nothing failed.
    before = _outcomes.get(report.nodeid, "passed")
    if report.failed:
        if before not in ("failed", "error"):
            _errors[report.nodeid] = _first_line(report)
            _outcomes[report.nodeid] = "failed" if report.when == "call" else "error"
    elif report.skipped and before == "passed":
        _outcomes[report.nodeid] = "skipped"
        _errors[report.nodeid] = _first_line(report)
    else:
        _outcomes.setdefault(report.nodeid, "passed")


def pytest_runtest_logfinish(nodeid: str) -> None:
    outcome = _outcomes.get(nodeid, "passed")
    _say(test=nodeid, outcome=outcome, error=_errors.get(nodeid, "") if outcome != "passed" else "")


def pytest_unconfigure() -> None:
    # Closed before the exit hooks run: an atexit hook finds no stream to speak on.
    if _STREAM:
        fd = _STREAM.pop()
        try:
            os.close(fd)
        except OSError:
            pass
