"""A candidate's build cannot reach another candidate's environment through the installer's cache.

The installer step runs build backends (candidate code) with its cache writable. With one
cache for every candidate, a hostile sdist's backend appended to the module the cache kept
of goodpkg's wheel, and goodpkg's next environment held the planted line. Each candidate now
has a cache of its own. Real uv or pip, a local find-links index, the real bubblewrap.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from backends import hermetic
from pkgfactory import FakeProject, backend_from_sdist, build_sdist, build_wheel

from pytest_spike._core import sandbox
from pytest_spike._core.runner import run
from pytest_spike.envs.manager import EnvManager, find_uv, installer_cache

pytestmark = pytest.mark.skipif(
    not sandbox.status(sandbox.Policy()).boxed,
    reason=f"no box here: {sandbox.status(sandbox.Policy()).reason}",
)

#: What evilbuild's backend does before it builds: append to every goodpkg module it can
#: find in its installer cache and anywhere under the installer folder above it.
PLANT = """\
import glob, os
cache = os.environ.get("UV_CACHE_DIR") or os.environ.get("PIP_CACHE_DIR") or ""
found = set()
for top in (cache, os.path.dirname(os.path.dirname(cache))):
    found |= set(glob.glob(top + "/**/goodpkg/__init__.py", recursive=True))
for path in found:
    try:
        with open(path, "a") as handle:
            handle.write("PLANTED = True\\n")
    except OSError:
        pass
"""


def _hostile_sdist(name: str, before: str, index: Path) -> None:
    """An sdist of ``name`` 1.0 in ``index`` whose build backend runs ``before`` first."""
    project = FakeProject(
        name,
        "1.0",
        files={f"{name}/__init__.py": "X = 1\n"},
        sdist_files={
            "pyproject.toml": '[build-system]\nrequires = []\nbuild-backend = "hostile"\nbackend-path = ["."]\n',
            "hostile.py": backend_from_sdist(name, "1.0", before=before),
        },
    )
    build_sdist(project, index)


def test_a_candidates_build_cannot_plant_code_in_another_candidates_environment(tmp_path: Path) -> None:
    index = tmp_path / "index"
    index.mkdir()
    build_wheel(FakeProject("goodpkg", "1.0", files={"goodpkg/__init__.py": "GOOD = True\n"}), index)
    _hostile_sdist("evilbuild", PLANT, index)
    project = tmp_path / "project"
    project.mkdir()
    (project / "pytest.ini").write_text("[pytest]\n")
    cache = tmp_path / "cache"
    env = dict(
        os.environ,
        PIP_CONFIG_FILE=os.devnull,
        PIP_NO_INDEX="1",
        PIP_FIND_LINKS=str(index),
        UV_NO_INDEX="1",
        UV_FIND_LINKS=str(index),
        UV_NO_CONFIG="1",
    )
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", "--spike"]
    argv += ["--spike-isolation=always", f"--spike-cache-dir={cache}", "--spike-probes=install,import"]
    argv += ["--spike-offline", "--spike-sandbox=require"]

    def spike(*more: str) -> None:
        done = subprocess.run(
            [*argv, *more], cwd=project, env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]

    spike("--spike-candidate", "goodpkg")  # goodpkg's wheel is in its cache now
    spike("--spike-candidate", "evilbuild")  # evilbuild's backend ran (its env was built)
    spike("--spike-candidate", "goodpkg", "--spike-fresh")  # goodpkg's environment built again
    modules = list(cache.glob("envs/*/lib/python*/site-packages/goodpkg/__init__.py"))
    assert modules and all(m.read_text() == "GOOD = True\n" for m in modules)
    kept = list(installer_cache(cache, "goodpkg").rglob("goodpkg/__init__.py"))
    assert kept and all(k.read_text() == "GOOD = True\n" for k in kept)
    assert list(cache.glob("envs/*/lib/python*/site-packages/evilbuild/__init__.py"))  # it was built
    assert installer_cache(cache, "evilbuild") != installer_cache(cache, "goodpkg")


def test_each_candidate_has_an_installer_cache_of_its_own_that_no_name_shares() -> None:
    root = Path("/c")
    assert (
        installer_cache(root, "tomlkit")
        == installer_cache(root, "TomlKit==0.15.3")
        == root / "installer/tomlkit"
    )
    assert installer_cache(root, "Oldlib[x]>=2").name == "oldlib"
    # pytest-spike's own (its layer) and a candidate given as a path or URL: names no
    # project can have
    assert installer_cache(root, None).name == "_own"
    assert installer_cache(root, "pytest-spike").name == "pytest-spike"
    for odd in ("./dist/x.whl", "https://host.invalid/y.tar.gz"):
        assert installer_cache(root, odd).name.startswith("_h-")
    assert installer_cache(root, "./a.whl") != installer_cache(root, "./b.whl")


#: The backend of swapbuild: its build moves the folder its environment is being built in
#: (in its installer cache, which it may write) and puts a link in its place. The link
#: leads to the moved folder, so the install goes on through it; the same path, once moved
#: in place on the host, could lead elsewhere (the box's /tmp is not the host's).
SWAP = """\
import glob, os
top = os.path.dirname(os.environ.get("UV_CACHE_DIR", "/nonexistent"))
for folder in glob.glob(top + "/building-*"):
    os.rename(folder, folder + "-moved")
    os.symlink(folder + "-moved", folder)
"""


def _manager(tmp_path: Path, index: Path) -> EnvManager:
    return EnvManager(
        tmp_path / "cache" / "envs", backend="uv", index_args=["--no-index", "--find-links", str(index)]
    )


@pytest.mark.skipif(find_uv() is None, reason="uv is not installed")
def test_a_boxed_uv_build_links_its_files_from_the_candidates_cache(tmp_path: Path) -> None:
    """Built in the cache's mount and moved in place: uv hard-links the cache's files (it
    copied each across the box's two mounts), and the environment's script runs from it."""
    index = tmp_path / "index"
    index.mkdir()
    entry_points = "[console_scripts]\ntool = tool:main\n"
    files = {
        "tool/__init__.py": "def main():\n    print('tool ran')\n",
        "tool-1.0.dist-info/entry_points.txt": entry_points,
    }
    build_wheel(FakeProject("tool", "1.0", files=files), index)
    with hermetic():
        manager = _manager(tmp_path, index)
        result = manager.ensure(["tool"])
        again = manager.ensure(["tool"])
    assert result.ok, result.error
    [module] = Path(result.path).glob("lib/python*/site-packages/tool/__init__.py")
    cache = installer_cache(manager.cache_dir.parent, "tool")
    kept = [p for p in cache.rglob("tool/__init__.py") if os.path.samefile(p, module)]
    assert kept and module.stat().st_nlink > 1, "the module was copied, not linked from the cache"
    assert not list(cache.glob("building-*"))  # moved, nothing left behind
    done = run([str(Path(result.path) / "bin" / "tool")], timeout=60)
    assert done.stdout.strip() == "tool ran", done.stderr
    assert again.reused and again.path == result.path  # its files, recorded after the move, match


@pytest.mark.skipif(find_uv() is None, reason="uv is not installed")
def test_a_build_that_swaps_its_folder_for_a_link_gets_no_environment(tmp_path: Path) -> None:
    """The host moves only a real folder in place: a link there would make the environment
    (bound in later boxes) a view of whatever it points at."""
    index = tmp_path / "index"
    index.mkdir()
    _hostile_sdist("swapbuild", SWAP, index)
    with hermetic():
        manager = _manager(tmp_path, index)
        result = manager.ensure(["swapbuild"])
    assert not result.ok
    assert "replaced its environment's folder" in result.error and result.not_candidate == ""
    entry = manager.path(["swapbuild"])
    assert not entry.is_symlink() and not entry.exists()
    cache = installer_cache(manager.cache_dir.parent, "swapbuild")
    assert list(cache.glob("building-*-moved")), "the backend did not run where the test expects"
    assert not [p for p in cache.glob("building-*") if p.is_symlink()]  # the link is removed
