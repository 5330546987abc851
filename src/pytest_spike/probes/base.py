"""What a probe receives (ProbeContext) and what it returns (ProbeOutcome)."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict

from pytest_spike import runner
from pytest_spike.index import IndexClient
from pytest_spike.model import Candidate, Finding, SpikeError

_INSPECT_SOURCE = (Path(__file__).parent / "_inspect_dist.py").read_text(encoding="utf-8")


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


@dataclass
class ProbeContext:
    """Where and how a probe runs a candidate.

    ``python`` is the interpreter whose environment holds the candidate (the running one,
    or a candidate environment of its own). ``memo`` is shared by the probes of one
    session (per xdist worker) so expensive look-ups happen once.
    """

    candidate: Candidate
    python: str = sys.executable
    timeout: float = 60.0
    workdir: Path = field(default_factory=Path.cwd)
    memo: Dict[Any, Any] = field(default_factory=dict)
    #: Builds the package index client (once per session, see ``index()``).
    index_factory: Callable[[], Any] | None = None
    stale_after_days: int = 730

    def remember(self, key: Any, compute: Callable[[], Any]) -> Any:
        if key not in self.memo:
            self.memo[key] = compute()
        return self.memo[key]

    def run(self, argv: list[str], **kwargs: Any) -> runner.RunResult:
        """Run candidate-side code with this context's time limit, from its work dir."""
        kwargs.setdefault("timeout", self.timeout)
        kwargs.setdefault("cwd", self.workdir)
        return runner.run(argv, **kwargs)

    def index(self) -> IndexClient:
        """The session's package index client."""
        if self.index_factory is None:
            raise SpikeError("no package index client was configured for this probe")
        return self.remember("index-client", self.index_factory)

    def inspect(self) -> dict[str, Any]:
        """What the candidate's environment knows of its distribution (see _inspect_dist.py)."""
        return self.remember(("inspect", self.python, self.candidate.requirement), self._inspect)

    def _inspect(self) -> dict[str, Any]:
        from packaging.requirements import Requirement

        req = Requirement(self.candidate.requirement)
        args = json.dumps({"name": req.name, "extras": sorted(req.extras)})
        result = self.run(runner.python_argv(self.python, _INSPECT_SOURCE, args))
        if not result.ok:
            raise SpikeError(
                f"cannot inspect {req.name} with {self.python}: {result.describe()}: "
                f"{result.last_error_line()}"
            )
        try:
            return json.loads(result.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise SpikeError(
                f"cannot inspect {req.name} with {self.python}: unreadable answer "
                f"{result.stdout[:200]!r}"
            ) from None
