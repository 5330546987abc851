"""Upgrade spikes end to end: a real local index, real environments, real child pytests."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from backends import use_local_index
from indexserver import IndexServer
from pkgfactory import FakeProject, build_wheel, pip_install_target

from pytest_spike._core import sandbox

OLD = "def old_sum(xs):\n    return sum(xs)\n\ndef helper():\n    return 1\n"
NEW = (
    "import warnings\n\n"
    "def helper():\n"
    "    warnings.warn('oldlib.helper is deprecated; use oldlib.tool', DeprecationWarning, stacklevel=2)\n"
    "    return 1\n"
)
PROJECTS = [
    FakeProject("oldlib", "1.0", files={"oldlib/__init__.py": OLD}),
    FakeProject("oldlib", "1.5", files={"oldlib/__init__.py": OLD}),
    FakeProject("oldlib", "2.0", files={"oldlib/__init__.py": NEW}),
    FakeProject("usesx", "1.0", requires=["oldlib<2"]),
    FakeProject("usesx", "2.0", requires=["oldlib>=2"]),
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

FLAKY_TEST = """
from pathlib import Path

def test_flaky():
    counter = Path(__file__).with_name("runs.txt")
    runs = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(runs))
    assert runs != 2, "failed once, by chance"
"""


@pytest.fixture(scope="module")
def local_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("upgrade-index")
    for project in PROJECTS:
        build_wheel(project, folder)
    return folder


@pytest.fixture(scope="module")
def old_site(local_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The running environment's oldlib 1.0, as installed by pip."""
    site = tmp_path_factory.mktemp("old-site")
    pip_install_target([local_index / "oldlib-1.0-py3-none-any.whl"], site)
    return site


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("spike-cache")


@pytest.fixture
def project(
    pytester: pytest.Pytester, local_index: Path, old_site: Path, monkeypatch: pytest.MonkeyPatch
) -> pytest.Pytester:
    use_local_index(monkeypatch, local_index, old_site)
    monkeypatch.setenv("COLUMNS", "120")
    pytester.makefile(".txt", requirements="oldlib==1.0\n")
    pytester.makeini("[pytest]\nspike_requirements = requirements.txt\n")
    pytester.makepyfile(test_app=PROJECT_TESTS)
    return pytester


def to_two(cache: Path, *more: str) -> list[str]:
    """The command line of an upgrade spike of oldlib to 2.0 with the spike cache ``cache``."""
    return ["--spike-upgrade", "oldlib", "--spike-upgrade-versions=2.0", f"--spike-cache-dir={cache}", *more]


def upgrades(pytester: pytest.Pytester) -> dict:
    data = json.loads((pytester.path / "up.json").read_text())
    assert data["schema"] == "pytest-spike/1"
    [upgrade] = data["upgrades"]
    return upgrade


def test_breaks_and_deprecations_are_named_and_the_1x_target_passes(
    project: pytest.Pytester, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spans = project.path / "timeline.jsonl"
    monkeypatch.setenv("PYTEST_SPIKE_TIMELINE", str(spans))
    result = project.runpytest(
        "--spike-upgrade",
        "oldlib",
        "--spike-upgrade-versions",
        "1.5, 2.0",
        f"--spike-cache-dir={cache_dir}",
        "--spike-json=up.json",
        "--spike-md=up.md",
    )
    # the project's own run is unchanged: one test fails before the upgrade too
    result.assert_outcomes(passed=2, failed=1)
    # the steps after the tests are whole lines, with no row of pytest's started again after them
    result.stdout.fnmatch_lines(["spike: upgrade: running 3 tests on oldlib==2.0"])
    assert "test_app.py \n" not in result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*= spike upgrade =*",
            "oldlib 1.0 -> 1.5  LOW  0 of 2 tests break",
            "oldlib 1.0 -> 2.0  HIGH  1 of 2 tests break",
            "  high upgrade.breaks: 1 of 2 tests break on oldlib 2.0: test_app.py::test_sum (AttributeError:*",
            "  medium upgrade.deprecations: oldlib 2.0 warns of 1 deprecation(s) the tests did not see*",
            "oldlib: the suite passes on 1.5 (newest of the versions tried)",
        ]
    )
    upgrade = upgrades(project)
    assert upgrade["package"] == "oldlib" and upgrade["current"] == "1.0"
    assert upgrade["newest_passing"] == "1.5"
    minor, major = upgrade["targets"]
    assert minor["passes"] is True and minor["level"] == "low"
    assert [f["code"] for f in minor["findings"]] == ["upgrade.failing_before"]
    assert major["passes"] is False and major["broken"] == 1 and major["compared"] == 2
    codes = {f["code"]: f for f in major["findings"]}
    assert set(codes["upgrade.breaks"]["evidence"]) == {"test_app.py::test_sum"}
    # the warning was issued by oldlib's module, though it points at the test's line
    assert "oldlib.helper is deprecated" in codes["upgrade.deprecations"]["message"]
    # failing on both sides is not charged
    assert "test_app.py::test_always_fails" in codes["upgrade.failing_before"]["evidence"]
    assert major["moved"] == ["oldlib 1.0 -> 2.0 (major upgrade)"]
    markdown = (project.path / "up.md").read_text()
    assert "oldlib 1.0 -> 2.0  HIGH  1 of 2 tests break" in markdown
    # Where the candidate's code ran is said here too, as in every report.
    said = sandbox.status().describe()
    result.stdout.fnmatch_lines([f"candidate code: {said}"])
    assert f"candidate code: {said}" in markdown
    assert json.loads((project.path / "up.json").read_text())["settings"]["sandbox"] == said
    assert "the suite passes on 1.5" in markdown
    # pytest-spike show reprints the upgrade section of an upgrade-only results file
    shown = subprocess.run(
        [sys.executable, "-m", "pytest_spike", "show", str(project.path / "up.json")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "oldlib 1.0 -> 2.0  HIGH  1 of 2 tests break" in shown and "no candidates" not in shown
    assert "oldlib: the suite passes on 1.5 (newest of the versions tried)" in shown
    # The timeline has the baseline's run, and each target's suite ran after it.
    rows = [json.loads(line) for line in spans.read_text().splitlines()]
    [baseline] = [r for r in rows if r["what"] == "upgrade-baseline"]
    assert baseline["tests"] == "3" and baseline["start"] < baseline["end"]
    suites = [r for r in rows if r["what"] == "step" and r.get("stage") == "tests"]
    assert len(suites) >= 2 and all(r["start"] >= baseline["end"] for r in suites)


def test_import_error_at_collection_breaks_the_tests_of_that_file(
    project: pytest.Pytester, cache_dir: Path
) -> None:
    project.makepyfile(
        test_import="from oldlib import old_sum\n\ndef test_uses_it():\n    assert old_sum([1]) == 1\n"
    )
    result = project.runpytest(
        "test_import.py",
        "--spike-upgrade",
        "oldlib>=2",
        f"--spike-cache-dir={cache_dir}",
        "--spike-json=up.json",
    )
    result.stdout.fnmatch_lines(["oldlib 1.0 -> 2.0  HIGH  1 of 1 tests break"])
    [target] = upgrades(project)["targets"]
    breaks = next(f for f in target["findings"] if f["code"] == "upgrade.breaks")
    assert (
        "collection error: ImportError: cannot import name 'old_sum'"
        in breaks["evidence"]["test_import.py::test_uses_it"]
    )


def test_target_that_cannot_resolve_names_the_clash(project: pytest.Pytester, cache_dir: Path) -> None:
    project.makefile(".txt", requirements="oldlib==1.0\nusesx>=1,<2\n")
    result = project.runpytest(
        "-k",
        "test_helper",
        "--spike-upgrade",
        "oldlib>=2",
        f"--spike-cache-dir={cache_dir}",
        "--spike-json=up.json",
    )
    result.stdout.fnmatch_lines(["oldlib 1.0 -> 2.0  BLOCKED  cannot be installed with the project"])
    [target] = upgrades(project)["targets"]
    [finding] = target["findings"]
    assert finding["code"] == "upgrade.unresolvable" and finding["severity"] == "high"
    assert "usesx" in finding["evidence"]["clashing"], finding
    assert target["passes"] is False
    result.stdout.fnmatch_lines(["oldlib: the suite passes on none of the versions tried"])


def test_a_pin_that_has_to_move_with_the_target_is_named(project: pytest.Pytester, cache_dir: Path) -> None:
    """The project pins usesx 1.0, which needs oldlib<2: moving oldlib to 2.0 moves usesx to
    2.0 too, and the target says so (the pins as they are do not install; the fit check
    relaxes the one it names)."""
    project.makefile(".txt", requirements="oldlib==1.0\nusesx==1.0\n")
    result = project.runpytest(
        "-k", "test_helper", "--spike-upgrade", "oldlib>=2", "--spike-probes=none",
        f"--spike-cache-dir={cache_dir}", "--spike-json=up.json",
    )  # fmt: skip
    result.stdout.fnmatch_lines(
        ["oldlib 1.0 -> 2.0  MEDIUM  0 of 1 tests break", "  also moved: usesx 1.0 -> 2.0 (major upgrade)"]
    )
    [target] = upgrades(project)["targets"]
    assert target["moved"] == ["oldlib 1.0 -> 2.0 (major upgrade)", "usesx 1.0 -> 2.0 (major upgrade)"]


def test_under_xdist_the_baseline_is_what_the_workers_ran(project: pytest.Pytester, cache_dir: Path) -> None:
    result = project.runpytest_subprocess(
        "-n", "2", "-p", "xdist", "--spike-upgrade", "oldlib>=2", "--spike-probes=none",
        f"--spike-cache-dir={cache_dir}", "--spike-json=up.json",
    )  # fmt: skip
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["oldlib 1.0 -> 2.0  HIGH  1 of 2 tests break"])
    [target] = upgrades(project)["targets"]
    assert target["compared"] == 2 and target["broken"] == 1
    assert any(f["code"] == "upgrade.deprecations" for f in target["findings"])


def test_a_flaky_test_is_not_charged(project: pytest.Pytester, cache_dir: Path) -> None:
    project.makepyfile(test_flaky=FLAKY_TEST)
    result = project.runpytest(
        "test_flaky.py",
        # the test counts its runs in a project file, which the box keeps read-only
        "--spike-sandbox=off",
        "--spike-upgrade",
        "oldlib<2",
        f"--spike-cache-dir={cache_dir}",
        "--spike-json=up.json",
    )
    result.stdout.fnmatch_lines(
        ["oldlib 1.0 -> 1.5  LOW  0 of 1 tests break", "*info upgrade.flaky*test_flaky*"]
    )
    [target] = upgrades(project)["targets"]
    assert target["passes"] is True and target["broken"] == 0
    assert (project.path / "runs.txt").read_text() == "4"  # run, after, re-run before, re-run after


def test_ini_upgrades_apply_with_spike_only(project: pytest.Pytester, cache_dir: Path) -> None:
    project.makeini("[pytest]\nspike_requirements = requirements.txt\nspike_upgrades = oldlib<2\n")
    plain = project.runpytest("-k", "test_sum", f"--spike-cache-dir={cache_dir}")
    assert "spike upgrade" not in plain.stdout.str()
    spiked = project.runpytest(
        "-k",
        "test_sum",
        "--spike",
        "--spike-probes=none",
        f"--spike-cache-dir={cache_dir}",
        "--spike-json=up.json",
    )
    spiked.stdout.fnmatch_lines(["oldlib 1.0 -> 1.5  LOW  0 of 1 tests break"])
    data = json.loads((project.path / "up.json").read_text())
    assert data["upgrades"][0]["newest_passing"] == "1.5"
    # a matrix cell (--spike-cell) runs the spike's candidates in their own environment: the
    # project's upgrade spikes are not run there
    cell = project.runpytest(
        "-k",
        "test_sum",
        "--spike",
        "--spike-probes=none",
        "--spike-cell=py3-oldlib-1.0",
        f"--spike-cache-dir={cache_dir}",
        "--spike-json=cell.json",
    )
    assert "spike upgrade" not in cell.stdout.str()
    assert "upgrades" not in json.loads((project.path / "cell.json").read_text())


@contextlib.contextmanager
def served(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *releases: tuple[str, dict[str, Any]]
) -> Iterator[IndexServer]:
    """oldlib's ``releases`` (version, IndexServer.add options) on a real index on 127.0.0.1,
    which the spike and its installers use instead of the find-links folder."""
    with IndexServer(tmp_path / "index") as index:
        for version, options in releases:
            index.add(
                FakeProject("oldlib", version, files={"oldlib/__init__.py": OLD}),
                sdist=False,
                upload_time="2026-09-01",
                license="MIT",
                project_urls={"Source": "https://example.invalid/oldlib"},
                **options,
            )
        monkeypatch.delenv("PIP_NO_INDEX")
        monkeypatch.delenv("PIP_FIND_LINKS")
        monkeypatch.setenv("PIP_INDEX_URL", index.url)
        yield index


def test_the_release_own_evidence_shows_next_to_the_suite(
    project: pytest.Pytester, cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A yanked target version on which the suite passes: the suite's verdict and the
    release's own (signals: yanked) side by side, and the target's level reaches the release's."""
    with served(tmp_path, monkeypatch, ("1.0", {}), ("1.5", {}), ("2.1", {"yanked": "corrupt wheel"})):
        result = project.runpytest(
            "-k",
            "test_sum",
            "--spike-upgrade",
            "oldlib",
            "--spike-upgrade-versions",
            "1.5, 2.1",
            f"--spike-cache-dir={cache_dir}",
            "--spike-json=up.json",
            "--spike-md=up.md",
        )
    result.stdout.fnmatch_lines(
        [
            "oldlib 1.0 -> 1.5  LOW  0 of 1 tests break",
            "  the release on its own: LOW, score 0; probes: import passed, licence passed, signals passed, upstream skipped",
            "oldlib 1.0 -> 2.1  HIGH  0 of 1 tests break",
            "  the release on its own: HIGH, score 30; probes: import passed, licence passed, signals failed, upstream skipped",
            "    +30 high signals.yanked: *corrupt wheel*",
            "oldlib: the suite passes on 2.1 (newest of the versions tried); the release on its own is HIGH, see above",
        ]
    )
    minor, yanked = upgrades(project)["targets"]
    assert minor["release"]["level"] == "low" and minor["level"] == "low"
    assert yanked["passes"] is True and yanked["level"] == "high"
    release = yanked["release"]
    assert release["requirement"] == "oldlib==2.1" and release["level"] == "high"
    assert {p["nodeid"] for p in release["probes"]} == {
        f"upgrade::oldlib==2.1::{kind}" for kind in ("import", "licence", "signals", "upstream")
    }
    # the import probe ran in the upgraded environment, the project's, not one of its own
    probes = {p["kind"]: p for p in release["probes"]}
    assert probes["import"]["details"]["python"] == str(Path(yanked["env"]) / "bin" / "python")
    # no sdist: upstream holds no evidence either way, and says so
    assert release["evidence"]["unknown"] == ["upstream"]
    assert "no sdist" in release["evidence"]["why"]["upstream"]
    assert "+30 high signals.yanked" in (project.path / "up.md").read_text()


def test_a_release_that_changes_its_licence_is_named(
    project: pytest.Pytester, cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The installed oldlib 1.0 is MIT; 2.1 moved to a source-available licence (BUSL-1.1):
    under a policy that allows MIT only, the release is denied and its change named."""
    mit_site = tmp_path / "mit-site"
    built = build_wheel(
        FakeProject("oldlib", "1.0", files={"oldlib/__init__.py": OLD}, license_expression="MIT"),
        tmp_path / "mit",
    )
    pip_install_target([built], mit_site)
    monkeypatch.syspath_prepend(str(mit_site))  # the running environment's oldlib 1.0, MIT
    monkeypatch.setenv("PYTHONPATH", str(mit_site))
    with IndexServer(tmp_path / "index") as index:
        for version, licence in (("1.0", "MIT"), ("2.1", "BUSL-1.1")):
            index.add(
                FakeProject("oldlib", version, files={"oldlib/__init__.py": OLD}, license_expression=licence),
                sdist=False,
                upload_time="2026-09-01",
            )
        monkeypatch.delenv("PIP_NO_INDEX")
        monkeypatch.delenv("PIP_FIND_LINKS")
        monkeypatch.setenv("PIP_INDEX_URL", index.url)
        result = project.runpytest(
            "-k",
            "test_sum",
            "--spike-upgrade",
            "oldlib",
            "--spike-upgrade-versions",
            "2.1",
            "--spike-probes=licence",
            "-o",
            "spike_licenses=allow: MIT",
            f"--spike-cache-dir={cache_dir}",
            "--spike-json=up.json",
        )
    result.stdout.fnmatch_lines(
        [
            "oldlib 1.0 -> 2.1  HIGH  0 of 1 tests break",
            "  the release on its own: HIGH, score 40; probes: licence failed",
            "    +30 high licence.denied: oldlib: oldlib 2.1 is BUSL-1.1 (BUSL-1.1 is not in the allow list)",
            "    +10 medium licence.changed: oldlib changed its licence: MIT in 1.0, BUSL-1.1 in 2.1",
        ]
    )
    [target] = upgrades(project)["targets"]
    [probe] = target["release"]["probes"]
    assert probe["details"]["before"] == {"version": "1.0", "licence": "MIT", "source": "License-Expression"}
    changed = next(f for f in target["release"]["findings"] if f["code"] == "licence.changed")
    assert changed["evidence"]["versions"] == "1.0 -> 2.1"


def test_spike_probes_none_leaves_out_the_release_evidence(project: pytest.Pytester, cache_dir: Path) -> None:
    project.runpytest(
        "-k",
        "test_sum",
        "--spike-upgrade",
        "oldlib<2",
        "--spike-probes=none",
        f"--spike-cache-dir={cache_dir}",
        "--spike-json=up.json",
    ).stdout.no_fnmatch_line("*the release on its own*")
    [target] = upgrades(project)["targets"]
    assert target["release"] is None and target["passes"] is True


def test_a_newer_release_this_python_cannot_install_is_unknown_never_passed(
    project: pytest.Pytester, cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The newest release requires a Python this run lacks: the spike tries the newest it can
    and shows the newer one as not tried, with why; it never counts as passing."""
    with served(tmp_path, monkeypatch, ("1.0", {}), ("1.5", {}), ("3.0", {"requires_python": ">=3.99"})):
        result = project.runpytest(
            "-k", "test_sum", "--spike-upgrade", "oldlib", "--spike-probes=none",
            f"--spike-cache-dir={cache_dir}", "--spike-json=up.json",
        )  # fmt: skip
    python = "{}.{}".format(*sys.version_info[:2])
    result.stdout.fnmatch_lines(
        [
            "oldlib 1.0 -> 1.5  LOW  0 of 1 tests break",
            f"oldlib 1.0 -> 3.0  UNKNOWN  oldlib 3.0 was not tried: requires-python >=3.99 excludes {python};*",
            "oldlib: the suite passes on 1.5 (newest of the versions tried)",
        ]
    )
    tried, skipped = upgrades(project)["targets"]
    assert tried["version"] == "1.5" and tried["passes"] is True
    assert skipped["version"] == "3.0" and skipped["passes"] is None
    assert [(f["code"], f["blame"]) for f in skipped["findings"]] == [("upgrade.skipped", "environment")]


@pytest.fixture(scope="module")
def newer_site(local_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A running environment with oldlib 1.5: 1.0 is a downgrade from it."""
    site = tmp_path_factory.mktemp("newer-site")
    pip_install_target([local_index / "oldlib-1.5-py3-none-any.whl"], site)
    return site


def test_targets_older_than_the_installed_version_are_not_run_unless_asked_for(
    pytester: pytest.Pytester,
    local_index: Path,
    newer_site: Path,
    cache_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_local_index(monkeypatch, local_index, newer_site)
    monkeypatch.setenv("COLUMNS", "120")
    pytester.makepyfile(test_app="import oldlib\n\ndef test_sum():\n    assert oldlib.old_sum([1, 2]) == 3\n")
    common = ("--spike-upgrade", "oldlib", f"--spike-cache-dir={cache_dir}", "--spike-json=up.json")
    # all three releases picked; 1.0 is older than the installed 1.5: not run, and said
    result = pytester.runpytest(*common, "--spike-upgrade-versions", "latest:3")
    assert [t["version"] for t in upgrades(pytester)["targets"]] == ["2.0"]
    result.stdout.fnmatch_lines(
        ["spike upgrade: oldlib: 1 target(s) older than the installed 1.5 not run (1.0); "
         "--spike-upgrade-downgrades runs them"]
    )  # fmt: skip
    # only downgrades picked: nothing to move to, and the error says how to ask for them
    only_older = pytester.runpytest(*common, "--spike-upgrade-versions", "<1.5")
    assert only_older.ret == pytest.ExitCode.USAGE_ERROR
    only_older.stdout.fnmatch_lines(
        ["*no release of oldlib among <1.5 to move to from 1.5*--spike-upgrade-downgrades*"]
    )
    # asked for: run
    pytester.runpytest(*common, "--spike-upgrade-versions", "<1.5", "--spike-upgrade-downgrades")
    assert [t["version"] for t in upgrades(pytester)["targets"]] == ["1.0"]
