"""Shared pieces of the benchmarks: timing, results, work folders and tools.

Every comparison runs pytest-spike and its baseline alternately in the same run and
compares medians, because absolute times drift on a shared machine; only ratios are
judged against targets.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

#: The checkout these benchmarks belong to (pytest-spike is installed from it).
REPO = Path(__file__).resolve().parent.parent


@dataclass
class Result:
    """One judged number: a ratio (lower is better) or an absolute value, with its target."""

    name: str
    value: float | None  # None: not measured (say why in ``detail``)
    target: float | None  # None: reported, not judged
    unit: str = "x"
    detail: list[str] = field(default_factory=list)
    check: bool | None = None  # for yes/no targets (linearity, width)

    @property
    def ok(self) -> bool | None:
        if self.check is not None:
            return self.check
        if self.value is None or self.target is None:
            return None
        return self.value <= self.target

    def line(self) -> str:
        shown = "n/a" if self.value is None else f"{self.value:.3f}{self.unit}"
        target = "" if self.target is None else f" (target <= {self.target}{self.unit})"
        verdict = {True: "ok", False: "MISSED", None: "not judged"}[self.ok]
        return f"{verdict:>10}  {self.name}: {shown}{target}"


@dataclass
class Context:
    """What every benchmark gets: where to work, which Python, how many repetitions."""

    work: Path
    python: str
    runs: int
    cold_runs: int
    log: Callable[[str], None]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def timed(argv: Sequence[str], **options: Any) -> float:
    """Wall seconds of one command (``run_measured``'s options); output goes to ``log_to``."""
    return run_measured(argv, **options)[0]


def run_measured(
    argv: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    ok_codes: Sequence[int] = (0,),
    log_to: Path | None = None,
) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one command and everything it started.

    CPU time (user + system) barely moves when neighbours load the machine, where wall time
    does: small ratios are judged on it. It is counted in a cgroup of the command's own
    (:class:`CpuCounter`) where the host lets this process make one: a boxed step's
    processes are not the command's children when they end (bubblewrap's outer process exits
    before it reaps the box's init), so the finished children's rusage misses all of them.
    Elsewhere it is that rusage, and :func:`cpu_counted` says what it leaves out.
    """
    out = open(log_to, "ab") if log_to else subprocess.DEVNULL
    counter = CpuCounter.make()
    try:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(
            list(argv),
            cwd=cwd,
            env=dict(env) if env else None,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            check=False,
            preexec_fn=counter.join if counter is not None else None,
        )
        elapsed = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        counted = counter.seconds() if counter is not None else None
    finally:
        if counter is not None:
            counter.close()
        if log_to:
            out.close()  # type: ignore[union-attr]
    if done.returncode not in ok_codes:
        where = f"; output in {log_to}" if log_to else ""
        raise RuntimeError(f"{argv[0]} ... exited {done.returncode}{where}")
    if counted is not None:
        return elapsed, counted
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


class CpuCounter:
    """A cgroup v1 ``cpuacct`` group one measured command runs in: the CPU time of every
    process it starts, reaped by it or not (the box's), in ``cpuacct.usage``.

    Only v1: there ``cpuacct`` is a hierarchy of its own, so the command's steps still make
    their ``pids`` and ``memory`` groups where they did. Under cgroup v2 moving the command
    into a group of ours would change the groups its steps can make (what is measured), so
    there the finished children's rusage is kept (see :func:`cpu_counted`).
    """

    _made = 0

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def make(cls) -> CpuCounter | None:
        try:
            own = Path("/proc/self/cgroup").read_text().splitlines()
        except OSError:
            return None
        for line in own:
            _, controllers, where = line.split(":", 2)
            if "cpuacct" not in controllers.split(","):
                continue
            base = Path("/sys/fs/cgroup", controllers, where.lstrip("/"))
            if not (base / "cpuacct.usage").exists():
                base = Path("/sys/fs/cgroup", "cpuacct", where.lstrip("/"))
            if not cls._made:
                cls.sweep(base)
            cls._made += 1
            path = base / f"spike-bench-{os.getpid()}-{cls._made}"
            try:
                path.mkdir()
            except OSError:
                return None
            return cls(path)
        return None

    def join(self) -> None:
        """Between fork and exec: the command's process joins the group."""
        with open(self.path / "cgroup.procs", "w") as procs:
            procs.write("0")

    def seconds(self) -> float:
        return int((self.path / "cpuacct.usage").read_text()) / 1e9

    def close(self) -> None:
        """Remove the group once its processes have ended: a box's last ones end after its
        outer bubblewrap (a second at most), and a group with processes cannot be removed."""
        for _ in range(100):
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.01)

    @staticmethod
    def sweep(base: Path) -> None:
        """Remove the empty groups that runs which ended left in ``base``."""
        for group in base.glob("spike-bench-*-*"):
            pid = group.name.split("-")[2]
            if pid.isdigit() and not Path("/proc", pid).exists():
                try:
                    group.rmdir()
                except OSError:
                    pass


def cpu_counted() -> str:
    """What the CPU figures count here: every process of the command, or not the box's."""
    counter = CpuCounter.make()
    if counter is None:
        return "CPU: the finished children's rusage (no cgroup here): boxed steps are not counted"
    counter.close()
    return "CPU: every process of the command (a cgroup of its own), boxed steps included"


def alternate(
    runs: int, first: Callable[[], float], second: Callable[[], float]
) -> tuple[list[float], list[float]]:
    """Run the two sides in turn ``runs`` times (order swapped every round): their times."""
    a: list[float] = []
    b: list[float] = []
    for i in range(runs):
        if i % 2 == 0:
            a.append(first())
            b.append(second())
        else:
            b.append(second())
            a.append(first())
    return a, b


def in_turn(runs: int, *sides: Callable[[], float]) -> list[list[float]]:
    """Run several sides ``runs`` times, each round starting with the next side: their times."""
    times: list[list[float]] = [[] for _ in sides]
    for i in range(runs):
        for j in range(len(sides)):
            k = (i + j) % len(sides)
            times[k].append(sides[k]())
    return times


def fresh_dir(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for child commands: ours, minus anything that would steer pytest."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "NOX_", "VIRTUAL_ENV"))}
    env.update(extra)
    return env


def find_uv() -> str | None:
    """uv next to our interpreter first: a pyenv shim costs ~0.2 s per call."""
    local = Path(sys.executable).parent / "uv"
    return str(local) if local.exists() else shutil.which("uv")


def tool_python(ctx: Context) -> str:
    """An interpreter with nox and pytest-spike (editable from this checkout), built once."""
    venv = ctx.work / "tools"
    python = venv / "bin" / "python"
    marker = venv / ".ready"
    if marker.exists():
        return str(python)
    ctx.log("setting up the tools environment (nox, pytest-spike from this checkout)")
    fresh_dir(venv)
    uv = find_uv()
    if uv:
        subprocess.run([uv, "venv", "-q", "--python", ctx.python, str(venv)], check=True)
        subprocess.run(
            [uv, "pip", "install", "-q", "--python", str(python), "nox", "-e", str(REPO)], check=True
        )
    else:
        subprocess.run([ctx.python, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "nox", "-e", str(REPO)], check=True)
    marker.write_text("ok\n")
    return str(python)


def pyenv_pythons(versions: Sequence[str]) -> dict[str, str]:
    """``{"3.11": "/.../versions/3.11.7/bin/python"}`` for the versions pyenv has."""
    try:
        root = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return {}
    found: dict[str, str] = {}
    for version in versions:
        matches = sorted(Path(root, "versions").glob(f"{version}.*/bin/python"))
        if matches:
            found[version] = str(matches[-1])
    return found
