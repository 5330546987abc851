"""spike_data through pytest: settings, failure evidence, profile notes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

DATA_TEST = """
from pytest_spike import spike

@spike.candidate("goodpkg")
@spike.real_data
def test_rows(spike_data):
    spike_data.profile("orders.csv")
    for row in spike_data.rows("orders.csv", n=10):
        with spike_data.record(row):
            assert int(row["qty"]) > 0, "qty must be positive"
"""


def write_orders(folder: Path) -> None:
    folder.mkdir()
    lines = ["id,qty,code"] + [f"{i},{1 if i != 4 else -2},{i % 3}" for i in range(1, 30)]
    (folder / "orders.csv").write_text("\n".join(lines) + "\n")


def test_failing_record_is_named_and_profile_notes_reported(
    pytester: pytest.Pytester, spike_site: Path
) -> None:
    write_orders(pytester.path / "data")
    pytester.makepyfile(DATA_TEST)
    result = pytester.runpytest("--spike", "--spike-data", "data", "--spike-json", "r.json")
    result.assert_outcomes(passed=2, failed=1)
    cand = json.loads((pytester.path / "r.json").read_text())["candidates"][0]
    finding = next(f for f in cand["findings"] if f["code"] == "real_data.failed")
    assert finding["severity"] == "high"
    assert "orders.csv line 5" in finding["message"]
    assert '"qty": "-2"' in finding["evidence"]["record"]
    assert any(note.startswith("orders.csv: ") and "integers only" in note for note in cand["notes"]), cand[
        "notes"
    ]


def test_data_folder_from_ini_relative_to_rootdir(
    pytester: pytest.Pytester, spike_site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_orders(pytester.path / "data")
    pytester.makeini("[pytest]\nspike_data = data\n")
    pytester.makepyfile(DATA_TEST.replace("> 0", ">= -5"))
    monkeypatch.chdir(pytester.mkdir("elsewhere"))  # the ini's path is from the rootdir, not the cwd
    result = pytester.runpytest("--spike", str(pytester.path))
    result.assert_outcomes(passed=3)


@pytest.mark.parametrize(
    "args, expected",
    [
        ([], "*spike_data needs a data folder: pass --spike-data DIR*"),
        (["--spike-data", "nowhere"], "*--spike-data: data folder */nowhere does not exist*"),
    ],
)
def test_missing_data_folder_is_a_clear_error(
    pytester: pytest.Pytester, spike_site: Path, args: list, expected: str
) -> None:
    pytester.makepyfile(DATA_TEST)
    result = pytester.runpytest("--spike", *args)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines([expected])
    result.stdout.no_fnmatch_line("*Traceback*")
