"""Several candidates' probes side by side: run ahead by the session's prebuild, each once,
in their candidates' time boxes, and nothing of theirs left running."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest

from pytest_spike._core import hostfiles, runner
from pytest_spike.probes.base import ProbeMemo


def test_a_value_run_ahead_is_handed_out_once_then_computed_again() -> None:
    memo = ProbeMemo()
    calls: list[str] = []
    assert memo.ahead("k", lambda: calls.append("ahead") or "early") is True
    assert memo.ahead_started("k")
    assert memo.ahead("k", lambda: calls.append("twice") or "no") is False  # started already
    assert memo.take("k", lambda: calls.append("here") or "late") == "early"
    assert not memo.ahead_started("k")
    # taken: a re-run computes it again, and no head start is made for it any more
    assert memo.take("k", lambda: calls.append("here") or "late") == "late"
    assert memo.ahead("k", lambda: calls.append("after") or "no") is False
    assert calls == ["ahead", "here"]


def test_take_waits_for_the_value_under_way() -> None:
    memo = ProbeMemo()
    started, release = threading.Event(), threading.Event()

    def slow() -> str:
        started.set()
        release.wait(10)
        return "ahead"

    thread = threading.Thread(target=memo.ahead, args=("k", slow))
    thread.start()
    started.wait(10)
    threading.Timer(0.2, release.set).start()
    assert memo.take("k", lambda: "computed here") == "ahead"
    thread.join(10)


def test_what_raised_ahead_is_raised_again_where_it_is_taken() -> None:
    memo = ProbeMemo()

    def broken() -> str:
        raise ValueError("ahead")

    with pytest.raises(ValueError, match="ahead"):
        memo.ahead("k", broken)
    assert not memo.ahead_started("k")
    with pytest.raises(KeyError):
        memo.take("k", lambda: {}["here"])


def test_children_a_background_thread_started_are_killed_when_asked() -> None:
    results: list[runner.RunResult] = []
    thread = threading.Thread(target=lambda: results.append(runner.run(["sleep", "60"], timeout=120)))
    thread.start()
    deadline = time.monotonic() + 10
    while thread not in runner._RUNNING.values():
        assert time.monotonic() < deadline, "the child never started"
        time.sleep(0.02)
    assert runner.stop_started_by([threading.main_thread()]) == 0  # not the caller's
    assert runner.stop_started_by([thread]) == 1
    thread.join(10)
    assert not thread.is_alive()
    assert results[0].returncode == -9 and results[0].duration_s < 30


def _results(path: Path) -> dict[str, dict]:
    return {c["name"]: c for c in json.loads(path.read_text())["candidates"]}


def _taken(cand: dict, kind: str) -> datetime:
    probe = next(p for p in cand["probes"] if p["kind"] == kind)
    return datetime.fromisoformat(probe["taken"])


def test_a_later_candidates_probe_runs_while_an_earlier_one_hangs(
    pytester: pytest.Pytester, spike_site: Path
) -> None:
    # hangpkg's import hangs until the probe's 8 s limit; goodpkg's item comes after it,
    # but its probe ran beside it and was done long before.
    result = pytester.runpytest(
        "--spike", "--spike-candidate", "hangpkg", "--spike-candidate", "goodpkg", "--spike-probes", "import",
        "--spike-probe-timeout", "8", "--spike-json", "r.json", "-p", "no:randomly",
    )  # fmt: skip
    cands = _results(pytester.path / "r.json")
    assert "import.timeout" in {f["code"] for f in cands["hangpkg"]["findings"]}
    assert "import.failed" not in {f["code"] for f in cands["goodpkg"]["findings"]}
    assert _taken(cands["goodpkg"], "import") < _taken(cands["hangpkg"], "import")
    # its time is the probe's own, not the wait behind hangpkg's
    good = next(p for p in cands["goodpkg"]["probes"] if p["kind"] == "import")
    assert 0.02 < good["duration_s"] < 8  # a Python start and an import, not a wait of 0.0002 s
    result.assert_outcomes(failed=1, passed=1)


def test_a_probe_run_ahead_costs_its_candidates_time_box(pytester: pytest.Pytester, spike_site: Path) -> None:
    result = pytester.runpytest(
        "--spike", "--spike-candidate", "goodpkg", "--spike-candidate", "hangpkg", "--spike-probes", "import,licence",
        "--spike-timebox", "4", "--spike-json", "r.json", "-p", "no:randomly", "-rs",
    )  # fmt: skip
    hang = _results(pytester.path / "r.json")["hangpkg"]
    probes = {p["kind"]: p for p in hang["probes"]}
    assert probes["import"]["details"].get("timebox") is True  # cut by the box, not by the probe's limit
    assert "timebox.exceeded" in {f["code"] for f in hang["findings"]}
    # licence ran beside the hanging import (started while the box had time), or its item
    # found the box used up
    if probes["licence"]["outcome"] == "skipped":
        result.stdout.fnmatch_lines(["*hangpkg's time box of 4s is used up*"])
    else:
        assert probes["licence"]["outcome"] == "passed"
    assert result.duration < 60
    good = _results(pytester.path / "r.json")["goodpkg"]
    assert {p["outcome"] for p in good["probes"]} == {"passed"}


def _running_in(*prefixes: str) -> list[int]:
    """Processes whose working folder's path begins with one of ``prefixes``."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.readlink(f"/proc/{pid}/cwd").startswith(prefixes):
                found.append(int(pid))
        except OSError:
            continue
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_an_interrupt_leaves_no_probe_running_ahead(spike_site: Path, tmp_path: Path) -> None:
    # Ctrl-C while hangpkg's import is waited for: its probe was run ahead, by a background
    # thread, in a session of its own (unboxed: no bubblewrap to die with us); it must not
    # outlive the run.
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    argv = [
        sys.executable, "-m", "pytest", "-v", "-p", "no:randomly", "-p", "no:cacheprovider", "--spike",
        "--spike-candidate", "goodpkg", "--spike-candidate", "hangpkg", "--spike-probes", "import",
        "--spike-json", "r.json", "--spike-sandbox", "off", f"--spike-cache-dir={tmp_path / 'cache'}",
        "--spike-index-url=http://127.0.0.1:9/simple/",
    ]  # fmt: skip
    env = dict(os.environ, PIP_CONFIG_FILE=os.devnull, TMPDIR=str(scratch))
    seen = bytearray()
    with subprocess.Popen(
        argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    ) as proc:
        assert proc.stdout is not None
        # The probes' working folder: the run's work folder, in the scratch tmpfs or TMPDIR.
        work = [
            f"{folder}/{hostfiles.WORK_PREFIX}{proc.pid}-"
            for folder in (scratch, hostfiles.scratch(1) or scratch)
        ]
        while b"spike::hangpkg::import" not in seen:
            chunk = os.read(proc.stdout.fileno(), 4096)
            assert chunk, seen.decode()
            seen += chunk
        deadline = time.monotonic() + 30
        while not _running_in(*work):  # hangpkg's import child, started ahead
            assert time.monotonic() < deadline, seen.decode()
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, (seen + rest).decode()
    deadline = time.monotonic() + 5
    while _running_in(*work):
        assert time.monotonic() < deadline, f"left running: {_running_in(*work)}"
        time.sleep(0.05)


def test_probes_run_ahead_start_with_the_heaviest_kinds_then_keep_the_items_order() -> None:
    from pytest_spike.model import Candidate
    from pytest_spike.session.prebuild import Prebuild

    first, second = Candidate("first"), Candidate("second")
    kinds = ["install", "import", "readme", "upstream", "licence"]
    prebuild = Prebuild(lambda c: None, kinds, ahead={"first": kinds, "second": kinds})  # type: ignore[arg-type, return-value]
    prebuild._order = {"first": 0, "second": 1}
    prebuild._readying = 2
    prebuild._queue_probes(second, set(kinds) - {"upstream"})  # upstream's evidence is kept
    prebuild._queue_probes(first, set(kinds))
    drained = []
    while (job := prebuild._next()) is not None:
        assert isinstance(job, tuple)
        drained.append((job[0].name, job[1]))
        prebuild._running -= 1  # ended: its slot is free again
    # upstream (sdist, harness environment, pytest) before README examples, then the rest
    assert drained == [
        ("first", "upstream"), ("first", "readme"), ("second", "readme"),
        ("first", "install"), ("first", "import"), ("first", "licence"),
        ("second", "install"), ("second", "import"), ("second", "licence"),
    ]  # fmt: skip


def test_a_probe_is_taken_from_the_queue_when_a_slot_is_free_so_the_heaviest_waiting_runs_next() -> None:
    from pytest_spike.model import Candidate
    from pytest_spike.session.prebuild import Prebuild

    first, second = Candidate("first"), Candidate("second")
    kinds = ["readme", "upstream"]
    prebuild = Prebuild(lambda c: None, kinds, ahead={"first": kinds, "second": kinds})  # type: ignore[arg-type, return-value]
    prebuild._order = {"first": 0, "second": 1}
    prebuild._slots = 1
    prebuild._readying = 2
    prebuild._queue_probes(first, {"readme"})
    running = prebuild._next()
    assert isinstance(running, tuple) and (running[0].name, running[1]) == ("first", "readme")
    taken: list[object] = []
    waiting = threading.Thread(target=lambda: taken.append(prebuild._next()), daemon=True)
    waiting.start()
    waiting.join(0.2)
    assert waiting.is_alive() and not taken  # the only slot is taken
    # second gets ready meanwhile: its upstream, the heavier, is queued behind nothing
    prebuild._queue_probes(second, {"readme", "upstream"})
    waiting.join(0.2)
    assert waiting.is_alive() and not taken  # still no slot
    with prebuild._changed:  # first's README examples end
        prebuild._running -= 1
        prebuild._changed.notify_all()
    waiting.join(10)
    [job] = taken
    assert isinstance(job, tuple) and (job[0].name, job[1]) == ("second", "upstream")


def test_no_probe_starts_ahead_once_its_candidates_time_box_is_used_up() -> None:
    from pytest_spike.model import Candidate
    from pytest_spike.session.prebuild import Prebuild

    asked: list[str] = []
    prebuild = Prebuild(
        lambda c: asked.append(c.name),  # type: ignore[arg-type, func-returns-value]
        ["import"],
        ahead={"late": ["import"]},
        remaining=lambda c: 0.0,
    )
    prebuild._run_ahead(Candidate("late"), "import")
    assert asked == []  # not even a context made for it: its item skips it for the time box
