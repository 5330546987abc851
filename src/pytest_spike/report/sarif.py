"""The findings as SARIF 2.1.0, for GitHub code scanning (``--spike-sarif``, ``--sarif``).

Each finding that adds points becomes a result: its code is the rule id, its severity the
level (critical and high: error, medium: warning, low: note), its message the candidate, the
version and the finding's own line. A result's location is where the team named the
candidate: the line of the spike file (the test file its probes came from) that names it, or,
for a spike with no file (``--spike-candidate``), the line of ``pyproject.toml``, a
requirements file or the ini file that names it; paths are relative to the folder the report
is written from (the checkout, in CI). Unchecked, waived and info findings add no points and
are left out: code scanning lists what needs a decision.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pytest_spike.model import CandidateResult, Severity, sorted_scored
from pytest_spike.report.view import ReportView

SCHEMA_URI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
#: How a finding's severity reads in code scanning.
LEVELS = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}
#: Where a spike with no test file may name its candidates, in the order they are searched.
CONFIG_FILES = (
    "pyproject.toml",
    "requirements*.txt",
    "requirements/*.txt",
    "pytest.ini",
    "tox.ini",
    "setup.cfg",
)


def _name_pattern(name: str) -> re.Pattern[str]:
    """The project name as a word, ``-``, ``_`` and ``.`` alike, any case (PEP 503)."""
    parts = [re.escape(p) for p in re.split(r"[-_.]+", name)]
    return re.compile(r"(?<![\w.-])" + r"[-_.]+".join(parts) + r"(?![\w-])", re.IGNORECASE)


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []


def _naming_line(path: Path, name: str, *, marks: bool) -> int | None:
    """The first line of ``path`` that names ``name`` (in a spike file: its ``spike.candidate``
    mark first, then any line that names it in quotes)."""
    pattern = _name_pattern(name)
    lines = _lines(path)
    if marks:
        for number, line in enumerate(lines, 1):
            if "candidate" in line and pattern.search(line):
                return number
        quoted = re.compile(r"[\"']" + pattern.pattern, re.IGNORECASE)
        return next((n for n, line in enumerate(lines, 1) if quoted.search(line)), None)
    return next((n for n, line in enumerate(lines, 1) if pattern.search(line)), None)


def _spike_files(result: CandidateResult) -> list[str]:
    """The test files the candidate's probes came from (built-in probes have none)."""
    files = (p.nodeid.split("::", 1)[0] for p in result.probes if not p.nodeid.startswith("spike::"))
    return list(dict.fromkeys(f for f in files if f.endswith(".py")))


def _config_files(root: Path) -> Iterator[Path]:
    for pattern in CONFIG_FILES:
        yield from sorted(root.glob(pattern))


def location(result: CandidateResult, root: Path) -> tuple[str, int]:
    """(path relative to ``root``, line) of where the spike names the candidate."""
    files = _spike_files(result)
    for text in files:
        line = _naming_line(root / text, result.candidate.project, marks=True)
        if line is not None:
            return text, line
    if files:
        return files[0], 1
    for path in _config_files(root):
        line = _naming_line(path, result.candidate.project, marks=False)
        if line is not None:
            return path.relative_to(root).as_posix(), line
    return "pyproject.toml", 1


def _physical(uri: str, line: int) -> dict[str, Any]:
    return {
        "physicalLocation": {
            "artifactLocation": {"uri": uri, "uriBaseId": "%SRCROOT%"},
            "region": {"startLine": line},
        }
    }


def sarif_log(view: ReportView, root: Path) -> dict[str, Any]:
    """The SARIF log of ``view``: one run, one rule per finding code, one result per finding."""
    scorecard = view.scorecard
    rules: dict[str, dict[str, Any]] = {}
    results = []
    for cand in scorecard.candidates:
        uri, line = location(cand, root)
        for s in sorted_scored(cand.scored):
            if s.points <= 0:
                continue
            finding = s.finding
            level = LEVELS[finding.severity]
            rules.setdefault(
                finding.code,
                {
                    "id": finding.code,
                    "shortDescription": {"text": finding.code},
                    "defaultConfiguration": {"level": level},
                    "properties": {"tags": ["pytest-spike", finding.code.split(".")[0]]},
                },
            )
            version = f" {cand.version}" if cand.version else ""
            results.append(
                {
                    "ruleId": finding.code,
                    "level": level,
                    "message": {"text": f"{cand.name}{version}: {finding.message}"},
                    "locations": [_physical(uri, line)],
                    "partialFingerprints": {"pytestSpikeFinding/v1": f"{cand.name}:{finding.code}"},
                    "properties": {
                        "candidate": cand.name,
                        "version": cand.version or "",
                        "severity": finding.severity.value,
                        "points": s.points,
                        "level": cand.level.value,
                    },
                }
            )
    driver: dict[str, Any] = {"name": "pytest-spike", "rules": list(rules.values())}
    if scorecard.plugin_version:
        driver["version"] = scorecard.plugin_version
    return {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": driver},
                "results": results,
            }
        ],
    }


class SarifFormat:
    """``--spike-sarif`` / ``--sarif``: the scored findings for code scanning."""

    def render(self, view: ReportView) -> str:
        return json.dumps(sarif_log(view, Path.cwd()), indent=2) + "\n"

    def note(self, view: ReportView) -> str | None:
        return None


FORMAT = SarifFormat()
