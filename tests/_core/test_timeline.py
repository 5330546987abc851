"""The timeline of a run (``PYTEST_SPIKE_TIMELINE``): spans of steps and sdists, real children."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import pytest
from pkgfactory import FakeProject, build_sdist

from pytest_spike._core import runner, timeline
from pytest_spike.upstream.sdist import safe_extract


def _spans(path: Path) -> list[dict[str, str | float]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_steps_and_sdists_are_spans_when_a_timeline_is_asked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spans = tmp_path / "timeline.jsonl"
    monkeypatch.setenv(timeline.ENV, str(spans))
    sdist = build_sdist(FakeProject("demo-pkg", "1.0", files={"demo_pkg/__init__.py": ""}), tmp_path / "d")
    done: list[runner.RunResult] = []
    worker = threading.Thread(
        target=lambda: done.append(runner.run([sys.executable, "-c", "pass"], timeout=60)), name="side"
    )
    worker.start()
    worker.join(60)
    safe_extract(sdist, tmp_path / "out")
    assert done and done[0].ok
    step, extract = _spans(spans)
    assert (step["what"], step["stage"], step["thread"]) == ("step", "host", "side")
    assert str(step["argv"]).startswith(sys.executable)
    assert (extract["what"], extract["archive"], extract["thread"]) == (
        "sdist-extract",
        sdist.name,
        "MainThread",
    )
    for span in (step, extract):
        assert isinstance(span["start"], float) and isinstance(span["end"], float)
        assert span["start"] <= span["end"]
    assert step["end"] <= extract["start"]


def test_nothing_is_written_without_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(timeline.ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert runner.run([sys.executable, "-c", "pass"], timeout=60).ok
    with timeline.span("anything", detail=1):
        pass
    assert list(tmp_path.iterdir()) == []


def test_a_cache_entry_built_shows_its_lock_wait_and_its_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_spike.envs import digest
    from pytest_spike.envs.store import build_once

    spans = tmp_path / "timeline.jsonl"
    monkeypatch.setenv(timeline.ENV, str(spans))

    def build(folder: Path) -> dict[str, str]:
        (folder / "a.txt").write_text("a")
        return {"built": "yes"}

    entry = tmp_path / "cache" / "entry"
    built = build_once(entry, "marker.json", build, timeout=10, files=digest.tree_files)
    again = build_once(entry, "marker.json", build, timeout=10, files=digest.tree_files)
    assert (built.reused, again.reused) == (False, True)
    rows = _spans(spans)
    assert [(r["what"], r.get("lock"), r.get("entry")) for r in rows] == [
        ("store-lock-wait", "entry.lock", None),
        ("store-record", None, "entry"),
    ]


def test_a_span_that_is_not_one_block_is_recorded_with_its_own_times(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spans = tmp_path / "timeline.jsonl"
    monkeypatch.delenv(timeline.ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    timeline.record("nothing asked", 1.0, 2.0)  # without the variable: nothing, nowhere
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setenv(timeline.ENV, str(spans))
    timeline.record("upgrade-baseline", 100.0, 101.5, tests=3)
    [span] = _spans(spans)
    assert span == {
        "what": "upgrade-baseline",
        "start": 100.0,
        "end": 101.5,
        "thread": "MainThread",
        "tests": "3",
    }
