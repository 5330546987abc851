"""Get every candidate ready at once, and run their probes side by side.

Started when the session's items are known (end of collection), one background thread per
candidate up to ``MAX_THREADS``: the work is network and subprocess bound, so threads
suffice. Each thread first asks the same memoised steps the probes ask
(``ProbeContext.target``, ``inspect``, the evidence lookup) and warms the index client's
and the sdist cache, so when a probe item needs one it is done, or it waits for the thread
doing it; it never does it twice.

Then, where the session runs in one process (not on an xdist worker, which does not know
at collection which items it will be sent), the thread runs its candidate's probes ahead,
in the order of their items, each once (``ProbeMemo.ahead``): while the main thread runs
one candidate's probe items, the other candidates' probes run beside it, at most
``ahead_slots()`` at a time. A probe item takes the outcome run ahead (waiting while it
runs), or runs the probe itself when nobody started it. A probe run ahead costs its
candidate's time box what it took, as in its item; none starts once the box is used up.

Nothing here reports: a step that fails in the background is not kept (see ProbeMemo),
so the probe item that needs it does it again and turns the error into the same finding
as without the prebuild. The threads are daemons; :meth:`Prebuild.stop` (the session's
end, an interrupt) starts nothing new and kills what they still run (a half-built
environment has no marker and is rebuilt next time; evidence is kept only through the
items, when the session ends uninterrupted).

Two xdist workers building the same environment are kept apart by the environment store's
file lock (the second waits, then reuses it); index answers and sdists may be fetched by
both, and the cache keeps one.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Mapping, Sequence
from typing import Callable

from pytest_spike._core import runner
from pytest_spike.kinds import Prefetch, builtin, kind
from pytest_spike.model import Candidate
from pytest_spike.probes import evidence
from pytest_spike.probes.base import ProbeContext
from pytest_spike.probes.items import Taken, ahead_key, timed_evidence

#: Background threads at most: builds are mostly waiting on the network and on uv / pip.
MAX_THREADS = 4


def ahead_slots() -> int:
    """Probes run ahead at once at most: one per core (they run pytest, Python, builds;
    two on one core, where one waits on the index), within the threads there are."""
    return max(2, min(MAX_THREADS, os.cpu_count() or 1))


class Prebuild:
    """Background threads that get candidates ready; :meth:`start` once, :meth:`stop` at the end.

    ``ahead``: the probe kinds to run ahead per candidate name, in their items' order
    (empty: get ready only). ``remaining`` and ``charge`` are the session's time boxes:
    what a candidate's box has left, and the seconds a probe run ahead cost it.
    """

    def __init__(
        self,
        context: Callable[[Candidate], ProbeContext],
        kinds: Sequence[str],
        *,
        ahead: Mapping[str, Sequence[str]] | None = None,
        remaining: Callable[[Candidate], float] | None = None,
        charge: Callable[[Candidate, float], None] | None = None,
    ) -> None:
        self.context = context
        self.kinds = tuple(kinds)
        self.ahead = {name: tuple(kinds) for name, kinds in (ahead or {}).items()}
        self.remaining = remaining or (lambda candidate: float("inf"))
        self.charge = charge or (lambda candidate, seconds: None)
        self._todo: list[Candidate] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(ahead_slots())
        self._stopped = False
        self.threads: list[threading.Thread] = []

    def start(self, candidates: Sequence[Candidate]) -> None:
        self._todo = list(candidates)
        for number in range(min(MAX_THREADS, len(self._todo))):
            thread = threading.Thread(target=self._work, name=f"spike-prebuild-{number}", daemon=True)
            self.threads.append(thread)
            thread.start()

    def stop(self) -> int:
        """Start nothing new, and kill what the threads still run; how many were killed."""
        with self._lock:
            self._stopped = True
            self._todo.clear()
        return runner.stop_started_by(self.threads)

    def _next(self) -> Candidate | None:
        with self._lock:
            if self._stopped or not self._todo:
                return None
            return self._todo.pop(0)

    def _work(self) -> None:
        while (candidate := self._next()) is not None:
            try:
                missing = self.ready(self.context(candidate))
                self.run_ahead(
                    candidate, [name for name in self.ahead.get(candidate.name, ()) if name in missing]
                )
            except Exception:  # noqa: BLE001 - the probe item does the step again and reports it
                continue

    def ready(self, ctx: ProbeContext) -> set[str]:
        """Build ``ctx``'s candidate's environment, find its evidence, and fetch what the
        probes without kept evidence will ask the index for (their kinds' ``prefetch``);
        the built-in kinds without kept evidence."""
        settings = ctx.settings
        reuse = not (settings.fresh or settings.fresh_probes)
        missing = {
            name
            for name in self.kinds
            if builtin(name) and evidence.lookup(ctx, name, reuse=reuse)[1] is None
        }
        wanted: set[Prefetch] = set()
        for name in missing:
            wanted |= kind(name).prefetch
        if not wanted:
            return missing
        info = ctx.inspect()
        if not info.get("installed"):
            return missing
        index = ctx.services.index()
        version = str(info["version"])
        if Prefetch.PROJECT_META in wanted:
            index.project_meta(ctx.candidate.project, version)
        if Prefetch.SDIST in wanted and ctx.python is not None:
            from pytest_spike.index.client import sdist_entry

            sdist = sdist_entry(index, str(info["name"]), version)
            if sdist is not None:
                ctx.sdist_source(sdist)
        return missing

    def run_ahead(self, candidate: Candidate, kinds: Sequence[str]) -> None:
        """Run ``candidate``'s probes of ``kinds`` ahead of their items, in order, while its
        time box lasts (a probe its item already took is not run again)."""
        for name in kinds:
            with self._slots:
                with self._lock:
                    if self._stopped:
                        return
                left = self.remaining(candidate)
                if left <= 0:
                    return
                ctx = self.context(candidate)
                ctx.memo.ahead(ahead_key(candidate, name), functools.partial(self._probe, name, ctx, left))

    def _probe(self, name: str, ctx: ProbeContext, left: float) -> Taken:
        taken = timed_evidence(name, ctx, ahead_box=left)
        self.charge(ctx.candidate, taken.seconds)
        return taken
