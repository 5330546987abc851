"""Every pytest-spike setting, its option and ini key, resolved in one place.

Precedence: command line > ini (pytest.ini, pyproject.toml, tox.ini, setup.cfg) > default.
A bad value is a one-line error naming where it came from.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest

from pytest_spike._core.defaults import BACKENDS, DEFAULT_TIMEBOX_S, ISOLATION_MODES, default_cache_root
from pytest_spike.data.budgets import Rate
from pytest_spike.marks import candidate_from_values, parse_duration
from pytest_spike.model import BUILTIN_KINDS, Level, SpikeError, parse_choice
from pytest_spike.scoring import Weights

DEFAULT_PROBE_TIMEOUT = 120.0


@dataclass(frozen=True)
class _Setting:
    dest: str
    option: str
    ini: str | None
    help: str
    metavar: str | None = None
    default: Any = None


_SETTINGS = {
    s.dest: s
    for s in (
        _Setting(
            "spike",
            "--spike",
            None,
            "run spike probes: built-in probes for every candidate, "
            "and the tests marked with spike.candidate (skipped otherwise)",
        ),
        _Setting(
            "candidates",
            "--spike-candidate",
            "spike_candidates",
            "add a candidate by requirement, with no test file (repeatable)",
            "REQ",
        ),
        _Setting("select", "--spike-select", None, "keep only the named candidates (repeatable)", "NAME"),
        _Setting(
            "json",
            "--spike-json",
            None,
            "write the results of this run (one matrix cell) as JSON to PATH",
            "PATH",
        ),
        _Setting(
            "md",
            "--spike-md",
            None,
            "write the scorecard as Markdown to PATH (also appended to "
            "$GITHUB_STEP_SUMMARY under GitHub Actions)",
            "PATH",
        ),
        _Setting(
            "fail_on",
            "--spike-fail-on",
            "spike_fail_on",
            "exit non-zero when any candidate reaches LEVEL (low, medium, high, blocked); "
            "default: the exit status is pytest's own",
            "LEVEL",
        ),
        _Setting(
            "probe_timeout",
            "--spike-probe-timeout",
            "spike_probe_timeout",
            "time limit for each subprocess a probe starts, in seconds or like '2m' "
            f"(default: {DEFAULT_PROBE_TIMEOUT:.0f}s)",
            "SECONDS",
            DEFAULT_PROBE_TIMEOUT,
        ),
        _Setting(
            "probes",
            "--spike-probes",
            "spike_probes",
            f"comma-separated built-in probes to run, or 'none' (default: all: {','.join(BUILTIN_KINDS)})",
            "LIST",
            BUILTIN_KINDS,
        ),
        _Setting(
            "data",
            "--spike-data",
            "spike_data",
            "the team's data folder for spike_data (relative paths: from the current "
            "folder on the command line, from the rootdir in the ini file)",
            "DIR",
        ),
        _Setting(
            "index_url",
            "--spike-index-url",
            "spike_index_url",
            "package index (simple API) for signals and versions; default: pip's "
            "configuration (PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, pip.conf)",
            "URL",
        ),
        _Setting(
            "cache_dir",
            "--spike-cache-dir",
            "spike_cache_dir",
            "where index answers are cached (default: $XDG_CACHE_HOME/pytest-spike)",
            "DIR",
        ),
        _Setting("offline", "--spike-offline", None, "never ask the package index; use only cached answers"),
        _Setting(
            "stale_after",
            "--spike-stale-after",
            "spike_stale_after",
            "days since the last release after which a project is stale (default: 730)",
            "DAYS",
            730,
        ),
        _Setting(
            "plan",
            "--spike-plan",
            None,
            "write the spike's plan (candidates with their versions and Pythons, and the "
            "ini defaults) as JSON to PATH; use with --collect-only",
            "PATH",
        ),
        _Setting(
            "cell",
            "--spike-cell",
            None,
            "the matrix cell this run is (recorded in --spike-json), e.g. py3.11-tomli-2.2.1",
            "ID",
        ),
        _Setting(
            "python_default",
            None,
            "spike_python",
            "Python versions a candidate without python= runs on in the matrix, e.g. '3.9 3.11 3.13'",
        ),
        _Setting(
            "versions_default",
            None,
            "spike_versions",
            "versions a candidate without versions= runs in the matrix: a specifier, a list or 'latest:N'",
        ),
        _Setting(
            "isolation",
            "--spike-isolation",
            "spike_isolation",
            "where candidates run: 'auto' (the running environment when the candidate is "
            "installed there at an accepted version, else an environment of its own), "
            "'always' (always its own), 'never' (only the running environment); default: auto",
            "MODE",
            "auto",
        ),
        _Setting("fresh", "--spike-fresh", None, "rebuild the candidates' cached environments"),
        _Setting(
            "backend",
            "--spike-backend",
            "spike_backend",
            "how candidate environments are built: 'auto' (uv when installed, else venv), "
            "'uv' or 'venv' (default: auto)",
            "NAME",
            "auto",
        ),
        _Setting(
            "keep_envs",
            "--spike-keep-envs",
            None,
            "print where the candidates' environments are (they are cached and reused)",
        ),
        _Setting(
            "requirements",
            None,
            "spike_requirements",
            "the project's requirement or constraint files for the fit check, one per line "
            "(default: the packages of the running environment)",
        ),
        _Setting(
            "upstream_sample",
            "--spike-upstream-sample",
            "spike_upstream_sample",
            "how many upstream tests the upstream probe runs (one per file; default: 5)",
            "N",
            5,
        ),
        _Setting(
            "upstream_seed",
            "--spike-upstream-seed",
            "spike_upstream_seed",
            "seed of the upstream sample's hash order (recorded in the results; default: 0)",
            "SEED",
            0,
        ),
        _Setting(
            "timebox",
            "--spike-timebox",
            "spike_timebox",
            "wall time all probes of one candidate may take, in seconds or like '10m'; "
            "a candidate's timebox= wins (default: 10m)",
            "SECONDS",
            DEFAULT_TIMEBOX_S,
        ),
        _Setting(
            "cost",
            "--spike-cost-per-hour",
            "spike_cost_per_hour",
            "what an hour of compute costs here, e.g. '3.20' or '2.5 EUR': the scorecard "
            "turns each candidate's measured time into money (the option overrides the ini "
            "key, e.g. per matrix cell)",
            "RATE",
        ),
        _Setting(
            "weights",
            None,
            "spike_weights",
            "points per severity or finding code, one 'name = points' per line, "
            "e.g. 'high = 25' or 'signals.stale = 0'",
        ),
    )
}


def add_options(parser: pytest.Parser) -> None:
    """Register the ``--spike-*`` options and their ``spike_*`` ini keys."""
    group = parser.getgroup("spike", "research spikes (pytest-spike)")
    for s in _SETTINGS.values():
        dest = "spike" if s.dest == "spike" else f"spike_{s.dest}"
        if s.option in ("--spike", "--spike-offline", "--spike-fresh", "--spike-keep-envs"):
            group.addoption(s.option, action="store_true", default=False, dest=dest, help=s.help)
        elif s.option in ("--spike-candidate", "--spike-select"):
            group.addoption(s.option, action="append", default=[], dest=dest, metavar=s.metavar, help=s.help)
        elif s.option:
            group.addoption(s.option, default=None, dest=dest, metavar=s.metavar, help=s.help)
        if s.ini:
            kind = "linelist" if s.dest in ("weights", "candidates", "requirements") else "string"
            parser.addini(s.ini, s.help, type=kind, default=[] if kind == "linelist" else None)


@dataclass(frozen=True)
class Settings:
    """Resolved settings for one run."""

    enabled: bool = False
    candidates: tuple[str, ...] = ()
    select: tuple[str, ...] = ()
    json_path: Path | None = None
    md_path: Path | None = None
    fail_on: Level | None = None
    probe_timeout: float = DEFAULT_PROBE_TIMEOUT
    probes: tuple[str, ...] = BUILTIN_KINDS
    #: (folder, where the setting came from), checked when a test first asks for spike_data
    data: tuple[Path, str] | None = None
    index_url: str | None = None
    cache_dir: Path = field(default_factory=default_cache_root)
    offline: bool = False
    stale_after_days: int = 730
    plan_path: Path | None = None
    cell: str | None = None
    python_default: tuple[str, ...] = ()
    versions_default: str | tuple[str, ...] | None = None
    isolation: str = "auto"
    timebox: float = DEFAULT_TIMEBOX_S
    cost: Rate | None = None
    backend: str = "auto"
    fresh: bool = False
    keep_envs: bool = False
    requirement_files: tuple[str, ...] | None = None
    upstream_sample: int = 5
    upstream_seed: int = 0
    weights: Weights = field(default_factory=Weights)


#: The resolved settings of a run, in ``config.stash``.
SETTINGS = pytest.StashKey[Settings]()


def resolve(config: pytest.Config) -> Settings:
    """Resolve every setting with its stated precedence; raise SpikeError naming the source."""
    ini_source = _ini_source(config)

    def pick(dest: str, parse: Callable[[str, str], Any]) -> Any:
        s = _SETTINGS[dest]
        value = config.getoption(f"spike_{dest}", None) if s.option else None
        if value is not None:
            return parse(value, s.option or dest)
        if s.ini:
            raw = config.getini(s.ini)
            if raw:
                return parse(raw, f"{s.ini} in {ini_source}")
        return s.default

    candidates = tuple(config.getoption("spike_candidates") or ()) + tuple(
        config.getini("spike_candidates") or ()
    )
    return Settings(
        enabled=bool(config.getoption("spike")),
        candidates=tuple(c.strip() for c in candidates if c.strip()),
        select=tuple(config.getoption("spike_select") or ()),
        json_path=pick("json", lambda v, _w: _path(v, config.invocation_params.dir)),
        md_path=pick("md", lambda v, _w: _path(v, config.invocation_params.dir)),
        fail_on=pick("fail_on", lambda v, w: parse_choice(Level, v, w)),
        probe_timeout=pick("probe_timeout", lambda v, w: parse_duration(v, w)),
        probes=pick("probes", _probe_list),
        data=_data_setting(config),
        index_url=pick("index_url", lambda v, _w: v.strip() or None),
        cache_dir=pick("cache_dir", lambda v, _w: _path(v, config.invocation_params.dir))
        or default_cache_root(),
        offline=bool(config.getoption("spike_offline")),
        stale_after_days=pick("stale_after", _days),
        plan_path=pick("plan", lambda v, _w: _path(v, config.invocation_params.dir)),
        cell=pick("cell", lambda v, _w: v.strip() or None),
        python_default=pick("python_default", _pythons) or (),
        versions_default=pick("versions_default", _versions_default),
        isolation=pick("isolation", _isolation),
        timebox=pick("timebox", lambda v, w: parse_duration(v, w)),
        cost=pick("cost", Rate.parse),
        backend=pick("backend", _backend),
        fresh=bool(config.getoption("spike_fresh")),
        keep_envs=bool(config.getoption("spike_keep_envs")),
        requirement_files=tuple(config.getini("spike_requirements")) or None,
        upstream_sample=pick("upstream_sample", lambda v, w: _whole(v, w, minimum=1)),
        upstream_seed=pick("upstream_seed", lambda v, w: _whole(v, w, minimum=0)),
        weights=Weights.parse(config.getini("spike_weights"), f"spike_weights in {ini_source}")
        if config.getini("spike_weights")
        else Weights(),
    )


def _data_setting(config: pytest.Config) -> tuple[Path, str] | None:
    value = config.getoption("spike_data", None)
    if value:
        return _path(value, config.invocation_params.dir), "--spike-data"
    value = config.getini("spike_data")
    if value:
        return _path(value, config.rootpath), f"spike_data in {_ini_source(config)}"
    return None


def _pythons(value: str, where: str) -> tuple[str, ...]:
    items = tuple(value.replace(",", " ").split())
    return candidate_from_values("x", where=where, python=list(items)).python


def _versions_default(value: str, where: str) -> str | tuple[str, ...] | None:
    text = value.strip()
    try:
        return candidate_from_values("x", where=where, versions=text).versions
    except SpikeError:
        # Not a specifier nor 'latest:N': a list of versions, as in versions=["1.0", "2.0"].
        return candidate_from_values("x", where=where, versions=text.replace(",", " ").split()).versions


def _backend(value: str, where: str) -> str:
    name = value.strip().lower()
    if name not in BACKENDS:
        raise SpikeError(f"{where}: {value!r} is not one of {', '.join(BACKENDS)}")
    return name


def _isolation(value: str, where: str) -> str:
    mode = value.strip().lower()
    if mode not in ISOLATION_MODES:
        raise SpikeError(f"{where}: {value!r} is not one of {', '.join(ISOLATION_MODES)}")
    return mode


def _whole(value: str, where: str, *, minimum: int) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        number = minimum - 1
    if number < minimum:
        raise SpikeError(f"{where}: {value!r} is not a whole number >= {minimum}")
    return number


def _days(value: str, where: str) -> int:
    try:
        days = int(str(value).strip().rstrip("d"))
    except ValueError:
        days = -1
    if days <= 0:
        raise SpikeError(f"{where}: {value!r} is not a number of days, e.g. 730")
    return days


def _probe_list(value: str, where: str) -> tuple[str, ...]:
    if value.strip().lower() == "none":
        return ()
    names = tuple(dict.fromkeys(n.strip() for n in value.split(",") if n.strip()))
    unknown = [n for n in names if n not in BUILTIN_KINDS]
    if unknown:
        raise SpikeError(
            f"{where}: {unknown[0]!r} is not a built-in probe; choose from {', '.join(BUILTIN_KINDS)}"
        )
    return names


def _path(value: str, base: Path) -> Path:
    return (base / os.path.expanduser(value)).resolve()


def _ini_source(config: pytest.Config) -> str:
    return config.inipath.name if config.inipath else "the ini file"
