"""A real package index on 127.0.0.1 for tests, built from pkgfactory wheels and sdists.

    with IndexServer(tmp_path) as index:
        index.add(FakeProject("tomly", "1.0"), upload_time="2020-01-01")
        index.add("tomly", "1.1", yanked="broken", vulnerabilities=[{"id": "PYSEC-1", "fixed_in": ["1.2"]}])
        client = index.client(cache_dir=tmp_path / "cache")   # an IndexClient for this index only

Serves ``/simple/<name>/`` (PEP 691 JSON when asked for it, PEP 503 HTML otherwise),
``/pypi/<name>/json`` and ``/pypi/<name>/<version>/json`` in the shape of the package index's
JSON metadata API, and ``/files/<filename>``. ``misbehave()`` makes it answer 500s, HTML
garbage, truncated JSON, or hang, for failure tests; ``requests`` lists the paths asked for.
"""

from __future__ import annotations

import html
import json
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import Version
from pkgfactory import FakeProject, build_sdist, build_wheel

SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
#: An environment for IndexClient / subprocesses that ignores the machine's pip config files.
HERMETIC_ENV = {"PIP_CONFIG_FILE": os.devnull}
MODES = ("500", "garbage", "truncated", "hang")


@dataclass
class _File:
    path: Path
    kind: str
    upload_time: str
    yanked: str | bool
    requires_python: str | None

    def simple(self) -> dict[str, Any]:
        return {
            "filename": self.path.name,
            "url": f"../../files/{self.path.name}",  # relative on purpose: clients must join
            "hashes": {"sha256": _sha256(self.path)},
            "requires-python": self.requires_python,
            "yanked": self.yanked,
            "upload-time": self.upload_time,
            "size": self.path.stat().st_size,
        }

    def legacy(self) -> dict[str, Any]:
        return {
            "filename": self.path.name,
            "url": f"../../files/{self.path.name}",
            "packagetype": "bdist_wheel" if self.kind == "wheel" else "sdist",
            "python_version": "py3" if self.kind == "wheel" else "source",
            "requires_python": self.requires_python,
            "yanked": bool(self.yanked),
            "yanked_reason": self.yanked if isinstance(self.yanked, str) else None,
            "upload_time": self.upload_time.replace("Z", "").split(".")[0],
            "upload_time_iso_8601": self.upload_time,
            "digests": {"sha256": _sha256(self.path)},
            "size": self.path.stat().st_size,
        }


@dataclass
class _Release:
    project: FakeProject
    files: list[_File]
    vulnerabilities: list[dict[str, Any]]
    info: dict[str, Any]


@dataclass
class _Rule:
    mode: str
    path: str
    times: int | None


@dataclass
class _Project:
    name: str
    releases: dict[Version, _Release] = field(default_factory=dict)
    status: str | None = None
    status_reason: str | None = None


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def _iso(moment: str | datetime) -> str:
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000000Z")


class IndexServer:
    """A package index in a thread. ``url`` is the simple index URL (``http://127.0.0.1:P/simple``).

    ``release_json=False`` makes ``/pypi/<name>/<version>/json`` 404 (some indexes only serve
    the project document); ``json_api=False`` makes every ``/pypi/`` URL 404 (a plain simple
    index); ``simple_json=False`` serves only PEP 503 HTML project pages.
    """

    def __init__(
        self,
        root: Path,
        *,
        json_api: bool = True,
        release_json: bool = True,
        simple_json: bool = True,
    ) -> None:
        self.root = Path(root) / "index-files"
        self.json_api = json_api
        self.release_json = release_json
        self.simple_json = simple_json
        self.projects: dict[str, _Project] = {}
        self.requests: list[str] = []
        self._rules: list[_Rule] = []
        self._lock = threading.Lock()
        self._hang = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- content ---------------------------------------------------------------------------

    def add(
        self,
        project: FakeProject | str,
        version: str | None = None,
        *,
        wheel: bool = True,
        sdist: bool = True,
        yanked: bool | str = False,
        requires_python: str | None = None,
        upload_time: str | datetime = "2024-01-01T00:00:00",
        vulnerabilities: Sequence[Mapping[str, Any]] = (),
        **info: Any,
    ) -> IndexServer:
        """Publish one release. ``yanked`` may be a reason; ``info`` overrides JSON ``info`` keys
        (``license``, ``project_urls``, ``description`` ...). Returns the server, for chaining."""
        if isinstance(project, str):
            project = FakeProject(project, version or "1.0")
        elif version is not None:
            project = replace(project, version=version)
        if requires_python is not None:
            project = replace(project, requires_python=requires_python)
        folder = self.root / "files"
        built = ([("wheel", build_wheel(project, folder))] if wheel else []) + (
            [("sdist", build_sdist(project, folder))] if sdist else []
        )
        stamp = _iso(upload_time)
        files = [_File(path, kind, stamp, yanked, project.requires_python) for kind, path in built]
        advisories = [
            {
                "aliases": [],
                "details": "",
                "fixed_in": [],
                "link": "",
                "source": "osv",
                "summary": None,
                "withdrawn": None,
                **dict(v),
            }
            for v in vulnerabilities
        ]
        entry = self.projects.setdefault(canonicalize_name(project.name), _Project(project.name))
        entry.releases[Version(project.version)] = _Release(project, files, advisories, dict(info))
        return self

    def set_status(self, name: str, status: str, reason: str | None = None) -> None:
        """Give a project a PEP 792 status (``archived``, ``deprecated``, ``quarantined``)."""
        project = self.projects[canonicalize_name(name)]
        project.status, project.status_reason = status, reason

    def misbehave(self, mode: str, *, path: str = "/", times: int | None = None) -> None:
        """Answer requests under ``path`` badly: ``500``, ``garbage`` (an HTML error page),
        ``truncated`` (JSON cut short) or ``hang`` (no answer until the server stops).
        ``times`` limits how many requests are spoiled (None: all)."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        with self._lock:
            self._rules.append(_Rule(mode, path, times))

    def behave(self) -> None:
        """Forget every ``misbehave`` rule."""
        with self._lock:
            self._rules.clear()

    def reset(self) -> None:
        """Forget every ``misbehave`` rule and the request log (for a server shared by tests)."""
        self.behave()
        self.requests.clear()

    def client(self, **options: Any) -> Any:
        """An ``IndexClient`` that asks this server only (no pip config, extra indexes or
        find-links from the machine), with a short timeout and no retries unless overridden."""
        from pytest_spike.index.client import IndexClient

        defaults: dict[str, Any] = dict(
            extra_index_urls=(),
            find_links=(),
            env=HERMETIC_ENV,
            retries=0,
            backoff=0.01,
            timeout=5.0,
        )
        return IndexClient(self.url, **{**defaults, **options})

    def hits(self, prefix: str = "/") -> int:
        """How many requests asked for a path starting with ``prefix``."""
        return sum(1 for p in self.requests if p.startswith(prefix))

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def base(self) -> str:
        assert self._httpd is not None, "start the server first (use it as a context manager)"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def url(self) -> str:
        return f"{self.base}/simple"

    def start(self) -> IndexServer:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._hang.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> IndexServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- answers ---------------------------------------------------------------------------

    def _rule_for(self, path: str) -> str | None:
        with self._lock:
            for rule in self._rules:
                if path.startswith(rule.path) and (rule.times is None or rule.times > 0):
                    if rule.times is not None:
                        rule.times -= 1
                    return rule.mode
        return None

    def _simple_page(self, project: _Project, as_json: bool) -> tuple[str, bytes]:
        files = [f for release in project.releases.values() for f in release.files]
        if as_json:
            doc: dict[str, Any] = {
                "meta": {"api-version": "1.4" if project.status else "1.1"},
                "name": canonicalize_name(project.name),
                "files": [f.simple() for f in files],
                "versions": [str(v) for v in project.releases],
            }
            if project.status:
                doc["project-status"] = {"status": project.status, "reason": project.status_reason}
            return SIMPLE_JSON, json.dumps(doc).encode()
        links = []
        for f in files:
            attrs = ""
            if f.requires_python:
                attrs += f' data-requires-python="{html.escape(f.requires_python)}"'
            if f.yanked:
                reason = f.yanked if isinstance(f.yanked, str) else ""
                attrs += f' data-yanked="{html.escape(reason)}"'
            links.append(
                f'<a href="../../files/{f.path.name}#sha256={_sha256(f.path)}"{attrs}>{f.path.name}</a>'
            )
        meta = '<meta name="pypi:repository-version" content="1.0">'
        if project.status:
            meta += f'<meta name="pypi:project-status" content="{project.status}">'
        body = f"<!DOCTYPE html><html><head>{meta}</head><body>{'<br>'.join(links)}</body></html>"
        return "text/html", body.encode()

    def _info(self, project: _Project, version: Version) -> dict[str, Any]:
        release = project.releases[version]
        fake = release.project
        info: dict[str, Any] = {
            "name": fake.name,
            "version": str(version),
            "summary": fake.summary,
            "description": fake.readme or "",
            "description_content_type": fake.readme_type,
            "classifiers": list(fake.classifiers),
            "requires_python": fake.requires_python,
            "requires_dist": list(fake.requires) or None,
            "license": "MIT",
            "license_expression": None,
            "project_urls": {"Homepage": f"https://example.invalid/{fake.name}"},
            "home_page": None,
            "yanked": all(bool(f.yanked) for f in release.files),
            "yanked_reason": next((f.yanked for f in release.files if isinstance(f.yanked, str)), None),
        }
        info.update(release.info)
        return info

    def _latest(self, project: _Project) -> Version:
        finals = [v for v in project.releases if not v.is_prerelease] or list(project.releases)
        return max(finals)

    def _json_doc(self, project: _Project, version: Version | None) -> dict[str, Any]:
        shown = version or self._latest(project)
        release = project.releases[shown]
        doc: dict[str, Any] = {
            "info": self._info(project, shown),
            "urls": [f.legacy() for f in release.files],
            "vulnerabilities": release.vulnerabilities,
            "last_serial": 1,
        }
        if version is None:
            doc["releases"] = {str(v): [f.legacy() for f in r.files] for v, r in project.releases.items()}
        return doc

    def answer(self, path: str, accept: str) -> tuple[int, str, bytes]:
        """(status, content type, body) for a GET of ``path``."""
        parts = [p for p in path.split("?")[0].split("/") if p]
        if parts[:1] == ["files"] and len(parts) == 2:
            target = self.root / "files" / parts[1]
            if target.is_file():
                return 200, "application/octet-stream", target.read_bytes()
        elif parts[:1] == ["simple"] and len(parts) == 1:
            names = [{"name": canonicalize_name(n)} for n in self.projects]
            return (
                200,
                SIMPLE_JSON,
                json.dumps({"meta": {"api-version": "1.1"}, "projects": names}).encode(),
            )
        elif parts[:1] == ["simple"] and len(parts) == 2:
            project = self.projects.get(canonicalize_name(parts[1]))
            if project is not None:
                as_json = self.simple_json and SIMPLE_JSON in accept
                return (200, *self._simple_page(project, as_json))
        elif parts[:1] == ["pypi"] and parts[-1:] == ["json"] and len(parts) in (3, 4) and self.json_api:
            project = self.projects.get(canonicalize_name(parts[1]))
            version = Version(parts[2]) if len(parts) == 4 else None
            known = project is not None and (version is None or version in project.releases)
            if known and (version is None or self.release_json):
                assert project is not None
                return (
                    200,
                    "application/json",
                    json.dumps(self._json_doc(project, version)).encode(),
                )
        return 404, "text/plain", b"404 Not Found"


def _handler(server: IndexServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            server.requests.append(self.path)
            mode = server._rule_for(self.path)
            if mode == "hang":
                server._hang.wait(30)
                return
            if mode == "500":
                self._send(500, "text/plain", b"internal error")
                return
            if mode == "garbage":
                self._send(200, "text/html", b"<html><body><h1>Down for maintenance</h1></body></html>")
                return
            status, ctype, body = server.answer(self.path, self.headers.get("Accept", ""))
            if mode == "truncated":
                # promise the whole body, send half, hang up: what a dropped connection looks like
                self.close_connection = True
                self._send(status, ctype, body, cut=len(body) // 2)
                return
            self._send(status, ctype, body)

        def do_HEAD(self) -> None:  # noqa: N802 (uv asks for a file's headers first)
            server.requests.append(self.path)
            status, ctype, body = server.answer(self.path, self.headers.get("Accept", ""))
            self._send(status, ctype, body, cut=0)

        def _send(self, status: int, ctype: str, body: bytes, cut: int | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body if cut is None else body[:cut])

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
