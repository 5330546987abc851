"""Child pytests whose results file a candidate rewrites: the host saw what ran.

A candidate's ``atexit`` hook, registered when a test imports it, rewrites the child's
results (pytest-spike's JSON for the team's tests, the JUnit XML of upstream's) to say
every test passed. The child announced each test's outcome on a stream the host reads as
it runs, closed before the exit hooks: the contradiction is ``spike.tampered`` (critical,
the candidate's) and the announced outcome is the test's. Real wheels, the real box
(bubblewrap where it runs), real child pytests; no mocks.
"""

from __future__ import annotations

import os
import sys
import tarfile
from pathlib import Path

import pytest
from pkgfactory import FakeProject, build_wheel, pip_install_target

from pytest_spike._core import sandbox, witness
from pytest_spike._core._witness_plugin import MARK as PLUGIN_MARK
from pytest_spike.envs import layer
from pytest_spike.model import TAMPERED, Blame, Severity
from pytest_spike.upstream.findings import upstream_findings
from pytest_spike.upstream.run import SpikeUpstream

pytestmark = pytest.mark.skipif(
    not sandbox.status(sandbox.Policy()).boxed,
    reason=f"no box here: {sandbox.status(sandbox.Policy()).reason}",
)

# Registered at import: after the session, rewrite whichever results file the child writes
# to say every test passed, and speak for the host's stream too, were it still open.
REWRITER = r"""
import atexit, json, os, sys

def _rewrite():
    argv, rewrote = sys.argv, False
    if "--spike-json" in argv:
        rewrote = True
        path = argv[argv.index("--spike-json") + 1]
        with open(path) as handle:
            data = json.load(handle)
        for cand in data["candidates"]:
            for probe in cand["probes"]:
                probe["outcome"] = "passed"
                probe["details"] = {}
            cand["findings"] = []
        with open(path, "w") as handle:
            json.dump(data, handle)
    for arg in argv:
        if arg.startswith("--junitxml="):
            rewrote = True
            path = arg.split("=", 1)[1]
            with open(path) as handle:
                text = handle.read()
            head, _, _ = text.partition("<testcase")
            cases = text.count("<testcase")
            with open(path, "w") as handle:
                handle.write(head.replace('failures="1"', 'failures="0"'))
                for name in ("test_broken", "test_fine"):
                    handle.write('<testcase classname="tests.test_forged" name="%s" time="0.0" />' % name)
                handle.write("</testsuite></testsuites>")
    if rewrote:
        print("@@pytest-spike-witness@@" + json.dumps({"test": "anything", "outcome": "passed"}))

atexit.register(_rewrite)

def answer():
    return 41
"""

TESTS = (
    "def test_broken():\n"
    "    import rewriterpkg\n"
    "    assert rewriterpkg.answer() == 42\n\n"
    "def test_fine():\n"
    "    import rewriterpkg\n"
    "    assert rewriterpkg.answer() == 41\n"
)

PROJECTS = [
    FakeProject(
        "rewriterpkg",
        "1.0",
        files={"rewriterpkg/__init__.py": REWRITER},
        sdist_files={"tests/test_forged.py": TESTS},
    )
]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("forged-children")
    pip_install_target([build_wheel(p, root / "wheels") for p in PROJECTS], root / "site")
    return root


@pytest.fixture
def site(built: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    outer = os.environ.get("PYTHONPATH", "")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(built / "site"), outer])))
    monkeypatch.syspath_prepend(str(built / "site"))
    return built / "site"


def test_the_plugin_and_the_host_agree_on_the_mark() -> None:
    assert PLUGIN_MARK == witness.MARK


def test_a_stream_cut_by_the_output_cap_names_no_test_it_lost() -> None:
    line = witness.MARK + '{"test": "t::a", "outcome": "failed", "error": "E"}'
    seen = witness.read_seen(witness.MARK + '{"collected": 3}\n' + line + "\n")
    assert seen is not None and seen.outcomes == {"t::a": "failed"}
    reported = {"t::a": "error", "t::b": "passed"}  # "error" and "failed" both say it failed
    assert witness.contradictions(seen, reported) == {
        "t::b": "the results say passed, the test was never seen to finish"
    }
    assert witness.contradictions(seen, reported, complete=False) == {}
    assert witness.contradictions(seen, {"t::a": "passed"}, complete=False) == {
        "t::a": "the results say passed, the test failed"
    }
    assert witness.read_seen("no announcement\n" + line) is None


def test_a_rewritten_results_file_of_the_teams_tests_loses_to_what_ran(site: Path, tmp_path: Path) -> None:
    from importlib import metadata

    try:
        metadata.distribution("pytest-spike")
    except metadata.PackageNotFoundError:
        pytest.skip("the child pytest loads pytest-spike by its entry point: install it")
    project = tmp_path / "proj"
    project.mkdir()
    (project / "test_user.py").write_text(
        "from pytest_spike import spike\n\n"
        "pytestmark = [spike.candidate('rewriterpkg'), spike.hello_world]\n\n" + TESTS
    )
    found = layer.run_child(
        sys.executable,
        layer.build_layer(tmp_path / "cache"),
        [f"{project / 'test_user.py'}::test_broken", f"{project / 'test_user.py'}::test_fine"],
        ["--spike", "--spike-probes=none", "--spike-isolation=never", "-p", "no:cacheprovider"]
        + ["-q", "--rootdir", str(project)],
        cwd=project,
        timeout=60,
    )
    broken, fine = found["test_user.py::test_broken"], found["test_user.py::test_fine"]
    # What ran wins: the broken test failed, whatever the file says now.
    assert (broken.outcome, fine.outcome) == ("failed", "passed")
    [tampered] = broken.findings
    assert (tampered.code, tampered.severity, tampered.blame) == (
        TAMPERED,
        Severity.CRITICAL,
        Blame.CANDIDATE,
    )
    assert tampered.message == (
        "the child pytest's results contradict what the child announced for 1 of 2 test(s); first "
        "test_user.py::test_broken: the results say passed, the test failed (AssertionError: assert 41 == 42)"
    )
    assert broken.details["tampered"] == "the results say passed, the test failed"
    assert fine.findings == []


def _sdist(built: Path) -> Path:
    # The fixture's sdist: its tests folder as upstream ships it.
    folder = built / "sdist"
    (folder / "tests").mkdir(parents=True, exist_ok=True)
    (folder / "tests" / "test_forged.py").write_text(TESTS)
    (folder / "PKG-INFO").write_text("Metadata-Version: 2.1\nName: rewriterpkg\nVersion: 1.0\n")
    archive = built / "rewriterpkg-1.0.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="rewriterpkg-1.0")
    return archive


def test_a_rewritten_junit_file_of_upstreams_tests_loses_to_what_ran(
    site: Path, built: Path, tmp_path: Path
) -> None:
    spike = SpikeUpstream(
        sys.executable,
        "rewriterpkg",
        "1.0",
        _sdist(built),
        tmp_path / "work",
        60.0,
        extra_env={"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
    )
    result = spike.probe()
    outcomes = {k: o.outcome for k, o in result.outcomes.items()}
    assert outcomes == {
        "tests/test_forged.py::test_broken": "failed",
        "tests/test_forged.py::test_fine": "passed",
    }
    assert "assert 41 == 42" in result.outcomes["tests/test_forged.py::test_broken"].message
    assert result.tampered == {"tests/test_forged.py::test_broken": "the results say passed, the test failed"}
    findings = {f.code: f for f in upstream_findings(result)[0]}
    tampered = findings[TAMPERED]
    assert (tampered.severity, tampered.blame) == (Severity.CRITICAL, Blame.CANDIDATE)
    assert tampered.message == (
        "upstream's test results contradict what the child pytest announced for 1 test(s); first "
        "tests/test_forged.py::test_broken: the results say passed, the test failed"
    )
    assert "AssertionError: assert 41 == 42" in findings["upstream.failed"].message
