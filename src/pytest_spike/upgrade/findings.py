"""What an upgrade changed, attributed: pure functions from test outcomes to findings.

A *run* is what one pytest run of the project's tests reported (:class:`SuiteRun`). The
baseline run is the running environment's, the after run the upgraded environment's. A test
that passed before and does not pass after *flips*; it is re-run once on both sides, and only
a flip the re-run confirms breaks (``upgrade.breaks``), one that flips back is flaky
(``upgrade.flaky``, info). Tests failing on both sides are not charged. New warnings issued by
the upgraded package's own modules are its deprecations (``upgrade.deprecations``). A child
whose outcomes file contradicted what it announced while it ran (``_core.witness``) carries
``spike.tampered``: critical and the upgraded release's when the child ran it, and the
announced outcomes are the run's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from packaging.utils import canonicalize_name

from pytest_spike.model import TAMPERED, Blame, Finding, Level, Severity

#: Warning categories that announce a removal.
DEPRECATION_CATEGORIES = frozenset({"DeprecationWarning", "PendingDeprecationWarning", "FutureWarning"})
#: Tests named in one finding's message (all are in its evidence).
NAMED_IN_MESSAGE = 3


@dataclass
class SuiteRun:
    """One pytest run of the project's tests: outcome and first error line per node id."""

    #: node id -> passed, failed, error, skipped
    outcomes: dict[str, str] = field(default_factory=dict)
    #: node id -> the first error line of a test that did not pass
    errors: dict[str, str] = field(default_factory=dict)
    #: collector node id (a file) -> its collection error, e.g. the ImportError
    collect_errors: dict[str, str] = field(default_factory=dict)
    #: {"category", "message", "nodeid", "issuer", "dist", "filename"}
    warnings: list[dict[str, str]] = field(default_factory=list)
    duration_s: float = 0.0
    #: ``spike.tampered``, one per child whose outcomes file contradicted what it announced
    #: (set by the host, never read from the file)
    tampered: list[Finding] = field(default_factory=list)

    def outcome(self, nodeid: str) -> str:
        """The test's outcome; a test in a file that failed to collect is an ``error``."""
        if nodeid in self.outcomes:
            return self.outcomes[nodeid]
        return "error" if self.collect_error(nodeid) else "missing"

    def error(self, nodeid: str) -> str:
        return self.errors.get(nodeid) or self.collect_error(nodeid) or "not collected after the upgrade"

    def collect_error(self, nodeid: str) -> str:
        for collector, text in self.collect_errors.items():
            if nodeid == collector or nodeid.startswith(collector + "::") or not collector:
                return f"collection error: {text}"
        return ""

    def absorb(self, other: SuiteRun) -> None:
        """Add what another run of other tests (a child after a crash) reported."""
        self.outcomes.update(other.outcomes)
        self.errors.update(other.errors)
        self.collect_errors.update(other.collect_errors)
        self.warnings += other.warnings
        self.duration_s += other.duration_s
        self.tampered += other.tampered

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SuiteRun:
        return cls(
            outcomes={str(k): str(v) for k, v in (data.get("outcomes") or {}).items()},
            errors={str(k): str(v) for k, v in (data.get("errors") or {}).items()},
            collect_errors={str(k): str(v) for k, v in (data.get("collect_errors") or {}).items()},
            warnings=[{str(k): str(v) for k, v in w.items()} for w in data.get("warnings") or ()],
            duration_s=float(data.get("duration_s") or 0.0),
        )


def compared(baseline: SuiteRun) -> list[str]:
    """The tests an upgrade is judged on: those that passed before it."""
    return [nodeid for nodeid, outcome in baseline.outcomes.items() if outcome == "passed"]


def flipped(baseline: SuiteRun, after: SuiteRun) -> list[str]:
    """Tests that passed before and do not pass after (to re-run once on both sides)."""
    return [nodeid for nodeid in compared(baseline) if after.outcome(nodeid) not in ("passed", "skipped")]


@dataclass
class Diff:
    """The attributed difference of one target version, and its level."""

    findings: list[Finding]
    compared: int
    broken: list[str]
    flaky: list[str]
    level: Level


def diff(
    package: str,
    version: str,
    baseline: SuiteRun,
    after: SuiteRun,
    rerun_before: SuiteRun | None = None,
    rerun_after: SuiteRun | None = None,
) -> Diff:
    """Attribute what changed between ``baseline`` and ``after`` (see the module docstring).

    ``rerun_before`` / ``rerun_after`` re-ran the flipped tests; without them a flip counts
    as it was seen.
    """
    broken, flaky = _confirm_flips(flipped(baseline, after), rerun_before, rerun_after)
    total = len(compared(baseline))
    new = new_deprecations(package, baseline, after)
    both = [
        n
        for n, o in baseline.outcomes.items()
        if o in ("failed", "error") and after.outcome(n) in ("failed", "error")
    ]
    found = [
        f
        for f in (
            _breaks(package, version, total, broken, rerun_after or after),
            _flaky(flaky),
            _deprecations(package, version, new),
            _failing_before(both, after),
        )
        if f is not None
    ]
    tampered = _tampered(after, rerun_before, rerun_after)
    level = Level.HIGH if broken else Level.MEDIUM if new else Level.LOW
    if any(not f.unchecked for f in tampered):
        level = Level.BLOCKED  # a critical finding of the candidate's, as a candidate's card has it
    return Diff(tampered + found, total, broken, flaky, level)


def _tampered(after: SuiteRun, rerun_before: SuiteRun | None, rerun_after: SuiteRun | None) -> list[Finding]:
    """The children's ``spike.tampered``: the upgraded environment's first (its release's; the
    re-run's when the first run's file agreed), then the running environment's re-run's, where
    the upgraded release's code did not run: shown, never charged to the target."""
    mine = [f for run in (after, rerun_after) if run is not None for f in run.tampered][:1]
    theirs = [
        Finding(
            TAMPERED,
            Severity.INFO,
            f"in the running environment's re-run: {f.message}",
            f.evidence,
            blame=Blame.ENVIRONMENT,
        )
        for f in (rerun_before.tampered if rerun_before is not None else ())
    ]
    return mine + theirs


def _confirm_flips(
    flips: list[str], rerun_before: SuiteRun | None, rerun_after: SuiteRun | None
) -> tuple[list[str], list[str]]:
    """(broken, flaky): a flip counts when the re-run on both sides shows it again."""
    broken: list[str] = []
    flaky: list[str] = []
    for nodeid in flips:
        still_passes = rerun_before is None or rerun_before.outcome(nodeid) == "passed"
        still_fails = rerun_after is None or rerun_after.outcome(nodeid) not in ("passed", "skipped")
        (broken if still_passes and still_fails else flaky).append(nodeid)
    return broken, flaky


def _breaks(package: str, version: str, total: int, broken: list[str], after: SuiteRun) -> Finding | None:
    if not broken:
        return None
    errors = {nodeid: after.error(nodeid) for nodeid in broken}
    named = "; ".join(f"{n} ({errors[n]})" for n in broken[:NAMED_IN_MESSAGE])
    more = f"; and {len(broken) - NAMED_IN_MESSAGE} more" if len(broken) > NAMED_IN_MESSAGE else ""
    message = f"{len(broken)} of {total} tests break on {package} {version}: {named}{more}"
    return Finding("upgrade.breaks", Severity.HIGH, message, errors)


def _flaky(flaky: list[str]) -> Finding | None:
    if not flaky:
        return None
    return Finding(
        "upgrade.flaky",
        Severity.INFO,
        f"{len(flaky)} test(s) flipped once and passed on the re-run, not charged: "
        + ", ".join(flaky[:NAMED_IN_MESSAGE]),
        {nodeid: "flipped back on the re-run" for nodeid in flaky},
    )


def _deprecations(package: str, version: str, new: list[dict[str, str]]) -> Finding | None:
    if not new:
        return None
    return Finding(
        "upgrade.deprecations",
        Severity.MEDIUM,
        f"{package} {version} warns of {len(new)} deprecation(s) the tests did not see before: "
        + "; ".join(f"{w['category']}: {w['message']}" for w in new[:NAMED_IN_MESSAGE]),
        {f"{w['category']}: {w['message']}": w.get("nodeid", "") for w in new},
    )


def _failing_before(both: list[str], after: SuiteRun) -> Finding | None:
    if not both:
        return None
    return Finding(
        "upgrade.failing_before",
        Severity.INFO,
        f"{len(both)} test(s) fail before and after the upgrade, not charged: "
        + ", ".join(both[:NAMED_IN_MESSAGE]),
        {nodeid: after.error(nodeid) for nodeid in both},
    )


def new_deprecations(package: str, baseline: SuiteRun, after: SuiteRun) -> list[dict[str, str]]:
    """Deprecation warnings after the upgrade, issued by ``package``'s modules, not seen before."""
    seen = {(w.get("category"), w.get("message")) for w in baseline.warnings}
    name = canonicalize_name(package)
    found: dict[tuple[str | None, str | None], dict[str, str]] = {}
    for warning in after.warnings:
        if warning.get("category") not in DEPRECATION_CATEGORIES:
            continue
        if canonicalize_name(warning.get("dist") or "-") != name:
            continue
        key = (warning.get("category"), warning.get("message"))
        if key not in seen:
            found.setdefault(key, warning)
    return list(found.values())


def unresolvable(package: str, version: str, why: str, clashing: str = "") -> Finding:
    """The target version cannot be installed together with the project's requirements."""
    named = f" next to the project's {clashing}" if clashing else ""
    return Finding(
        "upgrade.unresolvable",
        Severity.HIGH,
        f"{package} {version} cannot be installed{named}: {why}",
        {"clashing": clashing, "resolver": why},
    )
