"""The attribution rules of an upgrade diff, and the upgrades section of the results file."""

from __future__ import annotations

from pytest_spike.model import Finding, Level, Scorecard, Severity, UpgradeResult, UpgradeTarget
from pytest_spike.upgrade.findings import SuiteRun, diff


def run(**outcomes: str) -> SuiteRun:
    return SuiteRun(outcomes={f"t.py::{k}": v for k, v in outcomes.items()})


def test_a_flip_the_rerun_before_does_not_confirm_is_flaky() -> None:
    result = diff("lib", "2.0", run(a="passed"), run(a="failed"), run(a="failed"), run(a="failed"))
    assert result.broken == [] and result.flaky == ["t.py::a"] and result.level is Level.LOW
    assert [f.code for f in result.findings] == ["upgrade.flaky"]


def test_deprecations_count_only_the_packages_own_and_new_ones() -> None:
    warning = {"category": "DeprecationWarning", "message": "x is deprecated", "dist": "Lib"}
    before = SuiteRun({"t.py::a": "passed"}, warnings=[{"category": "DeprecationWarning", "message": "old"}])
    after = SuiteRun(
        {"t.py::a": "passed"},
        warnings=[
            warning,
            dict(warning, dist="other"),
            {"category": "DeprecationWarning", "message": "old", "dist": "lib"},
        ],
    )
    result = diff("lib", "2.0", before, after)
    [finding] = result.findings
    assert finding.code == "upgrade.deprecations" and result.level is Level.MEDIUM
    assert list(finding.evidence) == ["DeprecationWarning: x is deprecated"]


def test_upgrades_section_round_trips_and_old_files_still_load() -> None:
    target = UpgradeTarget(
        "2.0",
        Level.HIGH,
        passes=False,
        findings=[Finding("upgrade.breaks", Severity.HIGH, "1 of 2 tests break")],
        compared=2,
        broken=1,
        moved=["lib 1.0 -> 2.0 (major upgrade)"],
    )
    ok = UpgradeTarget("1.5", passes=True, compared=2)
    card = Scorecard(cell={}, candidates=[], upgrades=[UpgradeResult("lib", "lib", "1.0", [ok, target])])
    data = card.to_dict()
    assert data["upgrades"][0]["newest_passing"] == "1.5"
    again = Scorecard.from_dict(data)
    assert again.upgrades[0].targets[1].findings[0].code == "upgrade.breaks"
    assert again.to_dict() == data
    del data["upgrades"]
    assert Scorecard.from_dict(data).upgrades == []
