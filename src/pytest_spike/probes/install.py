"""The install probe: is the candidate installed, at an accepted version, without conflicts?"""

from __future__ import annotations

import re
from typing import Any

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from pytest_spike.model import Finding, Severity
from pytest_spike.probes.base import ProbeContext, ProbeOutcome

#: Above either, a footprint is worth a low finding: it is what every user will download.
HEAVY_DEPENDENCIES = 25
HEAVY_MB = 100.0

_CHECK_LINE = re.compile(
    r"^(?P<subject>[A-Za-z0-9][A-Za-z0-9._-]*) \S+ "
    r"(?:requires (?P<missing>[A-Za-z0-9][A-Za-z0-9._-]*)|has requirement (?P<req>[A-Za-z0-9][A-Za-z0-9._-]*))"
)


def probe_install(ctx: ProbeContext) -> ProbeOutcome:
    info = ctx.inspect()
    cand = ctx.candidate
    if not info.get("installed"):
        return ProbeOutcome(
            findings=[
                Finding(
                    "install.missing",
                    Severity.CRITICAL,
                    f"{cand.project} is not installed for {info.get('python', ctx.python)}; "
                    f"install it there (python -m pip install '{cand.requirement}') and re-run",
                    {"python": str(info.get("python", ctx.python))},
                )
            ],
            details={"installed": False, "python": info.get("python", ctx.python)},
        )
    version = str(info["version"])
    findings = _version_findings(cand.requirement, cand.versions, version)
    conflicts = pip_check(ctx)
    mine = [line for line in conflicts.get("lines", ()) if _involves(line, cand.name)]
    if mine:
        findings.append(
            Finding(
                "install.conflicts",
                Severity.HIGH,
                f"pip check: {mine[0]}" + (f" (+{len(mine) - 1} more)" if len(mine) > 1 else ""),
                {"pip_check": "\n".join(mine[:10])},
            )
        )
    deps: dict[str, Any] = info.get("dependencies") or {}
    missing = sorted(name for name, v in deps.items() if v is None)
    size_mb = (int(info.get("size_bytes") or 0) + int(info.get("deps_size_bytes") or 0)) / 1e6
    findings.append(
        Finding(
            "install.footprint",
            Severity.INFO,
            f"{len(deps)} transitive dependencies, {size_mb:.1f} MB on disk with them",
            {"dependencies": ", ".join(f"{n} {v}" for n, v in sorted(deps.items()) if v)[:500]},
        )
    )
    if len(deps) > HEAVY_DEPENDENCIES or size_mb > HEAVY_MB:
        findings.append(
            Finding(
                "install.heavy",
                Severity.LOW,
                f"heavy footprint: {len(deps)} dependencies, {size_mb:.0f} MB "
                f"(over {HEAVY_DEPENDENCIES} dependencies or {HEAVY_MB:.0f} MB)",
            )
        )
    direct = info.get("direct_url") or {}
    if "dir_info" in direct or "vcs_info" in direct:
        findings.append(
            Finding(
                "install.local",
                Severity.INFO,
                f"installed from {direct.get('url', 'a local source')}, not from the package index",
            )
        )
    details = {
        "installed": True,
        "version": version,
        "python": info.get("python"),
        "location": info.get("location"),
        "modules": info.get("modules"),
        "dependencies": deps,
        "missing_dependencies": missing,
        "size_mb": round(size_mb, 2),
        "pip_check": conflicts.get("status"),
    }
    return ProbeOutcome(findings=findings, details=details, version=version)


def _version_findings(
    requirement: str, versions: str | tuple[str, ...] | None, installed: str
) -> list[Finding]:
    try:
        current = Version(installed)
    except InvalidVersion:
        return [Finding("install.bad_version", Severity.MEDIUM, f"installed version {installed!r} is not a valid version")]
    wanted: list[tuple[str, bool]] = []
    spec = Requirement(requirement).specifier
    if str(spec):
        wanted.append((str(spec), current in SpecifierSet(str(spec), prereleases=True)))
    if isinstance(versions, tuple):
        wanted.append((" or ".join(versions), any(current == Version(v) for v in versions)))
    elif versions and not versions.startswith("latest"):
        wanted.append((versions, current in SpecifierSet(versions, prereleases=True)))
    return [
        Finding(
            "install.version_mismatch",
            Severity.HIGH,
            f"installed version {installed} is outside the spike's versions ({text})",
            {"installed": installed, "wanted": text},
        )
        for text, ok in wanted
        if not ok
    ]


def pip_check(ctx: ProbeContext) -> dict[str, Any]:
    """``pip check`` of the candidate's environment, once per interpreter and session."""
    return ctx.remember(("pip-check", ctx.python), lambda: _pip_check(ctx))


def _pip_check(ctx: ProbeContext) -> dict[str, Any]:
    result = ctx.run([ctx.python, "-m", "pip", "check"])
    text = result.stdout.strip()
    if result.returncode == 0:
        return {"status": "ok", "lines": []}
    if "No module named pip" in result.stderr or result.timed_out or not text:
        return {"status": f"not run: {result.describe()}: {result.last_error_line()}", "lines": []}
    return {"status": "problems", "lines": text.splitlines()}


def _involves(line: str, name: str) -> bool:
    match = _CHECK_LINE.match(line.strip())
    if not match:
        return name in canonicalize_name(line.split(" ", 1)[0])
    names = {match.group("subject"), match.group("missing") or "", match.group("req") or ""}
    return name in {canonicalize_name(n) for n in names if n}
