"""How the upgrade spike's child pytest starts: what it spares, and what it must not touch."""

from __future__ import annotations

import importlib.util
import marshal
import sys
from pathlib import Path

import pytest
from test_upgrade import cache_dir, local_index, old_site, project, upgrades  # noqa: F401  (fixtures)

from pytest_spike._core import sandbox

#: In the child pytest, pytest's own objects are frozen out of the collector's passes and the
#: project's are not: a cycle of the test module's is still seen by gc and collected.
CHECKS_THE_COLLECTOR = """
import gc, os, weakref

class Node:
    pass

KEPT = Node()
KEPT.self = KEPT

def test_the_collector_sees_the_projects_objects():
    assert any(o is KEPT for o in gc.get_objects())
    dropped = Node()
    dropped.self = dropped
    ref = weakref.ref(dropped)
    del dropped
    gc.collect()
    assert ref() is None

def test_only_the_child_freezes():
    frozen = gc.get_freeze_count() if hasattr(gc, "get_freeze_count") else 0
    if os.environ.get("PYTEST_SPIKE_UPGRADE_CHILD"):
        assert frozen > 0, "the child froze nothing"
    else:
        assert frozen == 0, "the project's own run is not the child's to change"
"""


def test_the_child_freezes_pytest_s_objects_and_never_the_project_s(
    project: pytest.Pytester,  # noqa: F811
    cache_dir,  # noqa: F811
) -> None:
    (project.path / "test_app.py").unlink()
    project.makepyfile(test_gc=CHECKS_THE_COLLECTOR)
    result = project.runpytest(
        "--spike-upgrade",
        "oldlib",
        "--spike-upgrade-versions=2.0",
        f"--spike-cache-dir={cache_dir}",
        "--spike-json=up.json",
    )
    result.assert_outcomes(passed=2)
    [target] = upgrades(project)["targets"]
    # both tests pass in the child too, the first time: nothing broke, flipped or was left out
    assert target["compared"] == 2 and target["broken"] == 0 and target["passes"] is True
    assert [f["code"] for f in target["findings"] if f["code"].startswith("upgrade.")] == []


#: The project's test as written: it fails. The parent reads a rewritten copy kept under the
#: bytecode prefix (planted below) in which it passes; so does the boxed child when it is
#: handed the copies this run read, and it fails when it rewrites the source again.
FAILS_AS_WRITTEN = "def test_kept():\n    assert False, 'rewritten again from the source'\n"
PASSES_AS_KEPT = "def test_kept():\n    assert True\n"


def _plant_rewritten(source: Path, prefix: Path, code_text: str) -> None:
    """A rewritten module where pytest keeps it under ``prefix``, valid for ``source``."""
    code = compile(code_text, str(source), "exec")
    # pytest's checked-hash pyc (PEP 552): flags 3, then the source's hash
    header = (
        importlib.util.MAGIC_NUMBER
        + b"\x03\x00\x00\x00"
        + importlib.util.source_hash(source.read_bytes())[:8]
    )
    folder = prefix / Path(*source.resolve().parent.parts[1:])
    folder.mkdir(parents=True, exist_ok=True)
    tail = f".{sys.implementation.cache_tag}-pytest-{pytest.__version__}.pyc"
    (folder / f"{source.stem}{tail}").write_bytes(header + marshal.dumps(code))


def test_a_boxed_child_reads_the_test_modules_this_run_rewrote_under_a_bytecode_prefix(
    project: pytest.Pytester,  # noqa: F811
    cache_dir,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if not sandbox.status().boxed:
        pytest.skip(f"the box cannot run here: {sandbox.status().describe()}")
    prefix = tmp_path / "pycache"
    monkeypatch.setenv("PYTHONPYCACHEPREFIX", str(prefix))
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
    (project.path / "test_app.py").unlink()
    source = project.makepyfile(test_kept=FAILS_AS_WRITTEN)
    _plant_rewritten(source, prefix, PASSES_AS_KEPT)
    result = project.runpytest_subprocess(
        "--spike-upgrade",
        "oldlib",
        "--spike-upgrade-versions=2.0",
        f"--spike-cache-dir={cache_dir}",
        "--spike-json=up.json",
    )
    result.assert_outcomes(passed=1)  # the parent read the kept copy
    [target] = upgrades(project)["targets"]
    assert target["compared"] == 1 and target["broken"] == 0 and target["passes"] is True
    assert [f["code"] for f in target["findings"] if f["code"].startswith("upgrade.")] == []
