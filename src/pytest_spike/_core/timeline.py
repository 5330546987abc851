"""Where a run's wall time goes: spans written to a file named by ``PYTEST_SPIKE_TIMELINE``.

Off unless the variable names a file; then each span (a step through the runner, an
environment build, an sdist's download and unpacking, an upgrade spike's baseline run)
appends one JSON line when it ends:
``{"what", "start", "end", "thread", ...}`` with epoch seconds, so spans of threads and of
several processes sharing the file line up. ``benchmarks/cold_timeline.py`` runs a cold
spike with it and prints the spans as a chart. Boxed children never see the variable (the
box's environment is allow-listed), so only the host's spans are written.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator

#: The variable naming the file spans are appended to.
ENV = "PYTEST_SPIKE_TIMELINE"


@contextlib.contextmanager
def span(what: str, **detail: object) -> Iterator[None]:
    """Time the block as one span named ``what`` (with ``detail``), when a timeline is asked for."""
    if not os.environ.get(ENV):
        yield
        return
    start = time.time()
    try:
        yield
    finally:
        record(what, start, time.time(), **detail)


def record(what: str, start: float, end: float, **detail: object) -> None:
    """Write one span that began at ``start`` and ended at ``end`` (epoch seconds), when a
    timeline is asked for: for spans that are not one block of code (a session's tests)."""
    path = os.environ.get(ENV)
    if not path:
        return
    entry = {"what": what, "start": start, "end": end, "thread": threading.current_thread().name}
    entry.update({key: str(value) for key, value in detail.items()})
    line = (json.dumps(entry) + "\n").encode()
    # One write of a line under O_APPEND: lines of threads and processes do not interleave.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
