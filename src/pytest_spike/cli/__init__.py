"""The ``pytest-spike`` command: work with results files outside a pytest run."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_spike import __version__
from pytest_spike.cli import matrix as cli_matrix
from pytest_spike.cli import run as cli_run
from pytest_spike.cli import versions as cli_versions
from pytest_spike.model import Scorecard, SpikeError
from pytest_spike.report import html, markdown, results
from pytest_spike.report.terminal import card_lines, output_width

if TYPE_CHECKING:
    from pytest_spike.matrix.merge import Grid


def _show(args: argparse.Namespace) -> int:
    scorecard = results.load(Path(args.results))
    if args.html:
        from pytest_spike.matrix.merge import Grid

        matrix = results.matrix_block(Path(args.results))
        write_html(Path(args.html), scorecard, [Grid.from_dict(g) for g in matrix.get("grids") or ()], matrix)
    if args.md:
        sys.stdout.write(markdown.render(scorecard))
        return 0
    for text, _markup in card_lines(scorecard, output_width()):
        print(text)
    return 0


def write_html(out: Path, scorecard: Scorecard, grids: Sequence[Grid], matrix: Mapping[str, Any]) -> None:
    """Write the HTML report to ``out``; say so on stderr when its metrics are tables only."""
    note = html.write(
        out, scorecard, grids=grids, refused=matrix.get("refused") or (), notes=matrix.get("notes") or ()
    )
    if note:
        print(f"pytest-spike: note: {note}", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pytest-spike", description="Work with pytest-spike results outside a pytest run."
    )
    parser.add_argument("--version", action="version", version=f"pytest-spike {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    show = commands.add_parser("show", help="print the scorecard of a results file (--spike-json)")
    show.add_argument("results", metavar="RESULTS", help="a results file written by --spike-json")
    show.add_argument("--md", action="store_true", help="print Markdown instead of the terminal table")
    show.add_argument(
        "--html",
        metavar="OUT",
        help="also write the report as one self-contained HTML page (needs pytest-spike[html])",
    )
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
