"""What the host saw a README child do, and whether the child's results agree with it.

The child (``readme._child``) writes, on the stdout it duplicated before any block ran, a
start event before each block, an end event with the block's status after the block
returned, and then the block's result; a block that did not end ok also leaves
``RAISED_MARK`` and its traceback on stderr. Candidate code that finds the reporter and
writes an "ok" for a failing block writes it while the block is still running, so the
result comes before the block's end event (or a second end event follows it); code that
rewrites the result leaves an end event or a traceback that says otherwise. Such a
contradiction is tampering: the block's report becomes what the end event and stderr said
(``failed`` when they said nothing), with ``tampered`` naming the contradiction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pytest_spike._core.files import json_objects
from pytest_spike.readme._child import RAISED_MARK


@dataclass
class _Block:
    """What one block's lines in the stream were, in order."""

    starts: list[int] = field(default_factory=list)
    ends: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    results: list[tuple[int, dict[str, Any]]] = field(default_factory=list)


@dataclass(frozen=True)
class ChildReports:
    """A README child's results by block index, checked against its events and stderr.

    ``spike_error`` is the child's own error ("" when none); ``tampered`` lists the
    indices whose result contradicted the observation (their report says why).
    """

    reports: dict[int, dict[str, Any]]
    spike_error: str = ""
    tampered: tuple[int, ...] = ()


def read_child(stdout: str, stderr: str, *, complete: bool = True) -> ChildReports:
    """Read a README child's stream (``stdout``) and check each result against its events
    and against what ``stderr`` says the blocks raised. Where the stream was not read whole
    (``complete`` false: the output cap dropped its middle), a missing event is no
    contradiction."""
    blocks: dict[int, _Block] = {}
    spike_error, open_block = "", None
    for position, data in enumerate(json_objects(stdout.splitlines())):
        if "spike_error" in data:
            spike_error = str(data["spike_error"])
            if open_block is not None:
                # Our runner raised while a block ran: only the block's code was running.
                blocks[open_block].results.append((position, {"status": "failed", "spike_error": True}))
            continue
        if "index" not in data:
            continue
        index = int(data["index"])
        seen = blocks.setdefault(index, _Block())
        event = data.get("event")
        if event == "start":
            seen.starts.append(position)
            open_block = index
        elif event == "end":
            seen.ends.append((position, data))
            open_block = None
        else:
            seen.results.append((position, data))
    raised = _raised(stderr)
    reports: dict[int, dict[str, Any]] = {}
    tampered = []
    for index, seen in blocks.items():
        why = _contradiction(seen, raised.get(index), complete)
        if why:
            tampered.append(index)
            reports[index] = _observed(seen, raised.get(index), why)
        elif seen.results:
            reports[index] = seen.results[0][1]
    if tampered:
        spike_error = ""  # written with a forged report: not our runner's word
    return ChildReports(reports, spike_error, tuple(sorted(tampered)))


def _raised(stderr: str) -> dict[int, dict[str, Any]]:
    """What the child's stderr says each block that did not end ok ended with."""
    found: dict[int, dict[str, Any]] = {}
    for data in json_objects(stderr.splitlines(), RAISED_MARK):
        if isinstance(data.get("index"), int):
            found[data["index"]] = data
    return found


def _contradiction(seen: _Block, raised: dict[str, Any] | None, complete: bool = True) -> str:
    """Why a block's result contradicts its events and stderr ("" when it does not)."""
    if not seen.results:
        return "" if len(seen.ends) <= 1 else f"{len(seen.ends)} end events for one block"
    if len(seen.results) > 1:
        return f"{len(seen.results)} results for one block"
    position, result = seen.results[0]
    if result.get("spike_error"):
        return "a runner error reported while the block's own code ran"
    # Where the output cap dropped the stream's middle, a block's events may be in it.
    if complete or (seen.starts and seen.ends):
        why = _against_events(seen, position, result)
        if why:
            return why
    if raised is not None and result.get("status") == "ok":
        return f"the result says 'ok', stderr says the block ended {raised.get('status')!r}"
    return ""


def _against_events(seen: _Block, position: int, result: dict[str, Any]) -> str:
    if len(seen.starts) != 1 or seen.starts[0] > position:
        return "a result for a block that had not started"
    if len(seen.ends) != 1:
        if not seen.ends:
            return "a result without the block's end"
        return f"{len(seen.ends)} end events for one block"
    where, end = seen.ends[0]
    if where > position:
        return "a result written while the block was still running"
    if end.get("status") != result.get("status"):
        return f"the result says {result.get('status')!r}, the block ended {end.get('status')!r}"
    return ""


def _observed(seen: _Block, raised: dict[str, Any] | None, why: str) -> dict[str, Any]:
    """The block's report from what the host saw: its last end event (written after the
    block returned; what candidate code wrote came before it) and stderr; ``failed`` when
    neither was seen, as no honest report of the block is left."""
    said = seen.ends[-1][1] if seen.ends else {}
    status, error = str(said.get("status") or "failed"), str(said.get("error") or "")
    if raised is not None and status == "ok":
        status, error = str(raised.get("status") or "failed"), str(raised.get("error") or "")
    if not seen.ends and not error:
        error = "its result was forged and the block's own end was not seen"
    return {"status": status, "error": error, "tampered": why}
