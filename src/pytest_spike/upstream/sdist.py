"""Fetch a source distribution and unpack it without trusting it.

An sdist comes from whoever uploaded it: its members may name absolute paths, climb out with
``..``, link outside, be device files, or decompress into gigabytes. Every member is checked
before anything is written, files are written by us (never through ``extractall``), and each
write is checked to land inside the destination.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import shutil
import stat
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import IO, Callable, cast

from pytest_spike._core import timeline
from pytest_spike.index.pipconfig import redact as redact  # re-exported: upstream.run uses it
from pytest_spike.model import SpikeError

#: Defaults sized for real sdists (the largest popular ones are a few MB packed).
MAX_DOWNLOAD_BYTES = 100 * 1024 * 1024
MAX_TOTAL_BYTES = 500 * 1024 * 1024
MAX_MEMBERS = 20_000

_CHUNK = 64 * 1024
_SCHEMES = ("http", "https", "file")


class UnsafeArchive(SpikeError):
    """An archive member that would escape the destination or exhaust the disk."""


class ArchiveTooLarge(UnsafeArchive):
    """An archive with more members or bytes than pytest-spike unpacks: a limit of ours (a
    monorepo's sdist has tens of thousands of files), not evidence of an attack."""


def fetch_sdist(
    url: str,
    dest_dir: str | os.PathLike[str],
    *,
    timeout: float = 60.0,
    max_bytes: int = MAX_DOWNLOAD_BYTES,
    sha256: str | None = None,
) -> Path:
    """Download ``url`` (http, https or file) into ``dest_dir`` and return the file's path.

    The file appears atomically under the URL's last path segment, or not at all. A
    ``#sha256=...`` fragment (as index pages write them) is checked when ``sha256`` is not given.
    """
    parts = urllib.parse.urlsplit(url)
    shown = redact(url)
    if parts.scheme not in _SCHEMES:
        raise SpikeError(f"sdist URL {shown!r}: scheme must be one of {', '.join(_SCHEMES)}")
    fragment = urllib.parse.parse_qs(parts.fragment)
    expected = (sha256 or (fragment.get("sha256") or [""])[0]).lower() or None
    name = urllib.parse.unquote(PurePosixPath(parts.path).name)
    if not name or name in (".", ".."):
        raise SpikeError(f"sdist URL {shown!r} names no file; give the URL of the .tar.gz or .zip")
    if not _FILE_NAME.fullmatch(name):
        # The index decides the URL: a name such as '..%2F..%2F.profile' or '%2Fetc%2F...'
        # would otherwise be written outside the cache.
        raise SpikeError(
            f"sdist URL {shown!r} names the file {name!r}, which is not a plain file name: refused"
        )
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=dest, prefix=".download-", suffix=".part")
    try:
        span = timeline.span("sdist-download", file=name)
        with span, os.fdopen(fd, "wb") as out, _open_url(url, shown, timeout) as response:
            length = response.headers.get("Content-Length") if hasattr(response, "headers") else None
            if length and length.isdigit() and int(length) > max_bytes:
                raise SpikeError(f"sdist {shown!r} is {int(length)} bytes, over the {max_bytes} limit")
            size = 0
            while True:
                chunk = response.read(_CHUNK)
                if not chunk:
                    break
                size += len(chunk)
                if size > max_bytes:
                    raise SpikeError(f"sdist {shown!r} is over the {max_bytes}-byte download limit")
                if time.monotonic() > deadline:
                    raise SpikeError(f"downloading {shown!r} took over {timeout:g}s; raise the timeout")
                digest.update(chunk)
                out.write(chunk)
        if expected and digest.hexdigest() != expected:
            raise SpikeError(
                f"sdist {shown!r} has sha256 {digest.hexdigest()}, expected {expected}: "
                "the file changed or the download was corrupted"
            )
        target = dest / name
        os.replace(tmp, target)
        return target
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _open_url(url: str, shown: str, timeout: float) -> IO[bytes]:
    try:
        return cast("IO[bytes]", urllib.request.urlopen(url, timeout=timeout))  # scheme checked
    except urllib.error.HTTPError as exc:
        raise SpikeError(f"cannot download sdist {shown!r}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SpikeError(
            f"cannot download sdist {shown!r}: {reason}; check the URL and network access"
        ) from None


@dataclass
class _Member:
    """One archive entry, reduced to what we are willing to create."""

    name: str  # normalised, relative, '/'-separated
    kind: str  # file | dir | symlink | hardlink
    size: int = 0
    target: str = ""  # link target; for hard links, a member name
    executable: bool = False
    open: Callable[[], IO[bytes]] | None = None


def safe_extract(
    archive: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    max_total_bytes: int = MAX_TOTAL_BYTES,
    max_members: int = MAX_MEMBERS,
) -> Path:
    """Unpack a tar (any compression) or zip archive into ``dest`` after checking every member.

    Refuses, with an ``UnsafeArchive`` naming the member, absolute paths, ``..``, links that
    point outside, device files and FIFOs, more than ``max_members`` entries or more than
    ``max_total_bytes`` unpacked. Nothing is written until every member passed. Returns the
    archive's single top-level folder (``name-1.0/`` in an sdist), else ``dest``.
    """
    path = Path(archive)
    out = Path(dest)
    with timeline.span("sdist-extract", archive=path.name):
        members = _extract(path, out, max_total_bytes, max_members)
    tops = {m.name.split("/")[0] for m in members}
    if len(tops) == 1:
        top = out / tops.pop()
        if top.is_dir() and not top.is_symlink():
            return top
    return out


def _extract(path: Path, out: Path, max_total_bytes: int, max_members: int) -> list[_Member]:
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                members = _checked(_zip_members(zf), max_total_bytes, max_members)
                _write(members, out)
        else:
            with tarfile.open(path, "r:*") as tf:
                members = _checked(_tar_members(tf, out), max_total_bytes, max_members)
                _write(members, out)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
        if isinstance(exc, UnsafeArchive):
            raise
        raise SpikeError(f"cannot unpack {path.name}: {exc}; is it a .tar.gz or .zip?") from None
    return members


def _tar_members(tf: tarfile.TarFile, dest: Path) -> Iterator[_Member]:
    data_filter = getattr(tarfile, "data_filter", None)
    for info in tf:  # streaming: a bomb is stopped by the caps before it is all read
        name = _clean_name(info.name)
        if info.isdir():
            member = _Member(name, "dir")
        elif info.isreg():
            member = _Member(
                name,
                "file",
                info.size,
                executable=bool(info.mode & 0o111),
                open=functools.partial(_tar_open, tf, info),
            )
        elif info.issym():
            member = _Member(name, "symlink", target=info.linkname)
            _check_symlink(member)
        elif info.islnk():
            member = _Member(name, "hardlink", target=_clean_name(info.linkname))
        else:
            raise UnsafeArchive(f"archive member {info.name!r} is a device file or FIFO: refused")
        if data_filter is not None:  # a second opinion, where this Python has one
            try:
                data_filter(info, str(dest))
            except tarfile.FilterError as exc:
                raise UnsafeArchive(f"unsafe archive member {info.name!r}: {exc}") from None
        yield member


def _tar_open(tf: tarfile.TarFile, info: tarfile.TarInfo) -> IO[bytes]:
    stream = tf.extractfile(info)
    if stream is None:  # only for non-files, which never get here
        raise UnsafeArchive(f"archive member {info.name!r} has no data")
    return stream


def _zip_members(zf: zipfile.ZipFile) -> Iterator[_Member]:
    for info in zf.infolist():
        name = _clean_name(info.filename)
        mode = info.external_attr >> 16
        if info.is_dir():
            yield _Member(name, "dir")
        elif stat.S_ISLNK(mode):
            yield _Member(name, "symlink", target=zf.read(info).decode("utf-8", "replace"))
        elif stat.S_IFMT(mode) not in (0, stat.S_IFREG):
            raise UnsafeArchive(f"archive member {info.filename!r} is a device file or FIFO: refused")
        else:
            yield _Member(
                name,
                "file",
                info.file_size,
                executable=bool(mode & 0o111),
                open=functools.partial(zf.open, info),
            )


def _clean_name(raw: str) -> str:
    if not raw or "\x00" in raw:
        raise UnsafeArchive(f"archive member {raw!r} has an empty or invalid name")
    if raw.startswith(("/", "\\")) or PureWindowsPath(raw).drive or re.match(r"^[A-Za-z]:", raw):
        raise UnsafeArchive(f"archive member {raw!r} has an absolute path: refused")
    parts = [p for p in re.split(r"[\\/]+", raw) if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchive(f"archive member {raw!r} climbs out with '..': refused")
    if not parts:
        raise UnsafeArchive(f"archive member {raw!r} names the archive root")
    return "/".join(parts)


def _checked(members: Iterator[_Member], max_total: int, max_members: int) -> list[_Member]:
    seen: list[_Member] = []
    links: set[str] = set()
    files: set[str] = set()
    total = 0
    for member in members:
        if len(seen) >= max_members:
            raise ArchiveTooLarge(
                f"archive has over {max_members} members (stopped at {member.name!r}): refused"
            )
        total += member.size
        if total > max_total:
            raise ArchiveTooLarge(
                f"archive unpacks to over {max_total} bytes (at member {member.name!r}): refused"
            )
        # A member under a symlink could be written through it, wherever it points.
        for i in range(1, member.name.count("/") + 1):
            if member.name.rsplit("/", i)[0] in links:
                raise UnsafeArchive(f"archive member {member.name!r} lies under a symlink: refused")
        if member.kind == "symlink":
            _check_symlink(member)
            links.add(member.name)
        elif member.kind == "hardlink" and member.target not in files:
            raise UnsafeArchive(
                f"archive member {member.name!r} is a hard link to {member.target!r}, "
                "which is not a file earlier in the archive: refused"
            )
        if member.kind == "file":
            files.add(member.name)
        seen.append(member)
    return seen


#: What a downloaded file may be called: one plain name, no separators, no leading dot.
_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+~-]*")


def _check_links_on_disk(members: list[_Member], dest: Path) -> None:
    """Every link as the tree now stands (links through links included) stays inside ``dest``.

    The per-member check reads a target as text; a link through another link (``x -> ..``,
    then ``y -> x/../.ssh/id_rsa``) only shows where it lands once both exist.
    """
    root = os.path.realpath(dest)
    for member in members:
        if member.kind != "symlink":
            continue
        landed = os.path.realpath(dest / member.name)
        if os.path.commonpath([root, landed]) != root:
            for link in members:  # nothing may read through them after the refusal
                if link.kind == "symlink":
                    with contextlib.suppress(OSError):
                        (dest / link.name).unlink()
            raise UnsafeArchive(
                f"archive member {member.name!r} is a symlink to {member.target!r}, which through "
                "the archive's other links points outside the archive: refused"
            )


def _check_symlink(member: _Member) -> None:
    target = member.target
    if not target or target.startswith(("/", "\\")) or PureWindowsPath(target).drive:
        raise UnsafeArchive(
            f"archive member {member.name!r} is a symlink to {target!r}, outside the archive: refused"
        )
    depth = member.name.count("/")  # folders above the link, inside the archive
    for part in re.split(r"[\\/]+", target):
        if part == "..":
            depth -= 1
        elif part not in ("", "."):
            depth += 1
        if depth < 0:
            raise UnsafeArchive(
                f"archive member {member.name!r} is a symlink to {target!r}, "
                "which points outside the archive: refused"
            )


def _write(members: list[_Member], dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    root = os.path.realpath(dest)
    # Folders made or seen inside ``root`` while no link exists yet in the tree: until the
    # first link is written nothing can redirect them, so each is checked once, not once per
    # member (a realpath is an lstat per path component: 24,000 for an sdist of 1,100 files,
    # each a wait for the interpreter lock while other threads run).
    inside: set[str] = set()
    # Links last, so no file is ever written through a link made from the same archive.
    for member in sorted(members, key=lambda m: m.kind in ("symlink", "hardlink")):
        target = dest / member.name
        folder = str(target if member.kind == "dir" else target.parent)
        if member.kind in ("symlink", "hardlink"):
            inside.clear()  # from here on a folder may be a link: check every member
        if folder not in inside:
            parent = os.path.realpath(folder)
            if os.path.commonpath([root, parent]) != root:
                raise UnsafeArchive(f"archive member {member.name!r} would land outside {dest}: refused")
        if member.kind == "dir":
            if folder not in inside:
                target.mkdir(parents=True, exist_ok=True)
                inside.add(folder)
            continue
        if folder not in inside:
            target.parent.mkdir(parents=True, exist_ok=True)
        if member.kind == "symlink":
            _unlink_file(target)
            os.symlink(member.target, target)
        elif member.kind == "hardlink":
            _unlink_file(target)
            shutil.copyfile(dest / member.target, target, follow_symlinks=False)
        else:
            inside.add(folder)
            _copy_capped(member, target)
    _check_links_on_disk(members, dest)


def _unlink_file(target: Path) -> None:
    """Remove a file or link an earlier member of the same name left (a folder stays)."""
    if target.is_symlink() or target.is_file():
        target.unlink()


def _copy_capped(member: _Member, target: Path) -> None:
    """Copy one member, never more bytes than its header declared (the caps were summed on those)."""
    assert member.open is not None
    left = member.size
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(target, flags, 0o600)
    except FileExistsError:  # an earlier member of the same name: the later one wins
        _unlink_file(target)
        fd = os.open(target, flags, 0o600)
    with open(fd, "wb") as out, member.open() as src:
        mode = 0o755 if member.executable else 0o644
        # Set on the open file where the system can: no second lookup of the path.
        os.chmod(out.fileno() if os.chmod in os.supports_fd else target, mode)
        while True:
            chunk = src.read(min(_CHUNK, left + 1))
            if not chunk:
                break
            left -= len(chunk)
            if left < 0:
                raise UnsafeArchive(f"archive member {member.name!r} is larger than declared: refused")
            out.write(chunk)
