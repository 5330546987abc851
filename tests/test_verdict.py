"""Evidence rules end to end: attribution, three states, coverage on the card, waivers."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from pytest_spike.model import Blame, Finding, Severity, SpikeError
from pytest_spike.waivers import Waiver, parse_waivers, waiver_for


def results(pytester: pytest.Pytester) -> dict[str, Any]:
    data = json.loads((pytester.path / "r.json").read_text())
    return {c["name"]: c for c in data["candidates"]} | {"": data}


# -- waivers --------------------------------------------------------------------------------------


def test_waiver_lines_parse() -> None:
    (waiver,) = parse_waivers(
        ["Ruamel.YAML signals.stale until 2027-06-30:  pinned, replacing in Q2 "], "here"
    )
    assert waiver == Waiver("ruamel-yaml", "signals.stale", dt.date(2027, 6, 30), "pinned, replacing in Q2")
    stale = Finding("signals.stale", Severity.MEDIUM, "old")
    assert waiver_for([waiver], "ruamel_yaml", stale) is waiver
    assert waiver_for([waiver], "ruamel-yaml", Finding("signals.yanked", Severity.HIGH, "x")) is None
    assert waiver.active(dt.date(2027, 6, 30)) and not waiver.active(dt.date(2027, 7, 1))


@pytest.mark.parametrize(
    "line",
    [
        "toml signals.stale: no date",
        "toml signals.stale until 2027-13-01: bad month",
        "toml stale until 2027-06-30: a code has a dot",
        "toml signals.stale until 2027-06-30:",
    ],
)
def test_a_malformed_waiver_names_the_line(line: str) -> None:
    with pytest.raises(SpikeError, match="spike_waivers in pytest.ini") as info:
        parse_waivers([line], "spike_waivers in pytest.ini")
    assert repr(line.strip()) in str(info.value)


WARN_INI = """
[pytest]
spike_waivers =
    warnpkg import.deprecation until {until}: read it, the old API goes in our next release
"""


def test_an_active_waiver_shows_the_finding_and_scores_it_zero(
    pytester: pytest.Pytester, spike_site: Path
) -> None:
    pytester.makeini(WARN_INI.format(until="2999-12-31"))
    result = pytester.runpytest("--spike", "--spike-candidate=warnpkg", "--spike-json=r.json")
    cand = results(pytester)["warnpkg"]
    (waived,) = [f for f in cand["findings"] if f["code"] == "import.deprecation"]
    assert waived["points"] == 0 and waived["waiver"]["expired"] is False
    assert cand["level"] == "low" and cand["score"] == 0
    result.stdout.fnmatch_lines(
        [
            "  waived until 2999-12-31 (read it, the old API goes in our next release)",
            "*medium import.deprecation:*",
        ]
    )
    assert results(pytester)[""]["settings"]["waivers"] == [
        "warnpkg import.deprecation until 2999-12-31: read it, the old API goes in our next release"
    ]


def test_an_expired_waiver_scores_again_and_says_so(pytester: pytest.Pytester, spike_site: Path) -> None:
    pytester.makeini(WARN_INI.format(until="2020-01-31"))
    result = pytester.runpytest("--spike", "--spike-candidate=warnpkg", "--spike-json=r.json")
    cand = results(pytester)["warnpkg"]
    (finding,) = [f for f in cand["findings"] if f["code"] == "import.deprecation"]
    assert finding["points"] == 10 and finding["waiver"]["expired"] is True
    assert cand["level"] == "medium"
    result.stdout.fnmatch_lines(["*+10 medium import.deprecation (waiver expired 2020-01-31)*"])


def test_a_malformed_waiver_is_a_usage_error(pytester: pytest.Pytester, spike_site: Path) -> None:
    pytester.makeini("[pytest]\nspike_waivers = warnpkg import.deprecation forever\n")
    result = pytester.runpytest("--spike", "--spike-candidate=warnpkg")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*spike_waivers in tox.ini*'warnpkg import.deprecation forever' is not a waiver*"]
    )
    result.stdout.no_fnmatch_line("*spike scorecard*")


# -- attribution: the spike's own errors ---------------------------------------------------------


def test_a_fixture_misuse_is_the_spikes_error_not_the_candidates(
    pytester: pytest.Pytester, spike_site: Path
) -> None:
    data = pytester.mkdir("data")
    (data / "anchors.yaml").write_text("a: 1\n")
    pytester.makepyfile(
        test_data="""
        from pytest_spike import spike

        @spike.candidate("goodpkg")
        @spike.real_data
        def test_rows(spike_data):
            import goodpkg
            for row in spike_data.rows("anchors.yaml"):
                goodpkg.hello()
        """
    )
    result = pytester.runpytest("--spike", "--spike-data=data", "--spike-json=r.json")
    cand = results(pytester)["goodpkg"]
    (finding,) = [f for f in cand["findings"] if f["code"].startswith("real_data.")]
    assert finding["code"] == "real_data.spike_error" and finding["blame"] == "spike"
    assert finding["points"] == 0 and cand["level"] == "low"
    result.assert_outcomes(failed=1, passed=2)  # the user's test still fails: it is their mistake
    result.stdout.fnmatch_lines(
        ["*unchecked (spike) real_data.spike_error: test_rows stopped on pytest-spike's*"]
    )


def test_unchecked_findings_never_score_or_block() -> None:
    from pytest_spike.model import Candidate, ProbeResult
    from pytest_spike.scoring import build_scorecard

    probe = ProbeResult(
        "x",
        "install",
        "spike::x::install",
        findings=[
            Finding("install.unchecked", Severity.CRITICAL, "index down", blame=Blame.ENVIRONMENT),
            Finding("readme.failed", Severity.MEDIUM, "ours", blame=Blame.SPIKE),
        ],
    )
    card = build_scorecard([(Candidate("x"), [probe])], timebox=600)
    (result,) = card.candidates
    assert result.score == 0 and result.level.value == "low"
    assert [s.points for s in result.scored] == [0, 0]


# -- three states and coverage -------------------------------------------------------------------


def test_coverage_counts_kinds_with_evidence() -> None:
    from pytest_spike.model import Candidate, CandidateResult, ProbeResult

    result = CandidateResult(
        Candidate("x"),
        probes=[
            ProbeResult("x", "install", "spike::x::install"),
            ProbeResult(
                "x", "upstream", "spike::x::upstream", outcome="skipped", details={"unknown": "no tests"}
            ),
            ProbeResult("x", "hello_world", "t.py::a", outcome="failed"),
            ProbeResult("x", "hello_world", "t.py::b", outcome="skipped"),
        ],
    )
    assert result.evidence == {
        "probes_with_evidence": 2,
        "probes": 3,
        "unknown": ["upstream"],
        "why": {"upstream": "no tests"},
    }
    assert result.to_dict()["evidence"]["unknown"] == ["upstream"]


UNREACHABLE = "http://127.0.0.1:9/simple/"  # the discard port: nothing listens there


@pytest.mark.parametrize("backend", ["venv", "uv"])
def test_an_unreachable_index_leaves_the_install_unknown(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, backend: str
) -> None:
    from pytest_spike.envs.manager import find_uv

    if backend == "uv" and find_uv() is None:
        pytest.skip("uv is not installed")
    for name in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PYTEST_ADDOPTS", "PIP_NO_INDEX"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("PIP_INDEX_URL", UNREACHABLE)
    monkeypatch.setenv("PIP_RETRIES", "1")  # pip says why only when it retries
    monkeypatch.setenv("UV_INDEX_URL", UNREACHABLE)
    result = pytester.runpytest(
        "--spike",
        "--spike-candidate=nothing-here-xyz",
        "--spike-isolation=always",
        f"--spike-backend={backend}",
        "--spike-probes=install,import",
        f"--spike-cache-dir={tmp_path / 'cache'}",
        "--spike-json=r.json",
    )
    cand = results(pytester)["nothing-here-xyz"]
    (finding,) = [f for f in cand["findings"] if f["code"].startswith("install.")]
    assert finding["code"] == "install.unchecked", finding
    assert finding["blame"] == "environment" and finding["points"] == 0
    assert cand["level"] == "low" and cand["evidence"]["probes_with_evidence"] == 0
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(
        ["*LOW risk on evidence 0/2, unknown: install: the package index could not be*"]
    )


def test_allow_network_is_a_setting(pytester: pytest.Pytester, spike_site: Path) -> None:
    pytester.makeini("[pytest]\nspike_allow_network = true\n")
    pytester.runpytest("--spike", "--spike-candidate=goodpkg", "--spike-json=r.json")
    assert results(pytester)[""]["settings"]["allow_network"] is True
    pytester.makeini("[pytest]\n")
    pytester.runpytest("--spike", "--spike-candidate=goodpkg", "--spike-json=r.json")
    assert results(pytester)[""]["settings"]["allow_network"] is False
    pytester.runpytest("--spike", "--spike-allow-network", "--spike-candidate=goodpkg", "--spike-json=r.json")
    settings = results(pytester)[""]["settings"]
    assert settings["allow_network"] is True
    assert settings["stale_after_days"] == 730 and settings["young_release_days"] == 3


def test_requirement_files_are_fit_checked_in_the_running_environment_too(
    pytester: pytest.Pytester, spike_site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before: with the candidate installed here, spike_requirements had no effect, silently.
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    (pytester.path / "requirements.txt").write_text("goodpkg==1.0\n")
    pytester.makeini("[pytest]\nspike_requirements = requirements.txt\n")
    pytester.runpytest("--spike", "--spike-candidate=goodpkg", "--spike-json=r.json")
    cand = results(pytester)["goodpkg"]
    install = next(p for p in cand["probes"] if p["kind"] == "install")["details"]
    assert install["isolated"] is False
    assert "fit" in install, install  # the fit check ran (or says why it could not)
    fit_codes = {f["code"] for f in cand["findings"]} & {"install.fit_unchecked", "install.conflict"}
    assert install["fit"] or fit_codes


def test_markdown_says_how_each_finding_counts() -> None:
    """Unchecked, waived and expired-waiver findings are annotated alike in every report."""
    from pytest_spike.model import Scored
    from pytest_spike.report.markdown import _annotation
    from pytest_spike.report.terminal import finding_head

    stale = Finding("signals.stale", Severity.MEDIUM, "old")
    expired = Scored(stale, 10, None, {"until": "2020-01-31", "reason": "pinned", "expired": True})
    active = Scored(stale, 0, None, {"until": "2999-01-31", "reason": "pinned for now", "expired": False})
    ours = Scored(Finding("readme.failed", Severity.MEDIUM, "x", blame=Blame.SPIKE), 0)
    assert _annotation(expired) == "waiver expired 2020-01-31: "
    assert _annotation(active) == "waived until 2999-01-31 (pinned for now): "
    assert _annotation(ours) == "unchecked (spike): "
    assert _annotation(Scored(stale, 10)) == ""
    assert finding_head(expired) == "+10 medium signals.stale (waiver expired 2020-01-31)"
    assert finding_head(active) == "waived until 2999-01-31 (pinned for now) medium signals.stale"
    assert finding_head(ours) == "unchecked (spike) readme.failed"
