"""Time boxes, budgets and cost, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def results(pytester: pytest.Pytester) -> dict:
    return {c["name"]: c for c in json.loads((pytester.path / "r.json").read_text())["candidates"]}


def test_timebox_cuts_a_hanging_test_and_lists_what_did_not_run(
    pytester: pytest.Pytester, spike_site: Path
) -> None:
    pytester.makepyfile(
        """
        import time
        from pytest_spike import spike

        pytestmark = spike.candidate("goodpkg", timebox=2)

        def test_hangs():
            time.sleep(60)

        def test_after():
            pass
        """
    )
    # Only the user's tests, so the built-in probes' time on a loaded machine doesn't count.
    result = pytester.runpytest("--spike", "--spike-probes", "none", "--spike-json=r.json")
    good = results(pytester)["goodpkg"]
    boxed = next(f for f in good["findings"] if f["code"] == "timebox.exceeded")
    assert boxed["severity"] == "high"
    assert "test_hangs" in boxed["message"] and "test_after" in boxed["message"]
    assert "custom.failed" not in {f["code"] for f in good["findings"]}
    outcomes = {p["nodeid"].split("::")[-1]: p["outcome"] for p in good["probes"]}
    assert outcomes["test_hangs"] == "failed" and outcomes["test_after"] == "skipped"
    result.stdout.fnmatch_lines(["*goodpkg's time box of 2s ran out during this test*"])
    assert result.duration < 30


def test_timebox_from_the_command_line_and_the_mark_wins(pytester: pytest.Pytester, spike_site: Path) -> None:
    pytester.makepyfile(
        """
        import time
        from pytest_spike import spike

        @spike.candidate("goodpkg", timebox="1m")
        def test_short():
            time.sleep(1.5)
        """
    )
    pytester.runpytest("--spike", "--spike-timebox", "1", "--spike-json=r.json")
    assert "timebox.exceeded" not in {f["code"] for f in results(pytester)["goodpkg"]["findings"]}


def test_memory_and_time_budgets(pytester: pytest.Pytester, spike_site: Path) -> None:
    pytester.makepyfile(
        """
        import time
        from pytest_spike import spike

        pytestmark = spike.candidate("goodpkg", budget={"memory_mb": 50, "seconds": 2})

        def test_allocates():
            blob = bytearray(200 * 1024 * 1024)
            blob[::4096] = b"x" * len(blob[::4096])

        def test_slow():
            time.sleep(2.5)

        def test_small():
            pass
        """
    )
    pytester.runpytest("--spike", "--spike-probes", "none", "--spike-json=r.json")
    findings = results(pytester)["goodpkg"]["findings"]
    memory = [f for f in findings if f["code"] == "budget.memory"]
    assert len(memory) == 1 and "test_allocates" in memory[0]["message"]
    assert float(memory[0]["evidence"]["measured_mb"]) > 150
    seconds = [f for f in findings if f["code"] == "budget.seconds"]
    assert [f["evidence"]["nodeid"].split("::")[-1] for f in seconds] == ["test_slow"]
    assert all(f["severity"] == "medium" for f in memory + seconds)


def test_bad_budget_is_a_collection_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        "from pytest_spike import spike\n\n"
        "@spike.candidate('goodpkg', budget={'memroy_mb': 5})\ndef test_it():\n    pass\n"
    )
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(["*budget has an unknown key 'memroy_mb' (did you mean 'memory_mb'?)*"])


def test_cost_per_hour(pytester: pytest.Pytester, spike_site: Path) -> None:
    pytester.makeini("[pytest]\nspike_cost_per_hour = 2.5 EUR\n")
    result = pytester.runpytest("--spike", "--spike-candidate", "goodpkg", "--spike-json=r.json")
    cost = results(pytester)["goodpkg"]["cost"]
    assert cost["per_hour"] == 2.5 and cost["currency"] == "EUR"
    assert cost["amount"] == pytest.approx(2.5 * cost["seconds"] / 3600, rel=0.01)
    result.stdout.fnmatch_lines(["  cost: 0.0* EUR for *s of compute at 2.50 EUR/h"])
    override = pytester.runpytest(
        "--spike", "--spike-candidate", "goodpkg", "--spike-cost-per-hour", "$10", "--spike-json=r.json"
    )
    assert results(pytester)["goodpkg"]["cost"]["currency"] == "$"
    override.stdout.fnmatch_lines(["  cost: $0.0* for *s of compute at $10.00/h"])
    bad = pytester.runpytest("--spike", "--spike-cost-per-hour", "lots")
    bad.stderr.fnmatch_lines(["*--spike-cost-per-hour: 'lots' is not a rate per hour*"])
