"""Windows and macOS paths, run for real on Linux by taking the POSIX-only features away.

The time box without a timer signal (a watchdog thread), the runner without process groups
and ``wait4`` (a new process group, a tree kill by ``taskkill``), and no module that needs a
POSIX-only module at import time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pytest_spike._core import runner
from pytest_spike.data.budgets import TimeboxExceeded, alarm


def busy(seconds: float) -> None:
    """Python code that runs for ``seconds`` (an async exception lands between its bytecodes)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


@pytest.fixture
def no_timer(monkeypatch: pytest.MonkeyPatch) -> None:
    """This interpreter without ``setitimer``, as on Windows."""
    monkeypatch.delattr(signal, "setitimer", raising=False)


def test_without_a_timer_signal_the_watchdog_stops_python_code(no_timer: None) -> None:
    start = time.monotonic()
    with pytest.raises(TimeboxExceeded, match="^box ran out$"), alarm(0.2, "box ran out") as usable:
        assert usable
        busy(10)
    assert 0.15 < time.monotonic() - start < 3


def test_the_watchdog_works_off_the_main_thread_too() -> None:
    caught: list[BaseException] = []

    def body() -> None:
        try:
            with alarm(0.2, "box in a thread") as usable:
                assert usable  # no timer signal off the main thread: the watchdog
                busy(10)
        except TimeboxExceeded as exc:
            caught.append(exc)

    thread = threading.Thread(target=body)
    thread.start()
    thread.join(timeout=10)
    assert [str(e) for e in caught] == ["box in a thread"]


def test_a_box_that_ends_in_time_never_raises_later(no_timer: None) -> None:
    with alarm(0.2, "box") as usable:
        assert usable
        busy(0.05)
    busy(0.5)  # past the deadline: nothing is pending


def test_the_watchdog_cannot_cut_a_blocking_call_only_what_follows(no_timer: None) -> None:
    """The documented limit: ``time.sleep`` blocks in C; the exception comes when it returns."""
    start = time.monotonic()
    with pytest.raises(TimeboxExceeded), alarm(0.1, "box"):
        time.sleep(0.8)
        busy(10)
    assert 0.75 < time.monotonic() - start < 3


def test_the_watchdog_stops_a_wait_on_a_child_and_the_child_dies(no_timer: None, tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    code = "import os, sys, time\nopen(sys.argv[1], 'w').write(str(os.getpid()))\ntime.sleep(60)\n"
    start = time.monotonic()
    with pytest.raises(TimeboxExceeded), alarm(1.0, "box"):
        runner.run([sys.executable, "-c", code, str(pidfile)], timeout=30)
    assert time.monotonic() - start < 5
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"child {pid} outlived the time box")


@pytest.fixture
def windows_runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The runner's Windows path: no ``wait4``, a new process group, a tree kill by a fake
    ``taskkill`` that logs its arguments and kills the process it is given."""
    log = tmp_path / "taskkill.log"
    fake = tmp_path / "taskkill.py"
    fake.write_text(
        "import json, os, signal, sys\n"
        f"open({str(log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
        "try:\n    os.kill(int(sys.argv[-1]), signal.SIGKILL)\nexcept ProcessLookupError:\n    sys.exit(128)\n"
    )
    monkeypatch.setattr(runner, "_WINDOWS", True)
    monkeypatch.setattr(runner, "_TREE_KILL", (sys.executable, str(fake)))
    monkeypatch.setattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0, raising=False)  # POSIX refuses flags
    monkeypatch.delattr(os, "wait4")
    return log


def test_windows_path_runs_a_child_to_the_end(windows_runner: Path) -> None:
    result = runner.run([sys.executable, "-c", "print('hi')"], timeout=30)
    assert (result.returncode, result.stdout.strip(), result.timed_out) == (0, "hi", False)
    assert result.peak_memory_mb is None  # no rusage of a child on Windows: not measured


def test_windows_path_kills_the_tree_at_the_time_limit(windows_runner: Path) -> None:
    start = time.monotonic()
    result = runner.run([sys.executable, "-c", "import time; time.sleep(60)"], timeout=0.5)
    assert result.timed_out and time.monotonic() - start < 10
    calls = [json.loads(line) for line in windows_runner.read_text().splitlines()]
    assert calls[0][:3] == ["/T", "/F", "/PID"]
    assert runner._group_options() == {"creationflags": 0}


def test_no_module_needs_a_posix_only_module_at_import(tmp_path: Path) -> None:
    """Import every module of the package with fcntl, resource, termios and pwd unimportable."""
    code = (
        "import importlib, pkgutil, sys\n"
        "for name in ('fcntl', 'resource', 'termios', 'pwd', 'grp'):\n"
        "    sys.modules[name] = None\n"
        "import signal\n"
        "for name in ('setitimer', 'getitimer', 'SIGALRM', 'ITIMER_REAL', 'SIGKILL'):\n"
        "    if hasattr(signal, name): delattr(signal, name)\n"
        "import os\n"
        "for name in ('killpg', 'setsid', 'wait4', 'fork'):\n"
        "    if hasattr(os, name): delattr(os, name)\n"
        "import pytest_spike\n"
        # scripts run by path in a child (they read their argv at once), and the CLI entry point
        "SCRIPTS = ('__main__', '_import_child')\n"
        "failed = []\n"
        "for mod in pkgutil.walk_packages(pytest_spike.__path__, 'pytest_spike.'):\n"
        "    try:\n"
        "        if not mod.name.endswith(SCRIPTS): importlib.import_module(mod.name)\n"
        "    except Exception as exc:\n"
        "        failed.append(f'{mod.name}: {exc!r}')\n"
        "print('\\n'.join(failed))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


@pytest.fixture(params=["pidfd", "no pidfd"])
def wait_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The runner waking on a pidfd (Linux 5.3+), and polling with sleeps where there is none
    (macOS, older kernels, a seccomp filter refusing it)."""
    if request.param == "pidfd" and runner._end_watch(os.getpid()) is None:
        pytest.skip("no pidfd_open here")
    if request.param == "no pidfd":
        monkeypatch.delattr(os, "pidfd_open", raising=False)
    return str(request.param)


def test_a_child_ends_with_its_status_and_its_memory_either_way(wait_kind: str) -> None:
    code = "import sys; b = bytearray(30 * 1024 * 1024); sys.exit(3)"
    result = runner.run([sys.executable, "-c", code], timeout=30)
    assert (result.returncode, result.timed_out) == (3, False)
    assert result.peak_memory_mb is not None and result.peak_memory_mb > 30


def test_the_time_limit_kills_the_child_either_way(wait_kind: str) -> None:
    start = time.monotonic()
    result = runner.run([sys.executable, "-c", "import time; time.sleep(60)"], timeout=0.5)
    assert result.timed_out and result.signal == signal.SIGKILL
    assert time.monotonic() - start < 10


def test_the_pidfd_wakes_when_the_child_ends_and_is_closed_after() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.3)"])
    watch = runner._end_watch(child.pid)
    if watch is None:
        child.wait()
        pytest.skip("no pidfd_open here")
    start = time.monotonic()
    watch.poll(30_000)
    woke = time.monotonic() - start
    watch.close()
    assert child.wait(timeout=5) == 0
    assert woke < 10  # woken by the child's end, not by the 30 s timeout
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        runner.run(["/bin/true"], timeout=30)
    assert len(os.listdir("/proc/self/fd")) <= before  # one pidfd per step, none left open
