"""Results files: write atomically, read back with clear errors, and the run's outputs."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_spike._core.files import load_json_document, write_atomic
from pytest_spike.model import Scorecard, SpikeError
from pytest_spike.report import html, markdown

if TYPE_CHECKING:
    from pytest_spike.settings import Settings


def dumps(scorecard: Scorecard) -> str:
    return json.dumps(scorecard.to_dict(), indent=2, sort_keys=False) + "\n"


def load(path: Path) -> Scorecard:
    """Read a results file; a missing, truncated, non-JSON or foreign file is a SpikeError."""
    return load_json_document(path, "results file", _scorecard, hint="; was the run cut short?")


def matrix_block(path: Path) -> dict[str, Any]:
    """The ``matrix`` block (grids, refused files, notes) of a merged results file, else {}."""
    data = load_json_document(path, "results file", lambda d: d)
    block = data.get("matrix") if isinstance(data, dict) else None
    return dict(block) if isinstance(block, dict) else {}


def _scorecard(data: Any) -> Scorecard:
    if not isinstance(data, dict):
        raise SpikeError("not a pytest-spike results file (top level is not an object)")
    return Scorecard.from_dict(data)


def write_outputs(scorecard: Scorecard, settings: Settings) -> tuple[list[str], list[str]]:
    """Write the JSON / Markdown / HTML files the settings ask for.

    Returns (lines saying what was written, one-line errors for what could not be).
    """
    written: list[str] = []
    errors: list[str] = []
    targets = []
    if settings.json_path is not None:
        targets.append(("results", settings.json_path, dumps(scorecard)))
    if settings.md_path is not None:
        targets.append(("markdown", settings.md_path, markdown.render(scorecard)))
    if settings.html_path is not None:
        try:
            targets.append(("html", settings.html_path, html.render(scorecard)))
        except SpikeError as exc:
            errors.append(f"spike html: cannot write {settings.html_path}: {exc}")
    for label, path, text in targets:
        try:
            write_atomic(path, text)
        except OSError as exc:
            errors.append(f"spike {label}: cannot write {path}: {exc.strerror or exc}")
            continue
        note = html.charts_note(scorecard) if label == "html" else None
        written.append(f"spike {label}: {path}" + (f" ({note})" if note else ""))
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if settings.md_path is not None and os.environ.get("GITHUB_ACTIONS") == "true" and summary:
        try:
            with open(summary, "a", encoding="utf-8") as handle:
                handle.write(markdown.render(scorecard))
            written.append("spike markdown: appended to the GitHub Actions step summary")
        except OSError as exc:
            errors.append(f"spike markdown: cannot append to $GITHUB_STEP_SUMMARY: {exc.strerror or exc}")
    return written, errors
