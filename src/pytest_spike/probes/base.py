"""What a probe receives (ProbeContext) and what it returns (ProbeOutcome).

The context decides where the candidate lives (its Target): the running environment
when the candidate is installed there at a version the spike accepts, otherwise an
environment of its own, built (or reused) from the cache.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from pytest_spike._core import runner, sandbox
from pytest_spike.envs import inspection
from pytest_spike.model import Candidate, Finding, SpikeError

if TYPE_CHECKING:
    from pytest_spike.envs.manager import EnvResult
    from pytest_spike.index.client import FileEntry
    from pytest_spike.services import Services
    from pytest_spike.settings import Settings


@dataclass
class ProbeOutcome:
    """Findings and evidence from one probe.

    ``skipped`` is why it holds no evidence either way (its item is skipped with that
    reason). The item fails on a high or critical finding of the candidate's.
    """

    findings: list[Finding] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    version: str | None = None
    skipped: str | None = None
    peak_memory_mb: float | None = None


@dataclass(frozen=True)
class Target:
    """The interpreter whose environment holds the candidate (None: none could be made)."""

    python: str | None
    isolated: bool
    env: EnvResult | None = None
    error: str | None = None


_T = TypeVar("_T")


class _Pending:
    """A value one thread is computing; the others wait for it."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.failed = False


class ProbeMemo:
    """Values the probes of one process compute once and share, keyed by what they depend on.

    Where each candidate lives (``("target", candidate)``), what an interpreter knows of a
    distribution (``("inspect", python, requirement)``), the project's requirements, pip's
    check of an environment. The services (index client, environments) are not here: they
    are on :class:`~pytest_spike.services.Services`.

    Thread-safe: the session's background builds and the probe items ask for the same keys;
    a key is computed by one thread while the others wait (calling ``on_wait`` now and then,
    so the main thread can show progress). A computation that raises is not kept: a waiting
    thread computes it again, so the error is raised where it is reported (in the probe item).
    """

    def __init__(self, on_wait: Callable[[], None] | None = None) -> None:
        self._values: dict[Hashable, Any] = {}
        self._pending: dict[Hashable, _Pending] = {}
        #: keys :meth:`take` asked for: no head start is made for them from then on
        self._taken: set[Hashable] = set()
        self._lock = threading.Lock()
        self.on_wait = on_wait

    def remember(self, key: Hashable, compute: Callable[[], _T]) -> _T:
        while True:
            with self._lock:
                if key in self._values:
                    value: _T = self._values[key]
                    return value
                pending = self._pending.get(key)
                mine = pending is None
                if pending is None:
                    pending = self._pending[key] = _Pending()
            if mine:
                return self._settle(key, pending, compute)
            self._wait(pending)
            # Done (or failed: then this thread computes it and gets the error itself).

    def ahead(self, key: Hashable, compute: Callable[[], object]) -> bool:
        """Compute ``key``'s value now, for one later :meth:`take` (a background thread's
        head start on a step that is done once per run, such as a probe); False, computing
        nothing, when the key was taken or started already. What raises is not kept: the
        :meth:`take` computes it again and gets the error itself."""
        with self._lock:
            if key in self._taken or key in self._pending or key in self._values:
                return False
            pending = self._pending[key] = _Pending()
        self._settle(key, pending, compute)
        return True

    def ahead_started(self, key: Hashable) -> bool:
        """An :meth:`ahead` value for ``key`` is ready or under way, and not taken yet."""
        with self._lock:
            return key not in self._taken and (key in self._pending or key in self._values)

    def take(self, key: Hashable, compute: Callable[[], _T]) -> _T:
        """The value :meth:`ahead` computed for ``key`` (waiting while it is under way),
        handed out once; without one, ``compute()`` here and now, uncached (asked again, it is
        computed again, as a re-run test would expect)."""
        with self._lock:
            self._taken.add(key)
            pending = self._pending.get(key)
        if pending is not None:
            self._wait(pending)
        with self._lock:
            if key in self._values:
                value: _T = self._values.pop(key)
                return value
        return compute()

    def _settle(self, key: Hashable, pending: _Pending, compute: Callable[[], _T]) -> _T:
        """Compute ``key``'s value, which this thread claimed with ``pending``, and keep it
        for the others; what raises is not kept (the next asker computes it again)."""
        try:
            value = compute()
        except BaseException:
            with self._lock:
                del self._pending[key]
                pending.failed = True
            pending.done.set()
            raise
        with self._lock:
            self._values[key] = value
            del self._pending[key]
        pending.done.set()
        return value

    def _wait(self, pending: _Pending) -> None:
        """Until ``pending`` is done, showing what background threads said meanwhile."""
        while not pending.done.wait(0.1):
            if self.on_wait is not None:
                self.on_wait()


@dataclass
class ProbeContext:
    """Where and how a probe runs a candidate.

    ``settings`` are the run's; ``services`` (index client, environments, work folders) and
    ``memo`` are shared by the probes of one process (per xdist worker) so expensive work
    happens once; environments are shared across workers and runs through the EnvManager's
    locked cache. ``timeout`` bounds each subprocess; ``host_python`` is the running
    interpreter; ``upgrading_from`` is set for an upgrade's release probes.
    """

    candidate: Candidate
    settings: Settings
    services: Services
    timeout: float
    memo: ProbeMemo = field(default_factory=ProbeMemo)
    host_python: str = sys.executable
    #: in an upgrade spike's release probes: the version installed in the running environment
    #: that the upgrade moves from (a kind that ``compares_upgrade`` compares the release with it)
    upgrading_from: str | None = None

    @property
    def workdir(self) -> Path:
        """The scratch folder probes run candidate code from."""
        return self.services.workdir()

    def remember(self, key: Hashable, compute: Callable[[], _T]) -> _T:
        return self.memo.remember(key, compute)

    def run(self, argv: list[str], *, stage: str = "probe", **kwargs: Any) -> runner.RunResult:
        """Run candidate-side code with this context's time limit, from its work dir, boxed
        (``stage`` names the step: import, inspect...)."""
        kwargs.setdefault("timeout", self.timeout)
        # argv[0]'s environment is in view; a tool driving another interpreter (uv pip check
        # --python) passes a box that names it.
        kwargs.setdefault("box", sandbox.Box(stage))
        kwargs.setdefault("cwd", self.workdir)
        if argv and argv[0] != self.host_python:
            # The user's PYTHONPATH belongs to the running environment; in a candidate's own
            # environment it would shadow what that environment installed.
            kwargs.setdefault("env", self.foreign_env())
        return runner.run(argv, **kwargs)

    @staticmethod
    def foreign_env() -> dict[str, str]:
        """The environment for interpreters other than the running one."""
        # Imported here: a probe of an installed candidate (a matrix cell) never needs the
        # environment manager, whose imports cost its start-up.
        from pytest_spike.envs.manager import tool_env

        return tool_env()

    def project_requirements(self) -> list[str]:
        """The project's own requirements, for the fit check (once per session)."""
        from pytest_spike.envs.fit import project_requirements

        files = self.settings.requirement_files
        root = self.services.rootdir
        return self.remember(
            ("project-requirements", files),
            lambda: project_requirements(list(files) if files is not None else None, root=root),
        )

    def sdist_source(self, sdist: FileEntry, purpose: str = "for its tests") -> str | None:
        """The sdist extracted in the cache (or its URL; None offline when it is not there),
        once per session and sdist: the session's background prebuild may be fetching it."""
        return self.remember(
            ("sdist", sdist.url),
            lambda: self.services.sdists().source(sdist, timeout=self.timeout, purpose=purpose),
        )

    # -- where the candidate lives ------------------------------------------------------

    def target(self) -> Target:
        """The running environment if it has an accepted version, else one of its own."""
        return self.remember(("target", self.candidate), self._target)

    def _target(self) -> Target:
        isolation = self.settings.isolation
        if isolation != "always":
            host = self.inspect_with(self.host_python)
            accepted = host.get("installed") and not self.candidate.unmet(str(host["version"]))
            if accepted or isolation == "never":
                return Target(self.host_python, isolated=False)
        try:
            env = self.services.envs().ensure([self.candidate.install_requirement()])
        except SpikeError as exc:
            return Target(None, isolated=True, error=str(exc))
        return Target(env.python if env.ok else None, isolated=True, env=env)

    @property
    def python(self) -> str | None:
        """The interpreter to run candidate code with (None: the candidate has no environment)."""
        return self.target().python

    def inspect(self) -> dict[str, Any]:
        """What the candidate's environment knows of its distribution (see envs/inspection.py)."""
        python = self.python
        if python is None:
            return {"installed": False, "python": None}
        return self.inspect_with(python)

    def inspect_with(self, python: str) -> dict[str, Any]:
        return self.remember(("inspect", python, self.candidate.requirement), lambda: self._inspect(python))

    def _inspect(self, python: str) -> dict[str, Any]:
        requirement = self.candidate.requirement
        report = inspection.report(self.site(python), requirement)
        return inspection.describe(report, requirement)

    def site(self, python: str) -> inspection.Site:
        """Where ``python`` (the running interpreter or the candidate's environment's) has
        its distributions, for the host to read (see envs/inspection.py)."""
        return self.remember(("site", python), lambda: self._site(python))

    def _site(self, python: str) -> inspection.Site:
        if python == self.host_python:  # this process's interpreter: its imports' path
            return inspection.running_site()
        env = self.target().env
        if env is None or env.python != python:
            raise SpikeError(f"cannot inspect {self.candidate.project}: {python} is not its environment's")
        # The interpreter that built the environment says where it installs: not one of its files.
        return inspection.env_site(env.python, env.path, base=self.services.envs().python)
