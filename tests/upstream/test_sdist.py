"""sdist download and safe extraction: real archives, a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import http.server
import io
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from pkgfactory import FakeProject, build_sdist

from pytest_spike.model import SpikeError
from pytest_spike.upstream.sdist import UnsafeArchive, fetch_sdist, redact, safe_extract


def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _file(name: str, data: bytes = b"x") -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, None


def _tree(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) if root.exists() else []


@pytest.fixture
def box(tmp_path: Path) -> Path:
    """An extraction target inside a folder we watch: nothing may appear beside ``dest``."""
    (tmp_path / "box").mkdir()
    return tmp_path / "box"


def test_extracts_a_real_sdist_and_returns_its_top_folder(tmp_path: Path) -> None:
    project = FakeProject(
        "demo-pkg",
        "2.1",
        files={"demo_pkg/core.py": "X = 1\n"},
        sdist_files={"tests/test_core.py": "def test_x(): pass\n"},
    )
    sdist = build_sdist(project, tmp_path / "dist")
    root = safe_extract(sdist, tmp_path / "out")
    assert root == tmp_path / "out" / "demo_pkg-2.1"
    assert (root / "demo_pkg" / "core.py").read_text() == "X = 1\n"
    assert (root / "tests" / "test_core.py").is_file()
    assert "Name: demo-pkg" in (root / "PKG-INFO").read_text()


@pytest.mark.parametrize(
    "members, needle",
    [
        pytest.param([_file("pkg-1.0/ok.py"), _file("/tmp/spike-evil-abs")], "absolute", id="abs-path"),
        pytest.param([_file("pkg-1.0/../../evil.txt")], "'..'", id="dotdot"),
        pytest.param([_link("pkg-1.0/out", "../../outside")], "outside", id="symlink-out"),
        pytest.param([_link("pkg-1.0/abs", "/etc/passwd")], "outside", id="symlink-abs"),
        pytest.param([_link("pkg-1.0/l", "."), _file("pkg-1.0/l/x.py")], "under a symlink", id="via-symlink"),
        pytest.param([_link("pkg-1.0/h", "/etc/passwd", tarfile.LNKTYPE)], "absolute", id="hardlink-abs"),
        pytest.param(
            [_link("pkg-1.0/h", "pkg-1.0/nope", tarfile.LNKTYPE)], "hard link", id="hardlink-dangling"
        ),
        pytest.param([_link("pkg-1.0/dev", "", tarfile.CHRTYPE)], "device", id="device"),
        pytest.param([_link("pkg-1.0/fifo", "", tarfile.FIFOTYPE)], "FIFO", id="fifo"),
    ],
)
def test_unsafe_tar_members_are_refused_before_anything_is_written(
    box: Path, members: list[tuple[tarfile.TarInfo, bytes | None]], needle: str
) -> None:
    archive = _tar(box.parent / "bad.tar.gz", [_file("pkg-1.0/first.py"), *members])
    with pytest.raises(UnsafeArchive, match="archive member") as excinfo:
        safe_extract(archive, box / "dest")
    assert needle in str(excinfo.value)
    assert _tree(box) == []  # not even the harmless first member
    assert not Path("/tmp/spike-evil-abs").exists()
    assert sorted(p.name for p in box.parent.iterdir()) == ["bad.tar.gz", "box"]


def test_a_decompression_bomb_is_refused_by_total_size(box: Path) -> None:
    archive = _tar(box.parent / "bomb.tar.gz", [_file("b-1/zeros.bin", b"\0" * (2 << 20))])
    assert archive.stat().st_size < 20_000  # small packed, large unpacked
    with pytest.raises(UnsafeArchive, match=r"over 1048576 bytes \(at member 'b-1/zeros.bin'\)"):
        safe_extract(archive, box / "dest", max_total_bytes=1 << 20)
    assert _tree(box) == []


def test_too_many_members_are_refused(box: Path) -> None:
    archive = _tar(box.parent / "many.tar.gz", [_file(f"m-1/f{i}.py") for i in range(30)])
    with pytest.raises(UnsafeArchive, match="over 10 members"):
        safe_extract(archive, box / "dest", max_members=10)
    assert _tree(box) == []


def test_links_inside_the_archive_are_kept(tmp_path: Path) -> None:
    archive = _tar(
        tmp_path / "ok.tar.gz",
        [
            _file("p-1/README.md", b"hello"),
            _link("p-1/docs/readme", "../README.md"),
            _link("p-1/copy.md", "p-1/README.md", tarfile.LNKTYPE),
        ],
    )
    root = safe_extract(archive, tmp_path / "out")
    assert (root / "docs" / "readme").is_symlink()
    assert (root / "docs" / "readme").read_text() == "hello"
    assert (root / "copy.md").read_text() == "hello" and not (root / "copy.md").is_symlink()


def _zip(path: Path, entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for info, data in entries:
            zf.writestr(info, data)
    return path


def test_zip_archives_extract_and_unsafe_zips_are_refused(box: Path) -> None:
    good = _zip(box.parent / "good.zip", [("z-1/a.py", b"A = 1\n"), ("z-1/tests/test_a.py", b"")])
    root = safe_extract(good, box.parent / "good")
    assert (root / "a.py").read_text() == "A = 1\n"

    link = zipfile.ZipInfo("z-1/escape")
    link.external_attr = 0o120777 << 16
    cases: dict[str, list[tuple[zipfile.ZipInfo | str, bytes]]] = {
        "climbs out": [("z-1/../../evil.py", b"")],
        "points outside": [(link, b"../../etc")],
        "absolute": [("C:/windows/evil.py", b"")],
    }
    for needle, entries in cases.items():
        archive = _zip(box.parent / "bad.zip", entries)
        with pytest.raises(UnsafeArchive, match=needle):
            safe_extract(archive, box / "dest")
    bomb = _zip(box.parent / "bomb.zip", [("z-1/big", b"\0" * (1 << 20))])
    with pytest.raises(UnsafeArchive, match="unpacks to over"):
        safe_extract(bomb, box / "dest", max_total_bytes=1000)
    assert _tree(box) == []


def test_a_file_that_is_no_archive_is_a_spike_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not an archive at all")
    with pytest.raises(SpikeError, match="cannot unpack junk.tar.gz"):
        safe_extract(junk, tmp_path / "out")


# -- fetch_sdist ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A static file server on 127.0.0.1 serving a temp folder."""
    root = tmp_path_factory.mktemp("served")

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    httpd.shutdown()
    httpd.server_close()


def test_fetch_downloads_atomically_and_checks_the_hash(server: tuple[str, Path], tmp_path: Path) -> None:
    base, root = server
    data = b"sdist bytes " * 1000
    (root / "demo-1.0.tar.gz").write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()

    got = fetch_sdist(f"{base}/demo-1.0.tar.gz#sha256={digest}", tmp_path / "dl", timeout=10)
    assert got == tmp_path / "dl" / "demo-1.0.tar.gz" and got.read_bytes() == data

    with pytest.raises(SpikeError, match="has sha256"):
        fetch_sdist(f"{base}/demo-1.0.tar.gz", tmp_path / "bad", timeout=10, sha256="0" * 64)
    assert list((tmp_path / "bad").iterdir()) == []  # no partial file left behind

    with pytest.raises(SpikeError, match="over the 100"):
        fetch_sdist(f"{base}/demo-1.0.tar.gz", tmp_path / "big", timeout=10, max_bytes=100)
    assert list((tmp_path / "big").iterdir()) == []


def test_fetch_reports_http_errors_schemes_and_supports_file_urls(
    server: tuple[str, Path], tmp_path: Path
) -> None:
    base, root = server
    with pytest.raises(SpikeError, match="HTTP 404"):
        fetch_sdist(f"{base}/missing-1.0.tar.gz", tmp_path, timeout=10)
    with pytest.raises(SpikeError, match="scheme must be one of"):
        fetch_sdist("ftp://127.0.0.1/x.tar.gz", tmp_path, timeout=10)
    (root / "local-1.0.zip").write_bytes(b"zip?")
    got = fetch_sdist((root / "local-1.0.zip").as_uri(), tmp_path / "f", timeout=10)
    assert got.read_bytes() == b"zip?"


def test_redact_hides_credentials_in_urls() -> None:
    shown = redact("https://user:s3cret@example.invalid:8443/simple/x-1.tar.gz")
    assert "s3cret" not in shown and "user" not in shown
    assert shown == "https://***@example.invalid:8443/simple/x-1.tar.gz"
    assert redact("http://127.0.0.1/x.tar.gz") == "http://127.0.0.1/x.tar.gz"


def test_a_chain_of_links_that_leaves_the_tree_is_refused(tmp_path: Path) -> None:
    # Each link alone stays inside when read as text; through the first, the second lands
    # on a file beside the extraction folder (a planted "secret").
    secret = tmp_path / "id_rsa"
    secret.write_text("s3cr3t-key")
    archive = _tar(
        tmp_path / "chain.tar.gz",
        [
            _file("p-1/setup.py", b""),
            _link("p-1/x", ".."),
            _link("p-1/req.txt", "x/../id_rsa"),
        ],
    )
    out = tmp_path / "out"
    with pytest.raises(UnsafeArchive, match="through the archive's other links points outside"):
        safe_extract(archive, out)
    assert not any(p.is_symlink() for p in out.rglob("*")), "an escaping link was left behind"
    assert secret.read_text() == "s3cr3t-key"


@pytest.mark.parametrize(
    "segment", ["..%2F..%2F.profile", "%2Fetc%2Fprofile", ".hidden.tar.gz", "a%5Cb.tar.gz"]
)
def test_a_file_name_the_index_makes_up_is_refused_before_anything_is_written(
    tmp_path: Path, segment: str
) -> None:
    source = tmp_path / "p-1.0.tar.gz"
    source.write_bytes(b"not really an archive")
    url = (tmp_path.as_uri() + "/") + segment
    dest = tmp_path / "cache" / "download"
    with pytest.raises(SpikeError, match="not a plain file name: refused"):
        fetch_sdist(url, dest)
    assert not (tmp_path / ".profile").exists()
    assert not dest.exists() or not any(dest.iterdir())


def test_modes_are_ours_and_a_later_member_of_the_same_name_wins(tmp_path: Path) -> None:
    setuid, plain = tarfile.TarInfo("p-1/run.sh"), tarfile.TarInfo("p-1/data.txt")
    setuid.mode, plain.mode = 0o4777, 0o666
    archive = _tar(
        tmp_path / "modes.tar.gz",
        [(setuid, b"#!/bin/sh\n"), (plain, b"old"), _file("p-1/data.txt", b"new")],
    )
    root = safe_extract(archive, tmp_path / "out")
    assert (root / "run.sh").stat().st_mode & 0o7777 == 0o755
    assert (root / "data.txt").stat().st_mode & 0o7777 == 0o644
    assert (root / "data.txt").read_bytes() == b"new"


@pytest.mark.parametrize("second_opinion", [True, False], ids=["data_filter", "no-data_filter"])
def test_a_link_already_in_the_destination_is_not_written_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, second_opinion: bool
) -> None:
    # Folders are checked once each, not once per member: the first check must still see a
    # link planted where the archive's top folder goes, with or without tarfile's own filter
    # (Pythons before 3.11.4 have none).
    if not second_opinion:
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "p-1").symlink_to(outside)
    archive = _tar(tmp_path / "ok.tar.gz", [_file("p-1/a.py"), _file("p-1/b.py"), _file("p-1/sub/c.py")])
    with pytest.raises(UnsafeArchive, match="outside"):
        safe_extract(archive, dest)
    assert list(outside.iterdir()) == []


def test_an_sdist_of_many_files_unpacks_whole(tmp_path: Path) -> None:
    names = [f"m-1/pkg{i % 7}/sub{i % 3}/f{i}.toml" for i in range(300)]
    archive = _tar(tmp_path / "many.tar.gz", [_file(name, name.encode()) for name in names])
    root = safe_extract(archive, tmp_path / "out")
    found = sorted(p.relative_to(root.parent).as_posix() for p in root.rglob("*.toml"))
    assert found == sorted(names)
    assert all((root.parent / name).read_text() == name for name in names)
