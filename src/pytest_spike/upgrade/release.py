"""The new release's own evidence: the built-in probes on an upgrade's target version.

"Their tests fail on this release" and "it was yanked" belong next to the project's breaks.
For each target version the import, upstream, signals and licence probes (those
``--spike-probes`` selects) run on ``package==version`` as they would for a candidate (the
licence probe also compares the release's licence with the installed version's), reusing kept evidence,
and are scored by the run's rules (weights, waivers, evidence rules). The import probe runs
in the upgraded environment when it was built: the release as the project would have it;
otherwise (the version cannot be installed with the project) in the release's own
environment, so "it does not install at all" and "it clashes with your pins" differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone

from pytest_spike.envs.manager import EnvResult
from pytest_spike.kinds import BUILTIN
from pytest_spike.model import Candidate, CandidateResult, ProbeResult
from pytest_spike.probes import evidence
from pytest_spike.probes.base import ProbeContext, Target
from pytest_spike.probes.items import failing_findings, take_evidence
from pytest_spike.scoring import build_scorecard
from pytest_spike.services import Services
from pytest_spike.settings import Settings

#: The built-in probes that speak of a release itself (their kinds' ``release``), in order.
RELEASE_PROBES = tuple(k.name for k in BUILTIN if k.release)


def release_kinds(settings: Settings) -> list[str]:
    """The release probes the run's ``--spike-probes`` selects."""
    return [kind for kind in RELEASE_PROBES if kind in settings.probes]


def release_evidence(
    package: str,
    version: str,
    upgraded: EnvResult | None = None,
    *,
    settings: Settings,
    services: Services,
    current: str | None = None,
) -> CandidateResult | None:
    """The release probes on ``package==version``, scored; None when none is selected.

    ``current`` is the installed version the upgrade moves from: the licence probe compares
    the release's licence with it (``licence.changed``).
    """
    kinds = release_kinds(settings)
    if not kinds:
        return None
    candidate = Candidate(f"{package}=={version}")
    ctx = ProbeContext(candidate, settings, services, timeout=settings.probe_timeout, upgrading_from=current)
    if upgraded is not None and upgraded.ok:
        ctx.remember(("target", candidate), lambda: Target(upgraded.python, isolated=True, env=upgraded))
    probes = [_probe(ctx, kind) for kind in kinds]
    card = build_scorecard(
        [(candidate, probes)],
        weights=settings.weights,
        timebox=0.0,
        waivers=settings.waivers,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    return card.candidates[0]


def _probe(ctx: ProbeContext, kind: str) -> ProbeResult:
    entry_key, found = take_evidence(kind, ctx)
    if entry_key is not None:
        evidence.save(ctx, kind, entry_key, found)  # kept for the next run, when it may be
    nodeid = f"upgrade::{ctx.candidate.requirement}::{kind}"
    status = _status(found.outcome.skipped, failing_findings(found.outcome))
    return evidence.record(ProbeResult(ctx.candidate.name, kind, nodeid, outcome=status), found)


def _status(skipped: str | None, failing: Sequence[object]) -> str:
    if skipped:
        return "skipped"
    return "failed" if failing else "passed"
