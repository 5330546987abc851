"""``pytest-spike run``: plan, build, run and merge on real subprocesses, no network.

Fixture packages are wheels in a find-links folder (pip's no-index mode, which both the
planner and uv read). Two Pythons: the running one and another from pyenv whose layer can
be copied from this environment (3.11+: the same pure-Python closure), so no pytest has to
come from the network.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from indexserver import HERMETIC_ENV
from pkgfactory import FakeProject, backend_from_sdist, build_sdist, build_wheel

from pytest_spike._core import sandbox
from pytest_spike.envs.inspection import host_python
from pytest_spike.envs.manager import find_uv
from pytest_spike.matrix.interpreters import parse_python, pyenv_root
from pytest_spike.matrix.plan import cached_plan, plugin_pythonpath

HOST = host_python()


def other_python() -> tuple[str, str] | None:
    """(X.Y, path) of a pyenv interpreter other than the host's, 3.11 or newer."""
    root = pyenv_root()
    if root is None:
        return None
    for folder in sorted((root / "versions").glob("3.*"), reverse=True):
        python = folder / "bin" / "python"
        short = ".".join(folder.name.split(".")[:2])
        if python.exists() and short != HOST and parse_python(short) >= (3, 11):
            return short, str(python)
    return None


OTHER = other_python()
needs_two = pytest.mark.skipif(
    OTHER is None, reason="needs a second interpreter (3.11+) in $(pyenv root)/versions/*/bin/python"
)
needs_uv = pytest.mark.skipif(find_uv() is None, reason="needs uv for fast offline environments")

SPIKE = """
from pytest_spike import spike
pytestmark = spike.candidate("tomly", versions={versions!r})
def test_hello():
    import tomly
"""
HANGING = """
import os, time
from importlib.metadata import version
from pytest_spike import spike
pytestmark = spike.candidate("tomly", versions=["1.0", "1.1"])
def test_hello():
    import tomly
    if version("tomly") == "1.1":
        with open({marker!r}, "w") as f:
            f.write(str(os.getpid()))
        time.sleep(600)
"""


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("wheels")
    build_wheel(FakeProject("tomly", "1.0"), folder)
    build_wheel(FakeProject("tomly", "1.1"), folder)
    build_wheel(FakeProject("tomly", "2.0", requires=["no-such-dependency-xyz"]), folder)
    return folder


def hermetic_env(wheels: Path, cache: Path) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith(("PIP_", "UV_", "PYTEST_SPIKE_", "PYTEST_XDIST", "PYTEST_ADDOPTS"))
        and k != "VIRTUAL_ENV"
    }  # fmt: skip
    env.update(HERMETIC_ENV)
    env.update(
        PIP_NO_INDEX="1",
        PIP_FIND_LINKS=str(wheels),
        XDG_CACHE_HOME=str(cache),
        PYTHONPATH=plugin_pythonpath(),
    )
    return env


@pytest.fixture
def project(tmp_path: Path, wheels: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    root = tmp_path / "proj"
    root.mkdir()
    yield root, hermetic_env(wheels, tmp_path / "cache")


def spike_run(
    root: Path, env: dict[str, str], *args: str, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_spike", "run", *args],
        cwd=root, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def started_run(root: Path, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    """``pytest-spike run`` of the project on this Python, started (to be interrupted)."""
    return subprocess.Popen(
        [sys.executable, "-m", "pytest_spike", "run", ".", *args, "--python", HOST, "--json", "out.json"],
        cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def wait_while_running(proc: subprocess.Popen[str], ready: Callable[[], bool], timeout: float) -> None:
    """Wait until ``ready()`` (at most ``timeout`` s); the run must not end meanwhile."""
    deadline = time.monotonic() + timeout
    while not ready() and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)


def states(report: dict) -> dict[tuple[str, str], str]:  # type: ignore[type-arg]
    (grid,) = report["matrix"]["grids"]
    return {(c["python"], c["version"]): c["state"] for c in grid["cells"]}


@needs_two
@needs_uv
def test_run_plans_builds_runs_and_merges_two_pythons(project: tuple[Path, dict[str, str]]) -> None:
    root, env = project
    # cells may write bytecode: none of it may land in a layer (the next run would rebuild it)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    assert OTHER is not None
    other, _ = OTHER
    (root / "test_spike.py").write_text(SPIKE.format(versions=["1.0", "2.0"]))
    args = [".", "-j", "2", "--python", HOST, "--python", other, "--python", "3.97"]
    timeline = root / "timeline.jsonl"
    done = spike_run(
        root, {**env, "PYTEST_SPIKE_TIMELINE": str(timeline)}, *args, "--json", "out.json", "--md", "out.md"
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    # the second interpreter's layer was built from the run's start, not when its first cell
    # started (after the first interpreter's cells)
    spans = [json.loads(line) for line in timeline.read_text().splitlines()]
    compiled = [s for s in spans if s.get("argv", "").startswith(f"{OTHER[1]} -m compileall")]
    assert compiled and all(s["thread"].startswith("spike-layers-ahead-") for s in compiled), compiled
    report = json.loads((root / "out.json").read_text())
    assert report["complete"] is True
    assert states(report) == {
        (HOST, "1.0"): "low", (other, "1.0"): "low",
        # the failing pin is in the grid, with install.failed and the resolver's text
        (HOST, "2.0"): "install_failed", (other, "2.0"): "install_failed",
        # an absent interpreter is skipped with the reason, never passed
        ("3.97", "1.0"): "skipped", ("3.97", "2.0"): "skipped",
    }  # fmt: skip
    failed = json.loads((root / ".spike" / "results" / f"py{other}-tomly-2.0.json").read_text())
    (finding,) = failed["candidates"][0]["findings"]
    assert finding["code"] == "install.failed" and "no-such-dependency-xyz" in finding["evidence"]["excerpt"]
    runner = report["matrix"]["runner"]
    assert runner["backend"] == "uv" and runner["jobs"] == 2
    by_cell = {c["cell"]: c for c in runner["cells"]}
    ran = by_cell[f"py{other}-tomly-1.0"]
    assert ran["state"] == "done" and ran["pytest_s"] > 0 and ran["env_s"] > 0
    assert by_cell["py3.97-tomly-1.0"]["detail"].startswith("no Python 3.97 interpreter found")
    # the other interpreter's cell really ran on it (its results say which Python)
    cell = json.loads((root / ".spike" / "results" / f"py{other}-tomly-1.0.json").read_text())["cell"]
    assert cell["python"].startswith(other)
    assert "note: environments: uv" in done.stdout
    assert "Environments: uv" in (root / "out.md").read_text()
    # plain progress lines (not a terminal): each cell's start and end with its level
    assert f"start  py{other}-tomly-1.0" in done.stderr
    assert f"py{other}-tomly-1.0  LOW" in done.stderr and f"py{HOST}-tomly-2.0  INSTALL FAILED" in done.stderr

    # a second run: the plan, the environments and the layers are reused, -q prints no progress
    markers = sorted(Path(env["XDG_CACHE_HOME"]).glob("pytest-spike/layers/*/spike-layer.json"))
    built = {m: m.stat().st_mtime_ns for m in markers}
    again = spike_run(root, env, *args, "-q", "--json", "out.json")
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stderr == ""
    cells = {c["cell"]: c for c in json.loads((root / "out.json").read_text())["matrix"]["runner"]["cells"]}
    assert cells[f"py{HOST}-tomly-1.0"]["env_reused"] is True
    assert len(built) == 2 and {m: m.stat().st_mtime_ns for m in markers} == built


def test_run_falls_back_to_venv_and_pip(project: tuple[Path, dict[str, str]]) -> None:
    root, env = project
    (root / "test_spike.py").write_text(SPIKE.format(versions=["1.1"]))
    done = spike_run(root, env, ".", "--python", HOST, "--no-uv", "--json", "out.json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((root / "out.json").read_text())
    assert states(report) == {(HOST, "1.1"): "low"}
    assert report["matrix"]["runner"]["backend"] == "venv + pip"
    assert "note: environments: venv + pip (uv not found)" in done.stdout


#: pytest-spike run, with the layer's build held until every cell's environment is built.
LAYER_WAITS = """
import runpy, sys, time
from pytest_spike.envs.manager import MARKER
from pytest_spike.matrix import runner
from pytest_spike.model import SpikeError

real = runner.layer_for


def layer_after_the_environments(python, cache_root, **options):
    deadline = time.monotonic() + 60
    while len(list((cache_root / "cells").glob("*/" + MARKER))) < 2:
        if time.monotonic() > deadline:
            raise SpikeError("no environment was built ahead while the layer waited")
        time.sleep(0.05)
    return real(python, cache_root, **options)


runner.layer_for = layer_after_the_environments
runpy.run_module("pytest_spike", run_name="__main__")
"""


@needs_uv
def test_environments_are_built_ahead_while_the_layer_is_built(project: tuple[Path, dict[str, str]]) -> None:
    """One cell at a time (-j 1): the first cell's environment is built, then it waits for
    the layer, which (held here) waits for the second cell's environment too. Only the
    environments built ahead, beside the cells, can build it: the run ends with both
    cells passed, not with the layer's error."""
    root, env = project
    (root / "test_spike.py").write_text(SPIKE.format(versions=["1.0", "1.1"]))
    done = subprocess.run(
        [sys.executable, "-c", LAYER_WAITS, "run", ".", "-j", "1", "--python", HOST, "--json", "out.json"],
        cwd=root, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((root / "out.json").read_text())
    assert states(report) == {(HOST, "1.0"): "low", (HOST, "1.1"): "low"}


@needs_uv
def test_ctrl_c_stops_running_cells_and_merges_what_finished(project: tuple[Path, dict[str, str]]) -> None:
    root, env = project
    marker = root.parent / "hanging.pid"
    (root / "test_spike.py").write_text(HANGING.format(marker=str(marker)))
    proc = started_run(root, env, "-j", "2")
    finished = root / ".spike" / "results" / f"py{HOST}-tomly-1.0.json"
    wait_while_running(proc, lambda: marker.exists() and finished.exists(), 180)
    assert marker.exists() and finished.exists(), "the hanging cell never started"
    time.sleep(0.3)  # the pid is written before the sleep starts
    hanging_pid = int(marker.read_text())
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    report = json.loads((root / "out.json").read_text())
    assert report["complete"] is False
    found = states(report)
    assert found[(HOST, "1.0")] == "low"
    # the stopped cell is never a pass: missing, or the partial results it wrote on SIGTERM
    assert found[(HOST, "1.1")] in ("missing", "incomplete")
    assert "interrupted: 1 cell(s) did not finish: py" in out
    with pytest.raises(ProcessLookupError):  # its process group was stopped
        for _ in range(50):
            os.kill(hanging_pid, 0)
            time.sleep(0.1)


#: tomly 1.7 as an sdist whose build takes two minutes: an interrupt comes while it builds
#: (a version no other test installs: the test looks for its build among all processes).
SLOW_SDIST = FakeProject(
    "tomly",
    "1.7",
    sdist_files={
        "pyproject.toml": '[build-system]\nrequires = []\nbuild-backend = "slowbackend"\nbackend-path = ["."]\n',
        "slowbackend.py": backend_from_sdist("tomly", "1.7", before="import time\ntime.sleep(120)"),
    },
)


def _building(text: str) -> list[int]:
    """The processes whose command line holds ``text``."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text.encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return found


@needs_uv
def test_ctrl_c_while_an_environment_builds_stops_it_and_blames_no_pin(
    project: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    """Ctrl-C while a cell's environment is built (by the cell, or ahead of it): the build
    is stopped at once, not waited for, and the cell is interrupted, never an install that
    failed (an interrupted build is no verdict on the pin)."""
    root, env = project
    index = tmp_path / "slow-index"
    index.mkdir()
    build_wheel(FakeProject("tomly", "1.0"), index)
    build_sdist(SLOW_SDIST, index)
    env["PIP_FIND_LINKS"] = str(index)
    (root / "test_spike.py").write_text(SPIKE.format(versions=["1.0", "1.7"]))
    proc = started_run(root, env, "-j", "1")
    # The first cell has ended, and the second waits for its environment (built ahead).
    finished = root / ".spike" / "results" / f"py{HOST}-tomly-1.0.json"
    wait_while_running(proc, lambda: bool(_building("tomly==1.7")) and finished.exists(), 120)
    assert _building("tomly==1.7") and finished.exists(), "the slow build never started"
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)  # the build sleeps 120 s: it was stopped
    assert proc.returncode == 130, out + err
    found = states(json.loads((root / "out.json").read_text()))
    assert found == {(HOST, "1.0"): "low", (HOST, "1.7"): found[(HOST, "1.7")]}
    assert found[(HOST, "1.7")] in ("missing", "incomplete"), err
    assert "install.failed" not in (root / "out.json").read_text()
    deadline = time.monotonic() + 10
    while _building("tomly==1.7") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _building("tomly==1.7")


def test_plan_cache_reused_and_invalidated(
    tmp_path: Path, wheels: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in hermetic_env(wheels, tmp_path / "cache").items():
        monkeypatch.setenv(key, value)
    root = tmp_path / "proj"
    root.mkdir()
    spike = root / "test_spike.py"
    spike.write_text(SPIKE.format(versions=["1.0"]))
    cache = tmp_path / "cache" / "pytest-spike"
    first, reused = cached_plan(["."], cwd=root, pythons=[HOST], cache_dir=cache)
    assert not reused and [c.version for c in first.cells] == ["1.0"]
    second, reused = cached_plan(["."], cwd=root, pythons=[HOST], cache_dir=cache)
    assert reused and second.to_dict() == first.to_dict()
    # another option is another plan
    _, reused = cached_plan(["."], cwd=root, pythons=[HOST], versions="1.1", cache_dir=cache)
    assert not reused
    # a changed test file is planned again, and the new plan says what it asks for now
    spike.write_text(SPIKE.format(versions=["1.0", "1.1"]))
    os.utime(spike, ns=(time.time_ns(), time.time_ns() + 10**9))
    third, reused = cached_plan(["."], cwd=root, pythons=[HOST], cache_dir=cache)
    assert not reused and [c.version for c in third.cells] == ["1.0", "1.1"]
    # index answers that may be stale: planned again
    _, reused = cached_plan(["."], cwd=root, pythons=[HOST], cache_dir=cache, max_age=0)
    assert not reused
    # changed index settings: planned again
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "http://127.0.0.1:9/simple")
    _, reused = cached_plan(["."], cwd=root, pythons=[HOST], cache_dir=cache)
    assert not reused


HANGING_COLLECTION = """
import os, time
from importlib.metadata import PackageNotFoundError, version
try:
    hangs = version("tomly") == "1.1"
except PackageNotFoundError:  # planning, in the host environment
    hangs = False
if hangs:
    with open({marker!r}, "w") as f:
        f.write(str(os.getpid()))
    time.sleep(600)
"""


@needs_uv
def test_ctrl_c_before_a_cell_knows_its_version_adds_no_phantom_column(
    project: tuple[Path, dict[str, str]],
) -> None:
    root, env = project
    marker = root.parent / "hanging.pid"
    # the hang is in collection (after the session started: it writes what it has on SIGTERM)
    spike = SPIKE.format(versions=["1.0", "1.1"]) + HANGING_COLLECTION.format(marker=str(marker))
    (root / "test_spike.py").write_text(spike)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest_spike", "run", ".", "-j", "2", "--python", HOST, "--json", "out.json"],
        cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    finished = root / ".spike" / "results" / f"py{HOST}-tomly-1.0.json"
    deadline = time.monotonic() + 180
    while not (marker.exists() and finished.exists()) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the whole foreground group
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    report = json.loads((root / "out.json").read_text())
    (grid,) = report["matrix"]["grids"]
    assert "?" not in grid["versions"] and grid["candidate"] == "tomly", grid
    assert states(report) == {(HOST, "1.0"): "low", (HOST, "1.1"): "incomplete"}
    assert "?" not in {c["version"] for c in report["candidates"]}


@needs_uv
@pytest.mark.skipif(not sandbox.status(sandbox.Policy()).boxed, reason="needs a box that runs here")
def test_cells_take_the_runners_word_for_bubblewrap(project: tuple[Path, dict[str, str]]) -> None:
    """bubblewrap is tried once per run, by the runner, not again by each cell; the cells
    still box their steps with it."""
    root, env = project
    real = shutil.which("bwrap")
    assert real is not None
    log = root.parent / "bwrap.log"
    bin_dir = root.parent / "bin"
    bin_dir.mkdir()
    (bin_dir / "bwrap").write_text(
        f'#!/bin/sh\necho "$(tr "\\0" " " < /proc/$PPID/cmdline | cut -c1-120) :: $*" >> {log}\nexec {real} "$@"\n'
    )
    (bin_dir / "bwrap").chmod(0o755)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    (root / "test_spike.py").write_text(SPIKE.format(versions=["1.0", "1.1"]))
    (root / "pytest.ini").write_text("[pytest]\nspike_probes = import\n")
    done = spike_run(root, env, ".", "-j", "2", "--python", HOST, "--json", "out.json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert states(json.loads((root / "out.json").read_text())) == {(HOST, "1.0"): "low", (HOST, "1.1"): "low"}
    for version in ("1.0", "1.1"):
        cell = json.loads((root / ".spike" / "results" / f"py{HOST}-tomly-{version}.json").read_text())
        assert cell["settings"]["sandbox"] == "sandboxed (bubblewrap)"
        (candidate,) = cell["candidates"]
        (probe,) = [p for p in candidate["probes"] if p["kind"] == "import"]
        assert probe["outcome"] == "passed"
    starts = log.read_text().splitlines()
    trials = [line for line in starts if line.endswith("-- /bin/true")]
    assert len(trials) == 1, starts
    assert len(starts) > len(trials)  # the cells' imports (and the runner's installs) were boxed
