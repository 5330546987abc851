"""Cache entries built once and trusted only when complete: a lock, a marker written last.

An entry (a candidate environment, the child pytest's layer) is a folder in a cache that
several runs may share. It is built under an exclusive lock on ``<entry>.lock``; its marker
file, a JSON document, is written last, so a build that died half-way is rebuilt, never
trusted. A folder that can move is built in a staging folder beside the entry and renamed
into place; a venv cannot move (it records its own path), so it is built in place and the
marker alone says it is complete.

An entry built with a ``files`` function is also checked before it is reused: the marker
holds the digest of what ``files`` found when the build ended (see ``digest.py``), the list
itself lies beside it (``<marker>.files.json``, to name what changed), and an entry whose
files no longer match is rebuilt, the result saying which file changed first.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, Callable, NamedTuple

from pytest_spike._core import timeline
from pytest_spike._core.files import write_atomic
from pytest_spike.envs import digest
from pytest_spike.model import SpikeError


class locked:
    """An exclusive lock on ``path``, waited for at most ``timeout`` seconds.

    ``filelock`` (what tox and virtualenv use) takes ``flock`` on POSIX and ``LockFileEx`` on
    Windows; each ``locked`` opens its own descriptor, so two in one process exclude each other
    too, and a process that dies releases its lock with its descriptors. Imported when a
    lock is first made: a warm matrix cell reads its kept evidence without one, and the
    import cost each its start-up ~9 ms.
    """

    def __init__(self, path: Path, timeout: float) -> None:
        import filelock

        self.path = path
        self.timeout = timeout
        self.lock = filelock.FileLock(str(path))

    def __enter__(self) -> locked:
        import filelock

        try:
            with timeline.span("store-lock-wait", lock=self.path.name):
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


class Cached(NamedTuple):
    """What :func:`build_once` gives: the marker document (None when the build failed),
    whether the entry was reused, and why a cached entry was rebuilt instead ("" if it was not)."""

    document: dict[str, Any] | None
    reused: bool
    changed: str = ""


#: The marker's key for the digest of the entry's files.
FILES_DIGEST = "files_digest"


def files_list(entry: Path, marker: str) -> Path:
    """Where the list of ``entry``'s files lies, beside its marker."""
    return entry / f"{Path(marker).stem}.files.json"


def build_once(
    entry: Path,
    marker: str,
    build: Callable[[Path], Mapping[str, Any] | None],
    *,
    timeout: float,
    in_place: bool = False,
    reuse: Callable[[Mapping[str, Any]], bool] = lambda data: True,
    files: Callable[[Path], digest.Files] | None = None,
    on_change: Callable[[str], None] | None = None,
) -> Cached:
    """Reuse ``entry`` if its marker is there (and ``reuse`` accepts it), else build it.

    ``build(folder)`` fills ``folder`` (an empty staging folder, or ``entry`` itself when
    ``in_place``: absent, for the builder to make) and returns the marker document, or None
    when the build failed: then nothing is kept. With ``files``, what ``files(folder)``
    finds once the build has ended is recorded, and an entry is reused only while it still
    finds the same (the marker and the list excepted); else it is rebuilt and ``changed``
    names the first file that differs (``on_change`` hears it before the build starts).
    """
    found = read_marker(entry, marker)
    changed = ""
    if found is not None and reuse(found):
        changed = _changed(entry, marker, found, files)
        if not changed:
            return Cached(found, True)
    entry.parent.mkdir(parents=True, exist_ok=True)
    with locked(entry.with_suffix(".lock"), timeout):
        found = read_marker(entry, marker)  # another run may have built it while we waited
        if found is not None and reuse(found):
            changed = _changed(entry, marker, found, files)
            if not changed:
                return Cached(found, True)
        if changed and on_change is not None:
            on_change(changed)
        remove(entry, marker)
        folder = entry if in_place else Path(tempfile.mkdtemp(prefix=f".{entry.name}-", dir=entry.parent))
        try:
            done = build(folder)
            if done is None:
                remove(folder, marker)  # a failure is not cached: the next run may fare better
                return Cached(None, False, changed)
            document = dict(done)
            if files is not None:
                # Recorded by the host once the build's steps have ended: nothing of the
                # candidate's runs between this and the marker.
                with timeline.span("store-record", entry=entry.name):
                    listed = _files(folder, marker, files)
                write_atomic(files_list(folder, marker), json.dumps(listed, sort_keys=True))
                document[FILES_DIGEST] = digest.digest(listed)
            write_atomic(folder / marker, json.dumps(document, indent=1))
            if not in_place:
                os.replace(folder, entry)
        except BaseException:
            remove(folder, marker)
            raise
    return Cached(document, False, changed)


def record_host_change(
    entry: Path, marker: str, files: Callable[[Path], digest.Files], paths: Collection[str], *, timeout: float
) -> bool:
    """Record anew the files of ``entry`` after the host itself changed ``paths`` in it (keys
    as ``files`` names them: a ``.pth`` the matrix runner adds). Only when nothing else
    changed: else the record stays as built, and the next reuse rebuilds. True when recorded.
    """
    with locked(entry.with_suffix(".lock"), timeout):
        document = read_marker(entry, marker)
        try:
            before = json.loads(files_list(entry, marker).read_text("utf-8"))
        except (OSError, ValueError):
            return False
        if (
            document is None
            or not isinstance(before, dict)
            or digest.digest(before) != document.get(FILES_DIGEST)
        ):
            return False
        now = _files(entry, marker, files)
        others = {path for path in set(before) | set(now) if before.get(path) != now.get(path)} - set(paths)
        if others:
            return False
        write_atomic(files_list(entry, marker), json.dumps(now, sort_keys=True))
        document[FILES_DIGEST] = digest.digest(now)
        write_atomic(entry / marker, json.dumps(document, indent=1))
    return True


def _files(folder: Path, marker: str, files: Callable[[Path], digest.Files]) -> digest.Files:
    ours = {marker, files_list(folder, marker).name}
    return {path: stat for path, stat in files(folder).items() if path not in ours}


def _changed(
    entry: Path, marker: str, document: Mapping[str, Any], files: Callable[[Path], digest.Files] | None
) -> str:
    """Why ``entry`` may not be reused although its marker is there: the first file that
    changed since it was built, or that its files were never recorded; "" when it may."""
    if files is None:
        return ""
    kept = document.get(FILES_DIGEST)
    if not isinstance(kept, str):
        return "its files were not recorded when it was built (an older pytest-spike built it)"
    now = _files(entry, marker, files)
    if digest.digest(now) == kept:
        return ""
    try:
        before = json.loads(files_list(entry, marker).read_text("utf-8"))
    except (OSError, ValueError):
        before = None
    if not isinstance(before, dict) or digest.digest(before) != kept:
        return f"the list of its files ({files_list(entry, marker).name}) changed"
    return digest.first_change(before, now) or "its files changed"
