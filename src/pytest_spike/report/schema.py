"""Results files as data: a scorecard to JSON text and back, with clear errors.

The schema's own functions, apart from the formats that write reports, so that what reads
results files (merge, the runner, nox, ``show``) needs nothing of the report writers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pytest_spike._core.files import load_json_document
from pytest_spike.model import Scorecard, SpikeError
from pytest_spike.report.view import ReportView


def dumps(scorecard: Scorecard) -> str:
    """A single run's results file (``--spike-json``)."""
    return FORMAT.render(ReportView(scorecard))


def load_view(path: Path) -> ReportView:
    """A results file as a report view (a merged file's grids, refused files and notes too)."""
    data = load_json_document(path, "results file", _object, hint="; was the run cut short?")
    try:
        return ReportView.from_dict(data, Scorecard.from_dict(data))
    except SpikeError as exc:
        raise SpikeError(f"{path}: {exc}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise SpikeError(f"{path}: malformed results file ({type(exc).__name__}: {exc})") from None


def load(path: Path) -> Scorecard:
    """Read a results file; a missing, truncated, non-JSON or foreign file is a SpikeError."""
    return load_json_document(path, "results file", _scorecard, hint="; was the run cut short?")


def _object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise SpikeError("not a pytest-spike results file (top level is not an object)")
    return data


def _scorecard(data: Any) -> Scorecard:
    return Scorecard.from_dict(_object(data))


class JsonFormat:
    """``--spike-json`` / ``--json``: the results file (a merged view adds its ``matrix`` block)."""

    def render(self, view: ReportView) -> str:
        return json.dumps(view.to_dict(), indent=2, sort_keys=False) + "\n"

    def note(self, view: ReportView) -> str | None:
        return None


FORMAT = JsonFormat()
