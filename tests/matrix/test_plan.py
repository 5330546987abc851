"""Matrix planning: interpreter discovery, cells, requires-python, GitHub and tox outputs."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from indexserver import IndexServer
from packaging.version import Version

from pytest_spike.envs.inspection import host_python
from pytest_spike.matrix import github, tox
from pytest_spike.matrix.interpreters import Finder
from pytest_spike.matrix.plan import Cell, MatrixPlan, build_plan, collect, plan_matrix

HOST = host_python()


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IndexServer]:
    with IndexServer(tmp_path_factory.mktemp("index")) as server:
        server.add("tomly", "1.0", requires_python=">=3.6")
        server.add("tomly", "1.1", requires_python=">=3.6")
        server.add("tomly", "2.0", requires_python=f">={HOST}")
        server.add("tomly", "2.1rc1")
        yield server


def pytest_plan(**cand: Any) -> dict[str, Any]:
    entry = {"name": "tomly", "requirement": "tomly", "versions": None, "python": [], **cand}
    return {"schema": "pytest-spike-plan/1", "rootdir": "/r", "defaults": {}, "candidates": [entry]}


def host_only() -> Finder:
    """A finder that sees the running interpreter on PATH and nothing else."""
    folder = Path(sys.executable).parent
    return Finder(search_path=str(folder), pyenv=False, uv=False)


def test_finder_confirms_real_interpreter_and_explains_absent_ones(tmp_path: Path) -> None:
    fake = tmp_path / "python3.97"
    fake.write_text("#!/bin/sh\nexit 1\n")  # exists on PATH but does not run: not an interpreter
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    finder = Finder(
        search_path=os.pathsep.join([str(tmp_path), str(Path(sys.executable).parent)]), pyenv=False, uv=False
    )
    here = finder.find(HOST)
    assert here.found and Path(here.path or "").exists()
    absent = finder.find("3.97")
    assert absent.path is None
    assert absent.reason == "no Python 3.97 interpreter found on PATH"
    old = finder.find("3.8")
    assert old.path is None and "not supported by pytest-spike (3.9+)" in old.reason


def test_finder_asks_every_python_at_once(tmp_path: Path) -> None:
    """find_all asks the versions concurrently: each fake interpreter answers only once all
    three have been started (it waits up to 5 s for the others), so one-by-one look-ups
    would find none of them."""
    for version in ("3.95", "3.96", "3.97"):
        script = tmp_path / f"python{version}"
        script.write_text(
            "#!/bin/sh\n"
            f"touch {tmp_path}/started-{version}\n"
            "i=0\n"
            f"while [ $(ls {tmp_path} | grep -c started-) -lt 3 ]; do\n"
            "  i=$((i+1)); [ $i -gt 50 ] && exit 1; sleep 0.1\n"
            "done\n"
            f"echo {version}; echo {script}\n"
        )
        script.chmod(0o755)
    finder = Finder(search_path=str(tmp_path), pyenv=False, uv=False)
    finder.find_all(["3.95", "3.96", "3.97", "3.96"])
    found = {v: finder.find(v) for v in ("3.95", "3.96", "3.97")}
    assert {v: i.path for v, i in found.items()} == {v: str(tmp_path / f"python{v}") for v in found}


def test_finder_reads_pyenv_versions_folder(tmp_path: Path) -> None:
    bin_dir = tmp_path / "versions" / f"{HOST}.99" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").symlink_to(sys.executable)
    found = Finder(search_path="", pyenv=tmp_path, uv=False).find(HOST)
    assert found.source == "pyenv" and found.found


def test_cells_cross_versions_and_pythons_with_skips(index: IndexServer) -> None:
    plan = build_plan(
        pytest_plan(versions="latest:2", python=[HOST, "3.97", "3.8"]),
        index.client(),
        paths=["spikes"],
        finder=host_only(),
    )
    states = {c.id: (c.status, c.reason) for c in plan.cells}
    assert states[f"py{HOST}-tomly-2.0"] == ("run", "")
    assert states[f"py{HOST}-tomly-1.1"] == ("run", "")
    assert f"py{HOST}-tomly-1.0" not in states  # latest:2 picks the newest patch of 2 minors
    assert states["py3.97-tomly-2.0"] == ("skipped", "no Python 3.97 interpreter found on PATH")
    assert states["py3.8-tomly-1.1"][0] == "skipped"
    assert "not supported" in states["py3.8-tomly-1.1"][1]
    run = plan.runnable()
    assert all(c.interpreter for c in run) and len(run) == 2
    assert "py3.11-tomly-2.0" == Cell("3.11", "tomly", "tomly", "2.0").id


def test_requires_python_excludes_cell(index: IndexServer) -> None:
    old = "3.9" if HOST != "3.9" else "3.10"
    plan = build_plan(pytest_plan(versions=["1.1", "2.0"], python=[old, HOST]), index.client())
    cell = {c.id: c for c in plan.cells}[f"py{old}-tomly-2.0"]
    if Version(HOST) > Version(old):  # 2.0 requires >= the host's Python
        assert cell.status == "skipped"
        assert cell.reason == f"tomly==2.0 requires-python >={HOST} excludes {old}"
    assert {c.id: c for c in plan.cells}[f"py{old}-tomly-1.1"].status == "run"


def test_plan_round_trips_and_github_cuts_within_limit(index: IndexServer) -> None:
    plan = build_plan(
        pytest_plan(versions=["1.0", "1.1", "2.0"], python=["3.9", "3.10", "3.11", "3.12", "3.13", "3.8"]),
        index.client(),
    )
    again = MatrixPlan.from_dict(json.loads(json.dumps(plan.to_dict())))
    assert [c.id for c in again.cells] == [c.id for c in plan.cells]
    include, lines = github.include_list(plan, limit=4)
    assert len(include) == 4
    assert {e["pin"] for e in include} >= {"tomly==2.0"}
    runnable = len(plan.runnable())
    assert lines[0].startswith(f"cut {runnable - 4} of {runnable} cells to stay within GitHub's 4")
    assert "py3.8-tomly-1.0: Python 3.8 is not supported" in lines[1]


def test_tox_config_has_one_env_per_runnable_cell(index: IndexServer) -> None:
    plan = build_plan(
        pytest_plan(versions=["1.1"], python=[HOST, "3.97"]),
        index.client(),
        paths=["spikes"],
        finder=host_only(),
    )
    text = tox.tox_ini(plan, plugin=["-e", "../.."])
    assert "    -e ../..\n" in text
    assert f"[testenv:py{HOST}-tomly-1.1]" in text
    assert "# skipped py3.97-tomly-1.1: no Python 3.97 interpreter found on PATH" in text
    assert "--spike-select tomly --spike-cell" in text and "tomly==1.1" in text
    assert "[testenv:spike-report]" in text
    assert "[testenv:spike-run]" in text and "    pytest-spike run spikes --results-dir" in text


def test_collect_writes_the_pytest_plan(tmp_path: Path) -> None:
    (tmp_path / "test_spike.py").write_text(
        "from pytest_spike import spike\n"
        "pytestmark = spike.candidate('tomly', versions='latest:2', python=['3.11'])\n"
        "def test_it():\n    import tomly\n"
    )
    data = collect(["."], cwd=tmp_path)
    (cand,) = data["candidates"]
    assert cand["name"] == "tomly" and cand["versions"] == "latest:2"
    assert cand["tests"] == ["test_spike.py::test_it"]


def test_tox_reads_the_generated_config(index: IndexServer, tmp_path: Path) -> None:
    plan = build_plan(
        pytest_plan(versions=["1.0", "1.1"], python=[HOST, "3.97"]),
        index.client(),
        paths=["spikes"],
        finder=host_only(),
    )
    ini = tmp_path / "tox-spike.ini"
    ini.write_text(tox.tox_ini(plan))
    done = subprocess.run(
        [sys.executable, "-m", "tox", "-c", str(ini), "-l"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.split() == [f"py{HOST}-tomly-1.0", f"py{HOST}-tomly-1.1"]


@pytest.mark.network
def test_github_matrix_from_the_real_index(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pytest_spike import cli

    (tmp_path / "test_spike.py").write_text(
        "from pytest_spike import spike\n"
        "pytestmark = spike.candidate('tomli', versions='latest:2', python=['3.9', '3.13'])\n"
        "def test_it():\n    import tomli\n"
    )
    assert cli.main(["matrix", str(tmp_path), "--github"]) == 0
    include = json.loads(capsys.readouterr().out)["include"]
    assert len(include) == 4
    assert {e["python"] for e in include} == {"3.9", "3.13"}
    assert all(e["cell"] == f"py{e['python']}-tomli-{e['pin'].split('==')[1]}" for e in include)


def test_the_pythons_named_are_looked_up_while_the_spike_is_collected(
    index: IndexServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """plan_matrix asks for the command line's Pythons while pytest collects the spike (a
    cold matrix's layers waited for both, one after the other): here the collection waits
    up to 5 s for the fake interpreter to be asked, and fails without it."""
    bin_dir, project, asked = tmp_path / "bin", tmp_path / "project", tmp_path / "asked"
    bin_dir.mkdir()
    project.mkdir()
    script = bin_dir / "python3.95"
    script.write_text(f"#!/bin/sh\ntouch {asked}\necho 3.95; echo {script}\n")
    script.chmod(0o755)
    (project / "conftest.py").write_text(
        "import os, time\n\n"
        "def pytest_collection(session):\n"
        "    for _ in range(50):\n"
        f"        if os.path.exists({str(asked)!r}):\n"
        "            return\n"
        "        time.sleep(0.1)\n"
        "    raise RuntimeError('no interpreter was asked while the spike was collected')\n"
    )
    (project / "test_spike.py").write_text(
        "from pytest_spike import spike\n"
        "pytestmark = spike.candidate('tomly', versions='latest:1')\n"
        "def test_it():\n    import tomly\n"
    )
    monkeypatch.setenv("PATH", os.pathsep.join([str(bin_dir), os.environ["PATH"]]))
    plan = plan_matrix(
        ["."], cwd=project, pythons=["3.95"], index_url=index.url, cache_dir=tmp_path / "cache"
    )
    assert plan.cells and all(c.interpreter == str(script) for c in plan.cells), plan.cells
