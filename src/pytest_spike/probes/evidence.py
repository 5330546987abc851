"""Cached probe evidence: a built-in probe's outcome, reused while nothing it rests on changed.

An entry is one JSON file under ``<cache>/evidence/``, named by the hash of everything the
probe's result depends on (its :func:`key`): the probe and its version, pytest-spike's
version, the candidate as declared, the content of the environment it ran in (the
interpreter, the environment's marker when it is one of ours, and what the inspection
found there: version, closure with versions, location, modules), and the settings the
probe reads (its kind's ``reads``). A kind whose evidence rests on the index's answers
(signals) also lists the answers it used: it is reused only while each is still the index
cache's answer and fresh enough that the index client would give it without asking again.

Every entry's SHA-256 is recorded when it is written, in the host's own index of digests
(``<cache>/evidence-digests.json``, beside the evidence folder, not in it: no box may write
either, and the index lies outside every folder a box binds writable). An entry whose bytes
no longer match, or that has no digest, is not reused: the probe runs again, and says why.

What is never kept: an outcome cut by the time box or interrupted (there is none), one
with a finding of pytest-spike's own failure, and one that says the index (or the network)
could not be asked (the kind's ``transient`` codes): next time may fare better.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_spike import __version__, kinds
from pytest_spike._core.files import write_atomic
from pytest_spike.envs.digest import source_digest
from pytest_spike.envs.store import locked
from pytest_spike.model import Blame, Finding, ProbeResult, SpikeError

if TYPE_CHECKING:
    from pytest_spike.probes.base import ProbeContext, ProbeOutcome

SCHEMA = "pytest-spike-evidence/1"
#: The folder of the spike cache that holds the probes' evidence.
EVIDENCE_CACHE = "evidence"
#: The host's index of the evidence files' digests, in the spike cache (not in the folder).
DIGESTS = "evidence-digests.json"
DIGESTS_SCHEMA = "pytest-spike-evidence-digests/1"


@dataclass(frozen=True)
class Evidence:
    """A probe's outcome and when it was taken (epoch seconds); ``cached``: read from the cache."""

    outcome: ProbeOutcome
    taken: float
    cached: bool


def key(ctx: ProbeContext, kind: str) -> str | None:
    """The cache key of ``kind``'s evidence for ``ctx``'s candidate; None when it cannot be
    known (no environment, an inspection that failed): then the probe runs and nothing is kept.
    """
    target = ctx.target()
    if target.python is None:
        return None
    try:
        inspected = ctx.inspect()
    except SpikeError:
        return None  # the probe reports it
    env = target.env.to_dict() if target.env is not None else None
    if env is not None:
        env.pop("reused", None)  # the same environment, whether built now or before
        env.pop("rebuilt", None)
    probe = kinds.kind(kind)
    ident = {
        "schema": SCHEMA,
        "spike": __version__,
        # the code that took the evidence: a changed probe must not reuse its old verdicts
        "code": source_digest(),
        "probe": kind,
        "probe_version": probe.version,
        "candidate": ctx.candidate.to_dict(),
        "python": target.python,
        "isolated": target.isolated,
        "environment": env,
        "inspection": inspected,
        "options": probe.reads(ctx.settings),
    }
    if probe.compares_upgrade and ctx.upgrading_from is not None:
        ident["upgrading_from"] = ctx.upgrading_from  # the other side of its comparison
    if probe.keyed_by_project and (target.isolated or ctx.settings.requirement_files):
        ident["project"] = ctx.project_requirements()  # the fit check's other side
    blob = json.dumps(ident, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


def folder(ctx: ProbeContext) -> Path:
    return ctx.settings.cache_dir / EVIDENCE_CACHE


def digests(ctx: ProbeContext) -> dict[str, str]:
    """The host's index: each evidence file's SHA-256 by its key ({} when there is none)."""
    try:
        data = json.loads((ctx.settings.cache_dir / DIGESTS).read_text("utf-8"))
        found = data["digests"] if data.get("schema") == DIGESTS_SCHEMA else {}
        return {str(k): str(v) for k, v in found.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}  # none or unreadable: no evidence is trusted, every probe runs again


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load(ctx: ProbeContext, kind: str, entry_key: str) -> Evidence | None:
    """The kept evidence under ``entry_key``, if any and still good to reuse."""
    from pytest_spike.probes.base import ProbeOutcome

    path = folder(ctx) / f"{entry_key}.json"
    try:
        raw_bytes = path.read_bytes()
    except OSError:
        return None  # none: the probe runs
    expected = digests(ctx).get(entry_key)
    if expected != _sha256(raw_bytes):
        why = "has no recorded digest" if expected is None else "changed since it was written"
        ctx.services.say(f"{ctx.candidate.name} {kind}: the kept evidence {why}: running the probe again")
        return None
    try:
        data = json.loads(raw_bytes.decode("utf-8"))
        if data.get("schema") != SCHEMA or data.get("probe") != kind:
            return None
        raw = data["outcome"]
        outcome = ProbeOutcome(
            findings=[Finding.from_dict(f) for f in raw.get("findings") or ()],
            details=dict(raw.get("details") or {}),
            version=raw.get("version"),
            skipped=raw.get("skipped"),
            peak_memory_mb=raw.get("peak_memory_mb"),
        )
        taken = float(data["taken"])
        answers = {str(k): float(v) for k, v in (data.get("index_answers") or {}).items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        return None  # unreadable: the probe runs again
    if kinds.kind(kind).rests_on_index_answers and not ctx.services.index().answers_fresh(answers):
        return None  # the index answers it rests on are stale (or gone): ask again
    return Evidence(outcome, taken, cached=True)


def keepable(kind: str, outcome: ProbeOutcome) -> bool:
    """Whether ``outcome`` may be reused by a later run (see the module's docstring)."""
    probe = kinds.kind(kind)
    for finding in outcome.findings:
        if finding.blame is Blame.SPIKE or finding.code in probe.transient:
            return False
        if probe.environment_is_transient and finding.blame is Blame.ENVIRONMENT:
            return False  # an index or network trouble while building or asking
    return True


def save(ctx: ProbeContext, kind: str, entry_key: str, evidence: Evidence) -> bool:
    """Keep ``evidence`` under ``entry_key`` (atomically); False when it may not be kept."""
    outcome = evidence.outcome
    if evidence.cached or not keepable(kind, outcome):
        return False
    document: dict[str, Any] = {
        "schema": SCHEMA,
        "probe": kind,
        "candidate": ctx.candidate.name,
        "taken": evidence.taken,
        "outcome": {
            "findings": [f.to_dict() for f in outcome.findings],
            "details": outcome.details,
            "version": outcome.version,
            "skipped": outcome.skipped,
            "peak_memory_mb": outcome.peak_memory_mb,
        },
    }
    if kinds.kind(kind).rests_on_index_answers:
        answers = ctx.services.index().answers_of(ctx.candidate.project)
        if not answers:
            return False  # answers from no cache (a local index): nothing to judge freshness by
        document["index_answers"] = answers
    try:
        text = json.dumps(document, indent=1, default=str)
        _write(ctx, entry_key, text)
    except (OSError, TypeError, ValueError, SpikeError):
        return False  # a read-only cache, or details that are not JSON: costs speed, not results
    return True


def _write(ctx: ProbeContext, entry_key: str, text: str) -> None:
    """Write the evidence file and record its digest, under the index's lock: workers and
    runs sharing the cache each add their own entries, and the file and its digest agree."""
    index = ctx.settings.cache_dir / DIGESTS
    index.parent.mkdir(parents=True, exist_ok=True)
    with locked(index.with_suffix(".lock"), 60):
        write_atomic(folder(ctx) / f"{entry_key}.json", text)
        found = digests(ctx)
        found[entry_key] = _sha256(text.encode("utf-8"))
        write_atomic(index, json.dumps({"schema": DIGESTS_SCHEMA, "digests": found}, indent=0))


def lookup(ctx: ProbeContext, kind: str, *, reuse: bool) -> tuple[str | None, Evidence | None]:
    """(key, kept evidence or None) of ``kind`` for ``ctx``'s candidate, once per session.

    The session's background builds ask first, so the keys (which need the candidate's
    environment) are found for several candidates at once; ``reuse`` False (``--spike-fresh``)
    still gives the key, for the new evidence to be kept under.
    """

    def find() -> tuple[str | None, Evidence | None]:
        try:
            entry_key = key(ctx, kind)
        except SpikeError:
            return None, None  # a bad requirement file, say: the probe reports it
        if entry_key is None or not reuse:
            return entry_key, None
        return entry_key, load(ctx, kind, entry_key)

    return ctx.remember(("evidence", ctx.candidate, kind), find)


def iso_time(epoch: float) -> str:
    """``epoch`` as ISO 8601 in UTC, to the second."""
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds")


def record(probe: ProbeResult, found: Evidence) -> ProbeResult:
    """``probe`` holding ``found``: its outcome's findings, details (with why it holds no
    evidence under ``unknown``), version and memory, and when it was taken."""
    outcome = found.outcome
    probe.findings = list(outcome.findings)
    probe.details = dict(outcome.details)
    probe.version = outcome.version
    probe.peak_memory_mb = outcome.peak_memory_mb
    if outcome.skipped:
        probe.details["unknown"] = outcome.skipped
    probe.taken, probe.cached = iso_time(found.taken), found.cached
    return probe


def taken_now(outcome: ProbeOutcome) -> Evidence:
    """Evidence a probe has just produced."""
    return Evidence(outcome, time.time(), cached=False)
