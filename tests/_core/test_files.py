"""The atomic writer: whole files only, with the modes any other tool would give them."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_spike._core.files import write_atomic


@pytest.fixture
def umask() -> Iterator[int]:
    """A umask other than the usual 022, put back afterwards."""
    before = os.umask(0o027)
    try:
        yield 0o027
    finally:
        os.umask(before)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_file_gets_the_umask_mode(tmp_path: Path, umask: int) -> None:
    target = tmp_path / "deep" / "r.json"
    write_atomic(target, "{}\n")
    assert target.read_text() == "{}\n"
    assert mode(target) == 0o666 & ~umask == 0o640
    assert [p.name for p in target.parent.iterdir()] == ["r.json"]  # no temporary left


def test_a_replaced_file_keeps_its_mode(tmp_path: Path, umask: int) -> None:
    target = tmp_path / "r.json"
    target.write_text("old")
    target.chmod(0o604)
    write_atomic(target, "new")
    assert target.read_text() == "new" and mode(target) == 0o604


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "r.json"
    target.write_text("old")
    with pytest.raises(UnicodeEncodeError):
        write_atomic(target, "\udcff")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_results_markdown_and_plan_files_honour_the_umask(
    pytester: pytest.Pytester, spike_site: Path, umask: int
) -> None:
    pytester.makepyfile(
        "from pytest_spike import spike\n\n@spike.candidate('goodpkg')\ndef test_it():\n    pass\n"
    )
    pytester.runpytest("--spike", "--spike-probes=none", "--spike-json=r.json", "--spike-md=r.md")
    pytester.runpytest("--spike", "--collect-only", "--spike-plan=plan.json")
    for name in ("r.json", "r.md", "plan.json"):
        assert mode(pytester.path / name) == 0o640, name


def test_lines_a_child_wrote_never_make_the_reader_raise(tmp_path: Path) -> None:
    from pytest_spike._core import witness
    from pytest_spike._core.files import json_objects
    from pytest_spike.upgrade.run import _crashed_run

    lines = ['@{"a": 1}', "@5", '@{"cut', "noise", '@["x"]', '@{"b": 2}']
    assert list(json_objects(lines, "@")) == [{"a": 1}, {"b": 2}]
    # A forged count that is not a number is no announcement, not a crash of the host.
    forged = witness.MARK + '{"collected": "many"}\n' + witness.MARK + '{"collected": 2}\n'
    seen = witness.read_seen(forged)
    assert seen is not None and seen.collected == 2
    # A crashed upgrade child's progress file holding a bare number: skipped like a cut line.
    progress = tmp_path / "progress.jsonl"
    progress.write_text('5\n{"start": "t::a"}\n', encoding="utf-8")
    run, crashed = _crashed_run(progress, ["t::a", "t::b"], "died of SIGKILL")
    assert crashed == "t::a" and run.outcomes == {"t::a": "error"}
