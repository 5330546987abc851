"""The report view: everything a report format shows, built the same way by every path.

A single run, ``pytest-spike show``, ``merge``, ``run`` and the nox helpers each build one
:class:`ReportView` (a scorecard; for a merged matrix also its grids, the refused files, notes
and how the runner ran), and every format renders from it alone. The grid types live here, with
the view, because formats draw them and the merge fills them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_spike.index.order import version_key
from pytest_spike.model import Level, Scorecard


@dataclass
class GridCell:
    """What one (python, version) cell of a candidate shows: a level or a status."""

    state: str
    cell_id: str = ""
    reason: str = ""


@dataclass
class Grid:
    """One candidate's cells, Pythons across and versions down."""

    candidate: str
    pythons: list[str] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)
    cells: dict[tuple[str, str], GridCell] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate,
            "pythons": self.pythons,
            "versions": self.versions,
            "cells": [
                {"python": p, "version": v, "state": c.state, "cell": c.cell_id, "reason": c.reason}
                for (p, v), c in sorted(self.cells.items(), key=lambda kv: cell_key(*kv[0]))
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Grid:
        """Read back :meth:`to_dict` (the ``matrix`` block of a merged results file)."""
        cells = {
            (str(c["python"]), str(c["version"])): GridCell(
                str(c["state"]), str(c.get("cell") or ""), str(c.get("reason") or "")
            )
            for c in data.get("cells") or ()
        }
        return cls(
            str(data["candidate"]),
            [str(p) for p in data.get("pythons") or ()],
            [str(v) for v in data.get("versions") or ()],
            cells,
        )


def cell_key(python: str, version: str) -> tuple[Any, ...]:
    """Grid cells in order: by Python, then by version (unparsable ones last)."""
    return (version_key(python), version_key(version))


@dataclass
class ReportView:
    """What every report format renders: the scorecard and, for a merged matrix, the rest.

    ``merged`` says the view is a matrix (its JSON carries a ``matrix`` block, even with no
    grid: an upgrade-only merge); ``runner`` is how ``pytest-spike run`` ran the cells.
    """

    scorecard: Scorecard
    grids: list[Grid] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    merged: bool = False
    runner: dict[str, Any] | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], scorecard: Scorecard) -> ReportView:
        """The view of a results file: ``scorecard`` read from ``data``, plus its ``matrix`` block."""
        block = data.get("matrix")
        if not isinstance(block, Mapping):
            return cls(scorecard)
        runner = block.get("runner")
        return cls(
            scorecard,
            [Grid.from_dict(g) for g in block.get("grids") or ()],
            [str(r) for r in block.get("refused") or ()],
            [str(n) for n in block.get("notes") or ()],
            merged=True,
            runner=dict(runner) if isinstance(runner, Mapping) else None,
        )

    def to_dict(self) -> dict[str, Any]:
        """The scorecard's own JSON; a merged view adds a ``matrix`` block (``show`` reads it)."""
        data = self.scorecard.to_dict()
        if self.merged:
            data["matrix"] = {
                "grids": [g.to_dict() for g in self.grids],
                "refused": list(self.refused),
                "notes": list(self.notes),
            }
            if self.runner is not None:
                data["matrix"]["runner"] = dict(self.runner)
        return data

    def states(self) -> set[str]:
        """The states of every grid cell."""
        return {c.state for g in self.grids for c in g.cells.values()}


@dataclass(frozen=True)
class Reached:
    """A candidate or an upgrade target at or above the ``fail_on`` level."""

    name: str
    level: Level

    def __str__(self) -> str:
        return f"{self.name} ({self.level.value})"


def reaching(scorecard: Scorecard, level: Level | None) -> list[Reached]:
    """The one "reached" rule: candidates, then upgrade targets (``numpy 1.26.4 -> 2.0.2``),
    at or above ``level`` (None: nothing reaches it)."""
    if level is None:
        return []
    found = [Reached(c.name, c.level) for c in scorecard.reaching(level)]
    for upgrade in scorecard.upgrades:
        found += [
            Reached(f"{upgrade.package} {upgrade.current or '?'} -> {t.version}", t.level)
            for t in upgrade.reaching(level)
        ]
    return found
