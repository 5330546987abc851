"""Throwaway environments for candidates: build, cache, reuse, and describe what got installed.

An environment is keyed by (interpreter, requirement set, index settings, backend) and lives
in a cache folder. It is reused only when its completion marker exists: the marker is written
last, so a build that died half-way is rebuilt, never trusted. A lock file per entry keeps two
runs sharing the cache from building the same entry at once. The marker also holds the digest
of the environment's installed files, taken by the host when the install ended; one whose
files changed since (a file edited, a ``.pth`` added) is rebuilt, and ``rebuilt`` says why.

Backends, fastest first (measured on a 2-core machine, tiny wheels, local index):
``uv`` (``uv venv`` + ``uv pip install``, ~0.3 s), ``venv`` with the host pip driving a
pip-less venv through ``pip --python`` (~1.5 s; needs pip >= 22.3), ``venv`` with its own
pip from ensurepip (~7.5 s: ensurepip alone costs ~6.5 s).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import json
import os
import platform
import re
import shutil
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from pytest_spike._core import behaviour, sandbox, timeline
from pytest_spike._core.runner import RunResult, last_json_line, run
from pytest_spike.envs import digest, inspection
from pytest_spike.envs.store import build_once, record_host_change
from pytest_spike.index.pipconfig import pip_config_values
from pytest_spike.model import BACKENDS, SpikeError, default_cache_root

MARKER = "spike-env.json"
#: Bumped when the layout or the marker's content changes, so old entries are not trusted.
CACHE_VERSION = "1"
#: Index settings that change what a resolver sees (pip's and uv's spellings).
INDEX_ENV_VARS = (
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "PIP_FIND_LINKS",
    "PIP_NO_INDEX",
    "UV_INDEX_URL",
    "UV_DEFAULT_INDEX",
    "UV_INDEX",
    "UV_EXTRA_INDEX_URL",
    "UV_FIND_LINKS",
    "UV_NO_INDEX",
)
_PIP_CONFIG_KEYS = ("index-url", "extra-index-url", "find-links", "no-index")
#: Variables of ours that must not leak into the tools' interpreters.
_DROPPED_ENV = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")
#: The script that byte-compiles a built environment (see :meth:`EnvManager._compile_argv`).
COMPILE_SCRIPT = os.path.join(behaviour.BOOT, "_spike_compile.py")
#: The shell that runs an install and its compile in one box (see :meth:`EnvManager._install`).
_SHELL = "/bin/sh"
#: Its script: the compile's interpreter, script, folder and pattern, then the installer's
#: argv, all as arguments (no value is ever part of a shell's text); the compile's flags are
#: :meth:`EnvManager._compile_argv`'s. Exits with the installer's status.
_INSTALL_THEN_COMPILE = """python=$1 script=$2 lib=$3 pattern=$4
shift 4
"$@" || exit $?
"$python" -I -S "$script" "$lib" "$pattern" >/dev/null 2>&1
exit 0
"""
_EXCERPT_LINES = 25
#: The last line of a traceback: what a failing build backend raised.
_EXCEPTION = re.compile(r"[A-Za-z_][\w.]*(Error|Exception|Exit)(: |$)")
#: pip's progress lines: they say what it did, not why it failed.
_NOISE = re.compile(
    r"\s*(Looking in |Processing |INFO: |Collecting |Downloading |Using cached |Obtaining "
    r"|Requirement already |Getting requirements |Preparing metadata |Building wheel "
    r"|Using Python )"
)


@dataclass
class EnvResult:
    """What building (or reusing) one environment gave."""

    ok: bool
    python: str
    path: str
    backend: str
    requirements: list[str]
    reused: bool = False
    install_time_s: float = 0.0
    #: when the build ended (epoch seconds): with install_time_s, when it ran
    built_at: float = 0.0
    candidate: str = ""
    version: str | None = None
    from_sdist: bool | None = None
    #: every distribution in the candidate's closure that was built from an sdist
    sdists: list[str] = field(default_factory=list)
    dependencies: list[str] = field(default_factory=list)
    size_bytes: int = 0
    error: str = ""
    error_line: str = ""
    #: why a failed build is not the candidate's fault ("network", "timeout", "spike"), or ""
    not_candidate: str = ""
    #: the index URL carried credentials and a build backend ran in the installer step that
    #: held them (wheels alone did not install): said on the card
    credentials_exposed: bool = False
    #: what the build's boxed steps tried (see _core/behaviour.py), kept with the environment
    behaviour: list[dict[str, Any]] = field(default_factory=list)
    #: why a cached environment was rebuilt rather than reused (the first file that changed
    #: since it was built), "" when it was not: said by the install probe, never kept
    rebuilt: str = ""

    @property
    def dependency_count(self) -> int:
        return len(self.dependencies)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EnvResult:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


def find_uv() -> str | None:
    """The uv executable beside this interpreter, on PATH, or from the ``uv`` package, else None."""
    # Beside sys.executable first: a pyenv shim on PATH costs ~0.2 s a call to resolve.
    beside = Path(sys.executable).parent / ("uv.exe" if sys.platform == "win32" else "uv")
    if beside.is_file():
        return str(beside)
    found = shutil.which("uv")
    if found:
        return found
    try:
        from uv import find_uv_bin

        return str(find_uv_bin())
    except Exception:  # the uv package is optional and may be half-installed
        return None


def choose_uv(backend: str, what: str = "environment backend") -> str | None:
    """The uv to use for ``backend``, or None for pip: every tool that installs, resolves or
    checks a candidate environment chooses here, so ``--spike-backend`` means one thing.

    "auto" takes uv when it is installed, "venv" never does, "uv" insists (SpikeError without it).
    """
    if backend not in BACKENDS:
        raise SpikeError(f"{what} {backend!r} is not one of {', '.join(BACKENDS)}")
    uv = find_uv() if backend in ("auto", "uv") else None
    if backend == "uv" and uv is None:
        raise SpikeError(
            f"{what} 'uv' asked for, but uv is not installed: pip install uv, or use the 'venv' backend"
        )
    return uv


def host_pip_version() -> Version | None:
    """The version of the pip installed next to the running interpreter, if any."""
    try:
        return Version(metadata.version("pip"))
    except (metadata.PackageNotFoundError, ValueError):
        return None


def pip_command(python: str) -> list[str]:
    """The argv prefix of a pip that installs into ``python``'s environment.

    The host pip drives other interpreters with ``--python`` (pip >= 22.3), so a target
    needs no pip of its own; older host pips fall back to the target's ``-m pip``.
    """
    version = host_pip_version()
    if python == sys.executable or version is None or version < Version("22.3"):
        return [python, "-m", "pip"]
    return [sys.executable, "-m", "pip", "--python", python]


def tool_env() -> dict[str, str]:
    """The environment for pip / uv / venv children: ours, minus import-path overrides."""
    return {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}


def installer_cache(root: str | os.PathLike[str], owner: str | None) -> Path:
    """The installer cache (uv's and pip's) of the steps that install ``owner`` (a candidate,
    as a name or requirement; None: pytest-spike's own layer, in ``_own``, a name no
    candidate's folder can have), in the cache root ``root``.

    One per candidate: a step that installs a candidate runs build backends (the
    candidate's, and those of any sdist it needs) with its cache writable. In one cache
    shared by every candidate, a build wrote into the files the cache keeps of another
    candidate's wheel, and the next environment installed from the cache held them (a
    hostile sdist's backend changed goodpkg's module in goodpkg's rebuilt environment).
    A candidate's own cache holds only what its own steps fetched and built."""
    if owner is None:
        return Path(root) / "installer" / "_own"
    try:
        name: str = canonicalize_name(Requirement(owner).name)
    except InvalidRequirement:
        name = ""
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", name):  # a path or URL: a name of its own
        name = "_h-" + hashlib.sha256(owner.encode()).hexdigest()[:16]  # never a project's name
    return Path(root) / "installer" / name


def installer_box(
    target: str | os.PathLike[str],
    python: str | None = None,
    *,
    stage: str = "install",
    write: Sequence[str] = (),
    cache: str | os.PathLike[str] | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """``runner.run`` arguments for an installer step that fills ``target``.

    The installer (and every build backend it runs) is boxed with the network, for the
    package index, but with the box's empty HOME and allow-listed environment: there is
    nothing of the user's to send. It sees ``python`` (the interpreter it installs for), the
    index's local folders (``file://`` find-links), and may write ``target``, ``write`` and
    its own cache ``cache`` (uv's and pip's: the :func:`installer_cache` of what it
    installs, default pytest-spike's own in the default cache root; never the user's: a
    build backend could otherwise plant wheels in the user's own installer cache).
    ``extra_env`` (the caller's ``PIP_*`` settings) wins over pip's configuration.
    """
    extra = {**installer_env(), **(extra_env or {})}
    read = list(sandbox.interpreter_paths(python)) if python else []
    read += _local_index_folders(extra)
    writable = [os.fspath(target), *write]
    if extra.get("PIP_TARGET"):
        writable.append(extra["PIP_TARGET"])
        Path(extra["PIP_TARGET"]).mkdir(parents=True, exist_ok=True)
    folder = Path(cache) if cache is not None else installer_cache(default_cache_root(), None)
    (folder / "uv").mkdir(parents=True, exist_ok=True)
    (folder / "pip").mkdir(parents=True, exist_ok=True)
    if str(folder) not in writable:  # the folder a staged build fills (EnvManager._staging)
        writable.append(str(folder))
    extra.update({"UV_CACHE_DIR": str(folder / "uv"), "PIP_CACHE_DIR": str(folder / "pip")})
    box = sandbox.Box(stage, read=tuple(read), write=tuple(writable), network=True)
    return {"box": box, "extra_env": extra}


def installer_env() -> dict[str, str]:
    """pip's index settings as ``PIP_*`` variables: a boxed pip sees no config file."""
    env = {"PIP_" + key.upper().replace("-", "_"): value for key, value in pip_index_settings().items()}
    env.update({"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"})
    for name in ("UV_INDEX_URL", "UV_EXTRA_INDEX_URL", "UV_FIND_LINKS", "UV_NO_INDEX", "UV_OFFLINE"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def _local_index_folders(env: Mapping[str, str]) -> list[str]:
    """The folders of ``file://`` (or plain path) indexes and find-links, for the box to show."""
    folders: list[str] = []
    settings = pip_index_settings()
    for key in ("index-url", "extra-index-url", "find-links"):
        values = settings.get(key, "").split() + env.get("PIP_" + key.upper().replace("-", "_"), "").split()
        for value in values:
            path = value[len("file://") :] if value.startswith("file://") else value
            if path.startswith("/") and os.path.exists(path):
                # A file index's pages may link to files beside its simple/ folder.
                folders.append(
                    os.path.dirname(path.rstrip("/")) if path.rstrip("/").endswith("/simple") else path
                )
    return folders


def pip_index_settings() -> dict[str, str]:
    """pip's index settings (config files, then ``PIP_*`` variables, later wins)."""
    values = pip_config_values(os.environ)
    settings = {key: values[key] for key in _PIP_CONFIG_KEYS if key in values}
    for key in _PIP_CONFIG_KEYS:
        value = os.environ.get("PIP_" + key.upper().replace("-", "_"))
        if value is not None:
            settings[key] = value
    return settings


def uv_index_args(settings: Mapping[str, str] | None = None) -> list[str]:
    """pip's index settings as uv arguments: uv reads neither pip.conf nor ``PIP_*``."""
    settings = pip_index_settings() if settings is None else settings
    args: list[str] = []
    if "index-url" in settings:
        args += ["--index-url", settings["index-url"].strip()]
    extra = settings.get("extra-index-url", "").split()
    for url in extra:
        args += ["--extra-index-url", url]
    if extra:
        # pip takes the best version across all indexes; uv, by default, the first index
        # that has the project, which would make an older mirror win over the index.
        args += ["--index-strategy", "unsafe-best-match"]
    for link in settings.get("find-links", "").split():
        args += ["--find-links", link]
    if settings.get("no-index", "").strip().lower() in ("1", "true", "yes", "on"):
        args.append("--no-index")
    return args


def resolver_excerpt(text: str) -> tuple[str, str]:
    """(excerpt, one line) of a pip / uv failure: from the first error line on.

    The line is the build's own exception when a build backend failed (the last
    ``SomethingError: ...`` line), else the resolver's first explanation.
    """
    lines = [line.rstrip() for line in text.splitlines()]
    start = next((i for i, line in enumerate(lines) if re.match(r"\s*(ERROR|error|×)\b", line)), None)
    body = [
        line
        for line in (lines if start is None else lines[start:])
        if line.strip() and not _NOISE.match(line)
    ]
    excerpt = "\n".join(body[:_EXCERPT_LINES])
    stripped = [line.strip() for line in body]
    exceptions = [ln for ln in stripped if _EXCEPTION.match(ln)]
    causes = [ln[len("cause:") :].strip() for ln in stripped if ln.startswith("cause:")]
    errors = [ln for ln in stripped if re.match(r"(ERROR|error):", ln)]
    best = exceptions[-1:] or causes[:1] or errors[:1] or stripped[:1]
    return excerpt, best[0] if best else ""


def normalize_requirements(requirements: Sequence[str], where: str = "requirement") -> list[str]:
    """Validated, canonically named, de-duplicated, sorted requirement strings."""
    normal: set[str] = set()
    for text in requirements:
        try:
            req = Requirement(text)
        except InvalidRequirement as exc:
            raise SpikeError(
                f"{where}: {text!r} is not a valid requirement ({str(exc).splitlines()[0]})"
            ) from None
        req.name = canonicalize_name(req.name)
        normal.add(str(req))
    return sorted(normal)


_INTERPRETER = (
    "import json, platform, sys; print(json.dumps({'version': platform.python_version(), "
    "'implementation': sys.implementation.name, 'executable': sys.executable}))"
)


class EnvManager:
    """Builds and caches one environment per (interpreter, requirements, index settings)."""

    def __init__(
        self,
        cache_dir: str | os.PathLike[str],
        *,
        python: str = sys.executable,
        backend: str = "auto",
        fresh: bool = False,
        index_args: Sequence[str] = (),
        timeout: float = 900.0,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        # Absolute: tools run with the cache as their cwd, and venvs record their own path.
        self.cache_dir = Path(cache_dir).absolute()
        self.python = python if os.sep in python else shutil.which(python) or python
        self.fresh = fresh
        self.index_args = list(index_args)
        self.timeout = timeout
        self.progress = progress
        self.uv = choose_uv(backend)
        self.backend = "uv" if self.uv else "venv"
        self._interpreter: dict[str, str] | None = None
        #: several threads may build environments at once (the entries' file locks keep
        #: them off each other's entry); this guards the manager's own state
        self._lock = threading.Lock()
        #: entries this manager built: ``fresh`` means once per run, not once per call
        self._built: set[Path] = set()

    def interpreter(self) -> dict[str, str]:
        """Version, implementation and executable of the target interpreter (asked once)."""
        with self._lock:
            return self._ask_interpreter()

    def _ask_interpreter(self) -> dict[str, str]:
        if self._interpreter is None and self.python == sys.executable:
            # This interpreter answers without a child (~50 ms a run), as the child would.
            self._interpreter = {
                "version": platform.python_version(),
                "implementation": sys.implementation.name,
                "executable": sys.executable,
            }
        if self._interpreter is None:
            result = run([self.python, "-I", "-c", _INTERPRETER], timeout=60, env=tool_env())
            if not result.ok:
                raise SpikeError(
                    f"interpreter {self.python!r} does not run ({result.describe()}: "
                    f"{result.last_error_line()}); point to a working Python"
                )
            answer = last_json_line(result, f"interpreter {self.python!r}")
            if not isinstance(answer, dict):
                raise SpikeError(
                    f"interpreter {self.python!r}: answered {str(answer)[:200]!r}, not its version"
                )
            self._interpreter = answer
        return self._interpreter

    def key(self, requirements: Sequence[str]) -> str:
        """The cache key of an environment holding ``requirements``."""
        index_env = {name: os.environ[name] for name in INDEX_ENV_VARS if name in os.environ}
        ident = {
            "cache": CACHE_VERSION,
            "python": os.path.abspath(self.python),
            "interpreter": self.interpreter(),
            "requirements": normalize_requirements(requirements),
            "index": {"settings": pip_index_settings(), "env": index_env, "args": self.index_args},
            "backend": self.backend,
        }
        blob = json.dumps(ident, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:20]

    def path(self, requirements: Sequence[str]) -> Path:
        """Where the environment for ``requirements`` lives (built or not)."""
        return self.cache_dir / self.key(requirements)

    def ensure(self, requirements: Sequence[str]) -> EnvResult:
        """Build or reuse an environment with ``requirements`` installed.

        The first requirement is the candidate: its version, wheel-or-sdist, dependency
        closure and size are reported. An install that fails is returned (``ok`` False,
        the resolver's text in ``error``), not raised, and not cached; bad input raises
        SpikeError. A reused result keeps the ``install_time_s`` of the build.
        """
        if not requirements:
            raise SpikeError("no requirements to build an environment for")
        candidate = normalize_requirements(requirements[:1])[0]
        entry = self.path(requirements)
        built: list[EnvResult] = []
        changed: list[str] = []

        def usable(marker: Mapping[str, Any]) -> bool:
            if self.fresh and entry not in self._built:
                return False
            try:
                return Path(EnvResult.from_dict(marker).python).exists()
            except TypeError:
                return False  # a marker of another shape is the same as none: rebuild

        def build(folder: Path) -> dict[str, Any] | None:
            self._built.add(entry)
            built.append(self._build(folder, list(requirements), candidate, cached=not changed))
            return built[0].to_dict() if built[0].ok else None

        # A venv records its own path, so it is built in place: the marker says it is complete.
        cached = build_once(
            entry,
            MARKER,
            build,
            timeout=self.timeout,
            in_place=True,
            reuse=usable,
            files=digest.environment_files,
            on_change=changed.append,
        )
        if built:
            built[0].rebuilt = cached.changed
            if cached.changed:
                self._say(
                    f"rebuilt the cached environment for {candidate}: {cached.changed} since it was built"
                )
            return built[0]
        assert cached.document is not None and cached.reused
        result = EnvResult.from_dict(cached.document)
        result.reused = True
        return result

    def host_changed(self, result: EnvResult, *paths: Path) -> bool:
        """Record that pytest-spike itself changed ``paths`` in ``result``'s environment (the
        matrix runner's ``.pth``), so the next reuse does not take them for tampering. False
        when other files changed too: then the next reuse rebuilds it."""
        entry = Path(result.path)
        keys = [path.relative_to(entry).as_posix() for path in paths]
        return record_host_change(entry, MARKER, digest.environment_files, keys, timeout=self.timeout)

    def _say(self, text: str) -> None:
        if self.progress is not None:
            self.progress(text)

    def _build(self, entry: Path, requirements: list[str], candidate: str, cached: bool = True) -> EnvResult:
        with timeline.span("env-build", candidate=candidate, python=self.python):
            return self._build_timed(entry, requirements, candidate, cached)

    def _build_timed(self, entry: Path, requirements: list[str], candidate: str, cached: bool) -> EnvResult:
        deadline = time.monotonic() + self.timeout
        start = time.perf_counter()
        self._say(f"building environment for {' '.join(requirements)} ({self.backend})")
        python = str(_env_python(entry))
        result = EnvResult(
            ok=False,
            python=python,
            path=str(entry),
            backend=self.backend,
            requirements=requirements,
            candidate=candidate,
        )
        cache = installer_cache(self.cache_dir.parent, candidate)
        staging = self._staging(cache, entry)
        if staging is None:
            entry.mkdir(parents=True, exist_ok=True)  # the box binds it writable: it must exist
        with behaviour.recording() as seen, _removed(staging):
            with tempfile.TemporaryDirectory(prefix="spike-report-") as scratch:
                report = Path(scratch) / "report.json"
                # Boxed: the installer writes only this entry (or its staging folder, in its
                # cache), its cache and the report; no other environment of the cache is in view.
                boxed = installer_box(
                    entry if staging is None else cache, self.python, write=(scratch,), cache=cache
                )
                where = entry if staging is None else staging
                make, install = self._commands(where, str(_env_python(where)), requirements, report, cached)
                if staging is not None:
                    make.append("--relocatable")  # its scripts run from the entry, once moved
                sandbox.warm_up()  # a process's first boxed step's checks, while the venv is made
                done = self._make_venv(make, deadline, scratch)
                if done.ok and self._credentials():
                    # An index URL with a password: install wheels only first, so no build backend
                    # (candidate code) runs in a step that holds it; only where that fails is an
                    # sdist built with the credentials in reach, and the card says so.
                    wheels_only = [*install, "--only-binary", ":all:"]
                    done = self._install(wheels_only, where, deadline, scratch, boxed)
                    result.credentials_exposed = not done.ok
                    if not done.ok:
                        done = self._install(install, where, deadline, scratch, boxed)
                elif done.ok:
                    done = self._install(install, where, deadline, scratch, boxed)
                built = _pip_report_sdists(report) | _uv_output_sdists(done)
                # Exposed only where the retry really built something from source.
                result.credentials_exposed = result.credentials_exposed and bool(built)
            moved = ("", "") if not done.ok or staging is None else _move_built(staging, entry)
        result.behaviour = [b.to_dict() for b in seen]
        result.install_time_s = time.perf_counter() - start
        result.built_at = time.time()
        if moved[0]:
            result.error = result.error_line = moved[0]
            result.not_candidate = moved[1]
            return result
        if not done.ok:
            result.error, result.error_line = _failure(done)
            result.not_candidate = _environment_cause(done)
            return result
        try:
            # Read by the host from the environment's files: its interpreter would run the
            # .pth files the candidate installed before any script of ours.
            site = inspection.env_site(python, entry, base=self.python)
            inspected = inspection.report(site, candidate)
        except SpikeError as exc:
            result.error = result.error_line = str(exc)
            result.not_candidate = "spike"
            return result
        _describe(result, inspected, built)
        result.ok = True
        return result

    def _compile_argv(self, where: Path) -> list[str]:
        """The command that byte-compiles the environment built in ``where``, all but
        :data:`NOT_COMPILED` (``_spike_compile.py`` in the boot folder every boxed step sees).

        Boxed steps see an environment read-only: without ``.pyc`` files every run would
        compile each module it imports again. uv's ``--compile-bytecode`` (and pip's default)
        compile every module installed, ~260 of them pygments' lexers that nothing imports
        but pygments itself on request (pytest needs pygments from 8.4: every upstream-tests
        environment holds them): pytest 9.2, pygments and toml compile in 0.75 s with them,
        0.35 s without (compileall on two cores; ~0.7 s of CPU less).
        ``-I -S``: the environment's ``.pth`` files (candidate code) do not run; the script
        needs only the standard library. A module that does not compile (a file for another
        Python) is the installer's business, as it was: the result is not looked at.
        """
        lib = where / ("Lib" if sys.platform == "win32" else "lib")
        return [str(_env_python(where)), "-I", "-S", COMPILE_SCRIPT, str(lib), NOT_COMPILED]

    def _staging(self, cache: Path, entry: Path) -> Path | None:
        """Where a boxed uv builds ``entry`` before it is moved in place: a new folder in the
        candidate's installer ``cache``; None to build it in place.

        The box binds the cache and the entry as two mounts, and a hard link never crosses
        mounts (``EXDEV``): uv copied every file of its cache into a boxed environment, where
        unboxed it links them (~0.4 s more for pytest's ~500 files on this machine's disk).
        Built inside the cache's mount, it links them; the host then renames the folder to
        the entry (a venv made ``--relocatable``, so its scripts do not name the staging
        folder). In place with pip (it copies anyway), unboxed (one mount), and where the
        cache and the entry are not on one file system (a rename could not move it)."""
        if self.uv is None or sandbox.inside() or not sandbox.status().boxed:
            return None
        cache.mkdir(parents=True, exist_ok=True)
        entry.parent.mkdir(parents=True, exist_ok=True)
        if os.stat(cache).st_dev != os.stat(entry.parent).st_dev:
            return None
        return Path(tempfile.mkdtemp(prefix=_STAGING_PREFIX, dir=cache))

    def _make_venv(self, argv: list[str], deadline: float, scratch: str) -> RunResult:
        """Make the empty environment (``uv venv``, ``python -m venv``) on the host, unboxed.

        Nothing of a candidate's runs in it: the interpreter is this run's (or the matrix's),
        the folder is new and empty, and uv's cache is pytest-spike's own (the installer
        cache of no candidate: what a candidate's steps wrote, this step never reads). Its
        environment is a box's allow-list, without uv's configuration files, so the
        environment is made as it was boxed. A box cost it bubblewrap's start and uv's query
        of the interpreter on every build (the query now kept in that cache): ~40 ms on the
        longest path of a cold upgrade spike, where the build runs beside the tests.
        """
        own = installer_cache(self.cache_dir.parent, None) / "uv"
        env = sandbox.box_env(
            os.environ,
            {"UV_CACHE_DIR": str(own), "UV_NO_CONFIG": "1", "UV_PYTHON_DOWNLOADS": "never"},
            scratch,
        )
        env.pop(sandbox.INSIDE_ENV, None)  # not a box
        env.pop("PYTHONPATH", None)  # the running environment's, not the new one's
        left = max(1.0, deadline - time.monotonic())
        return run(argv, timeout=left, cwd=scratch, env=env)

    def _install(
        self, argv: list[str], where: Path, deadline: float, scratch: str, boxed: Mapping[str, Any]
    ) -> RunResult:
        """Run the installer's ``argv`` (candidate code: build backends), boxed, then, once it
        ended well, byte-compile the environment ``where`` (:meth:`_compile_argv`).

        Boxed, both in one box: a shell runs the installer, then the compile (its output
        dropped, its status not looked at), and exits with the installer's status. The
        compile had a box of its own: a cold upgrade spike's environment was ready 0.345 s
        after the session's start, 0.300 s in one box (medians of 10 each, in turn).
        Unboxed, one after the other, as before.
        """
        left = max(1.0, deadline - time.monotonic())
        compile_argv = self._compile_argv(where)
        if not (sandbox.status().boxed and not sandbox.inside() and os.access(_SHELL, os.X_OK)):
            done = run(argv, timeout=left, cwd=scratch, env=tool_env(), **boxed)
            if done.ok:
                left = max(1.0, deadline - time.monotonic())
                run(compile_argv, timeout=left, cwd=scratch, env=tool_env(), **boxed)
            return done
        python, _, _, script, lib, pattern = compile_argv
        box: sandbox.Box = boxed["box"]
        # The shell is the step's first program: the installer's own folders stay in view.
        in_view = dataclasses.replace(box, read=(*box.read, *sandbox.interpreter_paths(argv[0])))
        both = [_SHELL, "-c", _INSTALL_THEN_COMPILE, "sh", python, script, lib, pattern, *argv]
        done = run(both, timeout=left, cwd=scratch, env=tool_env(), shown=argv, **{**boxed, "box": in_view})
        return dataclasses.replace(done, argv=tuple(argv))  # the installer's, in what is said

    def _credentials(self) -> bool:
        """Whether an index this manager installs from has a user or password in its URL."""
        settings = pip_index_settings()
        urls = [*self.index_args, *(settings.get(k, "") for k in ("index-url", "extra-index-url"))]
        return any(urlsplit(url).password or urlsplit(url).username for text in urls for url in text.split())

    def _commands(
        self, entry: Path, python: str, reqs: list[str], report: Path, cached: bool = True
    ) -> tuple[list[str], list[str]]:
        """The installer's commands: the one that makes the empty environment, the one that
        installs ``reqs`` into it. ``cached`` False (a rebuild because the environment's files
        changed) keeps the installer from its cache: uv hard-links files from its cache, so an
        edit made in the environment is an edit of the cache's copy too."""
        if self.uv is not None:
            # Compiled afterwards (_compile_argv), not with --compile-bytecode, which compiles everything.
            return (
                [self.uv, "venv", "--quiet", "--python", self.python, str(entry)],
                [
                    self.uv,
                    "pip",
                    "install",
                    "--python",
                    python,
                    *(() if cached else ("--no-cache",)),
                    *uv_index_args(),
                    *self.index_args,
                    *reqs,
                ],
            )
        pip = pip_command(python)
        without_pip = [] if pip[0] == python else ["--without-pip"]
        return (
            [self.python, "-m", "venv", *without_pip, str(entry)],
            [
                *pip,
                "install",
                "--no-compile",  # compiled afterwards (_compile_argv)
                "--no-input",
                "--disable-pip-version-check",
                "--progress-bar",
                "off",
                "--report",
                str(report),
                *(() if cached else ("--no-cache-dir",)),
                *self.index_args,
                *reqs,
            ],
        )


#: Modules left uncompiled in environments and layers (a ``compileall -x`` pattern): pytest
#: imports pygments with its Python and diff lexers only; the ~260 other lexer modules (8 MB
#: of a layer's 12) load only when something asks pygments for another language, never in a
#: child pytest. Compiling them was half of a layer's compile time, the larger part of a cold
#: layer (benchmarks/README.md), and ~0.7 s of CPU in each environment that holds pytest.
NOT_COMPILED = r"pygments[/\\]lexers[/\\](?!(__init__|_mapping|python|diff)\.py)"


#: The staging folders of boxed builds in an installer cache (see :meth:`EnvManager._staging`).
_STAGING_PREFIX = "building-"


@contextlib.contextmanager
def _removed(folder: Path | None) -> Iterator[None]:
    """Remove ``folder`` (a staging folder) at the end, if it is still there (a failed build)."""
    try:
        yield
    finally:
        if folder is not None and os.path.lexists(folder):
            if os.path.islink(folder):
                os.unlink(folder)
            else:
                shutil.rmtree(folder, ignore_errors=True)


def _move_built(staging: Path, entry: Path) -> tuple[str, str]:
    """Move a boxed build's staging folder to its entry, once its steps have ended (nothing
    of the candidate's runs any more); why it could not be ('' when it was) and, as
    :attr:`EnvResult.not_candidate`, whose fault that is. Only a real folder: the build
    could write its cache, and a link put in the folder's place would make the entry (bound
    in later boxes) a view of whatever it points at. Across two mounts of one file system
    (a rename cannot cross them), copied (links inside kept as links)."""
    try:
        if not stat.S_ISDIR(os.lstat(staging).st_mode):
            # The candidate's build alone could write there: its install failed.
            return (
                f"the build replaced its environment's folder ({staging}) with something else than a folder",
                "",
            )
        try:
            os.rename(staging, entry)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            shutil.copytree(staging, entry, symlinks=True)
    except OSError as exc:
        return f"the built environment could not be moved to {entry}: {exc}", "spike"
    return "", ""


def _env_python(entry: Path) -> Path:
    if sys.platform == "win32":  # pragma: no cover
        return entry / "Scripts" / "python.exe"
    return entry / "bin" / "python"


#: What pip and uv print when the index could not be reached, rather than refusing the candidate.
_NETWORK_TROUBLE = re.compile(
    r"NewConnectionError|Failed to establish a new connection|Temporary failure in name resolution"
    r"|Name or service not known|Network is unreachable|Connection refused|ConnectTimeoutError"
    r"|ReadTimeoutError|Max retries exceeded|error sending request|dns error|operation timed out"
    r"|Could not fetch URL|connection reset|SSLError|Failed to fetch",
    re.IGNORECASE,
)


def _environment_cause(done: RunResult) -> str:
    """Why a failed install is the environment's doing and not the candidate's, or ""."""
    if done.timed_out:
        return "timeout"  # a time limit too tight for a cold cache says nothing about the package
    if _NETWORK_TROUBLE.search(f"{done.stderr}\n{done.stdout}"):
        return "network"
    return ""


def _failure(done: RunResult) -> tuple[str, str]:
    # pip and uv explain failures on stderr; stdout only holds progress unless stderr is empty
    excerpt, line = resolver_excerpt(done.stderr if done.stderr.strip() else done.stdout)
    if done.timed_out or done.signal is not None or not line:
        line = f"{Path(done.argv[0]).name} {done.describe()}" + (f": {line}" if line else "")
    return excerpt, line


def _pip_report_sdists(report: Path) -> set[str]:
    """Names pip installed from something that is not a wheel (it had to build them)."""
    if not report.is_file():
        return set()
    try:
        data = json.loads(report.read_text("utf-8"))
    except (OSError, ValueError):
        return set()
    names: set[str] = set()
    for item in data.get("install", []):
        url = (item.get("download_info") or {}).get("url", "")
        if not url.split("#")[0].endswith(".whl"):
            names.add(canonicalize_name(item["metadata"]["name"]))
    return names


def _uv_output_sdists(done: RunResult) -> set[str]:
    """uv prints ``Built name==version`` for each wheel it had to build in this run."""
    found = re.findall(r"^\s*Built (\S+?)==", done.stderr, flags=re.MULTILINE)
    return {canonicalize_name(name) for name in found}


def _describe(result: EnvResult, report: Mapping[str, Any], built: set[str]) -> None:
    """Fill the candidate's version, closure, size and sdist flags from the inspection."""
    root = canonicalize_name(Requirement(result.candidate).name)
    installed = {n for n, v in inspection.closure(report, result.candidate).items() if v is not None}
    built |= {canonicalize_name(d["name"]) for d in report.get("dists", ()) if d.get("uv_built")}
    found = bool(report.get("installed"))
    result.version = str(report["version"]) if found else None
    result.from_sdist = (root in built) if found else None
    result.dependencies = sorted(installed)
    result.sdists = sorted(n for n in installed | ({root} if found else set()) if n in built)
    result.size_bytes = inspection.sizes(report, installed | {root})
