"""The one inspection of an installed distribution: facts from the interpreter, closure here."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_spike._core.runner import run
from pytest_spike.envs import inspection
from pytest_spike.model import SpikeError


def inspect(requirement: str, site: Path) -> dict[str, Any]:
    result = run(
        inspection.argv(sys.executable, requirement), timeout=60, env=dict(os.environ, PYTHONPATH=str(site))
    )
    return inspection.read(result, "inspecting")


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


def test_an_answer_that_is_not_an_inspection() -> None:
    result = run([sys.executable, "-c", "print('[1, 2]')"], timeout=30)
    with pytest.raises(SpikeError, match=r"^inspecting: the inspection answered '\[1, 2\]'$"):
        inspection.read(result, "inspecting")
