"""What a probe receives (ProbeContext) and what it returns (ProbeOutcome).

The context decides where the candidate lives (its Target): the running environment
when the candidate is installed there at a version the spike accepts, otherwise an
environment of its own, built (or reused) from the cache.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from pytest_spike._core import runner
from pytest_spike.envs import inspection
from pytest_spike.envs.manager import EnvManager, EnvResult, tool_env
from pytest_spike.index.client import IndexClient
from pytest_spike.model import Candidate, Finding, SpikeError


@dataclass
class ProbeOutcome:
    """Findings and evidence from one probe.

    ``skipped`` is the reason it could not run. ``failed`` says whether its pytest item
    fails; when None, the item fails on any high or critical finding.
    """

    findings: list[Finding] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    version: str | None = None
    skipped: str | None = None
    peak_memory_mb: float | None = None
    failed: bool | None = None


@dataclass(frozen=True)
class Target:
    """The interpreter whose environment holds the candidate (None: none could be made)."""

    python: str | None
    isolated: bool
    env: EnvResult | None = None
    error: str | None = None


@dataclass
class ProbeContext:
    """Where and how a probe runs a candidate.

    ``host_python`` is the running interpreter. ``memo`` is shared by the probes of one
    session (per xdist worker) so expensive look-ups happen once; environments are shared
    across workers and runs through the EnvManager's locked cache.
    """

    candidate: Candidate
    host_python: str = sys.executable
    timeout: float = 60.0
    workdir: Path = field(default_factory=Path.cwd)
    memo: dict[Any, Any] = field(default_factory=dict)
    #: Builds the package index client (once per session, see ``index()``).
    index_factory: Callable[[], IndexClient] | None = None
    #: Builds the environment manager (once per session, see ``envs()``).
    env_factory: Callable[[], EnvManager] | None = None
    isolation: str = "never"
    #: environment backend ("auto", "uv", "venv"); the fit check resolves with the same tool
    backend: str = "auto"
    stale_after_days: int = 730
    #: requirement files from ini ``spike_requirements`` (None: the running environment)
    requirement_files: tuple[str, ...] | None = None
    rootdir: Path = field(default_factory=Path.cwd)
    upstream_sample: int = 5
    #: where fetched things are kept between runs (extracted sdists); None: nowhere
    cache_dir: Path | None = None
    upstream_seed: int = 0
    #: Tells the user what a long step is doing (quiet under -q).
    say: Callable[[str], None] = lambda text: None

    def remember(self, key: Any, compute: Callable[[], Any]) -> Any:
        if key not in self.memo:
            self.memo[key] = compute()
        return self.memo[key]

    def run(self, argv: list[str], **kwargs: Any) -> runner.RunResult:
        """Run candidate-side code with this context's time limit, from its work dir."""
        kwargs.setdefault("timeout", self.timeout)
        kwargs.setdefault("cwd", self.workdir)
        if argv and argv[0] != self.host_python:
            # The user's PYTHONPATH belongs to the running environment; in a candidate's own
            # environment it would shadow what that environment installed.
            kwargs.setdefault("env", self.foreign_env())
        return runner.run(argv, **kwargs)

    @staticmethod
    def foreign_env() -> dict[str, str]:
        """The environment for interpreters other than the running one."""
        return tool_env()

    def index(self) -> IndexClient:
        """The session's package index client."""
        if self.index_factory is None:
            raise SpikeError("no package index client was configured for this probe")
        return self.remember("index-client", self.index_factory)

    def envs(self) -> EnvManager:
        """The session's environment manager."""
        if self.env_factory is None:
            raise SpikeError("candidate environments are not configured (--spike-isolation never)")
        return self.remember("env-manager", self.env_factory)

    def project_requirements(self) -> list[str]:
        """The project's own requirements, for the fit check (once per session)."""
        from pytest_spike.envs.fit import project_requirements

        files = self.requirement_files
        return self.remember(
            ("project-requirements", files),
            lambda: project_requirements(list(files) if files is not None else None, root=self.rootdir),
        )

    # -- where the candidate lives ------------------------------------------------------

    def target(self) -> Target:
        """The running environment if it has an accepted version, else one of its own."""
        return self.remember(("target", self.candidate), self._target)

    def _target(self) -> Target:
        if self.isolation != "always":
            host = self.inspect_with(self.host_python)
            accepted = host.get("installed") and not self.candidate.unmet(str(host["version"]))
            if accepted or self.isolation == "never":
                return Target(self.host_python, isolated=False)
        try:
            env = self.envs().ensure([self.candidate.install_requirement()])
        except SpikeError as exc:
            return Target(None, isolated=True, error=str(exc))
        return Target(env.python if env.ok else None, isolated=True, env=env)

    @property
    def python(self) -> str | None:
        """The interpreter to run candidate code with (None: the candidate has no environment)."""
        return self.target().python

    def inspect(self) -> dict[str, Any]:
        """What the candidate's environment knows of its distribution (see envs/inspection.py)."""
        python = self.python
        if python is None:
            return {"installed": False, "python": None}
        return self.inspect_with(python)

    def inspect_with(self, python: str) -> dict[str, Any]:
        return self.remember(("inspect", python, self.candidate.requirement), lambda: self._inspect(python))

    def _inspect(self, python: str) -> dict[str, Any]:
        requirement = self.candidate.requirement
        what = f"cannot inspect {self.candidate.project} with {python}"
        result = self.run(inspection.argv(python, requirement))
        if not result.ok:
            raise SpikeError(f"{what}: {result.describe()}: {result.last_error_line()}")
        return inspection.describe(inspection.read(result, what), requirement)
