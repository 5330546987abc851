"""Issue 24 part 2, "honest on every path": each path a new user can take ends in a verdict
that says what it rests on, a usage error that says what to fix, or unknown, never a pass."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from indexserver import IndexServer

from pytest_spike import cli

SKIPPED_ONLY = """
import pytest
from pytest_spike import spike

@spike.hello_world
@spike.candidate("other-name")
def test_not_today():
    pytest.skip("the data is not here today")

@spike.hello_world
@spike.candidate("goodpkg")
def test_goodpkg():
    import goodpkg
    assert goodpkg.hello() == "hi"

@spike.real_data
@spike.candidate("goodpkg")
def test_goodpkg_data():
    pytest.skip("no data folder")

@spike.hello_world
@spike.candidate("warnpkg")
def test_warnpkg():
    pass
"""


def test_a_blocked_candidate_is_never_named_lowest_risk(
    pytester: pytest.Pytester, spike_site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = pytester.runpytest("--spike", "--spike-candidate", "brokenpkg", "--spike-json", "r.json")
    result.stdout.fnmatch_lines(
        ["brokenpkg*BLOCKED*", "no candidate can be named lowest risk: brokenpkg: blocked*"]
    )
    result.stdout.no_fnmatch_line("lowest risk: brokenpkg*")
    assert json.loads((pytester.path / "r.json").read_text())["lowest_risk"] == []
    # the same rule in a merged scorecard
    assert cli.main(["merge", str(pytester.path / "r.json"), "--json", str(pytester.path / "m.json")]) == 0
    assert "no candidate can be named lowest risk: brokenpkg: blocked" in capsys.readouterr().out
    assert json.loads((pytester.path / "m.json").read_text())["lowest_risk"] == []


def test_no_evidence_is_not_lowest_risk_and_ties_go_to_more_evidence(
    pytester: pytest.Pytester, spike_site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # other-name: its one probe skipped (0/1); goodpkg 1/2; warnpkg 1/1: all LOW at 0 points
    monkeypatch.setenv("PYTEST_ADDOPTS", "--spike-probes=none --spike-isolation=never")
    pytester.makepyfile(test_spike=SKIPPED_ONLY)
    result = pytester.runpytest("--spike", "--spike-json", "r.json")
    result.stdout.fnmatch_lines(["other-name*LOW*0*0/1*"])
    assert (
        "lowest risk: warnpkg (LOW, 0 points, evidence 1/1; ahead of goodpkg (evidence 1/2); "
        "not named: other-name: no evidence (0/1))"
    ) in " ".join(result.stdout.str().split())
    assert json.loads((pytester.path / "r.json").read_text())["lowest_risk"] == ["warnpkg"]


# -- 2. a misspelling is a usage error, before anything runs --------------------------------------------


@pytest.fixture
def index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[IndexServer]:
    """A package index on 127.0.0.1 with requests 2.31.0 and tomli 2.0.1 (and nothing else)."""
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    for name in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS"):
        monkeypatch.delenv(name, raising=False)
    with IndexServer(tmp_path / "index") as server:
        server.add("requests", "2.31.0")
        server.add("tomli", "2.0.1")
        yield server


def test_a_misspelt_candidate_is_a_usage_error_with_close_names(
    pytester: pytest.Pytester, spike_site: Path, index: IndexServer, tmp_path: Path
) -> None:
    result = pytester.runpytest(
        "--spike", "--spike-candidate", "reqeusts", f"--spike-index-url={index.url}",
        f"--spike-cache-dir={tmp_path / 'cache'}",
    )  # fmt: skip
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--spike-candidate 'reqeusts': no project 'reqeusts' on the package index; did you mean requests?*"]
    )
    result.stdout.no_fnmatch_line("*spike scorecard*")
    result.stdout.no_fnmatch_line("*spike::reqeusts::install*")


def test_a_version_never_released_is_named_as_such(
    pytester: pytest.Pytester, spike_site: Path, index: IndexServer, tmp_path: Path
) -> None:
    cache = f"--spike-cache-dir={tmp_path / 'cache'}"
    pinned = pytester.runpytest(
        "--spike", "--spike-candidate", "tomli==99", f"--spike-index-url={index.url}", cache
    )
    assert pinned.ret == pytest.ExitCode.USAGE_ERROR
    pinned.stderr.fnmatch_lines(
        ["*--spike-candidate 'tomli==99': tomli has no release 99 on the package index (newest: 2.0.1)*"]
    )
    pinned.stdout.no_fnmatch_line("*signals passed*")
    pytester.makepyfile(
        test_spike="""
        from pytest_spike import spike

        @spike.candidate("tomli", versions=["2.0.1", "99"])
        def test_loads():
            pass
        """
    )
    listed = pytester.runpytest("--spike", f"--spike-index-url={index.url}", cache)
    assert listed.ret == pytest.ExitCode.USAGE_ERROR
    listed.stderr.fnmatch_lines(["*test_spike.py::test_loads: candidate 'tomli': tomli has no release 99*"])


def test_an_unreachable_index_is_said_not_called_a_misspelling(
    pytester: pytest.Pytester, spike_site: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    result = pytester.runpytest(
        "--spike", "--spike-candidate", "reqeusts", "--spike-index-url=http://127.0.0.1:9/simple/",
        f"--spike-cache-dir={tmp_path / 'cache'}",
    )  # fmt: skip
    assert result.ret != pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines(["spike: reqeusts: not checked against the package index (*127.0.0.1:9*"])
    result.stdout.no_fnmatch_line("*did you mean*")
    result.stdout.no_fnmatch_line("lowest risk: reqeusts*")


@pytest.mark.parametrize("command", ["run", "matrix"])
def test_a_python_that_is_no_version_is_a_usage_error(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stopped:
        cli.main([command, "--python", "banana", "--candidate", "tomli"])
    assert stopped.value.code == 2
    assert "argument --python: 'banana' is not a Python version like 3.11" in capsys.readouterr().err
    assert not list(tmp_path.rglob("*banana*")), "a cell was planned for it"


# -- 5. a broken spike file fails the plan loudly --------------------------------------------------------

BROKEN_FILES = {
    "syntax": ("def test_x(:\n    pass\n", "SyntaxError: invalid syntax"),
    "versions": ("def test_x():\n    pass\n", "versions='latest:banana' is not a specifier"),
}


@pytest.mark.parametrize("broken", sorted(BROKEN_FILES))
@pytest.mark.parametrize("command", [["matrix"], ["matrix", "--github"], ["run", "-q"]])
def test_a_broken_spike_file_fails_the_plan(
    broken: str,
    command: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    body, said = BROKEN_FILES[broken]
    versions = "latest:banana" if broken == "versions" else "latest:2"
    (tmp_path / "test_spike.py").write_text(
        f"from pytest_spike import spike\npytestmark = spike.candidate('tomli', versions={versions!r})\n{body}"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # no plan cached by another test
    status = cli.main(command)
    out, err = capsys.readouterr()
    assert status == 2
    assert "collecting the spike in . failed" in err and "test_spike.py" in err and said in err, err
    assert '"include":[]' not in out and "no candidates" not in out + err


# -- 3. interrupted is unknown ---------------------------------------------------------------------------


def _interrupt_when(proc: subprocess.Popen[bytes], marker: str, seen: bytearray) -> None:
    """Read ``proc``'s output until ``marker`` (pytest -v names an item before it runs it, on a
    line it ends later), then Ctrl-C it as a terminal does: SIGINT to its process group."""
    assert proc.stdout is not None
    while marker.encode() not in seen:
        chunk = os.read(proc.stdout.fileno(), 4096)
        if not chunk:
            raise AssertionError(f"never reached {marker}:\n{seen.decode()}")
        seen += chunk
    time.sleep(1.0)  # inside the probe's wait for its child
    os.killpg(proc.pid, signal.SIGINT)


def test_a_probe_interrupted_by_ctrl_c_is_unknown_not_passed(spike_site: Path, tmp_path: Path) -> None:
    argv = [
        sys.executable, "-m", "pytest", "-v", "-p", "no:randomly", "-p", "no:cacheprovider", "--spike",
        "--spike-candidate", "goodpkg", "--spike-candidate", "hangpkg", "--spike-json", "r.json",
        f"--spike-cache-dir={tmp_path / 'cache'}", "--spike-index-url=http://127.0.0.1:9/simple/",
    ]  # fmt: skip
    env = dict(os.environ, PIP_CONFIG_FILE=os.devnull)
    seen = bytearray()
    with subprocess.Popen(
        argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    ) as proc:
        _interrupt_when(proc, "spike::hangpkg::import", seen)
        rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, (seen + rest).decode()
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["complete"] is False
    hang = {c["name"]: c for c in data["candidates"]}["hangpkg"]
    probe = next(p for p in hang["probes"] if p["kind"] == "import")
    assert probe["outcome"] == "skipped" and probe["details"]["unknown"] == "interrupted before it finished"
    assert "import" in hang["evidence"]["unknown"]
    assert hang["evidence"]["probes_with_evidence"] == hang["evidence"]["probes"] - 1


# -- 4. a partly answered index is not a pass ------------------------------------------------------------


def test_offline_with_a_cold_cache_and_a_file_index_is_unknown_not_passed(
    pytester: pytest.Pytester, spike_site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a file:// index that answers, but knows only goodpkg 0.5 (1.0 is installed), no dates
    page = tmp_path / "local" / "simple" / "goodpkg"
    page.mkdir(parents=True)
    (page / "index.html").write_text('<a href="../../files/goodpkg-0.5.tar.gz">goodpkg-0.5.tar.gz</a>')
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", (tmp_path / "local" / "simple").as_uri())
    monkeypatch.setenv("PYTEST_ADDOPTS", "--spike-probes=signals,upstream --spike-isolation=never")
    result = pytester.runpytest(
        "--spike", "--spike-offline", "--spike-candidate", "goodpkg", "--spike-json", "r.json", "-rs",
        "--spike-index-url=http://127.0.0.1:9/simple/", f"--spike-cache-dir={tmp_path / 'cold'}",
    )  # fmt: skip
    result.assert_outcomes(skipped=2)
    probes = {
        p["kind"]: p for p in json.loads((pytester.path / "r.json").read_text())["candidates"][0]["probes"]
    }
    assert probes["signals"]["outcome"] == "skipped"
    assert "answered only in part" in probes["signals"]["details"]["unknown"]
    assert probes["upstream"]["outcome"] == "skipped"
    assert "not on the indexes that answered, and not all did" in probes["upstream"]["details"]["unknown"]
    result.stdout.no_fnmatch_line("*has no release 1.0 on the package index*")
    result.stdout.no_fnmatch_line("*signals passed*")


def test_an_unreachable_index_names_each_candidates_own_url(
    pytester: pytest.Pytester, spike_site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PYTEST_ADDOPTS", "--spike-probes=signals --spike-isolation=never")
    pytester.runpytest(
        "--spike", "--spike-candidate", "goodpkg", "--spike-candidate", "other-name", "--spike-json", "r.json",
        "--spike-index-url=http://127.0.0.1:9/simple/", f"--spike-cache-dir={tmp_path / 'cache'}",
    )  # fmt: skip
    why = {
        c["name"]: c["probes"][0]["details"]["unknown"]
        for c in json.loads((pytester.path / "r.json").read_text())["candidates"]
    }
    assert "/simple/goodpkg/" in why["goodpkg"] and "/simple/other-name/" not in why["goodpkg"]
    assert "/simple/other-name/" in why["other-name"] and "/simple/goodpkg/" not in why["other-name"], why


# -- 7. what the card shows ------------------------------------------------------------------------------


def test_the_card_shows_the_failure_reason_and_where_the_candidate_ran(
    pytester: pytest.Pytester, spike_site: Path
) -> None:
    (pytester.path / "data").mkdir()
    (pytester.path / "data" / "pages.csv").write_text("url,status\n/a,200\n/b,302\n")
    pytester.makepyfile(
        test_spike="""
        from pytest_spike import spike

        @spike.real_data
        @spike.candidate("goodpkg")
        def test_pages(spike_data):
            for row in spike_data.rows("pages.csv"):
                with spike_data.record(row):
                    assert int(row["status"]) == 200
        """
    )
    result = pytester.runpytest("--spike", "--spike-data", "data")
    text = " ".join(result.stdout.str().split())
    # the message names the record; the error it raised is on the card too, not only in the JSON
    assert "real_data.failed: real-data test failed on pages.csv" in text
    assert "error: AssertionError: assert 302 == 200" in text
    assert "ran in: the running environment (" in text


def test_a_background_build_is_not_said_under_another_candidates_name(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_say="""
        import threading
        from pytest_spike.fixtures import SERVICES

        def test_say(request):
            services = request.config.stash[SERVICES]
            worker = threading.Thread(target=services.say, args=("building environment for otherpkg (uv)",))
            worker.start()
            worker.join()
            services.flush()  # shown while this test (another candidate's step) runs
        """
    )
    result = pytester.runpytest("--spike", "--spike-probes=none")
    result.stdout.fnmatch_lines(["spike: in the background: building environment for otherpkg (uv)"])
    result.stdout.no_fnmatch_line("spike: test_say: building environment for otherpkg*")


def test_under_xdist_a_misspelt_candidate_is_still_a_usage_error(
    pytester: pytest.Pytester, spike_site: Path, index: IndexServer, tmp_path: Path
) -> None:
    result = pytester.runpytest(
        "-n", "2", "--spike", "--spike-candidate", "reqeusts", f"--spike-index-url={index.url}",
        f"--spike-cache-dir={tmp_path / 'cache'}",
    )  # fmt: skip
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*no project 'reqeusts' on the package index; did you mean requests?*"])
    result.stdout.no_fnmatch_line("*no candidates*")
