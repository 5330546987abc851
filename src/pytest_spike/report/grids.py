"""A merged matrix's grids for people, and a report view's terminal lines.

Pure functions build lines; the CLI prints them and the formats write them. The scorecard
part is the single-run renderer's own output, so a merged report reads like a single run's.
"""

from __future__ import annotations

from collections.abc import Sequence

from pytest_spike.model import Level
from pytest_spike.report.terminal import LEVEL_MARKUP, Line, card_lines
from pytest_spike.report.view import Grid, ReportView

#: How a grid cell that did not produce a level is printed.
STATE_TEXT = {
    "skipped": "skipped",
    "missing": "MISSING",
    "install_failed": "NO INSTALL",
    "error": "ERROR",
    "incomplete": "INCOMPLETE",
}


def cell_text(state: str) -> str:
    if state in STATE_TEXT:
        return STATE_TEXT[state]
    return state.upper()


def grid_rows(grid: Grid) -> list[list[str]]:
    """Header row, then one row per version: the state of each Python's cell."""
    rows = [[grid.candidate, *grid.pythons]]
    for version in grid.versions:
        row = [f"  {version}"]
        for python in grid.pythons:
            cell = grid.cells.get((python, version))
            row.append("-" if cell is None else cell_text(cell.state))
        rows.append(row)
    return rows


def align(rows: Sequence[Sequence[str]], width: int) -> list[str]:
    """Left-aligned columns; Pythons past ``width`` are cut and the cut is said."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    keep = len(widths)
    while keep > 2 and sum(widths[:keep]) + 2 * (keep - 1) > width:
        keep -= 1
    lines = ["  ".join(c.ljust(w) for c, w in zip(row[:keep], widths)).rstrip() for row in rows]
    if keep < len(widths):
        lines[0] += f"  (+{len(widths) - keep} Pythons: see --md/--json)"
    return lines


def _markup(row: Sequence[str]) -> dict[str, bool]:
    states = {text.lower() for text in row[1:]}
    for level in (Level.BLOCKED, Level.HIGH, Level.MEDIUM):
        if level.value in states:
            return LEVEL_MARKUP[level]
    if states & {"missing", "error", "no install", "incomplete"}:
        return {"red": True}
    return {}


def grid_lines(view: ReportView, width: int) -> list[Line]:
    """Each candidate's grid, Pythons across, versions down, within ``width``."""
    lines: list[Line] = []
    for grid in view.grids:
        rows = grid_rows(grid)
        rendered = align(rows, width)
        lines.append((rendered[0], {"bold": True}))
        lines += [(text, _markup(row)) for text, row in zip(rendered[1:], rows[1:])]
        lines.append(("", {}))
    return lines


def terminal_lines(view: ReportView, width: int) -> list[Line]:
    """Grids, then the scorecard, the upgrade spikes, then notes and what was refused."""
    lines = grid_lines(view, width) + card_lines(view.scorecard, width)
    for note in view.notes:
        lines.append((f"note: {note}", {"yellow": True}))
    for refusal in view.refused:
        lines.append((f"refused: {refusal}", {"red": True}))
    return lines


def grid_markdown(grid: Grid) -> list[str]:
    rows = grid_rows(grid)
    head = ["version", *rows[0][1:]]
    out = [f"#### {grid.candidate}", "", "| " + " | ".join(head) + " |"]
    out.append("| " + " | ".join("---" for _ in head) + " |")
    for row in rows[1:]:
        cells = [row[0].strip(), *(f"**{c}**" if c.isupper() else c for c in row[1:])]
        out.append("| " + " | ".join(cells) + " |")
    return out + [""]
