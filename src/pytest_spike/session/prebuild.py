"""Get every candidate ready at once, and run their probes side by side.

Started when the session's items are known (end of collection), one background thread per
candidate up to ``MAX_THREADS``: the work is network and subprocess bound, so threads
suffice. Each thread first asks the same memoised steps the probes ask
(``ProbeContext.target``, ``inspect``, the evidence lookup) and, for the probes that will
not run ahead (on an xdist worker), warms the index client's and the sdist cache, so when
a probe item needs one it is done, or it waits for the thread doing it; it never does it
twice.

Then, where the session runs in one process (not on an xdist worker, which does not know
at collection which items it will be sent), the threads run the candidates' probes ahead
of their items, each once (``ProbeMemo.ahead``), at most ``ahead_slots()`` at a time
beside the item the main thread runs: the heavy kinds first, the heaviest first (upstream
tests, then README examples and docs pages: ``ProbeKind.heavy``), so the longest start soonest, then the
others, each in the candidates' and the items' order. Probes of one candidate may run at
the same time. A probe item takes the outcome run ahead (waiting while it runs), or runs
the probe itself when nobody started it. A probe run ahead costs its candidate's time box
what it took, as in its item, and gets what the box has left as its limit; none starts
once the box is used up.

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
import heapq
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
        #: candidates being got ready now (their probes are queued when they are)
        self._readying = 0
        #: probes to run ahead: (the heaviest first, candidate's place, the item's place, candidate, kind)
        self._queue: list[tuple[int, int, int, Candidate, str]] = []
        self._order: dict[str, int] = {}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        #: probes run ahead now, and at most (a probe is taken from the queue only when one of
        #: the slots is free, so the heaviest waiting is the next to run)
        self._running = 0
        self._slots = ahead_slots()
        self._stopped = False
        self.threads: list[threading.Thread] = []

    def start(self, candidates: Sequence[Candidate]) -> None:
        self._todo = list(candidates)
        self._order = {c.name: place for place, c in enumerate(candidates)}
        wanted = len(self._todo) if not self.ahead else max(len(self._todo), ahead_slots())
        for number in range(min(MAX_THREADS, wanted)):
            thread = threading.Thread(target=self._work, name=f"spike-prebuild-{number}", daemon=True)
            self.threads.append(thread)
            thread.start()

    def stop(self) -> int:
        """Start nothing new, and kill what the threads still run; how many were killed."""
        with self._changed:
            self._stopped = True
            self._todo.clear()
            self._queue.clear()
            self._changed.notify_all()
        return runner.stop_started_by(self.threads)

    def _next(self) -> Candidate | tuple[Candidate, str] | None:
        """The next candidate to get ready, else the next probe to run ahead once a slot is
        free (waiting while candidates still get ready or the slots are taken), else None:
        nothing is left. Taken when a slot is free, not before: a thread that took a probe
        and then waited for a slot was overtaken by one that took a lighter probe later."""
        with self._changed:
            while not self._stopped:
                if self._todo:
                    self._readying += 1
                    return self._todo.pop(0)
                if self._queue and self._running < self._slots:
                    self._running += 1
                    *_, candidate, name = heapq.heappop(self._queue)
                    return candidate, name
                if not self._queue and not self._readying:
                    return None
                self._changed.wait()
            return None

    def _work(self) -> None:
        while (job := self._next()) is not None:
            if isinstance(job, tuple):
                self._run_ahead(*job)
                continue
            missing: set[str] = set()
            try:
                missing = self.ready(self.context(job))
            except Exception:  # noqa: BLE001 - the probe item does the step again and reports it
                pass
            finally:
                self._queue_probes(job, missing)

    def _queue_probes(self, candidate: Candidate, missing: set[str]) -> None:
        """Queue the candidate's probes without kept evidence, the heavy kinds first (the
        longest start soonest), then by the candidate's and the item's place."""
        place = self._order.get(candidate.name, len(self._order))
        with self._changed:
            self._readying -= 1
            for item_place, name in enumerate(self.ahead.get(candidate.name, ())):
                if name in missing and not self._stopped:
                    heapq.heappush(self._queue, (-int(kind(name).heavy), place, item_place, candidate, name))
            self._changed.notify_all()

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
        ahead = self.ahead.get(ctx.candidate.name, ())
        for name in missing:
            if name not in ahead:  # a probe run ahead fetches what it needs itself, once
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

    def _run_ahead(self, candidate: Candidate, name: str) -> None:
        """Run ``candidate``'s ``name`` probe ahead of its item, while its time box lasts
        (not when its item took it already)."""
        try:
            with self._lock:
                if self._stopped:
                    return
            left = self.remaining(candidate)
            if left <= 0:
                return
            ctx = self.context(candidate)
            ctx.memo.ahead(ahead_key(candidate, name), functools.partial(self._probe, name, ctx, left))
        except Exception:  # noqa: BLE001 - not kept: the probe item runs it again and reports it
            return
        finally:
            with self._changed:
                self._running -= 1
                self._changed.notify_all()

    def _probe(self, name: str, ctx: ProbeContext, left: float) -> Taken:
        with ctx.services.speaking_for(f"{ctx.candidate.name} {name}"):
            taken = timed_evidence(name, ctx, ahead_box=left)
        self.charge(ctx.candidate, taken.seconds)
        return taken
