"""Which versions a spike runs: ``versions=`` specs resolved against the package index."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from pytest_spike.index.client import IndexClient, Listing
from pytest_spike.index.pages import Release
from pytest_spike.model import SpikeError


@dataclass
class Resolution:
    """The versions a ``versions=`` spec picks, and why every other release was left out."""

    project: str
    spec: str | list[str] | None
    python: str | None
    versions: list[Version]
    excluded: dict[str, str] = field(default_factory=dict)
    #: indexes left out of the answer because they failed while others answered
    skipped: tuple[str, ...] = ()
    #: the versions the spec names one by one (a list such as ``"1.0, 2.0"``), else empty
    pins: tuple[Version, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "spec": self.spec,
            "python": self.python,
            "versions": [str(v) for v in self.versions],
            "excluded": dict(self.excluded),
        }


_SPEC_HELP = "write a specifier ('>=2,<3'), a list of versions ('1.0, 2.0') or 'latest:N'"


def _parse_spec(spec: str | Sequence[str] | None) -> tuple[str, Any]:
    """-> ("latest", N) | ("pins", [Version]) | ("specifier", SpecifierSet)."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    if spec is None:
        return "latest", 1
    if isinstance(spec, str):
        text = spec.strip()
        if text == "latest" or text.startswith("latest:"):
            count = text.partition(":")[2] or "1"
            if not count.isdigit() or int(count) < 1:
                raise SpikeError(f"versions={spec!r}: N in 'latest:N' must be a whole number >= 1")
            return "latest", int(count)
        if text and text[0] in "<>=!~":
            try:
                return "specifier", SpecifierSet(text)
            except InvalidSpecifier:
                raise SpikeError(f"versions={spec!r} is not a valid specifier; {_SPEC_HELP}") from None
        spec = [part for part in text.replace(",", " ").split() if part]
    try:
        pins = [Version(str(item)) for item in spec]
    except InvalidVersion:
        raise SpikeError(f"versions={spec!r}: not a version; {_SPEC_HELP}") from None
    if not pins:
        raise SpikeError(f"versions={spec!r} is empty; {_SPEC_HELP}")
    return "pins", pins


def python_allows(requires_python: str | None, python: str | None) -> bool:
    """Does ``requires_python`` admit ``python`` ("3.11" admits any 3.11.x; invalid admits all)?"""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    if not requires_python or not python:
        return True
    try:
        spec = SpecifierSet(requires_python)
    except InvalidSpecifier:
        return True  # pip ignores a broken requires-python too
    release = Version(python).release
    if len(release) >= 3:
        return spec.contains(python, prereleases=True)
    # A bare "3.11" stands for the newest and oldest patch releases of that line.
    major_minor = ".".join(str(p) for p in (release + (0,))[:2])
    return any(spec.contains(f"{major_minor}.{patch}", prereleases=True) for patch in (0, 99))


def resolve(
    client: IndexClient,
    name: str,
    spec: str | Sequence[str] | None = None,
    *,
    python: str | None = None,
    prereleases: bool = False,
) -> Resolution:
    """Resolve a ``versions=`` spec against the index; see ``resolve_versions``."""
    kind, value = _parse_spec(spec)
    listing = client.listing(name)
    spec_out = spec if spec is None or isinstance(spec, str) else [str(s) for s in spec]
    result = Resolution(canonicalize_name(name), spec_out, python, [], skipped=listing.skipped)
    if kind == "pins":
        _require_pins(name, value, listing)
        result.pins = tuple(value)
    wanted = _Wanted(kind, value, python, prereleases)
    eligible: list[Version] = []
    for version, release in listing.releases.items():
        reason = wanted.exclusion(version, release)
        if reason is None:
            eligible.append(version)
        else:
            result.excluded[str(version)] = reason
    if kind == "latest":
        eligible = _newest_of_minor_lines(eligible, value, result.excluded)
    result.versions = eligible
    return result


def _require_pins(name: str, pins: Sequence[Version], listing: Listing) -> None:
    """Raise ``SpikeError`` naming every pinned version the index doesn't have."""
    releases = listing.releases
    missing = [str(v) for v in pins if v not in releases]
    if not missing:
        return
    newest = ", ".join(str(v) for v in list(releases)[-3:]) or "none"
    if listing.skipped:
        newest += f"; not asked: {listing.skipped[0]}"
    raise SpikeError(f"{name} has no release {', '.join(missing)} on the package index (newest: {newest})")


@dataclass(frozen=True)
class _Wanted:
    """A parsed ``versions=`` spec with the Python and pre-release settings it is read with."""

    kind: str
    value: Any
    python: str | None
    prereleases: bool

    def exclusion(self, version: Version, release: Release) -> str | None:
        """Why ``release`` is left out, or None when it is eligible (first reason wins)."""
        pinned = self.kind == "pins" and version in self.value
        if self.kind == "pins" and not pinned:
            return "not in the list"
        if release.yanked and not pinned:
            return "yanked" + (f" ({release.yanked_reason})" if release.yanked_reason else "")
        if version.is_prerelease and not (pinned or self._prereleases_allowed()):
            return "pre-release"
        if not python_allows(release.requires_python, self.python):
            return f"requires-python {release.requires_python} excludes {self.python}"
        if self.kind == "specifier" and not self.value.contains(version, prereleases=True):
            return f"outside {self.value}"
        return None

    def _prereleases_allowed(self) -> bool:
        return self.prereleases or (self.kind == "specifier" and bool(self.value.prereleases))


def _newest_of_minor_lines(eligible: list[Version], count: int, excluded: dict[str, str]) -> list[Version]:
    """The newest patch of each of the last ``count`` minor lines; the others go in ``excluded``."""
    lines: dict[tuple[int, ...], Version] = {}
    for version in eligible:
        lines[(version.release + (0,))[:2]] = version  # ascending, so the newest patch wins
    chosen = sorted(lines.values())[-count:]
    for version in eligible:
        if version not in chosen:
            excluded[str(version)] = f"not the newest of the last {count} minor releases"
    return chosen


def resolve_versions(
    client: IndexClient,
    name: str,
    spec: str | Sequence[str] | None = None,
    *,
    python: str | None = None,
    prereleases: bool = False,
) -> list[Version]:
    """The versions of ``name`` a spike should run, oldest first.

    ``spec`` is None (the newest release), a specifier (``">=2,<3"``), explicit versions (a list
    or ``"1.0, 2.0"``), or ``"latest:N"`` (the newest patch of each of the last N minor
    releases). Yanked releases and pre-releases are left out unless pinned (or asked for);
    ``python`` ("3.11") drops releases whose requires-python excludes it. May be empty.
    """
    return resolve(client, name, spec, python=python, prereleases=prereleases).versions
