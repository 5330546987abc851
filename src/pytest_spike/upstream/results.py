"""What running upstream tests gives: one test's outcome, a collection, the probe's result,
and the JUnit XML the outcomes are read from. Values only: nothing here runs code."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from pytest_spike.upstream.layout import Harness

_ERROR_LINE = re.compile(r"^(?:E\s+)?([A-Za-z_.]*(?:Error|Exception|Interrupt)\b.*)$")
NO_MODULE = re.compile(r"No module named '([^']+)'")
_DETAIL_CAP = 8000  # characters kept from each end of a failure's report


@dataclass(frozen=True)
class TestOutcome:
    """One sampled test: ``passed``, ``failed``, ``skipped``, ``error`` or ``flaky`` (failed,
    then passed when run again), and why. ``gap`` says why a failure or error is the
    harness's (a file, config, plugin or package we did not bring), not the candidate's;
    ``detail`` keeps the report's text for that judgement."""

    __test__ = False

    outcome: str
    message: str = ""
    gap: str = ""
    detail: str = field(default="", compare=False, repr=False)

    @property
    def counts_against(self) -> bool:
        """A failure or error that is the candidate's (the harness brought all it needed)."""
        return self.outcome in ("failed", "error") and not self.gap


@dataclass(frozen=True)
class Collection:
    """What collecting the copied tests gave: the node ids, how pytest was run to get them
    (``mode``, ``noconftest``, ``ignored`` folders whose conftest would not import), and when
    nothing collected, why (``reason``; ``gap`` when the cause is the harness's)."""

    ids: tuple[str, ...] = ()
    mode: str = "importlib"
    noconftest: bool = False
    ignored: tuple[str, ...] = ()
    reason: str = ""
    gap: bool = False
    notes: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return self.mode + ("+noconftest" if self.noconftest else "")


@dataclass
class UpstreamResult:
    """What the upstream probe saw; ``status`` is none, uncollectable, collected or ran."""

    status: str
    reason: str = ""
    collected: int = 0
    collected_files: str = ""
    sampled: list[str] = field(default_factory=list)
    outcomes: dict[str, TestOutcome] = field(default_factory=dict)
    seed: int = 0
    harness: Harness | None = None
    mode: str = "importlib"
    low_confidence: bool = False
    notes: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    #: For ``uncollectable``: the cause is the harness's (a package, file or config we did
    #: not bring), not the candidate's.
    gap: bool = False
    #: node id -> how the child's JUnit file contradicted the outcomes it announced while it
    #: ran (``spike.tampered``; the announced outcome is in ``outcomes``)
    tampered: dict[str, str] = field(default_factory=dict)

    def count(self, outcome: str) -> int:
        return sum(1 for o in self.outcomes.values() if o.outcome == outcome)

    @property
    def failures(self) -> dict[str, TestOutcome]:
        """Failures and errors that count against the candidate (after the re-run)."""
        return {k: v for k, v in self.outcomes.items() if v.counts_against}

    @property
    def gaps(self) -> dict[str, TestOutcome]:
        """Failures and errors the harness caused: unknown, never scored."""
        return {k: v for k, v in self.outcomes.items() if v.gap}

    @property
    def checked(self) -> int:
        """Sampled tests whose outcome is evidence: passed, flaky, or the candidate's failures."""
        return sum(1 for o in self.outcomes.values() if o.outcome in ("passed", "flaky") or o.counts_against)

    @property
    def missing_modules(self) -> list[str]:
        """Modules the tests could not import (the harness lacked them)."""
        found = NO_MODULE.findall(self.reason) if self.status == "uncollectable" else []
        for note in self.notes:  # a conftest or a test file that failed to import
            found += NO_MODULE.findall(note)
        for outcome in self.gaps.values():
            found += NO_MODULE.findall(outcome.gap)
        return list(dict.fromkeys(m.split(".")[0] for m in found))


def first_error_line(text: str) -> str:
    """The first line that names an exception (pytest's ``E   ...`` lines first)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for line in [ln for ln in lines if ln.startswith("E ")] + lines:
        match = _ERROR_LINE.match(line)
        if match:
            return match.group(1).strip()
    return lines[-1] if lines else ""


def junit_key(nodeid: str) -> tuple[str, str]:
    """(classname, name) as pytest's junitxml derives them from a node id."""
    path, bracket, params = nodeid.partition("[")
    names = path.split("::")
    names[0] = re.sub(r"\.py$", "", names[0].replace("/", "."))
    names[-1] += bracket + params
    return ".".join(names[:-1]), names[-1]


def read_junit(path: Path) -> dict[tuple[str, str], TestOutcome]:
    try:
        tree = ET.parse(path)
    except ET.ParseError:
        return {}
    outcomes: dict[tuple[str, str], TestOutcome] = {}
    for case in tree.iter("testcase"):
        key = (case.get("classname", ""), case.get("name", ""))
        outcome = TestOutcome("passed")
        for tag, name in (("skipped", "skipped"), ("error", "error"), ("failure", "failed")):
            child = case.find(tag)
            if child is not None:  # a failing test with a failing teardown: failure wins
                message = child.get("message") or (child.text or "")
                detail = f"{message}\n{child.text or ''}"
                outcome = TestOutcome(
                    name,
                    message.strip().splitlines()[0] if message.strip() else "",
                    detail=detail[:_DETAIL_CAP] + detail[-_DETAIL_CAP:]
                    if len(detail) > 2 * _DETAIL_CAP
                    else detail,
                )
        if key not in outcomes or outcome.outcome != "passed":
            outcomes[key] = outcome
    return outcomes
