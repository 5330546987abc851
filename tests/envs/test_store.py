"""Cache entries built once under a lock, trusted only with their marker (written last)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import pytest

from pytest_spike.envs import digest
from pytest_spike.envs.store import Cached, build_once, locked, record_host_change
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
        "",
    )
    assert build_once(entry, "done.json", writes("two", calls), timeout=5, in_place=in_place) == (
        {"text": "one"},
        True,
        "",
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

    assert build_once(entry, "done.json", fails, timeout=5, in_place=in_place) == (None, False, "")
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
    data, reused, _ = build_once(entry, "done.json", writes("three", calls), timeout=5, reuse=lambda d: False)
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
    results: list[Cached] = []

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
    assert len(calls) == 1 and sorted(cached.reused for cached in results) == [False, True]


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


def test_an_entry_whose_files_changed_is_rebuilt_and_says_which(tmp_path: Path) -> None:
    entry, calls = tmp_path / "abc", []

    def again() -> Cached:
        return build_once(entry, "done.json", writes("one", calls), timeout=5, files=digest.tree_files)

    assert again() == ({"text": "one", "files_digest": ANY}, False, "")
    assert (entry / "done.files.json").is_file()
    assert again().reused and len(calls) == 1  # untouched: reused, the marker and list not counted
    (entry / "payload.txt").write_text("two")  # same size, new modification time
    heard: list[str] = []
    cached = build_once(
        entry, "done.json", writes("one", calls), timeout=5, files=digest.tree_files, on_change=heard.append
    )
    assert (cached.reused, cached.changed, len(calls)) == (False, "payload.txt changed", 2)
    assert heard == ["payload.txt changed"]  # before the build: the builder may build differently
    assert (entry / "payload.txt").read_text() == "one"
    (entry / "sub").mkdir()
    (entry / "sub" / "evil.pth").write_text("import os\n")
    assert again().changed == "sub appeared"  # the folder sorts first
    assert not (entry / "sub").exists()
    (entry / "payload.txt").unlink()
    assert again().changed == "payload.txt is gone"
    assert again() == ({"text": "one", "files_digest": ANY}, True, "")


def test_an_entry_without_a_record_of_its_files_is_rebuilt(tmp_path: Path) -> None:
    entry, calls = tmp_path / "abc", []
    build_once(entry, "done.json", writes("old", calls), timeout=5)  # built without files
    cached = build_once(entry, "done.json", writes("new", calls), timeout=5, files=digest.tree_files)
    assert not cached.reused and "not recorded" in cached.changed
    # The list edited to match a changed file: the marker's digest of the list says so.
    (entry / "payload.txt").write_text("edited")
    listed = json.loads((entry / "done.files.json").read_text())
    listed["payload.txt"] = [6, (entry / "payload.txt").stat().st_mtime_ns]
    (entry / "done.files.json").write_text(json.dumps(listed))
    cached = build_once(entry, "done.json", writes("new", calls), timeout=5, files=digest.tree_files)
    assert not cached.reused and cached.changed == "the list of its files (done.files.json) changed"
    assert (entry / "payload.txt").read_text() == "new" and len(calls) == 3


def test_a_change_the_host_made_itself_is_recorded_and_nothing_else(tmp_path: Path) -> None:
    entry, calls = tmp_path / "abc", []
    build_once(entry, "done.json", writes("one", calls), timeout=5, files=digest.tree_files)
    (entry / "ours.pth").write_text("/the/layer\n")
    assert record_host_change(entry, "done.json", digest.tree_files, ["ours.pth"], timeout=5)
    assert build_once(entry, "done.json", writes("two", calls), timeout=5, files=digest.tree_files).reused
    # Something else changed as well: nothing is recorded, the next reuse rebuilds.
    (entry / "ours.pth").write_text("/another/layer\n")
    (entry / "payload.txt").write_text("evil")
    assert not record_host_change(entry, "done.json", digest.tree_files, ["ours.pth"], timeout=5)
    cached = build_once(entry, "done.json", writes("two", calls), timeout=5, files=digest.tree_files)
    assert (cached.reused, cached.changed) == (False, "ours.pth changed")
    assert (entry / "payload.txt").read_text() == "two" and not (entry / "ours.pth").exists()
