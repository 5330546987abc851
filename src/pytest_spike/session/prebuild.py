"""Get every candidate ready at once: environments, evidence keys, index pages and sdists.

Started when the spike items are known (end of collection), one background thread per
candidate up to ``MAX_THREADS``: the work is network and subprocess bound, so threads
suffice. Each thread asks the same memoised steps the probes ask (``ProbeContext.target``,
``inspect``, the evidence lookup) and warms the index client's and the sdist cache, so
when a probe item needs one it is done, or it waits for the thread doing it; it never
does it twice.

Nothing here reports: a step that fails in the background is not kept (see ProbeMemo),
so the probe item that needs it does it again and turns the error into the same finding
as without the prebuild. The threads are daemons: an interrupted run does not wait for
them (a half-built environment has no marker and is rebuilt next time).

Under xdist every worker prebuilds every candidate: a worker does not know at collection
which items it will be sent. Two workers building the same environment are kept apart by
the environment store's file lock (the second waits, then reuses it); index answers and
sdists may be fetched by both, and the cache keeps one.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Callable

from pytest_spike.kinds import Prefetch, builtin, kind
from pytest_spike.model import Candidate
from pytest_spike.probes import evidence
from pytest_spike.probes.base import ProbeContext

#: Background threads at most: builds are mostly waiting on the network and on uv / pip.
MAX_THREADS = 4


class Prebuild:
    """Background threads that get candidates ready; :meth:`start` once, :meth:`stop` at the end."""

    def __init__(self, context: Callable[[Candidate], ProbeContext], kinds: Sequence[str]) -> None:
        self.context = context
        self.kinds = tuple(kinds)
        self._todo: list[Candidate] = []
        self._lock = threading.Lock()
        self._stopped = False
        self.threads: list[threading.Thread] = []

    def start(self, candidates: Sequence[Candidate]) -> None:
        self._todo = list(candidates)
        for number in range(min(MAX_THREADS, len(self._todo))):
            thread = threading.Thread(target=self._work, name=f"spike-prebuild-{number}", daemon=True)
            self.threads.append(thread)
            thread.start()

    def stop(self) -> None:
        """Start nothing new (what runs finishes on its own or dies with the process)."""
        with self._lock:
            self._stopped = True
            self._todo.clear()

    def _next(self) -> Candidate | None:
        with self._lock:
            if self._stopped or not self._todo:
                return None
            return self._todo.pop(0)

    def _work(self) -> None:
        while (candidate := self._next()) is not None:
            try:
                self.ready(self.context(candidate))
            except Exception:  # noqa: BLE001 - the probe item does the step again and reports it
                continue

    def ready(self, ctx: ProbeContext) -> None:
        """Build ``ctx``'s candidate's environment, find its evidence, and fetch what the
        probes without kept evidence will ask the index for (their kinds' ``prefetch``)."""
        settings = ctx.settings
        reuse = not (settings.fresh or settings.fresh_probes)
        wanted: set[Prefetch] = set()
        for name in self.kinds:
            if builtin(name) and evidence.lookup(ctx, name, reuse=reuse)[1] is None:
                wanted |= kind(name).prefetch
        if not wanted:
            return
        info = ctx.inspect()
        if not info.get("installed"):
            return
        index = ctx.services.index()
        version = str(info["version"])
        if Prefetch.PROJECT_META in wanted:
            index.project_meta(ctx.candidate.project, version)
        if Prefetch.SDIST in wanted and ctx.python is not None:
            from pytest_spike.index.client import sdist_entry

            sdist = sdist_entry(index, str(info["name"]), version)
            if sdist is not None:
                ctx.sdist_source(sdist)
