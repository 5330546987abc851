"""How the upgrade spike's child pytest starts: what it spares, and what it must not touch."""

from __future__ import annotations

import importlib.util
import marshal
import os
from pathlib import Path

import pytest
from _pytest.assertion.rewrite import PYC_TAIL
from test_upgrade import cache_dir, local_index, old_site, project, to_two, upgrades  # noqa: F401  (fixtures)

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
    result = project.runpytest(*to_two(cache_dir, "--spike-json=up.json"))
    result.assert_outcomes(passed=2)
    [target] = upgrades(project)["targets"]
    # both tests pass in the child too, the first time: nothing broke, flipped or was left out
    assert target["compared"] == 2 and target["broken"] == 0 and target["passes"] is True
    assert [f["code"] for f in target["findings"] if f["code"].startswith("upgrade.")] == []


#: The project's test as its source says (it fails wherever it runs), and as the rewritten
#: module the host's pytest kept says (it passes): which one ran shows what the child read.
MARKER_SOURCE = "def test_marker():\n    assert False, 'rewritten from the source'\n"
MARKER_KEPT = "def test_marker():\n    pass\n"


@pytest.mark.skipif(
    not sandbox.status(sandbox.Policy()).boxed, reason="the box keeps no prefix; unboxed, the child has it"
)
def test_the_boxed_child_reads_the_rewritten_tests_the_host_kept_under_its_pycache_prefix(
    project: pytest.Pytester,  # noqa: F811
    cache_dir,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (project.path / "test_app.py").unlink()
    test = project.makepyfile(test_marker=MARKER_SOURCE)
    prefix = tmp_path / "pycs"
    mirror = prefix.joinpath(*Path(os.path.abspath(test.parent)).parts[1:])
    mirror.mkdir(parents=True)
    # a module as pytest keeps it: checked against the source's hash, rewritten code inside
    code = compile(MARKER_KEPT, str(test), "exec")
    header = (
        importlib.util.MAGIC_NUMBER + b"\x03\x00\x00\x00" + importlib.util.source_hash(test.read_bytes())[:8]
    )
    (mirror / (test.name[:-3] + PYC_TAIL)).write_bytes(header + marshal.dumps(code))
    monkeypatch.setenv("PYTHONPYCACHEPREFIX", str(prefix))
    result = project.runpytest_subprocess(*to_two(cache_dir, "--spike-json=up.json"))
    result.assert_outcomes(passed=1)  # the host's own run read the kept module
    [target] = upgrades(project)["targets"]
    # and so did the boxed child: rewritten from the source, the test failed on 2.0 (and,
    # passing when run again, was called flaky)
    assert target["compared"] == 1 and target["broken"] == 0 and target["passes"] is True
    assert [f["code"] for f in target["findings"] if f["code"].startswith("upgrade.")] == []
