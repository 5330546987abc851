"""What candidate code tried in a boxed step, seen two ways, and how it is scored.

**Decoy reads, from the host.** The box's HOME holds decoy credentials
(:data:`~pytest_spike._core.sandbox.DECOYS`), made fresh for each step. Their access times
are set an hour back before the step; ext4, xfs and tmpfs under ``relatime`` (the Linux
default) update the access time on the first read after that, whatever reads: Python,
C code, ``cat`` started from a shell. After the step the host compares. No library, no
kernel interface beyond ``stat``; where the folder is mounted ``noatime`` the watch is off
and :func:`watch_decoys` says so.

**Attempts, from inside.** Boxed Python processes run the audit hooks of
``_core/_boot/sitecustomize.py`` (PEP 578) and append what they saw to a folder the host
made for the step: connections and name lookups, process starts, writes outside the
step's writable folders, reads aimed at secrets (a decoy, or where credentials live outside
the box), ``ctypes`` loads, and daemons left to the box's init.

:func:`recording` collects the :class:`Behaviour` of every boxed step run inside it (the
runner reports each); :func:`findings` scores them.
"""

from __future__ import annotations

import contextvars
import functools
import os
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_spike._core.files import json_objects
from pytest_spike.model import Blame, Finding, Severity

#: The folder boxed Python processes load their audit hooks from (first on PYTHONPATH).
BOOT = str(Path(__file__).parent / "_boot")
#: How far back the decoys' access times are set: any read after that moves them forward.
_BACKDATE_S = 3600.0
#: Decoys an installer reads itself, looking for the index's credentials (pip's requests and
#: uv read ``~/.netrc``): not watched in steps with the network, where the installer runs.
INSTALLER_READS = frozenset({".netrc"})
#: Stages where the candidate's own code runs and nothing needs the network or a shell.
_STRICT_STAGES = frozenset({"install", "resolve", "import", "inspect"})
#: Programs that mean "a shell or a download" when install or import starts them.
_HOSTILE_PROGRAMS = frozenset(
    {
        "sh",
        "bash",
        "dash",
        "zsh",
        "ksh",
        "csh",
        "tcsh",
        "fish",
        "busybox",
        "curl",
        "wget",
        "nc",
        "ncat",
        "socat",
    }
)
#: Programs healthy packages run (ctypes.util.find_library, platform, setuptools-scm...).
_SYSTEM_TOOLS = frozenset(
    {"ldconfig", "gcc", "cc", "ld", "objdump", "uname", "git", "file", "lsb_release", "nproc", "getconf"}
)
#: pytest's assertion rewriter keeps the bytecode of each module it rewrote (test modules,
#: conftests, plugins: pytest-cov in upstream's harness) in a ``__pycache__`` beside it; in
#: the box, where the environment is read-only, the write is refused and pytest goes on.
_REWRITER = re.compile(r"/_pytest/assertion/rewrite\.py:\d+$")
_BYTECODE = re.compile(r"/__pycache__/[^/]+\.pyc(?:\.\d+)?$")


@dataclass(frozen=True)
class Attempt:
    """One thing a boxed process tried: ``kind`` network, exec, write, ctypes or persistence;
    ``what`` the address, program or file; ``by`` the frame that did it (file:line)."""

    kind: str
    what: str
    by: str = ""
    command: str = ""

    def to_dict(self) -> dict[str, str]:
        return {
            k: v
            for k, v in (("kind", self.kind), ("what", self.what), ("by", self.by), ("command", self.command))
            if v
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Attempt:
        return cls(
            str(data.get("kind", "")),
            str(data.get("what", "")),
            str(data.get("by", "")),
            str(data.get("command", "")),
        )


@dataclass
class Behaviour:
    """What one boxed step tried: its stage, the decoys it read, its attempts."""

    stage: str
    network: bool = False
    decoys_read: list[str] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    #: why decoy reads could not be watched ('' when they were)
    unwatched: str = ""
    #: the step ran the candidate's setup code (a build backend building its sdist)
    ran_setup: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "network": self.network,
            "decoys_read": list(self.decoys_read),
            "attempts": [a.to_dict() for a in self.attempts],
            "unwatched": self.unwatched,
            "ran_setup": self.ran_setup,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Behaviour:
        return cls(
            stage=str(data.get("stage", "")),
            network=bool(data.get("network", False)),
            decoys_read=[str(d) for d in data.get("decoys_read", [])],
            attempts=[Attempt.from_dict(a) for a in data.get("attempts", [])],
            unwatched=str(data.get("unwatched", "")),
            ran_setup=bool(data.get("ran_setup", False)),
        )


# -- decoys ---------------------------------------------------------------------------------


def watch_decoys(home: Path, decoys: Sequence[str]) -> tuple[dict[str, int], str]:
    """Set the decoys' access times back; (their access times now, '' or why not watched)."""
    if os.statvfs(home).f_flag & getattr(os, "ST_NOATIME", 1024):
        return {}, f"{home} is mounted noatime: decoy reads are not seen"
    marks: dict[str, int] = {}
    back = int((time.time() - _BACKDATE_S) * 1e9)
    for relative in decoys:
        path = home / relative
        try:
            stat = path.stat()
            os.utime(path, ns=(back, stat.st_mtime_ns))
            marks[relative] = path.stat().st_atime_ns
        except OSError:
            continue
    return marks, ""


def decoys_read(home: Path, marks: Mapping[str, int]) -> list[str]:
    """The decoys whose access time moved since :func:`watch_decoys` (read by anything)."""
    read: list[str] = []
    for relative, before in marks.items():
        try:
            if (home / relative).stat().st_atime_ns > before:
                read.append(relative)
        except OSError:
            read.append(relative)  # removed or replaced: it was touched
    return read


# -- attempts -------------------------------------------------------------------------------


def audit_env(
    folder: str, writable: Sequence[str], *, pidns: bool, decoys: Sequence[str] = ()
) -> dict[str, str]:
    """The variables that load the audit hooks in a step's Python processes (PYTHONPATH is the
    caller's: :func:`python_path`); ``decoys`` are relative to the box's HOME."""
    return {
        "PYTEST_SPIKE_AUDIT": folder,
        "PYTEST_SPIKE_WRITABLE": os.pathsep.join(writable),
        "PYTEST_SPIKE_PIDNS": "1" if pidns else "0",
        "PYTEST_SPIKE_DECOYS": os.pathsep.join(decoys),
    }


def python_path(existing: str | None) -> str:
    """PYTHONPATH with the audit boot first (the environment's own sitecustomize still runs)."""
    _compiled()
    return os.pathsep.join([BOOT, *([existing] if existing else [])])


@functools.cache
def _compiled() -> None:
    """Compile the boot for this interpreter once: with PYTHONDONTWRITEBYTECODE (or the boot
    read-only in the box) every boxed start would compile it again (~5 ms)."""
    import importlib.util
    import py_compile

    source = os.path.join(BOOT, "sitecustomize.py")
    cfile = importlib.util.cache_from_source(source)
    try:
        # Not again when it is current (the check the import system makes): a rewrite of the
        # same bytes still changes the file, and the child pytest's layer is checked for
        # changed files before reuse (envs/digest.py).
        with open(cfile, "rb") as handle:
            header = handle.read(16)
        stat = os.stat(source)
        current = (importlib.util.MAGIC_NUMBER, 0, int(stat.st_mtime) & 0xFFFFFFFF, stat.st_size & 0xFFFFFFFF)
        if (header[:4], *(int.from_bytes(header[i : i + 4], "little") for i in (4, 8, 12))) == current:
            return
    except OSError:
        pass
    try:
        py_compile.compile(source, cfile=cfile, doraise=True)
    except (OSError, py_compile.PyCompileError):
        pass  # an installed, read-only package: it was compiled at install, or it costs a few ms


def read_attempts(folder: Path) -> list[Attempt]:
    """Every attempt the step's processes wrote (repeats of one attempt counted once)."""
    found: dict[Attempt, None] = {}
    for path in sorted(folder.glob("*.jsonl")):
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for data in json_objects(text.splitlines()[:10000]):
            found.setdefault(Attempt.from_dict(data), None)
    return list(found)


# -- collecting what the steps of a probe saw -----------------------------------------------

_seen: contextvars.ContextVar[list[Behaviour] | None] = contextvars.ContextVar(
    "spike_behaviour", default=None
)


@contextmanager
def recording() -> Iterator[list[Behaviour]]:
    """Collect the behaviour of every boxed step run inside the ``with`` (in this context);
    an inner ``recording`` keeps its steps to itself."""
    seen: list[Behaviour] = []
    token = _seen.set(seen)
    try:
        yield seen
    finally:
        _seen.reset(token)


def report(found: Behaviour) -> None:
    """The runner: one boxed step ended and this is what it tried."""
    seen = _seen.get()
    if seen is not None:
        seen.append(found)


# -- scoring -------------------------------------------------------------------------------


def _interpreter(program: str) -> bool:
    """A Python start: an installer running a build backend, a child of the probes (its own
    audit hooks report what it does)."""
    name = _name(program)
    return name.startswith("python") or name in ("pypy", "pypy3")


def _name(program: str) -> str:
    return os.path.basename(program.split()[0]) if program.strip() else ""


def _exec_severity(attempt: Attempt, stage: str) -> Severity:
    name = _name(attempt.what)
    if name in ("sh", "bash", "dash") and attempt.command:
        # a command line given to a shell: judged by what the shell was asked to run
        words = attempt.command.split()
        inner = words[2] if len(words) > 2 and words[1] == "-c" else (words[0] if words else "")
        if _name(inner) in _SYSTEM_TOOLS:
            name = _name(inner)
    # Written during the step where a download lands: HOME, /dev/shm, the top of /tmp (not an
    # installer's build environment under /tmp, whose tools it installed itself).
    where = attempt.what
    downloaded = where.startswith(("/home/spike/", "/var/tmp/", "/dev/shm/")) or (
        where.startswith("/tmp/") and where.count("/") == 2
    )
    if stage in _STRICT_STAGES and (name in _HOSTILE_PROGRAMS or downloaded):
        return Severity.HIGH
    return Severity.INFO


def _config_lookup(step: Behaviour, decoy: str, who: str = "") -> str:
    """Why reading ``decoy`` in ``step`` is a tool reading its own configuration ('' if not):
    git reads ~/.gitconfig on every call; requests, curl and pip read ~/.netrc for every
    request, which README examples and upstream tests may make (the box refuses them)."""
    if decoy == ".gitconfig" and any(a.kind == "exec" and _name(a.what) == "git" for a in step.attempts):
        return "the step ran git, which reads it on every call"
    if decoy == ".netrc" and step.stage not in _STRICT_STAGES:
        return "requests, curl and pip read it for every request"
    if decoy in INSTALLER_READS and step.network:
        return "the installer reads it for the index's credentials"
    if step.stage == "tests" and not who:
        return "your tests ran there too, and no frame of the candidate's read it"
    return ""


def attributed(steps: Sequence[Behaviour], roots: Sequence[str]) -> list[Behaviour]:
    """The steps with only what code under ``roots`` (the candidate's environment) tried.

    In a step that runs your tests, your code runs beside the candidate's: what your tests
    tried is not the candidate's doing. Daemons have no frame and stay.
    """
    folders = tuple(os.path.join(os.path.normpath(r), "") for r in roots)
    kept: list[Behaviour] = []
    for step in steps:
        mine = [a for a in step.attempts if a.kind == "persistence" or a.by.startswith(folders)]
        kept.append(
            Behaviour(step.stage, step.network, list(step.decoys_read), mine, step.unwatched, step.ran_setup)
        )
    return kept


def secrets_read(step: Behaviour) -> dict[str, str]:
    """The decoys ``step`` read: seen from the host (access times) or by the audit hooks (a
    Python read, with who made it); decoy -> who ('' when only the host saw it)."""
    found = dict.fromkeys(step.decoys_read, "")
    for attempt in step.attempts:
        if attempt.kind == "read" and attempt.what.startswith("~/"):
            decoy = attempt.what[2:]
            if not found.get(decoy):
                found[decoy] = attempt.by
    return found


def _bytecode_cache(attempt: Attempt) -> str:
    """Why a write is pytest caching bytecode, not the candidate's doing ('' if it is not)."""
    if _BYTECODE.search(attempt.what) and _REWRITER.search(attempt.by):
        return "pytest tried to cache the bytecode of a module it rewrote"
    return ""


def findings(seen: Sequence[Behaviour]) -> list[Finding]:
    """The ``behaviour.*`` findings of what the steps tried (each attempt once per stage)."""
    found: dict[tuple[str, str, str], Finding] = {}
    #: pytest's bytecode caches per stage (each file once): one finding a stage
    caches: dict[str, dict[str, Attempt]] = {}

    def add(code: str, severity: Severity, message: str, stage: str, what: str, by: str = "") -> None:
        key = (code, stage, what)
        if key in found:
            return
        evidence = {"stage": stage, "what": what}
        if by:
            evidence["by"] = by
        found[key] = Finding(code, severity, message, evidence, Blame.CANDIDATE)

    for step in seen:
        stage = step.stage
        for decoy, who in secrets_read(step).items():
            looked_up = _config_lookup(step, decoy, who)
            add(
                "behaviour.secrets",
                Severity.INFO if looked_up else Severity.CRITICAL,
                f"{stage}: read the decoy credential ~/{decoy}"
                + (f" ({who})" if who else "")
                + (f" ({looked_up})" if looked_up else ""),
                stage,
                f"~/{decoy}",
                who,
            )
        for attempt in step.attempts:
            by = f" ({attempt.by})" if attempt.by else ""
            if attempt.kind == "network":
                severity = Severity.HIGH if stage in _STRICT_STAGES and not step.network else Severity.INFO
                answer = "refused: no network in the box" if not step.network else "the box had the network"
                add(
                    "behaviour.network",
                    severity,
                    f"{stage}: tried the network, {attempt.what}{by}; {answer}",
                    stage,
                    attempt.what,
                    attempt.by,
                )
            elif attempt.kind == "exec" and not _interpreter(attempt.what):
                command = attempt.command or attempt.what
                add(
                    "behaviour.exec",
                    _exec_severity(attempt, stage),
                    f"{stage}: started {command[:120]}{by}",
                    stage,
                    attempt.what,
                    attempt.by,
                )
            elif attempt.kind == "write" and _bytecode_cache(attempt):
                caches.setdefault(stage, {}).setdefault(attempt.what, attempt)
            elif attempt.kind == "write":
                add(
                    "behaviour.writes",
                    Severity.HIGH,
                    f"{stage}: tried to write {attempt.what}, outside its environment and temp folder{by}",
                    stage,
                    attempt.what,
                    attempt.by,
                )
            elif attempt.kind == "read" and not attempt.what.startswith("~/"):
                add(
                    "behaviour.reads",
                    Severity.HIGH if stage in _STRICT_STAGES else Severity.INFO,
                    f"{stage}: tried to read {attempt.what}, where secrets live outside the box; "
                    f"the box does not hold it{by}",
                    stage,
                    attempt.what,
                    attempt.by,
                )
            elif attempt.kind == "persistence":
                add(
                    "behaviour.persistence",
                    Severity.HIGH,
                    f"{stage}: left a process running after its step ({attempt.what[:120]}); the box killed it",
                    stage,
                    attempt.what,
                )
    for stage, tried in caches.items():
        # One finding a stage: pytest tries it for every module of every plugin it rewrote.
        first = next(iter(tried.values()))
        many = f"{len(tried)} modules it rewrote ({first.what}, ...)" if len(tried) > 1 else ""
        found[("behaviour.writes", stage, first.what)] = Finding(
            "behaviour.writes",
            Severity.INFO,
            f"{stage}: pytest tried to cache the bytecode of "
            + (many or f"a module it rewrote ({first.what})")
            + "; the box refused it",
            {"stage": stage, "what": first.what, "by": first.by, "count": str(len(tried))},
            Blame.CANDIDATE,
        )
    return list(found.values())


def summary(seen: Sequence[Behaviour]) -> str:
    """One line per stage: 'install: ran setup code, no network, no secrets; import: 0 attempts'."""
    stages: dict[str, list[Behaviour]] = {}
    for step in seen:
        stages.setdefault(step.stage, []).append(step)
    parts: list[str] = []
    for stage, steps in stages.items():
        attempts = [
            a
            for s in steps
            for a in s.attempts
            if a.kind not in ("ctypes", "read")
            and not (a.kind == "exec" and _interpreter(a.what))
            and not (a.kind == "write" and _bytecode_cache(a))
        ]
        attempts += [a for s in steps for a in s.attempts if a.kind == "read" and not a.what.startswith("~/")]
        secrets = sorted({d for s in steps for d in secrets_read(s)})
        setup = ["ran setup code"] if any(s.ran_setup for s in steps) else []
        if not attempts and not secrets and not setup:
            parts.append(f"{stage}: 0 attempts")
            continue
        kinds = {a.kind for a in attempts}
        said = [
            *setup,
            "network" if "network" in kinds else "no network",
            f"secrets ({', '.join('~/' + d for d in secrets)})" if secrets else "no secrets",
        ]
        said += [
            f"{sum(a.kind == k for a in attempts)} {k}"
            for k in ("exec", "write", "read", "persistence")
            if k in kinds
        ]
        parts.append(f"{stage}: {', '.join(said)}")
    return "; ".join(parts)
