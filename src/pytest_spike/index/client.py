"""Ask the package index: requests, retries, the on-disk cache, and pip's index settings.

Speaks the simple repository API (PEP 691 JSON, PEP 503 HTML when that is all an index offers)
and the per-release JSON metadata API, honours pip's index configuration, and keeps every good
answer in an on-disk cache so a second run inside the freshness window asks the network nothing.
What the answers mean is read by ``pages.py``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import html
import http.client
import json
import os
import socket
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from packaging.utils import canonicalize_name
from packaging.version import Version

from pytest_spike._core.files import write_atomic
from pytest_spike.index.pages import (
    SIMPLE_JSON,
    FileEntry,
    Garbage,
    Page,
    ProjectMeta,
    Release,
    parse_json_metadata,
    parse_simple_page,
    project_of,
    releases_of,
    same_version,
    with_upload_times,
)
from pytest_spike.index.pipconfig import IndexConfig, redact
from pytest_spike.model import SpikeError

_ACCEPT_SIMPLE = f"{SIMPLE_JSON}, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"
_ACCEPT_JSON = "application/json"
_USER_AGENT = "pytest-spike (index client)"
#: HTTP answers worth asking again: the server or something in between is having a bad moment.
_RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})

__all__ = [
    "FileEntry",
    "IndexClient",
    "IndexUnavailable",
    "Listing",
    "ProjectMeta",
    "ProjectNotFound",
    "Release",
    "json_api_url",
    "redact",
    "same_version",
    "sdist_entry",
]


class IndexUnavailable(SpikeError):
    """The package index could not be asked (no network, errors, garbage answers, offline)."""


class ProjectNotFound(SpikeError):
    """No configured index knows the project."""


@dataclass(frozen=True)
class Listing:
    """A project's releases over every index that answered, and why the others were left out."""

    releases: dict[Version, Release]
    #: one line per index that failed while others answered (empty when all answered)
    skipped: tuple[str, ...] = ()


def json_api_url(index_url: str, name: str, version: str | None = None) -> str | None:
    """``.../simple`` -> ``.../pypi/<name>[/<version>]/json``; None when there is no such twin."""
    parts = urllib.parse.urlsplit(index_url)
    path = parts.path.rstrip("/")
    if parts.scheme not in ("http", "https") or not path.endswith("/simple"):
        return None
    tail = f"/pypi/{name}/{version}/json" if version else f"/pypi/{name}/json"
    return urllib.parse.urlunsplit(parts._replace(path=path[: -len("/simple")] + tail))


class IndexClient:
    """Ask the configured indexes about projects, with a timeout, bounded retries and a cache.

    ``cache_dir`` holds one file per answer (written atomically); answers younger than
    ``max_age`` seconds are used without asking. ``offline=True`` answers from the cache
    only, whatever its age. ``network_requests`` counts HTTP requests actually sent.
    """

    def __init__(
        self,
        index_url: str | None = None,
        *,
        extra_index_urls: Sequence[str] | None = None,
        find_links: Sequence[str] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        offline: bool = False,
        timeout: float = 15.0,
        retries: int = 2,
        backoff: float = 0.5,
        max_age: float = 3600.0,
        env: Mapping[str, str] | None = None,
    ) -> None:
        config = IndexConfig.from_pip(index_url, env=env)
        extras = config.extra_index_urls if extra_index_urls is None else extra_index_urls
        self.index_url = config.index_url
        self.extra_index_urls = tuple(u.rstrip("/") for u in extras)
        self.find_links = tuple(config.find_links if find_links is None else find_links)
        self.no_index = config.no_index
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.offline = offline
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_age = max_age
        self.network_requests = 0
        self._cert = config.cert if config.cert and Path(config.cert).exists() else None
        self._ssl: ssl.SSLContext | None = None
        self._memo: dict[tuple[str, str], Any] = {}
        #: hosts that timed out or refused: later requests fail at once instead of waiting again
        self._down: dict[str, str] = {}
        #: the cache file of each answer given from the cache or the network, and when it was
        #: fetched: what a result built on these answers may be reused for (see answers_of)
        self._answers: dict[str, float] = {}
        #: several threads may ask at once (the session's background builds): this guards the
        #: counters and records; two threads asking the same URL both ask, harmlessly
        self._lock = threading.Lock()

    @property
    def index_urls(self) -> list[str]:
        """The index URLs to ask, primary first; ``file://`` ones without a folder left out."""
        urls = []
        for url in () if self.no_index else (self.index_url, *self.extra_index_urls):
            parts = urllib.parse.urlsplit(url)
            if parts.scheme == "file" and not Path(urllib.request.url2pathname(parts.path)).is_dir():
                continue
            urls.append(url)
        return urls

    # -- projects -----------------------------------------------------------------------

    def releases(self, name: str) -> dict[Version, Release]:
        """Every release of ``name`` over all indexes (first index wins for a file name)."""
        return self.listing(name).releases

    def listing(self, name: str) -> Listing:
        """Every release of ``name``, and why any index was left out of the answer."""
        pages, skipped = self._pages(name)
        return Listing(releases_of(pages), tuple(skipped))

    def release_files(self, name: str, version: str | Version) -> list[FileEntry]:
        """The files of one release (wheels and sdists, with URL, hashes, yanked state)."""
        wanted = Version(str(version))
        listing = self.listing(name)
        release = listing.releases.get(wanted)
        if release is None and listing.skipped:
            # the indexes that answered lack it; one that did not may have it: unknown, not absent
            raise IndexUnavailable(
                f"{name} {version} is not on the indexes that answered, and not all did: {'; '.join(listing.skipped)}"
            )
        if release is None:
            raise SpikeError(f"{name} has no release {version} on the package index")
        return list(release.files)

    def project_meta(self, name: str, version: str | None = None) -> ProjectMeta:
        """Releases, JSON metadata, project status and advisories of ``version`` (or the latest)."""
        pages, skipped = self._pages(name)
        status = next((p for p in pages if p.status), None)
        meta = ProjectMeta(
            name=canonicalize_name(name),
            releases=releases_of(pages),
            status=status.status if status else None,
            status_reason=status.status_reason if status else None,
            sources={"releases": " ".join(page.url for page in pages)},
        )
        if skipped:
            meta.sources["skipped"] = "; ".join(skipped)
        project_doc, project_url = self._json_doc(name, None)
        if project_doc is None:
            return meta
        meta.info = dict(project_doc["info"])
        meta.name = str(meta.info.get("name") or meta.name)
        meta.sources["info"] = redact(project_url)
        latest = meta.info.get("version")
        meta.version = str(version or latest or "") or None
        meta.releases = with_upload_times(meta.releases, project_doc)
        if same_version(meta.version, latest):
            meta.vulnerabilities = list(project_doc.get("vulnerabilities") or [])
            meta.sources["vulnerabilities"] = redact(project_url)
        else:
            release_doc, release_url = self._json_doc(name, meta.version)
            if release_doc is not None:
                meta.vulnerabilities = list(release_doc.get("vulnerabilities") or [])
                meta.sources["vulnerabilities"] = redact(release_url)
        return meta

    def _page_url(self, index_url: str, name: str) -> str:
        return f"{index_url}/{canonicalize_name(name)}/"

    def _pages(self, name: str) -> tuple[list[Page], list[str]]:
        """The project's pages, and one line per index that failed while others answered."""
        pages: list[Page] = []
        failures: list[IndexUnavailable] = []
        wanted = canonicalize_name(name)
        locations = [(self._page_url(index, name), True) for index in self.index_urls]
        locations += [(_link_url(link), False) for link in self.find_links]
        for url, is_project_page in locations:
            try:
                page = self._fetch(url, _ACCEPT_SIMPLE, _simple_parser)
            except IndexUnavailable as exc:
                failures.append(exc)
                continue
            if page is None:
                continue
            if not is_project_page:
                # a find-links page lists every project's files: keep this project's
                page = Page(tuple(f for f in page.files if project_of(f.filename) == wanted))
            if is_project_page or page.files:
                pages.append(dataclasses.replace(page, url=redact(url)))
        if pages:
            return pages, [str(exc) for exc in failures]
        if failures:
            raise failures[0]
        if not locations:
            raise IndexUnavailable("index not reachable: pip is configured with no-index and no find-links")
        raise ProjectNotFound(f"no project {name!r} on the package index{self._suggest(name)}")

    def local_project_names(self) -> list[str]:
        """The projects of local (``file://``) indexes: listing a remote one is not cheap."""
        names: list[str] = []
        for url in self.index_urls:
            parts = urllib.parse.urlsplit(url)
            if parts.scheme == "file":
                folder = Path(urllib.request.url2pathname(parts.path))
                names += [p.name for p in folder.iterdir() if p.is_dir()]
        return names

    def _suggest(self, name: str) -> str:
        """Close names from local (``file://``) indexes only."""
        import difflib

        close = difflib.get_close_matches(canonicalize_name(name), self.local_project_names(), n=3)
        return f"; did you mean {', '.join(close)}?" if close else ""

    def _json_doc(self, name: str, version: str | None) -> tuple[dict[str, Any] | None, str]:
        """The first JSON metadata document any index offers (None, "" when none has one)."""
        for index in self.index_urls:
            url = json_api_url(index, canonicalize_name(name), version)
            if url is None:
                continue
            try:
                doc = self._fetch(url, _ACCEPT_JSON, lambda body, ctype, _url: parse_json_metadata(body))
            except IndexUnavailable:
                continue  # signals fall back to what the project pages say
            if doc is not None:
                return doc, url
        return None, ""

    # -- transport and cache ---------------------------------------------------------------

    def _fetch(self, url: str, accept: str, parse: Callable[[str, str, str], Any]) -> Any:
        """Parsed answer for ``url``; None when it is not there (404). Raises IndexUnavailable."""
        key = (url, accept)
        if key in self._memo:
            return self._memo[key]
        if url.startswith("file:"):
            result = self._read_local(url, parse)
        else:
            result = self._fetch_remote(url, accept, parse)
        self._memo[key] = result
        return result

    def _read_local(self, url: str, parse: Callable[[str, str, str], Any]) -> Any:
        path = Path(urllib.request.url2pathname(urllib.parse.urlsplit(url).path))
        if path.is_dir() and not (path / "index.html").is_file():
            # a find-links folder: its files are the listing
            links = "".join(
                f'<a href="{urllib.parse.quote(p.name)}">{html.escape(p.name)}</a>'
                for p in sorted(path.iterdir())
            )
            return parse(f"<html><body>{links}</body></html>", "text/html", path.as_uri() + "/")
        if path.is_dir():
            path = path / "index.html"
        try:
            body = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise IndexUnavailable(f"index not reachable: cannot read {path}: {exc}") from None
        ctype = "application/json" if path.suffix == ".json" else "text/html"
        try:
            return parse(body, ctype, url)
        except Garbage as exc:
            raise IndexUnavailable(f"index not reachable: {path}: {exc}") from None

    def _fetch_remote(self, url: str, accept: str, parse: Callable[[str, str, str], Any]) -> Any:
        cached = self._cache_read(url, accept)
        if cached is not None:
            age = time.time() - float(cached.get("fetched", 0))
            parsed = self._parse_cached(cached, parse)
            if parsed is not _MISSING and (self.offline or age <= self.max_age):
                self._record(url, accept, float(cached.get("fetched", 0)))
                return parsed
        if self.offline:
            raise IndexUnavailable(f"index not reachable: offline and nothing cached for {redact(url)}")
        try:
            status, final_url, ctype, body, parsed = self._download(url, accept, parse)
        except IndexUnavailable:
            if cached is not None and self._parse_cached(cached, parse) is not _MISSING:
                self._record(url, accept, float(cached.get("fetched", 0)))
                return self._parse_cached(cached, parse)  # stale beats nothing when the index is down
            raise
        self._cache_write(
            url,
            accept,
            {"url": redact(final_url), "status": status, "content_type": ctype, "body": body},
        )
        return parsed

    @staticmethod
    def _parse_cached(entry: Mapping[str, Any], parse: Callable[[str, str, str], Any]) -> Any:
        if entry.get("status") == 404:
            return None
        try:
            return parse(str(entry["body"]), str(entry["content_type"]), str(entry["url"]))
        except (Garbage, KeyError):
            return _MISSING

    def _download(
        self, url: str, accept: str, parse: Callable[[str, str, str], Any]
    ) -> tuple[int, str, str, str, Any]:
        """(status, final URL, content type, body, parsed), retrying what may pass."""
        plain_url, headers = _auth_headers(url)
        headers.update({"Accept": accept, "User-Agent": _USER_AGENT})
        host = urllib.parse.urlsplit(plain_url).netloc
        if host in self._down:
            # this URL's own, with why its host failed before (another project's URL misleads)
            raise IndexUnavailable(
                f"index not reachable: {self._down[host]} ({redact(url)}; not asked again)"
            )
        reason = "no attempt made"
        cause_text = ""
        unreachable = False
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            with self._lock:
                self.network_requests += 1
            try:
                request = urllib.request.Request(plain_url, headers=headers)
                with urllib.request.urlopen(
                    request, timeout=self.timeout, context=self._context(plain_url)
                ) as answer:
                    body = answer.read().decode("utf-8")
                    ctype = answer.headers.get("Content-Type", "")
                    final = answer.geturl()
                return 200, final, ctype, body, parse(body, ctype, final)
            except urllib.error.HTTPError as exc:
                if exc.code in (404, 410):
                    return 404, url, "", "", None
                reason = f"HTTP {exc.code} {exc.reason} from {redact(url)}"
                if exc.code not in _RETRY_STATUS:
                    break
            except Garbage as exc:
                reason = f"{redact(url)} answered garbage: {exc}"
            except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError) as exc:
                cause = getattr(exc, "reason", exc)
                if isinstance(cause, (socket.timeout, TimeoutError)):
                    cause = f"timed out after {self.timeout:g} s"
                cause_text = str(cause)
                reason = f"{cause_text} ({redact(url)})"
                unreachable = True
                continue
            except (OSError, http.client.HTTPException, UnicodeDecodeError, ValueError) as exc:
                # truncated bodies (IncompleteRead), resets mid-read, bad bytes
                reason = f"{type(exc).__name__}: {exc} ({redact(url)})"
            unreachable = False
        if unreachable:
            self._down[host] = cause_text
        raise IndexUnavailable(f"index not reachable: {reason}")

    def _context(self, url: str) -> ssl.SSLContext | None:
        """pip's CA bundle for HTTPS, loaded on first use (loading it costs ~0.1 s)."""
        if self._cert is None or not url.startswith("https:"):
            return None
        if self._ssl is None:
            self._ssl = ssl.create_default_context(cafile=self._cert)
        return self._ssl

    def _cache_file(self, url: str, accept: str) -> Path | None:
        if self.cache_dir is None:
            return None
        digest = hashlib.sha256(f"{accept}\n{url}".encode()).hexdigest()
        return self.cache_dir / f"{digest}.json"

    def _cache_read(self, url: str, accept: str) -> dict[str, Any] | None:
        path = self._cache_file(url, accept)
        if path is None:
            return None
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return entry if isinstance(entry, dict) else None

    def _cache_write(self, url: str, accept: str, entry: dict[str, Any]) -> None:
        path = self._cache_file(url, accept)
        if path is None:
            return
        entry["fetched"] = time.time()
        try:
            write_atomic(path, json.dumps(entry))
        except OSError:
            return  # a read-only cache costs speed, not correctness
        self._record(url, accept, entry["fetched"])

    def _record(self, url: str, accept: str, fetched: float) -> None:
        path = self._cache_file(url, accept)
        if path is not None:
            with self._lock:
                self._answers[str(path)] = fetched

    # -- what a result rests on ----------------------------------------------------------

    def answers_of(self, name: str) -> dict[str, float]:
        """The cached answers about project ``name`` this client used: cache file -> fetched.

        Empty when an answer came from no cache (a local index, or a cache that could not
        be written): a result built on those cannot be checked for freshness later.
        """
        wanted = canonicalize_name(name)
        found: dict[str, float] = {}
        with self._lock:
            recorded = dict(self._answers)
        for path, fetched in recorded.items():
            try:
                url = json.loads(Path(path).read_text(encoding="utf-8")).get("url", "")
            except (OSError, ValueError, AttributeError):
                continue
            parts = [canonicalize_name(p) for p in urllib.parse.urlsplit(str(url)).path.split("/") if p]
            if wanted in parts:
                found[path] = fetched
        return found

    def answers_fresh(self, answers: Mapping[str, float]) -> bool:
        """Whether every one of ``answers`` (see :meth:`answers_of`) is still the cache's
        answer and young enough that this client would give it without asking again."""
        if not answers:
            return False
        now = time.time()
        for path, fetched in answers.items():
            try:
                entry = json.loads(Path(path).read_text(encoding="utf-8"))
                current = float(entry.get("fetched", 0))
            except (OSError, ValueError, AttributeError, TypeError):
                return False
            if current != fetched or (not self.offline and now - current > self.max_age):
                return False
        return True


_MISSING = object()


def _link_url(link: str) -> str:
    """A find-links entry as a URL (pip accepts plain paths there)."""
    return link if "://" in link else Path(link).resolve().as_uri()


def _simple_parser(body: str, ctype: str, url: str) -> Page:
    return parse_simple_page(body, ctype, url)


def _auth_headers(url: str) -> tuple[str, dict[str, str]]:
    """Move ``user:password@`` out of the URL into a Basic auth header, as pip does."""
    import base64

    parts = urllib.parse.urlsplit(url)
    if parts.username is None:
        return url, {}
    plain = urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1]))
    user = urllib.parse.unquote(parts.username)
    password = urllib.parse.unquote(parts.password or "")
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return plain, {"Authorization": f"Basic {token}"}


def sdist_entry(client: IndexClient, name: str, version: str) -> FileEntry | None:
    """The index's sdist of one release, or None when the release has none."""
    return next((f for f in client.release_files(name, version) if f.kind == "sdist"), None)
