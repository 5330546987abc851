"""The examples' own settings say what their comments promise."""

from __future__ import annotations

import configparser
import os
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parent.parent / "examples"


def test_the_toml_example_sets_the_fail_level_its_comment_promises(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the index cannot be asked: the missing candidate is BLOCKED (an index that knows it is
    # missing refuses it as a usage error before the run)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple/")
    ini = EXAMPLES / "toml_parsers" / "pytest.ini"
    assert "the risk level that fails the run" in ini.read_text(encoding="utf-8")
    parsed = configparser.ConfigParser()
    parsed.read(ini)
    assert parsed["pytest"]["spike_fail_on"] == "high"
    # and pytest-spike reads it: a candidate at that level fails the run
    pytester.makeini(ini.read_text(encoding="utf-8").replace("spike_data = data", ""))
    pytester.makepyfile(
        """
        from pytest_spike import spike

        @spike.candidate("no-such-package-for-the-fail-level")
        def test_it():
            pass
        """
    )
    result = pytester.runpytest("--spike", "--spike-probes=install", "--spike-isolation=never")
    result.stdout.fnmatch_lines(["--spike-fail-on high: reached by no-such-package-for-the-fail-level*"])
    assert result.ret != 0


def test_the_dataframes_example_stays_out_of_the_default_run() -> None:
    """It downloads data and builds three environments: run it on purpose only."""
    parsed = configparser.ConfigParser()
    parsed.read(EXAMPLES / "dataframes" / "pytest.ini")
    settings = parsed["pytest"]
    assert settings["spike_requirements"] == "project-requirements.txt"
    assert settings["spike_isolation"] == "always"
    assert "numpy==" in (EXAMPLES / "dataframes" / "project-requirements.txt").read_text()
    pyproject = (EXAMPLES.parent / "pyproject.toml").read_text()
    assert 'testpaths = ["tests"]' in pyproject
