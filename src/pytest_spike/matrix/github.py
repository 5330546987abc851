"""The plan as a GitHub Actions matrix: an ``include`` list within GitHub's job limit.

GitHub installs its own Pythons (``actions/setup-python``), so cells are not checked
against this machine's interpreters; cells the plan skips for other reasons
(requires-python, unsupported Pythons) stay out of the matrix and show as skipped when
the report job merges with ``--plan``.
"""

from __future__ import annotations

import os
from typing import Any

from packaging.version import Version

from pytest_spike.matrix.plan import Cell, MatrixPlan

#: GitHub Actions runs at most this many jobs from one matrix.
MAX_JOBS = 256


def _priority(cells: list[Cell]) -> list[Cell]:
    """Round-robin across candidates, each newest version first, so a cut hurts evenly."""
    by_candidate: dict[str, list[Cell]] = {}
    for cell in cells:
        by_candidate.setdefault(cell.candidate, []).append(cell)
    queues = [
        sorted(group, key=lambda c: (Version(c.version), Version(c.python)), reverse=True)
        for group in by_candidate.values()
    ]
    ordered: list[Cell] = []
    while any(queues):
        for queue in queues:
            if queue:
                ordered.append(queue.pop(0))
    return ordered


def include_list(plan: MatrixPlan, limit: int = MAX_JOBS) -> tuple[list[dict[str, Any]], list[str]]:
    """(the ``include`` entries, lines saying what was cut and why)."""
    runnable = plan.runnable()
    kept = _priority(runnable)[:limit]
    kept_ids = {c.id for c in kept}
    cut = [c for c in runnable if c.id not in kept_ids]
    include = [
        {"cell": c.id, "python": c.python, "candidate": c.candidate, "pin": c.pin}
        for c in runnable
        if c.id in kept_ids
    ]
    lines: list[str] = []
    if cut:
        lines.append(
            f"cut {len(cut)} of {len(runnable)} cells to stay within GitHub's {limit} jobs "
            f"per matrix (oldest versions first): {', '.join(c.id for c in cut)}"
        )
    skipped = plan.skipped()
    if skipped:
        lines.append(
            f"{len(skipped)} cells not in the matrix: " + "; ".join(f"{c.id}: {c.reason}" for c in skipped)
        )
    return include, lines


def annotate(lines: list[str]) -> list[str]:
    """The lines as workflow warnings when running inside GitHub Actions."""
    if os.environ.get("GITHUB_ACTIONS") != "true":
        return lines
    return [f"::warning title=spike matrix::{line}" for line in lines]
