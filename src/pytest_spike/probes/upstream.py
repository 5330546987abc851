"""The upstream probe: run a deterministic sample of the candidate's own tests against it.

The sdist of the version under test comes from the index; only its tests are used. With
candidate environments allowed, the tests run in an environment of their own (the
candidate at that version, pytest and the upstream test harness), so the harness never
lands in the user's environment or in the candidate's; otherwise they run in the
candidate's environment as it is, without the harness.

The probe ends unknown (its item skipped, with the reason) when nothing could be checked:
no tests in the sdist, tests that do not collect for harness reasons, or a sample whose
every test failed on a harness gap. A harness package the tests miss but the project
declares elsewhere (another extra, group or requirements file) is added, and the probe
runs once more.
"""

from __future__ import annotations

from typing import Any

from pytest_spike.index.client import IndexUnavailable, ProjectNotFound, sdist_entry
from pytest_spike.model import Blame, Finding, Severity, SpikeError
from pytest_spike.probes.base import ProbeContext, ProbeOutcome
from pytest_spike.upstream.findings import unchecked_reason, upstream_findings
from pytest_spike.upstream.run import SpikeUpstream


def probe_upstream(ctx: ProbeContext) -> ProbeOutcome:
    info = ctx.inspect()
    if ctx.python is None or not info.get("installed"):
        return ProbeOutcome(skipped=f"{ctx.candidate.project} is not installed (see the install probe)")
    name, version = str(info["name"]), str(info["version"])
    try:
        sdist = sdist_entry(ctx.services.index(), name, version)
    except IndexUnavailable as exc:
        return ProbeOutcome(
            findings=[
                Finding(
                    "upstream.unchecked",
                    Severity.INFO,
                    f"{exc}; upstream tests not run",
                    blame=Blame.ENVIRONMENT,
                )
            ],
            version=version,
            skipped=f"upstream tests not run: {exc}",
        )
    except ProjectNotFound:
        sdist = None
    source = ctx.sdist_source(sdist) if sdist else None
    if sdist is not None and source is None:
        return ProbeOutcome(
            version=version,
            skipped=f"upstream tests not run: --spike-offline and the sdist {sdist.filename} is not in the cache",
        )
    upstream = SpikeUpstream(
        python=str(ctx.python),
        dist_name=name,
        version=version,
        source=source,
        workdir=ctx.workdir / f"upstream-{ctx.candidate.name}",
        timeout=ctx.timeout,
        package_modules=info.get("modules") or (),
        seed=ctx.settings.upstream_seed,
        sha256=(sdist.hashes.get("sha256") if sdist else None),
    )
    harness: dict[str, Any] = {"environment": "candidate's, without the test harness"}
    isolated = ctx.settings.isolation != "never" and sdist is not None
    if isolated:
        harness = _harness_environment(ctx, upstream, name, version)
    result = upstream.probe(n=ctx.settings.upstream_sample)
    more = []
    if isolated and result.status in ("ran", "uncollectable"):
        more = upstream.harness.providing(result.missing_modules)
    if more and harness.get("harness") is not None:
        # The tests miss a package their project declares in another set: add it, once.
        ctx.services.say(f"adding declared test requirement(s) {', '.join(more)} for {name}'s tests")
        again = _harness_environment(ctx, upstream, name, version, more)
        if "harness" in again:
            harness, result = again, upstream.probe(n=ctx.settings.upstream_sample)
        else:
            result.notes.append(
                f"adding {', '.join(more)} to the test harness failed: {again['environment']}"
            )
    findings, details = upstream_findings(result)
    details["harness_environment"] = {k: v for k, v in harness.items() if k != "python"}
    return ProbeOutcome(findings=findings, details=details, version=version, skipped=unchecked_reason(result))


def _harness_environment(
    ctx: ProbeContext, upstream: SpikeUpstream, name: str, version: str, more: list[str] | None = None
) -> dict[str, Any]:
    """Point ``upstream`` at an environment with the candidate pinned, pytest and the harness
    (and ``more`` declared requirements, when the tests were found to need them)."""
    try:
        if not upstream.layout.has_tests:
            return {"environment": "none needed: no tests"}
        wanted = [*upstream.harness.requirements, *(more or [])]
    except SpikeError:
        return {"environment": "none: the sdist could not be read"}  # probe() reports why
    pin = f"{name}=={version}"
    env = ctx.services.envs().ensure([pin, "pytest", *wanted])
    used = wanted
    if not env.ok and more:
        return {"environment": f"could not be built: {env.error_line}"}
    if not env.ok and wanted:
        # A harness that cannot be installed still leaves the tests worth a try without it.
        upstream.notes.append(f"installing the test harness failed: {env.error_line}")
        env, used = ctx.services.envs().ensure([pin, "pytest"]), []
    if not env.ok:
        return {"environment": f"could not be built: {env.error_line}"}
    upstream.python = env.python
    return {
        "python": env.python,
        "environment": env.path,
        "harness": used,
        "harness_source": upstream.harness.source,
        "reused": env.reused,
    }
