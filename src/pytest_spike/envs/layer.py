"""Re-run a candidate's own tests inside its environment, with a child pytest.

A candidate that is not installed in the running environment lives in an environment of
its own, without pytest. Rather than installing pytest and pytest-spike into every such
environment, the child interpreter adds a *layer*: a folder holding copies of the running
environment's pytest-spike and everything it needs (pytest, pluggy, packaging...), built
once per interpreter and plugin version. The layer is appended to ``sys.path`` only in the
child pytest run (``site.addsitedir``), after the environment's own packages, so the
candidate's dependencies win and the built-in probes never see it.

A layer is reused only while its files are the ones it was built with (their sizes and
modification times, see ``digest.py``): one that changed is rebuilt, and said so.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import platform
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name

from pytest_spike._core import runner, sandbox, witness
from pytest_spike._core.files import json_object, load_json_document, write_atomic
from pytest_spike.envs import digest, inspection
from pytest_spike.envs.digest import PACKAGE_DIR, source_digest
from pytest_spike.envs.manager import NOT_COMPILED, installer_box, pip_command, tool_env, uv_index_args
from pytest_spike.envs.store import Cached, build_once
from pytest_spike.model import Finding, ProbeResult, SpikeError

# The child's entry point: add the layer after the environment's packages, then run pytest.
_BOOT = """
import site, sys
site.addsitedir(sys.argv[1])
import pytest
sys.exit(pytest.main(sys.argv[2:]))
"""
_LAYER_MARKER = "spike-layer.json"
#: Bumped when a layer is laid out differently: 2 = copied files (1 hard-linked them to the
#: running environment, which a candidate could then write into); 3 = pytest-spike's
#: metadata does not list its package (pytest does not rewrite it, see _not_for_rewrite).
_LAYER_FORMAT = 3


#: Distributions a layer never holds: uv is pytest-spike's tool (a large binary), not the
#: child pytest's; the child finds it on PATH or not at all.
LAYER_EXCLUDED = frozenset({"uv"})


def _closure(
    root: str = "pytest-spike", environment: dict[str, str] | None = None, missing: list[str] | None = None
) -> list[metadata.Distribution]:
    """pytest-spike's distribution and every distribution it needs, in this interpreter.

    ``environment`` evaluates the requirement markers for another interpreter (its
    ``python_version`` etc.); names needed there but not installed here go to ``missing``.
    """
    found: dict[str, metadata.Distribution] = {}
    queue = [root]
    while queue:
        name = canonicalize_name(queue.pop())
        if name in found or name in LAYER_EXCLUDED:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            if missing is not None:
                missing.append(name)
            continue  # an optional need of another platform; pip check would say so
        found[name] = dist
        for text in dist.requires or ():
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({**(environment or {}), "extra": ""}):
                queue.append(req.name)
    return list(found.values())


def layer_path(cache_root: Path, dists: Sequence[metadata.Distribution] | None = None) -> Path:
    """Where the layer for this interpreter and these exact distributions (default:
    :func:`_closure`'s) lives."""
    names = sorted(f"{d.metadata['Name']}=={d.version}" for d in (_closure() if dists is None else dists))
    package_dir = PACKAGE_DIR
    ident = json.dumps([sys.version, sys.executable, names, source_digest(package_dir), _LAYER_FORMAT])
    return cache_root / "layers" / hashlib.sha256(ident.encode()).hexdigest()[:20]


def build_layer(
    cache_root: Path, say: Callable[[str], None] | None = None, *, boxed: bool | None = None
) -> Path:
    """Build (or reuse) the layer of pytest-spike and its needs for this interpreter.

    ``say`` hears why a cached layer was rebuilt, when it was (a file in it changed).
    ``boxed`` (default: this run's ``--spike-sandbox`` is not ``off``; asked without trying
    bubblewrap, which would delay the build) says whether the children that use it run
    in the box, which keeps no ``PYTHONPYCACHEPREFIX``: then the compiled modules go only
    beside the sources (:func:`_place`), else under the prefix too (:func:`_mirror_to_prefix`).
    A layer only boxed children use skips the prefix: ~450 more files made on the critical
    path of a cold upgrade spike, which no child read (reused by a later unboxed run, its
    children compile pytest into the prefix once; nothing lands in the layer)."""
    dists = _closure()  # read once: its metadata is most of working out where the layer lies
    final = layer_path(cache_root, dists)
    if boxed is None:
        boxed = sandbox.current().mode != "off"

    def build(staging: Path) -> dict[str, Any]:
        copied = [_copy_distribution(dist, staging, _place) for dist in dists]
        if not boxed:
            _mirror_to_prefix(staging, final)
        return {"distributions": copied}

    _said(build_once(final, _LAYER_MARKER, build, timeout=300, files=digest.tree_files), say)
    return final


def _said(cached: Cached, say: Callable[[str], None] | None) -> None:
    if cached.changed and say is not None:
        say(f"rebuilt the child pytest's layer: {cached.changed} since it was built")


def _copy_distribution(
    dist: metadata.Distribution, dest: Path, place: Callable[[Path, Path], object] | None = None
) -> str:
    """Copy one installed distribution's files (as RECORD lists them) into ``dest``,
    each with ``place(source, target)`` (default: a copy)."""
    place = place or _copy_file
    name = str(dist.metadata["Name"])
    folders: set[Path] = set()
    for relative in dist.files or ():
        parts = relative.parts
        if not parts or parts[0] == ".." or "__pycache__" in parts or relative.suffix == ".pth":
            continue  # scripts outside site-packages, bytecode, and editable-install hooks
        target = dest.joinpath(*parts)
        if target.parent not in folders:  # one mkdir per folder, not one per file
            target.parent.mkdir(parents=True, exist_ok=True)
            folders.add(target.parent)
        with contextlib.suppress(FileNotFoundError, IsADirectoryError):
            place(Path(str(dist.locate_file(relative))), target)  # a file RECORD lists may be gone
    if canonicalize_name(name) == "pytest-spike":
        # An editable install's RECORD lists no package files: copy the package itself.
        package = PACKAGE_DIR
        shutil.copytree(
            package,
            dest / package.name,
            dirs_exist_ok=True,
            ignore=shutil.ignore_patterns("__pycache__"),
            copy_function=lambda source, target: place(Path(source), Path(target)),
        )
        _not_for_rewrite(dest, dist)
    return f"{name}=={dist.version}"


def _not_for_rewrite(dest: Path, dist: metadata.Distribution) -> None:
    """Keep pytest from rewriting the asserts of the layer's pytest-spike.

    pytest rewrites every module of a ``pytest11`` plugin's distribution (those its
    ``RECORD`` lists or, for an editable install as ``direct_url.json`` says, its entry
    point's package) and keeps the result beside the source. A layer's folder is read-only
    in the box and under ``PYTHONDONTWRITEBYTECODE``, so every child pytest and matrix cell
    parsed and compiled ~55 modules again (~0.2 s of CPU); where it was writable, the
    child's writes changed the layer and the next run rebuilt it. The layer's copy lists
    only its metadata (the package is copied as a folder) and is no editable install.
    """
    info = next((r.parts[0] for r in dist.files or () if r.parts[0].endswith(".dist-info")), None)
    if info is None:
        return
    (dest / info / "direct_url.json").unlink(missing_ok=True)
    record = dest / info / "RECORD"
    if record.is_file():
        kept = [
            line
            for line in record.read_text("utf-8").splitlines(keepends=True)
            if line.startswith(f"{info}/") and not line.startswith(f"{info}/direct_url.json,")
        ]
        record.write_text("".join(kept), "utf-8")


def _copy_file(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target``, never link it: a hard link would share its bytes with
    the running environment (and with pytest-spike's source tree when installed editable),
    so a candidate that wrote into a layer file would write into the team's environment.
    The copy keeps the modification time, so compiled modules stay valid for it, and the
    permission bits (less the umask). FileNotFoundError where ``source`` is not there.

    A new file every time (``O_EXCL``, never through a link): a file there already (the
    package folder is placed over its RECORD's files) is removed first. A layer is ~1 000
    such copies; these are the system calls a copy needs, no more (``shutil.copy2`` also
    compares the two files, checks each for a pipe, copies extended attributes and sets
    the mode apart: ~2.5x as many calls, a third of a cold layer's build).
    """
    with open(source, "rb") as src:
        st = os.fstat(src.fileno())
        flags = (
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
        )
        try:
            fd = os.open(target, flags, st.st_mode & 0o777)
        except FileExistsError:
            target.unlink()
            fd = os.open(target, flags, st.st_mode & 0o777)
        with open(fd, "wb") as dst:
            dst.write(src.read())
            dst.flush()
            os.utime(
                dst.fileno() if os.utime in os.supports_fd else target, ns=(st.st_atime_ns, st.st_mtime_ns)
            )


def _place(source: Path, target: Path) -> None:
    """Copy ``source`` into the layer at ``target``, and beside it (in ``__pycache__``) the
    compiled module this interpreter keeps for it, where it has one.

    A new layer without bytecode cost its first child pytest ~0.25 s of CPU compiling
    pytest and pytest-spike again. The source keeps its size and modification time, so
    the compiled module stays valid for it. Beside the source is where a boxed child reads
    it (the box keeps no ``PYTHONPYCACHEPREFIX``, and shows the layer read-only: under a
    prefix every boxed child compiled pytest again, ~1 s of an upgrade's child); unboxed
    children, which inherit a prefix, get a copy there (:func:`_mirror_to_prefix`).
    """
    _copy_file(source, target)
    if source.suffix != ".py":
        return
    try:
        compiled = Path(importlib.util.cache_from_source(str(source)))
    except (NotImplementedError, ValueError):
        return  # no bytecode cache in this interpreter
    placed = target.parent / "__pycache__" / compiled.name
    try:
        _copy_file(compiled, placed)
    except FileNotFoundError:
        if not compiled.is_file():
            return  # none compiled for this source
        placed.parent.mkdir(exist_ok=True)  # the first compiled module of this folder
        _copy_file(compiled, placed)


def _mirror_to_prefix(staging: Path, final: Path) -> None:
    """Copy the compiled modules of the layer being built in ``staging`` (to be renamed
    ``final``) under ``sys.pycache_prefix`` too, when one is set: unboxed children (a matrix
    cell's pytest, a child pytest under ``--spike-sandbox off``) inherit the prefix and look
    for them only there. A layer installed anew
    (new modification times) otherwise cost its interpreter's first two cells ~1 s of CPU
    each, compiling pytest and pytest-spike again at the start of a cold matrix."""
    if not sys.pycache_prefix:
        return
    for compiled in staging.rglob("__pycache__/*.pyc"):
        folder = final / compiled.parent.parent.relative_to(staging)
        placed = Path(sys.pycache_prefix) / folder.relative_to(folder.anchor) / compiled.name
        placed.parent.mkdir(parents=True, exist_ok=True)
        _copy_file(compiled, placed)


def run_child(
    python: str,
    layer: Path,
    nodeids: Sequence[str],
    pytest_args: Sequence[str],
    *,
    cwd: Path,
    timeout: float,
    project: Path | None = None,
    read: Sequence[str] = (),
) -> dict[str, ProbeResult]:
    """Run ``nodeids`` with ``python``'s pytest plus the layer; results by node id.

    The child runs boxed, seeing ``project`` (default: ``cwd``) and ``read`` read-only. It
    announces what it collected and each test's outcome as it runs (``_core.witness``): a
    test the results file reports otherwise gets the announced outcome and ``spike.tampered``.

    Raises SpikeError, with the child's own last error line, when it wrote no results.
    """
    with tempfile.TemporaryDirectory(prefix="spike-child-") as tmp:
        out = Path(tmp) / "results.json"
        argv = [python, "-c", _BOOT, str(layer), "-p", witness.PLUGIN, *nodeids, *pytest_args]
        argv += ["--spike-json", str(out)]
        # The parent's PYTEST_ADDOPTS may name plugins the child does not have (xdist).
        # The box: the project read-only (without .git and secrets files), the layer and
        # the data read-only, only this run's output folder writable.
        box = sandbox.Box("tests", read=(str(layer), *read), write=(tmp,), project=str(project or cwd))
        done = runner.run(argv, timeout=timeout, cwd=cwd, extra_env={"PYTEST_ADDOPTS": ""}, box=box)
        if not out.is_file():
            raise SpikeError(
                f"the child pytest in {python} wrote no results ({done.describe()}): "
                f"{done.last_error_line() or 'no output'}"
            )
        data = load_json_document(out, f"results file of the child pytest in {python}", json_object)
    found: dict[str, ProbeResult] = {}
    for cand in data.get("candidates", ()):
        by_probe: dict[str, list[Finding]] = {}
        for finding in cand.get("findings", ()):
            by_probe.setdefault(str(finding.get("probe")), []).append(Finding.from_dict(finding))
        for probe in cand.get("probes", ()):
            result = ProbeResult.from_dict(dict(probe, candidate=cand["name"]))
            result.findings = by_probe.get(result.nodeid, [])
            found[result.nodeid] = result
    seen = witness.read_seen(done.stdout)
    if seen is not None:
        _observed_outcomes(found, seen, complete=not done.stdout_truncated)
    return found


def _observed_outcomes(found: dict[str, ProbeResult], seen: witness.Seen, *, complete: bool) -> None:
    """Where the results file contradicts what the child announced, the announced outcome
    is the test's, with ``spike.tampered`` as its first finding."""
    wrong = witness.contradictions(seen, {n: r.outcome for n, r in found.items()}, complete=complete)
    if not wrong:
        return
    finding = witness.tampered_finding(wrong, seen, "the child pytest's results")
    kinds = {r.kind for r in found.values()}
    candidates = {r.candidate for r in found.values()}
    for nodeid, why in wrong.items():
        if nodeid not in seen.outcomes:
            found.pop(nodeid, None)  # never seen to finish: the test did not report
            continue
        result = found.get(nodeid) or ProbeResult(
            candidate=next(iter(candidates), ""), kind=next(iter(kinds), "custom"), nodeid=nodeid
        )
        result.outcome = seen.outcomes[nodeid]
        result.findings = [finding]
        result.details = {"tampered": why, "longrepr": seen.errors.get(nodeid, "")}
        found[nodeid] = result


# What a target interpreter answers about itself: its marker environment (PEP 508).
_MARKER_ENV = inspection.MARKERS_SOURCE + 'markers["sys_version"] = sys.version\nprint(json.dumps(markers))\n'


#: The first bytes of an executable binary (ELF, Mach-O 64/32 and fat, PE): only a binary's
#: answer is kept, a script (a pyenv shim) may answer for another interpreter each time.
_BINARY_MAGIC = (b"\x7fELF", b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe", b"\xca\xfe\xba\xbe", b"MZ")


def _binary_identity(python: str) -> str | None:
    """What ``python`` is: its real path, the binary's stat and this machine's kernel (the
    ``platform_release`` and ``platform_version`` markers); None for a script or no file."""
    real = os.path.realpath(python)
    try:
        with open(real, "rb") as handle:
            if not handle.read(4).startswith(_BINARY_MAGIC):
                return None
            st = os.fstat(handle.fileno())
    except OSError:
        return None
    ident = [real, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, list(platform.uname())]
    return hashlib.sha256(json.dumps(ident).encode()).hexdigest()[:20]


def cached_marker_environment(python: str, cache_root: Path) -> dict[str, str]:
    """:func:`marker_environment`, kept in the cache for the same interpreter binary.

    Asking costs a boxed child (~0.1-0.3 s on a loaded machine) that every matrix run's
    first cell of each Python waited for; a binary that changed (a new build at the same
    path) or a new kernel is asked again.
    """
    identity = _binary_identity(python)
    if identity is None:
        return marker_environment(python)
    kept = cache_root / "layers" / "interpreters" / f"{identity}.json"
    try:
        found = load_json_document(kept, "interpreter markers", json_object)
        if found.get("python") == python and isinstance(found.get("markers"), dict):
            return {str(k): str(v) for k, v in found["markers"].items()}
    except SpikeError:
        pass  # not asked yet, or unreadable: ask again
    markers = marker_environment(python)
    kept.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(kept, json.dumps({"python": python, "markers": markers}))
    return markers


def marker_environment(python: str) -> dict[str, str]:
    """``python``'s PEP 508 marker environment (plus ``sys_version``), asked in a child."""
    done = runner.run(
        [python, "-I", "-c", _MARKER_ENV], timeout=60, env=tool_env(), box=sandbox.Box("inspect")
    )
    answer = runner.last_json_line(done, f"interpreter {python!r}")
    if not isinstance(answer, dict):
        raise SpikeError(f"interpreter {python!r} answered {str(answer)[:200]!r}, not its markers")
    return {str(k): str(v) for k, v in answer.items()}


def _pure(dist: metadata.Distribution) -> bool:
    """Whether ``dist`` holds no compiled code, so its files work on any Python 3."""
    wheel = dist.read_text("WHEEL") or ""
    if "root-is-purelib: true" not in wheel.lower():
        return False
    return not any(f.suffix in (".so", ".pyd", ".dylib") for f in dist.files or ())


def _runs_on(dist: metadata.Distribution, markers: dict[str, str]) -> bool:
    """Whether ``dist``'s ``Requires-Python`` admits the interpreter ``markers`` describe: a
    copy of this interpreter's pytest 9 (3.10+) in a 3.9 layer would not import there."""
    spec = dist.metadata["Requires-Python"]  # None where it states none
    if not spec:
        return True
    try:
        return SpecifierSet(spec).contains(markers["python_full_version"], prereleases=True)
    except (InvalidSpecifier, KeyError):
        return False  # unreadable: installed for that interpreter instead, never copied


def layer_for(
    python: str,
    cache_root: Path,
    *,
    uv: str | None = None,
    timeout: float = 600.0,
    say: Callable[[str], None] | None = None,
) -> Path:
    """The layer of pytest + pytest-spike for another interpreter ``python``, built once.

    Two ways, fastest first (measured: copy ~0.1 s; ``uv pip install --target`` from a
    warm cache ~0.5 s, pip ~3 s): where every distribution of pytest-spike's closure for
    ``python`` (markers evaluated there) is installed here, holds no compiled code and
    admits ``python`` (its ``Requires-Python``), the layer is a copy of them, as
    :func:`build_layer` makes for this interpreter. Otherwise
    the installer puts pytest and pytest-spike's requirements (resolved for ``python``) in
    the layer and the running pytest-spike package is copied beside them. Either way the
    layer is byte-compiled with ``python`` (uv leaves no ``.pyc``, and with
    ``PYTHONDONTWRITEBYTECODE`` set every cell would recompile pytest on start-up).
    Cached by the interpreter, the distributions' versions and pytest-spike's source;
    rebuilt when a file in it changed (``say`` hears which).
    """
    markers = cached_marker_environment(python, cache_root)
    missing: list[str] = []
    dists = _closure(environment=markers, missing=missing)
    copyable = not missing and all(_pure(d) and _runs_on(d, markers) for d in dists)
    names = sorted(f"{d.metadata['Name']}=={d.version}" for d in dists)
    package_dir = PACKAGE_DIR
    ident = json.dumps(
        [markers["sys_version"], python, names, copyable, source_digest(package_dir), _LAYER_FORMAT]
    )
    final = cache_root / "layers" / hashlib.sha256(ident.encode()).hexdigest()[:20]

    # An interpreter of this one's version reads this one's compiled modules: they are copied
    # with the sources (compileall below checks each and compiles only what does not match).
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    same = (markers["implementation_name"], markers["python_version"]) == (sys.implementation.name, here)

    def build(staging: Path) -> dict[str, Any]:
        if copyable:
            # the prefix gets every compiled module after compileall (_mirror_to_prefix)
            place = _place if same else None
            copied = [_copy_distribution(dist, staging, place) for dist in dists]
            how = "copy"
        else:
            copied = _install_layer(python, staging, uv, timeout)
            how = "uv" if uv else "pip"
        compiled = runner.run(
            [python, "-m", "compileall", "-q", "-j", "0", "-x", NOT_COMPILED, str(staging)],
            timeout=timeout,
            # beside the sources, where boxed children read them (see _place)
            env={k: v for k, v in tool_env().items() if k != "PYTHONPYCACHEPREFIX"},
        )
        _mirror_to_prefix(staging, final)
        return {"python": python, "how": how, "distributions": copied, "compiled": compiled.ok}

    _said(build_once(final, _LAYER_MARKER, build, timeout=timeout, files=digest.tree_files), say)
    return final


def _install_layer(python: str, staging: Path, uv: str | None, timeout: float) -> list[str]:
    """Install pytest-spike's requirements for ``python`` into ``staging``; copy pytest-spike."""
    spike = metadata.distribution("pytest-spike")
    reqs = ["pytest"]
    for text in spike.requires or ():
        req = Requirement(text)
        if canonicalize_name(req.name) not in LAYER_EXCLUDED and "extra" not in str(req.marker or ""):
            reqs.append(text)
    if uv:
        # Copies, not uv's default hard links to its cache: a layer shares no file with it.
        argv = [uv, "pip", "install", "--quiet", "--link-mode", "copy", "--python", python]
        argv += ["--target", str(staging)]
        argv += [*uv_index_args(), *reqs]
    else:
        argv = [*pip_command(python), "install", "--quiet", "--disable-pip-version-check"]
        argv += ["--target", str(staging), *reqs]
    done = runner.run(argv, timeout=timeout, env=tool_env(), **installer_box(staging, python))
    if not done.ok:
        raise SpikeError(
            f"the pytest layer for {python} did not install ({done.describe()}): {done.last_error_line()}"
        )
    return [*reqs, _copy_distribution(spike, staging)]
