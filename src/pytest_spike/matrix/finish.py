"""The end of a merged run, written once: the verdict (broken, missing, reached, exit code)
and the finishing step (fail-on, the report files, the scorecard) of ``pytest-spike merge``,
``pytest-spike run`` and the nox helpers.

What breaks a merged run is one rule for all of them: a results file refused, an expected
cell or upgrade target without results (``missing``), or a cell whose own machinery failed
(``error``: the runner failed, or pytest left no usable results file). Before this module
``pytest-spike merge`` did not count ``error`` cells while ``run`` and nox did; nothing made
that difference deliberate (an ``error`` cell measured nothing, so a green merge of it is a
CI that tested nothing), so merge counts them now too. What differs between the callers on
purpose is only what they can know: ``run`` and nox's ``spike`` session know whether they were
interrupted, merge does not; that is the ``interrupted`` argument, nothing else.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pytest_spike.matrix.upgrades import missing_targets
from pytest_spike.model import Level
from pytest_spike.report.formats import STDOUT, Written, write_reports
from pytest_spike.report.grids import terminal_lines
from pytest_spike.report.terminal import output_width
from pytest_spike.report.view import Reached, ReportView, reaching

#: Exit status: a candidate or upgrade target reached ``--fail-on``.
EXIT_REACHED = 1
#: Exit status: a report could not be written.
EXIT_ERROR = 2
#: Exit status: a file refused, or a cell or target missing or broken.
EXIT_BROKEN = 3
#: Exit status: interrupted (what finished is merged and written, marked incomplete).
EXIT_INTERRUPTED = 130


@dataclass(frozen=True)
class Verdict:
    """How a merged run ended, and the exit status that says it."""

    refused: tuple[str, ...]
    #: cell ids and upgrade targets expected and without results
    missing: tuple[str, ...]
    #: cell ids whose run broke (state ``error``)
    broken_cells: tuple[str, ...]
    reached: tuple[Reached, ...]
    interrupted: bool = False

    @property
    def broken(self) -> bool:
        return bool(self.refused or self.missing or self.broken_cells)

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        if self.broken:
            return EXIT_BROKEN
        return EXIT_REACHED if self.reached else 0


def verdict(view: ReportView, *, interrupted: bool = False) -> Verdict:
    """The verdict of a merged view, at its scorecard's ``fail_on``."""
    cells = [c for g in view.grids for c in g.cells.values()]
    missing = [c.cell_id for c in cells if c.state == "missing"]
    missing += missing_targets(view.scorecard.upgrades)
    return Verdict(
        refused=tuple(view.refused),
        missing=tuple(missing),
        broken_cells=tuple(c.cell_id for c in cells if c.state == "error"),
        reached=tuple(reaching(view.scorecard, view.scorecard.fail_on)),
        interrupted=interrupted,
    )


@dataclass(frozen=True)
class Finished:
    """A finished merged run: its verdict, the reports written, the scorecard's lines."""

    verdict: Verdict
    written: Written
    lines: list[str]

    @property
    def exit_code(self) -> int:
        if self.written.errors and not self.verdict.interrupted:
            return EXIT_ERROR
        return self.verdict.exit_code

    def print(self, prog: str) -> None:
        """The scorecard on stdout; notes and errors about the reports on stderr."""
        for line in self.lines:
            print(line)
        for note in self.written.notes:
            print(f"{prog}: note: {note}", file=sys.stderr)
        for error in self.written.errors:
            print(f"{prog}: error: {error}", file=sys.stderr)


def finish(
    view: ReportView,
    targets: Mapping[str, Path],
    fail_on: Level | None = None,
    *,
    interrupted: bool = False,
    width: int | None = None,
) -> Finished:
    """Set ``fail_on`` (None: keep the files' own), write the reports, judge the run; the
    scorecard's lines, unless a format is printed on stdout instead."""
    if fail_on is not None:
        view.scorecard.fail_on = fail_on
    written = write_reports(view, targets)
    # a format printed on stdout (``--md`` with no OUT) is the output: no scorecard around it
    printed = STDOUT in targets.values()
    lines = (
        []
        if printed
        else [text for text, _ in terminal_lines(view, output_width() if width is None else width)]
    )
    return Finished(verdict(view, interrupted=interrupted), written, lines)
