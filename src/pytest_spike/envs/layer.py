"""Re-run a candidate's own tests inside its environment, with a child pytest.

A candidate that is not installed in the running environment lives in an environment of
its own, without pytest. Rather than installing pytest and pytest-spike into every such
environment, the child interpreter adds a *layer*: a folder holding copies of the running
environment's pytest-spike and everything it needs (pytest, pluggy, packaging...), built
once per interpreter and plugin version. The layer is appended to ``sys.path`` only in the
child pytest run (``site.addsitedir``), after the environment's own packages, so the
candidate's dependencies win and the built-in probes never see it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import tempfile
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from pytest_spike._core import runner
from pytest_spike._core.files import json_object, load_json_document
from pytest_spike.envs.store import build_once
from pytest_spike.model import Finding, ProbeResult, SpikeError

# The child's entry point: add the layer after the environment's packages, then run pytest.
_BOOT = """
import site, sys
site.addsitedir(sys.argv[1])
import pytest
sys.exit(pytest.main(sys.argv[2:]))
"""
_LAYER_MARKER = "spike-layer.json"


def _closure(root: str = "pytest-spike") -> list[metadata.Distribution]:
    """pytest-spike's distribution and every distribution it needs, in this interpreter."""
    found: dict[str, metadata.Distribution] = {}
    queue = [root]
    while queue:
        name = canonicalize_name(queue.pop())
        if name in found:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # an optional need of another platform; pip check would say so
        found[name] = dist
        for text in dist.requires or ():
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                queue.append(req.name)
    return list(found.values())


def _source_digest(package_dir: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(package_dir.rglob("*.py")):
        digest.update(str(path.relative_to(package_dir)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def layer_path(cache_root: Path) -> Path:
    """Where the layer for this interpreter and these exact distributions lives."""
    dists = sorted(f"{d.metadata['Name']}=={d.version}" for d in _closure())
    package_dir = Path(__file__).resolve().parent.parent  # the pytest_spike package
    ident = json.dumps([sys.version, sys.executable, dists, _source_digest(package_dir)])
    return cache_root / "layers" / hashlib.sha256(ident.encode()).hexdigest()[:20]


def build_layer(cache_root: Path) -> Path:
    """Build (or reuse) the layer of pytest-spike and its needs for this interpreter."""
    final = layer_path(cache_root)

    def build(staging: Path) -> dict[str, Any]:
        return {"distributions": [_copy_distribution(dist, staging) for dist in _closure()]}

    build_once(final, _LAYER_MARKER, build, timeout=300)
    return final


def _copy_distribution(dist: metadata.Distribution, dest: Path) -> str:
    """Copy one installed distribution's files (as RECORD lists them) into ``dest``."""
    name = str(dist.metadata["Name"])
    for relative in dist.files or ():
        parts = relative.parts
        if not parts or parts[0] == ".." or "__pycache__" in parts or relative.suffix == ".pth":
            continue  # scripts outside site-packages, bytecode, and editable-install hooks
        source = Path(str(dist.locate_file(relative)))
        if source.is_file():
            target = dest.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    if canonicalize_name(name) == "pytest-spike":
        # An editable install's RECORD lists no package files: copy the package itself.
        package = Path(__file__).resolve().parent.parent  # the pytest_spike package
        shutil.copytree(
            package, dest / package.name, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__")
        )
    return f"{name}=={dist.version}"


def run_child(
    python: str,
    layer: Path,
    nodeids: Sequence[str],
    pytest_args: Sequence[str],
    *,
    cwd: Path,
    timeout: float,
) -> dict[str, ProbeResult]:
    """Run ``nodeids`` with ``python``'s pytest plus the layer; results by node id.

    Raises SpikeError, with the child's own last error line, when it wrote no results.
    """
    with tempfile.TemporaryDirectory(prefix="spike-child-") as tmp:
        out = Path(tmp) / "results.json"
        argv = [python, "-c", _BOOT, str(layer), *nodeids, *pytest_args, "--spike-json", str(out)]
        # The parent's PYTEST_ADDOPTS may name plugins the child does not have (xdist).
        done = runner.run(argv, timeout=timeout, cwd=cwd, extra_env={"PYTEST_ADDOPTS": ""})
        if not out.is_file():
            raise SpikeError(
                f"the child pytest in {python} wrote no results ({done.describe()}): "
                f"{done.last_error_line() or 'no output'}"
            )
        data = load_json_document(out, f"results file of the child pytest in {python}", json_object)
    found: dict[str, ProbeResult] = {}
    for cand in data.get("candidates", ()):
        by_probe: dict[str, list[Finding]] = {}
        for finding in cand.get("findings", ()):
            by_probe.setdefault(str(finding.get("probe")), []).append(Finding.from_dict(finding))
        for probe in cand.get("probes", ()):
            result = ProbeResult.from_dict(dict(probe, candidate=cand["name"]))
            result.findings = by_probe.get(result.nodeid, [])
            found[result.nodeid] = result
    return found
