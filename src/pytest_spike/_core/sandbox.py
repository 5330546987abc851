"""The box: every process that can run a candidate's code starts through here.

On Linux the box is bubblewrap (the sandbox Flatpak uses). A boxed step sees an allow-list of
the file system, never a deny-list:

- the system folders (``/usr`` and its ``/bin``, ``/lib`` links), a short list of ``/etc``
  files (the dynamic linker's cache, CA certificates, name resolution, time zone: copies made
  once per process, one bind, see :class:`~pytest_spike._core.hostfiles.EtcCopy`), and the
  interpreter's own prefix, all read-only;
- what the step names (:class:`Box`): its environment, layer or tests read-only, its output
  folder writable; an environment is writable only while it is built;
- a private ``/tmp`` and an empty ``HOME`` made by the host for this step alone (in memory
  where it can: :func:`~pytest_spike._core.hostfiles.scratch`);
- new user, PID, IPC, UTS and cgroup namespaces, and a new network namespace unless the step
  is the installer's (or ``--spike-allow-network``): loopback only, and nothing listens there.

Environment variables are an allow-list too (:data:`KEPT_ENV` plus what the step sets).
``--die-with-parent`` and the PID namespace end every process of a step with it: a
``setsid`` daemon dies when the step's first process does. Limits on processes, memory and
file size come from a cgroup where the host may make one (root, or a delegated cgroup) and
from rlimits otherwise.

Where bubblewrap is missing or cannot make its namespaces, :func:`status` says why; mode
``auto`` then runs steps unboxed (every report says so) and ``require`` refuses.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from pytest_spike._core import hostfiles
from pytest_spike.model import SANDBOX_LIMITS, SpikeError

#: Variables a boxed step keeps from the caller's environment (exact names, then prefixes).
#: Everything else (tokens, cloud settings, ``GITHUB_*``, ``CI_*``, database URLs...) is absent.
KEPT_ENV = frozenset(
    {
        "PATH",
        "LANG",
        "LANGUAGE",
        "TZ",
        "TERM",
        "NO_COLOR",
        "FORCE_COLOR",
        "COLUMNS",
        "PYTHONDONTWRITEBYTECODE",
        "PYTHONIOENCODING",
        "PYTHONUTF8",
        "PYTHONHASHSEED",
        "SOURCE_DATE_EPOCH",
        "OPENBLAS_CORETYPE",
        "OPENBLAS_L2_SIZE",
        # which certificate authorities TLS trusts (paths, not secrets; the files are put in view)
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "PIP_CERT",
        "UV_NATIVE_TLS",
    }
)
#: Variables installer steps keep besides: how this machine reaches the package index.
INSTALLER_ENV = frozenset(
    {
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "no_proxy",
        "PIP_DEFAULT_TIMEOUT",
        "UV_HTTP_TIMEOUT",
    }
)
#: Of :data:`KEPT_ENV`, the variables that name files the box must show.
_TRUST_FILES = ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "PIP_CERT")
KEPT_PREFIXES = ("LC_",)

#: ``/etc`` entries a step may read: the linker, certificates, name resolution, time, users.
ETC_ALLOWED = (
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "ssl",
    "ca-certificates",
    "ca-certificates.conf",
    # Red Hat's trust store, not the rest of /etc/pki (entitlement and consumer keys)
    "pki/tls",
    "pki/ca-trust",
    "resolv.conf",
    "hosts",
    "nsswitch.conf",
    "host.conf",
    "gai.conf",
    "localtime",
    "timezone",
    "passwd",
    "group",
    "alternatives",
    "mime.types",
    "os-release",
    "debian_version",
    "fonts",
    "matplotlibrc",
)

#: Folders inside :data:`ETC_ALLOWED` ones that hold private keys: a step sees them empty
#: (where this user can read them: root, or the ``ssl-cert`` group).
ETC_HIDDEN = ("ssl/private", "pki/tls/private")

#: Files and folders of a project a step never sees, even where the project is in view.
HIDDEN_NAMES = (".git", ".hg", ".svn", ".env", ".envrc", ".netrc", ".pypirc", ".npmrc", ".aws", ".ssh")

#: Set in every box: a pytest-spike inside one (the child pytest) is boxed already, and
#: runs its own steps in the same box rather than nesting another.
INSIDE_ENV = "PYTEST_SPIKE_BOXED"

#: Set by the matrix runner for the cells it starts: the bubblewrap it tried, which ran. A
#: cell whose bubblewrap is that one skips its own trial (:func:`_unavailable`) and nothing
#: else: the mode, the box and every step stay as they were. Anyone who can set it could
#: already pass ``--spike-sandbox off``; candidate code never runs in the runner's process,
#: and the box's allow-list never passes it in. A boxed step that fails in a cell that took
#: the word makes the cell try bubblewrap then (:func:`confirm`): a box that cannot run is an
#: error, never a step's own failure. Under ``--spike-sandbox require`` the word is not taken:
#: the cell tries bubblewrap itself, and a box that cannot run is the run's usage error.
TRIED_ENV = "PYTEST_SPIKE_BWRAP_TRIED"

#: Where the box's own HOME appears inside it.
BOX_HOME = "/home/spike"

#: Decoy credentials in the box's HOME: canary content, no real secret. A read of one is
#: evidence of what the candidate tried (the files are made fresh for every step).
DECOYS: Mapping[str, str] = {
    ".ssh/id_rsa": "-----BEGIN OPENSSH PRIVATE KEY-----\nspike-decoy-{canary}\n-----END OPENSSH PRIVATE KEY-----\n",
    ".aws/credentials": "[default]\naws_access_key_id = AKIASPIKEDECOY{canary}\n"
    "aws_secret_access_key = spike-decoy-{canary}\n",
    ".netrc": "machine index.invalid login spike password spike-decoy-{canary}\n",
    ".pypirc": "[pypi]\nusername = __token__\npassword = pypi-spike-decoy-{canary}\n",
    ".config/gh/hosts.yml": "github.com:\n    oauth_token: gho_spikedecoy{canary}\n",
    ".gitconfig": '[http "https://github.com/"]\n\textraheader = AUTHORIZATION: basic spike-decoy-{canary}\n',
    ".env": "API_TOKEN=spike-decoy-{canary}\n",
}


@dataclass(frozen=True)
class Limits:
    """What one boxed step may use: processes, memory (MB, all its processes), file size (MB)."""

    processes: int = SANDBOX_LIMITS[0]
    memory_mb: int = SANDBOX_LIMITS[1]
    file_mb: int = SANDBOX_LIMITS[2]


@dataclass(frozen=True)
class Policy:
    """How this process boxes candidate code (set once per run with :func:`use`)."""

    mode: str = "auto"
    limits: Limits = field(default_factory=Limits)
    allow_network: bool = False
    bwrap: str | None = None  # None: found on PATH


@dataclass(frozen=True)
class Box:
    """What one step may see and do.

    ``stage`` names the step in reports (install, resolve, import, readme, upstream, tests,
    inspect). ``read`` paths are in view read-only, ``write`` paths writable (an installer's
    environment while it is built, a step's output folder). ``network`` is for installer steps
    only (the package index); probes get it with ``--spike-allow-network``. ``project``, when
    set, is in view read-only without :data:`HIDDEN_NAMES`.
    """

    stage: str
    read: tuple[str, ...] = ()
    write: tuple[str, ...] = ()
    network: bool = False
    project: str | None = None


@dataclass(frozen=True)
class Status:
    """Whether this run boxes candidate code, and if not, why (said on every report)."""

    boxed: bool
    mode: str
    reason: str = ""
    tool: str = ""

    def describe(self) -> str:
        if self.boxed:
            return f"sandboxed ({self.tool})"
        return f"not sandboxed: {self.reason}; candidate code ran as you"


_policy = Policy()
_lock = threading.Lock()
#: bubblewraps this process took as running on its parent's word (:data:`TRIED_ENV`), not yet
#: tried here, and those a trial here then refuted (with why)
_on_word: set[str] = set()
_refuted: dict[str, str] = {}
_word_lock = threading.Lock()
_trial_lock = threading.Lock()


def current() -> Policy:
    return _policy


@contextmanager
def use(policy: Policy) -> Iterator[Policy]:
    """Box this process's steps by ``policy`` inside the ``with`` (the run's settings)."""
    global _policy
    with _lock:
        before, _policy = _policy, policy
    try:
        yield policy
    finally:
        with _lock:
            _policy = before


def configure(policy: Policy) -> None:
    """Set the policy for the rest of this process (the plugin does this once per session)."""
    global _policy
    with _lock:
        _policy = policy


def status(policy: Policy | None = None) -> Status:
    """Whether steps are boxed under ``policy`` (default: the current one), and why not."""
    policy = policy or _policy
    if inside():
        return Status(True, policy.mode, tool="bubblewrap, the parent's box")
    if policy.mode == "off":
        return Status(False, "off", "--spike-sandbox off")
    reason = _reason(policy)
    if reason:
        return Status(False, policy.mode, reason)
    return Status(True, policy.mode, tool="bubblewrap")


def require_available(policy: Policy | None = None) -> Status:
    """The status; under mode ``require`` a box that cannot run is a usage error."""
    policy = policy or _policy
    found = status(policy)
    if policy.mode == "require" and not found.boxed:
        raise SpikeError(
            f"--spike-sandbox require: {found.reason}. Install bubblewrap (Debian/Ubuntu: "
            "'sudo apt-get install bubblewrap'; Fedora: 'sudo dnf install bubblewrap'; on Ubuntu "
            "24.04 also allow unprivileged user namespaces, see the README's 'Safety'), or run "
            "with --spike-sandbox auto to run unboxed and say so"
        )
    return found


def _reason(policy: Policy) -> str:
    """:func:`_unavailable` for ``policy``: ``require`` asks for proof, and never takes the
    parent's word. Threads starting their first boxed steps at once try it once."""
    with _trial_lock:
        return _unavailable(policy.bwrap, policy.mode != "require")


@functools.cache
def _unavailable(bwrap: str | None, take_word: bool) -> str:
    """Why bubblewrap cannot box here ('' when it can): tried once per process, or taken on
    the word of the parent that tried it (:data:`TRIED_ENV`) when ``take_word``."""
    if not sys.platform.startswith("linux"):
        return f"no sandbox on {sys.platform} (bubblewrap is Linux only)"
    tool = _found(bwrap)
    if tool is None:
        return "bubblewrap is not installed"
    with _word_lock:
        if tool in _refuted:
            return _refuted[tool]
        if take_word and os.path.isabs(tool) and os.environ.get(TRIED_ENV) == tool:
            _on_word.add(tool)
            return ""
    return _trial(tool)


def _trial(tool: str) -> str:
    """Why ``tool`` cannot make a box here ('' when it can): a box running ``/bin/true``."""
    try:
        done = subprocess.run(
            [tool, *_base_args(), "--proc", "/proc", "--dev", "/dev", "--unshare-all", "--die-with-parent"]
            + ["--", "/bin/true"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"bubblewrap cannot start ({exc})"
    if done.returncode != 0:
        said = done.stderr.decode("utf-8", "replace").strip().splitlines()
        return f"bubblewrap cannot make its namespaces here ({said[-1] if said else done.returncode})"
    return ""


_warm_lock = threading.Lock()
_warming: set[Policy] = set()


def warm_up(policy: Policy | None = None) -> None:
    """Make now, in a thread, what a process's first boxed step would make first: the trial
    of bubblewrap (:func:`status`) and the launcher's check of the shell's ``ulimit``
    (:func:`_shell_sets_limits`, for the limits this host's steps get). Each is made once
    per process; a step that needs one while the thread makes it waits for it (the trial
    under its lock) or makes it too (the check: a few ms). Once per policy and process.

    For a caller whose first boxed step comes after other work (an environment build, after
    its host-side ``venv``): the two then run beside that work, not in the step.
    """
    policy = policy or _policy
    with _warm_lock:
        if policy in _warming or policy.mode == "off":
            return
        _warming.add(policy)

    def warm() -> None:
        with contextlib.suppress(Exception):  # the step that needs it says what went wrong
            if status(policy).boxed and not inside():
                confinement = Confinement(policy.limits)
                try:
                    confinement.launcher()
                finally:
                    confinement.close()

    threading.Thread(target=warm, name="spike-box-warm-up", daemon=True).start()


def tried_env(policy: Policy | None = None) -> dict[str, str]:
    """What a parent gives the pytest processes it starts (matrix cells) so that they need
    not try bubblewrap again: :data:`TRIED_ENV` when bubblewrap runs here, else nothing."""
    policy = policy or _policy
    tool = _found(policy.bwrap)
    if tool is None or not os.path.isabs(tool):
        return {}
    if _reason(policy):  # (the runner's first installer step may be trying it at the same time)
        return {}
    return {TRIED_ENV: tool}


def confirm(policy: Policy | None = None) -> None:
    """After a boxed step failed: where this process took bubblewrap on its parent's word,
    try it now (once). A box that cannot start raises SpikeError (the step never ran; its
    failure is not the candidate's), and from then on :func:`status` says why."""
    policy = policy or _policy
    tool = _found(policy.bwrap)
    with _word_lock:
        if tool is None:
            return
        if tool not in _refuted:
            if tool not in _on_word:
                return  # tried in this process, and it ran: the failure is the step's own
            _on_word.discard(tool)
            reason = _trial(tool)
            if not reason:
                return
            _refuted[tool] = reason
            _unavailable.cache_clear()  # from now on status() says why it cannot run
    raise SpikeError(
        f"the box could not start: {_refuted[tool]} (the run that started this one said "
        f"{tool} ran here, {TRIED_ENV})"
    )


def inside() -> bool:
    """Whether this process runs in a box already (a child pytest): the box's variable, and
    bubblewrap as PID 1 of this PID namespace (a variable alone, set by anyone, is not enough)."""
    if os.environ.get(INSIDE_ENV) != "1":
        return False
    try:
        with open("/proc/1/cmdline", "rb") as handle:
            first = handle.read().split(b"\0", 1)[0]
    except OSError:
        return False
    return os.path.basename(first) == b"bwrap"


def bwrap_path(policy: Policy) -> str:
    return _found(policy.bwrap) or "bwrap"


def _found(bwrap: str | None) -> str | None:
    """The bubblewrap a policy names, else the one on PATH (None: none)."""
    return bwrap or shutil.which("bwrap")


def box_env(
    env: Mapping[str, str], extra: Mapping[str, str] | None, home: str, *, network: bool = False
) -> dict[str, str]:
    """The allow-listed environment of a boxed step: :data:`KEPT_ENV`, then what it sets."""
    kept = {k: v for k, v in env.items() if k in KEPT_ENV or k.startswith(KEPT_PREFIXES)}
    if env.get("PYTHONPATH"):
        # Part of the running environment (callers drop it for other interpreters); its
        # folders are put in view read-only.
        kept["PYTHONPATH"] = env["PYTHONPATH"]
    if network:
        kept.update({k: v for k, v in env.items() if k in INSTALLER_ENV})
    kept.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    kept.update({"HOME": home, "TMPDIR": "/tmp", "USER": "spike", "LOGNAME": "spike", INSIDE_ENV: "1"})
    if extra:
        kept.update(extra)
    return kept


def _base_args() -> tuple[str, ...]:
    """System folders read-only, as the host lays them out (merged /usr or not), then /etc."""
    return (*_system_args(), *_etc.view()[0])


@functools.cache
def _system_args() -> tuple[str, ...]:
    """``/usr`` and the top-level links or folders into it: looked at once per process."""
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/", name)
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    return tuple(args)


_etc = hostfiles.EtcCopy("/etc", ETC_ALLOWED, ETC_HIDDEN)


def interpreter_paths(executable: str) -> list[str]:
    """What an interpreter (or tool) at ``executable`` needs in view: its prefix and venv."""
    paths: list[str] = []
    exe = Path(executable)
    if not exe.is_absolute():
        found = shutil.which(executable)
        if found is None:
            return paths
        exe = Path(found)
    for candidate in (exe, exe.resolve()):
        parent = candidate.parent
        # A virtual environment (pyvenv.cfg beside bin/) or an install prefix (bin/..).
        root = parent.parent if parent.name in ("bin", "Scripts") else parent
        paths.append(str(root))
        cfg = root / "pyvenv.cfg"
        if cfg.is_file():
            for line in cfg.read_text(encoding="utf-8", errors="replace").splitlines():
                key, _, value = line.partition("=")
                if key.strip() == "home" and value.strip():
                    paths.append(str(Path(value.strip()).parent))
    # The system folders are in view already (and "/" must never be).
    return [p for p in dict.fromkeys(paths) if p != "/" and _outside_system(p)]


def writes_interpreter(argv: Sequence[str], box: Box) -> bool:
    """Whether ``box`` lets the step write the environment of the interpreter (or tool)
    that runs it: an install's box does, a probe's shows it read-only. An unboxed step that
    may not writes no bytecode there either (``PYTHONDONTWRITEBYTECODE``), so running a
    cached environment leaves it as built, boxed or not."""
    roots = interpreter_paths(argv[0]) if argv else []
    return bool(roots) and any(_under(roots[0], folder) for folder in box.write)


def argv_paths(args: Sequence[str]) -> list[str]:
    """Files and folders the step's own arguments name (a find-links folder, a constraints
    file, a script): the caller wrote them, so they are in view, read-only. Never ``/``, a
    top-level folder or the user's HOME (or a folder above it)."""
    home = os.path.realpath(os.path.expanduser("~"))
    found: list[str] = []
    for arg in args:
        for value in (arg, arg.partition("=")[2]):
            value = value[len("file://") :] if value.startswith("file://") else value
            if not value.startswith("/") or value.count("/") < 2 or not os.path.exists(value):
                continue
            real = os.path.realpath(value)
            if real == home or home.startswith(real.rstrip("/") + "/") or real.count("/") < 2:
                continue
            found.append(value)
    return found


def python_path(env: Mapping[str, str]) -> list[str]:
    return [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p.startswith("/")]


def _trust_files() -> list[str]:
    return [os.environ[name] for name in _TRUST_FILES if os.environ.get(name, "").startswith("/")]


def _outside_system(path: str) -> bool:
    """Whether ``path`` is bound on its own: not a system folder in view already. A folder the
    host made inside the scratch tmpfs (a run's work folder, see
    :func:`~pytest_spike._core.hostfiles.scratch`) is, though ``/dev`` is the box's own; the
    tmpfs itself never is."""
    if any(path.startswith(folder + "/") for folder in hostfiles.SCRATCH_CANDIDATES):
        return True
    return not any(path == top or path.startswith(top + "/") for top in ("/usr", "/proc", "/dev"))


def make_home(folder: str | None = None) -> Path:
    """A fresh HOME for one step, holding only decoy credentials (see :data:`DECOYS`), made in
    ``folder`` (default: the temp folder)."""
    home = Path(tempfile.mkdtemp(prefix=f"{hostfiles.HOME_PREFIX}{os.getpid()}-", dir=folder))
    canary = home.name.rsplit("-", 1)[-1]
    for relative, text in DECOYS.items():
        target = home / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text.format(canary=canary), encoding="utf-8")
        target.chmod(0o600)
    return home


def _hidden_args(project: str) -> list[str]:
    args: list[str] = []
    for name in HIDDEN_NAMES:
        path = os.path.join(project, name)
        try:
            mode = os.lstat(path).st_mode  # one call per name: this runs for every folder bound
        except OSError:
            continue
        if stat.S_ISDIR(mode):
            args += ["--tmpfs", path]
        else:
            args += ["--ro-bind", "/dev/null", path]
    return args


def wrap(
    argv: Sequence[str],
    box: Box,
    *,
    cwd: str | None,
    home: str,
    policy: Policy,
    env: Mapping[str, str] | None = None,
) -> list[str]:
    """The bubblewrap argv that runs ``argv`` in ``box`` (paths keep their host names, but
    for a ``..`` in one: see :func:`_resolved`)."""
    argv = [_resolved(arg) for arg in argv]
    cwd = None if cwd is None else _resolved(cwd)
    # The private /tmp first: binds below it (a step's output folder) go on top of it.
    etc, etc_copy = _etc.view()
    args = [bwrap_path(policy), *_system_args(), *etc, "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    read: list[str] = [
        *interpreter_paths(argv[0]),
        *box.read,
        *_trust_files(),
        *python_path(env or {}),
        *argv_paths(argv[1:]),
    ]
    write = list(box.write)
    if cwd is not None and not any(_under(cwd, w) for w in write):
        read.append(cwd)
    # Parents first; a path inside one already in view (or inside a writable one) is skipped:
    # bubblewrap cannot make a mount point inside a read-only bind.
    wanted = {
        os.path.normpath(each)
        for path in read
        for each in (path, os.path.realpath(path))
        if os.path.exists(each) and _outside_system(each)
    }
    # The allowed /etc folders are in view already (a trust folder such as /etc/ssl/certs).
    bound: list[str] = [
        etc[i + 2] for i in range(len(etc) - 2) if etc[i] == "--ro-bind" and etc[i + 2] != "/etc"
    ]
    for each in sorted(wanted, key=lambda p: (p.count("/"), p)):
        if any(_under(each, w) for w in [*bound, *write]):
            continue
        bound.append(each)
        _etc.mount_point(etc_copy, each)
        args += ["--ro-bind", each, each]
        if os.path.isdir(each):
            args += _hidden_args(each)  # a project reached through a cwd or PYTHONPATH, too
    if box.project and os.path.isdir(box.project):
        _etc.mount_point(etc_copy, box.project)
        args += ["--ro-bind", box.project, box.project, *_hidden_args(box.project)]
    for path in write:
        if os.path.exists(path):
            _etc.mount_point(etc_copy, path)
            args += ["--bind", path, path]
    args += [
        "--bind",
        home,
        BOX_HOME,
        "--unshare-all",
        "--hostname",
        "spike-box",
        "--die-with-parent",
        "--new-session",
    ]
    if box.network or policy.allow_network:
        args.append("--share-net")
    if cwd is not None:
        args += ["--chdir", cwd]
    return [*args, "--", *argv]


def _resolved(arg: str) -> str:
    """``arg``, or the ``opt=`` value in it, with a ``..`` resolved as the host resolves it.

    ``../venv/bin/python -m pytest`` makes ``sys.executable`` ``<cwd>/../venv/bin/python``:
    the box shows the venv but not the folder the name passes through, so in the box the
    name leads nowhere. The folder part is resolved (symlinks and ``..``, as the host's
    kernel would); the last part is kept (a venv's ``python`` is a link that must stay one).
    """
    head, eq, value = arg.partition("=") if not arg.startswith("/") else ("", "", arg)
    if not value.startswith("/") or ".." not in value.split("/") or not os.path.exists(value):
        return arg
    folder, name = os.path.split(value)
    named = (
        os.path.join(os.path.realpath(folder), name) if name not in ("", "..") else os.path.realpath(value)
    )
    return f"{head}{eq}{named}"


def _under(path: str, folder: str) -> bool:
    path, folder = os.path.normpath(path), os.path.normpath(folder)
    return path == folder or path.startswith(folder.rstrip("/") + "/")


class Confinement:
    """The limits of one step: a cgroup where the host may make one, rlimits always.

    A cgroup caps the processes and memory of the whole step (its fork and memory bombs) and
    measures the step's peak memory across all its processes; rlimits cap file size and, where
    no cgroup could be made, each process's address space and (for a non-root user) the
    number of processes.
    """

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.groups: list[Path] = []
        self._memory: Path | None = None
        for group in _make_cgroups(limits):
            self.groups.append(group)
            if (group / "memory.max_usage_in_bytes").exists() or (group / "memory.peak").exists():
                self._memory = group
        # Decided here, in the parent, so the child does little between fork and exec.
        self._procs = [str(group / "cgroup.procs") for group in self.groups]
        counted = any(g.parent.name == "pids" or (g / "pids.max").exists() for g in self.groups)
        self._nproc: int | None = None
        if not counted and os.getuid() != 0:
            # Counted per user (root is not counted at all): leave room for what the user runs.
            self._nproc = limits.processes + len([p for p in os.listdir("/proc") if p.isdigit()])

    def preexec(self) -> None:
        """Runs in the child between fork and exec: join the cgroups, set the rlimits."""
        import resource

        for procs in self._procs:
            fd = os.open(procs, os.O_WRONLY)
            try:
                os.write(fd, b"0")
            finally:
                os.close(fd)
        mb = 1024 * 1024
        resource.setrlimit(resource.RLIMIT_FSIZE, (self.limits.file_mb * mb,) * 2)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if self._memory is None:
            resource.setrlimit(resource.RLIMIT_AS, (self.limits.memory_mb * mb,) * 2)
        if self._nproc is not None:
            resource.setrlimit(resource.RLIMIT_NPROC, (self._nproc, self._nproc))

    def launcher(self) -> list[str] | None:
        """The same limits as :meth:`preexec`, as an argv prefix that runs before the step's own.

        ``/bin/sh`` joins the cgroups and sets the rlimits with its ``ulimit`` (any failure:
        exit 126, the step never starts), then execs the step: one process, every limit in
        place before the step's first instruction. Where this shell's ``ulimit`` does not set
        what it is asked in the units expected (tried once per process: see
        :func:`_shell_sets_limits`), it execs util-linux's ``prlimit`` instead, which sets them
        (or fails: exit 1) and execs the step. Without a Python function between fork and
        exec, ``subprocess`` can use vfork instead of copying the whole host process. The paths
        are quoted, the step's argv is only ever ``"$@"``. None where neither way is at hand
        (the caller keeps :meth:`preexec`).
        """
        if not os.access(_SHELL, os.X_OK):
            return None
        join = "".join(f"echo $$ > {shlex.quote(procs)} || exit 126\n" for procs in self._procs)
        memory = self.limits.memory_mb if self._memory is None else None
        if _shell_sets_limits(_SHELL, memory is not None, self._nproc is not None):
            limits = _ulimit(self.limits.file_mb, memory, self._nproc)
            return [_SHELL, "-c", f'{join}{limits}exec "$@"', "sh"]
        prlimit = _tool("prlimit")
        if prlimit is None:
            return None
        mb = 1024 * 1024
        options = [f"--fsize={self.limits.file_mb * mb}", "--core=0"]
        if memory is not None:
            options.append(f"--as={memory * mb}")
        if self._nproc is not None:
            options.append(f"--nproc={self._nproc}")
        return [_SHELL, "-c", f'{join}exec "$@"', "sh", prlimit, *options, "--"]

    def peak_memory_mb(self) -> float | None:
        if self._memory is None:
            return None
        for name in ("memory.max_usage_in_bytes", "memory.peak"):
            try:
                return int((self._memory / name).read_text().strip()) / (1024 * 1024)
            except (OSError, ValueError):
                continue
        return None

    def hit(self) -> list[str]:
        """Which limits the step ran into ('processes', 'memory')."""
        found: list[str] = []
        for group in self.groups:
            for name, what in (("pids.events", "processes"), ("memory.failcnt", "memory")):
                try:
                    text = (group / name).read_text()
                except OSError:
                    continue
                count = text.split()[-1] if text.split() else "0"
                if count.isdigit() and int(count) > 0 and what not in found:
                    found.append(what)
        return found

    def close(self) -> None:
        """Kill what is left in the cgroups and remove them."""
        import signal as _signal

        for group in self.groups:
            # A box's last processes are often still exiting when its first one was reaped
            # (the PID namespace ending them): short waits first, then up to 10 ms (half a
            # second in all), not 10 ms each time one is left.
            delay = 0.0005
            for _ in range(60):
                try:
                    pids = [int(p) for p in (group / "cgroup.procs").read_text().split()]
                except OSError:
                    break
                if not pids:
                    break
                for pid in pids:
                    try:
                        os.kill(pid, _signal.SIGKILL)
                    except OSError:
                        pass
                time.sleep(delay)
                delay = min(delay * 2, 0.01)
            try:
                group.rmdir()
            except OSError:
                pass
        self.groups = []


#: The shell of the launcher (the system's POSIX shell).
_SHELL = "/bin/sh"


def _ulimit(file_mb: int, memory_mb: int | None, nproc: int | None) -> str:
    """The shell lines that set a step's rlimits (POSIX units: ``-f`` in 512-byte blocks; ``-v``
    in KB and ``-p`` processes as dash, busybox and most shells read them), hard and soft."""
    lines = [f"ulimit -f {file_mb * 2048}", "ulimit -c 0"]
    if memory_mb is not None:
        lines.append(f"ulimit -v {memory_mb * 1024}")
    if nproc is not None:
        lines.append(f"ulimit -p {nproc}")
    return "".join(f"{line} || exit 126\n" for line in lines)


#: The ``/proc/self/limits`` rows the launcher's ``ulimit`` lines set, and their keys.
_LIMIT_ROWS = {
    "Max file size": "fsize",
    "Max core file size": "core",
    "Max address space": "as",
    "Max processes": "nproc",
}


@functools.cache
def _shell_sets_limits(shell: str, memory: bool, nproc: bool) -> bool:
    """Whether ``shell``'s ``ulimit`` sets what :func:`_ulimit` asks, as the kernel reports it:
    shells differ in units and letters (bash's ``-p`` is the pipe size). Tried once per process
    and kind, with small values within this process's own limits; a shell that says otherwise
    keeps ``prlimit``. Saves every step an exec (about 1 ms)."""
    import resource

    def within(kind: int, wanted: int, unit: int = 1) -> int:
        """``wanted`` units, or fewer where this process may not go that high."""
        return min([wanted, *(v // unit for v in resource.getrlimit(kind) if v != resource.RLIM_INFINITY)])

    mb = 1024 * 1024
    file_mb = within(resource.RLIMIT_FSIZE, 3, mb)
    memory_mb = within(resource.RLIMIT_AS, 4096, mb) if memory else None
    processes = within(resource.RLIMIT_NPROC, 4096) if nproc else None
    if min(file_mb, memory_mb or 1, processes or 1) < 1:
        return False
    expected = {"fsize": file_mb * mb, "core": 0}
    if memory_mb is not None:
        expected["as"] = memory_mb * mb
    if processes is not None:
        expected["nproc"] = processes
    script = _ulimit(file_mb, memory_mb, processes) + 'exec "$@"'
    try:
        done = subprocess.run(
            [shell, "-c", script, "sh", "/bin/cat", "/proc/self/limits"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    found: dict[str, int] = {}
    for line in done.stdout.splitlines():
        for row, key in _LIMIT_ROWS.items():
            if line.startswith(row + " ") and key in expected:
                values = line[len(row) :].split()
                if len(values) >= 2 and values[0] == values[1] and values[0].isdigit():
                    found[key] = int(values[0])
    return done.returncode == 0 and found == expected


_counter = iter(range(1, sys.maxsize))


@functools.cache
def _tool(name: str) -> str | None:
    """A system tool (the system folders only: never one a PATH could put first)."""
    return shutil.which(name, path="/usr/bin:/bin:/usr/sbin:/sbin")


def _make_cgroups(limits: Limits) -> list[Path]:
    """cgroups (v1 pids + memory, or one v2 group) for one step; [] where not allowed."""
    name = f"pytest-spike-{os.getpid()}-{next(_counter)}"
    made: list[Path] = []
    try:
        own = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return made
    mb = 1024 * 1024
    for line in own:
        _, controllers, where = line.split(":", 2)
        for controller, settings in (
            ("pids", {"pids.max": str(limits.processes)}),
            ("memory", {"memory.limit_in_bytes": str(limits.memory_mb * mb)}),
        ):
            if controller not in controllers.split(","):
                continue
            base = Path("/sys/fs/cgroup", controller, where.lstrip("/"))
            _sweep(base)
            group = _try_group(base / name, settings)
            if group is not None:
                made.append(group)
    if not made:
        v2 = [line for line in own if line.startswith("0::")]
        if v2 and Path("/sys/fs/cgroup/cgroup.controllers").exists():
            base = Path("/sys/fs/cgroup", v2[0][3:].lstrip("/"))
            _sweep(base)
            group = _try_group(
                base / name, {"pids.max": str(limits.processes), "memory.max": str(limits.memory_mb * mb)}
            )
            if group is not None:
                made.append(group)
    return made


@functools.cache
def _sweep(base: Path) -> None:
    """Remove (once per process and folder) the empty groups a pytest-spike that is no longer
    running left in ``base``: one killed before its cleanup (a SIGKILL, a crashed CI runner)."""
    try:
        groups = list(base.glob("pytest-spike-*-*"))
    except OSError:
        return
    for group in groups:
        owner = group.name.split("-")[2]
        if owner.isdigit() and int(owner) != os.getpid() and not os.path.exists(f"/proc/{owner}"):
            try:
                group.rmdir()  # only an empty group can be removed: a live one stays
            except OSError:
                pass


def _try_group(path: Path, settings: Mapping[str, str]) -> Path | None:
    try:
        path.mkdir()
    except OSError:
        return None
    try:
        for key, value in settings.items():
            (path / key).write_text(value)
        return path
    except OSError:
        try:
            path.rmdir()
        except OSError:
            pass
        return None
