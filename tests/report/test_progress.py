"""The progress of long steps between pytest's progress rows: whole lines, a live status on a TTY."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

STEPS = """
import time
from pytest_spike.session.worker import terminal_say

def test_a():
    pass

def test_b(request):
    terminal_say(request.config)("building environment for slowpkg (uv)")
    time.sleep({sleep})

def test_c():
    pass
"""


def test_progress_lines_are_whole_lines_between_the_rows(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_steps=STEPS.format(sleep=0))
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            "test_steps.py .",
            "spike: test_b: building environment for slowpkg (uv)",
            "test_steps.py ..*100%]",
        ]
    )
    # Never mid-row: the line starts a line, and no progress letter sits alone on one.
    result.stdout.no_fnmatch_line("*.spike: *")
    assert "." not in [line.strip() for line in result.stdout.lines]


def test_progress_keeps_verbose_rows_whole(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_steps=STEPS.format(sleep=0))
    result = pytester.runpytest("-p", "no:randomly", "-v")
    result.stdout.fnmatch_lines(
        [
            "test_steps.py::test_b ",
            "spike: test_b: building environment for slowpkg (uv)",
            "test_steps.py::test_b PASSED*",
            "test_steps.py::test_c PASSED*",
        ]
    )


def test_progress_is_quiet_under_q_in_a_spike(pytester: pytest.Pytester) -> None:
    """plugin.py gives the probes no progress under -q (and on xdist workers)."""
    pytester.makepyfile(
        test_q="""
        def test_say(request):
            services = request.config.stash[__import__('pytest_spike.fixtures').fixtures.SERVICES]
            services.say("building environment for quietpkg")
        """
    )
    result = pytester.runpytest("--spike", "--spike-probes=none", "-q")
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*quietpkg*")
    loud = pytester.runpytest("--spike", "--spike-probes=none")
    loud.stdout.fnmatch_lines(["spike: test_say: building environment for quietpkg"])


@pytest.mark.skipif(sys.platform == "win32", reason="a pseudo-terminal is POSIX")
def test_a_tty_shows_a_live_status_with_its_clock(tmp_path: Path) -> None:
    (tmp_path / "test_steps.py").write_text(STEPS.format(sleep=2.6))
    controller, terminal = pty.openpty()
    env = dict(os.environ, COLUMNS="100", PYTEST_ADDOPTS="")
    env.pop("PYTEST_XDIST_WORKER", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:randomly", "-p", "no:cacheprovider", "test_steps.py"],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=terminal,
        stderr=terminal,
        env=env,
    )
    os.close(terminal)
    chunks = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            data = os.read(controller, 4096)
        except OSError:  # the child closed its side
            break
        if not data:
            break
        chunks.append(data)
    os.close(controller)
    assert proc.wait(timeout=30) == 0
    out = re.sub(r"\x1b\[[0-9;]*m", "", b"".join(chunks).decode(errors="replace"))  # colours
    status = "spike: test_b: building environment for slowpkg (uv)"
    # The clock ticked while the step ran, then the line stayed with the time it took.
    assert f"\r{status} (1s)" in out and f"\r{status} (2s)" in out, out
    final = [line for line in out.replace("\r\n", "\n").split("\n") if status in line][-1]
    assert final.rsplit("\r", 1)[-1].rstrip().endswith(("(2s)", "(3s)")), final
    assert "test_steps.py .." in out, out
