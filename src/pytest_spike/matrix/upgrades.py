"""Upgrade spikes across CI jobs: one job per target version out, one upgrade result back in.

Out: :func:`upgrade_jobs` lists the target versions of ``--spike-upgrade`` requirements
(``pytest-spike matrix --upgrade``, the nox helper ``upgrade_targets``), each with the
pytest arguments that run that target alone. In: :func:`fold_upgrades` turns the
``upgrades`` of many results files back into one :class:`UpgradeResult` per package and
installed version, its targets sorted by version, so the merged report names the newest
passing version across jobs.

The installed version comes from the running environment, as the upgrade spike itself
reads it (:meth:`Upgrade.parse`): list the jobs where the project's requirements are
installed, or pass ``current``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from pytest_spike.index.client import IndexClient
from pytest_spike.index.order import version_key
from pytest_spike.model import (
    Blame,
    Finding,
    Scorecard,
    Severity,
    SpikeError,
    UpgradeResult,
    UpgradeTarget,
    parse_requirement,
)
from pytest_spike.upgrade.plan import Upgrade, target_versions

#: The schema of ``pytest-spike matrix --upgrade --json``.
JOBS_SCHEMA = "pytest-spike-upgrades/1"


def job_id(package: str, target: str) -> str:
    """``upgrade-numpy-2.0.2``: the id of the job that runs one target version."""
    return f"upgrade-{package}-{target}"


@dataclass(frozen=True)
class UpgradeJob:
    """One target version of one upgrade spike: what a CI job runs."""

    requirement: str
    package: str
    current: str
    target: str

    @property
    def id(self) -> str:
        """``upgrade-numpy-2.0.2``: a job, artefact and results file name."""
        return job_id(self.package, self.target)

    def pytest_args(self) -> list[str]:
        """The pytest options that run this target alone (the requirement as given, so every
        job's upgrade result carries the same one)."""
        return ["--spike-upgrade", self.requirement, "--spike-upgrade-versions", self.target]

    @classmethod
    def from_dict(cls, data: Any) -> UpgradeJob:
        return cls(str(data["upgrade"]), str(data["package"]), str(data["current"]), str(data["target"]))

    def to_dict(self) -> dict[str, Any]:
        # pytest's arguments as a list, never a shell line: a requirement may hold quotes
        return {
            "id": self.id,
            "upgrade": self.requirement,
            "package": self.package,
            "current": self.current,
            "target": self.target,
            "pytest_args": self.pytest_args(),
        }


def upgrade_jobs(
    client: IndexClient,
    requirements: Sequence[str],
    versions: str | Sequence[str] | None = None,
    *,
    current: str | None = None,
    where: str = "--upgrade",
) -> list[UpgradeJob]:
    """One job per target version of each requirement, oldest target first.

    ``versions`` is the ``versions=`` syntax (default: the newest release the requirement
    accepts); ``current`` replaces the installed version (for a noxfile, whose interpreter
    need not have the project's requirements).
    """
    jobs = []
    for text in requirements:
        if current is None:
            upgrade = Upgrade.parse(text, where)
        else:
            upgrade = Upgrade(text, canonicalize_name(parse_requirement(text, where).name), current)
        for target in target_versions(client, upgrade, versions):
            jobs.append(UpgradeJob(text, upgrade.package, upgrade.current, target))
    return jobs


def jobs_document(jobs: Sequence[UpgradeJob]) -> dict[str, Any]:
    """``pytest-spike matrix --upgrade --json``: the jobs under a schema."""
    return {"schema": JOBS_SCHEMA, "jobs": [job.to_dict() for job in jobs]}


def jobs_from_document(data: Any) -> list[UpgradeJob]:
    """The jobs of a ``matrix --upgrade --json`` document (a ``parse`` for load_json_document)."""
    if not isinstance(data, dict) or data.get("schema") != JOBS_SCHEMA:
        found = data.get("schema") if isinstance(data, dict) else None
        raise SpikeError(f"upgrade jobs schema {found!r} is not {JOBS_SCHEMA!r}")
    return [UpgradeJob.from_dict(job) for job in data["jobs"]]


def missing_target(job: UpgradeJob) -> UpgradeTarget:
    """A planned target no results file holds: unknown, never passed."""
    why = (
        f"no results file holds {job.id} (planned by matrix --upgrade): "
        "its job did not finish, or its file was not collected"
    )
    return UpgradeTarget(
        job.target, findings=[Finding("upgrade.missing", Severity.INFO, why, blame=Blame.SPIKE)]
    )


def missing_targets(upgrades: Sequence[UpgradeResult]) -> list[str]:
    """The ids of planned targets no results file held (``upgrade-numpy-2.0.2``)."""
    return [
        job_id(u.package, t.version)
        for u in upgrades
        for t in u.targets
        if any(f.code == "upgrade.missing" for f in t.findings)
    ]


def fill_expected(upgrades: Sequence[UpgradeResult], jobs: Sequence[UpgradeJob]) -> list[UpgradeResult]:
    """``upgrades`` with a missing target for every planned job no results file holds."""
    found = {(u.package, u.current): u for u in upgrades}
    filled = list(upgrades)
    for job in jobs:
        result = found.get((job.package, job.current))
        if result is None:
            result = found[job.package, job.current] = UpgradeResult(
                job.requirement, job.package, job.current
            )
            filled.append(result)
        if all(t.version != job.target for t in result.targets):
            result.targets.append(missing_target(job))
            result.targets.sort(key=lambda t: version_key(t.version))
    return filled


def fold_upgrades(sources: Sequence[tuple[Path, Scorecard]]) -> tuple[list[UpgradeResult], list[str]]:
    """One upgrade result per (package, installed version) from every file, and notes.

    Targets are sorted by version; where two files hold the same target, the later file
    wins, as ``merge`` does for cells. Jobs that ran on different installed versions (a
    different baseline) stay separate results, and a note names them.
    """
    groups: dict[tuple[str, str | None], list[tuple[Path, Scorecard, UpgradeResult]]] = {}
    for path, card in sources:
        for upgrade in card.upgrades:
            groups.setdefault((upgrade.package, upgrade.current), []).append((path, card, upgrade))
    folded: list[UpgradeResult] = []
    notes: list[str] = []
    for (package, current), hits in sorted(
        groups.items(), key=lambda kv: (kv[0][0], version_key(kv[0][1] or ""))
    ):
        folded.append(_fold_one(package, current, hits, notes))
    currents: dict[str, list[str]] = {}
    for result in folded:
        currents.setdefault(result.package, []).append(result.current or "?")
    for package, versions in currents.items():
        if len(versions) > 1:
            notes.append(
                f"upgrade {package}: the jobs ran from {len(versions)} installed versions "
                f"({', '.join(versions)}), kept as separate upgrade results"
            )
    return folded, notes


def _fold_one(
    package: str,
    current: str | None,
    hits: list[tuple[Path, Scorecard, UpgradeResult]],
    notes: list[str],
) -> UpgradeResult:
    name = f"upgrade {package} {current or '?'}"
    targets: dict[str, tuple[Path, UpgradeTarget]] = {}
    for path, _, upgrade in hits:
        for target in upgrade.targets:
            if target.version in targets:
                notes.append(
                    f"{path}: {name} -> {target.version} also in {targets[target.version][0]}; kept the later file"
                )
            targets[target.version] = (path, target)
    requirements = list(dict.fromkeys(upgrade.requirement for _, _, upgrade in hits))
    # jobs that wrote the requirement differently (numpy==2.0.2, numpy==2.1.3) share the package
    requirement = requirements[0] if len(requirements) == 1 else package
    baseline = dict(hits[-1][2].baseline)
    tests = {str(u.baseline.get("tests")) for _, _, u in hits if "tests" in u.baseline}
    if len(tests) > 1:
        notes.append(
            f"{name}: the jobs' baselines differ ({' vs '.join(sorted(tests))} tests): "
            "each target is compared with its own job's run"
        )
    pythons = {str(card.cell.get("python_short") or card.cell.get("python") or "?") for _, card, _ in hits}
    if len(pythons) > 1:
        notes.append(f"{name}: the jobs ran on Python {', '.join(sorted(pythons, key=version_key))}")
    if len(hits) > 1:
        baseline["jobs"] = len({path for path, _, _ in hits})
    ordered = sorted((t for _, t in targets.values()), key=lambda t: version_key(t.version))
    return UpgradeResult(requirement, package, current, targets=ordered, baseline=baseline)
