"""The plugin of the child pytest that runs the project's tests in an upgrade spike.

Loaded with ``-p pytest_spike.upgrade._child`` in the running or the upgraded environment.
It keeps only the node ids listed in the file ``$PYTEST_SPIKE_UPGRADE_WANT`` names, and
writes outcomes, first error lines, collection errors and warnings (with the module that
issued each, and that module's distribution) as JSON to ``$PYTEST_SPIKE_UPGRADE_OUT``.
While it runs it appends one JSON line per event to ``$PYTEST_SPIKE_UPGRADE_PROGRESS`` (a
collection error, a test started, a test done with its outcome), flushed at once, so a child
the code under test crashes still tells which test it was running and what ran before.
Only the standard library and pytest: it runs next to any version of the project's packages.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
import warnings
from typing import Any

import pytest

#: set in the child's environment: the parent's upgrade plugin is never registered there
CHILD_ENV = "PYTEST_SPIKE_UPGRADE_CHILD"
OUT_ENV = "PYTEST_SPIKE_UPGRADE_OUT"
WANT_ENV = "PYTEST_SPIKE_UPGRADE_WANT"
PROGRESS_ENV = "PYTEST_SPIKE_UPGRADE_PROGRESS"

_issuers: dict[str, str] = {}
_state: dict[str, Any] = {"outcomes": {}, "errors": {}, "collect_errors": {}, "warnings": []}
_original_warn = warnings.warn


def _tracking_warn(
    message: Any, category: Any = None, stacklevel: int = 1, source: Any = None, **kw: Any
) -> None:
    # Which module issued the warning: its stacklevel points at the caller, not at the issuer.
    issuer = str(sys._getframe(1).f_globals.get("__name__", ""))
    text = str(message.args[0]) if isinstance(message, Warning) and message.args else str(message)
    _issuers.setdefault(text, issuer)
    _original_warn(message, category, stacklevel + 1, source, **kw)


def _first_line(report: Any) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message).splitlines()[0] if crash.message else ""
    text = str(getattr(report, "longreprtext", "") or report.longrepr or "")
    errors = [line[1:].strip() for line in text.splitlines() if line.startswith("E ")]
    lines = errors or [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _progress(**event: str) -> None:
    """Append one event to the progress file, flushed to the OS before the code goes on."""
    handle = _state.get("progress")
    if handle is not None:
        handle.write(json.dumps(event) + "\n")
        handle.flush()


def pytest_configure(config: pytest.Config) -> None:
    warnings.warn = _tracking_warn
    _state["start"] = time.perf_counter()
    path = os.environ.get(PROGRESS_ENV)
    _state["progress"] = open(path, "a", encoding="utf-8") if path else None  # noqa: SIM115


def pytest_runtest_logstart(nodeid: str) -> None:
    _progress(start=nodeid)


def pytest_runtest_logfinish(nodeid: str) -> None:
    outcome = _state["outcomes"].get(nodeid, "passed")
    _progress(done=nodeid, outcome=outcome, error=_state["errors"].get(nodeid, ""))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    path = os.environ.get(WANT_ENV)
    if not path:
        return
    with open(path, encoding="utf-8") as handle:
        wanted = set(json.load(handle))
    gone = [item for item in items if item.nodeid not in wanted]
    if gone:
        config.hook.pytest_deselected(items=gone)
        items[:] = [item for item in items if item.nodeid in wanted]


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.failed:
        _state["collect_errors"][report.nodeid] = _first_line(report)
        _progress(collect_error=report.nodeid, error=_state["collect_errors"][report.nodeid])


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    outcomes = _state["outcomes"]
    before = outcomes.get(report.nodeid, "passed")
    if report.failed:
        now = "failed" if report.when == "call" else "error"
        if before in ("passed", "skipped"):
            _state["errors"][report.nodeid] = _first_line(report)
        outcomes[report.nodeid] = now if before != "failed" else before
    elif report.skipped and before == "passed":
        outcomes[report.nodeid] = "skipped"
    else:
        outcomes.setdefault(report.nodeid, "passed")


@functools.lru_cache(maxsize=1)
def _packages_distributions() -> dict[str, list[str]]:
    """Top-level module -> its distributions, read once: packages_distributions() reads every
    installed distribution's file list, and asked per warning it was half the time of a
    500-test child with 50 warnings (12 ms each)."""
    from importlib import metadata

    return dict(metadata.packages_distributions())


def pytest_warning_recorded(warning_message: warnings.WarningMessage, when: str, nodeid: str) -> None:
    text = str(warning_message.message)
    issuer = _issuers.get(text, "")
    dists = _packages_distributions().get(issuer.split(".")[0], []) if issuer else []
    _state["warnings"].append(
        {
            "category": warning_message.category.__name__,
            "message": text.splitlines()[0] if text else "",
            "nodeid": nodeid,
            "issuer": issuer,
            "dist": dists[0] if dists else "",
            "filename": str(warning_message.filename),
        }
    )


def pytest_sessionfinish(session: pytest.Session) -> None:
    path = os.environ.get(OUT_ENV)
    if not path:
        return
    data = {k: v for k, v in _state.items() if k not in ("start", "progress")}
    data["duration_s"] = time.perf_counter() - _state.get("start", time.perf_counter())
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
