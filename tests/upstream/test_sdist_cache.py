"""The shared sdist cache: a real sdist (file URL), extracted once, read back from the cache."""

from __future__ import annotations

import hashlib
from pathlib import Path

from pkgfactory import FakeProject, build_sdist

from pytest_spike.index.client import FileEntry
from pytest_spike.upstream.cache import SdistCache


def entry(archive: Path, *, hashed: bool = True) -> FileEntry:
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    hashes = {"sha256": digest} if hashed else {}
    return FileEntry(archive.name, archive.as_uri(), "sdist", "1.0", hashes=hashes)


def test_an_sdist_is_fetched_once_and_then_read_from_the_cache(tmp_path: Path) -> None:
    archive = build_sdist(FakeProject("cachedpkg", "1.0", sdist_files={"docs/index.md": "# hi\n"}), tmp_path)
    said: list[str] = []
    cache = SdistCache(tmp_path / "sdists", offline=False, say=said.append)
    root = cache.source(entry(archive), timeout=30.0, purpose="for its docs")
    assert root is not None and (Path(root) / "docs" / "index.md").read_text() == "# hi\n"
    assert said == ["fetching the sdist cachedpkg-1.0.tar.gz for its docs"]
    archive.unlink()  # the cache is enough now, even offline
    offline = SdistCache(tmp_path / "sdists", offline=True, say=said.append)
    assert offline.source(entry_of(root, tmp_path), timeout=30.0) == root
    assert len(said) == 1


def entry_of(root: str, tmp_path: Path) -> FileEntry:
    """The same release's entry, named by the hash the cache was filled under."""
    (digest_folder,) = (tmp_path / "sdists").iterdir()
    return FileEntry(
        "cachedpkg-1.0.tar.gz", "file:///gone.tar.gz", "sdist", hashes={"sha256": digest_folder.name}
    )


def test_without_a_hash_the_url_is_the_source_and_offline_has_none(tmp_path: Path) -> None:
    archive = build_sdist(FakeProject("nohashpkg", "1.0"), tmp_path)
    cache = SdistCache(tmp_path / "sdists", offline=False, say=lambda _: None)
    assert cache.source(entry(archive, hashed=False), timeout=30.0) == archive.as_uri()
    offline = SdistCache(tmp_path / "sdists", offline=True, say=lambda _: None)
    assert offline.source(entry(archive, hashed=False), timeout=30.0) is None
    assert offline.source(entry(archive), timeout=30.0) is None  # hashed, but not in the cache
