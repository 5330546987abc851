"""Realistic results for the report benchmarks: the shape a zero-file spike of tomli,
tomlkit and toml produces (five built-in probes, their findings, a metric and a note)."""

from __future__ import annotations

import datetime as _dt

from pytest_spike import __version__
from pytest_spike.model import (
    Candidate,
    CandidateResult,
    Finding,
    Metric,
    ProbeResult,
    Scorecard,
    Severity,
)
from pytest_spike.scoring import Weights, level_for, score

PROBES = ("install", "import", "readme", "upstream", "signals")

_FINDINGS = (
    (
        "install",
        Finding(
            "install.changes",
            Severity.MEDIUM,
            "{name}=={version} fits only by changing pinned packages: {name} 2.5.0 -> {version} (downgrade)",
            {"tomli": "2.5.0 -> 2.4.1"},
        ),
    ),
    (
        "readme",
        Finding(
            "readme.failed",
            Severity.LOW,
            "1 of 5 README examples failed; first at line 82: FileNotFoundError: "
            "[Errno 2] No such file or directory: 'path_to_file/conf.toml'",
            {"line": "82"},
        ),
    ),
    (
        "upstream",
        Finding(
            "upstream.failed",
            Severity.HIGH,
            "1 of 5 sampled upstream tests failed (one failure is weak evidence): "
            "tests/test_api.py::test_warnings: Failed: DID NOT WARN.",
            {"failed": "tests/test_api.py::test_warnings"},
        ),
    ),
    (
        "signals",
        Finding(
            "signals.stale",
            Severity.MEDIUM,
            "last release {version} was 6.1 years ago (2020-11-01); stale after 2.0 years",
            {"last_release": "2020-11-01"},
        ),
    ),
    (
        "install",
        Finding(
            "install.footprint",
            Severity.INFO,
            "0 transitive dependencies, 0.7 MB on disk with them",
            {"dependencies": "0"},
        ),
    ),
    (
        "signals",
        Finding(
            "signals.cadence", Severity.INFO, "5 release(s) in the last 12 months", {"releases_12m": "5"}
        ),
    ),
)


def candidate_result(name: str, version: str, seed: int) -> CandidateResult:
    """One candidate with five probes; ``seed`` varies which findings it has and its numbers."""
    weights = Weights()
    probes = []
    for index, kind in enumerate(PROBES):
        findings = [
            Finding(f.code, f.severity, f.message.format(name=name, version=version), f.evidence)
            for probe, f in _FINDINGS
            if probe == kind and (seed + index) % 3 != 0
        ]
        probes.append(
            ProbeResult(
                candidate=name,
                kind=kind,
                nodeid=f"spike::{name}::{kind}",
                outcome="failed" if any(f.severity is Severity.HIGH for f in findings) else "passed",
                duration_s=0.1 + (seed * 7 + index) % 50 / 10,
                peak_memory_mb=30.0 + seed % 20,
                version=version,
                findings=findings,
                metrics={"parse speed": Metric("parse speed", 10.0 + seed % 13, "MB/s")}
                if kind == "import"
                else {},
                notes=[f"checked against our 42 configs (run {seed})"] if kind == "readme" else [],
            )
        )
    scored = score(((f, p.nodeid) for p in probes for f in p.findings), weights.points)
    total = sum(s.points for s in scored)
    return CandidateResult(
        Candidate(name), version, probes, scored, total, level_for(total, [s.finding for s in scored])
    )


def scorecard(cell: dict[str, str], results: list[CandidateResult]) -> Scorecard:
    return Scorecard(
        cell=cell,
        candidates=results,
        plugin_version=__version__,
        created=_dt.datetime(2026, 11, 28, tzinfo=_dt.timezone.utc).isoformat(),
    )
