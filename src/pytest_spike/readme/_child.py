"""The program that runs README blocks inside the candidate's interpreter.

``pytest_spike.readme.run`` sends this file's source to ``python -c`` in the target
environment, so it must stay standard library only and Python 3.9 compatible, and it never
imports pytest_spike. Importing it (for tests) runs nothing.

Protocol: the job is one JSON object on stdin (``limit``, ``grace``, ``argv0``, ``blocks``);
reading it leaves stdin at EOF, so blocks that read stdin get EOF rather than hang. One
JSON line per finished block goes to the original stdout; what blocks print goes to stderr.
"""

from __future__ import annotations

import ast
import builtins
import errno
import io
import ipaddress
import json
import os
import signal
import socket
import sys
import threading
import time
import traceback
import types
from contextlib import redirect_stdout
from typing import IO, Any, Callable

_REAL_CONNECT = socket.socket.connect
_REAL_CONNECT_EX = socket.socket.connect_ex
_REAL_GETADDRINFO = socket.getaddrinfo


class BlockTimeout(BaseException):
    """Raised into a block by the alarm; a BaseException so ``except Exception`` misses it."""


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
        raise ConnectionRefusedError(errno.ECONNREFUSED, _refused(address))
    _REAL_CONNECT(self, address)


def _connect_ex(self: socket.socket, address: Any) -> int:
    if isinstance(address, tuple) and not is_local(address[0]):
        return errno.ECONNREFUSED
    return _REAL_CONNECT_EX(self, address)


def _getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    # An address literal needs no lookup: connect() refuses it with a clearer error.
    if not is_local(host) and _address(host) is None:
        raise socket.gaierror(socket.EAI_NONAME, _refused(host))
    return _REAL_GETADDRINFO(host, *args, **kwargs)


def refuse_network() -> None:
    """Refuse connections and name lookups beyond loopback: a courtesy, not a sandbox."""
    socket.socket.connect = _connect  # type: ignore[method-assign,assignment]
    socket.socket.connect_ex = _connect_ex  # type: ignore[method-assign,assignment]
    socket.getaddrinfo = _getaddrinfo


def last_line(exc: BaseException) -> str:
    lines = traceback.format_exception_only(type(exc), exc)
    return lines[-1].strip() if lines else type(exc).__name__


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


def run_session(examples: list[dict[str, Any]], namespace: dict[str, Any]) -> dict[str, Any]:
    """Run ``>>>`` examples as a REPL would; ``clean`` and ``matched`` are kept apart."""
    result: dict[str, Any] = {"clean": True, "matched": True, "error": "", "mismatch": ""}
    for example in examples:
        out, raised = io.StringIO(), None
        try:
            body = parse(example["source"], example["line"]).body
            code = compile(ast.Interactive(body=body), "README", "single")
            with redirect_stdout(out):
                exec(code, namespace)
        except BlockTimeout:
            raise
        except BaseException as exc:  # the README's code may raise anything
            raised = exc
        if raised is not None and type(raised).__name__ == example["exception"]:
            continue
        if raised is not None:
            result["clean"] = result["matched"] = False
            result["error"] = result["error"] or last_line(raised)
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


def run_block(block: dict[str, Any], namespace: dict[str, Any], limit: float) -> dict[str, Any]:
    """Run one block under an alarm of ``limit`` seconds; never raises."""
    has_alarm = hasattr(signal, "setitimer")
    result: dict[str, Any] = {"status": "ok", "error": ""}
    try:
        try:
            if has_alarm:
                signal.setitimer(signal.ITIMER_REAL, limit)
            if block["kind"] == "pycon":
                result = run_session(block["examples"], namespace)
            else:
                tree = parse(block["code"], block["line"])
                exec(compile(tree, "README", "exec"), namespace)
        finally:
            if has_alarm:
                signal.setitimer(signal.ITIMER_REAL, 0)
    except BlockTimeout:
        result = {"status": "timeout", "error": f"timed out after {limit:g}s", "clean": False}
    except SystemExit as exc:
        if exc.code not in (None, 0):
            result = {"status": "failed", "error": f"SystemExit: {exc.code}"}
    except BaseException as exc:  # the README's code may raise anything
        result = {"status": "failed", "error": last_line(exc)}
    return result


class Reporter:
    """Writes one result per block, once: either the block's own or the watchdog's."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.lock = threading.Lock()
        self.current: int | None = None

    def start(self, index: int) -> None:
        with self.lock:
            self.current = index

    def emit(self, index: int, result: dict[str, Any]) -> bool:
        with self.lock:
            if self.current != index:
                return False
            self.current = None
            self.stream.write(json.dumps(dict(result, index=index)) + "\n")
            self.stream.flush()
            return True


def _watchdog(reporter: Reporter, index: int, started: float, grace: float) -> Callable[[], None]:
    def fire() -> None:
        # The block swallowed the alarm or holds it off: report it and end the process.
        error = f"did not stop within {grace:g}s after its time limit"
        result = {
            "status": "timeout",
            "error": error,
            "duration": time.perf_counter() - started,
            "ended": True,  # tells the parent to carry on after this block in a new process
        }
        if reporter.emit(index, result):
            os._exit(124)

    return fire


def _on_alarm(signum: int, frame: Any) -> None:
    raise BlockTimeout()


def main() -> None:
    job = json.loads(sys.stdin.read())
    limit, grace = float(job["limit"]), float(job["grace"])
    sys.argv = [job["argv0"]]
    sys.stdout.flush()
    reporter = Reporter(os.fdopen(os.dup(1), "w", encoding="utf-8"))
    os.dup2(2, 1)
    refuse_network()
    if hasattr(signal, "setitimer"):
        signal.signal(signal.SIGALRM, _on_alarm)
    module = types.ModuleType("__main__")
    module.__dict__["__builtins__"] = builtins
    sys.modules["__main__"] = module  # so pickle and friends find the blocks' classes
    for block in job["blocks"]:
        index, started = block["index"], time.perf_counter()
        reporter.start(index)
        dog = threading.Timer(limit + grace, _watchdog(reporter, index, started, grace))
        dog.daemon = True
        dog.start()
        result = run_block(block, module.__dict__, limit)
        dog.cancel()
        reporter.emit(index, dict(result, duration=time.perf_counter() - started))
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # a block may have closed or replaced them
            pass
    os._exit(0)  # threads a block left running must not keep the process alive


if __name__ == "__main__":
    main()
