"""Fixtures that give hand-written spike tests the plugin's machinery."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from importlib import metadata
from typing import TYPE_CHECKING, Callable

import pytest

from pytest_spike.marks import CANDIDATE_KEY
from pytest_spike.model import Candidate, Metric, SpikeError
from pytest_spike.settings import Settings

if TYPE_CHECKING:  # imported in the fixtures that need them: a run without --spike never does
    from pytest_spike.data.folder import SpikeData
    from pytest_spike.readme.run import SpikeReadme
    from pytest_spike.services import Services
    from pytest_spike.upstream.run import SpikeUpstream

#: The resolved settings of a run (every run, with or without --spike).
SETTINGS = pytest.StashKey[Settings]()
#: The index client, environments and work folders of a --spike run (see plugin.py).
SERVICES: pytest.StashKey[Services] = pytest.StashKey()
_RECORDER = pytest.StashKey["SpikeRecorder"]()
#: The SpikeData a test used, so a failure can name the record it failed on.
DATA_USED = pytest.StashKey["SpikeData"]()


@dataclass
class SpikeRecorder:
    """Notes and metrics one test reported; they ride on its report to the scorecard."""

    notes: list[str] = field(default_factory=list)
    metrics: dict[str, Metric] = field(default_factory=dict)

    @classmethod
    def of(cls, item: pytest.Item) -> SpikeRecorder:
        return item.stash.setdefault(_RECORDER, cls())


def _require_candidate(request: pytest.FixtureRequest, fixture: str) -> pytest.Item:
    item = request.node
    if not isinstance(item, pytest.Item) or CANDIDATE_KEY not in item.stash:
        raise SpikeError(
            f"{fixture} is for spike tests: mark {request.node.nodeid} with spike.candidate(...)"
        )
    return item


def _candidate(request: pytest.FixtureRequest, fixture: str) -> Candidate:
    # The mark was checked and turned into a Candidate when the test was collected.
    return _require_candidate(request, fixture).stash[CANDIDATE_KEY]


@pytest.fixture
def spike_readme(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> SpikeReadme:
    """The README examples of the test's candidate, as installed in this environment.

    ``spike_readme.blocks(kind=None)`` lists the code blocks (kinds: python, pycon, shell,
    toml, json, other); ``spike_readme.run()`` runs the Python ones in subprocesses, alone
    and in order, and returns an outcome with ``.ok``, ``.failed``, ``.outcomes``,
    ``.summary()``.

    .. code-block:: python

        @spike.candidate("humanize")
        def test_readme_examples(spike_readme):
            run = spike_readme.run()
            assert run.ok, run.summary()
    """
    candidate = _candidate(request, "spike_readme")
    from pytest_spike.readme.run import DEFAULT_BLOCK_TIMEOUT_S, SpikeReadme

    return SpikeReadme(
        python=sys.executable,
        dist_name=candidate.project,
        timeout=DEFAULT_BLOCK_TIMEOUT_S,
        workdir=tmp_path_factory.mktemp(f"readme-{candidate.name}"),
        allow_network=request.config.stash[SETTINGS].allow_network,
    )


@pytest.fixture
def spike_note(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Add a free-text note about the candidate to the report.

    .. code-block:: python

        def test_api_feels(spike_note):
            spike_note("no type hints on the public API")
    """
    recorder = SpikeRecorder.of(_require_candidate(request, "spike_note"))

    def note(text: str) -> None:
        recorder.notes.append(" ".join(str(text).split()))

    return note


@pytest.fixture
def spike_metric(request: pytest.FixtureRequest) -> Callable[..., None]:
    """Record a named number, compared across candidates in the scorecard.

    ``spike_metric(name, value, *, unit=None, better="higher")``; ``better`` is
    ``"higher"`` or ``"lower"`` and decides which candidate the scorecard marks best.

    .. code-block:: python

        def test_speed(spike_metric):
            spike_metric("rows/s", 1250.0, unit="rows/s", better="higher")
    """
    recorder = SpikeRecorder.of(_require_candidate(request, "spike_metric"))

    def metric(name: str, value: float, *, unit: str | None = None, better: str = "higher") -> None:
        if not isinstance(name, str) or not name.strip():
            raise SpikeError(f"spike_metric: the name must be a non-empty string, got {name!r}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise SpikeError(f"spike_metric({name!r}): value must be a finite number, got {value!r}")
        if better not in ("higher", "lower"):
            raise SpikeError(f"spike_metric({name!r}): better={better!r} must be 'higher' or 'lower'")
        recorder.metrics[name.strip()] = Metric(name.strip(), float(value), unit, better)

    return metric


@pytest.fixture
def spike_upstream(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> SpikeUpstream:
    """The upstream tests of the test's candidate, from the sdist of its installed version.

    ``collect().ids`` lists what collects, ``sample(n)`` picks a deterministic sample (one
    test per file, hash-ordered), ``run(nodeids)`` runs them against the installed package
    and ``probe(n)`` does it all, returning counts and outcomes.

    .. code-block:: python

        @spike.candidate("more-itertools")
        @spike.upstream
        def test_their_tests_pass_here(spike_upstream):
            result = spike_upstream.probe(5)
            assert result.count("failed") == 0, result.outcomes
    """
    candidate = _candidate(request, "spike_upstream")
    settings = request.config.stash[SETTINGS]
    services = request.config.stash[SERVICES]  # a candidate's test runs only under --spike
    try:
        version = metadata.version(candidate.project)
    except metadata.PackageNotFoundError:
        pytest.fail(
            f"spike_upstream: {candidate.project} is not installed for {sys.executable}", pytrace=False
        )
    from pytest_spike.index.client import sdist_entry
    from pytest_spike.upstream.run import SpikeUpstream

    try:
        sdist = sdist_entry(services.index(), candidate.project, version)
    except SpikeError as exc:
        pytest.fail(f"spike_upstream: {exc}", pytrace=False)
    return SpikeUpstream(
        python=sys.executable,
        dist_name=candidate.project,
        version=version,
        source=sdist.url if sdist else None,
        workdir=tmp_path_factory.mktemp(f"upstream-{candidate.name}"),
        timeout=settings.probe_timeout,
        sha256=sdist.hashes.get("sha256") if sdist else None,
    )


@pytest.fixture(scope="session")
def _spike_data_folder(pytestconfig: pytest.Config) -> SpikeData:
    data = pytestconfig.stash[SETTINGS].data
    if data is None:
        pytest.fail(
            'spike_data needs a data folder: pass --spike-data DIR or set spike_data = "DIR" '
            "under [tool.pytest.ini_options] in pyproject.toml",
            pytrace=False,
        )
    try:
        from pytest_spike.data.folder import SpikeData

        return SpikeData(data[0], source=data[1])
    except SpikeError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def spike_data(request: pytest.FixtureRequest, _spike_data_folder: SpikeData) -> SpikeData:
    """The team's data folder (``--spike-data DIR`` or ini ``spike_data``).

    ``files(pattern)`` lists files, ``rows(path, n=10)`` reads the first records of CSV,
    TSV, JSON Lines, JSON arrays (Parquet with pyarrow), ``sample(path, n, seed=0)`` a
    seeded sample, ``profile(path)`` column kinds and data smells (shown as notes), and
    ``record(row)`` remembers the record under test so a failure names it.

    .. code-block:: python

        @spike.real_data
        def test_parses_our_orders(spike_data):
            import candidate
            for row in spike_data.rows("orders.csv", n=10):
                with spike_data.record(row):
                    candidate.parse(row)
    """
    data = _spike_data_folder.fresh()
    request.node.stash[DATA_USED] = data
    return data
