"""Upgrade spikes whose target cannot be checked: what the user sees when the target's
build fails, the project does not install in the new environment, or the child pytest
dies without writing its outcomes. Real local index, real environments, real children."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from backends import use_local_index
from pkgfactory import (
    FakeProject,
    build_sdist,
    build_wheel,
    editable_dist_info,
    editable_project_files,
    failing_build,
    pip_install_target,
)

OLD = "def total(xs):\n    return sum(xs)\n"
AFTER_THE_CRASH = """

def test_after_one():
    assert oldlib.total([1]) == 1

def test_after_two():
    assert oldlib.total([]) == 0
"""

CRASH_AT_IMPORT_ON_2 = """
import os, signal
from importlib import metadata

import oldlib

if metadata.version("oldlib") == "2.0":  # a C extension that crashes when it is imported
    os.kill(os.getpid(), signal.SIGSEGV)

def test_one():
    assert oldlib.total([1, 2]) == 3

def test_two():
    assert oldlib.total([]) == 0
"""

CRASH_ON_2 = """
import os, signal
from importlib import metadata

import oldlib

def test_total():
    if metadata.version("oldlib") == "2.0":  # as a broken C extension would
        os.kill(os.getpid(), signal.SIGSEGV)
    assert oldlib.total([1, 2]) == 3
"""


@pytest.fixture(scope="module")
def failing_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """oldlib 1.0 and 2.0 as wheels; 3.0 only as an sdist whose build fails; a package
    that a project's build needs."""
    folder = tmp_path_factory.mktemp("failing-index")
    build_wheel(FakeProject("tinybuild", "1.0"), folder)
    build_wheel(FakeProject("oldlib", "1.0", files={"oldlib/__init__.py": OLD}), folder)
    build_wheel(FakeProject("oldlib", "2.0", files={"oldlib/__init__.py": OLD}), folder)
    build_sdist(failing_build("oldlib", "3.0", files={"oldlib/__init__.py": OLD}), folder)
    return folder


@pytest.fixture(scope="module")
def site(failing_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The running environment's oldlib 1.0, as installed by pip."""
    folder = tmp_path_factory.mktemp("failing-site")
    pip_install_target([failing_index / "oldlib-1.0-py3-none-any.whl"], folder)
    return folder


@pytest.fixture
def project(
    pytester: pytest.Pytester, failing_index: Path, site: Path, monkeypatch: pytest.MonkeyPatch
) -> pytest.Pytester:
    use_local_index(monkeypatch, failing_index, site)
    # uv's own default index, for any uv command not told the index pip is configured with:
    # an empty folder, so such a command fails here instead of asking the network
    empty = pytester.mkdir("uv-default-index")
    monkeypatch.setenv("UV_DEFAULT_INDEX", empty.as_uri())
    monkeypatch.setenv("COLUMNS", "200")
    pytester.makefile(".txt", requirements="oldlib==1.0\n")
    pytester.makeini("[pytest]\nspike_requirements = requirements.txt\n")
    pytester.makepyfile(test_app="import oldlib\n\ndef test_total():\n    assert oldlib.total([1, 2]) == 3\n")
    return pytester


def spike(project: pytest.Pytester, tmp_path: Path, *args: str) -> tuple[pytest.RunResult, dict]:
    result = project.runpytest(*args, f"--spike-cache-dir={tmp_path / 'cache'}", "--spike-json=up.json")
    [upgrade] = json.loads((project.path / "up.json").read_text())["upgrades"]
    return result, upgrade


def test_a_target_whose_only_sdist_fails_to_build(project: pytest.Pytester, tmp_path: Path) -> None:
    result, upgrade = spike(project, tmp_path, "--spike-upgrade", "oldlib>=3")
    result.assert_outcomes(passed=1)  # the project's own run is untouched
    result.stdout.fnmatch_lines(
        [
            "oldlib 1.0 -> 3.0  HIGH  unknown: oldlib==3.0 could not be installed with the project (uv): "
            "RuntimeError: oldlib does not build here",
            "  high upgrade.install_failed: oldlib==3.0 could not be installed*",
            "oldlib: no version tried is known to pass (some could not be checked)",
        ]
    )
    [target] = upgrade["targets"]
    [finding] = target["findings"]
    assert finding["code"] == "upgrade.install_failed" and finding["severity"] == "high"
    assert finding["blame"] == "candidate"
    assert "RuntimeError: oldlib does not build here" in finding["evidence"]["resolver"]
    assert (target["level"], target["passes"], target["compared"]) == ("high", None, 0)


INSTALLED_TEST = """
from importlib import metadata

def test_the_project_is_installed():
    assert metadata.version("myproj") == "0.1"
"""


def install_editable(project: pytest.Pytester, files: dict[str, str], tmp_path: Path) -> Path:
    """Make ``project`` a folder installed editable in the running environment."""
    for path, text in files.items():
        project.path.joinpath(path).write_text(text)
    installed = tmp_path / "installed"
    editable_dist_info("myproj", "0.1", project.path, installed)
    return installed


def test_the_project_is_installed_editable_in_the_new_environment(
    project: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(
        str(install_editable(project, editable_project_files("myproj", "0.1"), tmp_path))
    )
    project.makepyfile(test_installed=INSTALLED_TEST)
    result, upgrade = spike(project, tmp_path, "--spike-upgrade", "oldlib<3")
    result.stdout.fnmatch_lines(["oldlib 1.0 -> 2.0  LOW  0 of 2 tests break"])
    assert upgrade["targets"][0]["passes"] is True


def test_the_project_s_build_requirements_come_from_the_configured_index(
    project: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = editable_project_files("myproj", "0.1", build_requires=["tinybuild"])
    monkeypatch.syspath_prepend(str(install_editable(project, files, tmp_path)))
    project.makepyfile(test_installed=INSTALLED_TEST)
    result, upgrade = spike(project, tmp_path, "--spike-upgrade", "oldlib<3")
    result.stdout.fnmatch_lines(["oldlib 1.0 -> 2.0  LOW  0 of 2 tests break"])


def test_the_project_that_does_not_install_in_the_new_environment(
    project: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The project is installed editable from its folder, and its build now fails.
    monkeypatch.syspath_prepend(
        str(install_editable(project, failing_build("myproj", "0.1").sdist_files, tmp_path))
    )
    result, upgrade = spike(project, tmp_path, "--spike-upgrade", "oldlib<3")
    result.stdout.fnmatch_lines(
        [
            "oldlib 1.0 -> 2.0  UNKNOWN  the project could not be installed in the new environment: "
            "RuntimeError: myproj does not build here",
            "  info upgrade.unchecked: the project could not be installed in the new environment: *",
            "oldlib: no version tried is known to pass (some could not be checked)",
        ]
    )
    [target] = upgrade["targets"]
    [finding] = target["findings"]
    assert (finding["code"], finding["severity"], finding["blame"]) == ("upgrade.unchecked", "info", "spike")
    assert finding["message"].endswith("RuntimeError: myproj does not build here")
    assert (target["level"], target["passes"]) == ("low", None)


def test_a_test_that_crashes_the_interpreter_after_the_upgrade_breaks(
    project: pytest.Pytester, tmp_path: Path
) -> None:
    """A crash of the code under test (SIGSEGV, as a broken C extension would) is the strongest
    break there is: the test that was running is named with the crash, the tests after it still
    run in a new child, and the re-run confirms it."""
    project.makepyfile(test_app=CRASH_ON_2 + AFTER_THE_CRASH)
    result, upgrade = spike(project, tmp_path, "--spike-upgrade", "oldlib<3")
    result.assert_outcomes(passed=3)  # on 1.0, in this run, every test passes
    result.stdout.fnmatch_lines(
        [
            "oldlib 1.0 -> 2.0  HIGH  1 of 3 tests break",
            "  high upgrade.breaks: 1 of 3 tests break on oldlib 2.0: test_app.py::test_total (the interpreter*",
        ]
    )
    [target] = upgrade["targets"]
    assert (target["level"], target["passes"], target["compared"], target["broken"]) == ("high", False, 3, 1)
    breaks = next(f for f in target["findings"] if f["code"] == "upgrade.breaks")
    assert breaks["evidence"] == {
        "test_app.py::test_total": "the interpreter crashed (killed by SIGSEGV): Fatal Python error: "
        "Segmentation fault in test_app.py, line 8 in test_total"
    }


def test_an_import_that_crashes_the_interpreter_at_collection_breaks_every_test(
    project: pytest.Pytester, tmp_path: Path
) -> None:
    project.makepyfile(test_app=CRASH_AT_IMPORT_ON_2)
    result, upgrade = spike(project, tmp_path, "--spike-upgrade", "oldlib<3")
    result.stdout.fnmatch_lines(["oldlib 1.0 -> 2.0  HIGH  2 of 2 tests break"])
    breaks = next(f for f in upgrade["targets"][0]["findings"] if f["code"] == "upgrade.breaks")
    assert all(
        "crashed (killed by SIGSEGV)" in e and "(while collecting)" in e for e in breaks["evidence"].values()
    )
