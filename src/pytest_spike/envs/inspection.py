"""What an environment has installed of one distribution, read by the host from its files.

No interpreter of the candidate's environment is asked: it would process the environment's
``.pth`` files and ``sitecustomize`` before any script of ours, and code there can rewrite
``importlib.metadata`` or print a report of its own (a candidate once reported no
dependencies and another README that way). The host finds the environment's site-packages
from its layout (:class:`Site`), reads the dist-info and egg-info folders there with the
standard library's metadata parsers over a reader of its own (:class:`HostDistribution`:
regular files inside the environment, of a bounded size), and works out the closure with
packaging, so markers and extras are evaluated the same way for every interpreter.
"""

from __future__ import annotations

import functools
import json
import os
import stat
import sys
import sysconfig
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from email.message import Message
from importlib import metadata
from pathlib import Path
from typing import Any, cast

from packaging.markers import Marker, default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion

from pytest_spike._core import runner, sandbox
from pytest_spike.model import SpikeError

#: Largest metadata file the host reads (pydantic's README, with its changelog, is 140 kB;
#: numpy's RECORD 200 kB): a larger one, or one that is not a regular file, is refused.
MAX_FILE_BYTES = 16 * 1024 * 1024


def host_python() -> str:
    """ "X.Y" of the running interpreter."""
    return f"{sys.version_info[0]}.{sys.version_info[1]}"


# -- where an interpreter's distributions are ---------------------------------------------


@dataclass(frozen=True)
class Site:
    """Where one interpreter's distributions are installed, and its marker environment.

    ``python`` is the interpreter named in the reports; ``paths`` are searched in order (the
    first distribution of a name wins, as for imports); ``root``, for a candidate's
    environment, is the folder no file read may leave (None: the running environment).
    """

    python: str
    paths: tuple[str, ...]
    markers: Mapping[str, str] = field(default_factory=dict)
    root: str | None = None


def running_site(pythonpath: Sequence[str] = ()) -> Site:
    """The running environment as its imports see it (``.pth`` entries included, since they
    ran in this process long ago), with ``pythonpath`` folders first."""
    entries = [*pythonpath, *sys.path]
    paths = [os.path.abspath(p) for p in entries if p and os.path.isdir(p)]
    return Site(sys.executable, tuple(dict.fromkeys(paths)), _markers())


def env_site(python: str, root: str | os.PathLike[str], *, base: str | None = None) -> Site:
    """The environment at ``root`` whose interpreter is ``python``.

    Its site-packages are the install scheme's purelib and platlib with ``root`` as base, as
    the interpreter that made it (``base``; the running one, or another asked with ``-I -S``)
    computes them: neither reads a file of the environment, so nothing installed there can
    move them. Without ``base``, ``python`` itself is asked with ``-I -S`` (no ``site``: no
    ``.pth`` file, no ``sitecustomize``); only replacing the environment's interpreter or its
    ``pyvenv.cfg`` could then bend the answer, which the environments pytest-spike builds
    never need (it passes ``base``).
    """
    real = os.path.realpath(root)
    answer = _scheme(os.path.abspath(root), base or python)
    paths = [p for p in answer["paths"] if os.path.isdir(p) and _inside(os.path.realpath(p), real)]
    return Site(python, tuple(dict.fromkeys(paths)), answer["markers"], real)


def site_for(
    python: str, *, env: Mapping[str, str] | None = None, extra_env: Mapping[str, str] | None = None
) -> Site:
    """The site of ``python``: the running environment (with the ``PYTHONPATH`` a child of it
    would get from ``env``/``extra_env`` first) or the environment it belongs to."""
    if python == sys.executable:
        given = {**(env or {}), **(extra_env or {})}.get("PYTHONPATH", "")
        return running_site([p for p in given.split(os.pathsep) if p])
    return env_site(python, Path(python).parent.parent)


#: Python source (standard library only, any 3.x) that sets ``markers`` to the running
#: interpreter's PEP 508 marker environment; shared by every question asked of another
#: interpreter (here, and the matrix's layers).
MARKERS_SOURCE = """
import json, os, platform, sys
impl = sys.implementation
iver = "{0.major}.{0.minor}.{0.micro}".format(impl.version)
if impl.version.releaselevel != "final":
    iver += impl.version.releaselevel[0] + str(impl.version.serial)
markers = {
    "implementation_name": impl.name, "implementation_version": iver,
    "os_name": os.name, "platform_machine": platform.machine(),
    "platform_release": platform.release(), "platform_system": platform.system(),
    "platform_version": platform.version(), "python_full_version": platform.python_version(),
    "platform_python_implementation": platform.python_implementation(),
    "python_version": ".".join(platform.python_version_tuple()[:2]), "sys_platform": sys.platform,
}
"""

# Asked of an interpreter other than the running one, with -I -S: the standard library only.
_SCHEME = (
    MARKERS_SOURCE
    + """
import sysconfig
root = sys.argv[1]
names = sysconfig.get_scheme_names()
scheme = "venv" if "venv" in names else ("nt" if os.name == "nt" else "posix_prefix")
found = sysconfig.get_paths(scheme, vars={"base": root, "platbase": root})
print(json.dumps({"paths": [found["purelib"], found["platlib"]], "markers": markers}))
"""
)


def _scheme(root: str, python: str) -> dict[str, Any]:
    if python == sys.executable:
        names = sysconfig.get_scheme_names()
        scheme = "venv" if "venv" in names else ("nt" if os.name == "nt" else "posix_prefix")
        found = sysconfig.get_paths(scheme, vars={"base": root, "platbase": root})
        return {"paths": [found["purelib"], found["platlib"]], "markers": _markers()}
    return _asked(root, python)


@functools.lru_cache(maxsize=64)
def _asked(root: str, python: str) -> dict[str, Any]:
    # -S: the site module does not run, so no .pth file or sitecustomize of any environment
    # does; -I: no PYTHON* variable, no user site, no script folder on sys.path.
    argv = [python, "-I", "-S", "-c", _SCHEME, root]
    done = runner.run(argv, timeout=60, box=sandbox.Box("inspect"))
    answer = runner.last_json_line(done, f"interpreter {python!r}") if done.ok else None
    if not isinstance(answer, dict) or not isinstance(answer.get("paths"), list):
        why = f"{done.describe()}: {done.last_error_line()}" if not done.ok else str(answer)[:200]
        raise SpikeError(f"interpreter {python!r} did not say where it installs ({why})")
    return answer


def _markers() -> dict[str, str]:
    return {str(k): str(v) for k, v in default_environment().items()}


def _inside(path: str, root: str) -> bool:
    try:
        return os.path.commonpath([path, root]) == root
    except ValueError:  # another drive
        return False


# -- reading one distribution -------------------------------------------------------------


class HostDistribution(metadata.Distribution):
    """A dist-info or egg-info folder (or egg-info file), read by the host.

    The standard library parses METADATA, RECORD, requires.txt...; the files come through
    :meth:`read_text`, which reads only regular files of at most ``MAX_FILE_BYTES`` and, in a
    candidate's environment (``root``), only inside it: a link from METADATA to the user's
    key, or a named pipe that would block the host, is refused (SpikeError).
    """

    def __init__(self, folder: Path, root: str | None = None) -> None:
        self.folder = folder
        self.root = root
        #: each file is read once: the metadata is parsed again for every property asked
        self._texts: dict[str, str | None] = {}

    def __repr__(self) -> str:
        return f"<HostDistribution {self.folder}>"

    def read_text(self, filename: str | os.PathLike[str]) -> str | None:
        key = os.fspath(filename)
        if key not in self._texts:
            try:
                text: str | None = self._read(self.folder / key).decode("utf-8", errors="replace")
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError):
                text = None
            self._texts[key] = text
        return self._texts[key]

    def locate_file(self, path: str | os.PathLike[str]) -> Path:
        return self.folder.parent / path

    def _read(self, path: Path) -> bytes:
        target = str(path)
        if self.root is not None:
            target = os.path.realpath(path)
            if not _inside(target, self.root):
                raise SpikeError(f"{path} leads out of the environment ({target}): not read")
        # O_NONBLOCK: opening a named pipe does not wait for a writer (then fstat refuses it).
        fd = os.open(target, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
        too_big = SpikeError(f"{path} is larger than {MAX_FILE_BYTES // 2**20} MiB: not read")
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise SpikeError(f"{path} is not a regular file: not read")
            if info.st_size > MAX_FILE_BYTES:
                raise too_big
            data = handle.read(MAX_FILE_BYTES + 1)  # one byte more: it may have grown since
        if len(data) > MAX_FILE_BYTES:
            raise too_big
        return data

    @functools.cached_property
    def headers(self) -> Message:
        """Its core metadata, parsed once (empty when it has none)."""
        if self.read_text("METADATA") is None and self.read_text("PKG-INFO") is None:
            if not self.folder.is_file():  # an egg-info file is the metadata itself
                return Message()
        # The standard library's parser: a Message (its 3.10+ adapter subclasses it).
        return cast(Message, self.metadata)

    def header(self, name: str) -> str | None:
        """One metadata field (None when it is not there)."""
        value = self.headers.get(name)
        return None if value is None else str(value)

    def name_of(self) -> str:
        """The ``Name`` of its metadata ("" when there is none, or no metadata)."""
        return self.header("Name") or ""

    def size(self) -> int:
        """Bytes on disk of the files it installed (RECORD), bytecode left out: that depends
        on how many interpreters compiled the files, not on what was installed."""
        total = 0
        for path in self.files or ():
            if "__pycache__" in path.parts:
                continue
            where = os.path.normpath(self.locate_file(path))
            if self.root is not None and not _inside(where, self.root):
                continue  # a RECORD line naming a file elsewhere says nothing of this one
            try:
                total += os.stat(where, follow_symlinks=self.root is None).st_size
            except OSError:
                pass
        return total

    def top_level(self) -> list[str]:
        """Its top-level modules: top_level.txt, else the modules and packages in RECORD (a
        namespace package's top counts: it is where its code is imported from)."""
        listed = (self.read_text("top_level.txt") or "").split()
        if listed:
            return listed
        names: list[str] = []
        for path in self.files or ():
            parts = path.parts
            if not parts or parts[0] in ("..", "__pycache__"):
                continue
            if parts[0].endswith((".dist-info", ".egg-info", ".data")):
                continue
            if len(parts) == 1 and parts[0].endswith(".py"):
                name = parts[0][:-3]
            elif len(parts) == 1 and parts[0].endswith((".so", ".pyd")):
                name = parts[0].split(".")[0]
            elif len(parts) > 1 and parts[-1] == "__init__.py":
                name = parts[0]
            else:
                continue
            if name.isidentifier() and name not in names:
                names.append(name)
        return names


def _folders(site: Site) -> Iterator[Path]:
    for folder in site.paths:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            if entry.name.endswith((".dist-info", ".egg-info")):
                yield Path(entry.path)


def _folder_name(folder: Path) -> str:
    # name-version.dist-info, name-version-pyX.Y.egg-info, name.egg-info
    return canonicalize_name(folder.name.rsplit(".", 1)[0].split("-")[0])


class Installed:
    """The distributions of one site, found by name the way ``importlib.metadata`` finds them
    (the first folder of a name on the path), by the folder's name first and by the
    metadata's ``Name`` only when no folder is named so."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self._by_folder: dict[str, HostDistribution] = {}
        for folder in _folders(site):
            self._by_folder.setdefault(_folder_name(folder), HostDistribution(folder, site.root))
        self._by_name: dict[str, HostDistribution] | None = None

    def all(self) -> list[HostDistribution]:
        """Every distribution, the first of each name (the one imports would see)."""
        return list(self._by_folder.values())

    def find(self, name: str) -> HostDistribution | None:
        wanted = canonicalize_name(name)
        dist = self._by_folder.get(wanted)
        if dist is None or not dist.name_of():
            if self._by_name is None:
                self._by_name = {}
                for other in self._by_folder.values():
                    self._by_name.setdefault(canonicalize_name(other.name_of()), other)
            dist = self._by_name.get(wanted)
        return dist


# -- the report ---------------------------------------------------------------------------


def report(site: Site, requirement: str) -> dict[str, Any]:
    """What ``site`` has of ``requirement``'s distribution: the root, every installed
    distribution reachable from it by requirement name (whatever the requirement's marker),
    each with its requirements and size, and the marker environment. Which of those the root
    really needs is :func:`closure`'s question."""
    found: dict[str, Any] = {"python": site.python, "env": dict(site.markers)}
    installed = Installed(site)
    root = installed.find(Requirement(requirement).name)
    if root is None or not root.name_of():
        return dict(found, installed=False)
    # Everything reachable by name: a superset of the closure, small, and cheap to size.
    dists: dict[str, dict[str, Any]] = {canonicalize_name(root.name_of()): _dist(root)}
    queue = [root]
    while queue:
        for text in queue.pop().requires or ():
            name = _required_name(text)
            if name is None or name in dists:
                continue
            dep = installed.find(name)
            if dep is not None and dep.name_of():
                dists[name] = _dist(dep)
                queue.append(dep)
    direct_url = root.read_text("direct_url.json")
    try:
        direct = json.loads(direct_url) if direct_url else None
    except ValueError:
        direct = None
    return dict(
        found,
        installed=True,
        name=root.name_of(),
        version=root.version,
        requires_python=root.header("Requires-Python"),
        requires=list(root.requires or ()),
        modules=root.top_level(),
        location=str(root.locate_file("")),
        installer=(root.read_text("INSTALLER") or "").strip() or None,
        direct_url=direct,
        dists=list(dists.values()),
    )


def _dist(dist: HostDistribution) -> dict[str, Any]:
    return {
        "name": dist.name_of(),
        "version": dist.version,
        "requires": list(dist.requires or ()),
        "size": dist.size(),
        "uv_built": dist.read_text("uv_build.json") is not None,
    }


def _required_name(text: str) -> str | None:
    try:
        return canonicalize_name(Requirement(text).name)
    except InvalidRequirement:
        return None  # pip would refuse it too; it names nothing we can follow


def broken(site: Site) -> list[str]:
    """What ``pip check`` would say of ``site``, worked out from its files, in pip's words: a
    requirement of an installed distribution (its marker evaluated without extras, as pip
    does) that is not installed, or not at a version it accepts. pip would have to run in the
    environment's interpreter, where its ``.pth`` files run first and can hide either."""
    installed = Installed(site)
    env = dict(site.markers, extra="")
    lines: list[str] = []
    for dist in installed.all():
        name = dist.name_of()
        for text in dist.requires or () if name else ():
            try:
                req = Requirement(text)
                if req.marker is not None and not req.marker.evaluate(env):
                    continue
                dep = installed.find(req.name)
                if dep is None:
                    lines.append(f"{name} {dist.version} requires {req.name}, which is not installed.")
                elif not req.specifier.contains(dep.version, prereleases=True):
                    lines.append(
                        f"{name} {dist.version} has requirement {req}, "
                        f"but you have {dep.name_of()} {dep.version}."
                    )
            except (InvalidRequirement, InvalidVersion):
                continue  # pip skips what it cannot parse too
    return lines


def closure(report: Mapping[str, Any], requirement: str) -> dict[str, str | None]:
    """Everything ``requirement`` needs in that interpreter: canonical name -> installed
    version, None when needed but not installed; the root itself left out."""
    dists = {canonicalize_name(d["name"]): d for d in report.get("dists", ()) if d.get("name")}
    env = dict(report.get("env") or {})
    root = Requirement(requirement)
    root_name = canonicalize_name(root.name)
    found: dict[str, str | None] = {}
    todo = [(root_name, frozenset(root.extras))]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, extras = todo.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        dist = dists.get(name)
        found.setdefault(name, None if dist is None else str(dist["version"]))
        for text in dist["requires"] if dist is not None else ():
            try:
                req = Requirement(text)
            except InvalidRequirement:
                continue  # pip would refuse it too; it names nothing we can follow
            if req.marker is None or _marker_applies(req.marker, env, extras):
                todo.append((canonicalize_name(req.name), frozenset(req.extras)))
    found.pop(root_name, None)
    return found


def sizes(report: Mapping[str, Any], names: set[str]) -> int:
    """Bytes on disk (bytecode left out) of the distributions ``names`` of the report."""
    return sum(int(d["size"]) for d in report.get("dists", ()) if canonicalize_name(d["name"]) in names)


def describe(report: Mapping[str, Any], requirement: str) -> dict[str, Any]:
    """The probes' view of a report: ``dependencies`` (name -> version or None),
    ``size_bytes`` (the root), ``deps_size_bytes`` (installed dependencies)."""
    info = {k: v for k, v in report.items() if k not in ("dists", "env")}
    info["python_version"] = (report.get("env") or {}).get("python_version")
    if not report.get("installed"):
        return info
    deps = closure(report, requirement)
    info["dependencies"] = deps
    info["size_bytes"] = sizes(report, {canonicalize_name(str(report["name"]))})
    info["deps_size_bytes"] = sizes(report, {n for n, v in deps.items() if v is not None})
    return info


def _marker_applies(marker: Marker, env: Mapping[str, str], extras: frozenset[str]) -> bool:
    if not extras:
        return marker.evaluate(dict(env, extra=""))
    return any(marker.evaluate(dict(env, extra=extra)) for extra in extras)
