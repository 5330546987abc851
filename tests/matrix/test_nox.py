"""The nox helper end to end: real nox, a local index, no network.

A cell whose interpreter is absent is listed, ends as a skipped session and writes a
skipped results file; a pin that cannot install writes install.failed with the
resolver's text; the report session merges both. The "index" is a find-links folder
(pip's no-index mode), which both the planner and uv read.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from indexserver import HERMETIC_ENV
from pkgfactory import FakeProject, build_wheel

from pytest_spike.envs.inspection import host_python
from pytest_spike.envs.manager import find_uv
from pytest_spike.matrix.plan import plugin_pythonpath

HOST = host_python()

NOXFILE = """
from pytest_spike.matrix.nox import spike_sessions
spike_sessions(["."], pythons=[{host!r}, "3.97"], plugin=[])
"""
SPIKE = """
from pytest_spike import spike
pytestmark = spike.candidate("tomly")
def test_hello():
    import tomly
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    root = tmp_path_factory.mktemp("noxproj")
    wheels = tmp_path_factory.mktemp("wheels")
    build_wheel(FakeProject("tomly", "1.0", requires=["no-such-dependency-xyz"]), wheels)
    (root / "noxfile.py").write_text(NOXFILE.format(host=HOST))
    (root / "test_spike.py").write_text(SPIKE)
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith(("PIP_", "UV_", "PYTEST_SPIKE_")) and k != "VIRTUAL_ENV"
    }  # fmt: skip
    env.update(HERMETIC_ENV)
    env.update(
        PIP_NO_INDEX="1",
        PIP_FIND_LINKS=str(wheels),
        XDG_CACHE_HOME=str(root / "cache"),
        PYTHONPATH=plugin_pythonpath(),
    )
    yield root, env


def nox(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nox", "--no-color", *args],
        cwd=root, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip


def test_sessions_are_listed_by_cell_id(project: tuple[Path, dict[str, str]]) -> None:
    root, env = project
    done = nox(root, env, "-l", "--json")
    assert done.returncode == 0, done.stderr
    sessions = {s["session"]: s for s in json.loads(done.stdout)}
    assert set(sessions) == {
        f"spike_cell(py{HOST}-tomly-1.0)", "spike_cell(py3.97-tomly-1.0)", "spike", "spike_merge",
    }  # fmt: skip
    assert sessions["spike_cell(py3.97-tomly-1.0)"]["python"] is False
    assert Path(sessions[f"spike_cell(py{HOST}-tomly-1.0)"]["python"]).exists()


def _check_results(root: Path, output: str) -> None:
    results = root / ".spike" / "results"
    skipped = json.loads((results / "py3.97-tomly-1.0.json").read_text())
    assert skipped["cell"]["status"] == "skipped"
    assert skipped["cell"]["reason"].startswith("no Python 3.97 interpreter found on PATH")
    assert skipped["candidates"] == []
    failed = json.loads((results / f"py{HOST}-tomly-1.0.json").read_text())
    (finding,) = failed["candidates"][0]["findings"]
    assert finding["code"] == "install.failed" and finding["severity"] == "critical"
    assert "no-such-dependency-xyz" in finding["evidence"]["excerpt"]
    report = json.loads((root / ".spike" / "report.json").read_text())
    (grid,) = report["matrix"]["grids"]
    states = {c["python"]: c["state"] for c in grid["cells"]}
    assert states == {HOST: "install_failed", "3.97": "skipped"}
    assert "NO INSTALL" in output and "skipped" in output


@pytest.mark.skipif(find_uv() is None, reason="needs uv for a fast offline virtualenv")
def test_cell_sessions_then_merge_record_skipped_and_failed_install(
    project: tuple[Path, dict[str, str]],
) -> None:
    """The fan-out path: one nox session per cell, then spike_merge."""
    root, env = project
    done = nox(root, env, "-s", "spike_cell", "spike_merge")
    output = done.stdout + done.stderr
    # A pin that does not install is a result (a critical finding), not a broken cell.
    assert done.returncode == 0, output
    assert "spike_cell(py3.97-tomly-1.0): skipped" in output
    _check_results(root, output)


def test_spike_session_runs_every_cell_through_the_runner(project: tuple[Path, dict[str, str]]) -> None:
    """``nox -s spike``: one nox session, the cells run by pytest-spike's runner."""
    root, env = project
    nox(root, env, "-l")  # plans (and caches the plan)
    done = nox(root, env, "-s", "spike", "--", "-j", "2")
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "spike_cell(" not in output  # no session per cell
    assert f"py{HOST}-tomly-1.0  INSTALL FAILED" in output
    _check_results(root, output)
    report = json.loads((root / ".spike" / "report.json").read_text())
    assert report["matrix"]["runner"]["backend"] == "uv" and report["matrix"]["runner"]["jobs"] == 2
    plans = list((root / "cache" / "pytest-spike" / "plans").glob("*.json"))
    assert len(plans) == 1  # nox -l and nox -s spike planned once
