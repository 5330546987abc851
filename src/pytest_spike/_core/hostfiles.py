"""What the host keeps on its own file system for the box (:mod:`pytest_spike._core.sandbox`).

- **The scratch tmpfs** (:func:`scratch`): where a step's HOME of decoys and its audit folder,
  and a run's work folder (the copied upstream tests, README and docs blocks), are made when
  ``/dev/shm`` is a tmpfs with room; files made and removed in memory cost no journal writes
  (on a busy disk, tens of ms a step; 0.03 to 0.55 ms a file on this project's CI machine,
  as its disk was busy or not).
- **The box's /etc** (:class:`EtcCopy`): the allowed files copied once per process into one
  folder, bound as ``/etc`` in one mount instead of one per file.

Names carry the maker's pid, so what a run killed before its clean-up left behind is swept by
the next (:func:`sweep`).
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import stat
import tempfile
import threading
from collections.abc import Sequence

#: Where a step's HOME and audit folder are made, when it is a tmpfs with room (see
#: :func:`scratch`): files made and removed in memory cost no journal writes.
SCRATCH_CANDIDATES = ("/dev/shm",)
#: The names of a step's HOME and audit folder, and of a run's work folder, begin with these
#: and the maker's pid.
HOME_PREFIX = "spike-home-"
AUDIT_PREFIX = "spike-audit-"
WORK_PREFIX = "spike-work-"


@functools.cache
def scratch(room_mb: int) -> str | None:
    """The folder for a step's HOME and audit folder: a tmpfs of :data:`SCRATCH_CANDIDATES` that
    is writable, keeps access times (the decoy watch needs them), lets programs run and has
    ``room_mb`` free, else None (the temp folder). On a busy disk, making and removing a HOME
    of decoys cost a step up to tens of ms; the box's own ``/tmp`` is a tmpfs already, so a
    HOME in memory holds nothing a step could not put there. Looked at once per process."""
    try:
        with open("/proc/self/mounts", encoding="utf-8", errors="replace") as handle:
            tmpfs = {
                fields[1] for fields in map(str.split, handle) if len(fields) > 2 and fields[2] == "tmpfs"
            }
    except OSError:
        return None
    for folder in SCRATCH_CANDIDATES:
        if folder not in tmpfs or not os.access(folder, os.W_OK | os.X_OK):
            continue
        try:
            found = os.statvfs(folder)
        except OSError:
            continue
        # Read-only, noatime (decoy reads unseen) or noexec (a program a step puts in its HOME
        # would not run, as it does on the disk: Docker mounts /dev/shm noexec) rule it out.
        if found.f_flag & (os.ST_RDONLY | getattr(os, "ST_NOATIME", 1024) | getattr(os, "ST_NOEXEC", 8)):
            continue
        if found.f_bavail * found.f_frsize >= room_mb * 1024 * 1024:
            # What a run killed mid-step left here would stay in memory until a reboot.
            for prefix in (HOME_PREFIX, AUDIT_PREFIX, WORK_PREFIX):
                sweep(folder, prefix)
            return folder
    return None


def scratch_room(memory_mb: int) -> int:
    """The room (MB) a step's scratch tmpfs must have: what the box's own ``/tmp`` (a tmpfs of
    half the memory, by the kernel's default) could take before the step's memory limit."""
    try:
        half = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // (2 * 1024 * 1024)
    except (ValueError, OSError):
        return memory_mb
    return min(memory_mb, half)


class EtcCopy:
    """The box's ``/etc``: one read-only bind of a folder holding copies of the ``allowed``
    files of ``source`` (their contents, links followed, as a bind shows them) and, bound
    on top, the allowed folders, with their ``hidden`` folders shown empty. One mount and a
    few instead of one per file: each bind is a mount and a read-only remount in every step
    (about 0.2 ms each, 20 of them). The copy is made once per process and made again when
    a source changes (size, modification time or inode, looked at every step); where it
    cannot be made, every file is bound as before.
    """

    PREFIX = "spike-etc-"

    def __init__(self, source: str, allowed: Sequence[str], hidden: Sequence[str] = ()) -> None:
        self.source = source
        self.allowed = tuple(allowed)
        #: folders inside allowed ones (``ssl/private``) shown empty and read-only, where
        #: this user can read them: private keys, never a step's business
        self.hidden = tuple(hidden)
        self._lock = threading.Lock()
        self._signature: tuple[tuple[str, int, int, int], ...] | None = None
        self._args: tuple[str, ...] = ()
        self._folder: str | None = None
        self._made: list[str] = []
        self._owner = os.getpid()
        self._registered = False

    def view(self) -> tuple[tuple[str, ...], str | None]:
        """The bubblewrap arguments of the box's ``/etc``, and the copy they bind (None: none)."""
        files: list[tuple[str, int, int, int]] = []
        folders: list[str] = []
        if os.getpid() != self._owner:  # a fork: its copies are its own, never its parent's
            with self._lock:
                self._owner, self._made, self._signature = os.getpid(), [], None
        for name in self.allowed:
            path = os.path.join(self.source, name)
            try:
                found = os.stat(path)
            except OSError:
                continue
            if stat.S_ISDIR(found.st_mode) or not os.access(path, os.R_OK):
                folders.append(name)  # (an unreadable file is bound, as it would have been)
            else:
                files.append((name, found.st_ino, found.st_size, found.st_mtime_ns))
        hides = [name for name in self.hidden if _inside(name, folders) and self._readable(name)]
        signature = (*files, *((name, 0, 0, 0) for name in folders), *((name, -1, 0, 0) for name in hides))
        with self._lock:
            if signature != self._signature:
                self._signature = signature
                self._args, self._folder = self._make([f[0] for f in files], folders, hides)
            return self._args, self._folder

    def _readable(self, name: str) -> bool:
        """A folder (not a link: its target is out of the box's view already) this user reads."""
        path = os.path.join(self.source, name)
        return os.path.isdir(path) and not os.path.islink(path) and os.access(path, os.R_OK | os.X_OK)

    def _make(
        self, files: Sequence[str], folders: Sequence[str], hides: Sequence[str] = ()
    ) -> tuple[tuple[str, ...], str | None]:
        # An empty tmpfs on each hidden folder, read-only: on top of its allowed folder's bind.
        hidden = tuple(
            a for name in hides for a in ("--tmpfs", f"/etc/{name}", "--remount-ro", f"/etc/{name}")
        )
        binds = (
            *(a for name in folders for a in ("--ro-bind", f"{self.source}/{name}", f"/etc/{name}")),
            *hidden,
        )
        each = tuple(a for name in files for a in ("--ro-bind", f"{self.source}/{name}", f"/etc/{name}"))
        where = scratch(0) or tempfile.gettempdir()
        if not self._registered:
            self._registered = True
            atexit.register(self.remove)
            sweep(where, self.PREFIX)
        try:
            folder = tempfile.mkdtemp(prefix=f"{self.PREFIX}{os.getpid()}-", dir=where)
        except OSError:
            return each + binds, None
        self._made.append(folder)
        try:
            for name in files:
                # The source's permissions (0o700 on the folder besides: the box is this user).
                os.makedirs(os.path.dirname(os.path.join(folder, name)), exist_ok=True)
                shutil.copy(os.path.join(self.source, name), os.path.join(folder, name))
            for name in folders:
                # the mount point of its bind (``pki/tls``: its parent too, nothing else of it)
                os.makedirs(os.path.join(folder, name), exist_ok=True)
        except OSError:
            return each + binds, None
        return ("--ro-bind", folder, "/etc", *binds), folder

    def mount_point(self, folder: str | None, path: str) -> None:
        """Make sure a bind at ``path`` under ``/etc`` has its mount point in the (read-only)
        copy ``folder``: a trust file or a folder a step names that the allow-list lacks."""
        if folder is None or not path.startswith("/etc/"):
            return
        relative = os.path.normpath(path[len("/etc/") :])
        target = os.path.join(folder, relative)
        if _inside(relative, self.allowed) or os.path.lexists(target):
            return  # in an allowed folder (bound from the host) or made already
        try:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if os.path.isdir(path):
                os.mkdir(target)
            else:
                open(target, "a").close()  # noqa: SIM115 - an empty file, the mount point
        except OSError:
            pass

    def remove(self) -> None:
        """At exit: the copies (one made before a source changed stays while a step may use it);
        in a fork of the process that made them, nothing (they are its parent's)."""
        if os.getpid() != self._owner:
            return
        for folder in self._made:
            shutil.rmtree(folder, ignore_errors=True)
        self._made = []


def _inside(relative: str, names: Sequence[str]) -> bool:
    """Whether ``relative`` (a path under /etc) is one of ``names`` or inside one."""
    return any(relative == name or relative.startswith(name.rstrip("/") + "/") for name in names)


def sweep(where: str, prefix: str) -> None:
    """Remove the folders named ``prefix`` + pid that a pytest-spike no longer running left in
    ``where`` (killed before its exit handlers or its step's clean-up ran)."""
    try:
        names = [n for n in os.listdir(where) if n.startswith(prefix)]
    except OSError:
        return
    for name in names:
        owner = name[len(prefix) :].split("-", 1)[0]
        if owner.isdigit() and int(owner) != os.getpid() and not os.path.exists(f"/proc/{owner}"):
            shutil.rmtree(os.path.join(where, name), ignore_errors=True)
