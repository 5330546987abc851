"""Register the spike matrix as nox sessions from a project's ``noxfile.py``.

::

    # noxfile.py
    from pytest_spike.matrix.nox import spike_sessions

    spike_sessions(["tests/spikes"])

gives ``spike``, which runs every cell through pytest-spike's own runner
(:mod:`pytest_spike.matrix.runner`: one environment per cell linked to one pytest layer
per interpreter, N cells at a time, ``nox -s spike -- -j 2``) and ends with the merged
scorecard, in one nox session. For fan-out (one CI job per cell) it also gives one
session per cell, ``spike_cell(py3.11-tomli-2.2.1)`` (``nox -l --json`` lists them,
``nox -s "spike_cell(py3.11-tomli-2.2.1)"`` runs one), and ``spike_merge``, which merges
the results files the cell sessions left.

Upgrade spikes fan out the same way from a session of the project's own (it installs the
project, whose tests the upgrade spike runs)::

    from pytest_spike.matrix.nox import merge_results, upgrade_targets

    @nox.session
    @nox.parametrize("target", upgrade_targets("numpy", versions="latest:3", current="1.26.4"))
    def upgrade(session, target):
        session.install("-e", ".", "pytest-spike")
        session.run("pytest", "--spike-upgrade", "numpy", "--spike-upgrade-versions", target,
                    "--spike-json", f".spike/results/upgrade-numpy-{target}.json",
                    success_codes=[0, 1])  # 1: some tests failed, a result

    @nox.session(python=False)
    def upgrade_merge(session):
        merge_results(session)

:func:`merge_results` (or ``spike_merge``, which picks up upgrade-only files in the
results folder too) folds those files' upgrades into one verdict per package.

The plan is cached (:func:`pytest_spike.matrix.plan.cached_plan`): ``nox -l`` and a second
``nox -s spike`` do not collect or ask the index again while the test files, the index
settings and PATH are unchanged and the index answers are fresh.

Interpreters are resolved before nox sees them (full paths from PATH, pyenv or uv), and
nox is told never to download one. A cell whose interpreter is absent runs without a
virtualenv, writes a ``skipped`` results file with the reason and ends as a skipped
session: nox's "missing interpreters are skipped, exit 0" can't lose a cell silently.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable

from pytest_spike._core import runner
from pytest_spike._core.files import write_atomic
from pytest_spike.envs.manager import find_uv, tool_env, uv_index_args
from pytest_spike.matrix import cells
from pytest_spike.matrix.finish import Finished, finish
from pytest_spike.matrix.merge import load_all, merge, upgrade_only
from pytest_spike.matrix.plan import Cell, MatrixPlan, cached_plan, load_matrix_plan
from pytest_spike.matrix.runner import MatrixRunner, Progress
from pytest_spike.matrix.upgrades import UpgradeJob, upgrade_jobs
from pytest_spike.model import Level, Scorecard, SpikeError
from pytest_spike.report import schema
from pytest_spike.report.view import ReportView
from pytest_spike.services import index_client

#: Set by the nox process that planned, so its --parallel workers reuse the plan.
PLAN_ENV = "PYTEST_SPIKE_NOX_PLAN"
#: Installing a pin can mean building an sdist: give it time, but not forever.
INSTALL_TIMEOUT = 900.0


def install_argv(python: str, requirements: Sequence[str], uv: str | None) -> list[str]:
    """The command that installs ``requirements`` into ``python``'s environment.

    uv (about 10x faster here) gets pip's index settings as arguments, since it reads
    neither pip.conf nor ``PIP_*``; pip reads them itself.
    """
    if uv:
        return [uv, "pip", "install", "--python", python, *uv_index_args(), *requirements]
    return [python, "-m", "pip", "install", "--disable-pip-version-check", *requirements]


def pytest_argv(cell: Cell, out: Path, paths: Sequence[str]) -> list[str]:
    """The pytest command line of one cell (run with the cell's interpreter)."""
    return [
        "-m", "pytest", "--spike", "--spike-select", cell.candidate,
        "--spike-cell", cell.id, "--spike-json", str(out), *paths,
    ]  # fmt: skip


def _venv_python(session: Any) -> str:
    name = "python.exe" if os.name == "nt" else "python"
    return str(Path(session.bin) / name)


def run_cell(
    session: Any,
    cell: Cell,
    *,
    results_dir: Path,
    paths: Sequence[str],
    plugin: Sequence[str],
    install: Sequence[str],
) -> Path:
    """One cell in a nox session: install the pin, run pytest, always leave a results file."""
    out = results_dir / f"{cell.id}.json"
    if out.exists():
        out.unlink()  # a stale file from an earlier run must not pass for this one
    if cell.status != "run":
        cells.write(cells.skipped_scorecard(cell, cell.reason), out)
        session.skip(f"{cell.id} skipped: {cell.reason}")
    python = _venv_python(session)
    done = runner.run(
        install_argv(python, [*plugin, *install, cell.pin], find_uv()),
        timeout=INSTALL_TIMEOUT,
        env=tool_env(),
    )
    if not done.ok:
        cells.write(cells.install_failed_scorecard(cell, done.stderr + "\n" + done.stdout), out)
        session.warn(f"{cell.pin} did not install ({done.describe()}); recorded in {out}")
        return out
    session.log(f"installed {cell.pin} and pytest-spike in {done.duration_s:.1f}s")
    # Exit 1 means the probes found high risks: that is a result, not a broken cell.
    session.run("python", *pytest_argv(cell, out, paths), success_codes=list(range(0, 6)))
    try:
        schema.load(out)
    except SpikeError as exc:
        cells.write(cells.error_scorecard(cell, "pytest left no usable results file", str(exc)), out)
        session.warn(f"{cell.id}: {exc}")
    return out


#: The upgrade targets this noxfile listed (``upgrade_targets``): merged, each one without a
#: results file is missing (nox imports the noxfile again for a merge-only run, and lists them).
_PLANNED: list[UpgradeJob] = []


def upgrade_targets(
    requirement: str,
    versions: str | Sequence[str] | None = None,
    *,
    current: str | None = None,
    index_url: str | None = None,
) -> list[str]:
    """The target versions of an upgrade spike, oldest first, to parametrize a session with.

    ``versions`` is the ``versions=`` syntax (default: the newest release ``requirement``
    accepts). The installed version, which is never a target, is read from the interpreter
    running the noxfile, as ``pytest --spike-upgrade`` reads it; where that interpreter lacks
    the package, pass ``current`` (the version your sessions install).
    """
    client = index_client(index_url)
    jobs = upgrade_jobs(client, [requirement], versions, current=current, where="upgrade_targets")
    _PLANNED.extend(job for job in jobs if job not in _PLANNED)
    return [job.target for job in jobs]


def report(
    plan: MatrixPlan, results_dir: Path, out_dir: Path, fail_on: Level | None = None
) -> tuple[list[str], bool]:
    """Merge the plan's cell files and the upgrade-only files beside them; (terminal lines,
    whether the matrix is clean)."""
    files = [results_dir / f"{c.id}.json" for c in plan.cells]
    loaded, refused = load_all(f for f in files if f.exists())
    others, others_refused = load_all(sorted(set(results_dir.glob("*.json")) - set(files)))
    # other files with candidates are left-overs of an earlier plan: not this matrix's cells
    loaded += [(path, card) for path, card in others if upgrade_only(card)]
    return _report(loaded, refused + others_refused, plan.cells, out_dir, fail_on)


def merge_results(
    session: Any, results_dir: str | Path = ".spike/results", *, fail_on: str | None = None
) -> None:
    """Merge every results file in ``results_dir`` (cells and upgrade spikes) in a nox session.

    Writes ``report.json`` and ``report.md`` beside the folder and fails the session when a
    file was refused, a cell broke, a target :func:`upgrade_targets` listed has no results
    file (``upgrade.missing``), or a candidate or upgrade target reaches ``fail_on``.
    """
    folder = Path(results_dir)
    loaded, refused = load_all(sorted(folder.glob("*.json")))
    if not loaded and not refused:
        session.error(f"no results files in {folder}")
    lines, clean = _report(loaded, refused, (), folder.parent, Level(fail_on) if fail_on else None)
    print("\n".join(lines))
    if not clean:
        session.error("refused files, broken cells, or a result at the fail_on level (see above)")


def _report(
    loaded: list[tuple[Path, Scorecard]],
    refused: list[str],
    expected: Sequence[Cell],
    out_dir: Path,
    fail_on: Level | None,
) -> tuple[list[str], bool]:
    merged = merge(loaded, expected=expected, refused=refused, expected_upgrades=_PLANNED)
    return _finished(merged, out_dir, fail_on)


def _finished(
    view: ReportView, out_dir: Path, fail_on: Level | None, *, interrupted: bool = False
) -> tuple[list[str], bool]:
    """The finishing step of every nox path: ``report.json`` and ``report.md`` beside the
    results folder; (the lines to print, whether the run is clean)."""
    done: Finished = finish(view, _reports(out_dir), fail_on, interrupted=interrupted)
    lines = done.lines + [f"spike matrix report: {out_dir / 'report.json'}, {out_dir / 'report.md'}"]
    lines += [f"spike: error: {error}" for error in done.written.errors]
    return lines, done.exit_code == 0


def _reports(out_dir: Path) -> dict[str, Path]:
    return {"json": out_dir / "report.json", "md": out_dir / "report.md"}


def _supported(decorator: Callable[..., Any], **wanted: Any) -> dict[str, Any]:
    """The keyword arguments this nox version's decorator accepts (older ones lack some)."""
    params = inspect.signature(decorator).parameters
    return {k: v for k, v in wanted.items() if k in params}


def spike_sessions(
    paths: Sequence[str] = (".",),
    *,
    name: str = "spike",
    plugin: Sequence[str] = ("pytest-spike",),
    install: Sequence[str] = (),
    pythons: Sequence[str] = (),
    versions: str | None = None,
    candidates: Sequence[str] = (),
    results_dir: str = ".spike/results",
    fail_on: str | None = None,
    plan: MatrixPlan | None = None,
) -> MatrixPlan:
    """Register ``<name>_cell`` (one parametrized session per cell) and ``<name>`` (merge).

    ``plugin`` is how each cell installs pytest-spike (``["-e", "../.."]`` for a checkout),
    ``install`` adds requirements every cell needs, ``pythons`` overrides the marks' Python
    lists and ``versions`` their ``versions=`` specs. Paths are relative to the noxfile's
    folder, where nox runs sessions.
    """
    import nox

    level = Level(fail_on) if fail_on else None
    out_dir = Path(results_dir).parent
    inherited = os.environ.get(PLAN_ENV)
    if plan is None and inherited and Path(inherited).is_file():
        # A nox --parallel worker: the parent nox planned already; re-planning in every
        # worker would cost a collection and index look-ups per cell.
        plan = load_matrix_plan(Path(inherited))
    if plan is None:
        plan, _ = cached_plan(paths, candidates=candidates, pythons=pythons, versions=versions)
        plan_file = out_dir / "plan.json"
        write_atomic(plan_file, json.dumps(plan.to_dict(), indent=2) + "\n")
        os.environ[PLAN_ENV] = str(plan_file.resolve())
    by_id = {c.id: c for c in plan.cells}
    for note in plan.notes:
        print(f"pytest-spike: {note}", file=sys.stderr)

    def spike_cell(session: nox.Session, cell: str) -> None:
        run_cell(
            session, by_id[cell], results_dir=Path(results_dir), paths=list(paths),
            plugin=plugin, install=install,
        )  # fmt: skip

    spike_cell.__doc__ = "One cell of the spike matrix (python x candidate x version)."
    params = [nox.param(c.interpreter if c.status == "run" else False, c.id, id=c.id) for c in plan.cells]
    uv = find_uv()
    if uv and not shutil.which("uv"):
        # nox looks for uv on PATH (or beside its own interpreter): show it the one we found
        # (the ``uv`` package's binary), or every cell session falls back to virtualenv.
        os.environ["PATH"] = os.pathsep.join([str(Path(uv).parent), os.environ.get("PATH", "")])
    backend = "uv|virtualenv" if uv else "virtualenv"
    extra = _supported(nox.session, download_python="never", allow_parallel=True)
    nox.session(name=f"{name}_cell", venv_backend=backend, **extra)(
        nox.parametrize(["python", "cell"], params)(spike_cell)
    )

    def spike_report(session: nox.Session) -> None:
        lines, clean = report(plan, Path(results_dir), out_dir, level)
        print("\n".join(lines))
        if not clean:
            session.error(
                "the spike matrix has missing or broken cells, refused files, or a "
                "candidate at the --fail-on level (see above)"
            )

    spike_report.__doc__ = "Merge the results files of the spike_cell sessions into one scorecard."
    nox.session(name=f"{name}_merge", python=False)(spike_report)

    def spike_run(session: nox.Session) -> None:
        clean = run_all(plan, session.posargs, paths=list(paths), results_dir=Path(results_dir), level=level)
        if not clean:
            session.error(
                "the spike matrix was interrupted, has missing or broken cells, refused files, "
                "or a candidate at the --fail-on level (see above)"
            )

    spike_run.__doc__ = "Run every spike cell here (-- -j N at a time), then merge them into one scorecard."
    nox.session(name=name, python=False)(spike_run)
    return plan


def run_all(
    plan: MatrixPlan,
    posargs: Sequence[str],
    *,
    paths: Sequence[str],
    results_dir: Path,
    level: Level | None = None,
) -> bool:
    """The ``spike`` session: every cell through the runner, merged; whether it is clean.

    ``posargs`` (after ``--``) take ``-j N`` and ``-q``. Writes ``report.json`` and
    ``report.md`` beside the results folder, as the merge session does.
    """
    parser = argparse.ArgumentParser(prog="nox -s spike --", add_help=False)
    parser.add_argument("-j", "--jobs", type=int, default=None)
    parser.add_argument("-q", "--quiet", action="store_true")
    opts = parser.parse_args(list(posargs))
    outcome = MatrixRunner(
        plan, paths=paths, results_dir=results_dir, jobs=opts.jobs,
        progress=Progress(sys.stderr, quiet=opts.quiet),
    ).run()  # fmt: skip
    lines, clean = _finished(outcome.view(), results_dir.parent, level, interrupted=outcome.interrupted)
    print("\n".join(lines))
    return clean
