"""Time boxes, budgets and cost, end to end."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pytest_spike.data.budgets import TimeboxExceeded, alarm


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

        # 4 s, not less: on a loaded machine writing 200 MB took 2.7 s (a budget of 2 s then
        # charged test_allocates too)
        pytestmark = spike.candidate("goodpkg", budget={"memory_mb": 50, "seconds": 4})

        def test_allocates():
            blob = bytearray(200 * 1024 * 1024)
            blob[::4096] = b"x" * len(blob[::4096])

        def test_slow():
            time.sleep(5)

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


# -- the time box shares the timer signal with pytest-timeout and any other alarm user -------------


class OuterRang(Exception):
    """Raised by the handler of a timer someone else set before the time box."""


@pytest.fixture
def outer_timer() -> Iterator[Callable[[float], None]]:
    """Arm ITIMER_REAL with a handler of our own, as pytest-timeout's signal method does."""
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        pytest.skip("the timer signal needs POSIX and the main thread")

    def ring(signum: int, frame: object) -> None:
        raise OuterRang

    previous = signal.signal(signal.SIGALRM, ring)

    def arm(seconds: float) -> None:
        signal.setitimer(signal.ITIMER_REAL, seconds)

    try:
        yield arm
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_the_time_box_leaves_a_later_timer_armed_with_its_handler(
    outer_timer: Callable[[float], None],
) -> None:
    handler = signal.getsignal(signal.SIGALRM)
    outer_timer(30)
    with pytest.raises(TimeboxExceeded, match="box"), alarm(0.2, "box") as usable:
        assert usable
        time.sleep(5)
    remaining, _ = signal.getitimer(signal.ITIMER_REAL)
    assert 25 < remaining <= 29.8
    assert signal.getsignal(signal.SIGALRM) is handler


def test_an_earlier_timer_still_rings_inside_the_time_box(outer_timer: Callable[[float], None]) -> None:
    handler = signal.getsignal(signal.SIGALRM)
    outer_timer(0.2)
    start = time.monotonic()
    with pytest.raises(OuterRang), alarm(30, "box"):
        time.sleep(5)
    assert time.monotonic() - start < 2
    assert signal.getitimer(signal.ITIMER_REAL)[0] == 0  # it rang: nothing left to restore
    assert signal.getsignal(signal.SIGALRM) is handler


def test_a_time_box_that_does_not_ring_restores_the_other_timer(outer_timer: Callable[[float], None]) -> None:
    handler = signal.getsignal(signal.SIGALRM)
    outer_timer(30)
    with alarm(10, "box"):
        time.sleep(0.1)
    assert 25 < signal.getitimer(signal.ITIMER_REAL)[0] <= 29.9
    assert signal.getsignal(signal.SIGALRM) is handler


def test_spike_keeps_pytest_timeout_working(pytester: pytest.Pytester, spike_site: Path) -> None:
    """A real pytest run with pytest-timeout's signal method, as pytest-timeout tests its own."""
    pytester.makepyfile(
        """
        import time
        from pytest_spike import spike

        @spike.candidate("goodpkg")
        def test_sleeps():
            time.sleep(3)
        """
    )
    result = pytester.runpytest_subprocess(
        "--timeout=1", "--timeout-method=signal", "--spike", "--spike-probes=none", "--spike-json=r.json"
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*Failed: Timeout*1.0s*"])


def test_the_time_box_works_under_pytest_timeout_and_hands_its_timer_back(
    pytester: pytest.Pytester, spike_site: Path
) -> None:
    """The box rings inside pytest-timeout's longer timer, and a box that didn't ring gives
    pytest-timeout its timer back: it still ends the hanging teardown after the call."""
    pytester.makepyfile(
        """
        import time
        import pytest
        from pytest_spike import spike

        @pytest.fixture
        def slow_teardown():
            yield
            time.sleep(30)

        @spike.candidate("goodpkg", timebox=1)
        def test_hangs():
            time.sleep(30)

        @spike.candidate("warnpkg", timebox=60)
        def test_quick_call(slow_teardown):
            time.sleep(0.1)
        """
    )
    result = pytester.runpytest_subprocess(
        "--timeout=4", "--timeout-method=signal", "--spike", "--spike-probes=none", "--spike-json=r.json"
    )
    result.assert_outcomes(failed=1, passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_quick_call*",
            "*Failed: Timeout*4.0s*",
            "*FAILURES*",
            "*goodpkg's time box of 1s ran out during this test*",
        ]
    )
    assert "timebox.exceeded" in {f["code"] for f in results(pytester)["goodpkg"]["findings"]}
    assert result.duration < 20
