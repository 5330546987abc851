"""The attribution rules of an upgrade diff, the upgrades section of the results file, and
the choice of target versions."""

from __future__ import annotations

from pathlib import Path

import pytest
from indexserver import IndexServer

from pytest_spike.model import (
    TAMPERED,
    Blame,
    Finding,
    Level,
    Scorecard,
    Severity,
    SpikeError,
    UpgradeResult,
    UpgradeTarget,
)
from pytest_spike.upgrade.findings import SuiteRun, diff
from pytest_spike.upgrade.plan import Targets, Upgrade, plan_targets


def run(**outcomes: str) -> SuiteRun:
    return SuiteRun(outcomes={f"t.py::{k}": v for k, v in outcomes.items()})


def test_a_flip_the_rerun_before_does_not_confirm_is_flaky() -> None:
    result = diff("lib", "2.0", run(a="passed"), run(a="failed"), run(a="failed"), run(a="failed"))
    assert result.broken == [] and result.flaky == ["t.py::a"] and result.level is Level.LOW
    assert [f.code for f in result.findings] == ["upgrade.flaky"]


def test_a_forged_outcomes_file_blocks_the_target_only_where_the_release_ran() -> None:
    forged = Finding(
        TAMPERED, Severity.CRITICAL, "the upgrade child's outcomes contradict ...", {"nodeid": "t.py::a"}
    )
    after = run(a="failed")
    after.tampered.append(forged)
    result = diff("lib", "2.0", run(a="passed"), after, run(a="passed"), run(a="failed"))
    assert result.level is Level.BLOCKED and result.broken == ["t.py::a"]
    assert [f.code for f in result.findings] == [TAMPERED, "upgrade.breaks"]
    # In the running environment's re-run the upgraded release did not run: shown, not charged.
    before = run(a="passed")
    before.tampered.append(forged)
    result = diff("lib", "2.0", run(a="passed"), run(a="failed"), before, run(a="failed"))
    assert result.level is Level.HIGH
    shown = result.findings[0]
    assert (shown.code, shown.severity, shown.blame) == (TAMPERED, Severity.INFO, Blame.ENVIRONMENT)
    assert shown.message.startswith("in the running environment's re-run: the upgrade child's outcomes")


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


def test_plan_targets_leaves_out_what_this_python_cannot_install_and_says_why(tmp_path: Path) -> None:
    with IndexServer(tmp_path) as index:
        for version, requires in (("1.0", None), ("1.5", None), ("2.0", ">=3.99"), ("2.1", ">=3.99")):
            index.add("oldlib", version, requires_python=requires, sdist=False)
        client = index.client(cache_dir=tmp_path / "cache")
        upgrade = Upgrade("oldlib", "oldlib", "1.0")
        # the newest: the newest this Python installs, and the newest it cannot, named
        assert plan_targets(client, upgrade, None, python="3.11") == Targets(
            ["1.5"], {"2.1": "requires-python >=3.99 excludes 3.11"}, []
        )
        # named versions: each one left out is said
        planned = plan_targets(client, upgrade, "1.5, 2.0", python="3.11")
        assert planned.versions == ["1.5"] and list(planned.skipped) == ["2.0"]
        # any Python: nothing left out
        assert plan_targets(client, upgrade, "latest:2", python=None) == Targets(["2.0", "2.1"], {}, [])
        with pytest.raises(SpikeError, match="no release of oldlib among 1.0 to move to from 1.0"):
            plan_targets(client, upgrade, "1.0", python="3.11")
        # from 1.5, 1.0 is a downgrade: left out and named, unless asked for
        newer = Upgrade("oldlib", "oldlib", "1.5")
        with pytest.raises(
            SpikeError, match=r"1 older release\(s\) would be downgrades: --spike-upgrade-downgrades"
        ):
            plan_targets(client, newer, "<1.5", python=None)
        planned = plan_targets(client, newer, "latest:4", python=None)
        assert (planned.versions, planned.older) == (["2.0", "2.1"], ["1.0"])
        assert planned.older_note(newer) == (
            "oldlib: 1 target(s) older than the installed 1.5 not run (1.0); --spike-upgrade-downgrades runs them"
        )
        asked = plan_targets(client, newer, "latest:4", python=None, downgrades=True)
        assert (asked.versions, asked.older) == (["1.0", "2.0", "2.1"], [])
