"""What children print: the one reader of a child's JSON answer, and every caller of it.

A child that answers garbage (a banner, a crash half-way through a line, a plugin printing
to stdout) must become one SpikeError line, never a raw ValueError with a traceback.
"""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest

from pytest_spike._core.runner import last_json_line, peak_rss_mb, python_argv, run
from pytest_spike.envs import layer
from pytest_spike.envs.fit import report_pins
from pytest_spike.envs.manager import EnvManager
from pytest_spike.matrix import plan
from pytest_spike.model import SpikeError

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the fake interpreters are shell scripts")


def fake_python(tmp_path: Path, body: str) -> str:
    """An "interpreter" that is a shell script: it ignores Python and does ``body``."""
    path = tmp_path / "fake-python"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


#: Writes garbage to the file named after OPTION, as a broken child would.
WRITE_GARBAGE_AFTER = """
while [ $# -gt 0 ]; do
  if [ "$1" = "{option}" ]; then printf 'Traceback (most rec' > "$2"; fi
  shift
done
"""


def test_last_json_line_reads_past_noise_and_refuses_garbage() -> None:
    noisy = run(python_argv(sys.executable, "print('warming up'); print('{\"a\": 1}')"), timeout=30)
    assert last_json_line(noisy, "the child") == {"a": 1}
    garbage = run(python_argv(sys.executable, "print('{\"a\": 1'); print('Segmentation fault')"), timeout=30)
    with pytest.raises(SpikeError) as caught:
        last_json_line(garbage, "the child")
    assert str(caught.value) == "the child: no JSON answer (exit code 0); it said 'Segmentation fault'"
    silent = run(python_argv(sys.executable, "import sys; sys.exit('boom')"), timeout=30)
    with pytest.raises(SpikeError, match=r"^the child: no JSON answer \(exit code 1\); it said 'boom'$"):
        last_json_line(silent, "the child")


def test_an_interpreter_answering_garbage(tmp_path: Path) -> None:
    python = fake_python(tmp_path, "echo 'Python 3.11.4 (main)'")
    with pytest.raises(SpikeError, match=r"interpreter .*fake-python': no JSON answer .*Python 3\.11\.4"):
        EnvManager(tmp_path / "envs", python=python, backend="venv").interpreter()


def test_a_child_pytest_writing_garbage_results(tmp_path: Path) -> None:
    python = fake_python(tmp_path, WRITE_GARBAGE_AFTER.format(option="--spike-json"))
    with pytest.raises(SpikeError, match="not a JSON results file of the child pytest"):
        layer.run_child(python, tmp_path, ["test_x.py"], [], cwd=tmp_path, timeout=30)


def test_a_collection_writing_a_garbage_plan(tmp_path: Path) -> None:
    python = fake_python(tmp_path, WRITE_GARBAGE_AFTER.format(option="--spike-plan"))
    with pytest.raises(SpikeError, match="not a JSON plan from pytest --spike-plan"):
        plan.collect(["."], cwd=tmp_path, python=python, timeout=30)


@pytest.mark.parametrize(
    "text, message",
    [
        ("Traceback (most rec", "not a JSON pip installation report"),
        ('{"install": [{"metadata": {}}]}', "malformed pip installation report"),
    ],
)
def test_a_garbage_pip_report(tmp_path: Path, text: str, message: str) -> None:
    report = tmp_path / "report.json"
    report.write_text(text)
    with pytest.raises(SpikeError, match=message):
        report_pins(report)
    report.write_text('{"install": [{"metadata": {"name": "dep", "version": "2.0"}}]}')
    assert report_pins(report) == [("dep", "2.0")]


def test_peak_memory_of_a_child_and_of_this_process() -> None:
    grows = run(
        python_argv(sys.executable, "b = bytearray(80 * 1024 * 1024); b[::4096] = b'x' * len(b[::4096])"),
        timeout=60,
    )
    assert grows.ok, grows.stderr
    assert grows.peak_memory_mb is not None and grows.peak_memory_mb >= 80
    mine = peak_rss_mb()
    assert 10 < mine < 100_000  # MB: this process has pytest loaded, nothing more


def test_a_flood_on_stderr_leaves_stdout_whole() -> None:
    # A child's witness stream is on stdout: code that floods stderr past the cap must not
    # make the host read that stream as cut (and stop checking what it left out).
    code = "import sys; print('stream-line'); sys.stderr.write('x' * 300_000); print('last-line')"
    flooded = run([sys.executable, "-c", code], timeout=60, cap=65536)
    assert flooded.output_truncated and not flooded.stdout_truncated
    assert flooded.stdout.split() == ["stream-line", "last-line"]
    cut = run([sys.executable, "-c", "print('y' * 300_000)"], timeout=60, cap=65536)
    assert cut.output_truncated and cut.stdout_truncated
