"""Run untrusted code (candidates, README blocks, upstream tests) in a subprocess.

Every child gets: an argument list (never a shell string), a time limit after which its
whole process group is killed, a closed stdin, an environment scrubbed of credentials,
captured output capped in size, and its own resource usage (wall time, peak RSS).

A step that can run a candidate's code passes a :class:`~pytest_spike._core.sandbox.Box`:
it then runs in the sandbox (bubblewrap), with an allow-listed environment, an empty HOME of
its own and limits on processes, memory and file size; see :mod:`pytest_spike._core.sandbox`.
Without a box (our own tools: interpreter discovery, the plan's collection) the child runs
as the same user, contained but not sandboxed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Callable

from pytest_spike._core import behaviour, hostfiles, sandbox, timeline
from pytest_spike.model import SpikeError

if TYPE_CHECKING:
    import resource

#: Environment variables never passed to candidate code (matched case-insensitively).
SECRET_PATTERNS = (
    "*_TOKEN",
    "*_TOKEN_*",
    "*_KEY",
    "*_KEY_ID",
    "*_SECRET",
    "*_SECRET_*",
    "*SECRET_KEY*",
    "*PASSWORD*",
    "*PASSWD*",
    "*_CREDENTIALS",
    "*_CREDENTIALS_*",
    "*_API_KEY*",
    "AWS_*",
    "AZURE_*",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GOOGLE_CLOUD_*",
    "GCP_*",
    "GCLOUD_*",
    "CLOUDSDK_*",
    "DIGITALOCEAN_*",
    "HEROKU_API_KEY",
    "NPM_TOKEN",
    "TWINE_*",
    "ACTIONS_RUNTIME_*",
    "ACTIONS_ID_TOKEN_*",
    "SSH_AUTH_SOCK",
)

#: Bytes of stdout / stderr kept from each end of a child's output.
OUTPUT_CAP = 64 * 1024

#: children running now (their pid leads their group) and the thread that started each
_RUNNING: dict[int, threading.Thread] = {}
_RUNNING_LOCK = threading.Lock()


def scrub_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return a copy of ``env`` (default: this process's) without credentials."""
    source = os.environ if env is None else env
    return {k: v for k, v in source.items() if not is_secret(k)}


def is_secret(name: str) -> bool:
    upper = name.upper()
    return any(fnmatch.fnmatchcase(upper, pattern) for pattern in SECRET_PATTERNS)


@dataclass(frozen=True)
class RunResult:
    """How a child process ended and what it cost."""

    argv: tuple[str, ...]
    returncode: int | None
    stdout: str
    stderr: str
    duration_s: float
    peak_memory_mb: float | None
    timed_out: bool = False
    output_truncated: bool = False
    #: stdout alone lost its middle to the cap (a stream read from stdout, such as a child's
    #: witness, is whole unless this is set, however much the step wrote to stderr)
    stdout_truncated: bool = False
    #: how the step was run: "boxed", "unboxed" (a box was asked for but could not run) or
    #: "" (no box asked for: our own tools)
    sandbox: str = ""
    #: the box's limits the step ran into ("processes", "memory")
    limits_hit: tuple[str, ...] = ()
    #: what the candidate's code tried in the box (decoys read, attempts); None unboxed
    behaviour: behaviour.Behaviour | None = None

    @property
    def decoys_read(self) -> tuple[str, ...]:
        """The decoy credentials (paths under HOME) something in the box read."""
        return tuple(self.behaviour.decoys_read) if self.behaviour is not None else ()

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    @property
    def signal(self) -> int | None:
        """The signal that killed the child, if it died of one."""
        if self.returncode is not None and self.returncode < 0:
            return -self.returncode
        return None

    def describe(self) -> str:
        """One line on how the child ended: 'exit code 1', 'killed by SIGSEGV', ..."""
        if self.timed_out:
            return f"timed out after {self.duration_s:.1f}s"
        sig = self.signal
        if sig is not None:
            try:
                name = signal.Signals(sig).name
            except ValueError:
                name = f"signal {sig}"
            return f"killed by {name}"
        return f"exit code {self.returncode}"

    def last_error_line(self) -> str:
        """The last non-empty line of stderr (else stdout): usually the exception."""
        for stream in (self.stderr, self.stdout):
            lines = [line.strip() for line in stream.splitlines() if line.strip()]
            if lines:
                return lines[-1]
        return ""


class _CappedReader(threading.Thread):
    """Drain a pipe, keeping the first and last ``cap`` bytes."""

    def __init__(self, stream: IO[bytes], cap: int) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.cap = cap
        self.head = bytearray()
        self.tail = bytearray()
        self.dropped = 0

    def run(self) -> None:
        try:
            while True:
                chunk = self.stream.read1(65536)  # type: ignore[attr-defined]
                if not chunk:
                    break
                room = self.cap - len(self.head)
                if room > 0:
                    self.head += chunk[:room]
                    chunk = chunk[room:]
                if chunk:
                    self.tail += chunk
                    excess = len(self.tail) - self.cap
                    if excess > 0:
                        del self.tail[:excess]
                        self.dropped += excess
        except (OSError, ValueError):
            pass

    def text(self) -> str:
        body = bytes(self.head)
        if self.dropped:
            body += f"\n[... {self.dropped} bytes dropped ...]\n".encode()
        body += bytes(self.tail)
        return body.decode("utf-8", "replace")


def run(
    argv: Sequence[str],
    *,
    timeout: float,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    extra_env: Mapping[str, str] | None = None,
    stdin_data: bytes | None = None,
    cap: int = OUTPUT_CAP,
    started: Callable[[int], None] | None = None,
    box: sandbox.Box | None = None,
    shown: Sequence[str] | None = None,
) -> RunResult:
    """Run ``argv`` with a time limit and a scrubbed environment; never raises for the child.

    ``env`` replaces the (scrubbed) current environment, ``extra_env`` is added on top.
    ``started`` is told the child's pid (its process group id too) once it runs, so a
    caller waiting in another thread can stop the group (:func:`stop_group`).
    A missing executable is reported as exit code 127 with the reason in ``stderr``.
    With ``box``, the child runs in the sandbox (see :mod:`pytest_spike._core.sandbox`);
    under ``--spike-sandbox require`` a box that cannot run raises SpikeError.
    ``shown``: the command the timeline names the step by, where ``argv`` wraps it (a shell).
    """
    named = " ".join((argv if shown is None else shown)[:4])
    with timeline.span("step", stage=box.stage if box else "host", argv=named):
        if box is not None:
            return _run_boxed(
                argv,
                box,
                timeout=timeout,
                cwd=cwd,
                env=env,
                extra_env=extra_env,
                stdin_data=stdin_data,
                cap=cap,
                started=started,
            )
        child_env = scrub_env(env)
        if extra_env:
            child_env.update(extra_env)
        return _run(argv, timeout, cwd, child_env, stdin_data, cap, started)


def _run_boxed(
    argv: Sequence[str],
    box: sandbox.Box,
    *,
    timeout: float,
    cwd: str | os.PathLike[str] | None,
    env: Mapping[str, str] | None,
    extra_env: Mapping[str, str] | None,
    stdin_data: bytes | None,
    cap: int,
    started: Callable[[int], None] | None,
) -> RunResult:
    policy = sandbox.current()
    state = sandbox.require_available(policy)
    where = None if cwd is None else os.fspath(cwd)
    source = env if env is not None else os.environ
    if not state.boxed:
        # Unboxed (no bubblewrap here, or --spike-sandbox off): as before the box, the
        # environment without credentials; every report says the run was not sandboxed.
        child_env = scrub_env(env)
        child_env.update(extra_env or {})
        if not child_env.get("PYTHONPYCACHEPREFIX") and not sandbox.writes_interpreter(argv, box):
            # The box shows the environment read-only: unboxed, Python writes no bytecode
            # into it (pytest's rewritten plugins, a module the build did not compile),
            # else the next run finds its files changed and rebuilds it. A pycache prefix
            # keeps bytecode out of it already.
            child_env["PYTHONDONTWRITEBYTECODE"] = "1"
        if not _found(argv[0], child_env.get("PATH"), where):
            # the launcher would say it in its words; say it as a plain start would.
            return RunResult(tuple(argv), 127, "", f"cannot start {argv[0]!r}: no such file", 0.0, None)
        confinement = sandbox.Confinement(policy.limits)
        try:
            launch, preexec = _confined(argv, confinement)
            result = _run(launch, timeout, where, child_env, stdin_data, cap, started, preexec)
            return dataclasses.replace(result, argv=tuple(argv), sandbox="unboxed")
        finally:
            confinement.close()
    if not _found(argv[0]):
        # bubblewrap would say so in words and exit 1; say it as an unboxed start would.
        return RunResult(tuple(argv), 127, "", f"cannot start {argv[0]!r}: no such file", 0.0, None)
    child_env = sandbox.box_env(source, extra_env, sandbox.BOX_HOME, network=box.network)
    if sandbox.inside():
        # Already in the parent's box (a child pytest): its steps share that box.
        result = _run(argv, timeout, where, child_env, stdin_data, cap, started)
        return dataclasses.replace(result, sandbox="boxed")
    scratch = hostfiles.scratch(hostfiles.scratch_room(policy.limits.memory_mb))
    home = sandbox.make_home(scratch)
    network = box.network or policy.allow_network
    watched = [d for d in sandbox.DECOYS if not (box.network and d in behaviour.INSTALLER_READS)]
    marks, unwatched = behaviour.watch_decoys(home, watched)
    audit = Path(tempfile.mkdtemp(prefix=f"{hostfiles.AUDIT_PREFIX}{os.getpid()}-", dir=scratch))
    writable = [*box.write, "/tmp", sandbox.BOX_HOME, "/dev", str(audit)]
    child_env.update(behaviour.audit_env(str(audit), writable, pidns=True, decoys=list(sandbox.DECOYS)))
    child_env["PYTHONPATH"] = behaviour.python_path(child_env.get("PYTHONPATH"))
    box = dataclasses.replace(box, read=(*box.read, behaviour.BOOT), write=(*box.write, str(audit)))
    confinement = sandbox.Confinement(policy.limits)
    try:
        wrapped = sandbox.wrap(argv, box, cwd=where, home=str(home), policy=policy, env=child_env)
        child_env["PYTEST_SPIKE_READONLY"] = os.pathsep.join(_read_only_binds(wrapped))
        launch, preexec = _confined(wrapped, confinement)
        result = _run(launch, timeout, where, child_env, stdin_data, cap, started, preexec)
        if result.returncode != 0:
            sandbox.confirm(policy)  # a box taken on the parent's word that cannot start raises
        returncode = result.returncode
        if returncode is not None and returncode > 128:
            # bubblewrap exits 128 + N when the step's process died of signal N.
            with contextlib.suppress(ValueError):
                signal.Signals(returncode - 128)
                returncode = 128 - returncode
        # Only the step's cgroup measures the box: bubblewrap's outer process, the child
        # whose rusage wait4 returns, exits before it reaps the box's init, so that rusage
        # is bubblewrap's own few MB. Without a cgroup, no figure rather than that one.
        peak = confinement.peak_memory_mb()
        seen = behaviour.Behaviour(
            box.stage,
            network=network,
            decoys_read=behaviour.decoys_read(home, marks),
            attempts=behaviour.read_attempts(audit),
            unwatched=unwatched,
        )
        behaviour.report(seen)
        return dataclasses.replace(
            result,
            argv=tuple(argv),
            returncode=returncode,
            sandbox="boxed",
            peak_memory_mb=peak,
            limits_hit=tuple(confinement.hit()),
            behaviour=seen,
        )
    finally:
        confinement.close()
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(audit, ignore_errors=True)


def _read_only_binds(wrapped: Sequence[str]) -> list[str]:
    """Where bubblewrap binds read-only (what the audit hooks call a write outside, even
    inside the box's writable /tmp)."""
    end = wrapped.index("--") if "--" in wrapped else len(wrapped)
    return [wrapped[i + 2] for i in range(end - 2) if wrapped[i] == "--ro-bind"]


def _found(program: str, path: str | None = None, cwd: str | None = None) -> bool:
    if os.sep in program:
        return os.access(os.path.join(cwd or "", program), os.X_OK)
    return shutil.which(program, path=path) is not None


def _confined(
    argv: Sequence[str], confinement: sandbox.Confinement
) -> tuple[list[str], Callable[[], None] | None]:
    """The argv and preexec function that start ``argv`` within ``confinement``'s limits: a
    launcher (sh with ulimit or prlimit) where the host has one, so ``subprocess`` may use
    vfork, else a preexec function (a fork of the whole host process)."""
    prefix = None if _WINDOWS else confinement.launcher()
    if prefix is None:
        return list(argv), confinement.preexec
    return [*prefix, *argv], None


def _run(
    argv: Sequence[str],
    timeout: float,
    cwd: str | os.PathLike[str] | None,
    child_env: Mapping[str, str],
    stdin_data: bytes | None,
    cap: int,
    started: Callable[[int], None] | None,
    preexec: Callable[[], None] | None = None,
) -> RunResult:
    start = time.perf_counter()
    options = _group_options()
    if preexec is not None and not _WINDOWS:
        options["preexec_fn"] = preexec
    try:
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(child_env),
            stdin=subprocess.PIPE if stdin_data is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            **options,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return RunResult(tuple(argv), 127, "", f"cannot start {argv[0]!r}: {exc}", 0.0, None)
    assert proc.stdout is not None and proc.stderr is not None
    with _RUNNING_LOCK:
        _RUNNING[proc.pid] = threading.current_thread()
    try:
        return _watch(proc, argv, start, timeout, stdin_data, cap, started)
    finally:
        with _RUNNING_LOCK:
            _RUNNING.pop(proc.pid, None)


def _watch(
    proc: subprocess.Popen[bytes],
    argv: Sequence[str],
    start: float,
    timeout: float,
    stdin_data: bytes | None,
    cap: int,
    started: Callable[[int], None] | None,
) -> RunResult:
    """Feed, read and wait for a started child (see :func:`_run`)."""
    assert proc.stdout is not None and proc.stderr is not None
    if started is not None:
        started(proc.pid)
    readers = [_CappedReader(proc.stdout, cap), _CappedReader(proc.stderr, cap)]
    for reader in readers:
        reader.start()
    if stdin_data is not None and proc.stdin is not None:
        try:
            proc.stdin.write(stdin_data)
            proc.stdin.close()
        except OSError:
            pass
    try:
        status, rusage, timed_out = _wait(proc, start + timeout)
    except BaseException:
        # Ctrl-C, SIGTERM turned into an interrupt, or a time box ringing while we wait:
        # the child is in a session of its own, so nobody else would ever stop it.
        _kill_group(proc.pid)
        proc.wait()
        raise
    duration = time.perf_counter() - start
    _kill_group(proc.pid)  # children that outlived the leader hold our pipes open
    for reader in readers:
        reader.join(timeout=5)
    proc.returncode = status
    peak = None
    if rusage is not None:
        peak = peak_rss_mb(rusage.ru_maxrss)
    return RunResult(
        argv=tuple(argv),
        returncode=status,
        stdout=readers[0].text(),
        stderr=readers[1].text(),
        duration_s=duration,
        peak_memory_mb=peak,
        timed_out=timed_out,
        output_truncated=any(r.dropped for r in readers),
        stdout_truncated=readers[0].dropped > 0,
    )


def _wait(
    proc: subprocess.Popen[bytes], deadline: float
) -> tuple[int | None, resource.struct_rusage | None, bool]:
    """Wait for the child, collecting its own rusage; kill its group at the deadline."""
    if not hasattr(os, "wait4"):  # Windows: no rusage of a child, so no peak memory either
        # Short waits, not one long one: a time box's watchdog raises between them.
        while True:
            left = deadline - time.perf_counter()
            if left <= 0:
                _kill_group(proc.pid)
                return proc.wait(), None, True
            try:
                return proc.wait(timeout=min(left, 0.1)), None, False
            except subprocess.TimeoutExpired:
                pass
    ended = _end_watch(proc.pid)
    delay = 0.001
    timed_out = False
    try:
        while True:
            pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                return os.waitstatus_to_exitcode(status), rusage, timed_out
            if not timed_out and time.perf_counter() >= deadline:
                timed_out = True
                _kill_group(proc.pid)
            if ended is not None:
                # Woken the moment the child ends (sleeps of up to 20 ms cost that much per
                # step); still short waits, so a time box's watchdog raises between them.
                left_ms = int((deadline - time.perf_counter()) * 1000)
                ended.poll(50 if timed_out else max(1, min(50, left_ms)))
                continue
            time.sleep(delay)
            delay = min(delay * 2, 0.02)
    finally:
        if ended is not None:
            ended.close()


class _PidWatch:
    """A pidfd (Linux 5.3+): readable once its process has ended."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.poller = select.poll()
        self.poller.register(fd, select.POLLIN)

    def poll(self, ms: int) -> None:
        self.poller.poll(ms)

    def close(self) -> None:
        os.close(self.fd)


def _end_watch(pid: int) -> _PidWatch | None:
    """A watch on the child's end, or None (no pidfd here: the caller polls with sleeps)."""
    opener = getattr(os, "pidfd_open", None)
    if opener is None or not hasattr(select, "poll"):
        return None
    try:
        fd = opener(pid)
    except OSError:  # an older kernel, or a seccomp filter that refuses it
        return None
    return _PidWatch(fd)


#: Windows has no sessions or process groups to kill with one signal: a child starts in a new
#: process group (so a Ctrl-C meant for us doesn't reach it, nor ours it) and is ended with its
#: tree by ``taskkill``, which every Windows has. Tests simulate Windows by setting these two.
_WINDOWS = sys.platform == "win32"
_TREE_KILL: Sequence[str] = ("taskkill",)


def _group_options() -> dict[str, Any]:
    """Popen options that put the child in a group of its own, to be killed as a whole."""
    if _WINDOWS:
        return {"creationflags": getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0x200)}
    return {"start_new_session": True}


def stop_started_by(threads: Collection[threading.Thread]) -> int:
    """Kill every running child (its whole group) that one of ``threads`` started; how many.

    For work done in background threads that the session no longer waits for: those threads
    are daemons, and an unboxed child leads a session of its own, so nothing else would
    stop it when pytest-spike ends.
    """
    with _RUNNING_LOCK:
        pids = [pid for pid, thread in _RUNNING.items() if thread in threads]
    for pid in pids:
        _kill_group(pid)
    return len(pids)


def stop_group(pid: int, sig: int = signal.SIGTERM) -> None:
    """Send ``sig`` to the process group a :func:`run` child leads (gone already: nothing)."""
    if _WINDOWS:  # no groups to signal: the tree is killed instead
        _kill_group(pid)
        return
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _kill_group(pid: int) -> None:
    """Kill the child and everything it started: its process group (POSIX), its tree (Windows).

    On Windows the tree is found through parent ids, so a grandchild whose parent already
    ended is out of reach (a job object would hold it; this is the limit of ``taskkill``).
    """
    if _WINDOWS:
        try:
            subprocess.run(
                [*_TREE_KILL, "/T", "/F", "/PID", str(pid)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            try:
                os.kill(pid, signal.SIGTERM)  # Windows: TerminateProcess, the leader alone
            except OSError:
                pass
        return
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def peak_rss_mb(maxrss: int | None = None) -> float:
    """Peak resident memory in MB of a ``ru_maxrss`` value, by default this process's so far."""
    if maxrss is None:
        try:
            import resource
        except ImportError:  # Windows
            return _windows_peak_mb()
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # ru_maxrss is in kilobytes on Linux and in bytes on macOS.
    return maxrss / (1024 * 1024) if sys.platform == "darwin" else maxrss / 1024


def _windows_peak_mb() -> float:
    """This process's peak working set in MB on Windows (``GetProcessMemoryInfo``); 0.0 elsewhere."""
    try:
        import ctypes
        from ctypes import wintypes

        class Counters(ctypes.Structure):
            _fields_ = [
                ("cb", wintypes.DWORD),
                ("PageFaultCount", wintypes.DWORD),
                ("PeakWorkingSetSize", ctypes.c_size_t),
                ("WorkingSetSize", ctypes.c_size_t),
                ("QuotaPeakPagedPoolUsage", ctypes.c_size_t),
                ("QuotaPagedPoolUsage", ctypes.c_size_t),
                ("QuotaPeakNonPagedPoolUsage", ctypes.c_size_t),
                ("QuotaNonPagedPoolUsage", ctypes.c_size_t),
                ("PagefileUsage", ctypes.c_size_t),
                ("PeakPagefileUsage", ctypes.c_size_t),
            ]

        counters = Counters()
        counters.cb = ctypes.sizeof(Counters)
        windll = ctypes.WinDLL("psapi")  # type: ignore[attr-defined,unused-ignore]
        kernel = ctypes.WinDLL("kernel32")  # type: ignore[attr-defined,unused-ignore]
        process = kernel.GetCurrentProcess()
        if not windll.GetProcessMemoryInfo(process, ctypes.byref(counters), counters.cb):
            return 0.0
        return float(counters.PeakWorkingSetSize) / (1024 * 1024)
    except (ImportError, AttributeError, OSError):
        return 0.0


def last_json_line(result: RunResult, what: str) -> Any:
    """The JSON value a child printed on its last non-empty stdout line.

    Children may print warnings or progress first; the answer comes last. Raises SpikeError
    of one line, starting with ``what`` (who was asked), when there is no such line.
    """
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    if lines:
        try:
            return json.loads(lines[-1])
        except ValueError:
            pass
    said = lines[-1].strip() if lines else result.last_error_line() or "no output"
    raise SpikeError(f"{what}: no JSON answer ({result.describe()}); it said {said[:200]!r}")


def python_argv(python: str, code: str, *args: str) -> list[str]:
    """The argv that runs ``code`` with ``python`` without the cwd shadowing imports."""
    return [python, "-c", code, *args]
