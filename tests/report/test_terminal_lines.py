"""The scorecard's lines as a new user reads them: units beside values, errors keep their
lines, probe names without the candidate's parameter id, no made-up memory figure."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_a_value_stays_beside_its_unit_when_the_metric_line_wraps(
    pytester: pytest.Pytester, spike_site: Path
) -> None:
    pytester.makepyfile(
        """
        import pytest
        from pytest_spike import spike

        @pytest.mark.parametrize("name, ms", [
            pytest.param("goodpkg", 2.677, marks=spike.candidate("goodpkg")),
            pytest.param("other-name", 11.154, marks=spike.candidate("other-name")),
            pytest.param("warnpkg", 0.241, marks=spike.candidate("warnpkg")),
        ])
        def test_parse(name, ms, spike_metric):
            spike_metric("time to parse one configuration file", ms, unit="ms/file", better="lower")
        """
    )
    result = pytester.runpytest("--spike")
    result.stdout.fnmatch_lines(
        [
            "time to parse one configuration file (lower is better): goodpkg 2.677 ms/file,",
            "    other-name 11.154 ms/file, warnpkg 0.241 ms/file (best)",
        ]
    )
    result.stdout.no_fnmatch_line("ms/file*")


def test_a_multi_line_error_keeps_its_lines(pytester: pytest.Pytester, spike_site: Path) -> None:
    pytester.makepyfile(
        """
        from pytest_spike import spike

        @spike.candidate("goodpkg")
        @spike.real_data
        def test_rows():
            raise ValueError("row 3 is wrong:\\n  expected 4 columns\\n  got 5")
        """
    )
    result = pytester.runpytest("--spike")
    result.stdout.fnmatch_lines(
        [
            "  +* high real_data.failed: test_rows failed: ValueError: row 3 is wrong:",
            "        expected 4 columns",
            "        got 5",
        ]
    )
    result.stdout.no_fnmatch_line("*wrong: expected 4 columns*")


def test_more_info_findings_are_named_by_their_codes(pytester: pytest.Pytester, spike_site: Path) -> None:
    pytester.makeconftest(
        """
        from pytest_spike import Finding, Severity

        def pytest_spike_add_findings(result, config):
            return [Finding(f"policy.info{i}", Severity.INFO, f"fyi {i}") for i in range(4)]
        """
    )
    result = pytester.runpytest("--spike", "--spike-candidate", "goodpkg")
    result.stdout.fnmatch_lines(
        [
            "  (+4 more info findings with 0 points: policy.info0, policy.info1,",
            "    policy.info2, policy.info3)",
        ]
    )
    result.stdout.no_fnmatch_line("*more info findings...*")


def test_probe_names_drop_the_id_that_names_the_candidate(
    pytester: pytest.Pytester, spike_site: Path
) -> None:
    """The id may be the project name, the import name or the team's own short name."""
    pytester.makepyfile(
        """
        import pytest
        from pytest_spike import spike

        @pytest.mark.parametrize("name", [
            pytest.param("goodpkg", marks=spike.candidate("goodpkg")),
            pytest.param("othermod", marks=spike.candidate("other-name")),
        ])
        def test_by_value(name):
            pass

        @pytest.mark.parametrize("name", [
            pytest.param("goodpkg", marks=spike.candidate("goodpkg"), id="GoodPkg"),
            pytest.param("othermod", marks=spike.candidate("other-name"), id="other"),
        ])
        @pytest.mark.parametrize("size", ["small"])
        def test_by_id(name, size):
            pass
        """
    )
    result = pytester.runpytest("--spike")
    result.assert_outcomes(passed=8)
    probes = [
        "  probes: install passed, import passed, test_by_id?small? passed,",
        "    test_by_value passed",
    ]
    result.stdout.fnmatch_lines(["goodpkg *", *probes, "other-name *", *probes])
    result.stdout.no_fnmatch_line("*test_by_value[*")


def test_peak_memory_is_a_dash_when_nothing_was_measured(pytester: pytest.Pytester, spike_site: Path) -> None:
    result = pytester.runpytest("--spike", "--spike-candidate", "goodpkg", "--spike-probes=install")
    result.stdout.fnmatch_lines(["candidate*peak mem", "goodpkg*1/1*s *-"])
    result.stdout.no_fnmatch_line("goodpkg*0.0 MB")
