"""SARIF 2.1.0 (--spike-sarif, show|merge --sarif): valid against the schema, each scored finding
at the line that names its candidate."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_spike import cli
from pytest_spike.model import Candidate, CandidateResult, Finding, ProbeResult, Scorecard, Severity
from pytest_spike.report.schema import dumps
from pytest_spike.scoring import Weights, level_for, score

#: What SARIF 2.1.0 and GitHub code scanning require of the parts our logs use, written for
#: these tests from the specification (the official schema is not copied into this repository).
SCHEMA = Path(__file__).parent / "data" / "sarif-2.1.0-required.schema.json"


def validate(path: Path) -> dict[str, Any]:
    """Check ``path`` against the SARIF schema with check-jsonschema; its JSON."""
    checker = Path(sys.executable).parent / "check-jsonschema"
    done = subprocess.run(
        [str(checker), "--schemafile", str(SCHEMA), str(path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def by_candidate(log: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    (run,) = log["runs"]
    found: dict[str, list[dict[str, Any]]] = {}
    for result in run["results"]:
        found.setdefault(result["properties"]["candidate"], []).append(result)
    return found


def where(result: dict[str, Any]) -> tuple[str, int]:
    (loc,) = result["locations"]
    physical = loc["physicalLocation"]
    return physical["artifactLocation"]["uri"], physical["region"]["startLine"]


def test_the_schema_check_fails_on_a_bad_log(tmp_path: Path) -> None:
    """The validation can fail: a level SARIF does not have."""
    bad = tmp_path / "bad.sarif"
    bad.write_text(json.dumps({"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "x"}},
                   "results": [{"message": {"text": "m"}, "level": "critical"}]}]}))  # fmt: skip
    with pytest.raises(AssertionError):
        validate(bad)


def test_spike_sarif_puts_each_scored_finding_at_the_mark_naming_its_candidate(
    pytester: pytest.Pytester, spike_site: Path
) -> None:
    pytester.makepyfile(
        test_parsers="""
        import pytest
        from pytest_spike import spike

        # two candidates, each named on a line of its own

        @pytest.mark.parametrize("name", [
            pytest.param("goodpkg", marks=spike.candidate("goodpkg")),
            pytest.param("brokenpkg", marks=spike.candidate("brokenpkg")),
        ])
        def test_loads(name):
            pass
        """
    )
    result = pytester.runpytest("--spike", "--spike-sarif", "out/spike.sarif")
    result.stdout.fnmatch_lines(["spike sarif: */out/spike.sarif"])
    log = validate(pytester.path / "out" / "spike.sarif")
    found = by_candidate(log)
    assert "goodpkg" not in found  # nothing scored: nothing to decide
    (broken,) = found["brokenpkg"]
    assert broken["ruleId"] == "import.failed" and broken["level"] == "error"  # critical
    assert "brokenpkg 1.0: " in broken["message"]["text"] and "needs libfoo" in broken["message"]["text"]
    assert where(broken) == ("test_parsers.py", 8)
    rules = {r["id"]: r for r in log["runs"][0]["tool"]["driver"]["rules"]}
    assert rules["import.failed"]["defaultConfiguration"] == {"level": "error"}


def test_a_zero_file_spike_points_at_the_line_of_pyproject_that_names_the_candidate(
    pytester: pytest.Pytester, spike_site: Path
) -> None:
    pytester.makepyprojecttoml(
        """
        [project]
        name = "ours"

        [tool.pytest.ini_options]
        spike_candidates = [
            "goodpkg",
            "warnpkg",
        ]
        """
    )
    result = pytester.runpytest("--spike", "--spike-sarif", "spike.sarif")
    assert result.ret == 0
    (warned,) = by_candidate(validate(pytester.path / "spike.sarif"))["warnpkg"]
    assert warned["ruleId"] == "import.deprecation" and warned["level"] == "warning"  # medium
    assert where(warned) == ("pyproject.toml", 7)


def cell(folder: Path, python: str, findings: list[Finding]) -> None:
    probes = [ProbeResult("nose", "import", "tests/spikes/test_nose.py::test_x", findings=list(findings))]
    result = CandidateResult(Candidate("nose"), version="1.3.7", probes=probes)
    result.scored = score([(f, "spike::nose::import") for f in findings], Weights().points)
    result.score = sum(s.points for s in result.scored)
    result.level = level_for(result.score, result.findings)
    cid = f"py{python}-nose-1.3.7"
    card = Scorecard(cell={"id": cid, "python": f"{python}.1", "python_short": python}, candidates=[result])
    (folder / f"{cid}.json").write_text(dumps(card))


def test_merge_and_show_write_sarif(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spikes = tmp_path / "tests" / "spikes"
    spikes.mkdir(parents=True)
    (spikes / "test_nose.py").write_text(
        'from pytest_spike import spike\n\npytestmark = spike.candidate("nose")\n'
    )
    cells = tmp_path / "cells"
    cells.mkdir()
    broke = Finding("import.failed", Severity.CRITICAL, "import nose failed: No module named 'imp'")
    cell(cells, "3.11", [])
    cell(cells, "3.12", [broke])
    monkeypatch.chdir(tmp_path)
    assert cli.main(["merge", "cells", "--sarif", "merged.sarif", "--json", "merged.json"]) == 0
    (gap,) = by_candidate(validate(tmp_path / "merged.sarif"))["nose"]
    assert gap["ruleId"] == "matrix.python_gap" and gap["level"] == "error"
    assert "fails on 3.12" in gap["message"]["text"]
    assert where(gap) == ("tests/spikes/test_nose.py", 3)
    # show turns the merged results file into the same log
    assert cli.main(["show", "merged.json", "--sarif", "shown.sarif"]) == 0
    assert validate(tmp_path / "shown.sarif") == json.loads((tmp_path / "merged.sarif").read_text())
