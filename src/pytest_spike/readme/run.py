"""Run the code examples of an installed package's README: the readme probe's machinery.

The README is the distribution's long description in its installed metadata, read by the
host from the environment's files. ``readme.blocks`` finds and classifies the blocks; here Python blocks
and ``>>>`` sessions run in subprocesses through :func:`pytest_spike._core.runner.run` (the
program they run is ``readme._child``), alone and cumulatively; shell, TOML, JSON and other
blocks are listed but never run. ``readme.verdict`` says whose fault each failure is: a
block that failed for a reason the README leaves to the reader or our environment refused
is ``unchecked`` and never scored. ``SpikeReadme`` is the object behind ``spike_readme``.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_spike._core import runner, sandbox
from pytest_spike.envs import inspection
from pytest_spike.model import TAMPERED, Blame, Finding, Severity, SpikeError
from pytest_spike.readme.blocks import (
    KINDS,
    RUNNABLE_KINDS,
    Block,
    Example,
    classify,
    cut,
    extract_blocks,
    parse_session,
)
from pytest_spike.readme.verdict import Failure, ReadmeFacts, attribute, documented_raise
from pytest_spike.readme.witness import read_child

__all__ = [
    "Block",
    "BlockOutcome",
    "Example",
    "InstalledReadme",
    "ReadmeRun",
    "SpikeReadme",
    "classify",
    "extract_blocks",
    "parse_session",
    "read_package",
    "read_readme",
    "readme_findings",
    "run_blocks",
]


#: Time limit per README block unless the caller gives one.
DEFAULT_BLOCK_TIMEOUT_S = 10.0
#: A block whose CPU time keeps growing (JIT-compiling, fitting a model) is working, not
#: hung: it may run this many times its limit before it is reported "slow: still computing".
SLOW_ALLOWANCE_FACTOR = 6.0


@dataclass(frozen=True)
class BlockOutcome:
    """How one block did: ``status`` is ok / failed / timeout / unchecked / skipped.

    A block is ok when it ran clean either alone or after the blocks before it (see
    ``alone`` and ``cumulative``). ``ran_clean`` and ``output_matched`` are set for ``>>>``
    sessions; an example that shows no output matches any output. An ``unchecked`` block
    failed for a reason that is not the candidate's: ``unchecked`` says which, ``blame``
    whose (environment or spike); ``error`` keeps what it raised. ``tampered`` says how a
    run's reported result contradicted what the host saw (see ``readme.witness``); the
    status is then what the host saw, never excused as unchecked.
    """

    index: int
    line: int
    kind: str
    status: str
    first_line: str
    error: str = ""
    ran_clean: bool | None = None
    output_matched: bool | None = None
    duration_s: float = 0.0
    alone: str = "skipped"
    cumulative: str = "skipped"
    mismatch: str = ""
    unchecked: str = ""
    blame: str = ""
    #: how the block's reported result contradicted what the host saw ("" when it did not)
    tampered: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["duration_s"] = round(self.duration_s, 4)
        return data


# --- reading -------------------------------------------------------------------------

_FOLD = re.compile(r"^(?: {7}\|| {8}|\t)")


@dataclass(frozen=True)
class Examples:
    """Whose examples a run's findings speak of: the finding codes' prefix and the noun.

    The README probe's are ``readme.*`` and "README examples"; another probe that runs
    examples with the same rules (a documentation page's) passes its own. The prefix also
    names the step in the box (its stage).
    """

    code: str = "readme"
    noun: str = "README"


#: The README probe's (and the ``spike_readme`` fixture's) examples.
README_EXAMPLES = Examples()


@dataclass(frozen=True)
class InstalledReadme:
    """A distribution's README as installed, and the top-level modules it owns."""

    text: str
    content_type: str
    name: str
    modules: tuple[str, ...] = ()


def read_readme(
    python: str,
    dist_name: str,
    timeout: float,
    *,
    env: Mapping[str, str] | None = None,
    extra_env: Mapping[str, str] | None = None,
    site: inspection.Site | None = None,
) -> tuple[str, str]:
    """Return ``(text, content_type)`` of ``dist_name``'s README as installed for ``python``.

    Raises ``SpikeError`` when the distribution is not installed there or its metadata
    cannot be read.
    """
    found = read_package(python, dist_name, timeout, env=env, extra_env=extra_env, site=site)
    return found.text, found.content_type


def read_package(
    python: str,
    dist_name: str,
    timeout: float,
    *,
    env: Mapping[str, str] | None = None,
    extra_env: Mapping[str, str] | None = None,
    site: inspection.Site | None = None,
) -> InstalledReadme:
    """``dist_name``'s README and top-level modules as installed for ``python``.

    The host reads them from the environment's files (``site``; by default the one of
    ``python``, with the ``PYTHONPATH`` that ``env``/``extra_env`` would give it): the
    environment's interpreter would run its ``.pth`` files first, which may rewrite what it
    reports. ``timeout`` is kept for the callers; nothing runs. Raises ``SpikeError`` as
    :func:`read_readme` does.
    """
    del timeout
    where = site if site is not None else inspection.site_for(python, env=env, extra_env=extra_env)
    try:
        dist = inspection.Installed(where).find(dist_name)
        if dist is None:
            raise LookupError(dist_name)
        body, header = dist.headers.get_payload(), False
        if not isinstance(body, str) or not body.strip():
            body, header = dist.header("Description") or "", True
        name, content_type, modules = (
            dist.name_of(),
            dist.header("Description-Content-Type"),
            dist.top_level(),
        )
    except LookupError:
        raise SpikeError(
            f"{dist_name!r} is not installed for {python}: install it into that "
            "environment before the readme probe runs"
        ) from None
    except SpikeError as exc:  # a metadata file the host refused to read
        raise SpikeError(f"cannot read the README of {dist_name!r} for {python} ({exc})") from None
    text = str(body)
    first, *rest = text.splitlines() or [""]
    # A Description header folds its lines with 8 spaces (or 7 and a bar); Python 3.10+
    # unfolds it already, 3.9 does not: unfold only when every line still carries the fold.
    if header and rest and all(_FOLD.match(x) for x in rest if x.strip()):
        text = "\n".join([first] + [_FOLD.sub("", x) for x in rest])
    return InstalledReadme(text, content_type or "", name or dist_name, tuple(modules))


#: Where a run's blocks come from, when not the installed README: the text with its
#: content type, the distribution's name and its top-level modules.
BlockSource = Callable[[], InstalledReadme]


# --- running ---------------------------------------------------------------------------

#: Seconds a block may overrun its limit (swallowing the alarm) before its process is ended.
GRACE_S = 2.0
#: Whether blocks run alone in forks of one child (one process start and one box for all of
#: them) rather than in a new interpreter each; tests turn it off to compare the two.
FORKS = hasattr(os, "fork")
_STARTUP_S = 10.0


@functools.cache
def _child_source() -> str:
    # Sent through -c so the target interpreter needs no pytest_spike installed.
    return Path(__file__).with_name("_child.py").read_text(encoding="utf-8")


def run_blocks(
    python: str,
    blocks: Sequence[Block],
    *,
    timeout_per_block: float = DEFAULT_BLOCK_TIMEOUT_S,
    cwd: str | Path,
    env: Mapping[str, str] | None = None,
    extra_env: Mapping[str, str] | None = None,
    allow_network: bool = False,
    modules: Sequence[str] = (),
    dist_name: str = "",
    slow_allowance: float | None = None,
    stage: str = "readme",
) -> list[BlockOutcome]:
    """Run the runnable blocks with ``python``, cumulatively and alone; list every block.

    Cumulatively: one process runs the blocks in order in one ``__main__`` namespace, as a
    reader pasting them one after another would; a block that kills or hangs the process
    is reported and the rest continue in a new process (and a fresh namespace). Alone:
    each block in a process of its own, a fork of one child taken before any block ran in
    it (one interpreter start and one box for them all), or a new interpreter each
    where there is no ``fork``. Every process gets a closed stdin, ``sys.argv`` of one
    element, a fresh folder under ``cwd``, a scrubbed environment and a per-block time
    limit (an alarm, then the process is ended ``GRACE_S`` later). A block whose process
    group's CPU time kept growing up to the alarm is computing, not hung: its time is
    extended, a limit at a time, up to ``slow_allowance`` seconds (default
    ``SLOW_ALLOWANCE_FACTOR`` times the limit); still computing then, it is "slow", which
    is not the candidate's fault (unchecked). A block making no progress is hung.

    Unless ``allow_network``, network access is refused for non-loopback addresses by
    patching ``socket`` in the child: a courtesy against accidental traffic, not a sandbox
    (C extensions bypass it). A block that times out cumulatively is not run again alone, nor
    is one that ran clean in order but past its limit (it would cost as much again).

    ``modules`` (the candidate's top-level modules) and ``dist_name`` tell the candidate's
    own code from the rest when judging a failure (see ``readme.verdict``); a module of
    ``modules`` that the README uses but never imports is imported before the blocks run.
    ``stage`` names the step in the box's reports (``readme``; a documentation page's: ``docs``).
    """
    runnable = [b for b in blocks if b.runnable]
    facts = ReadmeFacts.of(blocks, modules, dist_name)
    slow = slow_allowance if slow_allowance is not None else SLOW_ALLOWANCE_FACTOR * timeout_per_block
    run_in_order = functools.partial(
        _run_in_order,
        python,
        limit=timeout_per_block,
        slow_limit=max(slow, timeout_per_block),
        cwd=Path(cwd),
        env=env,
        extra_env=extra_env,
        setup={"network": allow_network, "imports": facts.assumed_imports(modules)},
        stage=stage,
    )
    together = run_in_order(runnable, "cumulative")
    # The first block: nothing ran before it, the cumulative run is its run alone.
    alone = {b.index: together[b.index] for b in runnable[:1]}
    again = [
        b
        for b in runnable[1:]
        if together[b.index]["status"] != "timeout" and not _slow_and_ok(together[b.index], timeout_per_block)
    ]
    if again and FORKS:
        alone.update(run_in_order(again, "alone", apart=True))
    else:
        for block in again:
            alone.update(run_in_order([block], f"alone-{block.index}"))
    ok = frozenset(
        b.index
        for b in runnable
        if "ok" in (together[b.index]["status"], alone.get(b.index, {}).get("status"))
    )
    judge = functools.partial(_outcome, facts=facts, ok=ok, limit=timeout_per_block)
    return [judge(b, together.get(b.index), alone.get(b.index)) for b in blocks]


def _slow_and_ok(report: Mapping[str, Any], limit: float) -> bool:
    return report.get("status") == "ok" and float(report.get("duration") or 0) > limit


def _run_in_order(
    python: str,
    blocks: list[Block],
    label: str,
    *,
    limit: float,
    slow_limit: float,
    cwd: Path,
    env: Mapping[str, str] | None,
    extra_env: Mapping[str, str] | None,
    setup: Mapping[str, Any],
    stage: str,
    apart: bool = False,
) -> dict[int, dict[str, Any]]:
    """Report per block index; a new process picks up after a block that ended one.

    ``apart``: each block alone, in a fork of the child made before any block ran in it
    (``readme._child``), as if in an interpreter of its own, all in one box.
    """
    reports: dict[int, dict[str, Any]] = {}
    pending = list(blocks)
    while pending:
        job = {
            **setup,
            "limit": limit,
            "slow_limit": slow_limit,
            "grace": GRACE_S,
            "argv0": stage,
            "apart": apart,
            "blocks": [_job_block(b) for b in pending],
        }
        folder = tempfile.mkdtemp(prefix=f"{label}-", dir=cwd)
        result = runner.run(
            runner.python_argv(python, _child_source()),
            timeout=len(pending) * (slow_limit + GRACE_S) + _STARTUP_S,
            box=sandbox.Box(stage, write=(folder,)),
            cwd=folder,
            env=env,
            extra_env=extra_env,
            stdin_data=json.dumps(job).encode(),
        )
        # Each result is checked against the child's events and stderr (readme.witness).
        # A tampered report sticks: a later process's word on the block does not undo it.
        seen = read_child(result.stdout, result.stderr, complete=not result.stdout_truncated)
        wanted = {b.index for b in pending}
        reports.update(
            (i, r) for i, r in seen.reports.items() if i in wanted and "tampered" not in reports.get(i, {})
        )
        ours = seen.spike_error
        done = list(itertools.takewhile(lambda b: b.index in reports, pending))
        if len(done) == len(pending):
            break
        if not done and result.returncode == 127 and "cannot start" in result.stderr:
            raise SpikeError(f"{result.stderr.strip()}: check the interpreter path {python!r}")
        if ours:
            # The runner itself failed: nothing after this point was checked.
            error = {"status": "failed", "error": ours, "spike": True}
            reports.update({b.index: dict(error) for b in pending[len(done) :]})
            break
        if done and reports[done[-1].index].get("ended"):
            pending = pending[len(done) :]  # the watchdog ended it after reporting
        else:
            reports[pending[len(done)].index] = _death_report(result)
            pending = pending[len(done) + 1 :]
    return reports


def _job_block(block: Block) -> dict[str, Any]:
    data: dict[str, Any] = {"index": block.index, "kind": block.kind, "line": block.line}
    if block.kind == "pycon":
        data["examples"] = [
            {"source": e.source, "want": e.want, "line": e.line, "exception": e.exception}
            for e in parse_session(block.code, block.line)
        ]
    else:
        data["code"] = block.code
    return data


def _death_report(result: runner.RunResult) -> dict[str, Any]:
    """What a block gets when its process ended without reporting on it."""
    if result.timed_out:
        return {"status": "timeout", "error": f"process killed: {result.describe()}"}
    lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
    detail = lines[-1] if lines else ""
    error = f"the interpreter ended: {result.describe()}" + (f" ({detail})" if detail else "")
    return {"status": "failed", "error": error}


def _outcome(
    block: Block,
    together: dict[str, Any] | None,
    alone: dict[str, Any] | None,
    *,
    facts: ReadmeFacts,
    ok: frozenset[int],
    limit: float,
) -> BlockOutcome:
    if together is None:
        return BlockOutcome(block.index, block.line, block.kind, "skipped", block.first_line)
    alone_status = alone["status"] if alone else "skipped"
    statuses = (together["status"], alone_status)
    # Not ok: the cumulative run explains it (alone, a block lacks what came before it).
    status = "ok" if "ok" in statuses else together["status"]
    failure = Failure(block, together, facts, ok, limit)
    # A run whose report was forged counts as what the host saw of it, and is never excused.
    forged = next((r for r in (together, alone) if r and r.get("tampered")), None)
    said = documented_raise(failure) if status == "failed" and forged is None else ""
    if said:
        status = "ok"  # it raised what the README says it raises
    why = None if status == "ok" or forged is not None else attribute(failure)
    # Report the run that explains the status: the cumulative one unless only alone was ok.
    main = alone if alone and together["status"] != "ok" and alone_status == "ok" else together
    clean = main.get("clean", main["status"] == "ok")
    return BlockOutcome(
        index=block.index,
        line=block.line,
        kind=block.kind,
        status="unchecked" if why else status,
        first_line=block.first_line,
        error=cut(f"{together.get('error', '')} (the README says: {said})", 300)
        if said
        else ("" if status == "ok" else cut(str(together.get("error", "")), 300)),
        ran_clean=bool(clean),
        output_matched=main.get("matched") if block.kind == "pycon" else None,
        duration_s=float(together.get("duration", 0.0)),
        alone=alone_status,
        cumulative=together["status"],
        mismatch=cut(str(main.get("mismatch", "")), 300),
        unchecked=why.reason if why else "",
        blame=why.blame.value if why else "",
        tampered=str(forged["tampered"]) if forged else "",
    )


# --- findings and the fixture object ---------------------------------------------------


def readme_findings(
    outcomes: Sequence[BlockOutcome],
    assumed_imports: Sequence[str] = (),
    examples: Examples = README_EXAMPLES,
) -> tuple[list[Finding], dict[str, Any]]:
    """Turn block outcomes into findings and a JSON-able details dict (codes and messages
    as ``examples`` says: ``readme.*`` and "README examples" by default).

    Only the blocks whose failure is the candidate's count (``checked`` = runnable minus
    unchecked). Rule: ``readme.failed`` is medium when more than half of the checked
    blocks failed (timeouts not counted as failures), low when at least one did;
    ``readme.timeout`` (medium) when any block hung; ``readme.unchecked`` (info, blamed on
    the environment or the spike, never scored) for the blocks that failed for another
    reason; ``readme.none`` (info) when nothing was runnable; ``spike.tampered``
    (critical) when a block's reported result contradicted what the host saw of its run.
    A ``>>>`` session whose output differs but which ran clean is not a failure: outputs that depend on time or
    dict order mismatch honestly; see ``output_matched`` in details.
    """
    tally = _Tally.of(outcomes)
    findings = [
        f
        for f in (
            _tampered_finding(tally, examples),
            _none_finding(outcomes, tally, examples),
            _failed_finding(tally, examples),
            _timeout_finding(tally, examples),
        )
        if f is not None
    ]
    findings += _unchecked_findings(tally, examples)
    return findings, _readme_details(outcomes, tally, assumed_imports)


@dataclass(frozen=True)
class _Tally:
    """The runnable blocks, sorted by how they ended."""

    runnable: list[BlockOutcome]
    failed: list[BlockOutcome]
    hung: list[BlockOutcome]
    unchecked: list[BlockOutcome]

    @classmethod
    def of(cls, outcomes: Sequence[BlockOutcome]) -> _Tally:
        runnable = [o for o in outcomes if o.kind in RUNNABLE_KINDS]
        return cls(
            runnable=runnable,
            failed=[o for o in runnable if o.status == "failed"],
            hung=[o for o in runnable if o.status == "timeout"],
            unchecked=[o for o in runnable if o.status == "unchecked"],
        )

    @property
    def checked(self) -> int:
        """Runnable blocks whose outcome is evidence about the candidate."""
        return len(self.runnable) - len(self.unchecked)


def _tampered_finding(tally: _Tally, examples: Examples) -> Finding | None:
    """``spike.tampered`` (critical, the candidate's) when a block's reported result
    contradicted what the host saw of its run."""
    forged = [o for o in tally.runnable if o.tampered]
    if not forged:
        return None
    first = forged[0]
    return Finding(
        TAMPERED,
        Severity.CRITICAL,
        f"{len(forged)} {examples.noun} example result(s) contradict what the host saw; first at "
        f"line {first.line}: {first.tampered} (counted as {first.status}"
        + (f": {first.error})" if first.error else ")"),
        dict(_evidence(first, len(forged), len(tally.runnable)), tampered=first.tampered),
    )


def _none_finding(outcomes: Sequence[BlockOutcome], tally: _Tally, examples: Examples) -> Finding | None:
    if tally.runnable:
        return None
    kinds = ", ".join(f"{n} {k}" for k, n in _count(o.kind for o in outcomes).items())
    return Finding(
        f"{examples.code}.none",
        Severity.INFO,
        f"the {examples.noun} has no runnable Python example ({kinds or 'no code blocks'})",
    )


def _failed_finding(tally: _Tally, examples: Examples) -> Finding | None:
    """Medium when more than half of the checked blocks failed, low when at least one did."""
    failed, checked = tally.failed, tally.checked
    if not failed:
        return None
    return Finding(
        f"{examples.code}.failed",
        Severity.MEDIUM if 2 * len(failed) > checked else Severity.LOW,
        f"{len(failed)} of {checked} checked {examples.noun} examples failed; first at line "
        f"{failed[0].line}: {failed[0].error}",
        _evidence(failed[0], len(failed), checked),
    )


def _timeout_finding(tally: _Tally, examples: Examples) -> Finding | None:
    hung, checked = tally.hung, tally.checked
    if not hung:
        return None
    return Finding(
        f"{examples.code}.timeout",
        Severity.MEDIUM,
        f"{len(hung)} of {checked} checked {examples.noun} examples hung; first at line "
        f"{hung[0].line}: {hung[0].error}",
        _evidence(hung[0], len(hung), checked),
    )


def _unchecked_findings(tally: _Tally, examples: Examples) -> list[Finding]:
    """One ``<code>.unchecked`` per blame (environment, then spike) that has blocks."""
    findings = []
    total = len(tally.runnable)
    for blame in (Blame.ENVIRONMENT, Blame.SPIKE):
        group = [o for o in tally.unchecked if o.blame == blame.value]
        if not group:
            continue
        first = group[0]
        findings.append(
            Finding(
                f"{examples.code}.unchecked",
                Severity.INFO,
                f"{len(group)} of {total} {examples.noun} examples not checked; first at line "
                f"{first.line}: {first.unchecked}",
                dict(_evidence(first, len(group), total), reason=first.unchecked),
                blame=blame,
            )
        )
    return findings


def _readme_details(
    outcomes: Sequence[BlockOutcome], tally: _Tally, assumed_imports: Sequence[str]
) -> dict[str, Any]:
    runnable = tally.runnable
    sessions = [o for o in runnable if o.kind == "pycon"]
    details: dict[str, Any] = {
        "counts": {
            "blocks": len(outcomes),
            "runnable": len(runnable),
            "checked": tally.checked,
            "ok": sum(o.status == "ok" for o in runnable),
            "failed": len(tally.failed),
            "timeout": len(tally.hung),
            "unchecked": len(tally.unchecked),
            "skipped": len(outcomes) - len(runnable),
            "ok_alone": sum(o.alone == "ok" for o in runnable),
            "ok_cumulative": sum(o.cumulative == "ok" for o in runnable),
            "sessions": len(sessions),
            "sessions_matched": sum(bool(o.output_matched) for o in sessions),
        },
        "kinds": _count(o.kind for o in outcomes),
        "blocks": [o.to_dict() for o in outcomes],
    }
    if assumed_imports:
        details["assumed_imports"] = list(assumed_imports)
    return details


def _count(values: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts


def _evidence(outcome: BlockOutcome, count: int, runnable: int) -> dict[str, str]:
    return {
        "block": f"line {outcome.line}: {outcome.first_line}",
        "error": outcome.error,
        "count": f"{count}/{runnable}",
    }


@dataclass(frozen=True)
class ReadmeRun:
    """The outcome of running a README's blocks (what ``spike_readme.run()`` returns)."""

    outcomes: tuple[BlockOutcome, ...]
    #: the candidate's modules imported for a README that uses them without importing
    assumed_imports: tuple[str, ...] = ()
    #: whose examples they are (the findings' codes and wording)
    examples: Examples = README_EXAMPLES

    @property
    def runnable(self) -> list[BlockOutcome]:
        return [o for o in self.outcomes if o.kind in RUNNABLE_KINDS]

    @property
    def passed(self) -> list[BlockOutcome]:
        return [o for o in self.runnable if o.status == "ok"]

    @property
    def failed(self) -> list[BlockOutcome]:
        return [o for o in self.runnable if o.status == "failed"]

    @property
    def timed_out(self) -> list[BlockOutcome]:
        return [o for o in self.runnable if o.status == "timeout"]

    @property
    def unchecked(self) -> list[BlockOutcome]:
        """Blocks that failed for a reason that is not the candidate's (see ``unchecked``)."""
        return [o for o in self.runnable if o.status == "unchecked"]

    @property
    def checked(self) -> list[BlockOutcome]:
        """Runnable blocks whose outcome is evidence about the candidate, either way."""
        return [o for o in self.runnable if o.status != "unchecked"]

    @property
    def ok(self) -> bool:
        """True when there was something to run and every runnable block ran clean."""
        return bool(self.runnable) and len(self.passed) == len(self.runnable)

    @property
    def findings(self) -> list[Finding]:
        return readme_findings(self.outcomes, self.assumed_imports, self.examples)[0]

    @property
    def details(self) -> dict[str, Any]:
        return readme_findings(self.outcomes, self.assumed_imports, self.examples)[1]

    def summary(self) -> str:
        """One line: ``7 blocks: 3 ok, 1 failed, 0 timed out, 1 unchecked, 2 not run``."""
        return (
            f"{len(self.outcomes)} blocks: {len(self.passed)} ok, {len(self.failed)} failed, "
            f"{len(self.timed_out)} timed out, {len(self.unchecked)} unchecked, "
            f"{len(self.outcomes) - len(self.runnable)} not run"
        )


class SpikeReadme:
    """The README examples of one installed candidate (the ``spike_readme`` fixture).

    ``python`` is the interpreter of the candidate's environment, ``timeout`` the limit per
    block in seconds (and for reading the metadata), ``workdir`` an existing folder the
    blocks run in (each run gets a fresh subfolder). ``allow_network`` lets the blocks
    reach beyond loopback (refused by default, and a refused block is unchecked).

    ``source`` gives the text the blocks come from (default: the installed README, read
    from the metadata); ``examples`` names them in the findings. A probe that runs another
    text's examples by the same rules (a documentation page) passes both.
    ``slow_allowance`` is how long a block still computing may run (default
    ``SLOW_ALLOWANCE_FACTOR`` times ``timeout``). ``site`` is where the host reads the
    installed README from (default: the environment of ``python``).
    """

    def __init__(
        self,
        python: str,
        dist_name: str,
        timeout: float,
        workdir: str | Path,
        *,
        env: Mapping[str, str] | None = None,
        extra_env: Mapping[str, str] | None = None,
        allow_network: bool = False,
        source: BlockSource | None = None,
        examples: Examples = README_EXAMPLES,
        slow_allowance: float | None = None,
        site: inspection.Site | None = None,
    ) -> None:
        self.python = python
        self.site = site
        self.slow_allowance = slow_allowance
        self.dist_name = dist_name
        self.timeout = timeout
        self.workdir = Path(workdir)
        self.env = env
        self.extra_env = extra_env
        self.allow_network = allow_network
        self.source = source
        self.examples = examples
        self._readme: InstalledReadme | None = None

    def __repr__(self) -> str:
        return f"<SpikeReadme {self.dist_name} python={self.python}>"

    def _read(self) -> InstalledReadme:
        if self._readme is None:
            if self.source is not None:
                self._readme = self.source()
            else:
                self._readme = read_package(
                    self.python,
                    self.dist_name,
                    self.timeout,
                    env=self.env,
                    extra_env=self.extra_env,
                    site=self.site,
                )
        return self._readme

    @property
    def text(self) -> str:
        """The README as installed (the long description in the metadata)."""
        return self._read().text

    @property
    def content_type(self) -> str:
        return self._read().content_type

    def blocks(self, kind: str | None = None) -> list[Block]:
        """All code blocks, or those of one ``kind`` (python, pycon, shell, toml, json, other)."""
        if kind is not None and kind not in KINDS:
            raise SpikeError(f"spike_readme.blocks: {kind!r} is not one of {', '.join(KINDS)}")
        found = extract_blocks(self.text, self.content_type)
        return [b for b in found if kind is None or b.kind == kind]

    def run(self, blocks: Sequence[Block] | None = None) -> ReadmeRun:
        """Run the README's blocks (or the given ones) alone and cumulatively."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        readme = self._read()
        chosen = self.blocks() if blocks is None else list(blocks)
        outcomes = run_blocks(
            self.python,
            chosen,
            timeout_per_block=self.timeout,
            slow_allowance=self.slow_allowance,
            cwd=self.workdir,
            env=self.env,
            extra_env=self.extra_env,
            allow_network=self.allow_network,
            modules=readme.modules,
            dist_name=readme.name,
            stage=self.examples.code,
        )
        assumed = ReadmeFacts.of(chosen, readme.modules, readme.name).assumed_imports(readme.modules)
        return ReadmeRun(tuple(outcomes), tuple(assumed), self.examples)
