"""The report formats: one protocol, one registry row per format, one writer for them all.

A format is an object with ``render(view) -> str`` and ``note(view) -> str | None`` (what the
written file lacks, e.g. charts without matplotlib), kept in a module of its own and named
here by one :class:`FormatSpec` row. The row is all the rest of the program reads: the
``--spike-NAME PATH`` option of a pytest run and its help, the ``--NAME [OUT]`` flag of
``pytest-spike show``, ``merge`` and ``run``, what the written line says, and what the format
needs installed. Rows name their module as text, and this module imports nothing but the
model when it loads, so registering options imports no renderer: an idle plugin stays small. To add a format, write its module and add its row to
:data:`FORMATS`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from pytest_spike.model import SpikeError

if TYPE_CHECKING:
    from pytest_spike.report.view import ReportView

#: The target that prints a format on standard output instead of writing a file.
STDOUT = Path("-")


class ReportFormat(Protocol):
    """What a format module provides (its ``FORMAT``)."""

    def render(self, view: ReportView) -> str:
        """The whole report as text."""

    def note(self, view: ReportView) -> str | None:
        """What the written report lacks and how to get it, or None."""


@dataclass(frozen=True)
class FormatSpec:
    """One registry row: a format's name, where it lives and how it is offered."""

    #: ``--spike-NAME`` in a pytest run, ``--NAME`` on the command line
    name: str
    #: what the written line calls it: ``spike LABEL: PATH``
    label: str
    #: ``module:attribute`` of the :class:`ReportFormat`
    target: str
    #: what it writes, after "write ... as": ``JSON``, ``Markdown``
    what: str
    #: the pytest option's help, beyond "write ... to PATH"
    more: str = ""
    #: modules it imports to render, and the sentence for when one is missing
    needs: tuple[str, ...] = ()
    missing: str = ""
    #: appended to $GITHUB_STEP_SUMMARY as well, in a pytest run under GitHub Actions
    step_summary: bool = False
    #: the pytest option's whole help, where it was worded before the registry
    help: str = field(default="", compare=False)

    @property
    def option_help(self) -> str:
        return self.help or f"write the scorecard as {self.what} to PATH{self.more}"

    @property
    def cli_help(self) -> str:
        return f"write the report as {self.what} to OUT ('-', or no OUT: print it instead of the scorecard)"

    def check(self) -> None:
        """Raise SpikeError naming what to install when a module the format needs is missing."""
        for module in self.needs:
            try:
                importlib.import_module(module)
            except ImportError:
                raise SpikeError(self.missing) from None

    def load(self) -> ReportFormat:
        module, _, attribute = self.target.partition(":")
        found: ReportFormat = getattr(importlib.import_module(module), attribute)
        return found


#: The install hint of the formats that need the ``html`` extra.
HTML_HINT = "pip install 'pytest-spike[html]'"

#: Every format, in the order its options are listed and its files written.
FORMATS: tuple[FormatSpec, ...] = (
    FormatSpec(
        "json", "results", "pytest_spike.report.schema:FORMAT", "JSON",
        help="write the results of this run (one matrix cell) as JSON to PATH",
    ),
    FormatSpec(
        "md", "markdown", "pytest_spike.report.markdown:FORMAT", "Markdown", step_summary=True,
        help="write the scorecard as Markdown to PATH (also appended to $GITHUB_STEP_SUMMARY under GitHub Actions)",
    ),
    FormatSpec(
        "html", "html", "pytest_spike.report.html:FORMAT", "one self-contained HTML page",
        needs=("jinja2",), missing=f"the HTML report needs Jinja2: {HTML_HINT}",
        help="write the scorecard as one self-contained HTML page to PATH, with charts of the "
        "metrics (needs the html extra: pip install 'pytest-spike[html]')",
    ),
    FormatSpec(
        "sarif", "sarif", "pytest_spike.report.sarif:FORMAT", "SARIF 2.1.0",
        more=", for GitHub code scanning: each scored finding at the line that names its candidate",
    ),
)  # fmt: skip


def spec(name: str) -> FormatSpec:
    """The registry row called ``name``."""
    for row in FORMATS:
        if row.name == name:
            return row
    raise KeyError(name)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One ``--NAME [OUT]`` flag per format, for ``pytest-spike show``, ``merge`` and ``run``."""
    for row in FORMATS:
        parser.add_argument(
            f"--{row.name}", metavar="OUT", nargs="?", const=str(STDOUT), default=None, help=row.cli_help
        )


def targets_of(args: argparse.Namespace) -> dict[str, Path]:
    """The formats asked for by :func:`add_arguments`' flags; checked, so that a missing
    extra stops a command before any work, with its one-line hint."""
    chosen = {row.name: Path(value) for row in FORMATS if (value := getattr(args, row.name, None))}
    check(chosen)
    return chosen


def check(targets: Mapping[str, Path]) -> None:
    for name in targets:
        spec(name).check()


@dataclass
class Written:
    """What :func:`write_reports` did: ``spike LABEL: PATH`` lines, notes and one-line errors."""

    lines: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def write_reports(view: ReportView, targets: Mapping[str, Path], *, step_summary: bool = False) -> Written:
    """Write each asked-for format of ``view`` (``-``: print it), in registry order.

    ``step_summary``: a pytest run also appends the formats that say so to
    ``$GITHUB_STEP_SUMMARY`` under GitHub Actions. A format that cannot render or a file that
    cannot be written is an error line; the others are still written.
    """
    from pytest_spike._core.files import write_atomic  # not at import: settings reads the rows in idle runs

    done = Written()
    summaries: list[tuple[FormatSpec, str]] = []
    summary = os.environ.get("GITHUB_STEP_SUMMARY") if os.environ.get("GITHUB_ACTIONS") == "true" else None
    for row in FORMATS:
        path = targets.get(row.name)
        if path is None:
            continue
        try:
            row.check()
            fmt = row.load()
            text = fmt.render(view)
        except SpikeError as exc:
            done.errors.append(f"spike {row.label}: cannot write {path}: {exc}")
            continue
        try:
            if path == STDOUT:
                sys.stdout.write(text)
            else:
                write_atomic(path, text)
        except OSError as exc:
            done.errors.append(f"spike {row.label}: cannot write {path}: {exc.strerror or exc}")
            continue
        note = fmt.note(view)
        if note:
            done.notes.append(note)
        if path != STDOUT:
            done.lines.append(f"spike {row.label}: {path}" + (f" ({note})" if note else ""))
        if step_summary and row.step_summary and summary:
            summaries.append((row, text))
    for row, text in summaries:  # after the files, which are what was asked for
        try:
            with open(str(summary), "a", encoding="utf-8") as handle:
                handle.write(text)
            done.lines.append(f"spike {row.label}: appended to the GitHub Actions step summary")
        except OSError as exc:
            done.errors.append(
                f"spike {row.label}: cannot append to $GITHUB_STEP_SUMMARY: {exc.strerror or exc}"
            )
    return done
