"""The scorecard as Markdown, for a pull request or a GitHub Actions step summary."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_spike.model import CandidateResult, Scorecard, Scored, UpgradeResult, sorted_scored
from pytest_spike.report.grids import grid_markdown
from pytest_spike.report.terminal import (
    evidence_line,
    finding_head,
    finding_status,
    fmt_points,
    metric_lines,
    newest_release_line,
    probe_summary,
    release_line,
    row_cells,
    sandbox_notice,
    target_line,
    unboxed,
    unboxed_tests,
    upgrade_verdict,
    verdict,
)
from pytest_spike.report.view import ReportView


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _annotation(s: Scored) -> str:
    """Why a finding scores what it does, when that is not its severity's weight."""
    status = finding_status(s)
    return f"{status}: " if status else ""


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
    notice = sandbox_notice(scorecard)
    if notice:
        out += [f"**{notice}**" if unboxed(scorecard) else notice, ""]
    if scorecard.candidates:
        out += _table(scorecard)
        for result in scorecard.candidates:
            out += _candidate(result)
        metrics = metric_lines(scorecard, width=10_000)
        if metrics:
            out += ["### metrics", ""] + [f"- {line}" for line in metrics] + [""]
    for upgrade in scorecard.upgrades:
        out += _upgrade(upgrade)
    if scorecard.candidates or not scorecard.upgrades:
        out.append(f"**{verdict(scorecard)}**")
    return "\n".join(out) + "\n"


def _table(scorecard: Scorecard) -> list[str]:
    """One row per candidate, its level in bold."""
    out = [
        "| candidate | version | level | score | evidence | time | peak mem |",
        "| --- | --- | --- | ---: | --- | ---: | ---: |",
    ]
    for result in scorecard.candidates:
        cells = row_cells(result)
        cells[2] = f"**{cells[2]}**"
        out.append("| " + " | ".join(_escape(c) for c in cells) + " |")
    return out + [""]


def _candidate(result: CandidateResult) -> list[str]:
    """A candidate's section: coverage, probes, every finding with its points, cost and notes."""
    out = [
        f"### {result.name} {result.version or ''} — {result.level.value}, "
        f"{fmt_points(result.score)} points, evidence {probe_summary(result)}",
        "",
    ]
    coverage = evidence_line(result)
    if coverage:
        out += [f"_{_escape(coverage)}_", ""]
    running = unboxed_tests(result)
    if running:
        out += [f"_{_escape(running)}_", ""]
    newest = newest_release_line(result)
    if newest:
        out += [f"_{_escape(newest)}_", ""]
    out += [
        f"- `{p.nodeid}`: {p.outcome} ({p.duration_s:.2f}s"
        + (f", cached from {p.taken})" if p.cached else ")")
        for p in result.probes
    ]
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
    out += [f"> note: {_escape(note)}" for note in result.notes]
    out += [f"> behaviour: {_escape(result.behaviour)}"] if result.behaviour else []
    if result.notes or result.behaviour:
        out.append("")
    return out


def _upgrade(upgrade: UpgradeResult) -> list[str]:
    """An upgrade spike: one row per target version with its findings, then the verdict."""
    out = [f"### upgrade {upgrade.package} {upgrade.current or ''} ({_escape(upgrade.requirement)})", ""]
    out += ["| target | finding |", "| --- | --- |"]
    for target in upgrade.targets:
        out.append(f"| **{_escape(target_line(upgrade, target))}** | |")
        if target.moved[1:]:
            out.append(f"| | also moved: {_escape(', '.join(target.moved[1:]))} |")
        for finding in target.findings:
            out.append(f"| | {finding.severity.value} `{finding.code}`: {_escape(finding.message)} |")
        release = release_line(target)
        if release is not None and target.release is not None:
            out.append(f"| | {_escape(release)} |")
            for s in target.release.scored:
                if s.points > 0 or s.waiver is not None:
                    out.append(f"| | {_escape(finding_head(s))}: {_escape(s.finding.message)} |")
    return out + ["", f"**{_escape(upgrade_verdict(upgrade))}**", ""]


def render_view(view: ReportView) -> str:
    """A report view as Markdown: a merged matrix's grids and refused files, then the scorecard,
    then how ``pytest-spike run`` ran its cells."""
    if not view.merged:
        return render(view.scorecard)
    out = ["## spike matrix", ""]
    for grid in view.grids:
        out += grid_markdown(grid)
    if view.refused:
        out += ["**Refused results files:**", ""] + [f"- {r}" for r in view.refused] + [""]
    text = "\n".join(out) + "\n" + render(view.scorecard)
    if view.runner is not None:
        text += "\n" + _runner_line(view.runner) + "\n"
    return text


def _runner_line(runner: Mapping[str, Any]) -> str:
    ran = sum(c.get("state") not in ("queued", "skipped") for c in runner.get("cells") or ())
    line = (
        f"_Environments: {runner.get('backend')}; {ran} cell(s) run, {runner.get('jobs')} at a time, "
        f"in {float(runner.get('wall_s') or 0):.1f}s._"
    )
    if runner.get("interrupted"):
        line += " **Interrupted: cells that did not finish are missing.**"
    return line


class MarkdownFormat:
    """``--spike-md`` / ``--md``: the report for a pull request or a step summary."""

    def render(self, view: ReportView) -> str:
        return render_view(view)

    def note(self, view: ReportView) -> str | None:
        return None


FORMAT = MarkdownFormat()
