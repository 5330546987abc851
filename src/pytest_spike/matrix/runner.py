"""Run the matrix's cells ourselves: one environment per cell, N at a time, one scorecard.

For each runnable cell of a plan (the same plan as ``pytest-spike matrix``):

1. the cell's environment holds only the pin, built with uv (``uv venv`` + ``uv pip
   install``) or, without uv, ``venv`` + pip, cached by interpreter + pin + index settings;
2. the cell's interpreter has a *layer*, pytest + pytest-spike built once per interpreter
   and versions (:func:`pytest_spike.envs.layer.layer_for`), shared by all its cells and
   built from the run's start, in a thread of its own; a ``.pth`` file links the
   environment to it, after its own packages (the candidate's dependencies win);
3. ``python -m pytest --spike --spike-select NAME --spike-cell ID --spike-json ID.json``
   runs in it, in a process group of its own.

Every plan cell ends with a results file (skipped, ``install.failed``, an error, or
pytest's own), and the files merge into one scorecard with the Python x version grid, as
``pytest-spike merge`` does. Ctrl-C or SIGTERM stops the running cells (their process
groups get SIGTERM, then SIGKILL after a grace period), and what finished is still merged,
marked ``"complete": false``.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pytest_spike._core import runner, sandbox
from pytest_spike._core.files import write_atomic
from pytest_spike._core.interrupt import sigterm_as_interrupt
from pytest_spike.envs.layer import layer_for
from pytest_spike.envs.manager import EnvManager, EnvResult, find_uv, tool_env
from pytest_spike.matrix import cells
from pytest_spike.matrix.merge import load_all, merge
from pytest_spike.matrix.plan import Cell, MatrixPlan
from pytest_spike.model import SpikeError, default_cache_root
from pytest_spike.report import schema
from pytest_spike.report.view import ReportView

#: A cell's pytest run (all its probes) gets this long before its group is killed.
CELL_TIMEOUT = 1800.0
#: Building a cell's environment can mean building an sdist.
INSTALL_TIMEOUT = 900.0
#: After Ctrl-C, running cells get this long to write their partial results (SIGTERM).
STOP_GRACE = 3.0
#: The spike cache's folder for the cells' environments (apart from the probes' own).
CELLS_CACHE = "cells"
_LAYER_PTH = "_pytest_spike_layer.pth"
#: Threads building the interpreters' layers from a run's start: a layer's build waits on
#: the disk and the package index as much as it computes (its copy or install, then
#: compileall), so two overlap well on two cores; more only compete with the cells.
LAYER_BUILDERS = 2
#: States of a cell that has ended.
FINAL = ("done", "skipped", "install_failed", "error", "interrupted")


@dataclass
class CellRun:
    """What happened to one cell, and where its time went (seconds)."""

    cell: Cell
    state: str = "queued"
    level: str = ""
    layer_s: float = 0.0
    env_s: float = 0.0
    env_reused: bool = False
    pytest_s: float = 0.0
    probes_s: float = 0.0
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "cell": self.cell.id,
            "state": self.state,
            "level": self.level,
            "layer_s": round(self.layer_s, 3),
            "env_s": round(self.env_s, 3),
            "env_reused": self.env_reused,
            "pytest_s": round(self.pytest_s, 3),
            "probes_s": round(self.probes_s, 3),
            "startup_s": round(max(0.0, self.pytest_s - self.probes_s), 3),
            "detail": self.detail,
        }


@dataclass
class RunOutcome:
    """The merged scorecard of a run, how each cell ended, and how it was run."""

    merged: ReportView
    runs: list[CellRun]
    backend: str
    uv: str | None
    jobs: int
    wall_s: float
    interrupted: bool = False

    @property
    def complete(self) -> bool:
        return self.merged.scorecard.complete

    def runner_info(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "uv": self.uv,
            "jobs": self.jobs,
            "wall_s": round(self.wall_s, 3),
            "interrupted": self.interrupted,
            "cells": [r.to_dict() for r in self.runs],
        }

    def view(self) -> ReportView:
        """The merged view with how the cells were run (its JSON's ``matrix.runner`` block, a
        line of its Markdown)."""
        self.merged.runner = self.runner_info()
        return self.merged


def backend_name(uv: str | None) -> str:
    return "uv" if uv else "venv + pip"


class Progress:
    """Live progress on a stream: on a terminal, one line per running cell, redrawn in
    place, with finished cells printed above them; elsewhere one plain line when a cell
    starts and one when it ends. ``quiet`` prints nothing."""

    def __init__(
        self, stream: IO[str] | None = None, *, quiet: bool = False, tty: bool | None = None
    ) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = self.stream.isatty() if tty is None else tty
        self._drawn = 0
        self._said: dict[str, str] = {}
        self._lock = threading.Lock()
        self.total = 0
        self.finished = 0

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    def update(self, runs: Sequence[CellRun]) -> None:
        """Show what changed since the last call."""
        if self.quiet:
            return
        with self._lock:
            out: list[str] = []
            if self.tty and self._drawn:
                out.append(f"\x1b[{self._drawn}F\x1b[J")  # back to the first running line, clear
            running: list[str] = []
            for run in runs:
                before = self._said.get(run.cell.id)
                if run.state == before:
                    if run.state not in FINAL and run.state != "queued":
                        running.append(_running_line(run))
                    continue
                self._said[run.cell.id] = run.state
                if run.state in FINAL:
                    self.finished += 1
                    out.append(_final_line(run, self.finished, self.total) + "\n")
                elif run.state != "queued":
                    running.append(_running_line(run))
                    if not self.tty and before in (None, "queued"):
                        out.append(f"start  {run.cell.id}\n")
            if self.tty:
                out += [line + "\n" for line in running]
                self._drawn = len(running)
            if out:
                self._write("".join(out))


def _running_line(run: CellRun) -> str:
    return f"  ...  {run.cell.id}  {run.state}"


def _final_line(run: CellRun, n: int, total: int) -> str:
    what = run.level.upper() if run.state == "done" and run.level else run.state.replace("_", " ").upper()
    times = ""
    if run.env_s or run.pytest_s:
        env = f"env {run.env_s:.1f}s{' reused' if run.env_reused else ''}"
        times = f"  ({env}, pytest {run.pytest_s:.1f}s)" if run.pytest_s else f"  ({env})"
    tail = f"  {run.detail[:160]}" if run.detail and run.state != "done" else ""
    return f"[{n}/{total}] {run.cell.id}  {what}{times}{tail}"


class MatrixRunner:
    """Runs a plan's cells, ``jobs`` at a time; :meth:`run` returns the merged outcome."""

    def __init__(
        self,
        plan: MatrixPlan,
        *,
        paths: Sequence[str] = (),
        cwd: str | os.PathLike[str] | None = None,
        results_dir: Path = Path(".spike/results"),
        jobs: int | None = None,
        cache_dir: Path | None = None,
        uv: str | None | bool = True,
        timeout: float = CELL_TIMEOUT,
        progress: Progress | None = None,
    ) -> None:
        self.plan = plan
        self.paths = list(paths or plan.paths)
        self.cwd = Path(cwd or os.getcwd()).resolve()
        self.results_dir = results_dir if results_dir.is_absolute() else self.cwd / results_dir
        self.jobs = max(1, jobs or os.cpu_count() or 1)
        self.cache_dir = (cache_dir or default_cache_root()).absolute()
        # True: find uv; None / False: venv + pip (the fallback, also for tests); a str: that uv
        self.uv = find_uv() if uv is True else (uv or None)
        self.timeout = timeout
        self.progress = progress or Progress(quiet=True)
        self.stop = threading.Event()
        self._pids: set[int] = set()
        self._lock = threading.Lock()
        self._layers: dict[str, Path | SpikeError] = {}
        self._managers: dict[str, EnvManager] = {}
        self._interp_locks: dict[tuple[str, str], threading.Lock] = {}
        self._envs: dict[str, Future[EnvResult]] = {}
        self._cell_threads: set[threading.Thread] = set()
        self._tried: Future[dict[str, str]] | None = None

    # -- the whole run ------------------------------------------------------------------

    def run(self) -> RunOutcome:
        start = time.perf_counter()
        runs = [CellRun(c) for c in self.plan.cells]
        self.progress.total = len(runs)
        self.results_dir.mkdir(parents=True, exist_ok=True)
        for run in runs:  # stale files of an earlier run must not pass for this one
            self._out(run.cell).unlink(missing_ok=True)
        interrupted = False
        restore = sigterm_as_interrupt()
        # bubblewrap is tried once here, while the first cells check their environments, and
        # the cells take its word (sandbox.TRIED_ENV) rather than each trying it again.
        trial = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spike-box-trial")
        self._tried = trial.submit(sandbox.tried_env)
        trial.shutdown(wait=False)
        runnable = [c for c in self.plan.cells if c.status == "run" and c.interpreter]
        pythons = list(dict.fromkeys(c.interpreter for c in runnable))
        ahead = [
            threading.Thread(
                target=self._layers_ahead, args=(pythons,), name=f"spike-layers-ahead-{n}", daemon=True
            )
            for n in range(min(len(pythons), LAYER_BUILDERS))
        ]
        ahead.append(
            threading.Thread(
                target=self._envs_ahead, args=(runnable, len(pythons)), name="spike-envs-ahead", daemon=True
            )
        )
        for thread in ahead:
            thread.start()
        pool = ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="spike-cell")
        try:
            futures: list[Future[None]] = [pool.submit(self._guarded, r) for r in runs]
            pending = set(futures)
            while pending:
                _, pending = wait(pending, timeout=0.25 if self.progress.tty else 0.5)
                self.progress.update(runs)
        except KeyboardInterrupt:
            interrupted = True
            self._stop_all(pool)
            # the builds (installers, layers) of the threads ahead and of the cells: the
            # cells' threads would otherwise wait for them to end
            with self._lock:
                cell_threads = list(self._cell_threads)
            runner.stop_started_by([*ahead, *cell_threads])
        finally:
            restore()
        pool.shutdown(wait=True)
        for run in runs:
            if run.state not in FINAL:
                run.state, run.detail = "interrupted", "stopped before it finished"
        self.progress.update(runs)
        merged = self._merge(runs, interrupted)
        return RunOutcome(
            merged, runs, backend_name(self.uv), self.uv, self.jobs, time.perf_counter() - start, interrupted
        )

    def _stop_all(self, pool: ThreadPoolExecutor) -> None:
        """Stop queued cells, then running ones: SIGTERM (partial results), then SIGKILL."""
        self.stop.set()
        with self._lock:
            pids = list(self._pids)
        for pid in pids:
            runner.stop_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        while time.monotonic() < deadline:
            with self._lock:
                if not self._pids:
                    break
            time.sleep(0.05)
        with self._lock:
            pids = list(self._pids)
        for pid in pids:
            runner.stop_group(pid, signal.SIGKILL)
        pool.shutdown(wait=False, cancel_futures=True)

    def _merge(self, runs: list[CellRun], interrupted: bool) -> ReportView:
        files = [self._out(r.cell) for r in runs if self._out(r.cell).is_file()]
        loaded, refused = load_all(files)
        merged = merge(loaded, expected=self.plan.cells, refused=refused)
        merged.notes.append(
            f"environments: {backend_name(self.uv)}" + (f" ({self.uv})" if self.uv else " (uv not found)")
        )
        if interrupted:
            merged.scorecard.complete = False
            stopped = [r.cell.id for r in runs if r.state == "interrupted"]
            merged.notes.append(f"interrupted: {len(stopped)} cell(s) did not finish: {', '.join(stopped)}")
        return merged

    # -- one cell -------------------------------------------------------------------------

    def _out(self, cell: Cell) -> Path:
        return self.results_dir / f"{cell.id}.json"

    def _guarded(self, run: CellRun) -> None:
        with self._lock:
            self._cell_threads.add(threading.current_thread())
        try:
            self._cell(run)
        except Exception as exc:  # the spike's own failure: the cell is an error, never a pass
            if self.stop.is_set():
                run.state = "interrupted"
                return
            cells.write(cells.error_scorecard(run.cell, "the runner failed", str(exc)), self._out(run.cell))
            run.state, run.detail = (
                "error",
                str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__,
            )

    def _cell(self, run: CellRun) -> None:
        cell, out = run.cell, self._out(run.cell)
        if cell.status != "run" or not cell.interpreter:
            reason = cell.reason or "no interpreter was found for it"
            cells.write(cells.skipped_scorecard(cell, reason), out)
            run.state, run.detail = "skipped", reason
            return
        if self.stop.is_set():
            return
        # The environment first: it needs no layer, and a cold run's first cells built theirs
        # only once their interpreter's layer was ready (the layers are the longer path).
        run.state = "environment"
        started = time.perf_counter()
        env = self._environment(cell, cell.interpreter)
        run.env_s = time.perf_counter() - started
        run.env_reused = env.reused
        if self.stop.is_set():
            return  # a build the stop ended is no verdict on the pin
        if not env.ok:
            self._env_failed(run, env)
            return
        run.state = "layer"
        started = time.perf_counter()
        layer = self._layer(cell.interpreter)
        run.layer_s = time.perf_counter() - started
        if self.stop.is_set():
            return
        linked = _link_layer(Path(env.path), layer)
        if linked is not None:
            # The environment's files are checked before reuse: this one is ours.
            self._manager(cell.interpreter).host_changed(env, linked)
        if self.stop.is_set():
            return
        run.state = "pytest"
        argv = [env.python, "-m", "pytest", *_pytest_args(cell, out, self.paths)]
        mine: list[int] = []

        def on_start(pid: int) -> None:
            mine.append(pid)
            self._started(pid)

        done = runner.run(
            argv,
            timeout=self.timeout,
            cwd=self.cwd,
            env=tool_env(),
            # the caller's PYTEST_ADDOPTS may name plugins the layer does not have (xdist)
            extra_env={"PYTEST_ADDOPTS": "", **(self._tried.result() if self._tried else {})},
            started=on_start,
        )
        with self._lock:
            self._pids.difference_update(mine)
        run.pytest_s = done.duration_s
        try:
            card = schema.load(out)
        except SpikeError as exc:
            if self.stop.is_set():
                run.state, run.detail = "interrupted", done.describe()
                return
            detail = f"{exc}\n{done.last_error_line()}"
            cells.write(cells.error_scorecard(cell, "pytest left no usable results file", detail), out)
            run.state, run.detail = "error", f"pytest {done.describe()}: {done.last_error_line()[:160]}"
            return
        run.probes_s = sum(c.duration_s for c in card.candidates)
        levels = [c.level for c in card.candidates if c.level is not None]
        run.level = max(levels, key=lambda lv: lv.rank).value if levels else ""
        run.state = "done" if card.complete else "interrupted"

    def _env_failed(self, run: CellRun, env: EnvResult) -> None:
        out = self._out(run.cell)
        if env.not_candidate:  # the network or a time limit, not the pin: an error, not a verdict
            what = f"its environment was not built ({env.not_candidate}): {env.error_line}"
            cells.write(cells.error_scorecard(run.cell, what, env.error), out)
            run.state, run.detail = "error", what
            return
        cells.write(cells.install_failed_scorecard(run.cell, env.error or env.error_line), out)
        run.state, run.detail = "install_failed", env.error_line[:200]

    def _started(self, pid: int) -> None:
        with self._lock:
            self._pids.add(pid)
        if self.stop.is_set():  # the stop came while it was starting
            runner.stop_group(pid, signal.SIGKILL)

    def _interp_lock(self, what: str, python: str) -> threading.Lock:
        """The lock of ``python``'s layer or environment manager (``what``): one each, so a
        cell sets up its manager and builds its environment while the layer is built."""
        with self._lock:
            return self._interp_locks.setdefault((what, python), threading.Lock())

    def _layers_ahead(self, pythons: list[str]) -> None:
        """Build the interpreters' layers from the run's start, taking them from ``pythons``
        in the plan's order (:data:`LAYER_BUILDERS` threads share the list): a cell takes
        its interpreter's layer when its environment is built (building it, or waiting for
        whoever does). Built when a cell first needed it, the second interpreter's layer was
        built only after the first interpreter's cells; built one after another, the layers
        were the longest path of a cold 9-cell matrix (each a copy or an install, then
        compileall). Stops at the run's stop; a layer that fails is kept as the error its
        cells report."""
        while not self.stop.is_set():
            with self._lock:
                if not pythons:
                    return
                python = pythons.pop(0)
            try:
                self._layer(python)
            except Exception:  # noqa: BLE001, S112 - the cells meet the same error and report it
                continue

    def _envs_ahead(self, cells: Sequence[Cell], layers: int) -> None:
        """Build the cells' environments, in the plan's order, while layers are still being
        built: the cells that started wait for their interpreter's layer then, and a cold
        matrix's two first cells waited ~3 s for the first layer (an install from the index,
        then compileall) with nothing else to do. Stops once all ``layers`` are there (the
        cells build their own then, ``jobs`` at a time), and at the run's stop."""
        for cell in cells:
            with self._lock:
                if self.stop.is_set() or len(self._layers) >= layers:
                    return
            try:
                self._environment(cell, str(cell.interpreter))  # runnable: it has one
            except Exception:  # noqa: BLE001, S112 - the cell meets the same error and reports it
                continue

    def _environment(self, cell: Cell, python: str) -> EnvResult:
        """The cell's environment: built now, or by whoever started it first (the cell
        itself, or the environments built ahead), once per run."""
        with self._lock:
            found = self._envs.get(cell.id)
            mine = found is None
            if found is None:
                found = self._envs[cell.id] = Future()
        if mine:
            try:
                found.set_result(self._manager(python).ensure([cell.pin]))
            except BaseException as exc:
                found.set_exception(exc)
                raise
        return found.result()

    def _layer(self, python: str) -> Path:
        with self._interp_lock("layer", python):
            if python not in self._layers:
                try:
                    self._layers[python] = layer_for(python, self.cache_dir, uv=self.uv)
                except SpikeError as exc:
                    self._layers[python] = exc
            found = self._layers[python]
        if isinstance(found, SpikeError):
            raise found
        return found

    def _manager(self, python: str) -> EnvManager:
        with self._interp_lock("manager", python):
            if python not in self._managers:
                backend = "uv" if self.uv else "venv"
                manager = EnvManager(
                    self.cache_dir / CELLS_CACHE, python=python, backend=backend, timeout=INSTALL_TIMEOUT
                )
                manager.uv = self.uv  # the uv this run chose, not necessarily the first found
                manager.interpreter()  # asked once, here, not by every cell at once
                self._managers[python] = manager
            return self._managers[python]


def _pytest_args(cell: Cell, out: Path, paths: Sequence[str]) -> list[str]:
    return [
        "--spike", "--spike-select", cell.candidate, "--spike-cell", cell.id,
        "--spike-json", str(out), *paths,
    ]  # fmt: skip


def _link_layer(env: Path, layer: Path) -> Path | None:
    """Put ``layer`` on the environment's path after its own packages (a ``.pth`` file);
    the file, when it was written now."""
    if sys.platform == "win32":  # pragma: no cover
        found = [env / "Lib" / "site-packages"]
    else:
        found = sorted((env / "lib").glob("python*/site-packages"))
    if not found:
        raise SpikeError(f"the environment {env} has no site-packages folder")
    pth = found[0] / _LAYER_PTH
    text = f"{layer}\n"
    if pth.is_file() and pth.read_text("utf-8") == text:
        return None
    write_atomic(pth, text)
    return pth
