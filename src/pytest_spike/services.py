"""What the probes of one process share, built once from the Settings.

:class:`Services` holds the package index client, the environment manager, the sdist
cache and the work folders; each is made on first use, so a run whose probes never ask the index never reads
pip's configuration. :func:`index_client` is the one way any part of pytest-spike (the
session, the fixtures, ``pytest-spike versions``, the matrix planner) gets an index client.

Layering: above index/, envs/ and settings; below probes/ and session/. No pytest here.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from pytest_spike._core import hostfiles
from pytest_spike.model import SpikeError, default_cache_root

if TYPE_CHECKING:  # the matrix runner and the CLI get index clients here without pytest
    from pytest_spike.envs.manager import EnvManager
    from pytest_spike.index.client import IndexClient
    from pytest_spike.settings import Settings
    from pytest_spike.upstream.cache import SdistCache

#: The folder of the spike cache that holds the index's answers.
INDEX_CACHE = "index"
#: The folder of the spike cache that holds the candidates' environments.
ENVS_CACHE = "envs"
#: The free room (MB) the scratch tmpfs must have for a run's work folder to be made there.
WORK_ROOM_MB = 1024


def index_client(
    index_url: str | None = None,
    *,
    cache_dir: Path | None = None,
    offline: bool = False,
    timeout: float | None = None,
) -> IndexClient:
    """The package index client: pip's configuration unless ``index_url`` is given.

    Answers are cached in ``cache_dir`` (default: the index folder of the spike cache);
    ``offline`` answers from that cache only.
    """
    # Imported here: the network stack (http.client, ssl) costs a warm matrix cell, whose
    # probes answer from their cached evidence, ~10 ms of start-up for nothing.
    from pytest_spike.index.client import IndexClient

    folder = cache_dir if cache_dir is not None else default_cache_root() / INDEX_CACHE
    if timeout is None:  # the client's own default
        return IndexClient(index_url, cache_dir=folder, offline=offline)
    return IndexClient(index_url, cache_dir=folder, offline=offline, timeout=timeout)


#: How a line said from a background thread starts: it is shown later, while another
#: candidate's probe runs, so it must not carry that probe's name (report/progress.py).
BACKGROUND = "in the background: "


def _quiet(text: str) -> None:
    """Say nothing (xdist workers, ``-q``)."""


class Services:
    """The index client, the environment manager, the sdist cache and the work folders of one process.

    ``rootdir`` is the project's (pytest's rootdir); ``say`` tells the user what a long
    step is doing (default: nothing, as on xdist workers and under ``-q``).

    Thread-safe: the session builds several candidates' environments at once in background
    threads. Their progress lines wait in a queue until the thread that made the Services
    (pytest's) shows them (:meth:`flush`): only that thread may write to pytest's terminal.
    """

    def __init__(
        self, settings: Settings, *, rootdir: Path, say: Callable[[str], None] | None = None
    ) -> None:
        self.settings = settings
        self.rootdir = rootdir
        self._say = say or _quiet
        self._main = threading.get_ident()
        self._queued: deque[str] = deque()
        #: the step a background thread works for now (:meth:`speaking_for`)
        self._step = threading.local()
        self._lock = threading.RLock()
        self._index: IndexClient | None = None
        self._envs: EnvManager | None = None
        self._sdists: SdistCache | None = None
        self._workdir: Path | None = None

    def say(self, text: str) -> None:
        """Tell the user what a long step is doing (queued when said from a background thread)."""
        if threading.get_ident() != self._main:
            step = getattr(self._step, "label", None)
            self._queued.append(BACKGROUND + (f"{step}: {text}" if step else text))
            return
        self.flush()
        self._say(text)

    @contextmanager
    def speaking_for(self, label: str) -> Iterator[None]:
        """Lines this (background) thread says inside the ``with`` name ``label``, the step
        they are for (``tomli upstream``: a probe run ahead of its item)."""
        before = getattr(self._step, "label", None)
        self._step.label = label
        try:
            yield
        finally:
            self._step.label = before

    def flush(self) -> None:
        """Show what background threads said (call from pytest's thread only)."""
        if threading.get_ident() != self._main:
            return
        while self._queued:
            self._say(self._queued.popleft())

    def index(self) -> IndexClient:
        """The package index client (made on first use)."""
        with self._lock:
            return self._make_index()

    def _make_index(self) -> IndexClient:
        if self._index is None:
            self._index = index_client(
                self.settings.index_url,
                cache_dir=self.settings.cache_dir / INDEX_CACHE,
                offline=self.settings.offline,
            )
        return self._index

    def envs(self) -> EnvManager:
        """The manager of the candidates' cached environments (made on first use)."""
        with self._lock:
            return self._make_envs()

    def _make_envs(self) -> EnvManager:
        from pytest_spike.envs.manager import EnvManager  # see index_client

        if self._envs is None:
            try:
                self._envs = EnvManager(
                    self.settings.cache_dir / ENVS_CACHE,
                    fresh=self.settings.fresh,
                    backend=self.settings.backend,
                    progress=self.say,
                )
            except SpikeError as exc:
                raise SpikeError(f"--spike-backend: {exc}") from None
        return self._envs

    def sdists(self) -> SdistCache:
        """The cache of sdists, for any probe that reads one (made on first use)."""
        from pytest_spike.upstream.cache import SDISTS_CACHE, SdistCache  # see index_client

        with self._lock:
            if self._sdists is None:
                self._sdists = SdistCache(
                    self.settings.cache_dir / SDISTS_CACHE,
                    offline=self.settings.offline,
                    say=self.say,
                    # the work folder's tmpfs (see workdir): sdists are extracted there
                    memory=self.workdir if hostfiles.scratch(WORK_ROOM_MB) else None,
                )
            return self._sdists

    def workdir(self) -> Path:
        """A scratch folder for this process's probes, removed by :meth:`close`.

        In the scratch tmpfs where there is one with :data:`WORK_ROOM_MB` free (else the temp
        folder): a run copies the candidates' upstream tests here, ~1,100 files for tomlkit,
        and each file made on the disk cost 0.03 to 0.55 ms on this project's CI machine (as the
        disk was busy or not), in memory ~0.01 ms. A run killed
        before :meth:`close` leaves it to the next run's sweep (its name holds the pid).
        """
        with self._lock:
            if self._workdir is None:
                prefix = f"{hostfiles.WORK_PREFIX}{os.getpid()}-"
                self._workdir = Path(tempfile.mkdtemp(prefix=prefix, dir=hostfiles.scratch(WORK_ROOM_MB)))
            return self._workdir

    def close(self) -> None:
        """Remove the scratch folder (the caches stay)."""
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
