"""Fold many cell results files into one scorecard with a Python x version grid.

A finding present in every cell that ran is kept as it is (findings that name a subject,
``licence.denied`` naming a distribution, are compared per subject: a Python version can pull a
different closure). A finding present in only some cells becomes a matrix finding that says where it holds: ``matrix.python_gap``
when it holds on exactly some Pythons ("fails on 3.12 and 3.13: ..."),
``matrix.version_gap`` when on exactly some versions, ``matrix.partial`` otherwise.
Skipped cells are shown in the grid and listed in an info finding, never scored as a
pass; expected cells without a results file are ``missing`` and cost points.

Upgrade spikes ride along: the ``upgrades`` of every file fold into one result per
package and installed version (:func:`pytest_spike.matrix.upgrades.fold_upgrades`), so
one CI job per target version merges into one verdict. A file with upgrades and no
candidates (``pytest --spike-upgrade ... --spike-json``) fills no grid cell.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_spike.index.order import version_key
from pytest_spike.matrix.interpreters import sort_pythons
from pytest_spike.matrix.plan import Cell
from pytest_spike.matrix.upgrades import UpgradeJob, fill_expected, fold_upgrades
from pytest_spike.model import (
    Candidate,
    CandidateResult,
    Finding,
    Level,
    ProbeResult,
    Scorecard,
    Scored,
    Severity,
    SpikeError,
    UpgradeResult,
)
from pytest_spike.report import schema
from pytest_spike.report.view import Grid, GridCell, ReportView, cell_key
from pytest_spike.scoring import Weights, level_for

MISSING_SEVERITY = Severity.MEDIUM


@dataclass
class _Run:
    python: str
    version: str
    cell_id: str
    result: CandidateResult


@dataclass(frozen=True)
class _Placed:
    """One cell of one candidate's grid: what a file says (a run or a skip) or what was expected."""

    candidate: str
    python: str
    version: str
    cell: GridCell
    run: _Run | None = None
    requirement: Candidate | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.candidate, self.python, self.version)


def load_all(paths: Iterable[Path]) -> tuple[list[tuple[Path, Scorecard]], list[str]]:
    """Read every file; each unreadable one becomes a one-line refusal, the rest load."""
    loaded: list[tuple[Path, Scorecard]] = []
    refused: list[str] = []
    for path in paths:
        try:
            loaded.append((path, schema.load(path)))
        except SpikeError as exc:
            refused.append(str(exc))
    return loaded, refused


def merge(
    scorecards: Sequence[tuple[Path, Scorecard]],
    *,
    expected: Sequence[Cell] = (),
    refused: Sequence[str] = (),
    weights: Weights | None = None,
    expected_upgrades: Sequence[UpgradeJob] = (),
) -> ReportView:
    """Merge cell scorecards; ``expected`` cells with no file show as ``missing``, and so do
    the ``expected_upgrades`` targets (``upgrade.missing``).

    Three steps: fold the files into placed cells (a later file with the same cell id replaces
    the earlier one whole), fill in the expected cells no file covers, summarise per candidate.
    Upgrade-only files skip the cells; every kept file's upgrades are folded.
    """
    kept, notes = _latest_per_cell([(path, card) for path, card in scorecards if not upgrade_only(card)])
    planned = {c.id: c for c in expected}
    placed = [p for cid, path, card in kept for p in _fold(cid, path, card, planned.get(cid))]
    placed = _fill_expected(placed, expected)
    kept_cards = [card for _, _, card in kept]
    # the files' own order, so a later job's target replaces an earlier one's
    sources = [
        (path, card) for path, card in scorecards if upgrade_only(card) or any(card is k for k in kept_cards)
    ]
    upgrades, upgrade_notes = fold_upgrades(sources)
    upgrades = fill_expected(upgrades, expected_upgrades)
    cards = [card for _, card in sources]
    return _summarise(placed, cards, upgrades, refused, notes + upgrade_notes, weights or Weights())


def upgrade_only(card: Scorecard) -> bool:
    """A file of ``pytest --spike-upgrade ... --spike-json`` without ``--spike``: no cell."""
    return bool(card.upgrades) and not card.candidates and card.cell.get("status") is None


def reaching(scorecard: Scorecard, level: Level) -> list[str]:
    """What reaches ``level``: candidates by name, upgrade targets as ``numpy 1.26.4 -> 2.0.2``."""
    names = [c.name for c in scorecard.reaching(level)]
    for upgrade in scorecard.upgrades:
        names += [
            f"{upgrade.package} {upgrade.current or '?'} -> {t.version}" for t in upgrade.reaching(level)
        ]
    return names


def _latest_per_cell(
    scorecards: Sequence[tuple[Path, Scorecard]],
) -> tuple[list[tuple[str, Path, Scorecard]], list[str]]:
    """One file per cell id, the later one where two share it (it moves to the later place)."""
    kept: dict[str, tuple[Path, Scorecard]] = {}
    notes: list[str] = []
    for path, card in scorecards:
        cid = str(card.cell.get("id") or path.stem)
        if cid in kept:
            notes.append(f"{path}: cell {cid} also in {kept.pop(cid)[0]}; kept the later file")
        kept[cid] = (path, card)
    return [(cid, path, card) for cid, (path, card) in kept.items()], notes


def _fold(cid: str, path: Path, card: Scorecard, planned: Cell | None = None) -> list[_Placed]:
    """The grid cells one file fills: each candidate it ran, or the one it skipped.

    A cell stopped before its candidate's version was known (Ctrl-C) takes its place from
    the plan (or from its id, ``py3.11-tomli-2.0.1``), never a ``?`` column of its own.
    """
    cell = card.cell
    python = _cell_python(card)
    status = str(cell.get("status") or "")
    if not status and not card.complete:
        status = "incomplete"  # stopped part-way: its level would pass for a whole run's
    if cell.get("status") == "skipped" or not card.candidates:
        name = str(cell.get("candidate") or (planned.candidate if planned else "?"))
        version = str(cell.get("version") or (planned.version if planned else "?"))
        if status == "incomplete" and planned is not None:
            python = planned.python
            return [_Placed(name, python, version, GridCell("incomplete", cid, "the run was interrupted"))]
        reason = str(cell.get("reason") or "no candidate in the file")
        return [_Placed(name, python, version, GridCell("skipped", cid, reason))]
    placed = []
    for result in card.candidates:
        version = result.version or str(
            cell.get("version") or _planned_version(cid, python, result.name, planned)
        )
        state = GridCell(
            status or result.level.value, cid, "the run was interrupted" if status == "incomplete" else ""
        )
        run = _Run(python, version, cid, result)
        placed.append(_Placed(result.name, python, version, state, run, result.candidate))
    return placed


def _planned_version(cid: str, python: str, name: str, planned: Cell | None) -> str:
    """The version a cell was planned for: the plan's, else the tail of its id, else ``?``."""
    if planned is not None and planned.candidate == name:
        return planned.version
    prefix = f"py{python}-{name}-"
    return cid.removeprefix(prefix) if cid.startswith(prefix) and len(cid) > len(prefix) else "?"


def _fill_expected(placed: list[_Placed], expected: Sequence[Cell]) -> list[_Placed]:
    """Add the expected cells no file covers: ``skipped`` if planned so, else ``missing``."""
    covered = {p.key for p in placed}
    filled = list(placed)
    for planned in expected:
        key = (planned.candidate, planned.python, planned.version)
        if key in covered:
            continue
        covered.add(key)
        if planned.status != "run":
            state = GridCell("skipped", planned.id, planned.reason)
        else:
            state = GridCell("missing", planned.id, "no results file")
        requirement = Candidate(planned.requirement)
        filled.append(_Placed(planned.candidate, planned.python, planned.version, state, None, requirement))
    return filled


def _summarise(
    placed: list[_Placed],
    cards: list[Scorecard],
    upgrades: list[UpgradeResult],
    refused: Sequence[str],
    notes: list[str],
    weights: Weights,
) -> ReportView:
    """Per candidate a grid and a merged result; one scorecard for the whole matrix."""
    by_candidate: dict[str, list[_Placed]] = {}
    for p in placed:
        by_candidate.setdefault(p.candidate, []).append(p)
    grids = [_grid(name, mine) for name, mine in by_candidate.items()]
    candidates = []
    for grid, mine in zip(grids, by_candidate.values()):
        requirement = next(
            (p.requirement for p in mine if p.requirement is not None), Candidate(grid.candidate)
        )
        runs = [p.run for p in mine if p.run is not None]
        skipped = [p.cell for p in mine if p.run is None and p.cell.state == "skipped"]
        candidates.append(_merge_candidate(requirement, grid, runs, skipped, weights))
    card = _matrix_card(cards, grids, candidates)
    card.upgrades = upgrades
    return ReportView(card, grids, list(refused), notes, merged=True)


def _grid(name: str, placed: list[_Placed]) -> Grid:
    """A candidate's grid; where two cells share a place, the later one shows."""
    grid = Grid(name, cells={(p.python, p.version): p.cell for p in placed})
    grid.pythons = sort_pythons([py for py, _ in grid.cells])
    grid.versions = sorted({v for _, v in grid.cells}, key=version_key)
    return grid


def _matrix_card(cards: list[Scorecard], grids: list[Grid], candidates: list[CandidateResult]) -> Scorecard:
    pythons = sort_pythons(
        [p for g in grids for p in g.pythons] + [_cell_python(c) for c in cards if upgrade_only(c)]
    )
    return Scorecard(
        cell={
            "id": "matrix",
            "python": ", ".join(pythons),
            "implementation": _joined(c.cell.get("implementation") for c in cards),
            "platform": _joined(c.cell.get("platform") for c in cards),
            "cells": str(sum(len(g.cells) for g in grids)),
        },
        candidates=candidates,
        complete=all(c.complete for c in cards),
        plugin_version=next((c.plugin_version for c in cards if c.plugin_version), ""),
        created=max((c.created for c in cards), default=""),
        fail_on=next((c.fail_on for c in cards if c.fail_on), None),
        settings=_sandbox(cards),
    )


def _sandbox(cards: list[Scorecard]) -> dict[str, str]:
    """Where the cells ran candidate code, in one line: 'sandboxed (bubblewrap)' when every
    cell that said so was boxed, else the first cell's reason and how many cells it was."""
    said = [str(c.settings["sandbox"]) for c in cards if c.settings.get("sandbox")]
    if not said:
        return {}  # cells of an older pytest-spike: nothing to say, nothing made up
    unboxed = [line for line in said if line.startswith("not sandboxed")]
    if not unboxed:
        return {"sandbox": said[0]}
    if len(unboxed) == len(said):
        return {"sandbox": unboxed[0]}
    return {
        "sandbox": f"not sandboxed in {len(unboxed)} of {len(said)} cells: {unboxed[0][len('not sandboxed: ') :]}"
    }


def _merge_candidate(
    candidate: Candidate, grid: Grid, runs: list[_Run], skipped: list[GridCell], weights: Weights
) -> CandidateResult:
    merged = CandidateResult(candidate=candidate)
    merged.version = ", ".join(grid.versions)
    merged.probes = _merge_probes(candidate.name, runs)
    scored = _merge_findings(runs, grid)
    missing = [c for c in grid.cells.values() if c.state == "missing"]
    if missing:
        finding = Finding(
            "matrix.cell_missing",
            MISSING_SEVERITY,
            f"no results for {len(missing)} cell(s): {', '.join(c.cell_id for c in missing)}; "
            "they did not run, or their files were refused",
            {"cells": ", ".join(c.cell_id for c in missing)},
        )
        scored.append(Scored(finding, weights.points(finding)))
    if skipped:
        reasons = Counter(c.reason for c in skipped)
        text = "; ".join(f"{reason} ({n})" for reason, n in reasons.most_common())
        finding = Finding(
            "matrix.skipped",
            Severity.INFO,
            f"{len(skipped)} cell(s) skipped: {text}",
            {"cells": ", ".join(c.cell_id for c in skipped)},
        )
        scored.append(Scored(finding, weights.points(finding)))
    merged.scored = scored
    merged.score = sum(s.points for s in scored)
    merged.level = level_for(merged.score, merged.counted_findings)
    return merged


def _merge_probes(name: str, runs: list[_Run]) -> list[ProbeResult]:
    by_node: dict[str, list[ProbeResult]] = {}
    for run in runs:
        for probe in run.result.probes:
            by_node.setdefault(probe.nodeid, []).append(probe)
    merged = []
    for nodeid, probes in by_node.items():
        bad = [p for p in probes if p.outcome != "passed"]
        details: dict[str, Any] = {}
        if not bad:
            outcome = "passed"
        elif all(p.outcome == "skipped" for p in probes):
            # unknown in every cell that ran it: still unknown (evidence rule 2), with why
            outcome = "skipped"
            reasons = Counter(str(p.details.get("unknown") or "skipped") for p in probes)
            details["unknown"] = reasons.most_common(1)[0][0]
        else:
            worst = Counter(p.outcome for p in bad).most_common(1)[0][0]
            outcome = f"{worst} on {len(bad)}/{len(runs)} cells"
        peaks = [p.peak_memory_mb for p in probes if p.peak_memory_mb is not None]
        merged.append(
            ProbeResult(
                candidate=name,
                kind=probes[0].kind,
                nodeid=nodeid,
                outcome=outcome,
                duration_s=max(p.duration_s for p in probes),
                peak_memory_mb=max(peaks) if peaks else None,
                metrics=dict(probes[-1].metrics),
                notes=list(dict.fromkeys(n for p in probes for n in p.notes)),
                details=details,
            )
        )
    return merged


#: Evidence keys that name what a finding is about, when one code speaks of several things in
#: one cell (``licence.denied`` per distribution): such findings merge per code and subject.
SUBJECT_KEYS = ("distribution",)


def _subject(finding: Finding) -> tuple[str, str]:
    return (finding.code, next((finding.evidence[k] for k in SUBJECT_KEYS if k in finding.evidence), ""))


def _merge_findings(runs: list[_Run], grid: Grid) -> list[Scored]:
    """A cell's findings by code (and subject), each compared across the cells that ran."""
    where: dict[tuple[str, str], list[tuple[_Run, Scored]]] = {}
    for run in runs:
        for key in dict.fromkeys(_subject(s.finding) for s in run.result.scored):
            first = next(s for s in run.result.scored if _subject(s.finding) == key)
            where.setdefault(key, []).append((run, first))
    merged: list[Scored] = []
    for (code, _), hits in where.items():
        worst = max(hits, key=lambda h: (h[1].points, h[1].finding.severity.rank))[1]
        if len({h[0].cell_id for h in hits}) == len({r.cell_id for r in runs}):
            merged.append(worst)
            continue
        merged.append(Scored(_gap_finding(code, hits, runs), worst.points, worst.probe, worst.waiver))
    return merged


def _gap_finding(code: str, hits: list[tuple[_Run, Scored]], runs: list[_Run]) -> Finding:
    """Say on which Pythons / versions a finding holds, when it holds on only some cells."""
    hit_ids = {h[0].cell_id for h in hits}
    pythons = sort_pythons([h[0].python for h in hits])
    versions = sorted({h[0].version for h in hits}, key=version_key)
    on_pythons = {r.cell_id for r in runs if r.python in pythons}
    on_versions = {r.cell_id for r in runs if r.version in versions}
    ran_pythons = {r.python for r in runs}
    newest = max(hits, key=lambda h: cell_key(h[0].python, h[0].version))[1].finding
    messages = Counter(h[1].finding.message for h in hits)
    message = newest.message if messages[newest.message] else messages.most_common(1)[0][0]
    verb = "fails" if newest.severity.rank >= Severity.HIGH.rank else "holds"
    if hit_ids == on_pythons and len(ran_pythons) > 1:
        new_code, place = "matrix.python_gap", _and(pythons)
    elif hit_ids == on_versions:
        new_code, place = "matrix.version_gap", _and(versions)
    else:
        new_code = "matrix.partial"
        place = f"{len(hit_ids)} of {len(runs)} cells ({', '.join(sorted(hit_ids))})"
    evidence = {
        "code": code,
        "cells": ", ".join(sorted(hit_ids)),
        "pythons": ", ".join(pythons),
        "versions": ", ".join(versions),
    }
    return Finding(new_code, newest.severity, f"{verb} on {place}: {message}", evidence)


def _cell_python(card: Scorecard) -> str:
    """The file's Python as X.Y."""
    return _short(str(card.cell.get("python_short") or card.cell.get("python") or "?"))


def _joined(values: Iterable[Any]) -> str:
    return ", ".join(sorted({str(v) for v in values if v})) or "?"


def _and(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _short(python: str) -> str:
    parts = python.split(".")
    return ".".join(parts[:2]) if len(parts) >= 2 else python
