"""The settings table: one declaration per option, and the defaults it gives everywhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_spike.fixtures import SETTINGS
from pytest_spike.model import BUILTIN_KINDS, STALE_AFTER_DAYS, SpikeError, default_cache_root
from pytest_spike.report.formats import FORMATS
from pytest_spike.settings import OPTIONS, Settings


def test_every_row_of_the_table_is_a_spike_option_or_ini_key_with_help() -> None:
    assert [o.name for o in OPTIONS] == list(Settings.__dataclass_fields__)
    for opt in OPTIONS:
        if opt.action == "formats":  # one --spike-NAME PATH per row of the formats' registry
            assert all(row.option_help and "PATH" in row.option_help for row in FORMATS)
            continue
        assert opt.flag or opt.ini, opt.name
        assert opt.flag is None or opt.flag == "--spike" or opt.flag.startswith("--spike-"), opt.name
        assert opt.ini is None or opt.ini.startswith("spike_"), opt.name
        assert opt.help_text() and "{default}" not in opt.help_text(), opt.name
        if opt.flag and opt.action != "switch":
            assert opt.metavar, f"{opt.flag} has no metavar"


def test_no_option_means_the_tables_defaults(pytester: pytest.Pytester) -> None:
    """The defaults a run resolves are the ones Settings() has: one source for both."""
    config = pytester.parseconfigure()
    resolved = config.stash[SETTINGS]
    assert resolved == Settings()
    assert resolved.isolation == "auto"
    assert resolved.probes == BUILTIN_KINDS
    assert resolved.stale_after_days == STALE_AFTER_DAYS
    assert resolved.cache_dir == default_cache_root()
    assert resolved.weights is None  # the default weights, without importing scoring


def test_help_shows_the_defaults_of_the_table(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    text = " ".join(result.stdout.str().split())
    assert f"stale (default: {STALE_AFTER_DAYS})" in text
    assert "(default: 120s)" in text  # --spike-probe-timeout
    assert "a candidate's timebox= wins (default: 10m)" in text
    assert f"(default: all: {','.join(BUILTIN_KINDS)})" in text


def test_the_command_line_wins_over_the_ini_file_and_adds_candidates(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        """
        [pytest]
        spike_candidates =
            tomli
        spike_isolation = always
        spike_timebox = 5m
        spike_cost_per_hour = 2.5 EUR
        spike_data = data
        """
    )
    config = pytester.parseconfigure(
        "--spike-candidate", "attrs", "--spike-isolation", "never", "--spike-data", "here"
    )
    settings = config.stash[SETTINGS]
    assert settings.candidates == ("attrs", "tomli")
    assert settings.isolation == "never"
    assert settings.timebox == 300.0
    assert settings.cost is not None and (settings.cost.per_hour, settings.cost.currency) == (2.5, "EUR")
    assert settings.data == (Path(config.invocation_params.dir, "here").resolve(), "--spike-data")
    # The option names of earlier releases still answer config.getoption.
    assert config.getoption("spike_candidates") == ["attrs"]
    assert config.getoption("spike_cost") is None


def test_an_ini_data_folder_is_relative_to_the_rootdir(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nspike_data = data\n")
    sub = pytester.mkdir("sub")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(sub)
        config = pytester.parseconfigure()
    assert config.stash[SETTINGS].data == (pytester.path / "data", "spike_data in tox.ini")


def test_sandbox_limits_parse_sizes_and_name_a_bad_part() -> None:
    from pytest_spike.settings import Source, _limits

    where = Source("--spike-sandbox-limits", Path("."))
    assert _limits("processes=64, memory=2G,file=100M", where) == (64, 2048, 100)
    assert _limits("file=8", where) == (1024, 16384, 8)  # the rest keep their defaults
    for bad in ("processes=1G", "memory=-1", "files=3", "memory=lots"):
        with pytest.raises(SpikeError, match=f"--spike-sandbox-limits: '{bad}' is not a limit"):
            _limits(bad, where)
