"""The scorecard as Markdown, for a pull request or a GitHub Actions step summary."""

from __future__ import annotations

from pytest_spike.model import Scorecard, Scored, sorted_scored
from pytest_spike.report.terminal import (
    evidence_line,
    finding_head,
    fmt_points,
    metric_lines,
    probe_summary,
    row_cells,
    verdict,
)


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _annotation(s: Scored) -> str:
    """Why a finding scores what it does, when that is not its severity's weight."""
    if s.finding.unchecked or s.waiver is not None:
        return f"{finding_head(s).rsplit(' ', 2 if not s.finding.unchecked else 1)[0]}: "
    return ""


def render(scorecard: Scorecard) -> str:
    """Render the whole scorecard; every finding is listed with its points."""
    cell = scorecard.cell
    out = [
        "## spike scorecard",
        "",
        f"Python {cell.get('python', '?')} ({cell.get('implementation', '?')}, "
        f"{cell.get('platform', '?')}), pytest-spike {scorecard.plugin_version}"
        + ("" if scorecard.complete else " — **incomplete: the run was interrupted**"),
        "",
    ]
    if scorecard.candidates:
        out += [
            "| candidate | version | level | score | evidence | time | peak mem |",
            "| --- | --- | --- | ---: | --- | ---: | ---: |",
        ]
        for result in scorecard.candidates:
            cells = row_cells(result)
            cells[2] = f"**{cells[2]}**"
            out.append("| " + " | ".join(_escape(c) for c in cells) + " |")
        out.append("")
        for result in scorecard.candidates:
            out.append(
                f"### {result.name} {result.version or ''} — {result.level.value}, "
                f"{fmt_points(result.score)} points, evidence {probe_summary(result)}"
            )
            out.append("")
            coverage = evidence_line(result)
            if coverage:
                out += [f"_{_escape(coverage)}_", ""]
            for probe in result.probes:
                when = f", cached from {probe.taken}" if probe.cached else ""
                out.append(f"- `{probe.nodeid}`: {probe.outcome} ({probe.duration_s:.2f}s{when})")
            out.append("")
            scored = sorted_scored(result.scored)
            if scored:
                out += ["| points | severity | code | finding |", "| ---: | --- | --- | --- |"]
                out += [
                    f"| {fmt_points(s.points)} | {s.finding.severity.value} | `{s.finding.code}` | "
                    f"{_escape(_annotation(s) + s.finding.message)} |"
                    for s in scored
                ]
                out.append("")
            if result.cost:
                out += [f"Cost: {result.cost['text']}", ""]
            for note in result.notes:
                out.append(f"> note: {_escape(note)}")
            if result.notes:
                out.append("")
        metrics = metric_lines(scorecard, width=10_000)
        if metrics:
            out += ["### metrics", ""] + [f"- {line}" for line in metrics] + [""]
    out.append(f"**{verdict(scorecard)}**")
    return "\n".join(out) + "\n"
