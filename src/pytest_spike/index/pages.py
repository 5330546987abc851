"""What the package index says, parsed: project pages (PEP 691 JSON, PEP 503 HTML) and the
JSON metadata API's documents, into FileEntry, Release and ProjectMeta.

No network here: ``client.py`` fetches and caches, this module only reads answers, so every
parser can be tested on a string.
"""

from __future__ import annotations

import dataclasses
import html.parser
import json
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from pytest_spike.index.pipconfig import redact

SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"


class Garbage(Exception):
    """An answer that is not what the endpoint promises; never cached."""


@dataclass(frozen=True)
class FileEntry:
    """One distribution file of a release, as the index lists it."""

    filename: str
    url: str
    kind: str  # "wheel", "sdist" or "other"
    version: str | None = None
    requires_python: str | None = None
    yanked: bool = False
    yanked_reason: str | None = None
    hashes: Mapping[str, str] = field(default_factory=dict)
    upload_time: datetime | None = None
    size: int | None = None

    def to_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__, url=redact(self.url), hashes=dict(self.hashes))
        data["upload_time"] = self.upload_time.isoformat() if self.upload_time else None
        return data


@dataclass(frozen=True)
class Release:
    """All files of one version."""

    version: Version
    files: tuple[FileEntry, ...]

    @property
    def yanked(self) -> bool:
        return bool(self.files) and all(f.yanked for f in self.files)

    @property
    def yanked_reason(self) -> str | None:
        return next((f.yanked_reason for f in self.files if f.yanked_reason), None)

    @property
    def requires_python(self) -> str | None:
        live = [f for f in self.files if not f.yanked] or list(self.files)
        return next((f.requires_python for f in live if f.requires_python), None)

    @property
    def upload_time(self) -> datetime | None:
        times = [f.upload_time for f in self.files if f.upload_time]
        return min(times) if times else None

    def kinds(self) -> set[str]:
        return {f.kind for f in self.files}


@dataclass
class ProjectMeta:
    """What the index says about a project: releases, the JSON metadata, status, advisories."""

    name: str
    releases: dict[Version, Release]
    info: dict[str, Any] = field(default_factory=dict)
    status: str | None = None
    status_reason: str | None = None
    version: str | None = None
    #: advisories for ``version``; None when the index offered no per-release metadata for it
    vulnerabilities: list[dict[str, Any]] | None = None
    sources: dict[str, str] = field(default_factory=dict)

    def latest(self) -> Release | None:
        """The newest release that is neither yanked nor a pre-release (else the newest at all)."""
        good = [r for v, r in self.releases.items() if not r.yanked and not v.is_prerelease]
        pool = good or list(self.releases.values())
        return max(pool, key=lambda r: r.version) if pool else None


@dataclass(frozen=True)
class Page:
    """The files one project page (or find-links page) lists, and the project's status."""

    files: tuple[FileEntry, ...]
    status: str | None = None
    status_reason: str | None = None
    url: str = ""


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 time of the index (``Z`` or an offset; naive means UTC), else None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _file_entry(filename: str, url: str, **extra: Any) -> FileEntry:
    version: str | None = None
    kind = "other"
    try:
        if filename.endswith(".whl"):
            version, kind = str(parse_wheel_filename(filename)[1]), "wheel"
        elif filename.endswith((".tar.gz", ".zip")):
            version, kind = str(parse_sdist_filename(filename)[1]), "sdist"
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        kind = "other"
    return FileEntry(filename=filename, url=url, kind=kind, version=version, **extra)


def project_of(filename: str) -> str | None:
    """The canonical project name of a wheel or sdist file name, else None."""
    try:
        if filename.endswith(".whl"):
            return str(parse_wheel_filename(filename)[0])
        if filename.endswith((".tar.gz", ".zip")):
            return str(parse_sdist_filename(filename)[0])
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        pass
    return None


def _yank(value: Any) -> tuple[bool, str | None]:
    """PEP 691/592: ``yanked`` is a bool or the reason string (an empty string still yanks)."""
    if isinstance(value, str):
        return True, value or None
    return bool(value), None


class _AnchorParser(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.anchors: list[dict[str, str | None]] = []
        self.meta: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "a" and values.get("href"):
            self.anchors.append(values)
        elif tag == "meta" and values.get("name"):
            self.meta[str(values["name"])] = values.get("content") or ""


def parse_simple_page(body: str, content_type: str, page_url: str) -> Page:
    """Files of a project page (PEP 691 JSON or PEP 503 HTML); relative URLs joined to the page.

    Raises Garbage when the body is not what the content type promises.
    """
    if SIMPLE_JSON in content_type or "json" in content_type:
        return _parse_json_page(body, page_url)
    if "html" not in content_type:
        raise Garbage(f"project page came as {content_type or 'no content type'}")
    return _parse_html_page(body, page_url)


def _parse_json_page(body: str, page_url: str) -> Page:
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise Garbage(f"project page is not valid JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("files"), list):
        raise Garbage("project page JSON has no 'files' list")
    files = []
    for item in data["files"]:
        if not isinstance(item, dict) or "filename" not in item or "url" not in item:
            raise Garbage("project page JSON lists a file without filename or url")
        yanked, reason = _yank(item.get("yanked"))
        files.append(
            _file_entry(
                str(item["filename"]),
                urllib.parse.urljoin(page_url, str(item["url"])),
                requires_python=item.get("requires-python") or None,
                yanked=yanked,
                yanked_reason=reason,
                hashes=dict(item.get("hashes") or {}),
                upload_time=parse_time(item.get("upload-time")),
                size=item.get("size"),
            )
        )
    status = data.get("project-status") or {}
    return Page(tuple(files), status.get("status"), status.get("reason"))


def _parse_html_page(body: str, page_url: str) -> Page:
    parser = _AnchorParser()
    parser.feed(body)
    if not parser.anchors and "pypi:repository-version" not in parser.meta:
        raise Garbage("project page is HTML without links or repository version")
    files = []
    for anchor in parser.anchors:
        url, _, fragment = urllib.parse.urljoin(page_url, str(anchor["href"])).partition("#")
        algo, _, digest = fragment.partition("=")
        filename = urllib.parse.unquote(url.rsplit("/", 1)[-1])
        yanked = "data-yanked" in anchor
        files.append(
            _file_entry(
                filename,
                url,
                requires_python=anchor.get("data-requires-python") or None,
                yanked=yanked,
                yanked_reason=(anchor.get("data-yanked") or None) if yanked else None,
                hashes={algo: digest} if digest else {},
            )
        )
    status = parser.meta.get("pypi:project-status") or None
    return Page(tuple(files), status, parser.meta.get("pypi:project-status-reason") or None)


def parse_json_metadata(body: str) -> dict[str, Any]:
    """A project or release document of the JSON metadata API, checked for its shape."""
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise Garbage(f"JSON metadata is not valid JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("info"), dict):
        raise Garbage("JSON metadata has no 'info' object")
    return data


def releases_of(pages: Iterable[Page]) -> dict[Version, Release]:
    """The files of ``pages`` grouped by version, oldest first (the first page wins a file name)."""
    seen: dict[str, FileEntry] = {}
    for page in pages:
        for entry in page.files:
            seen.setdefault(entry.filename, entry)
    grouped: dict[Version, list[FileEntry]] = {}
    for entry in seen.values():
        if entry.version is None:
            continue
        try:
            grouped.setdefault(Version(entry.version), []).append(entry)
        except InvalidVersion:
            continue
    return {v: Release(v, tuple(files)) for v, files in sorted(grouped.items())}


def with_upload_times(releases: Mapping[Version, Release], doc: Mapping[str, Any]) -> dict[Version, Release]:
    """``releases`` with upload times from a JSON metadata document where pages had none
    (HTML project pages carry no upload times; the JSON metadata does)."""
    times = {
        f.get("filename"): parse_time(f.get("upload_time_iso_8601") or f.get("upload_time"))
        for files in (doc.get("releases") or {}).values()
        if isinstance(files, list)
        for f in files
        if isinstance(f, dict)
    }
    filled = dict(releases)
    for version, release in releases.items():
        if release.upload_time is None:
            files = tuple(dataclasses.replace(f, upload_time=times.get(f.filename)) for f in release.files)
            filled[version] = Release(version, files)
    return filled


def same_version(a: Any, b: Any) -> bool:
    """Are ``a`` and ``b`` the same version ("2.0" and "2.0.0" are)?"""
    try:
        return a is not None and b is not None and Version(str(a)) == Version(str(b))
    except InvalidVersion:
        return str(a) == str(b)
