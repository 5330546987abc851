"""The ``pytest-spike`` command: work with results files outside a pytest run."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pytest_spike import __version__
from pytest_spike.cli import matrix as cli_matrix
from pytest_spike.cli import run as cli_run
from pytest_spike.cli import versions as cli_versions
from pytest_spike.model import SpikeError
from pytest_spike.report import formats, schema
from pytest_spike.report.grids import terminal_lines
from pytest_spike.report.terminal import output_width


def _show(args: argparse.Namespace) -> int:
    """Print a results file's scorecard (a merged file's grids too), or the formats asked for
    with no OUT; write those given one."""
    targets = formats.targets_of(args)
    view = schema.load_view(Path(args.results))
    written = formats.write_reports(view, targets)
    for note in written.notes:
        print(f"pytest-spike: note: {note}", file=sys.stderr)
    for error in written.errors:
        print(f"pytest-spike: error: {error}", file=sys.stderr)
    if written.errors:
        return 2
    if formats.STDOUT not in targets.values():
        for text, _markup in terminal_lines(view, output_width()):
            print(text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pytest-spike", description="Work with pytest-spike results outside a pytest run."
    )
    parser.add_argument("--version", action="version", version=f"pytest-spike {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    show = commands.add_parser("show", help="print the scorecard of a results file (--spike-json)")
    show.add_argument("results", metavar="RESULTS", help="a results file written by --spike-json")
    formats.add_arguments(show)
    show.set_defaults(func=_show)
    cli_versions.add_parser(commands)
    cli_matrix.add_parser(commands)
    cli_run.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except SpikeError as exc:
        print(f"pytest-spike: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
