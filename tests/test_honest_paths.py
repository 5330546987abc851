"""Issue 24 part 2, "honest on every path": each path a new user can take ends in a verdict
that says what it rests on, a usage error that says what to fix, or unknown, never a pass."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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
