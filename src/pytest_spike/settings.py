"""Every pytest-spike setting, declared once: its option, ini key, type, parser, default and help.

The body of :class:`Settings` is the table (as nox's ``_options.py`` is for nox): each field
is one setting, and :data:`OPTIONS` is read off it to register the ``--spike-*`` options and
``spike_*`` ini keys and to resolve them. Precedence: command line > ini (pytest.ini,
pyproject.toml, tox.ini, setup.cfg) > default. A bad value is a one-line error naming where
it came from.

This module runs in every pytest session, with or without ``--spike``: it imports no pytest
(only its types) and nothing of pytest-spike beyond marks and model; the parsers that need
scoring or budgets import them when a value is actually given.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal

from pytest_spike.kinds import BUILTIN_NAMES
from pytest_spike.marks import candidate_from_values, parse_duration
from pytest_spike.model import (
    BACKENDS,
    ISOLATION_MODES,
    SANDBOX_LIMITS,
    SANDBOX_MODES,
    STALE_AFTER_DAYS,
    Level,
    SpikeError,
    default_cache_root,
    parse_choice,
)
from pytest_spike.report import formats
from pytest_spike.report.formats import FormatSpec

if TYPE_CHECKING:
    import pytest

    from pytest_spike.data.budgets import Rate
    from pytest_spike.scoring import Weights
    from pytest_spike.waivers import Waiver


@dataclass(frozen=True)
class Source:
    """Where a raw value came from: named in errors, and the base of relative paths."""

    where: str
    base: Path


#: How a parser turns a raw value (a string, or a list for a repeated option or a linelist
#: ini key) into the setting's value; it raises SpikeError naming ``source.where``.
Parse = Callable[[Any, Source], Any]

_OPTION = "spike-option"


@dataclass(frozen=True)
class Option:
    """One setting: how it is spelled on the command line and in the ini file, and parsed."""

    help: str
    flag: str | None = None
    ini: str | None = None
    metavar: str | None = None
    #: ``value`` (takes one argument), ``switch`` (store_true) or ``repeat`` (append)
    #: or ``formats``: one ``--spike-NAME PATH`` per report format, into a dict by name
    action: Literal["value", "switch", "repeat", "formats"] = "value"
    ini_type: Literal["string", "linelist", "bool"] = "string"
    parse: Parse | None = None
    default: Any = None
    default_factory: Callable[[], Any] | None = None
    #: how the default reads in the help (``{default}`` in ``help``)
    show: Callable[[Any], str] = str
    #: the argparse dest, when it is not the flag's own (kept for ``config.getoption``)
    dest_name: str | None = None
    #: the command line and the ini file add up instead of the first one winning
    merge: bool = False
    #: relative paths in the ini file are from the rootdir (on the command line: the cwd)
    ini_from_rootdir: bool = False
    #: the Settings field (filled in when the table is read)
    name: str = ""

    @property
    def dest(self) -> str:
        if self.dest_name:
            return self.dest_name
        assert self.flag is not None
        return self.flag.lstrip("-").replace("-", "_")

    def default_value(self) -> Any:
        return self.default_factory() if self.default_factory is not None else self.default

    def help_text(self) -> str:
        if "{default}" not in self.help:
            return self.help
        return self.help.replace("{default}", self.show(self.default_value()))

    def resolve(self, config: pytest.Config, ini_file: str) -> Any:
        """This setting's value in ``config``, by the stated precedence."""
        cwd = config.invocation_params.dir
        if self.action == "switch":
            return bool(config.getoption(self.dest)) or bool(self.ini and config.getini(self.ini))
        if self.action == "formats":
            given_paths = {row: config.getoption(_format_dest(row), None) for row in formats.FORMATS}
            return {
                row.name: _report_path(row)(value, Source(f"--spike-{row.name}", cwd))
                for row, value in given_paths.items()
                if value is not None
            }
        given = config.getoption(self.dest, None) if self.flag else None
        from_ini = config.getini(self.ini) if self.ini else None
        where_ini = Source(f"{self.ini} in {ini_file}", config.rootpath if self.ini_from_rootdir else cwd)
        assert self.parse is not None, self.name
        if self.merge:
            return self.parse([*(given or ()), *(from_ini or ())], Source(str(self.flag), cwd))
        if given is not None and given != []:
            return self.parse(given, Source(str(self.flag), cwd))
        if from_ini:
            return self.parse(from_ini, where_ini)
        return self.default_value()


def option(**spec: Any) -> Any:
    """A Settings field described by an :class:`Option` (see the class body below)."""
    described = Option(**spec)
    if described.default_factory is not None:
        return field(default_factory=described.default_factory, metadata={_OPTION: described})
    return field(default=described.default, metadata={_OPTION: described})


# -- parsers: (raw value, source) -> value ------------------------------------------------------


def _text(value: str, source: Source) -> str | None:
    return value.strip() or None


def _path(value: str, source: Source) -> Path:
    return (source.base / os.path.expanduser(value)).resolve()


def _report_path(spec: FormatSpec) -> Parse:
    def parse(value: str, source: Source) -> Path:
        try:
            spec.check()
        except SpikeError as exc:
            raise SpikeError(f"{source.where}: {exc}") from None
        return _path(value, source)

    return parse


def _data(value: str, source: Source) -> tuple[Path, str]:
    return _path(value, source), source.where


def _level(value: str, source: Source) -> Level:
    result: Level = parse_choice(Level, value, source.where)
    return result


def _duration(value: str, source: Source) -> float:
    return parse_duration(value, source.where)


def _choice(choices: tuple[str, ...]) -> Parse:
    def parse(value: str, source: Source) -> str:
        name = value.strip().lower()
        if name not in choices:
            raise SpikeError(f"{source.where}: {value!r} is not one of {', '.join(choices)}")
        return name

    return parse


def _limits(value: str, source: Source) -> tuple[int, int, int]:
    """'processes=N,memory=SIZE,file=SIZE' (any of them; a size is MB, or ends in M or G)."""
    names = ("processes", "memory", "file")
    found = dict(zip(names, SANDBOX_LIMITS))
    for part in value.replace(",", " ").split():
        name, _, raw = part.partition("=")
        name, raw = name.strip().lower(), raw.strip().upper()
        factor = 1
        if name != "processes" and raw[-1:] in ("M", "G"):
            factor, raw = (1024 if raw[-1] == "G" else 1), raw[:-1]
        if name not in found or not raw.isdigit() or int(raw) <= 0:
            raise SpikeError(
                f"{source.where}: {part!r} is not a limit; write e.g. 'processes=256,memory=4G,file=1G'"
            )
        found[name] = int(raw) * factor
    return found["processes"], found["memory"], found["file"]


def _whole(minimum: int) -> Parse:
    def parse(value: str, source: Source) -> int:
        try:
            number = int(str(value).strip())
        except ValueError:
            number = minimum - 1
        if number < minimum:
            raise SpikeError(f"{source.where}: {value!r} is not a whole number >= {minimum}")
        return number

    return parse


def _days(value: str, source: Source) -> int:
    try:
        days = int(str(value).strip().rstrip("d"))
    except ValueError:
        days = -1
    if days <= 0:
        raise SpikeError(f"{source.where}: {value!r} is not a number of days, e.g. {STALE_AFTER_DAYS}")
    return days


def _probe_list(value: str, source: Source) -> tuple[str, ...]:
    if value.strip().lower() == "none":
        return ()
    names = tuple(dict.fromkeys(n.strip() for n in value.split(",") if n.strip()))
    unknown = [n for n in names if n not in BUILTIN_NAMES]
    if unknown:
        raise SpikeError(
            f"{source.where}: {unknown[0]!r} is not a built-in probe; choose from {', '.join(BUILTIN_NAMES)}"
        )
    return names


def _requirements(values: list[str], source: Source) -> tuple[str, ...]:
    return tuple(r.strip() for r in values if r.strip())


def _names(values: list[str], source: Source) -> tuple[str, ...]:
    return tuple(values)


def _upgrades(values: list[str], source: Source) -> tuple[str, ...]:
    from pytest_spike.model import parse_requirement

    found = tuple(r.strip() for r in values if r.strip())
    for text in found:
        parse_requirement(text, source.where)
    return found


def _lines(values: list[str], source: Source) -> tuple[str, ...] | None:
    return tuple(values) or None


def _pythons(value: str, source: Source) -> tuple[str, ...]:
    items = tuple(value.replace(",", " ").split())
    return candidate_from_values("x", where=source.where, python=list(items)).python


def _versions_default(value: str, source: Source) -> str | tuple[str, ...] | None:
    text = value.strip()
    try:
        return candidate_from_values("x", where=source.where, versions=text).versions
    except SpikeError:
        # Not a specifier nor 'latest:N': a list of versions, as in versions=["1.0", "2.0"].
        return candidate_from_values(
            "x", where=source.where, versions=text.replace(",", " ").split()
        ).versions


def _rate(value: str, source: Source) -> Rate:
    from pytest_spike.data.budgets import Rate  # only when a rate is given: idle runs skip it

    return Rate.parse(value, source.where)


def _weights(lines: list[str], source: Source) -> Weights:
    from pytest_spike.scoring import Weights  # only when weights are given: idle runs skip it

    return Weights.parse(lines, source.where)


def _waivers(lines: list[str], source: Source) -> tuple[Waiver, ...]:
    from pytest_spike.waivers import parse_waivers  # only when waivers are given: idle runs skip it

    return parse_waivers(lines, source.where)


def _licence_rules(lines: list[str], source: Source) -> tuple[tuple[str, tuple[str, ...]], ...]:
    rules = []
    for line in lines:
        verb, colon, rest = line.partition(":")
        names = tuple(n.strip() for n in rest.split(",") if n.strip())
        if not colon or verb.strip().lower() not in ("allow", "deny") or not names:
            raise SpikeError(
                f"{source.where}: {line.strip()!r} is not 'allow: ID, ...' or 'deny: ID, ...' "
                "(SPDX ids or expressions, wildcards such as GPL-*)"
            )
        rules.append((verb.strip().lower(), names))
    return tuple(rules)


def _duration_text(seconds: float) -> str:
    return f"{seconds / 60:g}m" if seconds >= 600 and seconds % 60 == 0 else f"{seconds:g}s"


# -- the table -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """Resolved settings for one run; each field is one row of the settings table."""

    enabled: bool = option(
        flag="--spike",
        action="switch",
        default=False,
        help="run spike probes: built-in probes for every candidate, "
        "and the tests marked with spike.candidate (skipped otherwise)",
    )
    candidates: tuple[str, ...] = option(
        flag="--spike-candidate",
        ini="spike_candidates",
        ini_type="linelist",
        action="repeat",
        merge=True,
        dest_name="spike_candidates",
        metavar="REQ",
        parse=_requirements,
        default=(),
        help="add a candidate by requirement, with no test file (repeatable)",
    )
    select: tuple[str, ...] = option(
        flag="--spike-select",
        action="repeat",
        metavar="NAME",
        parse=_names,
        default=(),
        help="keep only the named candidates (repeatable)",
    )
    #: the report formats asked for (``--spike-json PATH``...), by name: one option per row of
    #: :data:`pytest_spike.report.formats.FORMATS`, listed here
    reports: dict[str, Path] = option(action="formats", default_factory=dict, help="")
    fail_on: Level | None = option(
        flag="--spike-fail-on",
        ini="spike_fail_on",
        metavar="LEVEL",
        parse=_level,
        help="exit non-zero when any candidate reaches LEVEL (low, medium, high, blocked); "
        "default: the exit status is pytest's own",
    )
    probe_timeout: float = option(
        flag="--spike-probe-timeout",
        ini="spike_probe_timeout",
        metavar="SECONDS",
        parse=_duration,
        default=120.0,
        show=_duration_text,
        help="time limit for each subprocess a probe starts, in seconds or like '2m' (default: {default})",
    )
    probes: tuple[str, ...] = option(
        flag="--spike-probes",
        ini="spike_probes",
        metavar="LIST",
        parse=_probe_list,
        default=BUILTIN_NAMES,
        show=",".join,
        help="comma-separated built-in probes to run, or 'none' (default: all: {default})",
    )
    #: (folder, where the setting came from), checked when a test first asks for spike_data
    data: tuple[Path, str] | None = option(
        flag="--spike-data",
        ini="spike_data",
        metavar="DIR",
        parse=_data,
        ini_from_rootdir=True,
        help="the team's data folder for spike_data (relative paths: from the current "
        "folder on the command line, from the rootdir in the ini file)",
    )
    index_url: str | None = option(
        flag="--spike-index-url",
        ini="spike_index_url",
        metavar="URL",
        parse=_text,
        help="package index (simple API) for signals and versions; default: pip's "
        "configuration (PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, pip.conf)",
    )
    cache_dir: Path = option(
        flag="--spike-cache-dir",
        ini="spike_cache_dir",
        metavar="DIR",
        parse=_path,
        default_factory=default_cache_root,
        help="where index answers are cached (default: $XDG_CACHE_HOME/pytest-spike)",
    )
    offline: bool = option(
        flag="--spike-offline",
        action="switch",
        default=False,
        help="never ask the package index; use only cached answers",
    )
    stale_after_days: int = option(
        flag="--spike-stale-after",
        ini="spike_stale_after",
        metavar="DAYS",
        parse=_days,
        default=STALE_AFTER_DAYS,
        help="days since the last release after which a project is stale (default: {default})",
    )
    plan_path: Path | None = option(
        flag="--spike-plan",
        metavar="PATH",
        parse=_path,
        help="write the spike's plan (candidates with their versions and Pythons, and the "
        "ini defaults) as JSON to PATH; use with --collect-only",
    )
    cell: str | None = option(
        flag="--spike-cell",
        metavar="ID",
        parse=_text,
        help="the matrix cell this run is (recorded in --spike-json), e.g. py3.11-tomli-2.2.1",
    )
    python_default: tuple[str, ...] = option(
        ini="spike_python",
        parse=_pythons,
        default=(),
        help="Python versions a candidate without python= runs on in the matrix, e.g. '3.9 3.11 3.13'",
    )
    versions_default: str | tuple[str, ...] | None = option(
        ini="spike_versions",
        parse=_versions_default,
        help="versions a candidate without versions= runs in the matrix: a specifier, a list or 'latest:N'",
    )
    isolation: str = option(
        flag="--spike-isolation",
        ini="spike_isolation",
        metavar="MODE",
        parse=_choice(ISOLATION_MODES),
        default="auto",
        help="where candidates run: 'auto' (the running environment when the candidate is "
        "installed there at an accepted version, else an environment of its own), "
        "'always' (always its own), 'never' (only the running environment); default: {default}",
    )
    sandbox: str = option(
        flag="--spike-sandbox",
        ini="spike_sandbox",
        metavar="MODE",
        parse=_choice(SANDBOX_MODES),
        default="auto",
        help="box candidate code (builds, import, README, upstream tests, your tests in its "
        "environment) with bubblewrap: 'auto' (where bubblewrap runs; elsewhere unboxed and "
        "every report says so), 'require' (refuse to run candidate code unboxed), 'off'; "
        "default: {default}",
    )
    sandbox_limits: tuple[int, int, int] = option(
        flag="--spike-sandbox-limits",
        ini="spike_sandbox_limits",
        metavar="LIMITS",
        parse=_limits,
        default=SANDBOX_LIMITS,
        help="what one boxed step may use, e.g. 'processes=256,memory=4G,file=1G' "
        "(memory of all its processes; the largest file it may write); default: "
        "processes=1024,memory=16G,file=8G",
    )
    fresh: bool = option(
        flag="--spike-fresh",
        action="switch",
        default=False,
        help="rebuild the candidates' cached environments and re-run every built-in probe "
        "(no cached evidence is reused)",
    )
    fresh_probes: bool = option(
        flag="--spike-fresh-probes",
        action="switch",
        default=False,
        help="re-run every built-in probe (no cached evidence is reused), keeping the cached environments",
    )
    backend: str = option(
        flag="--spike-backend",
        ini="spike_backend",
        metavar="NAME",
        parse=_choice(BACKENDS),
        default="auto",
        help="how candidate environments are built: 'auto' (uv when installed, else venv), "
        "'uv' or 'venv' (default: {default})",
    )
    keep_envs: bool = option(
        flag="--spike-keep-envs",
        action="switch",
        default=False,
        help="print where the candidates' environments are (they are cached and reused)",
    )
    #: requirement files for the fit check (None: the packages of the running environment)
    requirement_files: tuple[str, ...] | None = option(
        ini="spike_requirements",
        ini_type="linelist",
        parse=_lines,
        help="the project's requirement or constraint files for the fit check, one per line "
        "(default: the packages of the running environment)",
    )
    upgrades: tuple[str, ...] = option(
        flag="--spike-upgrade",
        ini="spike_upgrades",
        ini_type="linelist",
        action="repeat",
        dest_name="spike_upgrades",
        metavar="REQ",
        parse=_upgrades,
        default=(),
        help="upgrade spike: run the project's tests again with this installed package moved "
        "to the versions REQ accepts (e.g. 'numpy>=2'), and compare (repeatable; the ini key "
        "applies with --spike)",
    )
    upgrade_versions: str | tuple[str, ...] | None = option(
        flag="--spike-upgrade-versions",
        ini="spike_upgrade_versions",
        metavar="SPEC",
        parse=_versions_default,
        help="which versions an upgrade spike tries: a specifier, a list or 'latest:N' "
        "(default: the newest the upgrade's requirement accepts)",
    )
    upgrade_downgrades: bool = option(
        flag="--spike-upgrade-downgrades",
        action="switch",
        default=False,
        help="let an upgrade spike try versions older than the installed one "
        "(default: they are left out, and the run says how many)",
    )
    upgrade_overlap: bool = option(
        flag="--spike-upgrade-overlap",
        action="switch",
        default=False,
        help="run an upgrade spike's suite on each new version while this run's tests still "
        "run, in the box (default: after them; both suites in memory at once)",
    )
    upstream_sample: int = option(
        flag="--spike-upstream-sample",
        ini="spike_upstream_sample",
        metavar="N",
        parse=_whole(1),
        default=5,
        help="how many upstream tests the upstream probe runs (one per file; default: {default})",
    )
    upstream_seed: int = option(
        flag="--spike-upstream-seed",
        ini="spike_upstream_seed",
        metavar="SEED",
        parse=_whole(0),
        default=0,
        help="seed of the upstream sample's hash order (recorded in the results; default: {default})",
    )
    timebox: float = option(
        flag="--spike-timebox",
        ini="spike_timebox",
        metavar="SECONDS",
        parse=_duration,
        default=600.0,
        show=_duration_text,
        help="wall time all probes of one candidate may take, in seconds or like '10m'; "
        "a candidate's timebox= wins (default: {default})",
    )
    cost: Rate | None = option(
        flag="--spike-cost-per-hour",
        ini="spike_cost_per_hour",
        dest_name="spike_cost",
        metavar="RATE",
        parse=_rate,
        help="what an hour of compute costs here, e.g. '3.20' or '2.5 EUR': the scorecard "
        "turns each candidate's measured time into money (the option overrides the ini "
        "key, e.g. per matrix cell)",
    )
    allow_network: bool = option(
        flag="--spike-allow-network",
        ini="spike_allow_network",
        ini_type="bool",
        action="switch",
        default=False,
        help="let README examples and upstream tests use the network (default: refused, and "
        "what failed for want of it is recorded as unchecked, never scored)",
    )
    waivers: tuple[Waiver, ...] = option(
        ini="spike_waivers",
        ini_type="linelist",
        parse=_waivers,
        default=(),
        help="findings the team has read and accepts until a date, one per line: "
        "'CANDIDATE CODE until YYYY-MM-DD: reason'; a waived finding is shown and scores 0 until then",
    )
    #: ("allow" | "deny", patterns) per line, read by the licence probe
    licenses: tuple[tuple[str, tuple[str, ...]], ...] = option(
        ini="spike_licenses",
        ini_type="linelist",
        parse=_licence_rules,
        default=(),
        help="the licence probe's policy, one rule per line: 'allow: MIT, BSD-*, Apache-2.0' or "
        "'deny: GPL-*, AGPL-*' (SPDX ids or expressions, wildcards); deny wins, and with an allow "
        "line an id it does not name is denied; default: no policy, licences reported at info",
    )
    #: None: the default weights (scoring.DEFAULT_WEIGHTS)
    weights: Weights | None = option(
        ini="spike_weights",
        ini_type="linelist",
        parse=_weights,
        help="points per severity or finding code, one 'name = points' per line, "
        "e.g. 'high = 25' or 'signals.stale = 0'",
    )


#: The settings table, in declaration order.
OPTIONS: tuple[Option, ...] = tuple(
    dataclasses.replace(f.metadata[_OPTION], name=f.name) for f in dataclasses.fields(Settings)
)


def _format_dest(row: FormatSpec) -> str:
    return f"spike_{row.name}"


def add_options(parser: pytest.Parser) -> None:
    """Register the ``--spike-*`` options and their ``spike_*`` ini keys."""
    group = parser.getgroup("spike", "research spikes (pytest-spike)")
    for opt in OPTIONS:
        text = opt.help_text()
        if opt.action == "formats":
            for row in formats.FORMATS:
                group.addoption(
                    f"--spike-{row.name}",
                    default=None,
                    dest=_format_dest(row),
                    metavar="PATH",
                    help=row.option_help,
                )
        elif opt.flag is not None:
            if opt.action == "switch":
                group.addoption(opt.flag, action="store_true", default=False, dest=opt.dest, help=text)
            elif opt.action == "repeat":
                group.addoption(
                    opt.flag, action="append", default=[], dest=opt.dest, metavar=opt.metavar, help=text
                )
            else:
                group.addoption(opt.flag, default=None, dest=opt.dest, metavar=opt.metavar, help=text)
        if opt.ini is not None:
            default = {"linelist": [], "bool": False}.get(opt.ini_type)
            parser.addini(opt.ini, text, type=opt.ini_type, default=default)


def resolve(config: pytest.Config) -> Settings:
    """Resolve every setting with its stated precedence; raise SpikeError naming the source."""
    ini_file = config.inipath.name if config.inipath else "the ini file"
    return Settings(**{opt.name: opt.resolve(config, ini_file) for opt in OPTIONS})
