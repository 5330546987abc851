"""What an interpreter has installed of one distribution: its version, closure and size.

One script, ``_inspect_dist.py``, runs inside the target interpreter (the running one or a
candidate environment's) and reports facts: the root distribution, the installed
distributions reachable from it by name, and the marker environment. The closure is worked
out here, with packaging, so markers and extras are evaluated the same way for every
interpreter, whether or not it has packaging itself.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from pytest_spike._core.runner import RunResult, last_json_line
from pytest_spike.model import SpikeError


def host_python() -> str:
    """ "X.Y" of the running interpreter."""
    return f"{sys.version_info[0]}.{sys.version_info[1]}"


@functools.cache
def script() -> str:
    """The source of the inspection script, for ``python -c``."""
    return (Path(__file__).parent / "_inspect_dist.py").read_text(encoding="utf-8")


def argv(python: str, requirement: str, *, isolated: bool = False) -> list[str]:
    """The command that inspects ``requirement``'s distribution with ``python``.

    ``isolated`` (``-I``) leaves out PYTHONPATH and the user's site-packages: right for a
    built environment; the running one is inspected as its imports see it.
    """
    req = Requirement(requirement)
    args = json.dumps({"name": req.name, "extras": sorted(req.extras)})
    return [python, *(["-I"] if isolated else []), "-c", script(), args]


def read(result: RunResult, what: str) -> dict[str, Any]:
    """The script's report; SpikeError (one line, starting with ``what``) when there is none."""
    report = last_json_line(result, what)
    if not isinstance(report, dict) or "installed" not in report:
        raise SpikeError(f"{what}: the inspection answered {str(report)[:200]!r}")
    return report


def closure(report: Mapping[str, Any], requirement: str) -> dict[str, str | None]:
    """Everything ``requirement`` needs in that interpreter: canonical name -> installed
    version, None when needed but not installed; the root itself left out."""
    dists = {canonicalize_name(d["name"]): d for d in report.get("dists", ()) if d.get("name")}
    env = dict(report.get("env") or {})
    root = Requirement(requirement)
    root_name = canonicalize_name(root.name)
    found: dict[str, str | None] = {}
    todo = [(root_name, frozenset(root.extras))]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, extras = todo.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        dist = dists.get(name)
        found.setdefault(name, None if dist is None else str(dist["version"]))
        for text in dist["requires"] if dist is not None else ():
            try:
                req = Requirement(text)
            except InvalidRequirement:
                continue  # pip would refuse it too; it names nothing we can follow
            if req.marker is None or _marker_applies(req.marker, env, extras):
                todo.append((canonicalize_name(req.name), frozenset(req.extras)))
    found.pop(root_name, None)
    return found


def sizes(report: Mapping[str, Any], names: set[str]) -> int:
    """Bytes on disk (bytecode left out) of the distributions ``names`` of the report."""
    return sum(int(d["size"]) for d in report.get("dists", ()) if canonicalize_name(d["name"]) in names)


def describe(report: Mapping[str, Any], requirement: str) -> dict[str, Any]:
    """The probes' view of a report: ``dependencies`` (name -> version or None),
    ``size_bytes`` (the root), ``deps_size_bytes`` (installed dependencies)."""
    info = {k: v for k, v in report.items() if k not in ("dists", "env")}
    info["python_version"] = (report.get("env") or {}).get("python_version")
    if not report.get("installed"):
        return info
    deps = closure(report, requirement)
    info["dependencies"] = deps
    info["size_bytes"] = sizes(report, {canonicalize_name(str(report["name"]))})
    info["deps_size_bytes"] = sizes(report, {n for n, v in deps.items() if v is not None})
    return info


def _marker_applies(marker: Marker, env: Mapping[str, str], extras: frozenset[str]) -> bool:
    if not extras:
        return marker.evaluate(dict(env, extra=""))
    return any(marker.evaluate(dict(env, extra=extra)) for extra in extras)
