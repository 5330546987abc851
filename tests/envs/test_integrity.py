"""Cached environments and layers keep their integrity: one whose files changed after it was
built (as by a candidate that got out of its box) is rebuilt, never reused, and said so.

Real environments from a local index of tiny wheels; the tampering is done from the test,
as an attacker writing into the cache would.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
from backends import BACKENDS, hermetic  # noqa: F401
from pkgfactory import build_local_index

from pytest_spike._core.runner import run
from pytest_spike.envs import digest, layer
from pytest_spike.envs.fit import install_findings
from pytest_spike.envs.manager import EnvManager, EnvResult
from pytest_spike.model import Severity

IMPORT = "import cand, sys; print(getattr(cand, 'RIGGED', 'clean')); print(getattr(sys, 'rigged', 'clean'))"


@pytest.fixture(params=BACKENDS)
def built(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[EnvManager, EnvResult]:
    """A fresh environment with ``cand`` (and its dependency ``dep``) per backend."""
    folder = build_local_index(tmp_path / "index")
    with hermetic():
        manager = EnvManager(
            tmp_path / "cache" / "envs",
            backend=request.param,
            index_args=["--no-index", "--find-links", str(folder)],
        )
        result = manager.ensure(["cand"])
    assert result.ok, result.error
    return manager, result


def again(manager: EnvManager) -> EnvResult:
    """A later run's manager, asking for the same environment."""
    with hermetic():
        later = EnvManager(manager.cache_dir, backend=manager.backend, index_args=manager.index_args)
        return later.ensure(["cand"])


def site_packages(result: EnvResult) -> Path:
    (site,) = Path(result.path).glob("lib/python*/site-packages")
    return site


def imported(result: EnvResult) -> list[str]:
    done = run([result.python, "-c", IMPORT], timeout=60)
    assert done.ok, done.stderr
    return done.stdout.split()


def test_an_untouched_environment_is_reused(built: tuple[EnvManager, EnvResult]) -> None:
    manager, first = built
    second = again(manager)
    assert second.reused and second.rebuilt == "" and second.built_at == first.built_at
    assert "install.rebuilt" not in [f.code for f in install_findings(second)[0]]


def test_an_installed_file_changed_later_makes_a_rebuild(built: tuple[EnvManager, EnvResult]) -> None:
    manager, first = built
    module = site_packages(first) / "cand" / "__init__.py"
    with module.open("a") as handle:
        handle.write("RIGGED = 'rigged'\n")
    assert imported(first) == ["rigged", "clean"]  # the tampered file works, as it would in a probe
    second = again(manager)
    relative = module.relative_to(first.path).as_posix()
    assert not second.reused and second.ok and second.path == first.path
    assert second.rebuilt == f"{relative} changed"
    assert imported(second) == ["clean", "clean"]  # the rebuilt environment holds the original
    findings, details = install_findings(second)
    (rebuilt,) = [f for f in findings if f.code == "install.rebuilt"]
    assert rebuilt.severity is Severity.INFO and str(rebuilt.blame) == "environment"
    assert rebuilt.message == f"the cached environment was rebuilt: {relative} changed since it was built"
    assert details["rebuilt"] == second.rebuilt
    third = again(manager)
    assert third.reused and third.rebuilt == ""  # the new environment, recorded anew


def test_a_pth_file_dropped_in_later_makes_a_rebuild(built: tuple[EnvManager, EnvResult]) -> None:
    manager, first = built
    planted = site_packages(first) / "zz-planted.pth"
    planted.write_text("import sys; sys.rigged = 'rigged'\n")
    assert imported(first) == ["clean", "rigged"]  # every start of the interpreter runs it
    second = again(manager)
    assert not second.reused and second.rebuilt == f"{planted.relative_to(first.path).as_posix()} appeared"
    assert not planted.exists() and imported(second) == ["clean", "clean"]


def test_the_interpreter_link_counts_too(built: tuple[EnvManager, EnvResult]) -> None:
    manager, first = built
    python = Path(first.python)
    assert python.is_symlink()
    target = os.readlink(python)
    python.unlink()
    python.symlink_to("/bin/sh")
    second = again(manager)
    assert not second.reused and second.rebuilt == "bin/python changed"
    assert os.readlink(python) == target


def test_a_file_restored_to_its_size_and_time_is_not_seen(built: tuple[EnvManager, EnvResult]) -> None:
    """The limit the README states: the check reads stat lines, not contents."""
    manager, first = built
    module = site_packages(first) / "dep" / "__init__.py"
    before = module.stat()
    assert module.read_text() == "VERSION = 2\n"
    module.write_text("VERSION = 9\n")
    os.utime(module, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert again(manager).reused and module.read_text() == "VERSION = 9\n"


def test_a_changed_layer_is_rebuilt_and_said(tmp_path: Path) -> None:
    said: list[str] = []
    first = layer.build_layer(tmp_path, said.append)
    assert layer.build_layer(tmp_path, said.append) == first and said == []
    conftest = first / "pytest_spike" / "plugin.py"
    original = conftest.read_text()
    conftest.write_text(original + "\nRIGGED = True\n")
    assert layer.build_layer(tmp_path, said.append) == first
    assert said == ["rebuilt the child pytest's layer: pytest_spike/plugin.py changed since it was built"]
    assert conftest.read_text() == original
    (first / "planted.pth").write_text("import os\n")
    layer.build_layer(tmp_path, said.append)
    assert said[-1].endswith("planted.pth appeared since it was built")
    assert not (first / "planted.pth").exists()


def test_digest_cost_is_a_stat_per_file(tmp_path: Path) -> None:
    """Recording 2 000 files costs stat calls, not reads: well under a second, any size."""
    for i in range(2000):
        (tmp_path / f"m{i}.py").write_bytes(b"x" * 100_000 if i < 10 else b"x")
    start = time.perf_counter()
    files = digest.tree_files(tmp_path)
    elapsed = time.perf_counter() - start
    assert len(files) == 2000 and files["m0.py"][0] == 100_000  # type: ignore[index]
    assert elapsed < 1.0


def test_an_unboxed_child_leaves_its_layer_as_built(tmp_path: Path) -> None:
    """With --spike-sandbox off the layer is writable: the child's pytest-spike must not
    rewrite its audit boot's bytecode (same bytes, new time) and so force a rebuild each run."""
    said: list[str] = []
    built = layer.build_layer(tmp_path, said.append)
    child = "import sys; sys.path.insert(0, sys.argv[1]); from pytest_spike._core import behaviour; behaviour.python_path(None)"
    for _ in range(2):
        done = run([sys.executable, "-c", child, str(built)], timeout=60)
        assert done.ok, done.stderr
    compiled = list((built / "pytest_spike" / "_core" / "_boot" / "__pycache__").glob("sitecustomize.*.pyc"))
    assert compiled  # the boot is compiled, by the build or by the first child
    layer.build_layer(tmp_path, said.append)  # the first child may have compiled it: rebuilt once
    done = run([sys.executable, "-c", child, str(built)], timeout=60)
    assert done.ok, done.stderr
    said.clear()
    assert layer.build_layer(tmp_path, said.append) == built and said == []
