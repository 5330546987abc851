"""Run the code examples of an installed package's README: the readme probe's machinery.

The README is the distribution's long description in its installed metadata, read by the
target interpreter. ``readme.blocks`` finds and classifies the blocks; here Python blocks
and ``>>>`` sessions run in subprocesses through :func:`pytest_spike._core.runner.run` (the
program they run is ``readme._child``), alone and cumulatively; shell, TOML, JSON and other
blocks are listed but never run. ``SpikeReadme`` is the object behind ``spike_readme``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_spike._core import runner
from pytest_spike.model import Finding, Severity, SpikeError
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

__all__ = [
    "Block",
    "BlockOutcome",
    "Example",
    "ReadmeRun",
    "SpikeReadme",
    "classify",
    "extract_blocks",
    "parse_session",
    "read_readme",
    "readme_findings",
    "run_blocks",
]


#: Time limit per README block unless the caller gives one.
DEFAULT_BLOCK_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class BlockOutcome:
    """How one block did: ``status`` is ok / failed / timeout / skipped.

    A block is ok when it ran clean either alone or after the blocks before it (see
    ``alone`` and ``cumulative``). ``ran_clean`` and ``output_matched`` are set for ``>>>``
    sessions; an example that shows no output matches any output.
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

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["duration_s"] = round(self.duration_s, 4)
        return data


# --- reading -------------------------------------------------------------------------

_FOLD = re.compile(r"^(?: {7}\|| {8}|\t)")

# Runs in the target interpreter (3.9+, stdlib only). sys.path[0] is the cwd under -c:
# drop it so a stray json.py there cannot answer for the stdlib.
_READ_SCRIPT = """\
import sys
del sys.path[0]
import importlib.metadata as im, json
name = sys.argv[1]
for guess in (name, name.replace("-", "_"), name.replace("_", "-")):
    try:
        md = im.metadata(guess)
        break
    except im.PackageNotFoundError:
        md = None
if md is None:
    print(json.dumps({"missing": True}))
else:
    body, header = md.get_payload(), False
    if not isinstance(body, str) or not body.strip():
        body, header = md.get("Description") or "", True
    kind = md.get("Description-Content-Type") or ""
    print(json.dumps({"text": body, "header": header, "type": kind}))
"""


def read_readme(
    python: str,
    dist_name: str,
    timeout: float,
    *,
    env: Mapping[str, str] | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> tuple[str, str]:
    """Return ``(text, content_type)`` of ``dist_name``'s README as installed for ``python``.

    Raises ``SpikeError`` when the distribution is not installed there or the interpreter
    cannot run.
    """
    argv = runner.python_argv(python, _READ_SCRIPT, dist_name)
    result = runner.run(argv, timeout=timeout, env=env, extra_env=extra_env)
    data: Any = None
    if result.ok:
        try:
            data = json.loads(result.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            data = None
    if not isinstance(data, dict):
        raise SpikeError(
            f"cannot read the README of {dist_name!r} with {python} "
            f"({result.describe()}: {result.last_error_line() or 'no output'})"
        )
    if data.get("missing"):
        raise SpikeError(
            f"{dist_name!r} is not installed for {python}: install it into that "
            "environment before the readme probe runs"
        )
    text = str(data.get("text") or "")
    first, *rest = text.splitlines() or [""]
    # A Description header folds its lines with 8 spaces (or 7 and a bar); Python 3.10+
    # unfolds it already, 3.9 does not: unfold only when every line still carries the fold.
    if data.get("header") and rest and all(_FOLD.match(x) for x in rest if x.strip()):
        text = "\n".join([first] + [_FOLD.sub("", x) for x in rest])
    return text, str(data.get("type") or "")


# --- running ---------------------------------------------------------------------------

#: Seconds a block may overrun its limit (swallowing the alarm) before its process is ended.
GRACE_S = 2.0
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
) -> list[BlockOutcome]:
    """Run the runnable blocks with ``python``, cumulatively and alone; list every block.

    Cumulatively: one process runs the blocks in order in one ``__main__`` namespace, as a
    reader pasting them one after another would; a block that kills or hangs the process
    is reported and the rest continue in a new process (and a fresh namespace). Alone:
    each block in its own process. Every process gets a closed stdin, ``sys.argv`` of one
    element, a fresh folder under ``cwd``, a scrubbed environment and a per-block time
    limit (an alarm, then the process is ended ``GRACE_S`` later).

    Network access is refused for non-loopback addresses by patching ``socket`` in the
    child: a courtesy against accidental traffic, not a sandbox (C extensions bypass it).
    A block that times out cumulatively is not run again alone.
    """
    runnable = [b for b in blocks if b.runnable]
    run_in_order = functools.partial(
        _run_in_order, python, limit=timeout_per_block, cwd=Path(cwd), env=env, extra_env=extra_env
    )
    together = run_in_order(runnable, "cumulative")
    alone: dict[int, dict[str, Any]] = {}
    for position, block in enumerate(runnable):
        if position == 0:
            alone[block.index] = together[block.index]  # nothing ran before it: same run
        elif together[block.index]["status"] != "timeout":
            alone.update(run_in_order([block], f"alone-{block.index}"))
    return [_outcome(b, together.get(b.index), alone.get(b.index)) for b in blocks]


def _run_in_order(
    python: str,
    blocks: list[Block],
    label: str,
    *,
    limit: float,
    cwd: Path,
    env: Mapping[str, str] | None,
    extra_env: Mapping[str, str] | None,
) -> dict[int, dict[str, Any]]:
    """Report per block index; a new process picks up after a block that ended one."""
    reports: dict[int, dict[str, Any]] = {}
    pending = list(blocks)
    while pending:
        job = {
            "limit": limit,
            "grace": GRACE_S,
            "argv0": "readme",
            "blocks": [_job_block(b) for b in pending],
        }
        folder = tempfile.mkdtemp(prefix=f"{label}-", dir=cwd)
        result = runner.run(
            runner.python_argv(python, _child_source()),
            timeout=len(pending) * (limit + GRACE_S) + _STARTUP_S,
            cwd=folder,
            env=env,
            extra_env=extra_env,
            stdin_data=json.dumps(job).encode(),
        )
        for line in result.stdout.splitlines():
            try:
                data = json.loads(line)
            except ValueError:
                continue
            if isinstance(data, dict) and "index" in data:
                reports[int(data["index"])] = data
        done = [b for b in pending if b.index in reports]
        if len(done) == len(pending):
            break
        if not done and result.returncode == 127 and "cannot start" in result.stderr:
            raise SpikeError(f"{result.stderr.strip()}: check the interpreter path {python!r}")
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


def _outcome(block: Block, together: dict[str, Any] | None, alone: dict[str, Any] | None) -> BlockOutcome:
    if together is None:
        return BlockOutcome(block.index, block.line, block.kind, "skipped", block.first_line)
    alone_status = alone["status"] if alone else "skipped"
    statuses = (together["status"], alone_status)
    status = next((s for s in ("ok", "timeout") if s in statuses), "failed")
    # Report the run that explains the status: the cumulative one unless only alone was ok.
    main = alone if alone and together["status"] != "ok" and alone_status == "ok" else together
    clean = main.get("clean", main["status"] == "ok")
    return BlockOutcome(
        index=block.index,
        line=block.line,
        kind=block.kind,
        status=status,
        first_line=block.first_line,
        error="" if status == "ok" else cut(str(together.get("error", "")), 300),
        ran_clean=bool(clean),
        output_matched=main.get("matched") if block.kind == "pycon" else None,
        duration_s=float(together.get("duration", 0.0)),
        alone=alone_status,
        cumulative=together["status"],
        mismatch=cut(str(main.get("mismatch", "")), 300),
    )


# --- findings and the fixture object ---------------------------------------------------


def readme_findings(outcomes: Sequence[BlockOutcome]) -> tuple[list[Finding], dict[str, Any]]:
    """Turn block outcomes into findings and a JSON-able details dict.

    Rule: ``readme.failed`` is medium when more than half of the runnable blocks failed
    (timeouts not counted as failures), low when at least one did; ``readme.timeout``
    (medium) when any block hung; ``readme.none`` (info) when nothing was runnable. A
    ``>>>`` session whose output differs but which ran clean is not a failure: outputs
    that depend on time or dict order mismatch honestly; see ``output_matched`` in details.
    """
    runnable = [o for o in outcomes if o.kind in RUNNABLE_KINDS]
    failed = [o for o in runnable if o.status == "failed"]
    hung = [o for o in runnable if o.status == "timeout"]
    findings = []
    if not runnable:
        kinds = ", ".join(f"{n} {k}" for k, n in _count(o.kind for o in outcomes).items())
        findings.append(
            Finding(
                "readme.none",
                Severity.INFO,
                f"the README has no runnable Python example ({kinds or 'no code blocks'})",
            )
        )
    if failed:
        severity = Severity.MEDIUM if 2 * len(failed) > len(runnable) else Severity.LOW
        findings.append(
            Finding(
                "readme.failed",
                severity,
                f"{len(failed)} of {len(runnable)} README examples failed; first at line "
                f"{failed[0].line}: {failed[0].error}",
                _evidence(failed[0], len(failed), len(runnable)),
            )
        )
    if hung:
        findings.append(
            Finding(
                "readme.timeout",
                Severity.MEDIUM,
                f"{len(hung)} of {len(runnable)} README examples hung; first at line "
                f"{hung[0].line}: {hung[0].error}",
                _evidence(hung[0], len(hung), len(runnable)),
            )
        )
    sessions = [o for o in runnable if o.kind == "pycon"]
    details = {
        "counts": {
            "blocks": len(outcomes),
            "runnable": len(runnable),
            "ok": sum(o.status == "ok" for o in runnable),
            "failed": len(failed),
            "timeout": len(hung),
            "skipped": len(outcomes) - len(runnable),
            "ok_alone": sum(o.alone == "ok" for o in runnable),
            "ok_cumulative": sum(o.cumulative == "ok" for o in runnable),
            "sessions": len(sessions),
            "sessions_matched": sum(bool(o.output_matched) for o in sessions),
        },
        "kinds": _count(o.kind for o in outcomes),
        "blocks": [o.to_dict() for o in outcomes],
    }
    return findings, details


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
    def ok(self) -> bool:
        """True when there was something to run and every runnable block ran clean."""
        return bool(self.runnable) and len(self.passed) == len(self.runnable)

    @property
    def findings(self) -> list[Finding]:
        return readme_findings(self.outcomes)[0]

    @property
    def details(self) -> dict[str, Any]:
        return readme_findings(self.outcomes)[1]

    def summary(self) -> str:
        """One line: ``7 blocks: 4 ok, 1 failed, 0 timed out, 2 not run``."""
        return (
            f"{len(self.outcomes)} blocks: {len(self.passed)} ok, {len(self.failed)} failed, "
            f"{len(self.timed_out)} timed out, {len(self.outcomes) - len(self.runnable)} not run"
        )


class SpikeReadme:
    """The README examples of one installed candidate (the ``spike_readme`` fixture).

    ``python`` is the interpreter of the candidate's environment, ``timeout`` the limit per
    block in seconds (and for reading the metadata), ``workdir`` an existing folder the
    blocks run in (each run gets a fresh subfolder).
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
    ) -> None:
        self.python = python
        self.dist_name = dist_name
        self.timeout = timeout
        self.workdir = Path(workdir)
        self.env = env
        self.extra_env = extra_env
        self._readme: tuple[str, str] | None = None

    def __repr__(self) -> str:
        return f"<SpikeReadme {self.dist_name} python={self.python}>"

    def _read(self) -> tuple[str, str]:
        if self._readme is None:
            self._readme = read_readme(
                self.python, self.dist_name, self.timeout, env=self.env, extra_env=self.extra_env
            )
        return self._readme

    @property
    def text(self) -> str:
        """The README as installed (the long description in the metadata)."""
        return self._read()[0]

    @property
    def content_type(self) -> str:
        return self._read()[1]

    def blocks(self, kind: str | None = None) -> list[Block]:
        """All code blocks, or those of one ``kind`` (python, pycon, shell, toml, json, other)."""
        if kind is not None and kind not in KINDS:
            raise SpikeError(f"spike_readme.blocks: {kind!r} is not one of {', '.join(KINDS)}")
        found = extract_blocks(*self._read())
        return [b for b in found if kind is None or b.kind == kind]

    def run(self, blocks: Sequence[Block] | None = None) -> ReadmeRun:
        """Run the README's blocks (or the given ones) alone and cumulatively."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        outcomes = run_blocks(
            self.python,
            self.blocks() if blocks is None else blocks,
            timeout_per_block=self.timeout,
            cwd=self.workdir,
            env=self.env,
            extra_env=self.extra_env,
        )
        return ReadmeRun(tuple(outcomes))
