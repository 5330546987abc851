"""``spike.candidate`` and the probe-kind marks, and turning marks back into a Candidate."""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from pytest_spike.model import USER_KINDS, Candidate, SpikeError, parse_requirement

CANDIDATE_MARK = "spike_candidate"
KIND_MARK = "spike_kind"

_CANDIDATE_KEYWORDS = ("versions", "python", "module", "timebox", "budget")
_BUDGET_KEYS = ("seconds", "memory_mb")
_PYTHON_RE = re.compile(r"^\d+\.\d+$")
_LATEST_RE = re.compile(r"^latest(:\d+)?$")
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h)?\s*$")
_DURATION_UNITS = {None: 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


class _Spike:
    """The ``spike`` namespace: ``spike.candidate(...)`` and the probe-kind marks."""

    # Properties, so no mark is made at import time (before the markers are registered).
    @property
    def hello_world(self) -> pytest.MarkDecorator:
        """Tag a test as the candidate's hello-world: does the first thing work at all?"""
        return pytest.mark.spike_kind("hello_world")

    @property
    def real_data(self) -> pytest.MarkDecorator:
        """Tag a test that pushes the team's own data through the candidate."""
        return pytest.mark.spike_kind("real_data")

    @property
    def upstream(self) -> pytest.MarkDecorator:
        """Tag a test that runs (some of) the candidate's own upstream tests."""
        return pytest.mark.spike_kind("upstream")

    @staticmethod
    def candidate(requirement: str, **options: Any) -> pytest.MarkDecorator:
        """Mark tests as probes of one candidate package.

        ``requirement`` is a PEP 508 requirement (``"tomli"``, ``"tomli>=2"``). Keywords:
        ``versions`` (a specifier, a list of versions, or ``"latest:N"``), ``python``
        (``"3.11"`` or a list), ``module`` (the import name(s) when they differ from the
        project name), ``timebox`` (seconds, or ``"10m"``: all of the candidate's probes
        together) and ``budget`` (``{"seconds": 30, "memory_mb": 512}``: each of its
        tests). Usable as a decorator, as
        ``pytestmark`` and in ``pytest.param(marks=...)``. The values are checked when the
        tests are collected, so a mistake is a collection error naming the test.
        """
        return pytest.mark.spike_candidate(requirement, **options)


spike = _Spike()


def candidate_from_mark(args: Sequence[Any], kwargs: Mapping[str, Any]) -> Candidate:
    """Validate the arguments of a ``spike_candidate`` mark; raise SpikeError naming the bad value."""
    if len(args) != 1:
        raise SpikeError(
            f"spike.candidate() takes one requirement string, got {len(args)} positional "
            "arguments; pass options by keyword, e.g. spike.candidate('tomli', versions='latest:3')"
        )
    unknown = [key for key in kwargs if key not in _CANDIDATE_KEYWORDS]
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(key, _CANDIDATE_KEYWORDS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise SpikeError(
            f"spike.candidate() got an unknown keyword {key!r}{hint}; "
            f"it takes {', '.join(_CANDIDATE_KEYWORDS)}"
        )
    requirement = args[0]
    if not isinstance(requirement, str):
        raise SpikeError(f"spike.candidate(): the requirement must be a string, got {requirement!r}")
    return candidate_from_values(requirement.strip(), where="spike.candidate()", **kwargs)


def candidate_from_values(
    requirement: str,
    *,
    where: str,
    versions: Any = None,
    python: Any = None,
    module: Any = None,
    timebox: Any = None,
    budget: Any = None,
) -> Candidate:
    """Build a Candidate from raw values; every error names ``where`` and the bad value."""
    parse_requirement(requirement, where)
    return Candidate(
        requirement=requirement,
        versions=_versions(versions, where),
        python=_str_tuple(python, where, "python", _PYTHON_RE, "'3.11'"),
        modules=_str_tuple(module, where, "module", re.compile(r"^[A-Za-z_][\w.]*$"), "'yaml'"),
        timebox=parse_duration(timebox, f"{where} timebox") if timebox is not None else None,
        budget=_budget(budget, where),
    )


def _budget(value: Any, where: str) -> tuple[tuple[str, float], ...]:
    if value is None:
        return ()
    if not isinstance(value, dict) or not value:
        raise SpikeError(f"{where}: budget={value!r} must be a dict like {{'seconds': 30, 'memory_mb': 512}}")
    pairs = []
    for key, limit in value.items():
        if key not in _BUDGET_KEYS:
            close = difflib.get_close_matches(str(key), _BUDGET_KEYS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise SpikeError(f"{where}: budget has an unknown key {key!r}{hint}; it takes seconds, memory_mb")
        if isinstance(limit, bool) or not isinstance(limit, (int, float)) or not limit > 0:
            raise SpikeError(f"{where}: budget {key}={limit!r} must be a positive number")
        pairs.append((key, float(limit)))
    return tuple(sorted(pairs))


def _versions(value: Any, where: str) -> str | tuple[str, ...] | None:
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.version import InvalidVersion, Version

    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if _LATEST_RE.match(text):
            return text
        try:
            SpecifierSet(text)
        except InvalidSpecifier:
            raise SpikeError(
                f"{where}: versions={value!r} is not a specifier ('>=2,<3'), a list of versions or 'latest:N'"
            ) from None
        return text
    if isinstance(value, (list, tuple)) and value:
        for item in value:
            try:
                Version(str(item))
            except InvalidVersion:
                raise SpikeError(f"{where}: versions contains {item!r}, which is not a version") from None
        return tuple(str(item) for item in value)
    raise SpikeError(
        f"{where}: versions={value!r} is not a specifier, a non-empty list of versions or 'latest:N'"
    )


def _str_tuple(value: Any, where: str, key: str, pattern: re.Pattern[str], example: str) -> tuple[str, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not items:
        raise SpikeError(f"{where}: {key}={value!r} must be a string or a non-empty list, e.g. {example}")
    for item in items:
        if not isinstance(item, str) or not pattern.match(item.strip()):
            raise SpikeError(f"{where}: {key}={value!r} has {item!r}, which is not like {example}")
    return tuple(item.strip() for item in items)


def parse_duration(value: Any, where: str) -> float:
    """Seconds from a number or a string like ``"90"``, ``"30s"``, ``"10m"``, ``"1.5h"``."""
    if isinstance(value, bool):
        raise SpikeError(f"{where}: {value!r} is not a duration")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = _DURATION_RE.match(str(value))
        if not match:
            raise SpikeError(f"{where}: {value!r} is not a duration; write e.g. 90, '30s', '10m'")
        seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    if not math.isfinite(seconds) or seconds <= 0:
        raise SpikeError(f"{where}: {value!r} must be a positive duration")
    return seconds


#: The candidate and probe kind of a user test, set when its module is collected.
CANDIDATE_KEY = pytest.StashKey[Candidate]()
KIND_KEY = pytest.StashKey[str]()


def candidate_of(item: pytest.Item) -> tuple[Candidate, str] | None:
    """The candidate and probe kind of a user test, or None; raises SpikeError on bad marks."""
    mark = item.get_closest_marker(CANDIDATE_MARK)
    kind_mark = item.get_closest_marker(KIND_MARK)
    if mark is None:
        if kind_mark is not None:
            raise SpikeError(
                f"tagged spike.{kind_mark.args[0] if kind_mark.args else '?'} but has no "
                "spike.candidate(...); add one to the test, its class or the module's pytestmark"
            )
        return None
    own = {repr((m.args, sorted(m.kwargs.items()))) for m in item.own_markers if m.name == CANDIDATE_MARK}
    if len(own) > 1:
        raise SpikeError(
            "has more than one spike.candidate(...) mark; a test belongs to exactly one candidate"
        )
    candidate = candidate_from_mark(mark.args, mark.kwargs)
    kind = "custom"
    if kind_mark is not None:
        kind = kind_mark.args[0] if kind_mark.args else ""
        if kind not in USER_KINDS:
            raise SpikeError(f"spike_kind({kind!r}) is not one of {', '.join(USER_KINDS)}")
    return candidate, kind
