"""Files that must never be seen half-written or half-understood: atomic writes, JSON reads."""

from __future__ import annotations

import errno
import json
import os
import secrets
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Callable, TypeVar

from pytest_spike.model import SpikeError

T = TypeVar("T")


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so readers never see a half-written file.

    The file gets the mode any other tool would give it: a new file's honours the umask
    (the temporary is created with 0o666 and the kernel applies the umask, no process-wide
    umask reads); a file replaced keeps its mode, as if it had been rewritten in place.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temporary(path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))
        except FileNotFoundError:
            pass  # a new file: the mode it was created with
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _create_temporary(path: Path) -> tuple[int, str]:
    """A new file next to ``path`` (so the rename is atomic), created as ``open()`` would."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    for _ in range(100):
        tmp = str(path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary file name", str(path.parent))


def load_json_document(path: Path, what: str, parse: Callable[[Any], T], *, hint: str = "") -> T:
    """Read a JSON file and ``parse`` it; every problem is a SpikeError of one line naming ``path``.

    ``what`` names the document in messages ("results file"); ``hint`` follows the message
    for a file that is not JSON at all.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpikeError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise SpikeError(
            f"{path}: not a JSON {what} (not UTF-8 text: byte 0x{exc.object[exc.start]:02x} at "
            f"offset {exc.start})"
        ) from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise SpikeError(f"{path}: not a JSON {what} ({exc}){hint}") from None
    try:
        return parse(data)
    except SpikeError as exc:
        raise SpikeError(f"{path}: {exc}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise SpikeError(f"{path}: malformed {what} ({type(exc).__name__}: {exc})") from None


def json_object(data: Any) -> dict[str, Any]:
    """``data`` when it is a JSON object: a ``parse`` for ``load_json_document``."""
    if not isinstance(data, dict):
        raise SpikeError(f"expected a JSON object, got {type(data).__name__}")
    return data


def json_objects(lines: Iterable[str], mark: str = "") -> Iterator[dict[str, Any]]:
    """The JSON objects of ``lines`` that start with ``mark`` (read after it), in order.

    For streams and files a child writes a line at a time: a line that is not a whole JSON
    object (cut short by an output cap or a crash, or written by someone else) is skipped, so
    what the child wrote cannot make the reader raise.
    """
    for line in lines:
        if not line.startswith(mark):
            continue
        try:
            data = json.loads(line[len(mark) :])
        except ValueError:
            continue
        if isinstance(data, dict):
            yield data
