"""Value types shared by every layer: candidates, findings, probe results, the scorecard.

Nothing here imports pytest: the same types are built by the plugin, read back from
results files by ``pytest-spike merge`` and handed to other plugins through hooks.
"""

from __future__ import annotations

import enum
import math
import os
import platform
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_spike.kinds import BUILTIN_NAMES

if TYPE_CHECKING:
    from packaging.requirements import Requirement

SCHEMA = "pytest-spike/1"

#: Kinds made by pytest-spike itself (one item per candidate), as opposed to user tests.
BUILTIN_KINDS = BUILTIN_NAMES
#: Probe kinds in the order the scorecard lists them.
PROBE_KINDS = (*BUILTIN_KINDS, "hello_world", "real_data", "custom")
#: Kinds a user test can be tagged with.
USER_KINDS = ("hello_world", "real_data", "upstream", "custom")
#: Finding codes that were renamed: results files written before keep loading under the new
#: name, so ``merge`` and ``show`` of old and new files agree.
RENAMED_CODES = {
    # one letter from the fit check's "install.conflict": said what it is instead
    "install.conflicts": "install.pip_check",
}

# Choices and thresholds that lower floors (envs, index) and the settings table both need.
# They live here, not in settings.py, because those floors never import settings.
#: How candidate environments are built (``--spike-backend``).
BACKENDS = ("auto", "uv", "venv")
#: Where candidates run (``--spike-isolation``): see probes.base.ProbeContext.target().
ISOLATION_MODES = ("auto", "always", "never")
#: --spike-sandbox: box candidate code where bubblewrap runs ('auto'), refuse to run it
#: unboxed ('require'), or never box it ('off')
SANDBOX_MODES = ("auto", "require", "off")
#: --spike-sandbox-limits by default: processes, memory (MB, all of a step's processes) and
#: the largest file a step may write (MB); healthy packages never reach them
SANDBOX_LIMITS = (1024, 16384, 8192)


def default_cache_root() -> Path:
    """Where pytest-spike keeps what it fetched: ``$XDG_CACHE_HOME/pytest-spike``.

    A relative ``XDG_CACHE_HOME`` is ignored, as the XDG base directory specification asks:
    with ``../caches``, a Python 3.9 matrix cell's interpreter path kept the ``..`` (3.11
    normalises it), which the box cannot follow (the folder named before ``..`` is not in
    its view): its boxed import failed with "No such file or directory", scored against
    the candidate (``import.crashed``, blocked)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        base = str(Path.home() / ".cache")
    return Path(base) / "pytest-spike"


#: The finding a report gets when it contradicts what the host observed of the process that
#: wrote it (its exit status, its event stream, the traceback on stderr): candidate code
#: forged evidence. Critical and the candidate's; the observation is the verdict.
TAMPERED = "spike.tampered"
#: Days since the last release after which a project is stale (``--spike-stale-after``).
STALE_AFTER_DAYS = 730
#: A version under test younger than this many days is a young release (info, never scored).
YOUNG_RELEASE_DAYS = 3


class SpikeError(Exception):
    """A problem with the user's input: reported as one line, never as a traceback."""


class Severity(str, enum.Enum):
    """How much a finding matters. Compare with ``rank`` (critical is highest)."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]

    def __str__(self) -> str:
        return self.value


_SEVERITY_RANK = {
    Severity.INFO: 0,
    Severity.LOW: 1,
    Severity.MEDIUM: 2,
    Severity.HIGH: 3,
    Severity.CRITICAL: 4,
}


class Level(str, enum.Enum):
    """The risk level of a candidate, derived from its score and findings."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    BLOCKED = "blocked"

    @property
    def rank(self) -> int:
        return _LEVEL_RANK[self]

    def __str__(self) -> str:
        return self.value


_LEVEL_RANK = {Level.LOW: 0, Level.MEDIUM: 1, Level.HIGH: 2, Level.BLOCKED: 3}


class Blame(str, enum.Enum):
    """Whose fault a finding shows (evidence rule 1, attribution).

    Only the candidate's findings score. What the spike's environment refused or lacked
    (network, a harness package, a file the README leaves to the reader, a time box too
    tight for a cold cache) and errors of the spike's own code or of the user's use of a
    fixture are ``unchecked``: shown with the reason, never counted against the candidate.
    """

    CANDIDATE = "candidate"
    ENVIRONMENT = "environment"
    SPIKE = "spike"

    def __str__(self) -> str:
        return self.value


def parse_choice(enum_type: type[enum.Enum], value: str, where: str) -> Any:
    """Parse ``value`` as a member of ``enum_type``; the error names ``where`` it came from."""
    try:
        return enum_type(value.strip().lower())
    except ValueError:
        choices = ", ".join(str(member.value) for member in enum_type)
        raise SpikeError(f"{where}: {value!r} is not one of {choices}") from None


@dataclass(frozen=True)
class Finding:
    """One thing a probe saw that bears on the risk of adopting a candidate.

    ``code`` is stable and dotted (``install.missing``, ``import.deprecation``), ``message``
    is one line, ``evidence`` holds short strings (cell, node id, excerpt) that back it.
    ``blame`` says whose fault it shows: anything but the candidate's is ``unchecked``.
    """

    code: str
    severity: Severity
    message: str
    evidence: Mapping[str, str] = field(default_factory=dict)
    blame: Blame = Blame.CANDIDATE

    @property
    def unchecked(self) -> bool:
        """True when the finding is not the candidate's fault, so it never scores."""
        return self.blame is not Blame.CANDIDATE

    def __post_init__(self) -> None:
        object.__setattr__(self, "severity", Severity(self.severity))
        object.__setattr__(self, "blame", Blame(self.blame))
        object.__setattr__(self, "message", _one_line(self.message))
        object.__setattr__(self, "evidence", {str(k): str(v) for k, v in dict(self.evidence).items()})

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
            "evidence": dict(self.evidence),
            "blame": self.blame.value,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Finding:
        code = str(data["code"])
        return cls(
            code=RENAMED_CODES.get(code, code),
            severity=Severity(data["severity"]),
            message=str(data["message"]),
            evidence=dict(data.get("evidence") or {}),
            # results files written before attribution existed blamed the candidate for all
            blame=Blame(data.get("blame") or Blame.CANDIDATE.value),
        )


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


@dataclass(frozen=True)
class Candidate:
    """A package under evaluation, as declared by ``spike.candidate`` or ``--spike-candidate``."""

    requirement: str
    versions: str | tuple[str, ...] | None = None
    python: tuple[str, ...] = ()
    modules: tuple[str, ...] = ()
    timebox: float | None = None
    #: per-test limits: (("memory_mb", 512.0), ("seconds", 30.0))
    budget: tuple[tuple[str, float], ...] = ()

    @property
    def name(self) -> str:
        """The canonical project name (``Foo_Bar`` -> ``foo-bar``); used in node ids."""
        from packaging.utils import canonicalize_name

        return canonicalize_name(_requirement(self.requirement).name)

    @property
    def project(self) -> str:
        """The project name as the user wrote it."""
        return _requirement(self.requirement).name

    @property
    def pinned(self) -> str | None:
        """The one version the requirement allows (``tomli==2.0.1`` -> ``2.0.1``), else None."""
        return exact_pin(_requirement(self.requirement))

    def unmet(self, version: str) -> list[str]:
        """The parts of the requirement and ``versions`` that ``version`` does not meet."""
        from packaging.specifiers import SpecifierSet
        from packaging.version import InvalidVersion, Version

        try:
            current = Version(version)
        except InvalidVersion:
            return [f"a valid version (got {version!r})"]
        unmet = []
        spec = _requirement(self.requirement).specifier
        if str(spec) and current not in SpecifierSet(str(spec), prereleases=True):
            unmet.append(str(spec))
        if isinstance(self.versions, tuple):
            if not any(current == Version(v) for v in self.versions):
                unmet.append(" or ".join(self.versions))
        elif self.versions and not self.versions.startswith("latest"):
            if current not in SpecifierSet(self.versions, prereleases=True):
                unmet.append(self.versions)
        return unmet

    def install_requirement(self) -> str:
        """What to ask an installer for: the newest version the spike accepts."""
        from packaging.specifiers import SpecifierSet
        from packaging.version import Version

        req = _requirement(self.requirement)
        spec = SpecifierSet(str(req.specifier))
        if isinstance(self.versions, tuple):
            spec &= SpecifierSet(f"=={max(self.versions, key=Version)}")
        elif self.versions and not self.versions.startswith("latest"):
            spec &= SpecifierSet(self.versions)
        extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
        marker = f" ; {req.marker}" if req.marker else ""
        return f"{req.name}{extras}{spec}{marker}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "requirement": self.requirement,
            "versions": list(self.versions) if isinstance(self.versions, tuple) else self.versions,
            "python": list(self.python),
            "modules": list(self.modules),
            "timebox": self.timebox,
            "budget": dict(self.budget),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Candidate:
        versions = data.get("versions")
        return cls(
            requirement=str(data["requirement"]),
            versions=tuple(versions) if isinstance(versions, list) else versions,
            python=tuple(data.get("python") or ()),
            modules=tuple(data.get("modules") or ()),
            timebox=data.get("timebox"),
            budget=tuple(sorted((str(k), float(v)) for k, v in (data.get("budget") or {}).items())),
        )


def _requirement(text: str) -> Requirement:
    # packaging's parser is imported on first use: a run without spike marks never needs it.
    from packaging.requirements import Requirement

    return Requirement(text)


def exact_pin(req: Requirement) -> str | None:
    """The one version ``req`` allows (``==2.0.1``, not ``==2.*``), else None."""
    specs = list(req.specifier)
    if len(specs) == 1 and specs[0].operator in ("==", "===") and "*" not in specs[0].version:
        return specs[0].version
    return None


def parse_requirement(text: str, where: str) -> Requirement:
    """Parse a PEP 508 requirement; the error names ``where`` it came from."""
    from packaging.requirements import InvalidRequirement

    try:
        req = _requirement(text)
    except InvalidRequirement as exc:
        first = str(exc).splitlines()[0]
        raise SpikeError(
            f"{where}: {text!r} is not a valid requirement ({first}); "
            "write it as for pip, e.g. 'tomli' or 'tomli>=2'"
        ) from None
    if req.url:
        raise SpikeError(
            f"{where}: {text!r} is a direct URL requirement; name a project on the package index instead"
        )
    return req


@dataclass(frozen=True)
class Metric:
    """A named number a test reported, compared across candidates."""

    name: str
    value: float
    unit: str | None = None
    better: str = "higher"

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "unit": self.unit, "better": self.better}

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any]) -> Metric:
        return cls(
            name=name,
            value=float(data["value"]),
            unit=data.get("unit"),
            better=str(data.get("better", "higher")),
        )


@dataclass
class ProbeResult:
    """What one probe item (built-in or user test) did for one candidate."""

    candidate: str
    kind: str
    nodeid: str
    outcome: str = "passed"
    duration_s: float = 0.0
    peak_memory_mb: float | None = None
    version: str | None = None
    findings: list[Finding] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Metric] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: when its evidence was taken (ISO 8601, UTC), and whether it was reused from the cache
    taken: str | None = None
    cached: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate,
            "kind": self.kind,
            "nodeid": self.nodeid,
            "outcome": self.outcome,
            "duration_s": round(self.duration_s, 4),
            "peak_memory_mb": None if self.peak_memory_mb is None else round(self.peak_memory_mb, 2),
            "version": self.version,
            "findings": [f.to_dict() for f in self.findings],
            "details": self.details,
            "metrics": {name: m.to_dict() for name, m in self.metrics.items()},
            "notes": list(self.notes),
            "taken": self.taken,
            "cached": self.cached,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProbeResult:
        return cls(
            candidate=str(data["candidate"]),
            kind=str(data["kind"]),
            nodeid=str(data["nodeid"]),
            outcome=str(data.get("outcome", "passed")),
            duration_s=float(data.get("duration_s") or 0.0),
            peak_memory_mb=data.get("peak_memory_mb"),
            version=data.get("version"),
            findings=[Finding.from_dict(f) for f in data.get("findings") or ()],
            details=dict(data.get("details") or {}),
            metrics={name: Metric.from_dict(name, m) for name, m in (data.get("metrics") or {}).items()},
            notes=[str(n) for n in data.get("notes") or ()],
            taken=data.get("taken"),
            cached=bool(data.get("cached", False)),
        )


@dataclass(frozen=True)
class Scored:
    """A finding with the points it adds to its candidate's score.

    ``waiver`` is the team's waiver covering it (``until``, ``reason``, ``expired``): an
    active one makes the points 0, an expired one is shown beside the points it gives again.
    """

    finding: Finding
    points: float
    probe: str | None = None
    waiver: Mapping[str, Any] | None = None

    @property
    def waived(self) -> bool:
        """Whether an active (unexpired) waiver covers this finding."""
        return self.waiver is not None and not self.waiver.get("expired")

    def to_dict(self) -> dict[str, Any]:
        data = dict(self.finding.to_dict(), points=_number(self.points), probe=self.probe)
        if self.waiver is not None:
            data["waiver"] = dict(self.waiver)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Scored:
        waiver = data.get("waiver")
        return cls(
            Finding.from_dict(data),
            float(data.get("points", 0)),
            data.get("probe"),
            dict(waiver) if isinstance(waiver, Mapping) else None,
        )


@dataclass
class CandidateResult:
    """Everything known about one candidate in one cell, and its score."""

    candidate: Candidate
    version: str | None = None
    probes: list[ProbeResult] = field(default_factory=list)
    scored: list[Scored] = field(default_factory=list)
    score: float = 0.0
    level: Level = Level.LOW
    #: measured compute time turned into money (``spike_cost_per_hour``), or None
    cost: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return self.candidate.name

    @property
    def findings(self) -> list[Finding]:
        return [s.finding for s in self.scored]

    @property
    def counted_findings(self) -> list[Finding]:
        """The findings the level counts: all but those under an active waiver."""
        return [s.finding for s in self.scored if not s.waived]

    @property
    def metrics(self) -> dict[str, Metric]:
        merged: dict[str, Metric] = {}
        for probe in self.probes:
            merged.update(probe.metrics)
        return merged

    @property
    def notes(self) -> list[str]:
        return [note for probe in self.probes for note in probe.notes]

    @property
    def behaviour(self) -> str:
        """What its code tried in the box, stage by stage, in one line (from the probes'
        ``behaviour`` details); steps that only read metadata and tried nothing are left out."""
        parts: list[str] = []
        for probe in self.probes:
            said = probe.details.get("behaviour")
            if not isinstance(said, dict):
                continue
            for part in str(said.get("summary", "")).split("; "):
                if part and part not in parts and part != "inspect: 0 attempts":
                    parts.append(part)
        order = ("install", "resolve", "inspect", "import", "readme", "docs", "upstream", "tests")

        def rank(part: str) -> int:
            stage = part.partition(":")[0]
            return order.index(stage) if stage in order else len(order)

        return "; ".join(sorted(parts, key=rank))

    @property
    def duration_s(self) -> float:
        return sum(p.duration_s for p in self.probes)

    @property
    def peak_memory_mb(self) -> float | None:
        peaks = [p.peak_memory_mb for p in self.probes if p.peak_memory_mb is not None]
        return max(peaks) if peaks else None

    @property
    def evidence(self) -> dict[str, Any]:
        """How much evidence the verdict rests on (evidence rule 3).

        A probe kind has evidence when one of its items ran to an outcome; a kind whose
        every item was skipped is unknown, with the reason its first item gave.
        """
        order = {kind: i for i, kind in enumerate(PROBE_KINDS)}
        why: dict[str, str | None] = {}
        for probe in sorted(self.probes, key=lambda p: (order.get(p.kind, 99), p.nodeid)):
            if probe.outcome == "skipped":
                why.setdefault(probe.kind, str(probe.details.get("unknown") or "skipped"))
            else:
                why[probe.kind] = None
        unknown = {kind: reason for kind, reason in why.items() if reason is not None}
        return {
            "probes_with_evidence": len(why) - len(unknown),
            "probes": len(why),
            "unknown": list(unknown),
            "why": unknown,
        }

    def to_dict(self) -> dict[str, Any]:
        data = self.candidate.to_dict()
        data.update(
            {
                "version": self.version,
                "level": self.level.value,
                "score": _number(self.score),
                "evidence": self.evidence,
                "findings": [s.to_dict() for s in self.scored],
                "probes": [
                    {key: value for key, value in p.to_dict().items() if key not in ("candidate", "findings")}
                    for p in self.probes
                ],
                "metrics": {name: m.to_dict() for name, m in self.metrics.items()},
                "notes": self.notes,
                "behaviour": self.behaviour,
                "duration_s": round(self.duration_s, 4),
                "peak_memory_mb": self.peak_memory_mb,
                "cost": self.cost,
            }
        )
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CandidateResult:
        candidate = Candidate.from_dict(data)
        probes = [ProbeResult.from_dict(dict(p, candidate=candidate.name)) for p in data.get("probes") or ()]
        return cls(
            candidate=candidate,
            version=data.get("version"),
            probes=probes,
            scored=[Scored.from_dict(f) for f in data.get("findings") or ()],
            score=float(data.get("score") or 0),
            level=Level(data.get("level", "low")),
            cost=data.get("cost"),
        )


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else round(value, 3)


def current_cell() -> dict[str, str]:
    """Describe the interpreter and platform this run happens on."""
    return {
        "python": platform.python_version(),
        "python_short": f"{sys.version_info[0]}.{sys.version_info[1]}",
        "implementation": platform.python_implementation(),
        "platform": sys.platform,
        "machine": platform.machine(),
    }


@dataclass
class UpgradeTarget:
    """One target version of an upgrade spike: the project's tests before and after the move.

    ``passes`` is True when every test that passed before passes after, False when some
    break or the version cannot be installed with the project, None when it is unknown
    (the spike could not build or run the upgraded environment).
    """

    version: str
    level: Level = Level.LOW
    passes: bool | None = None
    findings: list[Finding] = field(default_factory=list)
    #: tests compared (passed before the upgrade) and how many of them break after it
    compared: int = 0
    broken: int = 0
    #: what moved, ``numpy 1.26.4 -> 2.1.3 (major upgrade)``, the candidate first
    moved: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    env: str | None = None
    #: the release's own evidence: the import, upstream and signals probes on this version,
    #: scored by the run's rules (None: no such probe was selected)
    release: CandidateResult | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "level": self.level.value,
            "passes": self.passes,
            "findings": [f.to_dict() for f in self.findings],
            "compared": self.compared,
            "broken": self.broken,
            "moved": list(self.moved),
            "duration_s": round(self.duration_s, 3),
            "env": self.env,
            "release": self.release.to_dict() if self.release is not None else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UpgradeTarget:
        return cls(
            version=str(data["version"]),
            level=Level(data.get("level", "low")),
            passes=data.get("passes"),
            findings=[Finding.from_dict(f) for f in data.get("findings") or ()],
            compared=int(data.get("compared") or 0),
            broken=int(data.get("broken") or 0),
            moved=[str(m) for m in data.get("moved") or ()],
            duration_s=float(data.get("duration_s") or 0.0),
            env=data.get("env"),
            release=CandidateResult.from_dict(data["release"]) if data.get("release") else None,
        )


@dataclass
class UpgradeResult:
    """An upgrade spike of one installed package (``--spike-upgrade``) over its target versions."""

    requirement: str
    package: str
    current: str | None
    targets: list[UpgradeTarget] = field(default_factory=list)
    #: the baseline: where its outcomes came from ("this run" or "a child pytest") and counts
    baseline: dict[str, Any] = field(default_factory=dict)

    def reaching(self, level: Level) -> list[UpgradeTarget]:
        """The target versions at or above ``level`` (they fail a run as candidates do)."""
        return [t for t in self.targets if t.level.rank >= level.rank]

    @property
    def newest_passing(self) -> str | None:
        """The newest target version on which the project's tests pass, if any."""
        from packaging.version import Version

        passing = [t.version for t in self.targets if t.passes]
        return max(passing, key=Version) if passing else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "requirement": self.requirement,
            "package": self.package,
            "current": self.current,
            "baseline": dict(self.baseline),
            "newest_passing": self.newest_passing,
            "targets": [t.to_dict() for t in self.targets],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UpgradeResult:
        return cls(
            requirement=str(data["requirement"]),
            package=str(data["package"]),
            current=data.get("current"),
            targets=[UpgradeTarget.from_dict(t) for t in data.get("targets") or ()],
            baseline=dict(data.get("baseline") or {}),
        )


@dataclass
class Scorecard:
    """The candidates of one run (one matrix cell), ready to print or save."""

    cell: dict[str, str]
    candidates: list[CandidateResult]
    complete: bool = True
    plugin_version: str = ""
    created: str = ""
    fail_on: Level | None = None
    #: the thresholds, weights and waivers this verdict used, so a reader can check them
    settings: dict[str, Any] = field(default_factory=dict)
    #: upgrade spikes of this run (``--spike-upgrade``); written only when there are some
    upgrades: list[UpgradeResult] = field(default_factory=list)

    def lowest_risk(self) -> list[CandidateResult]:
        """The candidates that share the lowest (level, score, less coverage); empty when none can
        be named (see :meth:`unnamed`).

        A BLOCKED candidate, or one whose verdict rests on no evidence at all, is never the
        lowest risk: its level says nothing good about it. Equal scores are broken by coverage,
        the share of probes with evidence, then their number (more evidence wins).
        """
        named = [c for c in self.candidates if not _unnameable(c)]
        if not named:
            return []
        best = min(_risk_key(c) for c in named)
        return [c for c in named if _risk_key(c) == best]

    def unnamed(self) -> dict[str, str]:
        """Each candidate that cannot be named lowest risk, with why (blocked, no evidence)."""
        return {c.name: why for c in self.candidates if (why := _unnameable(c))}

    def reaching(self, level: Level) -> list[CandidateResult]:
        return [c for c in self.candidates if c.level.rank >= level.rank]

    def metric_names(self) -> list[str]:
        names: dict[str, None] = {}
        for cand in self.candidates:
            for name in cand.metrics:
                names.setdefault(name, None)
        return list(names)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "plugin_version": self.plugin_version,
            "created": self.created,
            "complete": self.complete,
            "cell": dict(self.cell),
            "fail_on": self.fail_on.value if self.fail_on else None,
            "settings": dict(self.settings),
            "lowest_risk": [c.name for c in self.lowest_risk()],
            "candidates": [c.to_dict() for c in self.candidates],
            **({"upgrades": [u.to_dict() for u in self.upgrades]} if self.upgrades else {}),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Scorecard:
        schema = data.get("schema") if isinstance(data, Mapping) else None
        if schema != SCHEMA:
            raise SpikeError(_schema_problem(schema))
        fail_on = data.get("fail_on")
        return cls(
            cell=dict(data.get("cell") or {}),
            candidates=[CandidateResult.from_dict(c) for c in data["candidates"]],
            complete=bool(data.get("complete", True)),
            plugin_version=str(data.get("plugin_version", "")),
            created=str(data.get("created", "")),
            fail_on=Level(fail_on) if fail_on else None,
            settings=dict(data.get("settings") or {}),
            upgrades=[UpgradeResult.from_dict(u) for u in data.get("upgrades") or ()],
        )


def _coverage(result: CandidateResult) -> tuple[int, int]:
    evidence = result.evidence
    return int(evidence["probes_with_evidence"]), int(evidence["probes"])


def _unnameable(result: CandidateResult) -> str:
    """Why ``result`` cannot be the lowest risk ("" when it can)."""
    if result.level is Level.BLOCKED:
        return f"blocked, {_number(result.score)} points"
    has, runs = _coverage(result)
    if has == 0:
        return f"no evidence ({has}/{runs})"
    return ""


def _risk_key(result: CandidateResult) -> tuple[int, float, float, int]:
    has, runs = _coverage(result)
    return result.level.rank, result.score, -has / max(runs, 1), -has


def best_metric(values: Iterable[tuple[str, Metric]]) -> set[str]:
    """Names of the candidates holding the best value of one metric."""
    pairs = [(name, m) for name, m in values if not math.isnan(m.value)]
    if not pairs:
        return set()
    pick = max if pairs[0][1].better == "higher" else min
    best = pick(m.value for _, m in pairs)
    return {name for name, m in pairs if m.value == best}


def sorted_scored(scored: Sequence[Scored]) -> list[Scored]:
    """Findings most important first: points, then severity, then code."""
    return sorted(scored, key=lambda s: (-s.points, -s.finding.severity.rank, s.finding.code))


def _schema_problem(schema: object) -> str:
    """Why a results file's ``schema`` cannot be read, and what to do about it."""
    family, _, number = str(schema).partition("/")
    ours = int(SCHEMA.split("/")[1])
    if family != SCHEMA.split("/")[0] or not number.isdigit():
        fix = "not a pytest-spike results file"
    elif int(number) > ours:
        fix = "written by a newer pytest-spike; upgrade pytest-spike to read it"
    else:
        fix = "re-run the spike with this version of pytest-spike"
    return f"results schema {schema!r} is not {SCHEMA!r}: {fix}"
