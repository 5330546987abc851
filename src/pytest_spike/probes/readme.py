"""The readme probe: run the code examples of the installed candidate's README.

Evidence either way, or unknown: the probe ends skipped when the README has nothing
runnable or every runnable example failed for a reason that is not the candidate's
(``readme.unchecked``). Its item fails, like every probe's, on a high or critical finding.
"""

from __future__ import annotations

from pytest_spike.model import Blame, Finding, Severity, SpikeError
from pytest_spike.probes.base import ProbeContext, ProbeOutcome
from pytest_spike.readme.run import DEFAULT_BLOCK_TIMEOUT_S, SLOW_ALLOWANCE_FACTOR, SpikeReadme


def probe_readme(ctx: ProbeContext) -> ProbeOutcome:
    info = ctx.inspect()
    if not info.get("installed"):
        return ProbeOutcome(skipped=f"{ctx.candidate.project} is not installed (see the install probe)")
    python = str(ctx.python)
    readme = SpikeReadme(
        env=None if python == ctx.host_python else ctx.foreign_env(),
        python=python,
        dist_name=str(info["name"]),
        timeout=min(DEFAULT_BLOCK_TIMEOUT_S, ctx.timeout),
        workdir=ctx.workdir / f"readme-{ctx.candidate.name}",
        allow_network=ctx.settings.allow_network,
        # A block still computing may take longer, but never longer than one probe step.
        slow_allowance=min(SLOW_ALLOWANCE_FACTOR * DEFAULT_BLOCK_TIMEOUT_S, ctx.timeout),
        site=ctx.site(python),  # the host reads the README: see envs/inspection.py
    )
    version = info.get("version")
    try:
        run = readme.run()
    except SpikeError as exc:
        # Reading the metadata or starting the runner failed: our side, not the candidate's.
        error = Finding("readme.error", Severity.INFO, f"README not checked: {exc}", blame=Blame.SPIKE)
        return ProbeOutcome(findings=[error], version=version, skipped=f"README not checked: {exc}")
    skipped = None
    if not run.runnable:
        skipped = "nothing runnable: the README has no Python example"
    elif not run.checked:
        skipped = f"every runnable README example was unchecked ({run.unchecked[0].unchecked})"
    return ProbeOutcome(findings=run.findings, details=run.details, version=version, skipped=skipped)
