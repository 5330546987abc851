"""The one inspection of an installed distribution: read by the host from the files, closure here."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from pkgfactory import FakeProject, build_wheel, pth_forger

from pytest_spike._core.runner import run
from pytest_spike.envs import inspection
from pytest_spike.model import SpikeError
from pytest_spike.readme.run import read_readme


def inspect(requirement: str, site: Path) -> dict[str, Any]:
    return inspection.report(inspection.running_site([str(site)]), requirement)


def test_a_real_distribution_and_its_closure(fixture_site: Path) -> None:
    report = inspect("deppkg", fixture_site)
    assert report["installed"] and report["version"] == "1.0"
    # goodpkg is needed; warnpkg only on Python 2, so it is not (though the script sized it)
    assert {d["name"] for d in report["dists"]} == {"deppkg", "goodpkg", "warnpkg"}
    info = inspection.describe(report, "deppkg")
    assert info["dependencies"] == {"goodpkg": "1.0"}
    assert info["modules"] == ["deppkg"] and info["location"]
    assert info["size_bytes"] > 0 and info["deps_size_bytes"] > 0
    assert "dists" not in info and "env" not in info
    missing = inspection.describe(inspect("conflictpkg", fixture_site), "conflictpkg")
    assert missing["dependencies"] == {"missingdep": None} and missing["deps_size_bytes"] == 0
    absent = inspection.describe(inspect("not-installed-anywhere", fixture_site), "not-installed-anywhere")
    python = "{}.{}".format(*sys.version_info[:2])
    assert absent == {"installed": False, "python": absent["python"], "python_version": python}
    assert info["python_version"] == python  # the interpreter's, for the signals probe


def dist(name: str, *requires: str, size: int = 10) -> dict[str, Any]:
    return {"name": name, "version": "1.0", "requires": list(requires), "size": size, "uv_built": False}


def test_markers_are_those_of_the_inspected_interpreter_and_extras_are_followed() -> None:
    report = {
        "installed": True,
        "name": "Root",
        "version": "1.0",
        "env": {"python_version": "3.8", "sys_platform": "linux"},
        "dists": [
            dist(
                "Root",
                "old-only; python_version < '3.9'",
                "new-only; python_version >= '3.9'",
                "fancy[speed]",
            ),
            dist("old_only", size=1),
            dist("new-only", size=100),
            dist("fancy", "turbo; extra == 'speed'", "docs; extra == 'docs'", size=20),
            dist("turbo", "root", size=300),  # a cycle back to the root ends there
            dist("docs", size=4000),
        ],
    }
    # the interpreter inspected is 3.8, whatever runs this test
    assert inspection.closure(report, "root") == {"old-only": "1.0", "fancy": "1.0", "turbo": "1.0"}
    info = inspection.describe(report, "root")
    assert (info["size_bytes"], info["deps_size_bytes"]) == (10, 321)
    with_extra = dict(report, dists=[dist("Root", "docs; extra == 'all'"), dist("docs")])
    assert inspection.closure(with_extra, "root[all]") == {"docs": "1.0"}
    assert inspection.closure(with_extra, "root") == {}


# -- a real environment, read from its files ----------------------------------------------


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("wheels")
    build_wheel(pth_forger("forger", requires=["forgerdep>=1"], readme="# forger\n"), folder)
    build_wheel(FakeProject("forgerdep", "1.0", files={"forgerdep/__init__.py": "X = 1\n"}), folder)
    return folder


def make_venv(env: Path, wheels: Path, *args: str) -> Path:
    """A real venv (no pip of its own) with ``args`` installed by the host's pip."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    pip = [sys.executable, "-m", "pip", "--python", str(env / "bin" / "python"), "install", "-q"]
    subprocess.run([*pip, "--no-index", "--find-links", str(wheels), *args], check=True)
    return env


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory, wheels: Path) -> Path:
    """The .pth forger and its dependency, installed."""
    return make_venv(tmp_path_factory.mktemp("inspected") / "env", wheels, "forger")


def test_a_venv_is_read_from_its_files_not_from_its_interpreter(venv: Path) -> None:
    python = str(venv / "bin" / "python")
    site = inspection.env_site(python, venv, base=sys.executable)
    short = "{}.{}".format(*sys.version_info[:2])
    assert site.paths == (str(venv / "lib" / f"python{short}" / "site-packages"),)
    assert site.root == os.path.realpath(venv) and site.python == python
    info = inspection.describe(inspection.report(site, "forger"), "forger")
    assert info["dependencies"] == {"forgerdep": "1.0"} and info["deps_size_bytes"] > 0
    assert "forger" in info["modules"] and info["python"] == python
    # A relative root is the same environment (RECORD lines are checked against it).
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(venv.parent)
        relative = inspection.report(inspection.env_site(python, venv.name, base=sys.executable), "forger")
    assert [d["size"] for d in relative["dists"]] == [
        d["size"] for d in inspection.report(site, "forger")["dists"]
    ]
    readme = read_readme(python, "forger", 10, site=site)
    assert readme == ("# forger\n", "text/markdown")
    # The environment's interpreter answers otherwise: the forger's .pth ran there first.
    told = run([python, "-c", "import importlib.metadata as m; print(m.requires('forger'))"], timeout=60)
    assert told.stdout.split() == ["None"], told.stderr


def test_asked_with_no_site_the_interpreter_gives_the_same_folders_and_markers(venv: Path) -> None:
    """Without the interpreter that built it, the environment's own one is asked with -I -S:
    the .pth file does not run (it would print a forged line at exit)."""
    python = str(venv / "bin" / "python")
    asked = inspection.site_for(python)
    known = inspection.env_site(python, venv, base=sys.executable)
    assert (asked.paths, asked.root) == (known.paths, known.root)
    assert dict(asked.markers) == dict(known.markers)
    assert inspection.describe(inspection.report(asked, "forger"), "forger")["dependencies"] == {
        "forgerdep": "1.0"
    }


def _planted(venv: Path, tmp_path: Path, name: str) -> Path:
    """A copy of the venv with a distribution ``name`` whose folder the test fills."""
    copy = tmp_path / "env"
    shutil.copytree(venv, copy, symlinks=True)
    site = next((copy / "lib").glob("python*/site-packages"))
    folder = site / f"{name}-1.0.dist-info"
    folder.mkdir()
    return folder


def test_metadata_that_leads_out_of_the_environment_is_not_read(venv: Path, tmp_path: Path) -> None:
    secret = tmp_path / "home" / ".ssh" / "id_rsa"
    secret.parent.mkdir(parents=True)
    secret.write_text("Name: leak\nVersion: 1.0\n\nPRIVATE KEY decoy-4a7f\n")
    folder = _planted(venv, tmp_path, "leak")
    (folder / "METADATA").symlink_to(secret)
    env = folder.parents[3]
    site = inspection.env_site(str(env / "bin" / "python"), env, base=sys.executable)
    with pytest.raises(SpikeError, match="leads out of the environment") as caught:
        inspection.report(site, "leak")
    assert "decoy-4a7f" not in str(caught.value)
    with pytest.raises(SpikeError, match="cannot read the README of 'leak'") as caught:
        read_readme(site.python, "leak", 10, site=site)
    assert "decoy-4a7f" not in str(caught.value)
    # A link inside the environment is read: venvs link lib64 to lib.
    (folder / "METADATA").unlink()
    (folder / "REAL").write_text("Name: leak\nVersion: 1.0\n")
    (folder / "METADATA").symlink_to(folder / "REAL")
    assert inspection.report(site, "leak")["version"] == "1.0"


def test_a_named_pipe_or_a_huge_file_is_refused_without_waiting(venv: Path, tmp_path: Path) -> None:
    folder = _planted(venv, tmp_path, "pipe")
    os.mkfifo(folder / "METADATA")
    env = folder.parents[3]
    site = inspection.env_site(str(env / "bin" / "python"), env, base=sys.executable)
    start = time.monotonic()
    with pytest.raises(SpikeError, match="is not a regular file"):
        inspection.report(site, "pipe")
    assert time.monotonic() - start < 5
    (folder / "METADATA").unlink()
    with open(folder / "METADATA", "wb") as handle:  # sparse: no disk is used
        handle.truncate(inspection.MAX_FILE_BYTES + 1)
    with pytest.raises(SpikeError, match="is larger than 16 MiB"):
        inspection.report(site, "pipe")


def test_a_record_line_naming_a_file_elsewhere_is_not_sized(venv: Path, tmp_path: Path) -> None:
    folder = _planted(venv, tmp_path, "bloat")
    big = tmp_path / "big.bin"
    with open(big, "wb") as handle:
        handle.truncate(10**9)
    (folder / "METADATA").write_text("Metadata-Version: 2.1\nName: bloat\nVersion: 1.0\n")
    (folder / "RECORD").write_text(
        f"bloat-1.0.dist-info/METADATA,,\n{os.path.relpath(big, folder.parent)},,\n"
    )
    env = folder.parents[3]
    site = inspection.env_site(str(env / "bin" / "python"), env, base=sys.executable)
    report = inspection.report(site, "bloat")
    assert 0 < report["dists"][0]["size"] < 1000
    # The running environment (no root) follows links and sizes what RECORD names.
    running = inspection.report(inspection.running_site([str(folder.parent)]), "bloat")
    assert running["dists"][0]["size"] > 10**9


def test_pip_checks_question_is_answered_from_the_files(wheels: Path, tmp_path: Path) -> None:
    """The forger installed without its dependency: pip, run in that interpreter, is told
    nothing is broken; the host reads the missing requirement."""
    env = make_venv(tmp_path / "env", wheels, "--no-deps", "forger")
    python = str(env / "bin" / "python")
    told = run([sys.executable, "-m", "pip", "--python", python, "check"], timeout=120)
    assert "No broken requirements found" in told.stdout, told.stdout + told.stderr
    site = inspection.env_site(python, env, base=sys.executable)
    assert inspection.broken(site) == ["forger 1.0 requires forgerdep, which is not installed."]
    older = tmp_path / "older"
    build_wheel(FakeProject("forgerdep", "0.5"), older)
    make_venv(env, older, "--no-deps", "forgerdep==0.5")
    assert inspection.broken(site) == ["forger 1.0 has requirement forgerdep>=1, but you have forgerdep 0.5."]
