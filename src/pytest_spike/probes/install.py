"""The install probe: is the candidate installed, at an accepted version, without conflicts?"""

from __future__ import annotations

import re
from typing import Any

from packaging.utils import canonicalize_name

from pytest_spike.envs import inspection
from pytest_spike.envs.fit import check_fit, install_findings
from pytest_spike.model import Blame, Candidate, Finding, Severity, SpikeError
from pytest_spike.probes.base import ProbeContext, ProbeOutcome

#: Above either, a footprint is worth a low finding: it is what every user will download.
HEAVY_DEPENDENCIES = 25
HEAVY_MB = 100.0

_CHECK_LINE = re.compile(
    r"^(?P<subject>[A-Za-z0-9][A-Za-z0-9._-]*) \S+ "
    r"(?:requires (?P<missing>[A-Za-z0-9][A-Za-z0-9._-]*)|has requirement (?P<req>[A-Za-z0-9][A-Za-z0-9._-]*))"
)


def probe_install(ctx: ProbeContext) -> ProbeOutcome:
    target = ctx.target()
    cand = ctx.candidate
    findings: list[Finding] = []
    details: dict[str, Any] = {"isolated": target.isolated}
    if target.isolated:
        env_findings, env_details = _environment(ctx)
        details.update(env_details)
        if target.python is None:
            # "unknown": the build failed for reasons that are not the candidate's (see fit.py)
            return ProbeOutcome(findings=env_findings, details=details, skipped=details.get("unknown"))
        # The inspection below describes the footprint in more detail than the build did.
        findings += [f for f in env_findings if f.code != "install.footprint"]
    info = ctx.inspect()
    if not info.get("installed"):
        return _not_installed(cand, info.get("python", ctx.python), details)
    version = str(info["version"])
    findings += _version_findings(cand, version)
    # In the running environment the candidate already sits next to the project's packages;
    # requirement files (spike_requirements) still ask whether it fits those.
    if target.isolated or ctx.settings.requirement_files:
        fit_findings, details["fit"] = _fit(ctx, version)
        findings += fit_findings
    conflicts = pip_check(ctx)
    findings += _pip_check_findings(conflicts, cand.name)
    deps: dict[str, Any] = info.get("dependencies") or {}
    size_mb = (int(info.get("size_bytes") or 0) + int(info.get("deps_size_bytes") or 0)) / 1e6
    findings += _footprint_findings(deps, size_mb)
    findings += _local_source_findings(info.get("direct_url") or {})
    details.update(
        {
            "installed": True,
            "version": version,
            "python": info.get("python"),
            "location": info.get("location"),
            "modules": info.get("modules"),
            "dependencies": deps,
            "missing_dependencies": sorted(name for name, v in deps.items() if v is None),
            "size_mb": round(size_mb, 2),
            "pip_check": conflicts.get("status"),
            "pip_check_by": conflicts.get("by"),
        }
    )
    return ProbeOutcome(findings=findings, details=details, version=version)


def _not_installed(cand: Candidate, python: Any, details: dict[str, Any]) -> ProbeOutcome:
    """``install.missing`` (critical), with how to install it or let the spike do it."""
    finding = Finding(
        "install.missing",
        Severity.CRITICAL,
        f"{cand.project} is not installed for {python}; "
        f"install it there (python -m pip install '{cand.requirement}') and re-run, "
        "or let pytest-spike build it an environment (--spike-isolation auto)",
        {"python": str(python)},
    )
    return ProbeOutcome(findings=[finding], details=dict(details, installed=False, python=python))


def _pip_check_findings(conflicts: dict[str, Any], name: str) -> list[Finding]:
    """``install.pip_check`` (high) for the pip check lines that involve the candidate."""
    mine = [line for line in conflicts.get("lines", ()) if _involves(line, name)]
    if not mine:
        return []
    more = f" (+{len(mine) - 1} more)" if len(mine) > 1 else ""
    return [
        Finding(
            "install.pip_check",
            Severity.HIGH,
            f"pip check: {mine[0]}{more}",
            {"pip_check": "\n".join(mine[:10])},
        )
    ]


def _footprint_findings(deps: dict[str, Any], size_mb: float) -> list[Finding]:
    """``install.footprint`` (info) always; ``install.heavy`` (low) over either limit."""
    findings = [
        Finding(
            "install.footprint",
            Severity.INFO,
            f"{len(deps)} transitive dependencies, {size_mb:.1f} MB on disk with them",
            {"dependencies": ", ".join(f"{n} {v}" for n, v in sorted(deps.items()) if v)[:500]},
        )
    ]
    if len(deps) > HEAVY_DEPENDENCIES or size_mb > HEAVY_MB:
        findings.append(
            Finding(
                "install.heavy",
                Severity.LOW,
                f"heavy footprint: {len(deps)} dependencies, {size_mb:.0f} MB "
                f"(over {HEAVY_DEPENDENCIES} dependencies or {HEAVY_MB:.0f} MB)",
            )
        )
    return findings


def _local_source_findings(direct: dict[str, Any]) -> list[Finding]:
    """``install.local`` (info) for an install from a folder or a VCS checkout."""
    if "dir_info" not in direct and "vcs_info" not in direct:
        return []
    return [
        Finding(
            "install.local",
            Severity.INFO,
            f"installed from {direct.get('url', 'a local source')}, not from the package index",
        )
    ]


def _version_findings(candidate: Candidate, installed: str) -> list[Finding]:
    return [
        Finding(
            "install.version_mismatch",
            Severity.HIGH,
            f"installed version {installed} is outside the spike's versions ({text})",
            {"installed": installed, "wanted": text},
        )
        for text in candidate.unmet(installed)
    ]


def _environment(ctx: ProbeContext) -> tuple[list[Finding], dict[str, Any]]:
    """Findings of building the candidate's own environment."""
    target = ctx.target()
    if target.env is None:
        message = f"{ctx.candidate.project}: no environment could be built: {target.error}"
        return [Finding("install.failed", Severity.CRITICAL, message)], {"error": target.error}
    return install_findings(target.env)


def _fit(ctx: ProbeContext, version: str) -> tuple[list[Finding], dict[str, Any]]:
    """Does the candidate, at the version it got, resolve next to the project's requirements?"""
    project = ctx.project_requirements()
    pin = f"{ctx.candidate.project}=={version}"
    ctx.services.say(f"resolving {pin} with the project's requirements")
    try:
        # The same tool that built the environment: their index caches can disagree.
        return check_fit(
            ctx.host_python,
            pin,
            project,
            ctx.timeout,
            backend=ctx.settings.backend,
            cache_root=ctx.settings.cache_dir,
        )
    except SpikeError as exc:
        unchecked = Finding(
            "install.fit_unchecked", Severity.INFO, f"fit not checked: {exc}", blame=Blame.SPIKE
        )
        return [unchecked], {}


def pip_check(ctx: ProbeContext) -> dict[str, Any]:
    """What ``pip check`` says of the candidate's environment, once per interpreter and session."""
    checked: dict[str, Any] = ctx.remember(("pip-check", ctx.python), lambda: _pip_check(ctx))
    return checked


def _pip_check(ctx: ProbeContext) -> dict[str, Any]:
    # Worked out by the host from the environment's files (see envs/inspection.py): pip (and
    # uv's interpreter query) would run the environment's interpreter, where a .pth file of
    # the candidate's runs first; one that hid a missing dependency from pip did.
    try:
        lines = inspection.broken(ctx.site(str(ctx.python)))
    except SpikeError as exc:
        return {"status": f"not run: {exc}", "lines": [], "by": "pytest-spike"}
    return {"status": "problems" if lines else "ok", "lines": lines, "by": "pytest-spike"}


def _involves(line: str, name: str) -> bool:
    match = _CHECK_LINE.match(line.strip())
    if not match:
        return name in canonicalize_name(line.split(" ", 1)[0])
    names = {match.group("subject"), match.group("missing") or "", match.group("req") or ""}
    return name in {canonicalize_name(n) for n in names if n}
