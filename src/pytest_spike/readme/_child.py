"""The program that runs README blocks inside the candidate's interpreter.

``pytest_spike.readme.run`` sends this file's source to ``python -c`` in the target
environment, so it must stay standard library only and Python 3.9 compatible, and it never
imports pytest_spike. Importing it (for tests) runs nothing.

Protocol: the job is one JSON object on stdin (``limit``, ``grace``, ``argv0``, ``blocks``,
``network``: whether to allow it, ``imports``: modules the README uses without importing,
``slow_limit``: how long a block whose CPU time keeps growing may run, ``apart``: each
block alone, see below); reading it leaves stdin at EOF, so blocks that read stdin get EOF
rather than hang. One JSON line per finished block goes to the original stdout; what
blocks print goes to stderr.
A failed or timed-out block's line carries ``facts``: what the parent needs to say whose
fault it was (the exception's kind and subject, where it was raised, whether the network
was refused, whether the block listened on a socket or was still printing).

Around each result the same stream carries events the host checks the result against
(``readme.witness``): ``{"event": "start", "index": N}`` before the block runs and
``{"event": "end", ...}`` with its status after it returned, written with ``os.write`` on a
descriptor duplicated before any candidate code ran; a block that did not end ok also
leaves ``RAISED_MARK`` and its traceback on stderr. A result written from inside the block
(candidate code that found the reporter) comes before the block's end event, or a second
end event follows it: the host sees the contradiction.

With ``apart``, each block runs alone, as in an interpreter of its own: a process forked
from this one before any block ran here, with a fresh ``__main__``, the README's
assumed imports made anew, and a folder of its own (``block-N`` in the working folder);
what it left running in this process group is ended after it. A fork that ended without
its result (it crashed, or called ``os._exit``) ends this process the same way, so the
parent sees what it would have seen of an interpreter of its own.
"""

from __future__ import annotations

import ast
import builtins
import errno
import importlib
import importlib.util
import io
import ipaddress
import json
import os
import re
import signal
import socket
import sys
import threading
import time
import traceback
import types
from collections.abc import Iterator
from contextlib import redirect_stdout
from typing import Any, Callable

_REAL_CONNECT = socket.socket.connect
_REAL_CONNECT_EX = socket.socket.connect_ex
_REAL_GETADDRINFO = socket.getaddrinfo
_REAL_LISTEN = socket.socket.listen
# Bound before any candidate code runs: a block that replaces os.write does not reach these.
_WRITE = os.write
_DUMPS = json.dumps
#: What starts the line on stderr that says a block did not end ok (its traceback follows).
RAISED_MARK = "@@pytest-spike-readme-raised@@"
#: Longest error text sent back (an exception's message may hold a whole document).
ERROR_CHARS = 2000


class Activity:
    """What the running block did that the parent cannot see: reset when a block starts."""

    refused = 0
    listening = False
    last_output: float | None = None
    started = 0.0
    #: the traceback of what the block raised ("" when it raised nothing)
    traceback = ""

    @classmethod
    def reset(cls) -> None:
        cls.refused, cls.listening, cls.last_output = 0, False, None
        cls.started = time.perf_counter()
        cls.traceback = ""

    @classmethod
    def raised(cls, exc: BaseException) -> None:
        if not cls.traceback:
            cls.traceback = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[
                -ERROR_CHARS:
            ]

    @classmethod
    def output(cls) -> None:
        cls.last_output = time.perf_counter()


class BlockTimeout(BaseException):
    """Raised into a block by the alarm; a BaseException so ``except Exception`` misses it."""


#: Share of one core a block must have used since the last alarm to count as computing. A
#: blocked process (a deadlock, a sleep, a wait on a socket) uses next to none; on a loaded
#: machine (load 13 on 2 cores, measured) a computing one gets little more than a tenth.
BUSY_SHARE = 0.05
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def group_cpu_s() -> float:
    """CPU seconds used so far by this process group (this process, its threads, and the
    workers it started), from ``/proc``; this process alone where there is no ``/proc``."""
    try:
        # After the command: state, ppid, pgrp, ... utime (12th), stime, cutime, cstime.
        total = sum(int(x) for _, fields in _group(os.getpgrp()) for x in fields[11:15])
        return total / _TICKS
    except (OSError, AttributeError, ValueError, IndexError):
        times = os.times()
        return times.user + times.system + times.children_user + times.children_system


def _stat(pid: int | str) -> list[bytes] | None:
    """The fields of ``/proc/<pid>/stat`` after the command (state, parent, process group,
    ...); None when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None  # ended while we looked


def _group(group: int) -> Iterator[tuple[int, list[bytes]]]:
    """The processes of process group ``group``, each with its :func:`_stat` fields."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(entry)
            if fields is not None and int(fields[2]) == group:
                yield int(entry), fields


class Clock:
    """The running block's time: an alarm every ``limit`` seconds; while the block's CPU time
    keeps growing it is working, not hung, and may go on until ``slow_limit``."""

    limit = 10.0
    slow_limit = 10.0
    started = 0.0
    checked_at = 0.0
    cpu_at = 0.0
    #: CPU seconds used since the block started, and whether the last check found it busy
    cpu_s = 0.0
    busy = False
    #: when the current alarm fires (the watchdog waits for it)
    deadline = 0.0

    @classmethod
    def start(cls, limit: float, slow_limit: float) -> None:
        cls.limit, cls.slow_limit = limit, max(limit, slow_limit)
        cls.started = cls.checked_at = time.perf_counter()
        cls.cpu_at, cls.cpu_s, cls.busy = group_cpu_s(), 0.0, False
        cls.deadline = cls.started + limit

    @classmethod
    def extend(cls) -> bool:
        """At an alarm: whether the block keeps its time (it is computing); re-arms the alarm."""
        now, cpu = time.perf_counter(), group_cpu_s()
        cls.busy = cpu - cls.cpu_at >= BUSY_SHARE * (now - cls.checked_at)
        cls.cpu_s += cpu - cls.cpu_at
        cls.checked_at, cls.cpu_at = now, cpu
        remaining = cls.started + cls.slow_limit - now
        if not cls.busy or remaining < 0.05 or not hasattr(signal, "setitimer"):
            return False
        step = min(cls.limit, remaining)
        cls.deadline = now + step
        signal.setitimer(signal.ITIMER_REAL, step)
        return True

    @classmethod
    def elapsed(cls) -> float:
        return time.perf_counter() - cls.started


def _address(host: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    try:
        return ipaddress.ip_address(str(host).strip("[]").split("%")[0])
    except ValueError:
        return None


def is_local(host: Any) -> bool:
    """Whether ``host`` names this machine's loopback interface (None means any: a bind)."""
    if host is None or str(host).lower() in ("localhost", "localhost.localdomain"):
        return True
    address = _address(host)
    return address is not None and address.is_loopback


def _refused(what: Any) -> str:
    return f"network access refused by pytest-spike (README example): {what!r}"


def _connect(self: socket.socket, address: Any) -> None:
    if isinstance(address, tuple) and not is_local(address[0]):
        Activity.refused += 1
        raise ConnectionRefusedError(errno.ECONNREFUSED, _refused(address))
    _REAL_CONNECT(self, address)


def _connect_ex(self: socket.socket, address: Any) -> int:
    if isinstance(address, tuple) and not is_local(address[0]):
        Activity.refused += 1
        return errno.ECONNREFUSED
    return _REAL_CONNECT_EX(self, address)


def _getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    # An address literal needs no lookup: connect() refuses it with a clearer error.
    if not is_local(host) and _address(host) is None:
        Activity.refused += 1
        raise socket.gaierror(socket.EAI_NONAME, _refused(host))
    return _REAL_GETADDRINFO(host, *args, **kwargs)


def _listen(self: socket.socket, *args: Any) -> None:
    Activity.listening = True  # a server: running until stopped is its design
    _REAL_LISTEN(self, *args)


def refuse_network() -> None:
    """Refuse connections and name lookups beyond loopback: a courtesy, not a sandbox."""
    socket.socket.connect = _connect  # type: ignore[method-assign,assignment]
    socket.socket.connect_ex = _connect_ex  # type: ignore[method-assign,assignment]
    socket.getaddrinfo = _getaddrinfo


class Tracked:
    """A stream that notes when a block last printed (a progress bar is alive, not hung)."""

    def __init__(self, stream: Any) -> None:
        self.__dict__["_stream"] = stream

    def write(self, text: str) -> int:
        Activity.output()
        return self._stream.write(text)  # type: ignore[no-any-return]

    def writelines(self, lines: Any) -> None:
        Activity.output()
        self._stream.writelines(lines)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._stream, name, value)


class Capture(io.StringIO):
    """What a ``>>>`` example prints, noting the time of each write."""

    def write(self, text: str) -> int:
        Activity.output()
        return super().write(text)


def last_line(exc: BaseException) -> str:
    lines = traceback.format_exception_only(type(exc), exc)
    text = lines[-1].strip() if lines else type(exc).__name__
    return text[:ERROR_CHARS]


_UNDEFINED = re.compile(r"name '(\w+)' is not defined")


def facts(exc: BaseException, phase: str = "run") -> dict[str, Any]:
    """The parts of an exception that say whose fault it is (see ``readme.verdict``)."""
    frames = traceback.extract_tb(exc.__traceback__)
    readme = [f for f in frames if f.filename == "README"]
    found: dict[str, Any] = {
        "type": type(exc).__name__,
        "phase": phase,
        "line": readme[-1].lineno if readme else None,
        "in_readme": bool(frames) and frames[-1].filename == "README",
        "refused": Activity.refused,
    }
    if isinstance(exc, NameError):
        name = getattr(exc, "name", None)
        match = _UNDEFINED.search(str(exc))
        found["name"] = name or (match.group(1) if match else None)
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        top = exc.name.split(".")[0]
        try:
            installed = importlib.util.find_spec(top) is not None
        except BaseException:  # a broken package's finder may raise anything
            installed = False
        found.update(module=exc.name, installed=installed)
    if isinstance(exc, OSError) and exc.filename is not None:
        name = os.fsdecode(exc.filename) if isinstance(exc.filename, (str, bytes)) else str(exc.filename)
        if os.path.isabs(name) and name.startswith(os.getcwd() + os.sep):
            name = os.path.relpath(name)  # the block's fresh folder is our doing
        found.update(filename=name, errno=exc.errno)
    if isinstance(exc, SystemExit):
        found["code"] = exc.code if isinstance(exc.code, (int, type(None))) else str(exc.code)[:200]
    return found


def liveness(frame: Any = None, tb: Any = None) -> dict[str, Any]:
    """Facts about a block that ran out of time: was it serving, printing, waiting?"""
    now = time.perf_counter()
    stack = traceback.extract_tb(tb) if tb is not None else traceback.extract_stack(frame)
    readme = [f for f in stack if f.filename == "README"]
    return {
        "type": "timeout",
        "refused": Activity.refused,
        "listening": Activity.listening,
        "quiet_s": None if Activity.last_output is None else round(now - Activity.last_output, 3),
        "frames": [f.name for f in stack][-12:],
        "line": readme[-1].lineno if readme else None,
        # Still computing when its time ran out: its CPU time grew up to the last alarm.
        "computing": Clock.busy,
        "cpu_s": round(Clock.cpu_s, 3),
        "elapsed_s": round(Clock.elapsed(), 3),
        "slow_limit": Clock.slow_limit,
    }


def parse(source: str, line: int) -> ast.Module:
    """Parse with line numbers that point into the README."""
    tree = ast.parse(source, "README", "exec")
    ast.increment_lineno(tree, line - 1)
    return tree


def output_matches(want: str, got: str) -> bool:
    """doctest's NORMALIZE_WHITESPACE and ELLIPSIS, with ``<BLANKLINE>`` understood."""
    want = " ".join(want.replace("<BLANKLINE>", "").split())
    got = " ".join(got.split())
    if want == got:
        return True
    parts = want.split("...")
    if len(parts) == 1 or not got.startswith(parts[0]) or not got.endswith(parts[-1]):
        return False
    pos, end = len(parts[0]), len(got) - len(parts[-1])
    for part in parts[1:-1]:
        pos = got.find(part, pos, end)
        if pos < 0:
            return False
        pos += len(part)
    return pos <= end


def _first(text: str) -> str:
    lines = [x.strip() for x in text.splitlines() if x.strip()]
    return lines[0][:80] if lines else ""


def shows(example: dict[str, Any], raised: BaseException) -> bool:
    """Whether the example's output shows ``raised``: by its class (or a base) or its message.

    orjson's README shows ``JSONEncodeError: Type is not JSON serializable: ...`` where
    ``orjson.JSONEncodeError`` is another name of ``TypeError``: the message tells.
    """
    name = example["exception"]
    if not name:
        return False
    if name in {cls.__name__ for cls in type(raised).__mro__}:
        return True
    lines = [line.strip() for line in example["want"].splitlines() if line.strip()]
    message = " ".join(str(raised).split())
    for line in {lines[0], lines[-1]}:
        shown, sep, text = line.partition(":")
        if sep and shown.split(".")[-1] == name and " ".join(text.split()) == message:
            return True
    return False


def run_session(examples: list[dict[str, Any]], namespace: dict[str, Any]) -> dict[str, Any]:
    """Run ``>>>`` examples as a REPL would; ``clean`` and ``matched`` are kept apart."""
    result: dict[str, Any] = {"clean": True, "matched": True, "error": "", "mismatch": ""}
    for example in examples:
        out, raised, phase = Capture(), None, "compile"
        try:
            body = parse(example["source"], example["line"]).body
            code = compile(ast.Interactive(body=body), "README", "single")
            phase = "run"
            with redirect_stdout(out):
                exec(code, namespace)
        except BlockTimeout:
            raise
        except BaseException as exc:  # the README's code may raise anything
            raised = exc
        if raised is not None and shows(example, raised):
            continue
        if raised is not None:
            result["clean"] = result["matched"] = False
            Activity.raised(raised)
            if not result["error"]:
                result["error"] = last_line(raised)
                result["facts"] = facts(raised, phase)
                result["facts"]["line"] = result["facts"]["line"] or example["line"]
        elif example["exception"] or (
            example["want"].strip() and not output_matches(example["want"], out.getvalue())
        ):
            result["matched"] = False
            shown = f"{example['exception']} raised" if example["exception"] else example["want"]
            result["mismatch"] = result["mismatch"] or (
                f"line {example['line']}: expected {_first(shown)!r}, got {_first(out.getvalue())!r}"
            )
    result["status"] = "ok" if result["clean"] else "failed"
    return result


def run_block(
    block: dict[str, Any], namespace: dict[str, Any], limit: float, slow_limit: float = 0.0
) -> dict[str, Any]:
    """Run one block under an alarm of ``limit`` seconds, extended up to ``slow_limit`` while
    its CPU time keeps growing (see :class:`Clock`); never raises."""
    has_alarm = hasattr(signal, "setitimer")
    result: dict[str, Any] = {"status": "ok", "error": ""}
    phase = "compile"
    Activity.reset()
    Clock.start(limit, slow_limit)
    try:
        try:
            if has_alarm:
                signal.setitimer(signal.ITIMER_REAL, limit)
            if block["kind"] == "pycon":
                phase = "run"
                result = run_session(block["examples"], namespace)
            else:
                code = compile(parse(block["code"], block["line"]), "README", "exec")
                phase = "run"
                exec(code, namespace)
        finally:
            if has_alarm:
                signal.setitimer(signal.ITIMER_REAL, 0)
    except BlockTimeout as exc:
        found = liveness(tb=exc.__traceback__)
        if found["computing"]:
            error = f"slow: still computing after {found['elapsed_s']:.0f}s"
        elif found["elapsed_s"] > limit * 1.5:
            error = f"timed out after {found['elapsed_s']:.0f}s (computed, then made no progress)"
        else:
            error = f"timed out after {limit:g}s"
        result = {"status": "timeout", "error": error, "clean": False, "facts": found}
    except SystemExit as exc:
        if exc.code not in (None, 0):
            Activity.raised(exc)
            result = {"status": "failed", "error": f"SystemExit: {exc.code}", "facts": facts(exc, phase)}
    except BaseException as exc:  # the README's code may raise anything
        Activity.raised(exc)
        result = {"status": "failed", "error": last_line(exc), "facts": facts(exc, phase)}
    return result


def write_all(fd: int, data: bytes) -> None:
    """Write ``data`` whole to ``fd`` (a pipe may take it in parts); a closed one is ignored."""
    view = memoryview(data)
    try:
        while view:
            view = view[_WRITE(fd, view) :]
    except OSError:
        pass


class Reporter:
    """Writes the event stream and one result per block, once: the block's own or the
    watchdog's.

    ``start`` writes the block's start event; ``finish`` its end event and then its result,
    both after the block returned; ``expire`` is the watchdog's: it writes both only if the
    block has not finished, and ends the process holding the lock, so no end event of the
    main thread can follow its result. Results and events go to ``fd`` (the original stdout,
    duplicated before any block ran) in one ``os.write`` each; ``err`` (the original stderr)
    gets ``RAISED_MARK`` and the traceback of a block that did not end ok.
    """

    def __init__(self, fd: int, err: int = -1) -> None:
        self.fd = fd
        self.err = err
        self.lock = threading.Lock()
        self.current: int | None = None
        #: where a forked block's process says it reported (-1: not a fork)
        self.said = -1

    def _line(self, data: dict[str, Any]) -> None:
        write_all(self.fd, (_DUMPS(data) + "\n").encode("utf-8"))

    def start(self, index: int) -> None:
        with self.lock:
            self.current = index
            self._line({"event": "start", "index": index})

    def finish(self, index: int, result: dict[str, Any], trace: str = "") -> bool:
        """The main thread's end of a block: the end event always, the result if not given."""
        with self.lock:
            self._end(index, result, trace)
            return self._result(index, result)

    def expire(self, index: int, result: dict[str, Any]) -> None:
        """The watchdog's end of a block that swallowed its alarm: report it, end the process."""
        with self.lock:
            if self.current != index:
                return
            self._end(index, result, "")
            self._result(index, result)
            os._exit(124)

    def _end(self, index: int, result: dict[str, Any], trace: str) -> None:
        status = str(result.get("status"))
        self._line({"event": "end", "index": index, "status": status, "error": result.get("error", "")})
        if status != "ok" and self.err >= 0:
            said = _DUMPS({"index": index, "status": status, "error": result.get("error", "")})
            write_all(self.err, f"\n{RAISED_MARK}{said}\n{trace}".encode("utf-8", "replace"))

    def _result(self, index: int, result: dict[str, Any]) -> bool:
        if self.current != index:
            return False
        self.current = None
        self._line(dict(result, index=index))
        if self.said >= 0:
            write_all(self.said, b".")  # a forked block's: its parent goes on (see run_apart)
        return True


def _watchdog(reporter: Reporter, index: int, started: float, grace: float) -> Callable[[], None]:
    main_thread = threading.get_ident()

    def fire() -> None:
        if time.perf_counter() < Clock.deadline + grace - 0.01:
            # The block is computing and its alarm was put off: wait for the new one.
            wait = Clock.deadline + grace - time.perf_counter()
            later = threading.Timer(wait, fire)
            later.daemon = True
            later.start()
            return
        # The block swallowed the alarm or holds it off: report it and end the process.
        error = f"did not stop within {grace:g}s after its time limit"
        result = {
            "status": "timeout",
            "error": error,
            "duration": time.perf_counter() - started,
            "ended": True,  # tells the parent to carry on after this block in a new process
            "facts": liveness(frame=sys._current_frames().get(main_thread)),
        }
        reporter.expire(index, result)

    return fire


def assume_import(name: str, namespace: dict[str, Any], limit: float) -> None:
    """Import ``name`` for a README that uses its module without importing it.

    ``regex.match(...)`` in the regex README assumes the reader imported regex, as a
    doctest's globals would. A failed import shows in the blocks as a NameError.
    """
    has_alarm = hasattr(signal, "setitimer")
    try:
        try:
            if has_alarm:
                signal.setitimer(signal.ITIMER_REAL, limit)
            namespace[name] = importlib.import_module(name)
        finally:
            if has_alarm:
                signal.setitimer(signal.ITIMER_REAL, 0)
    except BaseException:  # the candidate's import may raise or hang: the blocks will say
        pass


def _on_alarm(signum: int, frame: Any) -> None:
    if not Clock.extend():
        raise BlockTimeout()


def main() -> None:
    """Run the job; an error of this program itself is reported as ``spike_error``."""
    out = 1
    try:
        job = json.loads(sys.stdin.read())
        sys.stdout.flush()
        out, err = os.dup(1), os.dup(2)
        os.dup2(2, 1)  # what blocks print goes to stderr; results alone to the old stdout
        run_job(job, Reporter(out, err))
    except BaseException as exc:  # run_block catches the blocks' errors: this one is ours
        try:
            write_all(out, (json.dumps({"spike_error": last_line(exc)}) + "\n").encode("utf-8"))
        finally:
            os._exit(70)


def run_job(job: dict[str, Any], reporter: Reporter) -> None:
    sys.argv = [job["argv0"]]
    sys.stdout, sys.stderr = Tracked(sys.stdout), Tracked(sys.stderr)
    socket.socket.listen = _listen  # type: ignore[method-assign,assignment]
    if not job.get("network"):
        refuse_network()
    if hasattr(signal, "setitimer"):
        signal.signal(signal.SIGALRM, _on_alarm)
    if job.get("apart") and hasattr(os, "fork"):
        for block in job["blocks"]:
            run_apart(job, block, reporter)
    else:
        run_in_order(job, job["blocks"], reporter)
    _flush()
    os._exit(0)  # threads a block left running must not keep the process alive


def run_in_order(job: dict[str, Any], blocks: list[dict[str, Any]], reporter: Reporter) -> None:
    """Run ``blocks`` one after another in one fresh ``__main__`` namespace."""
    limit, grace = float(job["limit"]), float(job["grace"])
    slow_limit = float(job.get("slow_limit") or limit)
    module = types.ModuleType("__main__")
    module.__dict__["__builtins__"] = builtins
    sys.modules["__main__"] = module  # so pickle and friends find the blocks' classes
    for name in job.get("imports", ()):
        assume_import(name, module.__dict__, limit)
    for block in blocks:
        index, started = block["index"], time.perf_counter()
        dog = threading.Timer(limit + grace, _watchdog(reporter, index, started, grace))
        dog.daemon = True
        dog.start()
        reporter.start(index)  # from here until its end event, only the block's code runs
        result = run_block(block, module.__dict__, limit, slow_limit)
        dog.cancel()
        reporter.finish(index, dict(result, duration=time.perf_counter() - started), Activity.traceback)


def run_apart(job: dict[str, Any], block: dict[str, Any], reporter: Reporter) -> None:
    """Run ``block`` alone in a fork of this process (which has run no block).

    The fork says it reported through a pipe of its own; one that ended without saying so
    ends this process with its exit status or signal, after which nothing more runs here.
    """
    folder = f"block-{block['index']}"
    os.mkdir(folder)
    said, say = os.pipe()
    _flush()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(said)
            os.chdir(folder)
            reporter.said = say
            run_in_order(job, [block], reporter)
            _flush()
        except BaseException as exc:  # run_block catches the block's errors: this one is ours
            write_all(reporter.fd, (_DUMPS({"spike_error": last_line(exc)}) + "\n").encode("utf-8"))
            code = 70
        finally:
            os._exit(code)
    os.close(say)
    status = os.waitpid(pid, 0)[1]
    end_group_but_me()
    os.set_blocking(said, False)
    try:
        reported = os.read(said, 1) == b"."
    except OSError:
        reported = False
    os.close(said)
    if reported:
        return
    _flush()
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            signal.signal(number, signal.SIG_DFL)
        except (OSError, ValueError):
            pass  # SIGKILL, SIGSTOP: no handler to reset
        os.kill(os.getpid(), number)
        os._exit(128 + number)  # a signal this process does not die of
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 70)


def end_group_but_me() -> None:
    """Kill what a forked block left running in this process group: every member but this
    process and its ancestors (in the box the group is its init's)."""
    try:
        spared = {os.getpid()}
        pid = os.getppid()
        while pid > 0 and pid not in spared:
            spared.add(pid)
            fields = _stat(pid)
            pid = int(fields[1]) if fields else 0
        for member, _ in _group(os.getpgrp()):
            if member not in spared:
                try:
                    os.kill(member, signal.SIGKILL)
                except OSError:
                    pass  # ended while we looked
    except (OSError, ValueError, IndexError):
        pass


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # a block may have closed or replaced them
            pass


if __name__ == "__main__":
    main()
