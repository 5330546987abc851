"""Results files for cells that never reached pytest: skipped, failed to install, broke.

Every cell of a plan ends with a results file, so ``pytest-spike merge`` can tell a cell
that passed from one that never ran. A ``skipped`` cell has no candidates (nothing was
measured, so nothing is scored) and carries ``cell.status`` and ``cell.reason``; an
install failure is a scored ``install.failed`` finding (critical: the pin does not
install on that Python), with the resolver's text as evidence.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

from pytest_spike import __version__
from pytest_spike._core.files import write_atomic
from pytest_spike.envs.manager import resolver_excerpt
from pytest_spike.matrix.plan import Cell
from pytest_spike.model import (
    Candidate,
    CandidateResult,
    Finding,
    ProbeResult,
    Scorecard,
    Severity,
)
from pytest_spike.report.schema import dumps
from pytest_spike.scoring import Weights, level_for, score


def cell_info(cell: Cell, status: str | None = None, reason: str = "") -> dict[str, str]:
    """The ``cell`` block of a results file for ``cell``; ``status`` is "skipped",
    "install_failed" or "error" for a cell that did not run (a normal pytest run has none)."""
    info = {
        "id": cell.id,
        "python": cell.python,
        "python_short": cell.python,
        "candidate": cell.candidate,
        "version": cell.version,
    }
    if status:
        info["status"] = status
        info["reason"] = reason
    return info


def _scorecard(cell: Cell, status: str, reason: str, results: list[CandidateResult]) -> Scorecard:
    return Scorecard(
        cell=cell_info(cell, status, reason),
        candidates=results,
        plugin_version=__version__,
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    )


def skipped_scorecard(cell: Cell, reason: str) -> Scorecard:
    """A cell that did not run: no candidates, the reason in ``cell.reason``."""
    return _scorecard(cell, "skipped", reason, [])


def failed_scorecard(cell: Cell, status: str, code: str, message: str, excerpt: str) -> Scorecard:
    """A cell whose candidate could not be set up: one critical finding, scored."""
    finding = Finding(code, Severity.CRITICAL, message, {"cell": cell.id, "excerpt": excerpt})
    nodeid = f"spike::{cell.candidate}::install"
    probe = ProbeResult(
        cell.candidate, "install", nodeid, outcome="failed", version=cell.version, findings=[finding]
    )
    result = CandidateResult(Candidate(cell.requirement), version=cell.version, probes=[probe])
    result.scored = score([(finding, nodeid)], Weights().points)
    result.score = sum(s.points for s in result.scored)
    result.level = level_for(result.score, result.counted_findings)
    return _scorecard(cell, status, message, [result])


def install_failed_scorecard(cell: Cell, output: str) -> Scorecard:
    """``install.failed`` with the first line and an excerpt of the resolver's output."""
    excerpt, line = resolver_excerpt(output)
    message = f"{cell.pin} does not install on Python {cell.python}: {line or 'see the excerpt'}"
    return failed_scorecard(cell, "install_failed", "install.failed", message, excerpt)


def error_scorecard(cell: Cell, what: str, detail: str) -> Scorecard:
    """The cell ran but left no results file (pytest crashed, a usage error...)."""
    message = f"cell {cell.id}: {what}"
    return failed_scorecard(cell, "error", "matrix.cell_error", message, detail[-2000:])


def write(scorecard: Scorecard, path: Path) -> Path:
    """Write a cell's results file atomically; returns ``path``."""
    write_atomic(path, dumps(scorecard))
    return path
