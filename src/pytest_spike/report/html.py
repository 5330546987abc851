"""The scorecard as one self-contained HTML page: colour-coded levels, charts, the matrix grid.

Pure functions turn a Scorecard (and, for a merged matrix, its grids) into a context dict;
a Jinja2 template (``templates/report.html.j2``) turns that into the page; :func:`render`
is the thin writer's whole job. The page loads nothing: CSS is inline, charts are
matplotlib's SVG output inlined, findings fold with ``<details>``, and a Content Security
Policy forbids every outside resource and every script, so "no network needed to view it"
is enforced by the browser rather than promised.

Jinja2 and matplotlib come with the ``html`` extra. Without Jinja2 there is no page (the
callers turn :func:`require_jinja2`'s error into a usage error); without matplotlib the
metrics are plain tables and the page carries the hint.
"""

from __future__ import annotations

import io
import math
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Callable

from pytest_spike.model import (
    PROBE_KINDS,
    CandidateResult,
    Metric,
    Scorecard,
    Scored,
    Severity,
    UpgradeResult,
    UpgradeTarget,
    best_metric,
    sorted_scored,
)
from pytest_spike.report.formats import HTML_HINT, spec
from pytest_spike.report.terminal import (
    cached_age,
    candidate_aliases,
    evidence_line,
    finding_head,
    fmt_mb,
    fmt_points,
    fmt_seconds,
    probe_label,
    sandbox_notice,
    target_level,
    target_line,
    target_outcome,
    unboxed,
    upgrade_verdict,
    verdict,
)
from pytest_spike.report.view import Grid, ReportView, reaching

#: The one line that says how to get what is missing.
INSTALL_HINT = HTML_HINT
#: Grid cell states that are trouble: their findings are shown on hover and on click.
RED_STATES = ("high", "blocked", "missing", "error", "install_failed")
#: How a grid cell that did not produce a level reads (as in the terminal's grid).
STATE_TEXT = {"skipped": "skipped", "missing": "missing", "install_failed": "no install", "error": "error"}
#: Findings of one cell listed in its hover text; the rest are behind the click.
TITLE_FINDINGS = 3

#: Draws one metric view (see :func:`metric_views`) as an inline ``<svg>``, given an id prefix.
ChartRenderer = Callable[[dict[str, Any], str], str]


def require_jinja2() -> None:
    """Raise SpikeError with the install hint when Jinja2 (the template engine) is missing."""
    spec("html").check()


def chart_renderer() -> ChartRenderer | None:
    """:func:`chart_svg` when matplotlib is installed, else None (plain tables instead)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return None
    return chart_svg


# -- data -> context ------------------------------------------------------------------------


def metric_views(scorecard: Scorecard) -> list[dict[str, Any]]:
    """Each metric with every candidate's value (None: the candidate did not report it)."""
    views = []
    for name in scorecard.metric_names():
        values = [(c.name, c.metrics[name]) for c in scorecard.candidates if name in c.metrics]
        best = best_metric(values)
        first: Metric = values[0][1]
        rows = []
        for cand in scorecard.candidates:
            metric = cand.metrics.get(name)
            value = None if metric is None or math.isnan(metric.value) else metric.value
            rows.append(
                {
                    "candidate": cand.name,
                    "value": value,
                    "text": "missing" if value is None else _number(value, first.unit),
                    "best": cand.name in best,
                }
            )
        views.append({"name": name, "unit": first.unit or "", "better": first.better, "rows": rows})
    return views


def _number(value: float, unit: str | None) -> str:
    return f"{value:g}" + (f" {unit}" if unit else "")


def finding_view(s: Scored) -> dict[str, Any]:
    """A finding with how it counts (points, unchecked, waived), its evidence and probe."""
    finding = s.finding
    waiver = dict(s.waiver) if s.waiver is not None else None
    waived = s.waived
    if finding.unchecked:
        status, mark = "unchecked", f"unchecked ({finding.blame.value})"
    elif waiver is not None and waived:
        status, mark = "waived", f"waived until {waiver['until']}"
    elif s.points > 0:
        status, mark = "scored", f"+{fmt_points(s.points)}"
    else:
        status, mark = "info", "0"
    if waiver is None:
        waiver_note = ""
    elif waived:
        waiver_note = str(waiver["reason"])
    else:
        waiver_note = f"waiver expired {waiver['until']}: {waiver['reason']}"
    return {
        "code": finding.code,
        "severity": finding.severity.value,
        "message": finding.message,
        "points": fmt_points(s.points),
        "status": status,
        "mark": mark,
        "waiver": waiver,
        "waiver_note": waiver_note,
        "evidence": sorted(finding.evidence.items()),
        "probe": s.probe or "",
        "head": finding_head(s),
    }


def _finding_order(scored: Sequence[Scored]) -> list[Scored]:
    """As the terminal lists them: scoring, waived, unchecked, then info."""
    ordered = sorted_scored(scored)

    def group(s: Scored) -> int:
        if s.points > 0:
            return 0
        if s.waiver is not None:
            return 1
        return 2 if s.finding.unchecked else 3

    return sorted(ordered, key=group)


def candidate_view(result: CandidateResult, lowest: Iterable[str]) -> dict[str, Any]:
    """One candidate's row, coverage, probes, findings, notes and cost."""
    evidence = result.evidence
    order = {kind: i for i, kind in enumerate(PROBE_KINDS)}
    aliases = candidate_aliases(result)
    now = time.time()
    probes = [
        {
            "label": probe_label(p, aliases),
            "nodeid": p.nodeid,
            "outcome": p.outcome,
            "status": p.outcome.split()[0],
            "duration": fmt_seconds(p.duration_s),
            "unknown": str(p.details.get("unknown") or "") if p.outcome == "skipped" else "",
            "cached": cached_age(p.taken, now) if p.cached else "",
        }
        for p in sorted(result.probes, key=lambda p: (order.get(p.kind, 99), p.nodeid))
    ]
    findings = [finding_view(s) for s in _finding_order(result.scored)]
    total = evidence["probes"]
    return {
        "name": result.name,
        "anchor": "c-" + re.sub(r"[^a-z0-9-]", "-", result.name),
        "version": result.version or "-",
        "level": result.level.value,
        "score": fmt_points(result.score),
        "lowest": result.name in set(lowest),
        "evidence": {
            "have": evidence["probes_with_evidence"],
            "total": total,
            "percent": round(100 * evidence["probes_with_evidence"] / total) if total else 0,
            "unknown": sorted(evidence["why"].items(), key=lambda kv: order.get(kv[0], 99)),
            "line": evidence_line(result) or "",
        },
        "time": fmt_seconds(result.duration_s),
        "peak": fmt_mb(result.peak_memory_mb),
        "probes": probes,
        "findings": findings,
        "counts": {
            status: sum(1 for f in findings if f["status"] == status)
            for status in ("scored", "waived", "unchecked", "info")
        },
        "notes": list(result.notes),
        "cost": (result.cost or {}).get("text", ""),
    }


def _anchor(prefix: str, *parts: str) -> str:
    return prefix + re.sub(r"[^a-z0-9-]", "-", "-".join(parts).lower())


def target_view(result: UpgradeResult, target: UpgradeTarget) -> dict[str, Any]:
    """One target version of an upgrade: the terminal's line in parts, what else moved, the
    project's findings (they carry no points: the level comes from them), and the release's
    own evidence as a scored candidate (None: no release probe ran)."""
    level = target_level(target)
    return {
        "version": target.version,
        "anchor": _anchor("u-", result.package, target.version),
        "line": target_line(result, target),
        "level": level.lower(),
        "outcome": target_outcome(target),
        "newest": target.version == result.newest_passing,
        "moved": list(target.moved[1:]),
        "findings": [_target_finding(s) for s in sorted_scored([Scored(f, 0.0) for f in target.findings])],
        "time": fmt_seconds(target.duration_s) if target.duration_s else "",
        "release": candidate_view(target.release, ()) if target.release is not None else None,
    }


def _target_finding(s: Scored) -> dict[str, Any]:
    """A target's finding drawn as a candidate's: it carries no points, so one above info
    that is not unchecked is what sets the level (shown, never folded with the info ones)."""
    view = finding_view(s)
    if view["status"] == "info" and s.finding.severity is not Severity.INFO:
        view["status"] = "level"
    return view


def upgrade_view(result: UpgradeResult) -> dict[str, Any]:
    """An upgrade spike: its baseline, one card per target version, the verdict."""
    baseline = result.baseline
    said = []
    if "tests" in baseline:
        said.append(f"{baseline['tests']} tests")
    if "passed" in baseline:
        said.append(f"{baseline['passed']} passed")
    source = f" ({baseline['source']})" if baseline.get("source") else ""
    if baseline.get("jobs"):  # merged: each job compared with its own run
        said.append(f"{baseline['jobs']} jobs")
        source = ""
    return {
        "package": result.package,
        "requirement": result.requirement,
        "current": result.current or "?",
        "baseline": ", ".join(said) + source if said else "",
        "targets": [target_view(result, t) for t in result.targets],
        "verdict": upgrade_verdict(result),
    }


def _cell_findings(result: CandidateResult | None, cell_id: str) -> list[dict[str, Any]]:
    """The merged findings that hold in ``cell_id``: those naming it, and those naming no cell
    (a finding present in every cell that ran is kept as it was)."""
    if result is None:
        return []
    mine = []
    for s in sorted_scored(result.scored):
        cells = s.finding.evidence.get("cells")
        if cells is None or cell_id in [c.strip() for c in cells.split(",")]:
            if s.points > 0 or cells is not None:
                mine.append(finding_view(s))
    return mine


def grid_view(grid: Grid, result: CandidateResult | None) -> dict[str, Any]:
    """A candidate's heat grid: versions down, Pythons across, each cell's findings attached."""
    rows = []
    for version in grid.versions:
        cells: list[dict[str, Any]] = []
        for python in grid.pythons:
            cell = grid.cells.get((python, version))
            if cell is None:
                cells.append({"state": "none", "text": "-", "title": "no cell", "findings": []})
                continue
            state = cell.state
            findings = _cell_findings(result, cell.cell_id) if state not in ("low", "skipped") else []
            if state == "skipped" or (state == "missing" and cell.reason):
                reason = cell.reason
            else:
                reason = ""
            lines = [f"{cell.cell_id}: {STATE_TEXT.get(state, state)}"]
            lines += [reason] if reason else []
            lines += [f"{f['head']}: {f['message']}" for f in findings[:TITLE_FINDINGS]]
            if len(findings) > TITLE_FINDINGS:
                lines.append(f"(+{len(findings) - TITLE_FINDINGS} more: click)")
            cells.append(
                {
                    "state": state,
                    "text": STATE_TEXT.get(state, state.upper()),
                    "cell_id": cell.cell_id,
                    "reason": reason,
                    "title": "\n".join(lines),
                    "findings": findings,
                    "red": state in RED_STATES,
                }
            )
        rows.append({"version": version, "cells": cells})
    return {"candidate": grid.candidate, "pythons": list(grid.pythons), "rows": rows}


def environment_view(scorecard: Scorecard) -> list[tuple[str, str]]:
    """The cell and environment, as (label, value) pairs in a stable order."""
    labels = [
        ("id", "cell"),
        ("python", "Python"),
        ("implementation", "implementation"),
        ("platform", "platform"),
        ("machine", "machine"),
        ("cells", "cells merged"),
        ("candidate", "candidate"),
        ("version", "version"),
        ("status", "status"),
        ("reason", "reason"),
    ]
    # "?" is what a merge says when no cell recorded it: nothing to show
    rest = {k: v for k, v in scorecard.cell.items() if v not in (None, "", "?") and k != "python_short"}
    pairs = [(label, str(rest.pop(key))) for key, label in labels if key in rest]
    pairs += [(key, str(value)) for key, value in sorted(rest.items())]
    if scorecard.plugin_version:
        pairs.append(("pytest-spike", scorecard.plugin_version))
    if scorecard.created:
        pairs.append(("created", scorecard.created))
    return pairs


def settings_view(settings: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The rules the verdict used (weights, waivers, time box...), one line each."""
    return [(key, _flat(value) or "-") for key, value in settings.items()]


def _flat(value: Any) -> str:
    if isinstance(value, Mapping):
        parts = [
            f"{k}: {_flat(v)}" if isinstance(v, Mapping) else f"{k} = {_flat(v)}" for k, v in value.items()
        ]
        return "; ".join(p for p in parts if not p.endswith(": "))
    if isinstance(value, (list, tuple)):
        return ", ".join(_flat(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def context(
    scorecard: Scorecard,
    *,
    grids: Sequence[Grid] = (),
    refused: Sequence[str] = (),
    notes: Sequence[str] = (),
    chart: ChartRenderer | None = None,
    title: str = "spike report",
) -> dict[str, Any]:
    """Everything the template shows; ``chart`` draws a metric as SVG (None: tables only)."""
    lowest = [c.name for c in scorecard.lowest_risk()]
    by_name = {c.name: c for c in scorecard.candidates}
    metrics = metric_views(scorecard)
    for i, view in enumerate(metrics):
        view["svg"] = chart(view, f"m{i}") if chart is not None else ""
    levels = [c.level.value for c in scorecard.candidates]
    upgrades = [upgrade_view(u) for u in scorecard.upgrades]
    # an upgrade-only run has no candidates to call lowest risk: its verdicts are the page's
    only_upgrades = bool(upgrades) and not scorecard.candidates
    return {
        "title": title,
        "verdict": "; ".join(u["verdict"] for u in upgrades) if only_upgrades else verdict(scorecard),
        "upgrade_verdicts": [] if only_upgrades else [u["verdict"] for u in upgrades],
        "upgrades": upgrades,
        "complete": scorecard.complete,
        "fail_on": scorecard.fail_on.value if scorecard.fail_on is not None else "",
        "reached": [str(r) for r in reaching(scorecard, scorecard.fail_on)],
        "candidates": [candidate_view(c, lowest) for c in scorecard.candidates],
        "level_counts": {level: levels.count(level) for level in dict.fromkeys(levels)},
        "metrics": metrics,
        "charts": chart is not None,
        "hint": "" if chart is not None or not metrics else f"charts need matplotlib: {INSTALL_HINT}",
        "grids": [grid_view(g, by_name.get(g.candidate)) for g in grids],
        "environment": environment_view(scorecard),
        "settings": settings_view(scorecard.settings),
        "refused": list(refused),
        "notes": [n for n in (sandbox_notice(scorecard) if unboxed(scorecard) else None,) if n] + list(notes),
    }


# -- charts ---------------------------------------------------------------------------------

#: Bar colours: the best value, the others, and the text drawn on them.
BEST_COLOUR = "#1f883d"
OTHER_COLOUR = "#8c959f"
INK = "#1f2328"


def chart_svg(view: dict[str, Any], prefix: str) -> str:
    """One horizontal bar chart of a metric, best bars marked, the unit on the value axis.

    Returns an ``<svg>`` element to inline; its ids start with ``prefix`` so that several
    charts on one page never share an id (matplotlib numbers its clip paths per figure).
    """
    import matplotlib
    from matplotlib.figure import Figure

    rows = view["rows"]
    names = [r["candidate"] for r in rows]
    values = [r["value"] if r["value"] is not None else 0.0 for r in rows]
    rc: dict[str, Any] = {
        "svg.fonttype": "none",  # text stays text: small, crisp, in the page's font
        "svg.hashsalt": prefix,  # stable ids, different per chart
        "font.family": "sans-serif",
        "font.size": 10,
        "axes.edgecolor": "#d0d7de",
        "axes.labelcolor": INK,
        "xtick.color": "#57606a",
        "ytick.color": INK,
    }
    with matplotlib.rc_context(rc):  # type: ignore[arg-type]
        fig = Figure(figsize=(5.2, 0.42 * len(rows) + 0.9))
        ax = fig.add_subplot()
        colours = [BEST_COLOUR if r["best"] else OTHER_COLOUR for r in rows]
        bars = ax.barh(range(len(rows)), values, color=colours, height=0.62)
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels(names)
        ax.invert_yaxis()  # the first candidate on top, as in the scorecard
        ax.set_xlabel(view["unit"] or view["name"])
        ax.tick_params(axis="y", length=0)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        ax.grid(axis="x", color="#eaeef2", linewidth=0.8)
        ax.set_axisbelow(True)
        labels = [
            ("missing" if r["value"] is None else f"{r['value']:g}") + ("  best" if r["best"] else "")
            for r in rows
        ]
        for text, row in zip(ax.bar_label(bars, labels=labels, padding=3, fontsize=9, color=INK), rows):
            if row["best"]:
                text.set_color(BEST_COLOUR)
                text.set_fontweight("bold")
        lo = min(0.0, *values)
        hi = max(0.0, *values)
        span = (hi - lo) or 1.0
        ax.set_xlim(lo - (0.3 * span if lo < 0 else 0), hi + 0.3 * span)
        fig.tight_layout(pad=0.4)
        out = io.StringIO()
        fig.savefig(out, format="svg", metadata={"Date": None})
    return _inline_svg(out.getvalue(), prefix)


def _inline_svg(text: str, prefix: str) -> str:
    """Drop the XML prolog and make every id (and reference to one) unique to the chart."""
    start = text.index("<svg")
    svg = text[start:]
    svg = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}-{m.group(1)}"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{prefix}-{m.group(1)})", svg)
    svg = re.sub(r'href="#([^"]+)"', lambda m: f'href="#{prefix}-{m.group(1)}"', svg)
    return svg.strip()


# -- the writer -----------------------------------------------------------------------------


def render(
    scorecard: Scorecard,
    *,
    grids: Sequence[Grid] = (),
    refused: Sequence[str] = (),
    notes: Sequence[str] = (),
    charts: bool = True,
) -> str:
    """The whole page. Raises SpikeError (with the install hint) when Jinja2 is missing;
    without matplotlib (or with ``charts=False``) the metrics are tables."""
    require_jinja2()
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("pytest_spike.report", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    from markupsafe import Markup  # Jinja2's own dependency

    chart = chart_renderer() if charts else None
    data = context(scorecard, grids=grids, refused=refused, notes=notes, chart=chart)
    for view in data["metrics"]:
        view["svg"] = Markup(view["svg"])  # our own matplotlib output: the one thing not escaped
    return env.get_template("report.html.j2").render(**data)


def charts_note(scorecard: Scorecard) -> str | None:
    """What the page lacks without matplotlib (None: nothing)."""
    if not scorecard.metric_names() or chart_renderer() is not None:
        return None
    return f"metrics as tables; charts need matplotlib: {INSTALL_HINT}"


class HtmlFormat:
    """``--spike-html`` / ``--html``: one self-contained page, a merged matrix's grids included."""

    def render(self, view: ReportView) -> str:
        return render(view.scorecard, grids=view.grids, refused=view.refused, notes=view.notes)

    def note(self, view: ReportView) -> str | None:
        return charts_note(view.scorecard)


FORMAT = HtmlFormat()
