"""Cache entries built once and trusted only when complete: a lock, a marker written last.

An entry (a candidate environment, the child pytest's layer) is a folder in a cache that
several runs may share. It is built under an exclusive lock on ``<entry>.lock``; its marker
file, a JSON document, is written last, so a build that died half-way is rebuilt, never
trusted. A folder that can move is built in a staging folder beside the entry and renamed
into place; a venv cannot move (it records its own path), so it is built in place and the
marker alone says it is complete.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable

import filelock

from pytest_spike._core.files import write_atomic
from pytest_spike.model import SpikeError


class locked:
    """An exclusive lock on ``path``, waited for at most ``timeout`` seconds.

    ``filelock`` (what tox and virtualenv use) takes ``flock`` on POSIX and ``LockFileEx`` on
    Windows; each ``locked`` opens its own descriptor, so two in one process exclude each other
    too, and a process that dies releases its lock with its descriptors.
    """

    def __init__(self, path: Path, timeout: float) -> None:
        self.path = path
        self.timeout = timeout
        self.lock = filelock.FileLock(str(path))

    def __enter__(self) -> locked:
        try:
            self.lock.acquire(timeout=max(self.timeout, 0.0), poll_interval=0.05)
        except filelock.Timeout:
            raise SpikeError(
                f"another run held {self.path} for over {self.timeout:.0f}s; "
                "wait for it, or give this run its own cache folder"
            ) from None
        return self

    def __exit__(self, *exc: object) -> None:
        self.lock.release()


def read_marker(entry: Path, marker: str) -> dict[str, Any] | None:
    """The entry's marker document; None when there is none or it cannot be read (rebuild)."""
    try:
        data = json.loads((entry / marker).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def remove(entry: Path, marker: str) -> None:
    """Delete an entry, marker first: if we die while deleting, what is left is never trusted."""
    try:
        (entry / marker).unlink()
    except FileNotFoundError:
        pass
    shutil.rmtree(entry, ignore_errors=True)


def build_once(
    entry: Path,
    marker: str,
    build: Callable[[Path], Mapping[str, Any] | None],
    *,
    timeout: float,
    in_place: bool = False,
    reuse: Callable[[Mapping[str, Any]], bool] = lambda data: True,
) -> tuple[dict[str, Any] | None, bool]:
    """Reuse ``entry`` if its marker is there (and ``reuse`` accepts it), else build it.

    ``build(folder)`` fills ``folder`` (an empty staging folder, or ``entry`` itself when
    ``in_place``: absent, for the builder to make) and returns the marker document, or None when the build failed: then
    nothing is kept. Returns (marker document or None, reused).
    """
    found = read_marker(entry, marker)
    if found is not None and reuse(found):
        return found, True
    entry.parent.mkdir(parents=True, exist_ok=True)
    with locked(entry.with_suffix(".lock"), timeout):
        found = read_marker(entry, marker)  # another run may have built it while we waited
        if found is not None and reuse(found):
            return found, True
        remove(entry, marker)
        folder = entry if in_place else Path(tempfile.mkdtemp(prefix=f".{entry.name}-", dir=entry.parent))
        try:
            done = build(folder)
            if done is None:
                remove(folder, marker)  # a failure is not cached: the next run may fare better
                return None, False
            document = dict(done)
            write_atomic(folder / marker, json.dumps(document, indent=1))
            if not in_place:
                os.replace(folder, entry)
        except BaseException:
            remove(folder, marker)
            raise
    return document, False
