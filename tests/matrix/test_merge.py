"""Merging cell results: grids, python_gap findings, refused files, exit statuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_spike import cli
from pytest_spike.matrix import cells
from pytest_spike.matrix.merge import load_all, merge
from pytest_spike.matrix.plan import Cell
from pytest_spike.model import (
    Candidate,
    CandidateResult,
    Finding,
    Level,
    ProbeResult,
    Scorecard,
    Severity,
)
from pytest_spike.report.grids import terminal_lines
from pytest_spike.report.markdown import render_view as render_markdown
from pytest_spike.report.schema import dumps
from pytest_spike.scoring import Weights, level_for, score

IMP = "import nose failed: ModuleNotFoundError: No module named 'imp'"


def cell_file(folder: Path, python: str, version: str, findings: list[Finding]) -> Path:
    cid = f"py{python}-nose-{version}"
    broken = any(f.severity is Severity.CRITICAL for f in findings)
    probes = [
        ProbeResult(
            "nose",
            "import",
            "spike::nose::import",
            outcome="failed" if broken else "passed",
            findings=list(findings),
        )
    ]
    result = CandidateResult(Candidate("nose"), version=version, probes=probes)
    result.scored = score([(f, "spike::nose::import") for f in findings], Weights().points)
    result.score = sum(s.points for s in result.scored)
    result.level = level_for(result.score, result.findings)
    card = Scorecard(cell={"id": cid, "python": f"{python}.1", "python_short": python}, candidates=[result])
    path = folder / f"{cid}.json"
    path.write_text(dumps(card))
    return path


@pytest.fixture
def grid_files(tmp_path: Path) -> list[Path]:
    files = []
    broke = Finding("import.failed", Severity.CRITICAL, IMP)
    stale = Finding("signals.stale", Severity.MEDIUM, "last release 9 years ago")
    for python in ("3.9", "3.11", "3.12", "3.13"):
        for version in ("1.3.6", "1.3.7"):
            bad = [broke] if python in ("3.12", "3.13") else []
            files.append(cell_file(tmp_path, python, version, bad + [stale]))
    skipped = Cell("3.14", "nose", "nose", "1.3.7", "skipped", "no Python 3.14 interpreter found")
    files.append(
        cells.write(cells.skipped_scorecard(skipped, skipped.reason), tmp_path / f"{skipped.id}.json")
    )
    return files


def test_python_gap_grid_and_overall_level(grid_files: list[Path]) -> None:
    loaded, refused = load_all(grid_files)
    merged = merge(loaded, refused=refused)
    (grid,) = merged.grids
    assert grid.pythons == ["3.9", "3.11", "3.12", "3.13", "3.14"]
    assert grid.cells[("3.12", "1.3.7")].state == "blocked"
    assert grid.cells[("3.11", "1.3.6")].state == "medium"
    assert grid.cells[("3.14", "1.3.7")].state == "skipped"
    (cand,) = merged.scorecard.candidates
    codes = {s.finding.code: s for s in cand.scored}
    gap = codes["matrix.python_gap"].finding
    assert gap.message == f"fails on 3.12 and 3.13: {IMP}"
    assert gap.evidence["code"] == "import.failed"
    assert codes["signals.stale"].points == 10  # held everywhere: kept as it is
    assert "no Python 3.14" in codes["matrix.skipped"].finding.message
    assert cand.level is Level.BLOCKED
    probe = {p.nodeid: p for p in cand.probes}["spike::nose::import"]
    assert probe.outcome == "failed on 4/8 cells"
    text = "\n".join(t for t, _ in terminal_lines(merged, 100))
    assert "nose     3.9     3.11    3.12     3.13     3.14" in text
    assert "  1.3.7  MEDIUM  MEDIUM  BLOCKED  BLOCKED  skipped" in text
    md = render_markdown(merged)
    assert "| 1.3.6 | **MEDIUM** | **MEDIUM** | **BLOCKED** | **BLOCKED** | - |" in md
    assert "`matrix.python_gap`" in md


def test_version_gap_and_install_failed_cell(tmp_path: Path) -> None:
    warn = Finding("import.deprecation", Severity.MEDIUM, "DeprecationWarning: old API")
    files = [
        cell_file(tmp_path, p, v, [warn] if v == "1.0" else [])
        for p in ("3.11", "3.12")
        for v in ("1.0", "2.0")
    ]
    bad = Cell("3.13", "nose", "nose", "2.0")
    files.append(
        cells.write(
            cells.install_failed_scorecard(
                bad, "  × No solution found when resolving dependencies:\n  ╰─▶ Because nose==2.0 ..."
            ),
            tmp_path / f"{bad.id}.json",
        )
    )
    merged = merge(load_all(files)[0])
    codes = {s.finding.code: s.finding for s in merged.scorecard.candidates[0].scored}
    assert codes["matrix.version_gap"].message == "holds on 1.0: DeprecationWarning: old API"
    install = codes["matrix.python_gap"]  # 3.13 ran only 2.0, and only there it broke
    assert install.evidence["code"] == "install.failed"
    assert install.message.startswith("fails on 3.13: nose==2.0 does not install on Python 3.13: ")
    assert merged.grids[0].cells[("3.13", "2.0")].state == "install_failed"


def test_merge_cli_refuses_bad_files_one_by_one(
    grid_files: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    truncated = tmp_path / "truncated.json"
    truncated.write_text(grid_files[0].read_text()[:80])
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"schema": "pytest-spike/99", "candidates": []}))
    garbage = tmp_path / "garbage.json"
    garbage.write_text("<html>not json</html>")
    out_json, out_md = tmp_path / "m.json", tmp_path / "m.md"
    argv = [
        "merge",
        *map(str, grid_files),
        str(truncated),
        str(other),
        str(garbage),
        "--json",
        str(out_json),
        "--md",
        str(out_md),
    ]
    assert cli.main(argv) == 3
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3
    assert all(line.startswith("pytest-spike merge: refused ") for line in err)
    assert "truncated.json: not a JSON results file" in err[0]
    assert "'pytest-spike/99' is not 'pytest-spike/1'" in err[1]
    data = json.loads(out_json.read_text())
    assert data["candidates"][0]["level"] == "blocked"
    assert len(data["matrix"]["refused"]) == 3
    assert cli.main(["show", str(out_json)]) == 0  # the merged file reads like a single run's
    assert cli.main(["merge", str(garbage)]) == 2


def test_merge_cli_exit_status_without_refusals(grid_files: list[Path]) -> None:
    assert cli.main(["merge", *map(str, grid_files)]) == 0
    assert cli.main(["merge", *map(str, grid_files), "--fail-on", "high"]) == 1


def test_expected_cell_without_results_is_missing(grid_files: list[Path], tmp_path: Path) -> None:
    expected = [Cell("3.10", "nose", "nose", "1.3.7")]
    merged = merge(load_all(grid_files)[0], expected=expected)
    assert merged.grids[0].cells[("3.10", "1.3.7")].state == "missing"
    codes = {s.finding.code for s in merged.scorecard.candidates[0].scored}
    assert "matrix.cell_missing" in codes


def test_a_replaced_skipped_cell_leaves_nothing_behind(grid_files: list[Path], tmp_path: Path) -> None:
    """The 3.14 cell was skipped, then re-run into a later file: only the later file counts."""
    rerun = tmp_path / "rerun"
    rerun.mkdir()
    later = cell_file(rerun, "3.14", "1.3.7", [])
    merged = merge(load_all([*grid_files, later])[0])
    (note,) = merged.notes
    assert note.endswith("kept the later file") and "py3.14-nose-1.3.7" in note
    assert merged.grids[0].cells[("3.14", "1.3.7")].state == "low"
    codes = {s.finding.code for s in merged.scorecard.candidates[0].scored}
    assert "matrix.skipped" not in codes
    assert merged.scorecard.cell["cells"] == "9"


def test_a_replaced_run_cell_leaves_nothing_behind(tmp_path: Path) -> None:
    """A cell ran with a finding, then a later file says it was skipped: no finding, no run."""
    warn = Finding("import.deprecation", Severity.MEDIUM, "DeprecationWarning: old API")
    ran = [cell_file(tmp_path, p, "1.0", [warn] if p == "3.12" else []) for p in ("3.11", "3.12")]
    again = Cell("3.12", "nose", "nose", "1.0", "skipped", "no Python 3.12 interpreter found")
    later = cells.write(cells.skipped_scorecard(again, again.reason), tmp_path / "later" / f"{again.id}.json")
    merged = merge(load_all([*ran, later])[0])
    assert merged.notes[0].endswith("kept the later file")
    assert merged.grids[0].cells[("3.12", "1.0")].state == "skipped"
    (cand,) = merged.scorecard.candidates
    assert {s.finding.code for s in cand.scored} == {"matrix.skipped"}
    assert [p.outcome for p in cand.probes] == ["passed"]


def test_a_waived_finding_stays_waived_in_the_merge(tmp_path: Path) -> None:
    """A waiver the cells applied holds in the merged card too: no points, nothing blocked."""
    from pytest_spike.waivers import parse_waivers

    (waiver,) = parse_waivers(["nose import.failed until 2999-12-31: known, we run 3.9 only"], "ini")
    broke = Finding("import.failed", Severity.CRITICAL, IMP)
    files = []
    for python, findings in (("3.9", []), ("3.12", [broke])):
        cid = f"py{python}-nose-1.3.7"
        probes = [ProbeResult("nose", "import", "spike::nose::import", findings=findings)]
        result = CandidateResult(Candidate("nose"), version="1.3.7", probes=probes)
        result.scored = score(
            [(f, "spike::nose::import") for f in findings], Weights().points, lambda f: waiver
        )
        result.score = sum(s.points for s in result.scored)
        card = Scorecard(
            cell={"id": cid, "python": f"{python}.1", "python_short": python}, candidates=[result]
        )
        files.append(tmp_path / f"{cid}.json")
        files[-1].write_text(dumps(card))
    loaded, refused = load_all(files)
    (cand,) = merge(loaded, refused=refused).scorecard.candidates
    (gap,) = [s for s in cand.scored if s.finding.code == "matrix.python_gap"]
    assert gap.points == 0 and gap.waived, gap
    assert cand.level.value == "low", [(s.finding.code, s.points, s.waiver) for s in cand.scored]


def test_a_probe_unknown_in_every_cell_stays_unknown_after_the_merge(tmp_path: Path) -> None:
    """Four cells, each with upstream unknown (3 of 4 kinds with evidence): the merge says 3/4 and
    why, in the JSON, the terminal and the HTML bar, never full evidence."""
    folder = tmp_path / "cells"
    folder.mkdir()
    why = "the sdist ships no tests"
    for python in ("3.11", "3.12"):
        for version in ("1.0", "1.1"):
            cid = f"py{python}-nose-{version}"
            probes = [
                ProbeResult("nose", "install", "spike::nose::install"),
                ProbeResult("nose", "import", "spike::nose::import"),
                ProbeResult("nose", "signals", "spike::nose::signals"),
                ProbeResult(
                    "nose", "upstream", "spike::nose::upstream", outcome="skipped", details={"unknown": why}
                ),
            ]
            result = CandidateResult(Candidate("nose"), version=version, probes=probes)
            assert result.evidence["probes_with_evidence"] == 3
            card = Scorecard(
                cell={"id": cid, "python": f"{python}.1", "python_short": python}, candidates=[result]
            )
            (folder / f"{cid}.json").write_text(dumps(card))
    out = tmp_path / "merged"
    assert cli.main(["merge", str(folder), "--json", f"{out}.json", "--html", f"{out}.html"]) == 0
    (merged,) = json.loads((tmp_path / "merged.json").read_text())["candidates"]
    assert merged["evidence"] == {
        "probes_with_evidence": 3,
        "probes": 4,
        "unknown": ["upstream"],
        "why": {"upstream": why},
    }
    (upstream,) = [p for p in merged["probes"] if p["kind"] == "upstream"]
    assert upstream["outcome"] == "skipped"
    page = (tmp_path / "merged.html").read_text()
    assert '<span class="meter partial"><span style="width: 75%"></span></span>' in page
    assert "evidence from 3 of 4 probe kinds" in page and "<b>upstream</b> (the sdist ships no tests)" in page


def test_a_file_that_is_not_utf8_is_refused_with_one_line(
    grid_files: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A non-UTF-8 file: show and merge say so in one line naming it; merge still merges the rest."""
    latin = tmp_path / "latin1.json"
    latin.write_bytes('{"note": "caf\u00e9"}'.encode("latin-1"))
    assert cli.main(["show", str(latin)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"pytest-spike: error: {latin}: not a JSON results file (not UTF-8 text: byte 0xe9 at offset 13)"
    ]
    out = tmp_path / "m.json"
    assert cli.main(["merge", *map(str, grid_files), str(latin), "--json", str(out)]) == 3
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"pytest-spike merge: refused {latin}: not a JSON results file (not UTF-8 text: byte 0xe9 at offset 13)"
    ]
    data = json.loads(out.read_text())
    assert data["matrix"]["refused"] and len(data["matrix"]["grids"][0]["cells"]) == len(grid_files)


def test_a_broken_cell_fails_the_merge_as_it_fails_run_and_nox(
    grid_files: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One verdict (matrix/finish.py): a cell whose run broke (ERROR) exits 3, as run and nox
    fail on it, even when no candidate reaches --fail-on (merge exited 0 before)."""
    broke = tmp_path / "broke" / "py3.10-nose-1.3.7.json"
    broke.parent.mkdir()
    cell = Cell("3.10", "nose", "nose", "1.3.7")
    cells.write(
        cells.error_scorecard(cell, "pytest left no usable results file", "Fatal Python error"), broke
    )
    clean = [f for f in grid_files if "3.12" not in f.name and "3.13" not in f.name]
    assert cli.main(["merge", *map(str, clean)]) == 0
    assert cli.main(["merge", *map(str, clean), str(broke), "--fail-on", "blocked"]) == 3
    assert "ERROR" in capsys.readouterr().out


def test_show_of_a_merged_file_builds_the_merge_s_reports(grid_files: list[Path], tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    """One report view: show of merge's JSON writes the same Markdown and JSON as merge did, and
    prints the same grids and scorecard."""
    md, js = tmp_path / "m.md", tmp_path / "m.json"
    assert cli.main(["merge", *map(str, grid_files), "--md", str(md), "--json", str(js)]) == 0
    merged_out = capsys.readouterr().out
    assert (
        cli.main(["show", str(js), "--md", str(tmp_path / "s.md"), "--json", str(tmp_path / "s.json")]) == 0
    )
    assert capsys.readouterr().out == merged_out
    assert (tmp_path / "s.md").read_text() == md.read_text()
    assert json.loads((tmp_path / "s.json").read_text()) == json.loads(js.read_text())
    assert cli.main(["show", str(js), "--md"]) == 0  # no OUT: printed instead of the scorecard
    assert capsys.readouterr().out == md.read_text()
    assert cli.main(["merge", *map(str, grid_files), "--md"]) == 0  # and so by merge
    assert capsys.readouterr().out == md.read_text()


def test_licence_findings_are_merged_per_cell_and_per_distribution(tmp_path: Path) -> None:
    """A Python version can pull a different closure: on 3.9 a backport brings a GPL
    dependency the 3.12 closure lacks; an AGPL one is in both. Each denied distribution stays
    a finding of its own, and the one only 3.9 brings says so."""

    def denied(path: str, licence: str) -> Finding:
        name = path.split(" -> ")[-1]
        return Finding(
            "licence.denied",
            Severity.HIGH,
            f"{path}: {name} 1.0 is {licence} (deny: *GPL-*)",
            {"distribution": name, "licence": licence, "path": path, "rule": "deny: *GPL-*"},
        )

    agpl = denied("nose -> agpldep", "AGPL-3.0-only")
    gpl = denied("nose -> backport -> gpldep", "GPL-3.0-only")
    files = [
        cell_file(tmp_path, "3.9", "1.3.7", [agpl, gpl]),
        cell_file(tmp_path, "3.12", "1.3.7", [agpl]),
    ]
    merged = merge(load_all(files)[0])
    (cand,) = merged.scorecard.candidates
    found = [
        (s.finding.code, s.finding.evidence.get("distribution") or s.finding.evidence.get("code"))
        for s in cand.scored
    ]
    assert sorted(found) == [("licence.denied", "agpldep"), ("matrix.python_gap", "licence.denied")]
    gap = next(s for s in cand.scored if s.finding.code == "matrix.python_gap")
    assert gap.finding.message == f"fails on 3.9: {gpl.message}"
    assert gap.points == 30
    assert cand.score == 60  # both denied distributions count, as they did in the 3.9 cell


def test_the_merged_card_says_where_the_cells_ran_candidate_code(grid_files: list[Path]) -> None:
    loaded, refused = load_all(grid_files)
    assert merge(loaded, refused=refused).scorecard.settings == {}  # cells that said nothing
    boxed, off = "sandboxed (bubblewrap)", "not sandboxed: --spike-sandbox off; candidate code ran as you"
    for path, said in zip(grid_files[:8], [boxed] * 6 + [off] * 2):
        data = json.loads(path.read_text())
        data["settings"] = {"sandbox": said}
        path.write_text(json.dumps(data))
    loaded, refused = load_all(grid_files)
    merged = merge(loaded, refused=refused)
    said = merged.scorecard.settings["sandbox"]
    assert said == "not sandboxed in 2 of 8 cells: --spike-sandbox off; candidate code ran as you"
    text = "\n".join(t for t, _ in terminal_lines(merged, 100))
    assert f"candidate code: {said}" in text
    assert f"candidate code: {said}" in render_markdown(merged)
