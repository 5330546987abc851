"""Files that must never be seen half-written or half-understood: atomic writes, JSON reads."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, TypeVar

from pytest_spike.model import SpikeError

T = TypeVar("T")


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so readers never see a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def load_json_document(path: Path, what: str, parse: Callable[[Any], T], *, hint: str = "") -> T:
    """Read a JSON file and ``parse`` it; every problem is a SpikeError of one line naming ``path``.

    ``what`` names the document in messages ("results file"); ``hint`` follows the message
    for a file that is not JSON at all.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpikeError(f"{path}: cannot read ({exc.strerror or exc})") from None
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
