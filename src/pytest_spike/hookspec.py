"""Hooks pytest-spike offers to other plugins and conftest files.

Every docstring is a working ``conftest.py`` example.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pytest_spike.model import CandidateResult, Finding, Level, Scorecard


def pytest_spike_add_findings(result: CandidateResult, config: pytest.Config) -> Sequence[Finding] | None:
    """Add findings to a candidate before it is scored (called once per candidate).

    Runs on the controller (under pytest-xdist too), after every probe has reported.

    .. code-block:: python

        # conftest.py
        from pytest_spike import Finding, Severity

        def pytest_spike_add_findings(result, config):
            if result.name == "toml":
                return [Finding("policy.banned", Severity.CRITICAL,
                                "toml is on our banned list (see ADR-12)")]
            return None
    """


@pytest.hookspec(firstresult=True)
def pytest_spike_weight(finding: Finding, config: pytest.Config) -> float | None:
    """Return the points a finding adds to its candidate's score, or None to keep the default.

    .. code-block:: python

        # conftest.py
        def pytest_spike_weight(finding, config):
            if finding.code.startswith("signals."):
                return 0.0      # we don't care about maintenance signals in this spike
            return None
    """


@pytest.hookspec(firstresult=True)
def pytest_spike_level(result: CandidateResult, config: pytest.Config) -> Level | None:
    """Return the level of a scored candidate, or None to keep the one derived from its score.

    ``result.score`` and ``result.scored`` (findings with their points) are already set.

    .. code-block:: python

        # conftest.py
        from pytest_spike import Level

        def pytest_spike_level(result, config):
            if result.score >= 50:
                return Level.BLOCKED
            return None
    """


def pytest_spike_scorecard(scorecard: Scorecard, config: pytest.Config) -> None:
    """Called once with the finished scorecard, before it is printed and written.

    .. code-block:: python

        # conftest.py
        def pytest_spike_scorecard(scorecard, config):
            for cand in scorecard.candidates:
                print(cand.name, cand.level, cand.score)
    """
