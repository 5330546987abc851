"""The ``spike scorecard`` terminal section.

Pure functions turn a Scorecard into (text, markup) lines that fit a given width; a thin
writer hands them to pytest's terminal reporter.
"""

from __future__ import annotations

import datetime
import shutil
import textwrap
import time
from collections.abc import Sequence
from typing import Any

from pytest_spike.model import (
    BUILTIN_KINDS,
    PROBE_KINDS,
    CandidateResult,
    Level,
    ProbeResult,
    Scorecard,
    Scored,
    Severity,
    best_metric,
    sorted_scored,
)

Line = tuple[str, dict[str, bool]]

LEVEL_MARKUP: dict[Level, dict[str, bool]] = {
    Level.LOW: {"green": True},
    Level.MEDIUM: {"yellow": True},
    Level.HIGH: {"red": True},
    Level.BLOCKED: {"red": True, "bold": True},
}
#: Info findings (0 points) shown per candidate; the rest are in the JSON/Markdown report.
INFO_SHOWN = 2
_HEADERS = ("candidate", "version", "level", "score", "evidence", "time", "peak mem")


def output_width() -> int:
    """Columns for the scorecard: the terminal's (at most 120), never fewer than 40."""
    return max(min(shutil.get_terminal_size().columns, 120) - 1, 40)


def fmt_seconds(seconds: float) -> str:
    return f"{seconds:.2f}s" if seconds < 10 else f"{seconds:.0f}s"


def fmt_mb(mb: float | None) -> str:
    return "-" if mb is None else f"{mb:.0f} MB" if mb >= 10 else f"{mb:.1f} MB"


def fmt_points(points: float) -> str:
    return f"{points:g}"


def probe_summary(result: CandidateResult) -> str:
    """How many probe kinds gave evidence, of those run: ``4/5``."""
    evidence = result.evidence
    return f"{evidence['probes_with_evidence']}/{evidence['probes']}"


def evidence_line(result: CandidateResult) -> str | None:
    """What the verdict rests on, when some probe gave no evidence (None: all did)."""
    evidence = result.evidence
    if not evidence["unknown"]:
        return None
    why = "; ".join(f"{kind}: {reason}" for kind, reason in evidence["why"].items())
    return f"{result.level.value.upper()} risk on evidence {probe_summary(result)}, unknown: {why}"


def row_cells(result: CandidateResult) -> list[str]:
    return [
        result.name,
        result.version or "-",
        result.level.value.upper(),
        fmt_points(result.score),
        probe_summary(result),
        fmt_seconds(result.duration_s),
        fmt_mb(result.peak_memory_mb),
    ]


def table(rows: Sequence[Sequence[str]], width: int) -> list[str]:
    """Align columns; shrink the first two (names, versions) so lines fit ``width``."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    over = sum(widths) + 2 * (len(widths) - 1) - width
    for col in (0, 1):
        if over <= 0:
            break
        cut = min(over, max(0, widths[col] - 8))
        widths[col] -= cut
        over -= cut
    lines = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            text = cell if len(cell) <= widths[i] else cell[: widths[i] - 1] + "~"
            cells.append(text.rjust(widths[i]) if i == 3 else text.ljust(widths[i]))
        lines.append("  ".join(cells).rstrip())
    return lines


def finding_head(s: Scored) -> str:
    """``+10 medium signals.stale``, ``unchecked (environment) readme.failed``,
    ``waived until 2027-06-30 (pinned) medium signals.stale``."""
    finding = s.finding
    if finding.unchecked:
        return f"unchecked ({finding.blame.value}) {finding.code}"
    if s.waiver is not None and not s.waiver.get("expired"):
        return (
            f"waived until {s.waiver['until']} ({s.waiver['reason']}) {finding.severity.value} {finding.code}"
        )
    head = f"+{fmt_points(s.points)} {finding.severity.value} {finding.code}"
    if s.waiver is not None:
        head += f" (waiver expired {s.waiver['until']})"
    return head


def finding_lines(scored: Sequence[Scored], width: int) -> list[Line]:
    """Findings that add points, waived ones, unchecked ones, then a few info findings."""
    lines: list[Line] = []
    ordered = sorted_scored(scored)
    pointed = [s for s in ordered if s.points > 0]
    waived = [s for s in ordered if s.points <= 0 and s.waiver is not None]
    unchecked = [s for s in ordered if s.points <= 0 and s.waiver is None and s.finding.unchecked]
    info = [s for s in ordered if s.points <= 0 and s.waiver is None and not s.finding.unchecked]
    for s in pointed + waived + unchecked[:INFO_SHOWN] + info[:INFO_SHOWN]:
        text = f"  {finding_head(s)}: {s.finding.message}"
        wrapped = textwrap.wrap(text, width=width, subsequent_indent=" " * 6) or [text]
        red = s.points > 0 and s.finding.severity in (Severity.CRITICAL, Severity.HIGH)
        lines += [(line, {"red": True} if red else {}) for line in wrapped]
    for kind, rest in (("unchecked", unchecked[INFO_SHOWN:]), ("info", info[INFO_SHOWN:])):
        if rest:
            codes = ", ".join(dict.fromkeys(s.finding.code for s in rest))
            text = f"  (+{len(rest)} more {kind} findings with 0 points: {codes})"
            lines += [(line, {}) for line in textwrap.wrap(text, width=width, subsequent_indent=" " * 4)]
    return lines


def probe_label(probe: ProbeResult) -> str:
    """``install``, ``import``, or the test's name without a parameter id naming the candidate."""
    if probe.kind in BUILTIN_KINDS:
        return probe.kind
    name = probe.nodeid.split("::")[-1]
    return name.replace(f"[{probe.candidate}]", "")


def cached_age(taken: str | None, now: float) -> str:
    """``2m ago``: how old reused evidence is (``taken`` as in the results' JSON)."""
    try:
        seconds = max(0.0, now - datetime.datetime.fromisoformat(str(taken)).timestamp())
    except ValueError:
        return "earlier"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return f"{int(seconds)}s ago"


def probe_line(result: CandidateResult, width: int) -> list[str]:
    order = {kind: i for i, kind in enumerate(PROBE_KINDS)}
    now = time.time()
    parts = [
        f"{probe_label(p)} {p.outcome}" + (f" (cached {cached_age(p.taken, now)})" if p.cached else "")
        for p in sorted(result.probes, key=lambda p: (order.get(p.kind, 99), p.nodeid))
    ]
    return textwrap.wrap(
        "probes: " + ", ".join(parts), width=width, initial_indent="  ", subsequent_indent="    "
    )


def note_lines(result: CandidateResult, width: int) -> list[str]:
    lines: list[str] = []
    for note in result.notes:
        lines += textwrap.wrap(f"note: {note}", width=width, initial_indent="  ", subsequent_indent="    ")
    return lines


def metric_lines(scorecard: Scorecard, width: int) -> list[str]:
    lines: list[str] = []
    for name in scorecard.metric_names():
        values = [(c.name, c.metrics[name]) for c in scorecard.candidates if name in c.metrics]
        best = best_metric(values)
        first = values[0][1]
        unit = f" {first.unit}" if first.unit else ""
        parts = []
        for cand in scorecard.candidates:
            metric = cand.metrics.get(name)
            shown = "missing" if metric is None else f"{metric.value:g}{unit}"
            parts.append(f"{cand.name} {shown}" + (" (best)" if cand.name in best else ""))
        text = f"{name} ({first.better} is better): " + ", ".join(parts)
        lines += textwrap.wrap(text, width=width, subsequent_indent="    ")
    return lines


def verdict(scorecard: Scorecard) -> str:
    best = scorecard.lowest_risk()
    if not best:
        return "no candidates: mark tests with spike.candidate(...) or pass --spike-candidate REQ"
    names = " and ".join(c.name for c in best)
    first = best[0]
    tie = " (tie)" if len(best) > 1 else ""
    return f"lowest risk: {names}{tie} ({first.level.value}, {fmt_points(first.score)} points)"


def scorecard_lines(scorecard: Scorecard, width: int) -> list[Line]:
    """Everything the terminal section prints, as (text, markup) lines within ``width``."""
    lines: list[Line] = []
    if scorecard.candidates:
        rows = [list(_HEADERS)] + [row_cells(c) for c in scorecard.candidates]
        rendered = table(rows, width)
        lines.append((rendered[0], {"bold": True}))
        for result, text in zip(scorecard.candidates, rendered[1:]):
            lines.append((text, LEVEL_MARKUP[result.level]))
            coverage = evidence_line(result)
            if coverage:
                lines += [
                    (line, {"yellow": True})
                    for line in textwrap.wrap(coverage, width, initial_indent="  ", subsequent_indent="    ")
                ]
            lines += [(line, {}) for line in probe_line(result, width)]
            lines += finding_lines(result.scored, width)
            lines += [(line, {"cyan": True}) for line in note_lines(result, width)]
            if result.cost:
                lines += [
                    (line, {})
                    for line in textwrap.wrap(
                        f"cost: {result.cost['text']}",
                        width=width,
                        initial_indent="  ",
                        subsequent_indent="    ",
                    )
                ]
        metrics = metric_lines(scorecard, width)
        if metrics:
            lines.append(("", {}))
            lines.append(("metrics", {"bold": True}))
            lines += [(line, {}) for line in metrics]
        lines.append(("", {}))
    if not scorecard.complete:
        lines.append(("the run was interrupted: these results are incomplete", {"yellow": True}))
    lines += [
        (text, {"bold": True}) for text in textwrap.wrap(verdict(scorecard), width, subsequent_indent="  ")
    ]
    if scorecard.fail_on is not None:
        reached = scorecard.reaching(scorecard.fail_on)
        if reached:
            names = ", ".join(f"{c.name} ({c.level.value})" for c in reached)
            text = f"--spike-fail-on {scorecard.fail_on.value}: reached by {names}"
            lines += [(t, {"red": True}) for t in textwrap.wrap(text, width, subsequent_indent="  ")]
    return lines


def write_scorecard(
    reporter: Any,
    scorecard: Scorecard,
    written: list[str] = (),
    errors: list[str] = (),  # type: ignore[assignment]
) -> None:
    """Print the scorecard section through pytest's terminal reporter."""
    reporter.write_sep("=", "spike scorecard")
    for text, markup in scorecard_lines(scorecard, output_width()):
        reporter.write_line(text, **markup)
    for line in written:
        reporter.write_line(line)
    for line in errors:
        reporter.write_line(line, red=True, bold=True)
