"""The sdist cache: a release's sdist, fetched once, shared by every probe.

A release's sdist never changes under the same hash, so a warm run skips the download. Any
probe that reads the sdist (the upstream tests, a documentation probe) asks
:class:`SdistCache` through its services (``ProbeContext.sdist_source``).

Where the run's work folder is in memory (see :meth:`~pytest_spike.services.Services.workdir`),
the cache keeps the archive and each run extracts it there: making a file on a busy disk
cost up to ~0.5 ms on this project's CI machine, and tomlkit's sdist is 1,100 files (0.7 s
there, on a cold spike's longest path, against 0.1 s in memory). Elsewhere the cache keeps the extracted
sdist, as an extraction on disk in every run would cost more than it saves.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Callable

from pytest_spike.index.client import FileEntry
from pytest_spike.model import SpikeError
from pytest_spike.upstream.sdist import fetch_sdist, safe_extract

#: The folder of the spike cache that holds sdists.
SDISTS_CACHE = "sdists"
#: The marker of an entry holding the extracted sdist, and of one holding its archive.
_EXTRACTED = "extracted.json"
_FETCHED = "fetched.json"


class SdistCache:
    """Sdists under ``folder``, one per sha256; ``offline``: never fetch.

    ``say`` tells the user when an sdist is actually fetched (a warm run says nothing).
    ``memory`` (the run's work folder in memory, made on demand): extract each sdist there,
    once per process, and keep only the archive in ``folder``.
    """

    def __init__(
        self,
        folder: Path,
        *,
        offline: bool,
        say: Callable[[str], None],
        memory: Callable[[], Path] | None = None,
    ) -> None:
        self.folder = folder
        self.offline = offline
        self.say = say
        self.memory = memory
        self._lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._extracted: dict[str, str] = {}

    def source(self, sdist: FileEntry, *, timeout: float, purpose: str = "for its tests") -> str | None:
        """The extracted sdist's root folder when its hash is known; else its URL (None under
        ``offline`` when it would have to be fetched).

        Anything unusual (no hash, an unsafe archive, a failed download) falls back to the
        URL, and the reader reports it as it would without the cache.
        """
        digest = sdist.hashes.get("sha256")
        if not digest:
            if self.offline:
                return None
            self.say(f"fetching the sdist {sdist.filename} {purpose}")
            return sdist.url
        entry = self.folder / digest[:32]
        extracted = _root(entry)
        if extracted is not None:
            return extracted  # extracted by a run whose work folder was on the disk
        if self.memory is not None:
            return self._in_memory(sdist, entry, digest, timeout, purpose)
        archive = self._archive(sdist, entry, digest, timeout, purpose)
        if archive is None:
            return None if self.offline else sdist.url
        staging = Path(tempfile.mkdtemp(prefix=".sdist-", dir=self.folder))
        try:
            root = safe_extract(archive, staging / "src")
            (staging / _EXTRACTED).write_text(json.dumps({"root": root.relative_to(staging).as_posix()}))
            shutil.rmtree(entry, ignore_errors=True)  # the archive, unpacked now
            os.replace(staging, entry)
        except (SpikeError, OSError):
            return sdist.url
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return str(entry / root.relative_to(staging))

    def _in_memory(
        self, sdist: FileEntry, entry: Path, digest: str, timeout: float, purpose: str
    ) -> str | None:
        """The sdist extracted in the work folder (once per process), its archive cached."""
        assert self.memory is not None
        with self._lock:  # one lock per sdist: the prebuild's threads fetch theirs side by side
            lock = self._locks.setdefault(digest, threading.Lock())
        with lock:
            if digest in self._extracted:
                return self._extracted[digest]
            archive = self._archive(sdist, entry, digest, timeout, purpose)
            if archive is None:
                return None if self.offline else sdist.url
            out = self.memory() / "sdists" / digest[:32]
            try:
                root = str(safe_extract(archive, out))
            except (SpikeError, OSError):
                shutil.rmtree(out, ignore_errors=True)
                return sdist.url
            self._extracted[digest] = root
            return root

    def _archive(
        self, sdist: FileEntry, entry: Path, digest: str, timeout: float, purpose: str
    ) -> Path | None:
        """The archive cached in ``entry``, fetched there (made whole, then put in place) when
        it is not; None offline without it, or when the fetch failed."""
        archive = _cached_archive(entry, digest)
        if archive is not None or self.offline:
            return archive
        self.folder.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".sdist-", dir=self.folder))
        # Said only here, where it is fetched: a warm run reads the cached copy.
        self.say(f"fetching the sdist {sdist.filename} {purpose}")
        try:
            archive = fetch_sdist(sdist.url, staging / "download", timeout=timeout, sha256=digest)
            (staging / _FETCHED).write_text(json.dumps({"archive": archive.relative_to(staging).as_posix()}))
            shutil.rmtree(entry, ignore_errors=True)
            os.replace(staging, entry)
        except (SpikeError, OSError):
            return None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return entry / archive.relative_to(staging)


def _root(entry: Path) -> str | None:
    """The root of the sdist extracted in ``entry``, if it holds one."""
    try:
        return str(entry / json.loads((entry / _EXTRACTED).read_text("utf-8"))["root"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # no marker, or an unreadable one: no extracted sdist


def _cached_archive(entry: Path, digest: str) -> Path | None:
    """The archive fetched into ``entry``, if it is there and still has its hash."""
    try:
        archive = entry / json.loads((entry / _FETCHED).read_text("utf-8"))["archive"]
        data = archive.read_bytes()
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return archive if hashlib.sha256(data).hexdigest() == digest.lower() else None
