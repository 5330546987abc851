"""An upgraded release that rewrites the upgrade child's outcomes: the host saw what ran.

oldlib 2.0 drops ``old_sum`` (a test breaks) and, at import, registers an ``atexit`` hook
that rewrites the child's outcomes file to say every test passed. The child announced each
test's outcome on a stream the host reads as it runs, closed before the exit hooks: the
break is still named and the target carries ``spike.tampered``. oldlib 1.5, honest, gets no
such finding. A real local index, real environments, the real box; no mocks.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from backends import use_local_index
from pkgfactory import FakeProject, build_wheel, pip_install_target

from pytest_spike.upgrade._child import OUT_ENV

OLD = "def old_sum(xs):\n    return sum(xs)\n\ndef helper():\n    return 1\n"
# Registered at import: after the session, every outcome in the child's file says passed,
# and a witness line is printed for good measure (it reaches stderr, not the host's stream).
FORGER = f"""
import atexit, json, os

def _rewrite():
    path = os.environ.get({OUT_ENV!r})
    if not path or not os.path.exists(path):
        return
    with open(path) as handle:
        data = json.load(handle)
    data["outcomes"] = {{nodeid: "passed" for nodeid in data["outcomes"]}}
    data["errors"] = {{}}
    with open(path, "w") as handle:
        json.dump(data, handle)
    print("@@pytest-spike-witness@@" + json.dumps({{"test": "test_app.py::test_sum", "outcome": "passed"}}))

atexit.register(_rewrite)

def helper():
    return 1
"""
# Registered at import: after the session, the child's file is gone (the target would be
# "unknown" and its breaks unnamed).
REMOVER = f"""
import atexit, os

atexit.register(lambda: os.remove(os.environ[{OUT_ENV!r}]))

def helper():
    return 1
"""
PROJECTS = [
    FakeProject("oldlib", "1.0", files={"oldlib/__init__.py": OLD}),
    FakeProject("oldlib", "1.5", files={"oldlib/__init__.py": OLD}),
    FakeProject("oldlib", "2.0", files={"oldlib/__init__.py": FORGER}),
    FakeProject("oldlib", "2.1", files={"oldlib/__init__.py": REMOVER}),
]
PROJECT_TESTS = """
import oldlib

def test_sum():
    assert oldlib.old_sum([1, 2]) == 3

def test_helper():
    assert oldlib.helper() == 1

def test_always_fails():
    assert False, "broken before and after"
"""


@pytest.fixture(scope="module")
def local_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("forged-upgrade-index")
    for project in PROJECTS:
        build_wheel(project, folder)
    return folder


@pytest.fixture
def project(
    pytester: pytest.Pytester,
    local_index: Path,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> pytest.Pytester:
    site = tmp_path_factory.mktemp("forged-old-site")
    pip_install_target([local_index / "oldlib-1.0-py3-none-any.whl"], site)
    use_local_index(monkeypatch, local_index, site)
    monkeypatch.setenv("COLUMNS", "120")
    pytester.makefile(".txt", requirements="oldlib==1.0\n")
    pytester.makeini("[pytest]\nspike_requirements = requirements.txt\n")
    pytester.makepyfile(test_app=PROJECT_TESTS)
    return pytester


def test_a_rewritten_outcomes_file_loses_to_what_ran_and_an_honest_release_is_not_accused(
    project: pytest.Pytester, tmp_path: Path
) -> None:
    result = project.runpytest(
        "--spike-upgrade", "oldlib", "--spike-upgrade-versions", "1.5, 2.0", "--spike-probes=none",
        f"--spike-cache-dir={tmp_path / 'cache'}", "--spike-json=up.json",
    )  # fmt: skip
    result.stdout.fnmatch_lines(
        [
            "oldlib 1.0 -> 1.5  LOW  0 of 2 tests break",
            "oldlib 1.0 -> 2.0  BLOCKED  1 of 2 tests break",
            "  critical spike.tampered: the upgrade child's outcomes contradict what the child announced*",
            "  high upgrade.breaks: 1 of 2 tests break on oldlib 2.0: test_app.py::test_sum (AttributeError:*",
            "oldlib: the suite passes on 1.5 (newest of the versions tried)",
        ]
    )
    [upgrade] = json.loads((project.path / "up.json").read_text())["upgrades"]
    honest, forged = upgrade["targets"]
    # The control: the honest release's outcomes agree with what its child announced.
    assert [f["code"] for f in honest["findings"]] == ["upgrade.failing_before"]
    assert honest["passes"] is True and honest["level"] == "low"
    # What ran wins: test_sum broke, whatever the file says now; the forgery is the release's.
    assert (forged["passes"], forged["level"], forged["broken"], forged["compared"]) == (
        False,
        "blocked",
        1,
        2,
    )
    codes = {f["code"]: f for f in forged["findings"]}
    assert set(codes["upgrade.breaks"]["evidence"]) == {"test_app.py::test_sum"}
    assert "has no attribute 'old_sum'" in codes["upgrade.breaks"]["evidence"]["test_app.py::test_sum"]
    tampered = codes["spike.tampered"]
    assert (tampered["severity"], tampered["blame"]) == ("critical", "candidate")
    assert tampered["message"] == (
        "the upgrade child's outcomes contradict what the child announced for 2 of 3 test(s); first "
        "test_app.py::test_sum: the results say passed, the test failed "
        "(AttributeError: module 'oldlib' has no attribute 'old_sum')"
    )
    assert tampered["evidence"] == {
        "nodeid": "test_app.py::test_sum",
        "why": "the results say passed, the test failed",
        "tests": "2",
        "collected": "3",
    }
    # test_always_fails was rewritten to passed too: it still fails on both sides, not charged.
    assert "test_app.py::test_always_fails" in codes["upgrade.failing_before"]["evidence"]


def test_an_outcomes_file_removed_after_the_session_loses_to_what_ran(
    project: pytest.Pytester, tmp_path: Path
) -> None:
    result = project.runpytest(
        "-k", "not always", "--spike-upgrade", "oldlib==2.1", "--spike-probes=none",
        f"--spike-cache-dir={tmp_path / 'cache'}", "--spike-json=up.json",
    )  # fmt: skip
    result.stdout.fnmatch_lines(
        [
            "oldlib 1.0 -> 2.1  BLOCKED  1 of 2 tests break",
            "  critical spike.tampered: the upgrade child's outcomes (the file is gone) contradict*",
            "  high upgrade.breaks: 1 of 2 tests break on oldlib 2.1: test_app.py::test_sum (AttributeError:*",
        ]
    )
    [upgrade] = json.loads((project.path / "up.json").read_text())["upgrades"]
    [target] = upgrade["targets"]
    tampered = next(f for f in target["findings"] if f["code"] == "spike.tampered")
    assert tampered["evidence"]["why"] == "the test failed, the results leave it out"
    assert (tampered["evidence"]["tests"], tampered["evidence"]["collected"]) == ("2", "2")
    assert target["passes"] is False and upgrade["newest_passing"] is None
