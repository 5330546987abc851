"""pytest-spike matrix / merge / cell-failed: plan, record a failed install, merge cells.

``matrix`` exit status: 0, or 2 on an error. ``merge`` (:mod:`pytest_spike.matrix.finish`):
0; 1 when a candidate or an upgrade target reaches ``--fail-on``; 3 when a file was refused,
an expected cell or target has no results or a cell broke (the rest are still merged); 2 when
nothing could be merged or a report could not be written.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from pytest_spike._core.files import json_object, load_json_document
from pytest_spike.matrix import cells, github, tox
from pytest_spike.matrix.finish import finish
from pytest_spike.matrix.interpreters import python_option
from pytest_spike.matrix.merge import load_all, merge
from pytest_spike.matrix.plan import Cell, MatrixPlan, plan_matrix
from pytest_spike.matrix.upgrades import (
    JOBS_SCHEMA,
    UpgradeJob,
    jobs_document,
    jobs_from_document,
    upgrade_jobs,
)
from pytest_spike.model import Level, SpikeError, parse_requirement, sorted_scored
from pytest_spike.report import formats
from pytest_spike.report.view import ReportView
from pytest_spike.services import index_client


def _matrix(args: argparse.Namespace) -> int:
    if args.upgrade:
        return _upgrade_matrix(args)
    if args.upgrade_versions:
        raise SpikeError("--upgrade-versions goes with --upgrade REQ")
    plan = plan_matrix(
        args.paths, candidates=args.candidate or (), pythons=args.python or (), versions=args.versions,
        local=not args.github, index_url=args.index_url, offline=args.offline,
    )  # fmt: skip
    for note in plan.notes:
        print(f"pytest-spike matrix: {note}", file=sys.stderr)
    if args.github:
        include, lines = github.include_list(plan)
        for line in github.annotate(lines):
            print(line, file=sys.stderr)
        print(json.dumps({"include": include}, separators=(",", ":")))
    elif args.json:
        print(json.dumps(plan.to_dict(), indent=2))
    elif args.tox:
        print(tox.tox_ini(plan, plugin=args.plugin or ("pytest-spike",)))
    else:
        for cell in plan.cells:
            where = cell.interpreter or "-"
            extra = f"  skipped: {cell.reason}" if cell.status != "run" else f"  {where}"
            print(f"{cell.id}{extra}")
    return 0


def _upgrade_matrix(args: argparse.Namespace) -> int:
    """One entry per target version of each ``--upgrade``: no spike cells are planned."""
    given = [name for name, value in (("PATHS", args.paths), ("--candidate", args.candidate),
             ("--python", args.python), ("--versions", args.versions), ("--tox", args.tox)) if value]  # fmt: skip
    if given:
        raise SpikeError(
            f"--upgrade lists upgrade targets only; drop {', '.join(given)} (plan the spike cells in a "
            "second pytest-spike matrix call)"
        )
    client = index_client(args.index_url, offline=args.offline)
    jobs = upgrade_jobs(client, args.upgrade, args.upgrade_versions)
    if args.github:
        if len(jobs) > github.MAX_JOBS:
            raise SpikeError(
                f"{len(jobs)} upgrade targets are more than GitHub's {github.MAX_JOBS} jobs per matrix; "
                "narrow --upgrade-versions"
            )
        print(json.dumps({"include": [job.to_dict() for job in jobs]}, separators=(",", ":")))
    elif args.json:
        print(json.dumps(jobs_document(jobs), indent=2))
    else:
        for job in jobs:
            print(f"{job.id}  {job.package} {job.current} -> {job.target}")
    return 0


def _result_files(items: list[str]) -> list[Path]:
    files: list[Path] = []
    for item in items:
        path = Path(item)
        files += sorted(path.glob("*.json")) if path.is_dir() else [path]
    return files


def _plans(paths: Sequence[str]) -> tuple[list[Cell], list[UpgradeJob]]:
    """The expected cells (``matrix --json``) and upgrade targets (``matrix --upgrade --json``)
    of the ``--plan`` files, told apart by their schema (each file read once)."""
    expected: list[Cell] = []
    jobs: list[UpgradeJob] = []
    for text in paths:
        cells_of, jobs_of = load_json_document(Path(text), "plan", _plan_document)
        expected += cells_of
        jobs += jobs_of
    return expected, jobs


def _plan_document(data: Any) -> tuple[list[Cell], list[UpgradeJob]]:
    document = json_object(data)
    if document.get("schema") == JOBS_SCHEMA:
        return [], jobs_from_document(document)
    return MatrixPlan.from_dict(document).cells, []


def _merge(args: argparse.Namespace) -> int:
    targets = formats.targets_of(args)  # before any work: a missing extra's hint, not a half-done merge
    expected, jobs = _plans(args.plan or [])
    loaded, refused = load_all(_result_files(args.results))
    for line in refused:
        print(f"pytest-spike merge: refused {line}", file=sys.stderr)
    if not loaded and not expected and not jobs:
        raise SpikeError("no results file could be merged")
    merged = merge(loaded, expected=expected, refused=refused, expected_upgrades=jobs)
    done = finish(merged, targets, Level(args.fail_on) if args.fail_on else None)
    done.print("pytest-spike merge")
    if args.annotate:
        for line in github_annotations(merged):
            print(line)
    return done.exit_code


#: GitHub Actions shows at most 10 error annotations per step.
MAX_ANNOTATIONS = 10


def github_annotations(merged: ReportView) -> list[str]:
    """``::error`` workflow commands for blocked candidates, within GitHub's per-step limit."""
    lines = []
    for cand in merged.scorecard.candidates:
        if cand.level is not Level.BLOCKED:
            continue
        worst = sorted_scored(cand.scored)[0].finding if cand.scored else None
        text = worst.message if worst else "blocked"
        lines.append(f"::error title=spike: {cand.name} is blocked::{_escape(text)}")
    return lines[:MAX_ANNOTATIONS]


def _escape(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _cell_failed(args: argparse.Namespace) -> int:
    req = parse_requirement(args.pin, "--pin")
    pins = [s.version for s in req.specifier if s.operator == "=="]
    if len(pins) != 1:
        raise SpikeError(f"--pin {args.pin!r} is not pinned to one version (name==X)")
    extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
    cell = Cell(args.python, canonicalize_name(req.name), f"{req.name}{extras}", pins[0])
    try:
        text = Path(args.log).read_text(encoding="utf-8", errors="replace") if args.log else ""
    except OSError as exc:
        text = f"(install log unreadable: {exc.strerror or exc})"
    out = Path(args.out or f".spike/results/{args.cell}.json")
    card = cells.install_failed_scorecard(cell, text)
    card.cell["id"] = args.cell
    cells.write(card, out)
    print(f"pytest-spike cell-failed: {args.cell}: install.failed recorded in {out}")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``matrix`` and ``merge`` on the ``pytest-spike`` parser."""
    matrix = subparsers.add_parser(
        "matrix", help="print the spike's matrix plan (cells: python x candidate x version)"
    )
    matrix.add_argument("paths", metavar="PATHS", nargs="*", help="spike test paths (default: .)")
    out = matrix.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the plan as JSON")
    out.add_argument(
        "--github", action="store_true", help="print a GitHub Actions matrix (include list, at most 256 jobs)"
    )
    out.add_argument("--tox", action="store_true", help="print a tox 4 configuration")
    matrix.add_argument(
        "--python",
        metavar="X.Y",
        action="append",
        type=python_option,
        help="run on these Pythons instead of the marks' (repeatable)",
    )
    matrix.add_argument(
        "--versions",
        metavar="SPEC",
        default=None,
        help="run these versions instead of the marks' ('latest:2', '>=2')",
    )
    matrix.add_argument(
        "--candidate",
        metavar="REQ",
        action="append",
        help="add a candidate as --spike-candidate does (repeatable)",
    )
    matrix.add_argument(
        "--plugin",
        metavar="REQ",
        action="append",
        help="how --tox cells install pytest-spike (default: pytest-spike)",
    )
    matrix.add_argument(
        "--index-url", metavar="URL", default=None, help="the simple index URL (default: pip's configuration)"
    )
    matrix.add_argument("--offline", action="store_true", help="answer from the cache only")
    matrix.add_argument(
        "--upgrade",
        metavar="REQ",
        action="append",
        help="list this upgrade spike's target versions instead of the spike's cells, one job each "
        "(repeatable; --github: include entries with id, upgrade, package, current, target and "
        "pytest_args, the pytest arguments of that one target; --json: the same under {schema, "
        "jobs}); the installed version "
        "is read from this environment, as pytest --spike-upgrade reads it, so install the "
        "project's requirements first",
    )
    matrix.add_argument(
        "--upgrade-versions",
        metavar="SPEC",
        default=None,
        help="which versions --upgrade lists: a specifier, a list or 'latest:N' "
        "(default: the newest the requirement accepts)",
    )
    matrix.set_defaults(func=_matrix)

    merge_cmd = subparsers.add_parser(
        "merge", help="merge cell results files into one scorecard with a Python x version grid"
    )
    merge_cmd.add_argument(
        "results", metavar="RESULTS", nargs="+", help="results files (--spike-json) or folders of them"
    )
    formats.add_arguments(merge_cmd)
    merge_cmd.add_argument(
        "--plan",
        metavar="PLAN",
        action="append",
        help="the plan (matrix --json, or matrix --upgrade --json): its cells or upgrade targets "
        "without results show as missing, and merge exits 3 (repeatable)",
    )
    merge_cmd.add_argument(
        "--fail-on",
        metavar="LEVEL",
        choices=[lv.value for lv in Level],
        help="exit 1 when a candidate reaches LEVEL",
    )
    merge_cmd.add_argument(
        "--annotate",
        action="store_true",
        help="also print GitHub Actions ::error lines for blocked candidates",
    )
    merge_cmd.set_defaults(func=_merge)

    failed = subparsers.add_parser(
        "cell-failed", help="write a cell's results file when its pin did not install"
    )
    failed.add_argument("cell", metavar="CELL", help="the cell id, e.g. py3.11-tomli-2.2.1")
    failed.add_argument("--pin", metavar="REQ", required=True, help="the pin, e.g. tomli==2.2.1")
    failed.add_argument("--python", metavar="X.Y", required=True, help="the cell's Python")
    failed.add_argument("--log", metavar="FILE", help="the installer's output (resolver text)")
    failed.add_argument("--out", metavar="OUT", help="default: .spike/results/CELL.json")
    failed.set_defaults(func=_cell_failed)
