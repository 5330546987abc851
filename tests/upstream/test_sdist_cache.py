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


def test_with_the_work_folder_in_memory_the_cache_keeps_the_archive_and_each_run_extracts_it(
    tmp_path: Path,
) -> None:
    archive = build_sdist(FakeProject("mempkg", "1.0", sdist_files={"tests/test_a.py": "x = 1\n"}), tmp_path)
    said: list[str] = []
    first_run = tmp_path / "run-1"
    cache = SdistCache(tmp_path / "sdists", offline=False, say=said.append, memory=lambda: first_run)
    root = cache.source(entry(archive), timeout=30.0)
    assert root is not None and Path(root).is_relative_to(first_run)
    assert (Path(root) / "tests" / "test_a.py").read_text() == "x = 1\n"
    assert cache.source(entry(archive), timeout=30.0) == root  # once per process
    (cached,) = (tmp_path / "sdists").iterdir()
    assert sorted(p.name for p in cached.rglob("*") if p.is_file()) == ["fetched.json", archive.name]
    assert said == ["fetching the sdist mempkg-1.0.tar.gz for its tests"]
    # The next run, offline and with the index's file gone: extracted again from the cache.
    wanted = entry(archive)
    archive.unlink()
    second_run = tmp_path / "run-2"
    again = SdistCache(tmp_path / "sdists", offline=True, say=said.append, memory=lambda: second_run)
    root = again.source(wanted, timeout=30.0)
    assert root is not None and Path(root).is_relative_to(second_run)
    assert (Path(root) / "tests" / "test_a.py").read_text() == "x = 1\n"
    # A run whose work folder is on the disk extracts the cached archive into the cache.
    on_disk = SdistCache(tmp_path / "sdists", offline=True, say=said.append)
    root = on_disk.source(wanted, timeout=30.0)
    assert root is not None and Path(root).is_relative_to(cached)
    assert len(said) == 1


def test_a_cached_archive_that_changed_is_not_extracted(tmp_path: Path) -> None:
    archive = build_sdist(FakeProject("changedpkg", "1.0"), tmp_path)
    wanted = entry(archive)
    cache = SdistCache(
        tmp_path / "sdists", offline=False, say=lambda _: None, memory=lambda: tmp_path / "run"
    )
    assert cache.source(wanted, timeout=30.0) is not None
    (kept,) = (tmp_path / "sdists").rglob(archive.name)
    kept.write_bytes(kept.read_bytes() + b"\0")
    offline = SdistCache(
        tmp_path / "sdists", offline=True, say=lambda _: None, memory=lambda: tmp_path / "run2"
    )
    assert offline.source(wanted, timeout=30.0) is None  # not there as fetched: offline has none
    online = SdistCache(
        tmp_path / "sdists", offline=False, say=lambda _: None, memory=lambda: tmp_path / "run3"
    )
    root = online.source(wanted, timeout=30.0)  # fetched again
    assert root is not None and Path(root).is_relative_to(tmp_path / "run3")
    assert hashlib.sha256(kept.read_bytes()).hexdigest() == wanted.hashes["sha256"]


def test_with_the_work_folder_in_memory_an_sdist_extracted_on_the_disk_is_read_there(tmp_path: Path) -> None:
    archive = build_sdist(FakeProject("diskpkg", "1.0"), tmp_path)
    root = SdistCache(tmp_path / "sdists", offline=False, say=lambda _: None).source(
        entry(archive), timeout=30.0
    )
    memory = SdistCache(
        tmp_path / "sdists", offline=True, say=lambda _: None, memory=lambda: tmp_path / "run"
    )
    assert root is not None and memory.source(entry(archive), timeout=30.0) == root
    assert not (tmp_path / "run").exists()
