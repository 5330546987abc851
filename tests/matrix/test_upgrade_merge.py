"""Merging upgrade spikes that ran one CI job per target version.

The results files are written as ``pytest --spike-upgrade ... --spike-json`` writes them
(a Scorecard with no candidates and an ``upgrades`` section); the end-to-end path, real
pytest runs on a local index, is in tests/upgrade/test_fanout.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_merge import cell_file

from pytest_spike import cli
from pytest_spike.matrix.merge import load_all, merge
from pytest_spike.model import Finding, Level, Scorecard, Severity, UpgradeResult, UpgradeTarget
from pytest_spike.report.grids import terminal_lines
from pytest_spike.report.markdown import render_view as render_markdown
from pytest_spike.report.schema import dumps

BREAKS = Finding("upgrade.breaks", Severity.HIGH, "1 of 3 tests break on numpy 2.0.2: test_app.py::test_sum")


def job_file(
    folder: Path,
    target: str,
    passes: bool,
    *,
    current: str = "1.24.4",
    requirement: str = "numpy",
    tests: int = 3,
    python: str = "3.11",
    name: str | None = None,
) -> Path:
    """The results file of one CI job that ran one target version."""
    found = UpgradeTarget(
        target,
        level=Level.LOW if passes else Level.HIGH,
        passes=passes,
        findings=[] if passes else [BREAKS],
        compared=3,
        broken=0 if passes else 1,
        moved=[f"numpy {current} -> {target}"],
    )
    upgrade = UpgradeResult(
        requirement, "numpy", current, [found], baseline={"source": "this run", "tests": tests, "passed": 3}
    )
    card = Scorecard(
        cell={"python": f"{python}.7", "python_short": python}, candidates=[], upgrades=[upgrade]
    )
    path = folder / (name or f"upgrade-numpy-{target}") / "up.json"  # every job writes up.json
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(card))
    return path


def test_one_target_per_job_folds_into_one_verdict(tmp_path: Path) -> None:
    files = [job_file(tmp_path, "2.0.2", False), job_file(tmp_path, "1.26.4", True)]
    files.append(job_file(tmp_path, "1.25.2", True))
    merged = merge(load_all(files)[0])
    assert merged.grids == [] and merged.scorecard.candidates == []  # no invented cells
    assert merged.notes == []
    (upgrade,) = merged.scorecard.upgrades
    assert [t.version for t in upgrade.targets] == ["1.25.2", "1.26.4", "2.0.2"]
    assert upgrade.newest_passing == "1.26.4"
    assert upgrade.requirement == "numpy" and upgrade.current == "1.24.4"
    assert upgrade.baseline["jobs"] == 3
    assert merged.scorecard.cell["python"] == "3.11"
    text = [t for t, _ in terminal_lines(merged, 100)]
    assert text[:5] == [
        "spike upgrade",
        "numpy 1.24.4 -> 1.25.2  LOW  0 of 3 tests break",
        "numpy 1.24.4 -> 1.26.4  LOW  0 of 3 tests break",
        "numpy 1.24.4 -> 2.0.2  HIGH  1 of 3 tests break",
        "  high upgrade.breaks: 1 of 3 tests break on numpy 2.0.2: test_app.py::test_sum",
    ]
    assert "numpy: the suite passes on 1.26.4 (newest of the versions tried)" in text
    assert not any("no candidates" in line for line in text)
    md = render_markdown(merged)
    assert "the suite passes on 1.26.4" in md and "no candidates" not in md
    data = merged.to_dict()
    assert data["upgrades"][0]["newest_passing"] == "1.26.4"
    assert data["matrix"]["grids"] == []


def test_the_later_file_wins_a_target_both_hold(tmp_path: Path) -> None:
    first = job_file(tmp_path, "2.0.2", False, name="first")
    again = job_file(tmp_path, "2.0.2", True, name="rerun")
    merged = merge(load_all([first, job_file(tmp_path, "1.26.4", True), again])[0])
    (upgrade,) = merged.scorecard.upgrades
    assert [(t.version, t.passes) for t in upgrade.targets] == [("1.26.4", True), ("2.0.2", True)]
    assert upgrade.newest_passing == "2.0.2"
    (note,) = merged.notes
    assert note == f"{again}: upgrade numpy 1.24.4 -> 2.0.2 also in {first}; kept the later file"


def test_different_installed_versions_stay_separate_and_are_named(tmp_path: Path) -> None:
    files = [
        job_file(tmp_path, "2.0.2", True, current="1.24.4"),
        job_file(tmp_path, "2.0.2", False, current="1.26.4", name="newer-base", tests=4, python="3.12"),
    ]
    merged = merge(load_all(files)[0])
    old, new = merged.scorecard.upgrades
    assert (old.current, old.newest_passing) == ("1.24.4", "2.0.2")
    assert (new.current, new.newest_passing) == ("1.26.4", None)
    assert merged.notes == [
        "upgrade numpy: the jobs ran from 2 installed versions (1.24.4, 1.26.4), kept as separate upgrade results"
    ]
    text = "\n".join(t for t, _ in terminal_lines(merged, 120))
    assert "numpy 1.24.4 -> 2.0.2  LOW" in text and "numpy 1.26.4 -> 2.0.2  HIGH" in text
    assert merged.scorecard.cell["python"] == "3.11, 3.12"


def test_differing_baselines_and_requirements_are_said(tmp_path: Path) -> None:
    files = [
        job_file(tmp_path, "1.26.4", True, requirement="numpy==1.26.4"),
        job_file(tmp_path, "2.0.2", False, requirement="numpy==2.0.2", tests=5, python="3.12"),
    ]
    merged = merge(load_all(files)[0])
    (upgrade,) = merged.scorecard.upgrades
    assert upgrade.requirement == "numpy"  # pinned differently per job: the package they share
    assert merged.notes == [
        "upgrade numpy 1.24.4: the jobs' baselines differ (3 vs 5 tests): each target is compared "
        "with its own job's run",
        "upgrade numpy 1.24.4: the jobs ran on Python 3.11, 3.12",
    ]


def test_cells_and_upgrades_merge_side_by_side(tmp_path: Path) -> None:
    cells = [cell_file(tmp_path, python, "1.3.7", []) for python in ("3.11", "3.12")]
    files = [*cells, job_file(tmp_path, "2.0.2", False), job_file(tmp_path, "1.26.4", True)]
    merged = merge(load_all(files)[0])
    (grid,) = merged.grids
    assert set(grid.cells) == {("3.11", "1.3.7"), ("3.12", "1.3.7")}  # no "?" cell for the jobs
    assert [c.name for c in merged.scorecard.candidates] == ["nose"]
    assert merged.scorecard.upgrades[0].newest_passing == "1.26.4"
    text = "\n".join(t for t, _ in terminal_lines(merged, 100))
    assert "lowest risk: nose" in text and "numpy: the suite passes on 1.26.4" in text


def test_merge_cli_writes_upgrades_and_fails_on_a_breaking_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = [str(job_file(tmp_path, v, v != "2.0.2")) for v in ("1.26.4", "2.0.2")]
    out = tmp_path / "merged.json"
    assert cli.main(["merge", *files, "--json", str(out), "--md", str(tmp_path / "m.md")]) == 0
    printed = capsys.readouterr().out
    assert "numpy: the suite passes on 1.26.4 (newest of the versions tried)" in printed
    data = json.loads(out.read_text())
    assert [t["version"] for t in data["upgrades"][0]["targets"]] == ["1.26.4", "2.0.2"]
    assert cli.main(["merge", *files, "--fail-on", "high"]) == 1
    assert cli.main(["merge", files[0], "--fail-on", "high"]) == 0
    assert cli.main(["show", str(out)]) == 0  # the merged file reads back


def test_spike_merge_session_takes_the_upgrade_files_beside_the_cells(tmp_path: Path) -> None:
    """nox's ``spike_merge`` merges the plan's cells and upgrade-only files in the same folder,
    but not a left-over cell file of an earlier plan."""
    from pytest_spike.matrix.nox import report
    from pytest_spike.matrix.plan import Cell, MatrixPlan

    results = tmp_path / "results"
    results.mkdir()
    cell_file(results, "3.11", "1.3.7", [])
    cell_file(results, "3.12", "1.3.6", [])  # not in this plan
    for target, passes in (("1.26.4", True), ("2.0.2", False)):
        job = job_file(tmp_path, target, passes)
        (results / f"upgrade-numpy-{target}.json").write_text(job.read_text())
    plan = MatrixPlan("/r", ["."], [Cell("3.11", "nose", "nose", "1.3.7")])
    lines, clean = report(plan, results, tmp_path, Level.HIGH)
    assert not clean  # 2.0.2 breaks tests: reaches --fail-on high
    assert "numpy: the suite passes on 1.26.4 (newest of the versions tried)" in lines
    data = json.loads((tmp_path / "report.json").read_text())
    assert [c["python"] for c in data["matrix"]["grids"][0]["cells"]] == ["3.11"]
    assert [t["version"] for t in data["upgrades"][0]["targets"]] == ["1.26.4", "2.0.2"]
    assert report(plan, results, tmp_path, None)[1]  # clean without --fail-on
