"""How the upgrade spike's child pytest starts: what it spares, and what it must not touch."""

from __future__ import annotations

import pytest
from test_upgrade import cache_dir, local_index, old_site, project, upgrades  # noqa: F401  (fixtures)

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
