"""The built-in probe kinds: one :class:`ProbeKind` value per kind, and :data:`BUILTIN`.

Everything pytest-spike knows about a kind is its row: the function that runs it, the
version its cached evidence carries, the settings its outcome depends on, what its cached
evidence keeps, what the session fetches for it ahead of time, whether it speaks of a
release, and its finding codes. The model (the scorecard's order), the settings (the
``--spike-probes`` choices), the probe items, the evidence cache, the prebuild, the
upgrade's release probes and the reports all read :data:`BUILTIN`. Adding a kind is one
probe module and one row here.

This module sits at the model's floor and imports nothing of pytest-spike at run time: the
settings read it in every pytest session, so a probe's function is named here
(``module:function``) and imported only when the probe runs.
"""

from __future__ import annotations

import enum
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, final

#: A probe: takes the candidate's ``ProbeContext``, returns its ``ProbeOutcome``. Typed
#: loosely on purpose: this module is on the model's floor and names no higher module, not
#: even for types (benchmarks/imports.py counts those arrows too).
Probe = Callable[[Any], Any]
#: The run's ``Settings`` (as above, not named here).
Settings = Any


class Prefetch(str, enum.Enum):
    """What the session's background prebuild fetches for a kind whose evidence is not kept."""

    #: the index's metadata answers for the installed version
    PROJECT_META = "project_meta"
    #: the sdist of the installed version, extracted into the sdist cache
    SDIST = "sdist"


@final
@dataclass(frozen=True)
class ProbeKind:
    """One built-in probe kind.

    ``probe`` names the function (``package.module:function``). ``reads`` gives the values
    of the settings the outcome depends on (part of the evidence's cache key): typed, so a
    renamed setting is a type error, and required, so a new kind cannot forget it.
    """

    name: str
    probe: str
    #: bumped when the probe's logic changes what it would find (older evidence is not reused)
    version: int
    reads: Callable[[Settings], tuple[object, ...]]
    #: the finding codes the probe gives (``<name>.error`` is added: the probe could not run)
    codes: tuple[str, ...]
    #: codes that say the index or the network could not be asked: such an outcome is not kept
    transient: frozenset[str] = frozenset()
    #: an outcome with a finding blamed on the environment (index or network trouble) is not kept
    environment_is_transient: bool = False
    #: the cache key includes the project's requirements when the fit check compares with them
    keyed_by_project: bool = False
    #: evidence is kept with the index answers it used and reused only while they are fresh
    rests_on_index_answers: bool = False
    prefetch: frozenset[Prefetch] = frozenset()
    #: it speaks of a release itself: the upgrade session runs it on each target version
    release: bool = False
    #: the details key listing the candidate's import names (what a test's id may call it)
    module_names: str | None = None
    #: its details say where the candidate's environment is (``env``, ``python``, ``installed``)
    locates_environment: bool = False
    #: as a release probe of an upgrade it compares the release with the installed version the
    #: upgrade moves from (``ProbeContext.upgrading_from``): its evidence is keyed by that too
    compares_upgrade: bool = False
    #: how long it runs children of its own, for the order the session runs probes ahead in
    #: (the larger first, so the longest start soonest): 0, short; 1 (``True``), a child
    #: interpreter or pytest for a while (README examples, docs pages); 2, a chain of them
    #: (upstream tests: the sdist, an environment with their harness, then pytest)
    heavy: int = 0

    @property
    def all_codes(self) -> tuple[str, ...]:
        """Its codes and ``<name>.error`` (pytest-spike could not run it)."""
        return (*self.codes, self.error_code)

    @property
    def error_code(self) -> str:
        return f"{self.name}.error"

    @property
    def function(self) -> Probe:
        """The probe's function, from its module as imported now (not kept: an in-process
        pytester run imports pytest-spike's modules anew, and a function kept from an older
        import would catch the older module's exception classes, not the new ones)."""
        module, _, attr = self.probe.partition(":")
        found: Probe = getattr(importlib.import_module(module), attr)
        return found


def _install(s: Settings) -> tuple[object, ...]:
    return (s.isolation, s.backend, s.requirement_files, s.probe_timeout, s.index_url, s.offline)


def _upstream(s: Settings) -> tuple[object, ...]:
    return (
        s.isolation,
        s.backend,
        s.probe_timeout,
        s.upstream_sample,
        s.upstream_seed,
        s.allow_network,
        s.index_url,
        s.offline,
    )


#: The built-in kinds, in the order they run and the scorecard lists them.
BUILTIN: tuple[ProbeKind, ...] = (
    ProbeKind(
        "install",
        "pytest_spike.probes.install:probe_install",
        version=2,
        reads=_install,
        codes=(
            "install.missing",
            "install.failed",
            "install.version_mismatch",
            "install.local",
            "install.sdist",
            "install.footprint",
            "install.heavy",
            "install.pip_check",
            "install.conflict",
            "install.changes",
            "install.fit_unchecked",
            "install.unchecked",
            "install.credentials",
            "install.rebuilt",
        ),
        transient=frozenset({"install.fit_unchecked"}),
        environment_is_transient=True,
        keyed_by_project=True,
        locates_environment=True,
    ),
    ProbeKind(
        "import",
        "pytest_spike.probes.importing:probe_import",
        version=3,
        reads=lambda s: (s.isolation, s.probe_timeout),
        codes=(
            "import.failed",
            "import.crashed",
            "import.timeout",
            "import.slow",
            "import.optional",
            "import.modules",
            "import.warning",
            "import.deprecation",
            "import.alias",
            "import.foreign_warning",
        ),
        release=True,
        module_names="modules",
    ),
    ProbeKind(
        "readme",
        "pytest_spike.probes.readme:probe_readme",
        version=4,
        reads=lambda s: (s.isolation, s.probe_timeout, s.allow_network),
        codes=("readme.failed", "readme.timeout", "readme.unchecked", "readme.none"),
        heavy=True,
    ),
    ProbeKind(
        "docs",
        "pytest_spike.probes.docs:probe_docs",
        version=2,
        reads=lambda s: (s.isolation, s.probe_timeout, s.allow_network, s.index_url, s.offline),
        codes=("docs.failed", "docs.timeout", "docs.unchecked", "docs.none", "docs.pages"),
        transient=frozenset({"docs.unchecked"}),
        prefetch=frozenset({Prefetch.SDIST}),
        heavy=True,
    ),
    ProbeKind(
        "upstream",
        "pytest_spike.probes.upstream:probe_upstream",
        version=5,
        reads=_upstream,
        codes=(
            "upstream.failed",
            "upstream.flaky",
            "upstream.harness_gap",
            "upstream.low_confidence",
            "upstream.unavailable",
            "upstream.uncollectable",
            "upstream.unsafe",
            "upstream.unchecked",
        ),
        transient=frozenset({"upstream.unchecked"}),
        prefetch=frozenset({Prefetch.SDIST}),
        release=True,
        heavy=2,
    ),
    ProbeKind(
        "signals",
        "pytest_spike.probes.signals:probe_signals",
        version=3,
        reads=lambda s: (s.stale_after_days, s.index_url, s.offline),
        codes=(
            "signals.stale",
            "signals.inactive",
            "signals.cadence",
            "signals.deprecated",
            "signals.yanked",
            "signals.young_release",
            "signals.recent_prereleases",
            "signals.python_gap",
            "signals.no_wheels",
            "signals.no_platform_wheel",
            "signals.no_license",
            "signals.no_urls",
            "signals.not_on_index",
            "signals.vulnerable",
            "signals.vulnerabilities_unknown",
            "signals.unchecked",
            "signals.newest_needs_python",
        ),
        transient=frozenset({"signals.unchecked"}),
        environment_is_transient=True,
        rests_on_index_answers=True,
        prefetch=frozenset({Prefetch.PROJECT_META}),
        release=True,
    ),
    ProbeKind(
        "licence",
        "pytest_spike.probes.licence:probe_licence",
        version=2,
        reads=lambda s: (s.isolation, s.licenses),
        codes=("licence.denied", "licence.unknown", "licence.changed", "licence.summary"),
        release=True,
        compares_upgrade=True,
    ),
)

#: The built-in kinds' names, in order.
BUILTIN_NAMES: tuple[str, ...] = tuple(k.name for k in BUILTIN)
_BY_NAME = {k.name: k for k in BUILTIN}


def kind(name: str) -> ProbeKind:
    """The built-in kind called ``name`` (KeyError: there is none)."""
    return _BY_NAME[name]


def find(name: str) -> ProbeKind | None:
    """The built-in kind called ``name``; None for a user's kind (hello_world, custom...)."""
    return _BY_NAME.get(name)


def builtin(name: str) -> bool:
    """Whether ``name`` is a built-in kind (made by pytest-spike, not a user's test)."""
    return name in _BY_NAME
