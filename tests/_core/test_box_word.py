"""A cell taking bubblewrap on its parent's word (``sandbox.TRIED_ENV``), with the real one
and with a fake that cannot make a box.

The word may only spare a process its trial of bubblewrap: it never turns the box off, a box
that then cannot start is an error (never the step's own failure, never an unboxed run in
its place), and from then on the status says why the run is not sandboxed.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_spike._core import runner, sandbox
from pytest_spike.model import SpikeError

REAL = shutil.which("bwrap")
BOXED = sandbox.status(sandbox.Policy()).boxed
needs_box = pytest.mark.skipif(not BOXED, reason=f"no box here: {sandbox.status(sandbox.Policy()).reason}")


@pytest.fixture(autouse=True)
def fresh_word() -> Iterator[None]:
    """Each test starts as a new process would: nothing tried, no word taken or refuted."""

    def clear() -> None:
        sandbox._unavailable.cache_clear()
        sandbox._on_word.clear()
        sandbox._refuted.clear()

    clear()
    yield
    clear()


def fake_bwrap(folder: Path) -> tuple[str, Path]:
    """A bubblewrap that cannot make its namespaces (as on a host that forbids them); every
    start is logged to the file returned with it."""
    log = folder / "fake-bwrap.log"
    tool = folder / "bwrap"
    tool.write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> {log}\n'
        'echo "bwrap: No permissions to create new namespace, likely because the kernel does not allow it" >&2\n'
        "exit 1\n"
    )
    tool.chmod(0o755)
    return str(tool), log


def starts(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


def step(tmp_path: Path, name: str = "ran") -> list[str]:
    """A step that leaves a file where the host can see it, if it runs at all."""
    return [sys.executable, "-c", f"open({str(tmp_path / name)!r}, 'w').write('x')"]


def test_a_lying_word_never_runs_a_step_unboxed_and_the_status_then_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tool, log = fake_bwrap(tmp_path)
    monkeypatch.setenv(sandbox.TRIED_ENV, tool)
    auto = sandbox.Policy(mode="auto", bwrap=tool)
    assert sandbox.status(auto).boxed  # on the word alone...
    assert starts(log) == 0  # ...without a trial
    box = sandbox.Box("import", write=(str(tmp_path),))
    with sandbox.use(auto):
        with pytest.raises(
            SpikeError, match=r"the box could not start: bubblewrap cannot make its namespaces"
        ):
            runner.run(step(tmp_path), timeout=30, box=box)
        assert not (tmp_path / "ran").exists()
        state = sandbox.status()
        assert not state.boxed
        assert state.describe().startswith("not sandboxed: bubblewrap cannot make its namespaces here")
        # From here on auto does what it does without the word: unboxed, and says so.
        later = runner.run(step(tmp_path, "later"), timeout=30, box=box)
    assert later.ok and later.sandbox == "unboxed"
    # The failed step, the trial after it, and nothing more (the status is remembered).
    assert starts(log) == 2


def test_under_require_the_word_is_not_taken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tool, log = fake_bwrap(tmp_path)
    monkeypatch.setenv(sandbox.TRIED_ENV, tool)
    require = sandbox.Policy(mode="require", bwrap=tool)
    box = sandbox.Box("import", write=(str(tmp_path),))
    with sandbox.use(require):
        # tried at once, as without a word: a box that cannot run is the run's usage error
        with pytest.raises(
            SpikeError, match="--spike-sandbox require: bubblewrap cannot make its namespaces"
        ):
            sandbox.require_available()
        with pytest.raises(SpikeError, match="--spike-sandbox require: bubblewrap cannot make"):
            runner.run(step(tmp_path), timeout=30, box=box)
    assert not (tmp_path / "ran").exists()
    assert starts(log) == 1  # the trial, and no step


def test_a_word_about_another_bubblewrap_is_not_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tool, log = fake_bwrap(tmp_path)
    monkeypatch.setenv(sandbox.TRIED_ENV, "/usr/bin/bwrap")
    state = sandbox.status(sandbox.Policy(bwrap=tool))
    assert not state.boxed and "cannot make its namespaces" in state.reason
    assert starts(log) == 1


def test_a_word_given_as_a_relative_path_is_not_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tool, log = fake_bwrap(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(sandbox.TRIED_ENV, "./bwrap")
    assert not sandbox.status(sandbox.Policy(bwrap="./bwrap")).boxed
    assert starts(log) == 1


def test_a_parent_gives_its_word_only_for_a_bubblewrap_that_ran(tmp_path: Path) -> None:
    tool, log = fake_bwrap(tmp_path)
    assert sandbox.tried_env(sandbox.Policy(bwrap=tool)) == {}
    assert starts(log) == 1
    assert sandbox.tried_env(sandbox.Policy(bwrap=str(tmp_path / "missing"))) == {}
    if BOXED:
        assert sandbox.tried_env(sandbox.Policy()) == {sandbox.TRIED_ENV: REAL}


@needs_box
def test_a_step_failing_in_a_real_box_on_the_word_is_the_steps_own_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real bubblewrap, taken on the word: a step that exits 3 is tried once (the box runs,
    so the failure is the step's), and the word never reaches the step."""
    assert REAL is not None
    monkeypatch.setenv(sandbox.TRIED_ENV, REAL)
    code = f"import os, sys; open({str(tmp_path / 'seen')!r}, 'w').write(repr(os.environ.get({sandbox.TRIED_ENV!r}))); sys.exit(3)"
    box = sandbox.Box("import", write=(str(tmp_path),))
    with sandbox.use(sandbox.Policy()):
        assert sandbox.status().boxed
        assert REAL in sandbox._on_word
        done = runner.run([sys.executable, "-c", code], timeout=30, box=box)
        assert done.returncode == 3 and done.sandbox == "boxed", done.stderr
        assert REAL not in sandbox._on_word  # tried now, and it ran
        again = runner.run([sys.executable, "-c", code], timeout=30, box=box)
        assert again.returncode == 3
        assert sandbox.status().boxed
    assert (tmp_path / "seen").read_text() == "None"


def test_the_word_is_not_in_a_boxed_steps_environment() -> None:
    kept = sandbox.box_env({"PATH": "/usr/bin", sandbox.TRIED_ENV: "/usr/bin/bwrap"}, None, sandbox.BOX_HOME)
    assert sandbox.TRIED_ENV not in kept
    assert sandbox.TRIED_ENV not in os.environ  # the suite itself runs without a word


@pytest.mark.parametrize("mode", ["auto", "require"])
def test_a_cell_given_a_lying_word_reports_what_really_happened(
    pytester: pytest.Pytester, spike_site: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """A pytest run told that a bubblewrap which cannot box ran: no candidate code runs in a
    box that is not there, and every report says it was not sandboxed, with bubblewrap's
    reason; under ``require`` the word is not taken, and the run is a usage error."""
    bin_dir = pytester.path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    tool, log = fake_bwrap(bin_dir)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv(sandbox.TRIED_ENV, tool)
    result = pytester.runpytest_subprocess(
        "--spike", "--spike-probes=import", "--spike-candidate=goodpkg", "-p", "no:cacheprovider",
        f"--spike-sandbox={mode}", "--spike-isolation=auto", "--spike-json=r.json", "-rs",
    )  # fmt: skip
    output = result.stdout.str()
    if mode == "require":  # the word is not taken: tried at once, the run's usage error
        assert result.ret == pytest.ExitCode.USAGE_ERROR, output
        result.stderr.fnmatch_lines(
            ["ERROR: --spike-sandbox require: bubblewrap cannot make its namespaces*"]
        )
        assert starts(log) == 1 and not (pytester.path / "r.json").exists()
        return
    result.stdout.fnmatch_lines(["candidate code: not sandboxed: bubblewrap cannot make its namespaces here"])
    # the import, in the running environment: its step is the one refused
    result.stdout.fnmatch_lines(
        [
            "  (bwrap: No permissions to create new namespace*",
            "  probes: import skipped",
            "SKIPPED*spike::goodpkg::import: import probe could not run: the box could not start:*",
        ]
    )
    data = json.loads((pytester.path / "r.json").read_text())
    assert data["settings"]["sandbox"].startswith("not sandboxed: bubblewrap cannot make"), output
    (candidate,) = data["candidates"]
    assert candidate["score"] == 0, output  # nothing counted against the candidate
    assert starts(log) >= 1
