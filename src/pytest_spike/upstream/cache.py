"""The sdist cache: a release's sdist, fetched and extracted once, shared by every probe.

A release's sdist never changes under the same hash, so a warm run skips the download and
the extraction. Any probe that reads the sdist (the upstream tests, a documentation probe)
asks :class:`SdistCache` through its services (``ProbeContext.sdist_source``).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from pytest_spike.index.client import FileEntry
from pytest_spike.model import SpikeError
from pytest_spike.upstream.sdist import fetch_sdist, safe_extract

#: The folder of the spike cache that holds extracted sdists.
SDISTS_CACHE = "sdists"


class SdistCache:
    """Extracted sdists under ``folder``, one per sha256; ``offline``: never fetch.

    ``say`` tells the user when an sdist is actually fetched (a warm run says nothing).
    """

    def __init__(self, folder: Path, *, offline: bool, say: Callable[[str], None]) -> None:
        self.folder = folder
        self.offline = offline
        self.say = say

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
        marker = entry / "extracted.json"
        if marker.is_file():
            try:
                return str(entry / json.loads(marker.read_text("utf-8"))["root"])
            except (OSError, ValueError, KeyError, TypeError):
                pass  # an unreadable marker is no marker: extract again
        if self.offline:
            return None
        self.folder.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".sdist-", dir=self.folder))
        # Said only here, where it is fetched: a warm run reads the extracted copy above.
        self.say(f"fetching the sdist {sdist.filename} {purpose}")
        try:
            archive = fetch_sdist(sdist.url, staging / "download", timeout=timeout, sha256=digest)
            root = safe_extract(archive, staging / "src")
            shutil.rmtree(staging / "download", ignore_errors=True)
            (staging / "extracted.json").write_text(
                json.dumps({"root": root.relative_to(staging).as_posix()})
            )
            shutil.rmtree(entry, ignore_errors=True)
            os.replace(staging, entry)
        except (SpikeError, OSError):
            return sdist.url
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return str(entry / root.relative_to(staging))
