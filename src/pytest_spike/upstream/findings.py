"""The upstream probe's findings and details, read from an :class:`UpstreamResult`."""

from __future__ import annotations

from typing import Any

from pytest_spike.model import TAMPERED, Blame, Finding, Severity
from pytest_spike.upstream.results import UpstreamResult


def upstream_findings(result: UpstreamResult) -> tuple[list[Finding], dict[str, Any]]:
    """Turn an upstream result into findings plus the details the report shows.

    Only the candidate's evidence scores: a failure that persists when run again. One such
    failure in a sample is weak evidence (a time-dependent test on a loaded machine, a
    system file that differs) and is low; two or more are high. A test that passed when run
    again is ``upstream.flaky`` (info), and a harness gap is shown unchecked, never scored.
    A JUnit file that contradicts what the child announced while it ran is ``spike.tampered``
    (critical); the announced outcomes are the ones counted.
    """
    builders = (
        _tampered_finding,
        _status_finding,
        _failed_finding,
        _flaky_finding,
        _gap_finding,
        _low_confidence_finding,
    )
    findings = [f for f in (build(result) for build in builders) if f is not None]
    return findings, _upstream_details(result)


def _upstream_details(result: UpstreamResult) -> dict[str, Any]:
    """The counts, sample and notes the report shows for an upstream result."""
    failures, gaps = result.failures, result.gaps
    details: dict[str, Any] = {
        "status": result.status,
        "collected": result.collected,
        "collected_files": result.collected_files,
        "sampled": len(result.sampled),
        "checked": result.checked,
        "passed": result.count("passed"),
        "failed": sum(1 for o in failures.values() if o.outcome == "failed"),
        "errors": sum(1 for o in failures.values() if o.outcome == "error"),
        "flaky": result.count("flaky"),
        "harness_gaps": len(gaps),
        "skipped": result.count("skipped"),
        "seed": result.seed,
        "harness": _harness_source(result),
        "mode": result.mode,
        "sample": list(result.sampled),
        "outcomes": {k: v.outcome + (" (harness gap)" if v.gap else "") for k, v in result.outcomes.items()},
        "notes": list(result.notes),
    }
    if gaps:
        details["gap_reasons"] = {k: v.gap for k, v in gaps.items()}
    if result.tampered:
        details["tampered"] = dict(result.tampered)
    if result.reason:
        details["reason"] = result.reason
    return details


def _tampered_finding(result: UpstreamResult) -> Finding | None:
    if not result.tampered:
        return None
    nodeid, why = next(iter(result.tampered.items()))
    return Finding(
        TAMPERED,
        Severity.CRITICAL,
        f"upstream's test results contradict what the child pytest announced for "
        f"{len(result.tampered)} test(s); first {nodeid}: {why}",
        {"nodeid": nodeid, "why": why, "tests": str(len(result.tampered))},
    )


def _harness_source(result: UpstreamResult) -> str:
    return result.harness.source if result.harness else "none"


def _unsafe_finding(result: UpstreamResult) -> Finding:
    return Finding(
        "upstream.unsafe",
        Severity.HIGH,
        f"the sdist was refused: {result.reason}",
        {"reason": result.reason},
    )


def _unavailable_finding(result: UpstreamResult) -> Finding:
    # Not evidence against the candidate: many healthy sdists ship no tests.
    return Finding(
        "upstream.unavailable",
        Severity.INFO,
        f"no upstream tests to sample: {result.reason or 'the sdist has no tests'}",
    )


def _uncollectable_finding(result: UpstreamResult) -> Finding:
    return Finding(
        "upstream.uncollectable",
        Severity.MEDIUM,
        f"upstream tests do not collect: {result.reason}",
        {"reason": result.reason, "harness": _harness_source(result)},
        blame=Blame.ENVIRONMENT if result.gap else Blame.CANDIDATE,
    )


#: The finding a result's status alone gives ("ran" gives none).
_STATUS_FINDINGS = {
    "unsafe": _unsafe_finding,
    "none": _unavailable_finding,
    "uncollectable": _uncollectable_finding,
}


def _status_finding(result: UpstreamResult) -> Finding | None:
    build = _STATUS_FINDINGS.get(result.status)
    return build(result) if build else None


def _failed_finding(result: UpstreamResult) -> Finding | None:
    """Failures that persisted when run again: one is low (weak evidence), more are high."""
    failures = result.failures
    if not failures:
        return None
    n, total = len(failures), len(result.sampled)
    first_id, first = next(iter(failures.items()))
    weak = " (a single failure is weak evidence: it scores low)" if n == 1 else ""
    return Finding(
        "upstream.failed",
        Severity.LOW if n == 1 else Severity.HIGH,
        f"{n} of {total} sampled upstream tests failed, and again when run alone{weak}: "
        f"{first_id}: {first.message}",
        {"nodeids": " ".join(failures), "first_error": first.message, "seed": str(result.seed)},
    )


def _flaky_finding(result: UpstreamResult) -> Finding | None:
    flaky = {k: v for k, v in result.outcomes.items() if v.outcome == "flaky"}
    if not flaky:
        return None
    first_id, first = next(iter(flaky.items()))
    return Finding(
        "upstream.flaky",
        Severity.INFO,
        f"{len(flaky)} sampled upstream test(s) failed, then passed when run again: {first_id}",
        {"nodeids": " ".join(flaky), "first_error": first.message},
    )


def _gap_finding(result: UpstreamResult) -> Finding | None:
    gaps = result.gaps
    if not gaps:
        return None
    first_id, first = next(iter(gaps.items()))
    return Finding(
        "upstream.harness_gap",
        Severity.MEDIUM,
        f"{len(gaps)} of {len(result.sampled)} sampled upstream tests could not be checked here: "
        f"{first_id}: {first.gap}",
        {"nodeids": " ".join(gaps), "first_gap": first.gap, "first_error": first.message},
        blame=Blame.ENVIRONMENT,
    )


def _low_confidence_finding(result: UpstreamResult) -> Finding | None:
    if not result.low_confidence:
        return None
    return Finding(
        "upstream.low_confidence",
        Severity.INFO,
        "upstream tests collected only with --noconftest (fixtures and "
        "collect_ignore lost): results are low-confidence",
        {"mode": result.mode},
    )


def unchecked_reason(result: UpstreamResult) -> str | None:
    """Why the result is no evidence either way (the probe then ends unknown), or None."""
    if result.status == "none":
        return f"no upstream tests: {result.reason or 'the sdist has no tests'}"
    if result.status == "uncollectable" and result.gap:
        return f"upstream tests could not be collected here: {result.reason}"
    if result.status == "ran" and not result.checked:
        gaps = result.gaps
        if gaps:
            first = next(iter(gaps.values()))
            return f"none of the {len(result.sampled)} sampled upstream tests could be checked: {first.gap}"
        return f"none of the {len(result.sampled)} sampled upstream tests ran (all skipped)"
    return None
