"""What the host saw a child pytest run, and whether the child's results file agrees.

A child pytest that runs candidate code (the team's tests in the candidate's environment,
upstream's tests) writes its results to a file the box lets it write: a candidate's
``atexit`` hook, or a thread it left, could rewrite that file to say everything passed.
The child therefore also loads ``_witness_plugin`` (with ``-p``, before any code of the
candidate's is imported), which announces on the child's stdout, a stream the host reads
as it is written and that candidate code printing to stdout no longer reaches, how many
tests were collected and each test's outcome when it finished, and closes that stream
before the exit hooks run. :func:`contradictions` compares the file with it: a test whose
reported outcome differs from the one announced, that the file reports but was never seen
to finish, or that finished but is missing from the file, is ``spike.tampered`` (critical,
the candidate's), and the announced outcome is the test's.
"""

from __future__ import annotations

import functools
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pytest_spike._core.files import json_objects
from pytest_spike.model import TAMPERED, Finding, Severity

#: The plugin's module where pytest-spike is importable (the layer of the team's tests).
PLUGIN = "pytest_spike._core._witness_plugin"
#: Its module name where it is copied beside upstream's tests (see :func:`place_plugin`).
COPIED_PLUGIN = "_spike_witness"
MARK = "@@pytest-spike-witness@@"
_SOURCE = Path(__file__).with_name("_witness_plugin.py")
#: Outcomes compared by what they say about the code: passed, skipped, or failed (a failure
#: in the test's call or an error in its set-up or teardown; children name them differently).
_CLASS = {"passed": "passed", "skipped": "skipped", "failed": "failed", "error": "failed"}


@dataclass(frozen=True)
class Seen:
    """What a child pytest announced while it ran: tests collected, and each finished
    test's outcome and first error line."""

    collected: int
    outcomes: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


@functools.cache
def plugin_source() -> str:
    return _SOURCE.read_text(encoding="utf-8")


def place_plugin(folder: Path) -> str:
    """Write the plugin into ``folder`` (on the child's ``sys.path``) and return the module
    name for ``-p``. Compiled copies in the folder are removed: the box lets the tests write
    there, and an unchecked-hash ``.pyc`` would be loaded whatever the source says."""
    shutil.rmtree(folder / "__pycache__", ignore_errors=True)
    (folder / f"{COPIED_PLUGIN}.py").write_text(plugin_source(), encoding="utf-8")
    return COPIED_PLUGIN


def read_seen(stdout: str) -> Seen | None:
    """What the child announced on ``stdout``; None when it announced no collection (the
    plugin did not load, or the child ended before collecting): nothing to compare with."""
    seen: Seen | None = None
    for event in json_objects(stdout.splitlines(), MARK):
        if isinstance(event.get("collected"), int) and seen is None:
            seen = Seen(event["collected"])
        elif "test" in event and seen is not None:
            nodeid = str(event["test"])
            seen.outcomes[nodeid] = str(event.get("outcome", ""))
            seen.errors[nodeid] = str(event.get("error", ""))
    return seen


def contradictions(seen: Seen, reported: Mapping[str, str], *, complete: bool = True) -> dict[str, str]:
    """Node id -> why, for each test whose outcome in the results file (``reported``: node
    id -> outcome) contradicts what the child announced. Where the stream was not read
    whole (``complete`` false: the output cap dropped its middle), a test the stream does
    not name is no contradiction."""
    found: dict[str, str] = {}
    for nodeid in dict.fromkeys([*seen.outcomes, *reported]):
        said, ran = reported.get(nodeid), seen.outcomes.get(nodeid)
        if ran is None and not complete:
            continue
        if ran is None:
            found[nodeid] = f"the results say {said}, the test was never seen to finish"
        elif said is None:
            found[nodeid] = f"the test {ran}, the results leave it out"
        elif _CLASS.get(said, said) != _CLASS.get(ran, ran):
            found[nodeid] = f"the results say {said}, the test {ran}"
    return found


def tampered_finding(found: Mapping[str, str], seen: Seen, results: str) -> Finding:
    """``spike.tampered`` for the tests of ``found`` (see :func:`contradictions`);
    ``results`` names the file ("the child pytest's results")."""
    nodeid, why = next(iter(found.items()))
    error = seen.errors.get(nodeid, "")
    return Finding(
        TAMPERED,
        Severity.CRITICAL,
        f"{results} contradict what the child announced for {len(found)} of {seen.collected} "
        f"test(s); first {nodeid}: {why}" + (f" ({error})" if error else ""),
        {"nodeid": nodeid, "why": why, "tests": str(len(found)), "collected": str(seen.collected)},
    )
