"""Does a candidate fit the project's dependencies? And what its install result means.

The project's dependencies are requirement/constraint files or, by default, the running
environment pinned as ``name==version``. The candidate is resolved together with them
without installing anything (``pip install --dry-run --report`` or ``uv pip compile``).
When no solution exists, the project pins named in the resolver's explanation are relaxed
one round at a time: if a solution appears, the candidate fits by changing those pins
(``install.changes``); if not, it clashes with the project (``install.conflict``).
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from pytest_spike._core import reqfiles
from pytest_spike._core.files import load_json_document
from pytest_spike._core.runner import run
from pytest_spike.envs.manager import (
    EnvResult,
    choose_uv,
    installer_box,
    installer_cache,
    normalize_requirements,
    pip_command,
    resolver_excerpt,
    tool_env,
    uv_index_args,
)
from pytest_spike.model import Blame, Finding, Severity, SpikeError, default_cache_root, exact_pin

#: Not the project's dependencies: the installers and this plugin itself. Their pins
#: would only make the resolver fight over tooling the candidate never imports.
TOOLING = frozenset({"pip", "setuptools", "wheel", "uv", "pytest-spike", "distribute"})
#: Relaxation rounds before a failure counts as a conflict (each is one resolver run).
MAX_ROUNDS = 4


def project_requirements(spec: Sequence[str] | None, *, root: str | Path | None = None) -> list[str]:
    """The project's requirements: from ``spec`` files (relative to ``root``), or pins of the
    running environment when ``spec`` is None.

    The environment leaves out installer tooling and pytest-spike (``TOOLING``) and anything
    installed from a direct URL, a path or in editable mode: the index cannot serve those.
    Files are read like pip reads them (``-r``/``-c`` includes, comments, continuations);
    options, editables and URL/path lines are skipped for the same reason.
    """
    if spec is None:
        return _environment_pins()
    base = Path(root) if root is not None else Path.cwd()
    found: list[str] = []
    for entry in spec:
        name = entry.split(maxsplit=1)[-1] if entry.startswith(("-c ", "-r ")) else entry
        _read_requirement_file(base / name, found, seen=set())
    return list(dict.fromkeys(found))


def _environment_pins() -> list[str]:
    pins: dict[str, str] = {}
    for dist in metadata.distributions():
        raw = dist.metadata["Name"]
        if not raw:
            continue
        name = canonicalize_name(raw)
        if name in pins or name in TOOLING or dist.read_text("direct_url.json") is not None:
            pins.setdefault(name, "")  # the first on sys.path is what imports see
            continue
        pins[name] = f"{name}=={dist.version}"
    return sorted(pin for pin in pins.values() if pin)


def _read_requirement_file(path: Path, out: list[str], seen: set[Path]) -> None:
    path = path.resolve()
    if path in seen:
        return
    seen.add(path)
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpikeError(
            f"spike_requirements: cannot read {path} ({exc.__class__.__name__}); "
            "list requirement files relative to the rootdir"
        ) from None
    for number, line in reqfiles.logical_lines(text):
        included = reqfiles.include(line)
        if included:
            _read_requirement_file(path.parent / included[1], out, seen)
            continue
        if line.startswith("-") or "://" in line or line.startswith((".", "/")):
            continue  # options, editables, URLs and paths are not on the index
        line = re.split(r"\s+--?\w", line, maxsplit=1)[0]  # trailing --hash=... options
        try:
            Requirement(line)
        except InvalidRequirement as exc:
            raise SpikeError(
                f"{path}:{number}: {line!r} is not a requirement ({str(exc).splitlines()[0]})"
            ) from None
        out.append(line)


def exact_pins(requirements: Sequence[str]) -> dict[str, str]:
    """Project requirements that fix one exact version: canonical name -> version."""
    pins: dict[str, str] = {}
    for text in requirements:
        req = Requirement(text)
        version = exact_pin(req)
        if version is not None:
            pins[canonicalize_name(req.name)] = version
    return pins


def _unpinned(text: str) -> str:
    """The requirement at any version (extras and marker kept): ``usesx==1.0`` -> ``usesx``."""
    req = Requirement(text)
    req.specifier = SpecifierSet()
    return str(req)


def _as_constraint(text: str) -> str:
    # pip refuses extras in constraints; the version limits are what matter here.
    req = Requirement(text)
    req.extras = set()
    return str(req)


@dataclass(frozen=True)
class _Resolution:
    ok: bool
    versions: dict[str, str]
    text: str
    resolver: str


def _resolve(
    python: str,
    requirements: list[str],
    constraints: list[str],
    timeout: float,
    uv: str | None,
    index_args: Sequence[str],
    cache: Path,
) -> _Resolution:
    with tempfile.TemporaryDirectory(prefix="spike-fit-") as scratch:
        cons, report = Path(scratch) / "constraints.txt", Path(scratch) / "report.json"
        cons.write_text("\n".join(constraints) + "\n", "utf-8")
        # Requirements go on the command line (pip) or stdin (uv), so resolver messages name
        # them instead of a temporary file's line numbers.
        stdin = None
        if uv is not None:
            argv = [
                uv,
                "pip",
                "compile",
                "-",
                "-c",
                str(cons),
                "--python",
                python,
                "--no-header",
                "--no-annotate",
                *uv_index_args(),
                *index_args,
            ]
            stdin = ("\n".join(requirements) + "\n").encode()
        else:
            argv = [
                *pip_command(python),
                "install",
                "--dry-run",
                "--ignore-installed",
                "--no-input",
                "--disable-pip-version-check",
                "--progress-bar",
                "off",
                "--report",
                str(report),
                "-c",
                str(cons),
                *index_args,
                *requirements,
            ]
        # The resolve runs build backends (sdists' metadata): boxed as an installer step.
        boxed = installer_box(scratch, python, stage="resolve", cache=cache)
        done = run(argv, timeout=timeout, env=tool_env(), stdin_data=stdin, cwd=scratch, **boxed)
        resolver = "uv" if uv is not None else "pip"
        text = done.stderr + "\n" + done.stdout
        if done.timed_out:
            text = f"{resolver} {done.describe()}\n" + text
        if not done.ok:
            return _Resolution(False, {}, text, resolver)
        if uv is not None:
            pairs = re.findall(r"^([A-Za-z0-9][\w.-]*)==(\S+)", done.stdout, flags=re.MULTILINE)
        else:
            pairs = report_pins(report)
        return _Resolution(True, {canonicalize_name(n): v for n, v in pairs}, text, resolver)


def report_pins(report: Path) -> list[tuple[str, str]]:
    """(name, version) of what a ``pip install --report`` would install; SpikeError when the
    report is missing, not JSON or not shaped like one."""

    def pins(data: Any) -> list[tuple[str, str]]:
        return [(str(i["metadata"]["name"]), str(i["metadata"]["version"])) for i in data["install"]]

    return load_json_document(report, "pip installation report", pins)


def _explanation(text: str) -> str:
    """The part of a resolver failure that names the clashing requirements."""
    pip_part = re.search(r"The conflict is caused by:\n(.*?)(\n\s*\n|\nTo fix this)", text, re.S)
    if pip_part:
        return "; ".join(line.strip() for line in pip_part.group(1).splitlines() if line.strip())
    lines = [ln.strip() for ln in text.splitlines()]
    # uv: "cause: Because ..." and the lines indented under it ("And because you require ...")
    causes: list[str] = []
    within = False
    for line in lines:
        if line.startswith("cause:"):
            causes.append(line[len("cause:") :].strip())
            within = True
        elif within and line and not re.match(r"(hint|help|error|ERROR):", line):
            causes.append(line)
        else:
            within = False
    return " ".join(causes or [ln for ln in lines if re.match(r"(ERROR|error):", ln)])


def _named(text: str, names: set[str]) -> list[str]:
    """Names in ``names`` that the text uses as requirements (followed by a version), so
    ordinary words of the explanation never match a package that happens to share them."""
    found = re.findall(r"([A-Za-z0-9][A-Za-z0-9._-]*)(?=\s*(?:[<>=!~]|\s\d))", text)
    return sorted({canonicalize_name(t) for t in found} & names)


def check_fit(
    python: str,
    candidate_req: str,
    project_reqs: Sequence[str],
    timeout: float,
    *,
    constraints: bool = True,
    backend: str = "auto",
    index_args: Sequence[str] = (),
    cache_root: Path | None = None,
) -> tuple[list[Finding], dict[str, Any]]:
    """Resolve the candidate with the project's requirements for ``python``, installing nothing.

    With ``constraints`` (the default, right for environment pins) the project's
    requirements only limit versions; without, they are resolved too (right for
    requirement files with ranges, slower). The resolver (which may run build backends for
    sdists' metadata) uses the candidate's installer cache in ``cache_root`` (default: the
    default cache root). Returns findings and details for the report.
    A failure that names no project requirement is not a fit problem (the install probe
    reports it) and gives no finding.
    """
    candidate = normalize_requirements([candidate_req], "candidate")[0]
    project = normalize_requirements(project_reqs, "project requirement")
    uv = choose_uv(backend, "fit check backend")
    pins = exact_pins(project)
    cache = installer_cache(cache_root or default_cache_root(), candidate)
    start = time.monotonic()

    def attempt(relaxed: Sequence[str]) -> _Resolution:
        active = [r for r in project if _name(r) not in relaxed]
        # a relaxed requirement: no longer a limit (constraints), or still needed at any version
        unpinned = [_unpinned(r) for r in project if _name(r) in relaxed]
        reqs = [candidate] + ([] if constraints else active + unpinned)
        cons = [_as_constraint(r) for r in active] if constraints else []
        left = max(1.0, timeout - (time.monotonic() - start))
        return _resolve(python, reqs, cons, left, uv, index_args, cache)

    outcome, relaxed = _resolve_relaxing(attempt, set(pins))
    details: dict[str, Any] = {
        "resolver": outcome.resolver,
        "project_requirements": len(project),
        "relaxed": relaxed,
        "fit_time_s": round(time.monotonic() - start, 3),
    }
    if outcome.ok:
        return _changed_pins(candidate, pins, relaxed, outcome, details)
    return _conflict(candidate, project, outcome, details)


def _name(requirement: str) -> str:
    return canonicalize_name(Requirement(requirement).name)


def _resolve_relaxing(
    attempt: Callable[[Sequence[str]], _Resolution], pinned: set[str]
) -> tuple[_Resolution, list[str]]:
    """Resolve, and while the failure names pins, relax those pins and resolve again (at
    most ``MAX_ROUNDS`` times); the last outcome and the pins relaxed on the way."""
    relaxed: list[str] = []
    for _ in range(MAX_ROUNDS):
        outcome = attempt(relaxed)
        if outcome.ok:
            break
        more = [n for n in _named(_explanation(outcome.text), pinned) if n not in relaxed]
        if not more:
            break
        relaxed += more
    return outcome, relaxed


def _changed_pins(
    candidate: str,
    pins: Mapping[str, str],
    relaxed: Sequence[str],
    outcome: _Resolution,
    details: dict[str, Any],
) -> tuple[list[Finding], dict[str, Any]]:
    """It resolved: fits when no relaxed pin moved, else ``install.changes`` (medium)."""
    changes = {
        n: (pins[n], outcome.versions[n])
        for n in relaxed
        if n in outcome.versions and outcome.versions[n] != pins[n]
    }
    details["fits"] = not changes
    details["resolved"] = outcome.versions
    details["changes"] = {n: f"{old} -> {new}" for n, (old, new) in changes.items()}
    if not changes:
        return [], details
    listed = ", ".join(describe_change(n, old, new) for n, (old, new) in changes.items())
    finding = Finding(
        "install.changes",
        Severity.MEDIUM,
        f"{candidate} fits only by changing pinned packages: {listed}",
        {n: f"{old} -> {new}" for n, (old, new) in changes.items()},
    )
    return [finding], details


def _conflict(
    candidate: str, project: Sequence[str], outcome: _Resolution, details: dict[str, Any]
) -> tuple[list[Finding], dict[str, Any]]:
    """It did not resolve: ``install.conflict`` (high) when the failure names a project
    requirement, else no finding (the install probe reports it)."""
    excerpt, _ = resolver_excerpt(outcome.text)
    why = _explanation(outcome.text)
    clashing = _named(why, {_name(r) for r in project})
    details["fits"] = False if clashing else None
    details["error"] = excerpt
    if not clashing:
        return [], details
    named = ", ".join(r for r in project if _name(r) in clashing)
    details["clashing"], details["explanation"] = named, why
    finding = Finding(
        "install.conflict",
        Severity.HIGH,
        f"{candidate} cannot be installed next to the project's {named}: {why}",
        {"clashing": named, "resolver": excerpt},
    )
    return [finding], details


def describe_change(name: str, old: str, new: str) -> str:
    """``numpy 1.26.4 -> 2.1.0 (major upgrade)``: the direction is what a reviewer weighs."""
    try:
        before, after = Version(old), Version(new)
    except InvalidVersion:
        return f"{name} {old} -> {new}"
    way = "upgrade" if after > before else "downgrade"
    major = "major " if before.major != after.major else ""
    return f"{name} {old} -> {new} ({major}{way})"


_NOT_CANDIDATE = {
    "network": "the package index could not be reached",
    "timeout": "the install ran out of time (raise --spike-probe-timeout for a cold cache)",
    "spike": "pytest-spike could not inspect the new environment",
}


def install_findings(env: EnvResult) -> tuple[list[Finding], dict[str, Any]]:
    """Findings from building a candidate's environment, and its footprint for the report."""
    details: dict[str, Any] = {
        "backend": env.backend,
        "reused": env.reused,
        "install_time_s": round(env.install_time_s, 3),
        "version": env.version,
        "from_sdist": env.from_sdist,
        "dependencies": env.dependency_count,
        "size_mb": round(env.size_bytes / 1e6, 3),
        "env": env.path,
    }
    if not env.ok:
        details["error"] = env.error
        if env.not_candidate:
            # The index was unreachable, the time limit too tight or our own step failed:
            # nothing is known about the candidate, so nothing is charged.
            why = _NOT_CANDIDATE[env.not_candidate]
            details["unknown"] = f"{why}: {env.error_line}"
            blame = Blame.SPIKE if env.not_candidate == "spike" else Blame.ENVIRONMENT
            return [
                Finding(
                    "install.unchecked",
                    Severity.INFO,
                    f"{env.candidate} was not installed because {why} ({env.backend}): {env.error_line}",
                    {"resolver": env.error, "backend": env.backend},
                    blame=blame,
                )
            ], details
        return [
            Finding(
                "install.failed",
                Severity.CRITICAL,
                f"{env.candidate} cannot be installed ({env.backend}): {env.error_line}",
                {"resolver": env.error, "backend": env.backend},
            )
        ], details
    findings = []
    if env.rebuilt:
        details["rebuilt"] = env.rebuilt
        # The environment's doing, not the candidate's: never kept as evidence, so it is said
        # by the run that rebuilt, not by the runs that reuse the new environment.
        findings.append(
            Finding(
                "install.rebuilt",
                Severity.INFO,
                f"the cached environment was rebuilt: {env.rebuilt} since it was built",
                {"changed": env.rebuilt, "env": env.path},
                blame=Blame.ENVIRONMENT,
            )
        )
    if env.credentials_exposed:
        findings.append(
            Finding(
                "install.credentials",
                Severity.INFO,
                "the index URL's credentials were in reach of a build backend: wheels alone did "
                f"not install {env.candidate}, so an sdist was built in the step that held them",
                {"sdists": ", ".join(env.sdists)},
                blame=Blame.ENVIRONMENT,
            )
        )
    if env.sdists:
        findings.append(
            Finding(
                "install.sdist",
                Severity.LOW,
                f"no wheel for this Python: built from source: {', '.join(env.sdists)}",
                {"sdists": ", ".join(env.sdists)},
            )
        )
    findings.append(
        Finding(
            "install.footprint",
            Severity.INFO,
            f"{env.candidate} {env.version}: {env.dependency_count} dependencies, "
            f"{env.size_bytes / 1e6:.1f} MB on disk",
            {"dependencies": ", ".join(env.dependencies), "size_bytes": str(env.size_bytes)},
        )
    )
    return findings, details
