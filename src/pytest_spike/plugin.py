"""The pytest entry point (``pytest11: spike``): options, markers, mark checks, fixtures.

Without ``--spike`` this is all that runs: candidate tests are checked and skipped, and
nothing else is imported or changed. With ``--spike``, the session's plugins are registered
where they apply, as pytest-xdist splits its own: ``session.worker.SpikeWorker`` where tests
are collected and run (no xdist, or an xdist worker) and ``session.controller.SpikeController``
where results are gathered and reported (no xdist, or the xdist controller).
"""

from __future__ import annotations

import gc
import os
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from pytest_spike import hookspec
from pytest_spike.fixtures import (  # noqa: F401  (fixtures are found on the plugin module)
    SERVICES,
    SETTINGS,
    _spike_data_folder,
    spike_data,
    spike_metric,
    spike_note,
    spike_readme,
    spike_upstream,
)
from pytest_spike.marks import CANDIDATE_KEY, CANDIDATE_MARK, KIND_KEY, KIND_MARK, candidate_of
from pytest_spike.model import SpikeError
from pytest_spike.settings import Settings, add_options, resolve

SKIP_REASON = "spike probe: run with --spike"
SPIKE_MARKS = frozenset({CANDIDATE_MARK, KIND_MARK})


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspec)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "spike_candidate(requirement, *, versions=None, python=None, module=None, timebox=None, "
        "budget=None): the test probes this candidate package (use pytest_spike.spike.candidate)",
    )
    config.addinivalue_line(
        "markers",
        "spike_kind(kind): the probe kind of a spike test: hello_world, real_data or upstream",
    )
    try:
        settings = resolve(config)
    except SpikeError as exc:
        raise pytest.UsageError(str(exc)) from None
    upgrading = _upgrade_asked(config, settings)
    if settings.enabled or upgrading:
        settings = _box(config, settings)
    config.stash[SETTINGS] = settings
    if settings.enabled:
        _register_session(config, settings)
    if upgrading:
        _register_upgrade(config, settings)
    if settings.enabled and settings.cell:
        # A matrix cell's process ends with its session, and what pytest and pytest-spike
        # built so far lives until then: frozen, the collections at the session's end
        # (pytest collects garbage hard to show unraisable exceptions) skip those ~40 000
        # objects, ~40 ms of a cell's ~0.3 s of CPU. The tests' own objects are collected.
        gc.freeze()


def _box(config: pytest.Config, settings: Settings) -> Settings:
    """Set how this process boxes candidate code; ``require`` where no box runs is a usage error.

    Under ``require`` a candidate installed in the running environment gets an environment
    of its own, so that the team's tests of it run boxed too (in the running environment
    they import it into pytest itself).
    """
    import dataclasses

    from pytest_spike._core import sandbox

    processes, memory, file_size = settings.sandbox_limits
    policy = sandbox.Policy(
        mode=settings.sandbox,
        limits=sandbox.Limits(processes, memory, file_size),
        allow_network=settings.allow_network,
    )
    previous = sandbox.current()
    sandbox.configure(policy)
    # In-process runs (pytester) must not leave their policy to the next session.
    config.add_cleanup(lambda: sandbox.configure(previous))
    if settings.sandbox == "require":
        try:
            sandbox.require_available(policy)
        except SpikeError as exc:
            raise pytest.UsageError(str(exc)) from None
        if settings.isolation == "never":
            raise pytest.UsageError(
                "--spike-sandbox require cannot box candidates in the running environment "
                "(--spike-isolation never): use --spike-isolation auto or always"
            )
        settings = dataclasses.replace(settings, isolation="always")
    return settings


def _upgrade_asked(config: pytest.Config, settings: Settings) -> bool:
    """``--spike-upgrade`` given, or ini ``spike_upgrades`` with ``--spike`` outside a matrix
    cell (a cell's environment is a candidate's, not the project's); never in the child pytest
    an upgrade spike starts (it reads the same ini file)."""
    if not settings.upgrades:
        return False  # the idle path: nothing of upgrade/ is imported
    from pytest_spike.upgrade._child import CHILD_ENV

    if os.environ.get(CHILD_ENV):
        return False
    return bool(config.getoption("spike_upgrades")) or (settings.enabled and not settings.cell)


def _register_upgrade(config: pytest.Config, settings: Settings) -> None:
    """Where results meet (no xdist, or the xdist controller), as the spike controller."""
    if hasattr(config, "workerinput") or config.getoption("collectonly"):
        return
    from pytest_spike.upgrade.session import SpikeUpgrade

    plugin = SpikeUpgrade(config, settings, writes_results=not settings.enabled)
    config.pluginmanager.register(plugin, "spike-upgrade")


def _register_session(config: pytest.Config, settings: Settings) -> None:
    """Register the worker side where tests run and the controller side where results meet."""
    from pytest_spike.session.sigterm import SigtermAsInterrupt

    on_worker = hasattr(config, "workerinput")
    # As pytest-xdist decides (it registers its DSession later in pytest_configure): the
    # controller distributes when a distribution mode and workers are set, unless it only collects.
    collect_only = bool(config.getoption("collectonly"))
    on_controller = (
        not on_worker
        and not collect_only
        and getattr(config.option, "dist", "no") != "no"
        and bool(getattr(config.option, "tx", None))
    )
    config.pluginmanager.register(SigtermAsInterrupt(), "spike-sigterm")
    if not on_controller:
        from pytest_spike.services import Services
        from pytest_spike.session.worker import SpikeWorker, terminal_say

        quiet = on_worker or config.getoption("verbose") < 0
        say = None if quiet else terminal_say(config)
        services = config.stash[SERVICES] = Services(settings, rootdir=config.rootpath, say=say)
        config.pluginmanager.register(SpikeWorker(config, settings, services), "spike-worker")
    if not on_worker and not collect_only:
        from pytest_spike.session.controller import SpikeController

        controller = SpikeController(config, settings, distributed=on_controller)
        config.pluginmanager.register(controller, "spike-controller")


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, Any]:
    """Check the spike marks of every collected test: a mistake is a collection error."""
    report = yield
    if not report.passed or not report.result:
        return report
    # Marks reach an item from itself or from the nodes above it: look above once per
    # collector, so a suite without spikes pays one scan of each item's own marks.
    above = any(m.name in SPIKE_MARKS for node in collector.listchain() for m in node.own_markers)
    errors = []
    for node in report.result:
        if not isinstance(node, pytest.Item):
            continue
        if not above and not any(m.name in SPIKE_MARKS for m in node.own_markers):
            continue
        try:
            found = candidate_of(node)
        except SpikeError as exc:
            errors.append(f"{node.nodeid}: {exc}")
            continue
        if found:
            node.stash[CANDIDATE_KEY], node.stash[KIND_KEY] = found
    if errors:
        report.outcome = "failed"
        report.longrepr = "\n".join(errors)
        report.result = []
    return report


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Never collect inside the spike cache (it holds other projects' test suites)."""
    cache = config.stash[SETTINGS].cache_dir
    if collection_path == cache or cache in collection_path.parents:
        return True
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.stash[SETTINGS].enabled:
        return
    for item in items:
        if CANDIDATE_KEY in item.stash:
            item.add_marker(pytest.mark.skip(reason=SKIP_REASON))
