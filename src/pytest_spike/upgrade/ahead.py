"""The part of an upgrade spike that needs no baseline, started when the session starts.

Which versions to try (the package index), their environments with the project installed,
and the child pytest's layer depend on nothing the project's tests do: they are made in
background threads while the tests run, so the suite can start on the new version as soon
as the baseline ends (it waited for all of them after the baseline). The threads mostly
wait on the installers' processes, which use the cores the tests leave. Their progress
lines wait in a :class:`Relay` until the session's thread says something: the terminal is
that thread's, and a line among the tests' dots would break pytest's rows.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from pytest_spike._core import runner, sandbox
from pytest_spike.services import Services
from pytest_spike.settings import Settings
from pytest_spike.upgrade.plan import Targets, Upgrade
from pytest_spike.upgrade.run import Built, EarlySuite, Project, in_background

_T = TypeVar("_T")

#: A child that builds the layer (see :func:`build_layer`).
_LAYER_CHILD = """
import sys
from pathlib import Path
from pytest_spike.envs.layer import build_layer
build_layer(Path(sys.argv[1]), boxed=sys.argv[2] == "boxed")
"""


def build_layer(cache_dir: Path, say: Callable[[str], None]) -> Path:
    """The child pytest's layer, built in a process of its own when there is none yet.

    Built in a thread, the copy of its ~800 files held the interpreter lock between file
    operations while the baseline's tests ran: both slowed down, and the layer, not the
    environment, was what the suite on the new version waited for (1.05 s in a thread
    against 0.54 s alone, benchmark 6). A process copies them on a core of its own. The
    build in this process then only checks the layer (~15 ms), or builds it where the
    child could not and raises its error. A layer there already is checked here: a changed
    one is rebuilt here and ``say`` hears why.

    In a cache without layers the child starts at once: working out where the layer lies
    first (its distributions, a digest of pytest-spike's source), beside the session's
    collection, held a cold upgrade's longest path ~0.15 s (benchmark 6). In a cache with
    layers that is worked out first, and the child starts only when this one is not there
    (a child that only checks would hold a warm upgrade ~0.1 s).
    """
    cold = not (cache_dir / "layers").is_dir()
    if cold:
        _layer_child(cache_dir)
    from pytest_spike.envs import layer

    if not cold and not layer.layer_path(cache_dir).is_dir():
        _layer_child(cache_dir)
    return layer.build_layer(cache_dir, say)


def _layer_child(cache_dir: Path) -> None:
    """Build the layer in a child process (its errors are the check's to raise)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    # The same interpreter and environment (the layer's place and bytecode follow them); the
    # cache folder as the working folder, so the project's folder is not first on the
    # child's import path.
    # This run's --spike-sandbox (the child does not know it), as build_layer reads it.
    boxed = "unboxed" if sandbox.current().mode == "off" else "boxed"
    runner.run([sys.executable, "-c", _LAYER_CHILD, str(cache_dir), boxed], timeout=300, cwd=cache_dir)


#: How long an abandoned run waits for its building thread to notice (see :meth:`Ahead.close`).
ABANDON_WAIT_S = 10.0
#: The time limit of a suite run early (``--spike-upgrade-overlap``), before the baseline's
#: time is known; the real one is enforced once it is (see :class:`EarlySuite`).
EARLY_LIMIT_S = 24 * 3600.0


class Relay:
    """Progress lines of background threads, said by the session's thread: each call of
    the relay (from that thread) first says what the threads said since, in order."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self._say = say
        self._lock = threading.Lock()
        self._held: list[str] = []

    def put(self, text: str) -> None:
        """Keep a line of a background thread until the session's thread says something."""
        with self._lock:
            self._held.append(text)

    def flush(self) -> None:
        """Say the lines kept so far (from the session's thread)."""
        with self._lock:
            held, self._held = self._held, []
        for text in held:
            self._say(text)

    def __call__(self, text: str) -> None:
        self.flush()
        self._say(text)

    def wait(self, future: Future[_T]) -> _T:
        """``future``'s result, saying the lines kept meanwhile as they come (a long build
        says what it does while the session waits for it)."""
        while not wait([future], timeout=0.1).done:
            self.flush()
        self.flush()
        return future.result()


@dataclass
class Planned:
    """One ``--spike-upgrade``: its target versions, each one's build (a future the
    building thread completes in turn), and the versions left out."""

    upgrade: Upgrade
    targets: Targets
    builds: list[tuple[str, Future[Built]]] = field(default_factory=list)


class Ahead:
    """Plans the targets and builds their environments and the layer in background threads.

    ``plans`` completes once every upgrade's targets are known (or with the error that
    stops the spike); each target's build future completes when its environment is built,
    one after another in the order of the plans, so the first target's suite can run while
    the next one builds.
    """

    def __init__(self, settings: Settings, rootdir: Path, inifile: Path | None, relay: Relay) -> None:
        self.settings = settings
        self.relay = relay
        self.services = Services(settings, rootdir=rootdir, say=relay.put)
        #: the threads started here: the children they run are stopped when the run is abandoned
        self.threads: list[threading.Thread] = []
        self.plans: Future[list[Planned]] = Future()
        self._project: Future[Project] = Future()
        #: set when the session no longer wants the builds: none is started after it
        self._abandoned = threading.Event()
        #: each target's suite, by (requirement, version): an :class:`EarlySuite` the overlap
        #: thread claimed first, or None where the session's thread claimed it (runs it after)
        self._suites: dict[tuple[str, str], EarlySuite | None] = {}
        self._suites_lock = threading.Lock()
        self._suites_thread: threading.Thread | None = None
        cache_dir = settings.cache_dir
        layer_build = in_background(
            lambda: build_layer(cache_dir, relay.put), "spike-upgrade-layer", self.threads
        )
        self._thread = threading.Thread(
            target=self._work, args=(rootdir, inifile, layer_build), name="spike-upgrade-ahead", daemon=True
        )
        self.threads.append(self._thread)
        self._thread.start()

    @property
    def project_ready(self) -> Future[Project]:
        """The project, as the building thread read it (or the error it met)."""
        return self._project

    def _work(self, rootdir: Path, inifile: Path | None, layer_build: Future[Path]) -> None:
        from pytest_spike.envs.fit import project_requirements
        from pytest_spike.envs.inspection import host_python
        from pytest_spike.upgrade.plan import plan_targets, project_install
        from pytest_spike.upgrade.run import build_target

        settings = self.settings
        try:
            project = Project(
                rootdir=rootdir,
                inifile=inifile,
                requirements=project_requirements(settings.requirement_files, root=rootdir),
                install=project_install(rootdir),
                layer_build=layer_build,
                # for the builds; the suite's is set from the baseline's time when it ends
                timeout=max(settings.probe_timeout, 60),
            )
            self._project.set_result(project)
            python, index, plans = host_python(), self.services.index(), []
            for text in settings.upgrades:
                upgrade = Upgrade.parse(text)
                targets = plan_targets(
                    index,
                    upgrade,
                    settings.upgrade_versions,
                    python=python,
                    downgrades=settings.upgrade_downgrades,
                )
                plans.append(Planned(upgrade, targets, [(v, Future()) for v in targets.versions]))
        except BaseException as exc:  # handed to whoever waits for the plans
            if not self._project.done():
                self._project.set_exception(exc)
            self.plans.set_exception(exc)
            return
        self.plans.set_result(plans)
        envs = self.services.envs()
        for plan in plans:
            for version, done in plan.builds:
                if self._abandoned.is_set():
                    done.cancel()
                    continue
                try:
                    done.set_result(build_target(plan.upgrade, version, project, envs, self.relay.put))
                except BaseException as exc:
                    done.set_exception(exc)

    def start_suites(self, nodeids: Sequence[str]) -> None:
        """(``--spike-upgrade-overlap``) Run each target's suite on ``nodeids`` as soon as
        its environment is built, one after another, while the session's tests still run.
        The session takes a result with :meth:`claim_suite`; a target it claimed first is
        not run here."""
        wanted = list(nodeids)

        def suites() -> None:
            from pytest_spike.upgrade.run import run_tests

            try:
                project = self._project.result()
                plans = self.plans.result()
            except BaseException:  # noqa: S110 - the session's thread meets the same error
                return
            early = dataclasses.replace(project, timeout=max(project.timeout, EARLY_LIMIT_S))
            for plan in plans:
                for version, building in plan.builds:
                    if self._abandoned.is_set():
                        return
                    try:
                        built = building.result()
                    except BaseException:  # noqa: S112 - a failed build is the session's to report
                        continue
                    env = built.env
                    if env is None or not env.ok or built.target.findings:
                        continue
                    suite = EarlySuite(wanted, stop=self.stop_suites)
                    with self._suites_lock:
                        if (plan.upgrade.requirement, version) in self._suites:
                            continue  # the session's thread got there first
                        self._suites[(plan.upgrade.requirement, version)] = suite
                    try:
                        early.layer  # noqa: B018 - built (or its error raised) before the clock starts
                        suite.started = time.monotonic()
                        suite.done.set_result(run_tests(env.python, early, wanted))
                    except BaseException as exc:
                        suite.done.set_exception(exc)

        self._suites_thread = threading.Thread(target=suites, name="spike-upgrade-suites", daemon=True)
        self.threads.append(self._suites_thread)
        self._suites_thread.start()

    def claim_suite(self, requirement: str, version: str) -> EarlySuite | None:
        """The target's suite run early, or None: then the session's thread runs it (and no
        early run of it starts after this)."""
        with self._suites_lock:
            return self._suites.setdefault((requirement, version), None)

    def stop_suites(self) -> None:
        """Stop the child the overlap thread runs (a suite past its time limit)."""
        if self._suites_thread is not None:
            runner.stop_started_by([self._suites_thread])

    def close(self, *, abandon: bool = False) -> None:
        """Say what the threads said, once the builds are done.

        ``abandon`` (the session ended without a baseline to compare with, or the spike
        failed): no build starts after it, and the children the threads run (installers, an
        early suite) are stopped until the building and the overlap threads end (each one
        stopped fails its build), for at most :data:`ABANDON_WAIT_S`; what the threads said
        is not said. Otherwise every target was claimed: what the overlap thread still runs
        (an early suite the session turned down), nobody waits for, and it is stopped too.
        """
        if abandon:
            self._abandoned.set()
            self._wind_down(self.threads, [self._thread, self._suites_thread])
            self.services.close()
            return
        self._thread.join()
        if self._suites_thread is not None:
            self._wind_down([self._suites_thread], [self._suites_thread])
        self.services.close()
        self.relay.flush()

    @staticmethod
    def _wind_down(stopping: Sequence[threading.Thread], waiting: Sequence[threading.Thread | None]) -> None:
        """Stop the children ``stopping`` run until ``waiting`` end, for at most
        :data:`ABANDON_WAIT_S` (a child started meanwhile is stopped too)."""
        deadline = time.monotonic() + ABANDON_WAIT_S
        alive = [t for t in waiting if t is not None]
        while alive and time.monotonic() <= deadline:
            runner.stop_started_by(stopping)
            for thread in alive:
                thread.join(0.05)
            alive = [t for t in alive if t.is_alive()]
