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

from packaging.utils import canonicalize_name

from pytest_spike import kinds
from pytest_spike.model import (
    BUILTIN_KINDS,
    PROBE_KINDS,
    CandidateResult,
    Level,
    ProbeResult,
    Scorecard,
    Scored,
    Severity,
    UpgradeResult,
    UpgradeTarget,
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


def newest_release_line(result: CandidateResult) -> str | None:
    """Which release was probed when the newest needs a newer Python than the spike's
    (the signals probe's ``newest_release``; None: the newest was probed, or unknown)."""
    for probe in result.probes:
        newest = probe.details.get("newest_release") if probe.kind == "signals" else None
        if isinstance(newest, dict):
            return (
                f"probed {newest.get('probed')}: the newest release, {newest.get('value')}, requires "
                f"Python {newest.get('requires_python')} (this spike runs Python {newest.get('python')})"
            )
    return None


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


def finding_status(s: Scored) -> str:
    """Why a finding scores what it does when that is not its severity's weight, or "":
    ``unchecked (environment)``, ``waived until 2027-06-30 (pinned)``, ``waiver expired 2027-06-30``."""
    if s.finding.unchecked:
        return f"unchecked ({s.finding.blame.value})"
    if s.waived:
        assert s.waiver is not None
        return f"waived until {s.waiver['until']} ({s.waiver['reason']})"
    if s.waiver is not None:
        return f"waiver expired {s.waiver['until']}"
    return ""


def finding_head(s: Scored) -> str:
    """``+10 medium signals.stale``, ``unchecked (environment) readme.failed``,
    ``waived until 2027-06-30 (pinned) medium signals.stale``."""
    finding, status = s.finding, finding_status(s)
    if finding.unchecked:
        return f"{status} {finding.code}"
    if s.waived:
        return f"{status} {finding.severity.value} {finding.code}"
    head = f"+{fmt_points(s.points)} {finding.severity.value} {finding.code}"
    return f"{head} ({status})" if status else head


def _finding_groups(scored: Sequence[Scored]) -> tuple[list[Scored], ...]:
    """Findings that add points, waived ones, unchecked ones and info ones, most important first."""
    pointed, waived, unchecked, info = [], [], [], []
    for s in sorted_scored(scored):
        if s.points > 0:
            pointed.append(s)
        elif s.waiver is not None:
            waived.append(s)
        elif s.finding.unchecked:
            unchecked.append(s)
        else:
            info.append(s)
    return pointed, waived, unchecked, info


#: Lines of an error's excerpt shown under its finding (the rest are in the JSON report).
EXCERPT_SHOWN = 4


def _finding_line(s: Scored, width: int) -> list[Line]:
    """The finding's head and message, wrapped; under it, the lines of a multi-line error
    (its ``excerpt``) the one-line message leaves out, each on its own line."""
    red = s.points > 0 and s.finding.severity in (Severity.CRITICAL, Severity.HIGH)
    markup = {"red": True} if red else {}
    text = f"  {finding_head(s)}: {s.finding.message}"
    wrapped = textwrap.wrap(text, width=width, subsequent_indent=" " * 6) or [text]
    shown = " ".join(s.finding.message.split())
    # a real_data finding names the record in its message and keeps the error apart: show it
    error = s.finding.evidence.get("error", "")
    lines = ([f"error: {error}"] if error and " ".join(error.split()) not in shown else []) + [
        line for line in s.finding.evidence.get("excerpt", "").splitlines() if line.strip()
    ]
    rest = [line.rstrip() for line in lines if " ".join(line.split()) not in shown]
    for line in rest[:EXCERPT_SHOWN]:
        wrapped += textwrap.wrap(line, width=width, initial_indent=" " * 6, subsequent_indent=" " * 8)
    if len(rest) > EXCERPT_SHOWN:
        wrapped.append(" " * 6 + f"(+{len(rest) - EXCERPT_SHOWN} more lines in the results file)")
    return [(line, markup) for line in wrapped]


def finding_lines(scored: Sequence[Scored], width: int) -> list[Line]:
    """Findings that add points, waived ones, then a few unchecked and info ones (the rest by code)."""
    pointed, waived, unchecked, info = _finding_groups(scored)
    lines: list[Line] = []
    for s in pointed + waived + unchecked[:INFO_SHOWN] + info[:INFO_SHOWN]:
        lines += _finding_line(s, width)
    for kind, rest in (("unchecked", unchecked[INFO_SHOWN:]), ("info", info[INFO_SHOWN:])):
        if rest:
            codes = ", ".join(dict.fromkeys(s.finding.code for s in rest))
            text = f"  (+{len(rest)} more {kind} findings with 0 points: {codes})"
            lines += [(line, {}) for line in textwrap.wrap(text, width=width, subsequent_indent=" " * 4)]
    return lines


def candidate_aliases(result: CandidateResult) -> frozenset[str]:
    """What a test's parameter id may call the candidate: its project name, its import names,
    and the first part of a dotted or dashed name (``ruamel`` for ``ruamel.yaml``)."""
    names = {result.name, result.candidate.project, *result.candidate.modules}
    for probe in result.probes:
        kind = kinds.find(probe.kind)
        if kind is not None and kind.module_names is not None:
            names.update(str(m) for m in probe.details.get(kind.module_names) or ())
    aliases: set[str] = {canonicalize_name(n) for n in names if n}
    aliases |= {a.split("-")[0] for a in list(aliases) if "-" in a and len(a.split("-")[0]) >= 3}
    return frozenset(aliases)


def probe_label(probe: ProbeResult, aliases: frozenset[str] = frozenset()) -> str:
    """``install``, ``import``, or the test's name without the part of its parameter id that
    names the candidate (``test_x[tomli]``, ``test_x[ruamel.yaml-small]`` -> ``test_x``,
    ``test_x[small]``); ``aliases`` are :func:`candidate_aliases`."""
    if probe.kind in BUILTIN_KINDS:
        return probe.kind
    name = probe.nodeid.split("::")[-1]
    base, bracket, ids = name.partition("[")
    if not bracket or not ids.endswith("]"):
        return name
    names = aliases | {canonicalize_name(probe.candidate)}
    parts = ids[:-1].split("-")
    spans = sorted(
        ((i, j) for i in range(len(parts)) for j in range(i + 1, len(parts) + 1)),
        key=lambda span: span[0] - span[1],  # the longest first
    )
    for i, j in spans:
        if canonicalize_name("-".join(parts[i:j])) in names:
            rest = parts[:i] + parts[j:]
            return f"{base}[{'-'.join(rest)}]" if rest else base
    return name


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


def probe_status(probe: ProbeResult, now: float, aliases: frozenset[str] = frozenset()) -> str:
    """``import passed``, ``upstream passed (5 of 623 tests sampled)``,
    ``upstream skipped (cached 2m ago)``."""
    said = []
    sampled, collected = probe.details.get("sampled"), probe.details.get("collected")
    if probe.kind == "upstream" and probe.outcome != "skipped" and sampled and collected:
        said.append(f"{sampled} of {collected} tests sampled")
    if probe.cached:
        said.append(f"cached {cached_age(probe.taken, now)}")
    return f"{probe_label(probe, aliases)} {probe.outcome}" + (f" ({'; '.join(said)})" if said else "")


def environment_line(result: CandidateResult) -> str | None:
    """Where the candidate ran: its own environment, or the running one (None: not known)."""
    install = next((p for p in result.probes if p.kind == "install"), None)
    if install is None or "isolated" not in install.details:
        return None
    if install.details["isolated"]:
        backend = install.details.get("backend")
        return "ran in: its own environment" + (f" ({backend})" if backend else "")
    python = install.details.get("python")
    return "ran in: the running environment" + (f" ({python})" if python else "")


def probe_line(result: CandidateResult, width: int) -> list[str]:
    order = {kind: i for i, kind in enumerate(PROBE_KINDS)}
    aliases = candidate_aliases(result)
    now = time.time()
    parts = [
        probe_status(p, now, aliases)
        for p in sorted(result.probes, key=lambda p: (order.get(p.kind, 99), p.nodeid))
    ]
    return textwrap.wrap(
        "probes: " + ", ".join(parts), width=width, initial_indent="  ", subsequent_indent="    "
    )


def unboxed_tests(result: CandidateResult) -> str | None:
    """Said under a candidate whose own tests ran in the running environment: they imported
    it into the pytest process itself, outside the box (None when that is not known)."""
    install = next((p for p in result.probes if p.kind == "install"), None)
    mine = [p for p in result.probes if p.kind in ("hello_world", "real_data", "custom")]
    if install is None or not mine or install.details.get("env") or not install.details.get("installed"):
        return None
    return (
        "your tests of it ran in the running environment, not boxed "
        "(--spike-sandbox require or --spike-isolation always gives it an environment of its own)"
    )


def note_lines(result: CandidateResult, width: int) -> list[str]:
    lines: list[str] = []
    for note in result.notes:
        lines += textwrap.wrap(f"note: {note}", width=width, initial_indent="  ", subsequent_indent="    ")
    if result.behaviour:
        lines += textwrap.wrap(
            f"behaviour: {result.behaviour}", width=width, initial_indent="  ", subsequent_indent="    "
        )
    return lines


def wrap_parts(head: str, parts: Sequence[str], width: int, indent: str = "    ") -> list[str]:
    """``head`` then the parts, joined by ``, ``; lines break between parts only, so a value
    stays next to its unit and its ``(best)`` (a part longer than a line gets one of its own)."""
    lines: list[str] = []
    line = head
    for i, part in enumerate(parts):
        text = part + ("," if i < len(parts) - 1 else "")
        if line.strip() and len(line) + 1 + len(text) > width:
            lines.append(line)
            line = indent + text
        else:
            line = f"{line} {text}" if line else text
    lines.append(line)
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
        lines += wrap_parts(f"{name} ({first.better} is better):", parts, width)
    return lines


def verdict(scorecard: Scorecard) -> str:
    """The run's last line: the lowest-risk candidate and what that rests on, or why none is."""
    if not scorecard.candidates:
        return "no candidates: mark tests with spike.candidate(...) or pass --spike-candidate REQ"
    unnamed = scorecard.unnamed()
    not_named = "; ".join(f"{name}: {why}" for name, why in unnamed.items())
    best = scorecard.lowest_risk()
    if not best:
        return f"no candidate can be named lowest risk: {not_named}"
    names = " and ".join(c.name for c in best)
    first = best[0]
    tie = " (tie)" if len(best) > 1 else ""
    why = f"{first.level.value.upper()}, {fmt_points(first.score)} points, evidence {probe_summary(first)}"
    # the runners-up on the same level and score lost on coverage: say so, it decided
    behind = [
        c
        for c in scorecard.candidates
        if c not in best and c.name not in unnamed and (c.level, c.score) == (first.level, first.score)
    ]
    if behind:
        why += "; ahead of " + ", ".join(f"{c.name} (evidence {probe_summary(c)})" for c in behind)
    if not_named:
        why += f"; not named: {not_named}"
    return f"lowest risk: {names}{tie} ({why})"


def sandbox_notice(scorecard: Scorecard) -> str | None:
    """'candidate code: sandboxed (bubblewrap)' or '... not sandboxed: why' (None: not recorded)."""
    said = scorecard.settings.get("sandbox")
    return f"candidate code: {said}" if said else None


def unboxed(scorecard: Scorecard) -> bool:
    return str(scorecard.settings.get("sandbox", "")).startswith("not sandboxed")


def _indented(text: str | None, width: int, markup: dict[str, bool]) -> list[Line]:
    """A candidate's line of text under its row, wrapped and indented (none for None)."""
    if not text:
        return []
    return [
        (line, markup) for line in textwrap.wrap(text, width, initial_indent="  ", subsequent_indent="    ")
    ]


def scorecard_lines(scorecard: Scorecard, width: int) -> list[Line]:
    """Everything the terminal section prints, as (text, markup) lines within ``width``."""
    lines: list[Line] = []
    notice = sandbox_notice(scorecard)
    if notice:
        markup = {"red": True, "bold": True} if unboxed(scorecard) else {}
        lines += [(line, markup) for line in textwrap.wrap(notice, width, subsequent_indent="  ")]
    if scorecard.candidates:
        rows = [list(_HEADERS)] + [row_cells(c) for c in scorecard.candidates]
        rendered = table(rows, width)
        lines.append((rendered[0], {"bold": True}))
        for result, text in zip(scorecard.candidates, rendered[1:]):
            lines.append((text, LEVEL_MARKUP[result.level]))
            lines += _indented(evidence_line(result), width, {"yellow": True})
            lines += _indented(newest_release_line(result), width, {"yellow": True})
            lines += [(line, {}) for line in probe_line(result, width)]
            lines += _indented(environment_line(result), width, {})
            lines += _indented(unboxed_tests(result), width, {"yellow": True})
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
    written: Sequence[str] = (),
    errors: Sequence[str] = (),
) -> None:
    """Print the scorecard section through pytest's terminal reporter."""
    reporter.write_sep("=", "spike scorecard")
    for text, markup in scorecard_lines(scorecard, output_width()):
        reporter.write_line(text, **markup)
    for line in written:
        reporter.write_line(line)
    for line in errors:
        reporter.write_line(line, red=True, bold=True)


def target_level(target: UpgradeTarget) -> str:
    """``HIGH``, or ``UNKNOWN`` when nothing is known of the version: it did not run and
    nothing raised its level (a LOW with ``passes`` None)."""
    if target.passes is None and target.level is Level.LOW:
        return "UNKNOWN"
    return target.level.value.upper()


def target_outcome(target: UpgradeTarget) -> str:
    """``3 of 412 tests break``, ``cannot be installed with the project``, or why it is not known."""
    if target.passes is None:
        known = target_level(target) != "UNKNOWN"
        return ("unknown: " if known else "") + next((f.message for f in target.findings), "not run")
    if any(f.code == "upgrade.unresolvable" for f in target.findings):
        return "cannot be installed with the project"
    return f"{target.broken} of {target.compared} tests break"


def target_line(result: UpgradeResult, target: UpgradeTarget) -> str:
    """``numpy 1.26.4 -> 2.1.3  HIGH  3 of 412 tests break`` (or why it is not known)."""
    head = f"{result.package} {result.current or '?'} -> {target.version}"
    return f"{head}  {target_level(target)}  {target_outcome(target)}"


def release_line(target: UpgradeTarget) -> str | None:
    """``the release on its own: LOW, score 0; probes: import passed, signals passed``: the
    target version's own evidence (None when no release probe ran)."""
    release = target.release
    if release is None:
        return None
    now = time.time()
    probes = ", ".join(probe_status(p, now) for p in release.probes)
    return (
        f"the release on its own: {release.level.value.upper()}, score {fmt_points(release.score)}; "
        f"probes: {probes}"
    )


def upgrade_verdict(result: UpgradeResult) -> str:
    """The newest target version on which the project's tests pass, named."""
    newest = result.newest_passing
    if newest is not None:
        text = f"{result.package}: the suite passes on {newest} (newest of the versions tried)"
        release = next(t.release for t in result.targets if t.version == newest)
        if release is not None and release.level.rank >= Level.HIGH.rank:
            text += f"; the release on its own is {release.level.value.upper()}, see above"
        return text
    if any(t.passes is None for t in result.targets):
        return f"{result.package}: no version tried is known to pass (some could not be checked)"
    return f"{result.package}: the suite passes on none of the versions tried"


def _release_lines(target: UpgradeTarget, width: int) -> list[Line]:
    """The release's own evidence under its target: the line, then what scored or was waived."""
    head = release_line(target)
    if head is None or target.release is None:
        return []
    lines: list[Line] = [
        (t, {}) for t in textwrap.wrap(head, width, initial_indent="  ", subsequent_indent="    ")
    ]
    pointed, waived, _, _ = _finding_groups(target.release.scored)
    for s in pointed + waived:
        lines += [("  " + text, markup) for text, markup in _finding_line(s, width - 2)]
    return lines


def upgrade_lines(results: Sequence[UpgradeResult], width: int) -> list[Line]:
    """The ``spike upgrade`` section: one verdict line per target version, its findings, the
    newest version that passes."""
    lines: list[Line] = []
    for result in results:
        for target in result.targets:
            lines.append((target_line(result, target), LEVEL_MARKUP[target.level]))
            moved = [m for m in target.moved[1:]]
            if moved:
                text = "  also moved: " + ", ".join(moved)
                lines += [(t, {}) for t in textwrap.wrap(text, width, subsequent_indent="    ")]
            scored = [Scored(f, 0.0) for f in target.findings]
            for s in sorted_scored(scored):
                text = f"  {s.finding.severity.value} {s.finding.code}: {s.finding.message}"
                red = s.finding.severity in (Severity.CRITICAL, Severity.HIGH) and not s.finding.unchecked
                wrapped = textwrap.wrap(text, width=width, subsequent_indent=" " * 6) or [text]
                lines += [(line, {"red": True} if red else {}) for line in wrapped]
            lines += _release_lines(target, width)
        lines += [
            (t, {"bold": True}) for t in textwrap.wrap(upgrade_verdict(result), width, subsequent_indent="  ")
        ]
    return lines


def card_lines(scorecard: Scorecard, width: int) -> list[Line]:
    """A results file's scorecard (unless it holds only upgrade spikes), then its upgrade spikes:
    what ``pytest-spike show`` and ``merge`` print."""
    lines = scorecard_lines(scorecard, width) if scorecard.candidates or not scorecard.upgrades else []
    if scorecard.upgrades:
        lines.append(("spike upgrade", {"bold": True}))
        lines += upgrade_lines(scorecard.upgrades, width)
    return lines
