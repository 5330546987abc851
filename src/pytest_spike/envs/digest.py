"""What a cache entry holds, file by file, so one that changed after it was built is rebuilt.

The box keeps candidates away from the cache: an environment is writable only while it is
built, a layer never. This is the second line: when an entry is built the host records the
files it holds, and before the entry is reused it records them again and compares. A file
is recorded by its stat only (path, size, modification time in nanoseconds; a link by its
target), so checking an environment costs a walk of its folders and no reads (~10 ms per
thousand files; see the README); a ``RECORD`` file (a distribution's own list of its files)
is also recorded by the hash of its bytes.

For a candidate environment that is every file its distributions' ``RECORD`` files list
(scripts outside site-packages included), every other file in site-packages (a ``.pth``
dropped there later counts), the ``bin`` folder (the interpreter the probes start) and
``pyvenv.cfg``. For a layer it is every file in the folder.

What it does not catch: an edit that keeps a file's size and puts its modification time
back (``os.utime``). It is a check against a cache that changed, not a signature.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import os
import sys
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import Union

#: The pytest_spike package folder (a layer copies it; caches key on its source).
PACKAGE_DIR = Path(__file__).resolve().parent.parent


@functools.cache
def source_digest(package_dir: Path = PACKAGE_DIR) -> str:
    """A hash of pytest-spike's own source: what it ran with, for caches keyed on it (here,
    not in layer.py, so that cached evidence is looked up without the environment manager)."""
    digest = hashlib.sha256()
    for path in sorted(package_dir.rglob("*.py")):
        digest.update(str(path.relative_to(package_dir)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


#: One file's record: [size, mtime_ns] for a file ([size, mtime_ns, sha256] for a RECORD),
#: "-> target" for a link, "dir" for a folder, "missing" for a listed file that is not there.
Stat = Union[list[object], str]
Files = dict[str, Stat]


def environment_files(env: Path) -> Files:
    """The files of the virtual environment ``env`` that its interpreter may load or run."""
    files: Files = {}
    sites = list(_site_packages(env))
    for site in sites:
        files.update(_walk(site, env))
    for folder in ("Scripts",) if sys.platform == "win32" else ("bin",):
        files.update(_walk(env / folder, env))
    files.update(_stat_each([env / "pyvenv.cfg"], env))
    for site in sites:
        for record in site.glob("*.dist-info/RECORD"):
            key = _relative(record, env)
            stat = files.get(key)
            if isinstance(stat, list):
                # The list of files itself, by content: a line changed to match an edit counts.
                stat.append(hashlib.sha256(record.read_bytes()).hexdigest())
            # Strings, not Paths: a RECORD of numpy lists ~1 000 files, of torch ~15 000.
            where = _relative(site, env)
            listed = {
                os.path.normpath(os.path.join(where, path)).replace(os.sep, "/")
                for path in _record_paths(record)
            }
            unseen = [env / key for key in listed if key not in files]
            files.update(_stat_each(unseen, env))
    return files


def tree_files(folder: Path, *, skip: Collection[str] = ()) -> Files:
    """Every file under ``folder`` (``skip``: names at its top to leave out, such as the marker)."""
    return {key: stat for key, stat in _walk(folder, folder).items() if key.split("/", 1)[0] not in skip}


def digest(files: Mapping[str, Stat]) -> str:
    """One hash of ``files``: equal for equal records, whatever order they were found in."""
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()


def first_change(before: Mapping[str, Stat], now: Mapping[str, Stat]) -> str:
    """The first file (in path order) that differs between two records, said in a few words;
    "" when they are the same."""
    for path in sorted(set(before) | set(now)):
        old, new = before.get(path), now.get(path)
        if old == new:
            continue
        if old is None:
            return f"{path} appeared"
        if new is None or new == "missing":
            return f"{path} is gone"
        return f"{path} changed"
    return ""


def _site_packages(env: Path) -> Iterator[Path]:
    if sys.platform == "win32":  # pragma: no cover
        yield env / "Lib" / "site-packages"
        return
    # lib64 is a link to lib in a venv: walked once, as lib.
    for lib in sorted((env / "lib").glob("*/site-packages")):
        if lib.is_dir() and not lib.is_symlink():
            yield lib


def _walk(top: Path, base: Path) -> Files:
    """Stat every entry under ``top`` without following links, keyed by its path from ``base``."""
    found: Files = {}
    # Keys by slicing, not Path.relative_to: a large environment has ~50 000 entries.
    cut = len(str(base)) + 1 if top.is_relative_to(base) else 0
    stack = [str(top)]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            continue
        for entry in entries:
            key = entry.path[cut:].replace(os.sep, "/")
            if entry.is_symlink():
                found[key] = "-> " + os.readlink(entry.path)
            elif entry.is_dir(follow_symlinks=False):
                found[key] = "dir"
                stack.append(entry.path)
            else:
                stat = entry.stat(follow_symlinks=False)
                found[key] = [stat.st_size, stat.st_mtime_ns]
    return found


def _stat_each(paths: list[Path], base: Path) -> Files:
    found: Files = {}
    for path in paths:
        key = _relative(path, base)
        try:
            stat = path.lstat()
        except FileNotFoundError:
            found[key] = "missing"
            continue
        if path.is_symlink():
            found[key] = "-> " + os.readlink(path)
        else:
            found[key] = [stat.st_size, stat.st_mtime_ns]
    return found


def _record_paths(record: Path) -> list[str]:
    """The paths a RECORD lists (relative to its site-packages), bytecode included."""
    try:
        text = record.read_text("utf-8")
    except (OSError, UnicodeDecodeError):
        return []  # its hash says it changed, if it did
    return [row[0] for row in csv.reader(io.StringIO(text)) if row and row[0]]


def _relative(path: Path, base: Path) -> str:
    """``path`` from ``base`` with "/" (an absolute path when it is outside ``base``)."""
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return path.as_posix()
