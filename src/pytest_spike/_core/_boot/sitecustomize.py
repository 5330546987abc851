"""Audit hooks (PEP 578) for boxed Python processes: what candidate code tried.

The host puts this folder first on ``PYTHONPATH`` of a boxed step and names, in
``PYTEST_SPIKE_AUDIT``, a folder of its own making. Every Python process of the step (the
step's own, a build backend, a README child's subprocess...) then appends one JSON line per
attempt to ``<folder>/<pid>.jsonl``: connections and name lookups (the address), process
starts (the program), opens for writing outside ``PYTEST_SPIKE_WRITABLE``, opens for reading
of a decoy credential in the box's HOME (``PYTEST_SPIKE_DECOYS``) or of a place secrets live
outside the box (another user's HOME, ``/root``, ``.ssh``, ``/run/secrets``...: the box hides
them), ``ctypes`` loads; each with the innermost frame outside the standard library (who made
it). At exit, a
process in the box's PID namespace also reports processes the box's init adopted (daemons):
they are killed with the step.

It then steps aside: it leaves ``sys.path`` and ``sys.modules`` as they would be without it
and imports the environment's own ``sitecustomize`` if there is one. Standard library only:
it runs in the candidate's interpreter, whatever that has installed.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs a few ms at every start: not imported at run time
    from typing import Any

_HERE = os.path.dirname(os.path.abspath(__file__))
_FOLDER = os.environ.get("PYTEST_SPIKE_AUDIT", "")
_WRITABLE = tuple(
    os.path.normpath(p) for p in os.environ.get("PYTEST_SPIKE_WRITABLE", "").split(os.pathsep) if p
)
#: Read-only binds (inside a writable folder such as /tmp, the longest match decides).
_READONLY = tuple(
    os.path.normpath(p) for p in os.environ.get("PYTEST_SPIKE_READONLY", "").split(os.pathsep) if p
)
_PIDNS = os.environ.get("PYTEST_SPIKE_PIDNS") == "1"
_HOME = os.path.normpath(os.environ.get("HOME") or "/nonexistent")
_DECOYS = frozenset(d for d in os.environ.get("PYTEST_SPIKE_DECOYS", "").split(os.pathsep) if d)
#: Where credentials live: a read there outside the box's HOME is aimed at the host's (the box
#: does not hold them) or at the project's (the box masks them). Folders anywhere in the path;
#: files as the last part (a virtual environment may be named ``.env``).
_SECRET_FOLDERS = frozenset({".ssh", ".aws", ".gnupg", ".azure", ".kube", ".docker"})
_SECRET_LEAVES = frozenset({".netrc", ".pypirc", ".npmrc", ".git-credentials", ".env", ".envrc"})
_SECRET_PARTS = ("/.config/gh/", "/.config/gcloud/", "/.git/config")
_SECRET_FILES = (
    "/etc/shadow",
    "/etc/gshadow",
    "/etc/sudoers",
    "/run/secrets/",
    "/var/run/secrets/",
    # private keys beside the certificates (empty in the box)
    "/etc/ssl/private/",
    "/etc/pki/tls/private/",
    "/etc/pki/entitlement/",
    "/etc/pki/consumer/",
)
_WATCHED = frozenset(
    {
        "open",
        "socket.connect",
        "socket.sendto",
        "socket.getaddrinfo",
        "socket.gethostbyname",
        "socket.gethostbyname_ex",
        "socket.gethostbyaddr",
        "subprocess.Popen",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "os.system",
        "ctypes.dlopen",
    }
)
#: Frames from here are not "who": the standard library and this file.
_SKIPPED = tuple(
    p
    for p in {
        os.path.dirname(os.__file__),
        _HERE,
    }
    if p
)
_INSTALLER = (os.sep + "pip" + os.sep + "_internal" + os.sep, os.sep + "pip" + os.sep + "_vendor" + os.sep)
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR
_state = {"busy": False, "fd": -1}


def _who() -> tuple[str, bool]:
    """(file:line of the innermost frame outside the standard library, whether pip is on the stack)."""
    frame = sys._getframe(2)
    who = ""
    installer = False
    while frame is not None:
        name = frame.f_code.co_filename
        if not who and not name.startswith(_SKIPPED) and not name.startswith("<frozen"):
            who = f"{name}:{frame.f_lineno}"
        if any(part in name for part in _INSTALLER):
            installer = True
        frame = frame.f_back  # type: ignore[assignment]
    return who, installer


def _address(value: Any) -> str:
    if isinstance(value, tuple) and len(value) >= 2:
        return f"{value[0]}:{value[1]}"
    return str(value)


def _program(args: Any, executable: Any = None) -> str:
    if executable:
        return os.fsdecode(executable) if isinstance(executable, bytes) else str(executable)
    if isinstance(args, (str, bytes)):
        return os.fsdecode(args) if isinstance(args, bytes) else args
    if args:
        first = args[0]
        return os.fsdecode(first) if isinstance(first, bytes) else str(first)
    return ""


def _command(args: Any) -> str:
    if isinstance(args, (str, bytes)):
        return os.fsdecode(args) if isinstance(args, bytes) else args
    try:
        return " ".join(os.fsdecode(a) if isinstance(a, bytes) else str(a) for a in args)
    except TypeError:
        return str(args)


def _under(path: str, folders: tuple[str, ...]) -> int:
    """The length of the longest of ``folders`` holding ``path`` (-1: none)."""
    best = -1
    for folder in folders:
        if path == folder or path.startswith(folder.rstrip(os.sep) + os.sep):
            best = max(best, len(folder))
    return best


def _writable(path: str) -> bool:
    return _under(path, _WRITABLE) > _under(path, _READONLY)


def _read(path: Any) -> dict[str, str] | None:
    """A read of a decoy, or of where secrets live outside the box (None: any other read)."""
    name = os.fsdecode(path)
    if "/." not in name and not name.startswith((".", *_SECRET_FILES)):
        return None  # the common case (a module, a data file), told apart cheaply
    where = os.path.abspath(name)
    if where.startswith(_HOME + os.sep):
        relative = where[len(_HOME) + 1 :]
        return {"kind": "read", "what": "~/" + relative} if relative in _DECOYS else None
    if where.startswith(_SECRET_FILES):
        return {"kind": "read", "what": where}
    parts = where.split(os.sep)
    if not (
        parts[-1] in _SECRET_LEAVES
        or _SECRET_FOLDERS.intersection(parts)
        or any(part in where + os.sep for part in _SECRET_PARTS)
    ):
        return None
    if _writable(where) and os.path.exists(where):
        return None  # a file of its own making in its temporary folder
    return {"kind": "read", "what": where}


_IMPORTLIB = "<frozen importlib._bootstrap_external>"


def _caching_bytecode() -> bool:
    """Whether a write is the import system keeping the bytecode of a module it compiled: only
    importlib's own frames from the write up to the ``get_code`` of a plain
    ``SourceFileLoader`` (which compiles the real source of the file it names). It is what
    ``PYTHONDONTWRITEBYTECODE`` would have skipped, the box refuses it where the module lies
    read-only, and it is nobody's doing: a package whose modules the build left uncompiled
    (pygments' lexers) would otherwise be charged with every import. A loader of the
    candidate's own making, or any frame of its code between, is recorded as before."""
    frame: Any = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename == __file__:
        frame = frame.f_back  # this file's frames: the hook's
    while frame is not None and frame.f_code.co_filename == _IMPORTLIB:
        if frame.f_code.co_name == "get_code":
            external = sys.modules.get("_frozen_importlib_external")
            loader = frame.f_locals.get("self")
            return external is not None and type(loader) is getattr(external, "SourceFileLoader", None)
        frame = frame.f_back
    return False


def _attempt(event: str, args: tuple[Any, ...]) -> dict[str, str] | None:
    if event == "open":
        path, _mode, flags = args
        if isinstance(path, int) or not isinstance(flags, int):
            return None
        if not flags & _WRITE_FLAGS:
            return _read(path)
        where = os.path.abspath(os.fsdecode(path))
        if _writable(where) and not (where.startswith("/tmp/") and not os.path.isdir(os.path.dirname(where))):
            # (A file in a folder the box's private /tmp does not have is aimed at the host's.)
            return None
        if _caching_bytecode():
            return None
        return {"kind": "write", "what": where}
    if event in ("socket.connect", "socket.sendto"):
        address = args[1]
        if isinstance(address, (str, bytes)):
            return None  # a Unix socket: no network
        return {"kind": "network", "what": _address(address)}
    if event.startswith("socket."):
        host = args[0]
        if host is None or _numeric(host):
            return None  # no name to look up (the connect that follows is recorded)
        return {"kind": "network", "what": f"lookup {host}"}
    if event == "subprocess.Popen":
        return {"kind": "exec", "what": _program(args[1], args[0]), "command": _command(args[1])}
    if event == "os.system":
        return {"kind": "exec", "what": "/bin/sh", "command": _command(args[0])}
    if event == "os.exec" and not os.path.exists(os.fsdecode(args[0])):
        return None  # execvp trying each folder of PATH: only the one that runs counts
    if event in ("os.exec", "os.posix_spawn"):
        return {"kind": "exec", "what": _program(None, args[0]), "command": _command(args[1])}
    if event == "os.spawn":
        return {"kind": "exec", "what": _program(None, args[1]), "command": _command(args[2])}
    if event == "ctypes.dlopen" and args[0]:
        return {"kind": "ctypes", "what": _program(None, args[0])}
    return None


def _numeric(host: Any) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(os.fsdecode(host) if isinstance(host, bytes) else str(host))
    except ValueError:
        return False
    return True


def _write(record: dict[str, str]) -> None:
    import json

    if _state["fd"] < 0:
        _state["fd"] = os.open(
            os.path.join(_FOLDER, f"{os.getpid()}.jsonl"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600
        )
    os.write(_state["fd"], (json.dumps(record) + "\n").encode("utf-8", "replace"))


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event not in _WATCHED or _state["busy"]:
        return
    _state["busy"] = True
    try:
        found = _attempt(event, args)
        if found is not None:
            who, installer = _who()
            if not (installer and found["kind"] in ("network", "read")):  # the index, its netrc
                found["by"] = who
                _write(found)
    except Exception:  # noqa: S110 - an audit hook must never break the candidate's code
        pass
    finally:
        _state["busy"] = False


def _ancestors() -> set[int]:
    found: set[int] = set()
    pid = os.getpid()
    while pid > 1 and pid not in found:
        found.add(pid)
        try:
            with open(f"/proc/{pid}/stat", "rb") as stat:
                pid = int(stat.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return found


def _adopted() -> None:
    """At exit: report processes the box's init adopted (they outlive whoever started them)."""
    _state["busy"] = True
    try:
        mine = _ancestors()
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) in mine or name == "1":
                continue
            try:
                with open(f"/proc/{name}/stat", "rb") as stat:
                    fields = stat.read().rsplit(b")", 1)[1].split()
                with open(f"/proc/{name}/cmdline", "rb") as cmd:
                    command = cmd.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
            except (OSError, IndexError):
                continue
            if fields[0] != b"Z" and fields[1] == b"1":
                _state["busy"] = False
                _write({"kind": "persistence", "what": f"pid {name}: {command[:200]}", "by": ""})
                _state["busy"] = True
    except Exception:  # noqa: S110 - see _hook
        pass
    finally:
        _state["busy"] = False


def _step_aside() -> None:
    """Leave the import system as it would be without this file, then run the real one."""
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]
    for finder in sys.meta_path:  # the path finder is there already: no import to pay for
        find = getattr(finder, "find_spec", None)
        spec = find("sitecustomize", sys.path) if find is not None else None
        if spec is not None:
            break
    else:
        return
    if spec.loader is None:
        return
    from importlib.util import module_from_spec

    # The environment's own: it takes this module's place, as if it had been found first.
    module = module_from_spec(spec)
    sys.modules["sitecustomize"] = module
    spec.loader.exec_module(module)


if _FOLDER and os.path.isdir(_FOLDER) and hasattr(sys, "addaudithook"):
    sys.addaudithook(_hook)
    if _PIDNS:
        import atexit

        atexit.register(_adopted)
_step_aside()
