"""An upgrade spike as one CI job per target version, end to end on the local index.

``pytest-spike matrix --upgrade`` lists the jobs, each job is a real ``pytest`` process
running its one target (as a CI job would), ``pytest-spike merge`` folds their results
files into one verdict; the nox helper lists the same targets for a session of the
project's own, and its merge session folds what those sessions wrote.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_upgrade import cache_dir, local_index, old_site, project  # noqa: F401  (fixtures)

from pytest_spike.matrix.plan import plugin_pythonpath


def spike_cli(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.run(sys.executable, "-m", "pytest_spike", *args, timeout=120)


@pytest.fixture
def hermetic(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:  # noqa: F811
    monkeypatch.setenv("XDG_CACHE_HOME", str(project.path / "xdg-cache"))
    return project


def test_matrix_lists_one_job_per_target_and_merge_names_the_newest_passing(
    hermetic: pytest.Pytester,
    cache_dir: Path,  # noqa: F811
) -> None:
    listed = spike_cli(
        hermetic, "matrix", "--upgrade", "oldlib", "--upgrade-versions", "1.5, 2.0", "--github"
    )
    assert listed.ret == 0, listed.stderr.str()
    include = json.loads(listed.stdout.str())["include"]
    assert include == [
        {
            "id": f"upgrade-oldlib-{v}",
            "upgrade": "oldlib",
            "package": "oldlib",
            "current": "1.0",
            "target": v,
            "pytest_args": ["--spike-upgrade", "oldlib", "--spike-upgrade-versions", v],
        }
        for v in ("1.5", "2.0")
    ]
    for job in include:  # one CI job each: its own pytest process, its own results file
        ran = hermetic.runpytest_subprocess(
            *job["pytest_args"],
            f"--spike-cache-dir={cache_dir}",
            f"--spike-json=results/{job['id']}/up.json",
            "test_app.py",
        )
        ran.assert_outcomes(passed=2, failed=1)
        ran.stdout.fnmatch_lines([f"oldlib 1.0 -> {job['target']}  *"])
    merged = spike_cli(hermetic, "merge", "results/upgrade-oldlib-2.0", "results/upgrade-oldlib-1.5/up.json",
                       "--json", "merged.json", "--md", "merged.md")  # fmt: skip
    assert merged.ret == 0, merged.stdout.str() + merged.stderr.str()
    merged.stdout.fnmatch_lines(
        [
            "spike upgrade",
            "oldlib 1.0 -> 1.5  LOW  0 of 2 tests break",
            "oldlib 1.0 -> 2.0  HIGH  1 of 2 tests break",
            "*high upgrade.breaks*test_app.py::test_sum*",
            "*",
            "oldlib: the suite passes on 1.5 (newest of the versions tried)",
        ]
    )
    assert "no candidates" not in merged.stdout.str()
    data = json.loads((hermetic.path / "merged.json").read_text())
    (upgrade,) = data["upgrades"]
    assert [t["version"] for t in upgrade["targets"]] == ["1.5", "2.0"]
    assert upgrade["newest_passing"] == "1.5" and data["candidates"] == []
    assert "the suite passes on 1.5" in (hermetic.path / "merged.md").read_text()
    failing = spike_cli(hermetic, "merge", "results/upgrade-oldlib-2.0", "results/upgrade-oldlib-1.5",
                        "--fail-on", "high")  # fmt: skip
    assert failing.ret == 1
    # with the jobs list as the plan, a job that left no file is missing, never passed
    planned = spike_cli(hermetic, "matrix", "--upgrade", "oldlib", "--upgrade-versions", "1.5, 2.0", "--json")
    (hermetic.path / "jobs.json").write_text(planned.stdout.str())
    short = spike_cli(
        hermetic, "merge", "results/upgrade-oldlib-2.0", "--plan", "jobs.json", "--json", "short.json"
    )
    assert short.ret == 3, short.stdout.str() + short.stderr.str()
    short.stdout.fnmatch_lines(
        [
            "oldlib 1.0 -> 1.5  UNKNOWN  no results file holds upgrade-oldlib-1.5 (planned by matrix --upgrade)*",
            "oldlib 1.0 -> 2.0  HIGH  1 of 2 tests break",
            "*",
            "oldlib: no version tried is known to pass (some could not be checked)",
        ]
    )
    (missing, _) = json.loads((hermetic.path / "short.json").read_text())["upgrades"][0]["targets"]
    assert missing["passes"] is None and missing["findings"][0]["code"] == "upgrade.missing"


def test_matrix_upgrade_json_and_bad_input(hermetic: pytest.Pytester) -> None:
    listed = spike_cli(hermetic, "matrix", "--upgrade", "oldlib<2", "--json")
    assert listed.ret == 0, listed.stderr.str()
    data = json.loads(listed.stdout.str())
    assert data["schema"] == "pytest-spike-upgrades/1"
    assert [(j["id"], j["pytest_args"]) for j in data["jobs"]] == [
        ("upgrade-oldlib-1.5", ["--spike-upgrade", "oldlib<2", "--spike-upgrade-versions", "1.5"])
    ]
    plain = spike_cli(hermetic, "matrix", "--upgrade", "oldlib", "--upgrade-versions", "latest:2")
    assert plain.stdout.lines == [
        "upgrade-oldlib-1.5  oldlib 1.0 -> 1.5",
        "upgrade-oldlib-2.0  oldlib 1.0 -> 2.0",
    ]
    for argv, message in [
        (
            ["--upgrade", "notinstalled"],
            "*--upgrade: notinstalled is not installed in the running environment*",
        ),
        (["--upgrade", "oldlib", "--tox"], "*--upgrade lists upgrade targets only; drop --tox*"),
        (["--upgrade-versions", "latest:2"], "*--upgrade-versions goes with --upgrade REQ"),
        (["--upgrade", "oldlib>=3"], "*no release of oldlib to move to from 1.0*"),
    ]:
        bad = spike_cli(hermetic, "matrix", *argv)
        assert bad.ret == 2, (argv, bad.stdout.str())
        bad.stderr.fnmatch_lines([f"pytest-spike: error: {message}"])
        assert "Traceback" not in bad.stderr.str()


NOXFILE = """
import sys

import nox
from pytest_spike.matrix.nox import merge_results, upgrade_targets

@nox.session(python=False)
@nox.parametrize("target", upgrade_targets("oldlib", versions="1.5, 2.0", current="1.0"))
def upgrade(session, target):
    # python=False: nox's own interpreter is the project's environment (oldlib 1.0 on
    # PYTHONPATH); a real noxfile installs the project into the session's virtualenv
    session.run(sys.executable, "-m", "pytest", "--spike-upgrade", "oldlib", "--spike-upgrade-versions", target,
                "--spike-json", f".spike/results/upgrade-oldlib-{target}.json", "test_app.py",
                success_codes=[0, 1])

@nox.session(python=False)
def spike_merge(session):
    merge_results(session)
"""


def test_nox_sessions_per_target_then_merge(hermetic: pytest.Pytester, cache_dir: Path) -> None:  # noqa: F811
    """Real nox: upgrade_targets parametrizes a session of the project's, merge_results folds."""
    (hermetic.path / "noxfile.py").write_text(NOXFILE)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], plugin_pythonpath()])
    env["PYTEST_ADDOPTS"] = f"--spike-cache-dir={cache_dir}"

    def nox(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "nox", "--no-color", *args], cwd=hermetic.path, env=env,
                              capture_output=True, text=True, timeout=300)  # fmt: skip

    listed = nox("-l", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [s["session"] for s in json.loads(listed.stdout)] == [
        "upgrade(target='1.5')",
        "upgrade(target='2.0')",
        "spike_merge",
    ]
    done = nox("-s", "upgrade", "spike_merge")
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "oldlib: the suite passes on 1.5 (newest of the versions tried)" in output
    report = json.loads((hermetic.path / ".spike" / "report.json").read_text())
    (upgrade,) = report["upgrades"]
    assert [(t["version"], t["passes"]) for t in upgrade["targets"]] == [("1.5", True), ("2.0", False)]
    assert report["matrix"]["grids"] == []
    # one target's job ran alone (as a CI job would): the merge names the other as missing
    (hermetic.path / ".spike" / "results" / "upgrade-oldlib-2.0.json").unlink()
    short = nox("-s", "spike_merge")
    assert short.returncode != 0, short.stdout + short.stderr
    assert (
        "oldlib 1.0 -> 2.0  UNKNOWN  no results file holds upgrade-oldlib-2.0" in short.stdout + short.stderr
    )
