"""The report formats' registry: a format is one module plus one row, and every path reads the row."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pytest_spike import cli
from pytest_spike.model import Scorecard
from pytest_spike.report import formats
from pytest_spike.report.formats import FORMATS, FormatSpec, ReportFormat, write_reports
from pytest_spike.report.view import ReportView


class TextFormat:
    """A format of the test's own: each candidate and its level, one per line."""

    def render(self, view: ReportView) -> str:
        grids = f"grids: {len(view.grids)}\n" if view.merged else ""
        return grids + "".join(f"{c.name}: {c.level.value}\n" for c in view.scorecard.candidates)

    def note(self, view: ReportView) -> str | None:
        return "plain text only"


FORMAT = TextFormat()
TEXT = FormatSpec("txt", "text", f"{__name__}:FORMAT", "plain text")


def test_every_row_loads_a_format_and_is_offered_everywhere(pytester: pytest.Pytester) -> None:
    assert len({row.name for row in FORMATS}) == len({row.label for row in FORMATS}) == len(FORMATS)
    for row in FORMATS:
        fmt: ReportFormat = row.load()
        assert callable(fmt.render) and callable(fmt.note), row.name
        for argv in (["show", "r.json"], ["merge", "r.json"], ["run"]):
            args = cli.build_parser().parse_args([*argv, f"--{row.name}", "out"])
            assert getattr(args, row.name) == "out", (argv, row.name)
    help_text = pytester.runpytest("--help").stdout.str()
    assert all(f"--spike-{row.name}=PATH" in help_text for row in FORMATS)


def test_a_new_format_is_one_module_plus_one_row(
    pytester: pytest.Pytester,
    spike_site: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Adding a row is all it takes: the pytest option, the CLI flags and the writer follow."""
    monkeypatch.setattr(formats, "FORMATS", (*FORMATS, TEXT))
    result = pytester.runpytest("--spike", "--spike-candidate", "goodpkg", "--spike-txt", "out/card.txt")
    result.stdout.fnmatch_lines(["spike text: */out/card.txt (plain text only)"])
    assert (pytester.path / "out" / "card.txt").read_text() == "goodpkg: low\n"
    saved = pytester.path / "saved.json"
    pytester.runpytest("--spike", "--spike-candidate", "goodpkg", "--spike-json", str(saved))
    capsys.readouterr()
    assert cli.main(["show", str(saved), "--txt"]) == 0  # no OUT: printed instead of the scorecard
    captured = capsys.readouterr()
    assert captured.out == "goodpkg: low\n" and captured.err == "pytest-spike: note: plain text only\n"
    assert cli.main(["merge", str(saved), "--txt", str(pytester.path / "merged.txt")]) == 0
    assert (pytester.path / "merged.txt").read_text() == "grids: 1\ngoodpkg: low\n"


def test_write_reports_writes_the_others_when_one_fails(tmp_path: Path) -> None:
    view = ReportView(Scorecard(cell={}, candidates=[]))
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    done = write_reports(view, {"json": tmp_path / "r.json", "md": blocked / "r.md"})
    assert done.lines == [f"spike results: {tmp_path / 'r.json'}"]
    assert len(done.errors) == 1 and done.errors[0].startswith(
        f"spike markdown: cannot write {blocked / 'r.md'}: "
    )
    assert (tmp_path / "r.json").is_file()


def test_a_missing_extra_stops_the_command_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "jinja2", None)
    assert cli.main(["merge", str(tmp_path / "nothing.json"), "--html", str(tmp_path / "r.html")]) == 2
    assert capsys.readouterr().err == (
        "pytest-spike: error: the HTML report needs Jinja2: pip install 'pytest-spike[html]'\n"
    )
