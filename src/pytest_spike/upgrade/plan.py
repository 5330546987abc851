"""What an upgrade spike moves, and to which versions; how the project itself is installed.

``--spike-upgrade "numpy>=2"`` names an installed package and the versions it may move to;
``--spike-upgrade-versions`` (the ``versions=`` syntax: a specifier, a list or ``latest:N``)
picks which of those to try, by default the newest. The upgraded environment holds the
project's requirements (the running environment's pins, or ``spike_requirements``) with the
package moved, and the project installed the way it is installed now.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote, urlparse

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from pytest_spike.index.client import IndexClient
from pytest_spike.index.versions import resolve
from pytest_spike.model import SpikeError, parse_requirement


@dataclass(frozen=True)
class Upgrade:
    """One package to move: its requirement as given, canonical name and installed version."""

    requirement: str
    package: str
    current: str

    @classmethod
    def parse(cls, text: str, where: str = "--spike-upgrade") -> Upgrade:
        req = parse_requirement(text, where)
        name = canonicalize_name(req.name)
        try:
            current = metadata.version(name)
        except metadata.PackageNotFoundError:
            raise SpikeError(
                f"{where}: {req.name} is not installed in the running environment; an upgrade "
                "spike moves an installed package (try --spike-candidate for a new one)"
            ) from None
        return cls(text, name, current)


#: How to ask for targets older than the installed version (they are left out otherwise).
DOWNGRADES_FLAG = "--spike-upgrade-downgrades"


def target_versions(
    client: IndexClient,
    upgrade: Upgrade,
    versions: str | Sequence[str] | None,
    *,
    python: str | None = None,
    downgrades: bool = False,
) -> list[str]:
    """The versions to try, oldest first (see :func:`plan_targets`, without the skipped)."""
    return plan_targets(client, upgrade, versions, python=python, downgrades=downgrades).versions


@dataclass(frozen=True)
class Targets:
    """The versions an upgrade spike tries, those it leaves out for the Python, and the
    older-than-installed ones it leaves out because downgrades were not asked for."""

    versions: list[str]
    skipped: dict[str, str]
    older: list[str]

    def older_note(self, upgrade: Upgrade) -> str | None:
        """One line saying which downgrades were not run, and how to run them (None: none)."""
        if not self.older:
            return None
        span = self.older[0] if len(self.older) == 1 else f"{self.older[0]} to {self.older[-1]}"
        return (
            f"{upgrade.package}: {len(self.older)} target(s) older than the installed {upgrade.current} "
            f"not run ({span}); {DOWNGRADES_FLAG} runs them"
        )


def plan_targets(
    client: IndexClient,
    upgrade: Upgrade,
    versions: str | Sequence[str] | None,
    *,
    python: str | None = None,
    downgrades: bool = False,
) -> Targets:
    """The versions to try, oldest first; versions left out for ``python``, with why; and the
    versions older than the installed one, left out unless ``downgrades``.

    The versions to try are those ``versions`` picks (default: the newest) that the
    requirement's specifier accepts, other than the installed one, and whose requires-python
    admits ``python`` ("3.11"; None: any); an upgrade spike moves up, so an older version is
    tried only when asked for (``downgrades``). Left out for ``python``, and so never passed:
    the newest release it excludes that is newer than every version tried (the one a user
    wants most), and each version ``versions`` names explicitly.
    """
    spec = Requirement(upgrade.requirement).specifier
    current = Version(upgrade.current)
    accepted = str(spec) or None
    picked = resolve(client, upgrade.package, versions if versions else accepted, python=python)
    found = picked.versions[-1:] if not versions else picked.versions
    chosen = sorted(v for v in found if (v in spec or not str(spec)) and v != current)
    older = [v for v in chosen if v < current and not downgrades]
    chosen = [v for v in chosen if v not in older]
    unfit = {
        Version(v): why
        for v, why in picked.excluded.items()
        if why.startswith("requires-python")
        and (Version(v) in spec or not str(spec))
        and Version(v) != current
        and (downgrades or Version(v) > current)
    }
    named = set(picked.pins)
    skipped = {v: why for v, why in unfit.items() if v in named}
    newer = [v for v in unfit if not chosen or v > chosen[-1]]
    if newer:
        skipped.setdefault(max(newer), unfit[max(newer)])
    if not chosen and not skipped:
        what = f" among {versions}" if versions else ""
        hint = (
            f" ({len(older)} older release(s) would be downgrades: {DOWNGRADES_FLAG} runs them)"
            if older
            else ""
        )
        raise SpikeError(
            f"--spike-upgrade {upgrade.requirement!r}: no release of {upgrade.package}{what} to move to "
            f"from {upgrade.current} on the package index{hint}"
        )
    return Targets(
        [str(v) for v in chosen], {str(v): why for v, why in sorted(skipped.items())}, [str(v) for v in older]
    )


def project_install(rootdir: Path) -> list[str]:
    """How the project under ``rootdir`` is installed now, as installer arguments: ``-e DIR``
    for an editable install, ``DIR`` for one from a local folder, nothing when it is not
    installed from a folder (its tests import it from the rootdir, or the index pins it)."""
    root = rootdir.resolve()
    for dist in metadata.distributions():
        text = dist.read_text("direct_url.json")
        if not text:
            continue
        try:
            data = json.loads(text)
        except ValueError:
            continue
        url = urlparse(str(data.get("url", "")))
        if url.scheme != "file":
            continue
        folder = Path(unquote(url.path)).resolve()
        if folder != root and folder not in root.parents:
            continue
        if canonicalize_name(str(dist.metadata["Name"] or "")) == "pytest-spike" and folder != root:
            continue  # pytest-spike's own checkout above an example project is not the project
        editable = bool((data.get("dir_info") or {}).get("editable"))
        return ["-e", str(folder)] if editable else [str(folder)]
    return []


def without(requirements: Sequence[str], package: str) -> list[str]:
    """The project's requirements minus ``package`` (it is the one that moves)."""
    return [r for r in requirements if canonicalize_name(Requirement(r).name) != package]
