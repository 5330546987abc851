"""build_scorecard: the probe results gathered per candidate -> the scorecard, with no pytest run."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from pytest_spike.data.budgets import Rate
from pytest_spike.model import (
    Blame,
    Candidate,
    CandidateResult,
    Finding,
    Level,
    ProbeResult,
    Severity,
)
from pytest_spike.scoring import Weights, build_scorecard

HIGH = Finding("import.failed", Severity.HIGH, "import goodpkg failed")
LOW = Finding("signals.stale", Severity.LOW, "no release for 3 years")


def probe(candidate: str, kind: str, nodeid: str, *findings: Finding, **fields: object) -> ProbeResult:
    return ProbeResult(candidate=candidate, kind=kind, nodeid=nodeid, findings=list(findings), **fields)  # type: ignore[arg-type]


class Hooks:
    """A plugin that adds a finding to one candidate, reweighs one code and relevels on a score."""

    def add_findings(self, result: CandidateResult) -> Iterable[Iterable[Finding] | None]:
        if result.name == "b":
            return [[Finding("policy.banned", Severity.MEDIUM, "on our banned list")], None]
        return [None]

    def weight(self, finding: Finding) -> float | None:
        return 1.0 if finding.code == "signals.stale" else None

    def level(self, result: CandidateResult) -> Level | None:
        return Level.BLOCKED if result.score >= 10 else None


def test_candidates_keep_their_order_and_probes_sort_by_node_id() -> None:
    a, b = Candidate("a"), Candidate("b")
    card = build_scorecard(
        [
            (b, [probe("b", "signals", "spike::b::signals"), probe("b", "import", "spike::b::import")]),
            (a, [probe("a", "install", "spike::a::install")]),
        ],
        timebox=600,
    )
    assert [c.name for c in card.candidates] == ["b", "a"]
    assert [p.nodeid for p in card.candidates[0].probes] == ["spike::b::import", "spike::b::signals"]


def test_the_install_probe_names_the_version() -> None:
    a = Candidate("a")
    card = build_scorecard(
        [
            (
                a,
                [
                    probe("a", "hello_world", "test_a.py::test_first", version="1.0"),
                    probe("a", "install", "spike::a::install", version="2.0"),
                ],
            )
        ],
        timebox=600,
    )
    assert card.candidates[0].version == "2.0"


def test_default_weights_score_and_level() -> None:
    a = Candidate("a")
    card = build_scorecard([(a, [probe("a", "import", "spike::a::import", HIGH, LOW)])], timebox=600)
    (result,) = card.candidates
    assert [(s.finding.code, s.points, s.probe) for s in result.scored] == [
        ("import.failed", 30.0, "spike::a::import"),
        ("signals.stale", 3.0, "spike::a::import"),
    ]
    assert (result.score, result.level) == (33.0, Level.HIGH)


def test_weights_from_the_settings_and_unchecked_findings_score_nothing() -> None:
    a = Candidate("a")
    unchecked = Finding(
        "signals.unchecked", Severity.HIGH, "the index did not answer", blame=Blame.ENVIRONMENT
    )
    weights = Weights.parse(["high = 5", "signals.stale = 0"], "test")
    card = build_scorecard(
        [(a, [probe("a", "signals", "spike::a::signals", HIGH, LOW, unchecked)])],
        weights=weights,
        timebox=600,
    )
    (result,) = card.candidates
    assert [s.points for s in result.scored] == [5.0, 0.0, 0.0]
    assert result.level is Level.LOW


def test_hooks_add_findings_reweigh_and_relevel() -> None:
    a, b = Candidate("a"), Candidate("b")
    card = build_scorecard(
        [
            (a, [probe("a", "signals", "spike::a::signals", LOW)]),
            (b, [probe("b", "signals", "spike::b::signals")]),
        ],
        timebox=600,
        hooks=Hooks(),
    )
    first, second = card.candidates
    assert (first.score, first.level) == (1.0, Level.LOW)  # signals.stale reweighed to 1
    assert [(s.finding.code, s.probe) for s in second.scored] == [("policy.banned", None)]
    assert (second.score, second.level) == (10.0, Level.BLOCKED)


def test_budgets_apply_to_user_tests_only() -> None:
    slow = Candidate("a", budget=(("seconds", 1.0),))
    card = build_scorecard(
        [
            (
                slow,
                [
                    probe("a", "install", "spike::a::install", duration_s=5.0),
                    probe("a", "hello_world", "test_a.py::test_hello", duration_s=5.0),
                ],
            )
        ],
        timebox=600,
    )
    (result,) = card.candidates
    assert [(s.finding.code, s.probe) for s in result.scored] == [("budget.seconds", "test_a.py::test_hello")]


@pytest.mark.parametrize(("own", "expected"), [(None, "600s"), (30.0, "30s")])
def test_the_time_box_finding_names_the_candidates_own_limit(own: float | None, expected: str) -> None:
    a = Candidate("a", timebox=own)
    cut = probe("a", "upstream", "spike::a::upstream", details={"timebox": True})
    card = build_scorecard([(a, [cut, probe("a", "install", "spike::a::install")])], timebox=600)
    (result,) = card.candidates
    (boxed,) = result.findings
    assert boxed.code == "timebox.exceeded"
    assert f"time box of {expected} ran out; not finished: spike::a::upstream" in boxed.message
    # Only a built-in probe was cut: its cost, not the candidate's fault (unchecked, 0 points).
    assert boxed.blame is Blame.ENVIRONMENT and "built-in probes only" in boxed.message
    assert result.score == 0


def test_cost_and_the_run_description() -> None:
    a = Candidate("a")
    card = build_scorecard(
        [(a, [probe("a", "install", "spike::a::install", duration_s=1800.0)])],
        timebox=600,
        cost=Rate(4.0, "EUR"),
        complete=False,
        cell={"python": "3.12", "id": "py3.12"},
        plugin_version="9.9",
        created="2024-01-01T00:00:00+00:00",
        fail_on=Level.MEDIUM,
    )
    assert card.candidates[0].cost == {
        "seconds": 1800.0,
        "per_hour": 4.0,
        "currency": "EUR",
        "amount": 2.0,
        "text": "2.00 EUR for 1800.0s of compute at 4.00 EUR/h",
    }
    data = card.to_dict()
    assert (data["complete"], data["cell"], data["plugin_version"], data["fail_on"]) == (
        False,
        {"python": "3.12", "id": "py3.12"},
        "9.9",
        "medium",
    )


def test_nothing_gathered_is_an_empty_scorecard() -> None:
    card = build_scorecard([], timebox=600)
    assert (card.candidates, card.complete, card.lowest_risk()) == ([], True, [])
