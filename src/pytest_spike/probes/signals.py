"""The signals probe: what the package index says about the candidate's health."""

from __future__ import annotations

import sys

from pytest_spike.index.signals import collect_signals
from pytest_spike.probes.base import ProbeContext, ProbeOutcome


def probe_signals(ctx: ProbeContext) -> ProbeOutcome:
    info = ctx.inspect()
    installed = info.get("version") if info.get("installed") else None
    # Not installed (no environment could be built): a pinned candidate is still that version.
    version = installed or ctx.candidate.pinned
    findings, details = collect_signals(
        ctx.services.index(),
        ctx.candidate.project,
        installed_version=version,
        version_source="installed" if installed else f"the candidate's pin ({ctx.candidate.requirement})",
        matrix_pythons=ctx.candidate.python,
        stale_after_days=ctx.settings.stale_after_days,
        python_version=info.get("python_version") or "{}.{}".format(*sys.version_info[:2]),
    )
    details["installed_version"] = installed
    unknown = details.get("unchecked")
    # The index could not be asked: no evidence either way, so the item is skipped with why.
    skipped = f"signals not checked: {unknown['value']}" if unknown else None
    return ProbeOutcome(findings=findings, details=details, version=version, skipped=skipped)
