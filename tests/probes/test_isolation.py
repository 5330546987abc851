"""Candidates in environments of their own, from a local folder index (no network)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from backends import BACKENDS
from pkgfactory import FAILING_BUILD, FakeProject, build_sdist, build_wheel

PROJECTS = [
    FakeProject("isodep", "1.0"),
    FakeProject("isodep", "2.0"),
    FakeProject(
        "isopkg",
        "1.0",
        requires=["isodep>=2"],
        files={"isopkg/__init__.py": "import isodep\ndef double(x):\n    return 2 * x\n"},
        readme="```python\nimport isopkg\nassert isopkg.double(2) == 4\n```\n",
    ),
    FakeProject("isopkg", "0.9", files={"isopkg/__init__.py": "def double(x):\n    return x + x\n"}),
    FakeProject("oldiso", "1.0", requires=["isodep<2"]),
    # on the index, but its dependency is not: the resolver fails (a name the index does not
    # know at all is a usage error before the run, see test_honest_paths.py)
    FakeProject("nothere-pkg", "1.0", requires=["nothere-dep>=1"]),
]

USER_TESTS = """
import sys
from pytest_spike import spike

pytestmark = spike.candidate("isopkg")

@spike.hello_world
def test_double(spike_note, spike_metric):
    import isopkg
    spike_note("prefix " + sys.prefix)
    spike_metric("doubled", isopkg.double(21))
    assert isopkg.double(2) == 4

def test_wrong():
    import isopkg
    assert isopkg.double(2) == 5
"""


@pytest.fixture(scope="module")
def local_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("local-index")
    for project in PROJECTS:
        build_wheel(project, folder)
    build_sdist(FAILING_BUILD, folder)  # sdist only, and its build fails
    return folder


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("spike-cache")


@pytest.fixture
def offline_index(local_index: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(local_index))
    monkeypatch.delenv("PIP_INDEX_URL", raising=False)
    monkeypatch.delenv("PIP_EXTRA_INDEX_URL", raising=False)
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    return local_index


def run(pytester: pytest.Pytester, cache_dir: Path, *args: str) -> tuple[pytest.RunResult, dict]:
    result = pytester.runpytest(
        "--spike",
        "--spike-probes",
        "install,import,readme",
        f"--spike-cache-dir={cache_dir}",
        "--spike-json=r.json",
        *args,
    )
    data = {c["name"]: c for c in json.loads((pytester.path / "r.json").read_text())["candidates"]}
    return result, data


def test_candidate_gets_its_own_environment(
    pytester: pytest.Pytester, cache_dir: Path, offline_index: Path
) -> None:
    pytester.makepyfile(test_iso=USER_TESTS)
    result, data = run(pytester, cache_dir, "--spike-keep-envs")
    result.stdout.fnmatch_lines([f"spike environment: isopkg: {cache_dir}/envs/*"])
    iso = data["isopkg"]
    install = next(p for p in iso["probes"] if p["kind"] == "install")["details"]
    assert install["isolated"] is True and install["version"] == "1.0"
    assert install["backend"] in ("uv", "venv")
    assert str(cache_dir) in install["env"]
    imports = next(p for p in iso["probes"] if p["kind"] == "import")
    assert imports["outcome"] == "passed" and imports["details"]["python"].startswith(str(cache_dir))
    readme = next(p for p in iso["probes"] if p["kind"] == "readme")
    assert readme["details"]["counts"]["ok"] == 1
    # The user's tests ran in the candidate's environment, through a child pytest.
    hello = next(p for p in iso["probes"] if p["nodeid"].endswith("test_double"))
    assert hello["outcome"] == "passed"
    assert any(n.startswith("prefix " + str(cache_dir)) for n in iso["notes"]), iso["notes"]
    assert iso["metrics"]["doubled"]["value"] == 42
    wrong = next(f for f in iso["findings"] if f["code"] == "custom.failed")
    assert "assert 4 == 5" in wrong["message"]
    result.stdout.fnmatch_lines(["*test_wrong failed: AssertionError*(in isopkg's environment:*"])
    result.assert_outcomes(passed=4, failed=1)


def test_environment_is_reused_and_fresh_rebuilds(
    pytester: pytest.Pytester, cache_dir: Path, offline_index: Path
) -> None:
    run(pytester, cache_dir, "--spike-candidate", "isopkg")
    # The probes re-run (their evidence would be reused otherwise), the environment is kept.
    _, data = run(pytester, cache_dir, "--spike-candidate", "isopkg", "--spike-fresh-probes")
    install = next(p for p in data["isopkg"]["probes"] if p["kind"] == "install")
    assert install["details"]["reused"] is True and install["cached"] is False
    _, data = run(pytester, cache_dir, "--spike-candidate", "isopkg", "--spike-fresh")
    install = next(p for p in data["isopkg"]["probes"] if p["kind"] == "install")["details"]
    assert install["reused"] is False


@pytest.mark.parametrize("backend", BACKENDS)
def test_spike_backend_is_honoured_by_build_and_fit(
    pytester: pytest.Pytester, cache_dir: Path, offline_index: Path, backend: str
) -> None:
    args = ("--spike-candidate", "isopkg", "--spike-probes", "install", "--spike-backend", backend)
    _, data = run(pytester, cache_dir, *args)
    install = next(p for p in data["isopkg"]["probes"] if p["kind"] == "install")["details"]
    tool = "uv" if backend == "uv" else "pip"
    assert (install["backend"], install["fit"]["resolver"]) == (backend, tool)
    # pip check's question, answered by the host from the environment's files
    assert (install["pip_check"], install["pip_check_by"]) == ("ok", "pytest-spike")


def test_versions_pick_the_newest_accepted(
    pytester: pytest.Pytester, cache_dir: Path, offline_index: Path
) -> None:
    pytester.makepyfile(
        "from pytest_spike import spike\n\n"
        "@spike.candidate('isopkg', versions='<1')\ndef test_it():\n    import isopkg\n"
    )
    _, data = run(pytester, cache_dir)
    assert data["isopkg"]["version"] == "0.9"


def test_uninstallable_candidate_is_blocked_with_resolver_text(
    pytester: pytest.Pytester, cache_dir: Path, offline_index: Path
) -> None:
    pytester.makepyfile(
        "from pytest_spike import spike\n\n"
        "@spike.candidate('nothere-pkg')\ndef test_it():\n    import nothere_pkg\n"
    )
    result, data = run(pytester, cache_dir, "-rs")
    failed = next(f for f in data["nothere-pkg"]["findings"] if f["code"] == "install.failed")
    assert failed["severity"] == "critical" and "nothere" in failed["message"]
    assert data["nothere-pkg"]["level"] == "blocked"
    result.stdout.fnmatch_lines(
        ["*SKIPPED*nothere-pkg could not be installed: see spike::nothere-pkg::install*"]
    )
    result.stdout.no_fnmatch_line("*Traceback*")


def test_fit_with_project_requirements(
    pytester: pytest.Pytester, cache_dir: Path, offline_index: Path
) -> None:
    (pytester.path / "requirements.txt").write_text("isodep==1.0\n")
    pytester.makeini("[pytest]\nspike_requirements = requirements.txt\n")
    _, data = run(pytester, cache_dir, "--spike-candidate", "isopkg", "--spike-probes", "install")
    changes = next(f for f in data["isopkg"]["findings"] if f["code"] == "install.changes")
    assert changes["severity"] == "medium" and "isodep 1.0 -> 2.0" in changes["message"]


def test_never_isolation_keeps_the_running_environment(
    pytester: pytest.Pytester, tmp_path: Path, offline_index: Path
) -> None:
    fresh = tmp_path / "cache"  # the module's cache has the other tests' environments in it
    result, data = run(pytester, fresh, "--spike-candidate", "isopkg", "--spike-isolation", "never")
    assert "install.missing" in {f["code"] for f in data["isopkg"]["findings"]}
    install = next(p for p in data["isopkg"]["probes"] if p["kind"] == "install")["details"]
    assert install["isolated"] is False and install["python"] == sys.executable
    assert not (fresh / "envs").exists()  # no environment was built


def test_candidate_whose_build_fails_is_blocked_with_the_builds_error(
    pytester: pytest.Pytester, cache_dir: Path, offline_index: Path
) -> None:
    result, data = run(pytester, cache_dir, "--spike-candidate", "failbuild")
    failed = next(f for f in data["failbuild"]["findings"] if f["code"] == "install.failed")
    assert failed["message"].endswith("RuntimeError: failbuild does not build here")
    assert data["failbuild"]["level"] == "blocked"
    result.stdout.no_fnmatch_line("*Traceback*")


def test_candidate_needing_an_older_major_of_a_pinned_package(
    pytester: pytest.Pytester, cache_dir: Path, offline_index: Path
) -> None:
    (pytester.path / "requirements.txt").write_text("isodep==2.0\n")
    pytester.makeini("[pytest]\nspike_requirements = requirements.txt\n")
    _, data = run(pytester, cache_dir, "--spike-candidate", "oldiso", "--spike-probes", "install")
    fit = [f for f in data["oldiso"]["findings"] if f["code"] in ("install.conflict", "install.changes")]
    assert fit and "isodep" in fit[0]["message"], data["oldiso"]["findings"]
    assert "2.0 -> 1.0" in fit[0]["message"] or fit[0]["code"] == "install.conflict"
