"""Cache entries built once under a lock, trusted only with their marker (written last)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_spike.envs.store import build_once, locked
from pytest_spike.model import SpikeError


def writes(text: str, calls: list[Path]) -> Any:
    def build(folder: Path) -> dict[str, Any]:
        calls.append(folder)
        folder.mkdir(exist_ok=True)  # in place, the builder makes the entry (as venv does)
        (folder / "payload.txt").write_text(text)
        return {"text": text}

    return build


@pytest.mark.parametrize("in_place", [False, True], ids=["staged", "in-place"])
def test_built_once_then_reused(tmp_path: Path, in_place: bool) -> None:
    entry, calls = tmp_path / "cache" / "abc", []
    assert build_once(entry, "done.json", writes("one", calls), timeout=5, in_place=in_place) == (
        {"text": "one"},
        False,
    )
    assert build_once(entry, "done.json", writes("two", calls), timeout=5, in_place=in_place) == (
        {"text": "one"},
        True,
    )
    assert len(calls) == 1 and (calls[0] == entry) == in_place
    assert (entry / "payload.txt").read_text() == "one"
    assert sorted(p.name for p in entry.parent.iterdir()) == ["abc", "abc.lock"]  # no staging left


@pytest.mark.parametrize("in_place", [False, True], ids=["staged", "in-place"])
def test_failures_keep_nothing(tmp_path: Path, in_place: bool) -> None:
    entry = tmp_path / "abc"

    def fails(folder: Path) -> None:
        folder.mkdir(exist_ok=True)
        (folder / "half.txt").write_text("half")
        return None

    def raises(folder: Path) -> dict[str, Any]:
        folder.mkdir(exist_ok=True)
        (folder / "half.txt").write_text("half")
        raise KeyboardInterrupt

    assert build_once(entry, "done.json", fails, timeout=5, in_place=in_place) == (None, False)
    with pytest.raises(KeyboardInterrupt):
        build_once(entry, "done.json", raises, timeout=5, in_place=in_place)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["abc.lock"]


def test_half_built_unreadable_or_refused_entries_are_rebuilt(tmp_path: Path) -> None:
    entry, calls = tmp_path / "abc", []
    entry.mkdir()
    (entry / "payload.txt").write_text("half")  # a build that died: no marker
    build_once(entry, "done.json", writes("one", calls), timeout=5)
    (entry / "done.json").write_text("{not json")
    build_once(entry, "done.json", writes("two", calls), timeout=5)
    data, reused = build_once(entry, "done.json", writes("three", calls), timeout=5, reuse=lambda d: False)
    assert (data, reused, len(calls)) == ({"text": "three"}, False, 3)
    assert (entry / "payload.txt").read_text() == "three"


def test_a_held_lock_is_waited_for_then_refused(tmp_path: Path) -> None:
    lock = tmp_path / "abc.lock"
    calls: list[Path] = []
    with locked(lock, timeout=5):
        with pytest.raises(SpikeError, match="another run held .*abc.lock for over 0s"):
            build_once(tmp_path / "abc", "done.json", writes("one", calls), timeout=0.1)
    assert calls == []


def test_two_builders_build_once(tmp_path: Path) -> None:
    calls: list[Path] = []
    results: list[tuple[Any, bool]] = []

    def slow(folder: Path) -> dict[str, Any]:
        time.sleep(0.3)
        return writes("one", calls)(folder)

    threads = [
        threading.Thread(
            target=lambda: results.append(build_once(tmp_path / "abc", "m.json", slow, timeout=5))
        )
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and sorted(reused for _, reused in results) == [False, True]


def test_a_lock_held_by_another_process_is_refused_then_taken(tmp_path: Path) -> None:
    lock = tmp_path / "abc.lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from pytest_spike.envs.store import locked\n"
            "with locked(Path(sys.argv[1]), timeout=5):\n"
            "    print('held', flush=True); time.sleep(30)",
            str(lock),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(SpikeError, match="another run held .*abc.lock for over 0s"):
            with locked(lock, timeout=0.2):
                pass
    finally:
        holder.kill()
        holder.wait()
    with locked(lock, timeout=5):  # the dead holder's lock went with its process
        pass
