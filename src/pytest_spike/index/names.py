"""Is a candidate a project the package index knows, at a version it has? Asked before a run.

A misspelt name (``reqeusts``) or a version that was never released (``tomli==99``) is a
mistake in the spike, not evidence about a package: it is refused as a usage error with
close names, before any probe runs. Close names come from what is cheap to list: the running
environment's distributions, ``file://`` indexes, the other candidates and a short list of
well-known projects; the index's full project list is never downloaded.

An index that cannot be asked (offline, unreachable) proves nothing either way: the name is
left unchecked and the run says so.

Layering: index/ floor; no pytest here.
"""

from __future__ import annotations

import difflib
import importlib.metadata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from packaging.requirements import Requirement as _requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from pytest_spike.model import Candidate

if TYPE_CHECKING:
    from pytest_spike.index.client import IndexClient

__all__ = ["NameCheck", "check_candidates", "close_names"]

#: Projects people often spike, for "did you mean" when nothing local is close.
WELL_KNOWN = (
    "aiohttp", "anyio", "arrow", "attrs", "beautifulsoup4", "black", "boto3", "cattrs", "certifi",
    "click", "cryptography", "dask", "django", "duckdb", "fastapi", "flask", "httpx", "humanize",
    "hypothesis", "jinja2", "jsonschema", "lightgbm", "lxml", "marshmallow", "matplotlib",
    "more-itertools", "msgspec", "numpy", "openpyxl", "optuna", "orjson", "packaging", "pandas",
    "pendulum", "pillow", "plotly", "polars", "psycopg", "pyarrow", "pydantic", "pyjwt", "pytest",
    "python-dateutil", "pyyaml", "requests", "rich", "ruamel-yaml", "scikit-learn", "scipy",
    "seaborn", "simplejson", "spacy", "sqlalchemy", "statsmodels", "tensorflow", "tomli",
    "tomli-w", "tomlkit", "toml", "toolz", "torch", "tqdm", "transformers", "typer", "ujson",
    "urllib3", "xgboost",
)  # fmt: skip


@dataclass(frozen=True)
class NameCheck:
    """What the index said of the candidates: the mistakes, and the names it could not check."""

    errors: tuple[str, ...] = ()
    #: one line per candidate left unchecked because the index could not be asked
    unchecked: tuple[str, ...] = ()


def installed_version(name: str) -> str | None:
    """The version of ``name`` installed in the running environment, or None."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def close_names(name: str, known: Iterable[str], n: int = 3) -> list[str]:
    """Up to ``n`` names of ``known`` close to ``name`` (canonical forms compared)."""
    names = {canonicalize_name(k) for k in known}
    names.discard(canonicalize_name(name))
    return difflib.get_close_matches(canonicalize_name(name), sorted(names), n=n, cutoff=0.75)


def _local_names() -> list[str]:
    return [str(dist.metadata["Name"] or "") for dist in importlib.metadata.distributions()]


def check_candidates(
    candidates: Sequence[tuple[Candidate, str]],
    make_client: Callable[[], IndexClient],
    *,
    isolation: str = "auto",
) -> NameCheck:
    """Check each (candidate, where it was declared) against the index.

    A candidate installed in the running environment is not asked about where that is what
    the spike tests (``isolation`` "never", or "auto" and a version it accepts): a private
    package need not be on the index to be spiked where it is installed. ``make_client``
    gives the index client, asked for only when a candidate is checked: a matrix cell's
    candidate is installed, and the client (the network stack, pip's configuration) would
    cost its start-up ~10 ms for nothing.
    """
    errors: list[str] = []
    unchecked: list[str] = []
    others = [c.name for c, _ in candidates]
    client: IndexClient | None = None
    for cand, where in candidates:
        local = installed_version(cand.project)
        if local is not None and (isolation == "never" or (isolation == "auto" and not cand.unmet(local))):
            continue
        from pytest_spike.index.client import IndexUnavailable, ProjectNotFound

        if client is None:
            client = make_client()
        try:
            listing = client.listing(cand.project)
        except ProjectNotFound:
            if local is not None:
                continue  # installed here, just not published: nothing to say before it runs
            close = close_names(
                cand.name, [*_local_names(), *WELL_KNOWN, *others, *client.local_project_names()]
            )
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            errors.append(f"{where}: no project {cand.project!r} on the package index{hint}")
            continue
        except IndexUnavailable as exc:
            unchecked.append(f"{cand.name}: not checked against the package index ({exc})")
            continue
        missing = _missing_versions(cand, list(listing.releases))  # a yanked pin still installs
        if missing and listing.skipped:
            # an index that did not answer may have it: unknown, not absent
            unchecked.append(
                f"{cand.name}: {missing}, but not every index answered ({'; '.join(listing.skipped)})"
            )
        elif missing:
            errors.append(f"{where}: {missing}")
    return NameCheck(tuple(errors), tuple(unchecked))


def _missing_versions(cand: Candidate, released: Sequence[Version]) -> str:
    """Why no release of the index satisfies ``cand`` ("" when one does)."""
    newest = max(released, default=None)
    shown = f" (newest: {newest})" if newest is not None else " (it lists no release)"
    wanted: list[str] = []
    pin = cand.pinned
    if pin is not None:
        wanted.append(pin)
    if isinstance(cand.versions, tuple):
        wanted += list(cand.versions)
    absent = [v for v in wanted if not _released(v, released)]
    if absent:
        return f"{cand.project} has no release {', '.join(absent)} on the package index{shown}"
    spec = SpecifierSet(str(_requirement(cand.requirement).specifier), prereleases=True)
    if isinstance(cand.versions, str) and not cand.versions.startswith("latest"):
        spec &= SpecifierSet(cand.versions, prereleases=True)
    if str(spec) and not any(v in spec for v in released):
        return f"no release of {cand.project} on the package index matches {spec}{shown}"
    return ""


def _released(version: str, released: Sequence[Version]) -> bool:
    try:
        wanted = Version(version)
    except InvalidVersion:
        return False
    return wanted in released
