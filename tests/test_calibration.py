"""The calibration panel's judge: the targets it checks can fail."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "calibration.py"


@pytest.fixture(scope="module")
def calibration():
    spec = importlib.util.spec_from_file_location("calibration", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["calibration"] = module  # dataclasses look their module up while they are made
    spec.loader.exec_module(module)
    return module


def _results(tmp_path: Path, verdicts: dict[str, tuple[str, float]]) -> Path:
    path = tmp_path / "results.json"
    candidates = [
        {"name": name, "level": level, "score": score, "findings": [], "probes": []}
        for name, (level, score) in verdicts.items()
    ]
    path.write_text(json.dumps({"schema": "pytest-spike/1", "candidates": candidates}))
    return path


def test_all_targets_met(calibration, tmp_path: Path) -> None:
    path = _results(tmp_path, {"attrs": ("low", 0), "ruamel-yaml": ("low", 3), "nose": ("medium", 20)})
    code = calibration.main(["--only", "attrs", "ruamel.yaml", "nose", "--results", str(path)])
    assert code == 0


def test_each_target_can_miss(calibration, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _results(
        tmp_path,
        {"attrs": ("high", 30), "click": ("medium", 10), "nose": ("low", 0), "pep8": ("medium", 10)},
    )
    code = calibration.main(["--only", "attrs", "click", "tomli", "nose", "pep8", "--results", str(path)])
    out = capsys.readouterr().out
    assert code == 1
    assert "MISSED  healthy attrs is HIGH" in out
    assert "MISSED  healthy click at MEDIUM without a signed reason" in out
    assert "MISSED  tomli: no verdict" in out
    assert "MISSED  bad nose is only LOW" in out
    assert "bad pep8 (medium 10) is not riskier than healthy attrs (high 30), click (medium 10)" in out


def test_the_ml_panel_is_judged_on_its_own_packages(
    calibration, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _results(tmp_path, {"scikit-learn": ("medium", 10), "theano": ("low", 0), "pandas": ("low", 0)})
    code = calibration.main(
        ["--panel", "ml", "--only", "scikit-learn", "pandas", "theano", "--results", str(path)]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "| scikit-learn | healthy | MEDIUM | 10 |" in out
    assert "MISSED  healthy scikit-learn at MEDIUM without a signed reason" in out
    assert "MISSED  bad theano is only LOW" in out
    assert len(calibration.ML_HEALTHY) >= 20
    with pytest.raises(SystemExit):
        calibration.main(["--only", "scikit-learn", "--results", str(path)])  # not in the base panel
