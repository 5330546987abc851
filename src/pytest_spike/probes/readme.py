"""The readme probe: run the code examples of the installed candidate's README."""

from __future__ import annotations

from pytest_spike.model import Severity
from pytest_spike.probes.base import ProbeContext, ProbeOutcome
from pytest_spike.readme.run import DEFAULT_BLOCK_TIMEOUT_S, SpikeReadme


def probe_readme(ctx: ProbeContext) -> ProbeOutcome:
    info = ctx.inspect()
    if not info.get("installed"):
        return ProbeOutcome(skipped=f"{ctx.candidate.project} is not installed (see the install probe)")
    readme = SpikeReadme(
        env=None if ctx.python == ctx.host_python else ctx.foreign_env(),
        python=str(ctx.python),
        dist_name=str(info["name"]),
        timeout=min(DEFAULT_BLOCK_TIMEOUT_S, ctx.timeout),
        workdir=ctx.workdir / f"readme-{ctx.candidate.name}",
    )
    run = readme.run()
    return ProbeOutcome(
        findings=run.findings,
        details=run.details,
        version=info.get("version"),
        # One failing block is often a placeholder path; most failing is a broken README.
        failed=any(f.severity.rank >= Severity.MEDIUM.rank for f in run.findings),
    )
