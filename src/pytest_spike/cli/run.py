"""pytest-spike run: plan the matrix, run every cell here, merge them into one scorecard.

Exit status (:mod:`pytest_spike.matrix.finish`): 0; 1 when a candidate reaches
``--fail-on``; 3 when a cell is missing or broke or a results file was refused; 130 when
interrupted (what finished is merged and written, marked incomplete); 2 on an error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pytest_spike.matrix.finish import finish
from pytest_spike.matrix.interpreters import python_option
from pytest_spike.matrix.plan import cached_plan
from pytest_spike.matrix.runner import MatrixRunner, Progress
from pytest_spike.model import Level
from pytest_spike.report import formats


def _run(args: argparse.Namespace) -> int:
    targets = formats.targets_of(args)
    progress = Progress(sys.stderr, quiet=args.quiet)
    plan, reused = cached_plan(
        args.paths, candidates=args.candidate or (), pythons=args.python or (), versions=args.versions,
        index_url=args.index_url, refresh=args.replan,
    )  # fmt: skip
    if not args.quiet:
        ran = len(plan.runnable())
        print(
            f"pytest-spike run: {len(plan.cells)} cell(s), {ran} to run"
            + (" (plan cached)" if reused else ""),
            file=sys.stderr,
        )
    for note in plan.notes:
        print(f"pytest-spike run: {note}", file=sys.stderr)
    outcome = MatrixRunner(
        plan, paths=args.paths, results_dir=Path(args.results_dir), jobs=args.jobs,
        uv=False if args.no_uv else True, progress=progress,
    ).run()  # fmt: skip
    done = finish(
        outcome.view(),
        targets,
        Level(args.fail_on) if args.fail_on else None,
        interrupted=outcome.interrupted,
    )
    done.print("pytest-spike run")
    return done.exit_code


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``run`` on the ``pytest-spike`` parser."""
    run = subparsers.add_parser(
        "run", help="run every cell of the spike matrix here (N at a time) and merge them into one scorecard"
    )
    run.add_argument("paths", metavar="PATHS", nargs="*", help="spike test paths (default: .)")
    run.add_argument(
        "-j", "--jobs", type=int, default=None, metavar="N", help="cells at a time (default: number of CPUs)"
    )
    run.add_argument(
        "--python",
        metavar="X.Y",
        action="append",
        type=python_option,
        help="run on these Pythons instead of the marks' (repeatable)",
    )
    run.add_argument(
        "--versions", metavar="SPEC", default=None, help="run these versions instead of the marks'"
    )
    run.add_argument(
        "--candidate", metavar="REQ", action="append", help="add a candidate as --spike-candidate does"
    )
    formats.add_arguments(run)
    run.add_argument(
        "--results-dir",
        metavar="DIR",
        default=".spike/results",
        help="the cells' results files (default: %(default)s)",
    )
    run.add_argument(
        "--fail-on",
        metavar="LEVEL",
        choices=[lv.value for lv in Level],
        help="exit 1 when a candidate reaches LEVEL",
    )
    run.add_argument(
        "--index-url", metavar="URL", default=None, help="the simple index URL (default: pip's configuration)"
    )
    run.add_argument("--replan", action="store_true", help="plan again even when a cached plan is fresh")
    run.add_argument(
        "--no-uv", action="store_true", help="build environments with venv + pip even where uv is"
    )
    run.add_argument("-q", "--quiet", action="store_true", help="no progress lines, only the scorecard")
    run.set_defaults(func=_run)
