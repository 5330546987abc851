"""Results files written by older versions stay readable by ``show`` and ``merge``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_spike import cli
from pytest_spike.report import schema as results

#: A results file as versions before the rename wrote it: the pip check's finding was
#: ``install.conflicts``, one letter from the fit check's ``install.conflict``, and
#: findings had no ``blame`` yet.
OLD_RESULTS = {
    "schema": "pytest-spike/1",
    "plugin_version": "0.1.0",
    "created": "2025-01-01T00:00:00+00:00",
    "complete": True,
    "cell": {"id": "py3.11-conflictpkg-1.0", "python": "3.11.7", "python_short": "3.11"},
    "fail_on": None,
    "lowest_risk": ["conflictpkg"],
    "candidates": [
        {
            "name": "conflictpkg",
            "requirement": "conflictpkg",
            "versions": None,
            "python": [],
            "modules": [],
            "timebox": None,
            "budget": {},
            "version": "1.0",
            "level": "high",
            "score": 30,
            "findings": [
                {
                    "code": "install.conflicts",
                    "severity": "high",
                    "message": "pip check: conflictpkg 1.0 requires missingdep, which is not installed.",
                    "evidence": {"pip_check": "conflictpkg 1.0 requires missingdep, which is not installed."},
                    "points": 30,
                    "probe": "spike::conflictpkg::install",
                }
            ],
            "probes": [
                {
                    "kind": "install",
                    "nodeid": "spike::conflictpkg::install",
                    "outcome": "failed",
                    "duration_s": 0.5,
                    "peak_memory_mb": None,
                    "version": "1.0",
                    "details": {"pip_check": "problems"},
                    "metrics": {},
                    "notes": [],
                }
            ],
            "metrics": {},
            "notes": [],
            "duration_s": 0.5,
            "peak_memory_mb": None,
            "cost": None,
        }
    ],
}


@pytest.fixture
def old_file(tmp_path: Path) -> Path:
    path = tmp_path / "old.json"
    path.write_text(json.dumps(OLD_RESULTS))
    return path


def test_old_pip_check_code_loads_under_its_new_name(old_file: Path) -> None:
    (candidate,) = results.load(old_file).candidates
    (scored,) = candidate.scored
    assert scored.finding.code == "install.pip_check" and scored.points == 30
    assert candidate.level.value == "high"


def test_show_and_merge_of_an_old_file(
    old_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["show", str(old_file), "--md"]) == 0
    shown = capsys.readouterr().out
    assert "install.pip_check" in shown and "install.conflicts" not in shown
    merged = tmp_path / "merged.json"
    assert cli.main(["merge", str(old_file), "--json", str(merged)]) == 0
    codes = [f["code"] for f in json.loads(merged.read_text())["candidates"][0]["findings"]]
    assert "install.pip_check" in codes and "install.conflicts" not in codes
