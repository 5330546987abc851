"""Fit with the project's dependencies, resolved for real against a local index."""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

import pytest
from backends import BACKENDS
from pkgfactory import build_local_index

from pytest_spike.envs.fit import check_fit, install_findings, project_requirements
from pytest_spike.envs.manager import EnvResult
from pytest_spike.model import Severity, SpikeError


@pytest.fixture(scope="module")
def index_args(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    folder = build_local_index(tmp_path_factory.mktemp("index"))
    return ["--no-index", "--find-links", str(folder)]


def fit(candidate: str, project: list[str], backend: str, index_args: list[str], **kw: object):
    return check_fit(sys.executable, candidate, project, 120, backend=backend, index_args=index_args, **kw)


@pytest.mark.parametrize("backend", BACKENDS)
def test_pinned_older_dependency_shows_the_change(backend: str, index_args: list[str]) -> None:
    findings, details = fit("cand", ["dep==1.0"], backend, index_args)
    assert [(f.code, f.severity) for f in findings] == [("install.changes", Severity.MEDIUM)]
    assert "dep 1.0 -> 2.0 (major upgrade)" in findings[0].message
    assert details["changes"] == {"dep": "1.0 -> 2.0"} and details["relaxed"] == ["dep"]
    assert details["fits"] is False


@pytest.mark.parametrize("backend", BACKENDS)
def test_candidate_needing_an_older_major_names_the_downgrade(backend: str, index_args: list[str]) -> None:
    findings, details = fit("oldcand", ["dep==2.0", "other==1.0"], backend, index_args)
    assert [f.code for f in findings] == ["install.changes"]
    assert "dep 2.0 -> 1.0 (major downgrade)" in findings[0].message
    assert details["relaxed"] == ["dep"]


def test_requirements_mode_shows_the_change_too(index_args: list[str]) -> None:
    findings, details = fit("cand", ["dep==1.0"], "venv", index_args, constraints=False)
    assert [f.code for f in findings] == ["install.changes"]
    assert details["resolved"] == {"cand": "1.0", "dep": "2.0"}


@pytest.mark.parametrize("backend", BACKENDS)
def test_range_that_excludes_the_candidates_needs_is_a_conflict(backend: str, index_args: list[str]) -> None:
    findings, details = fit("cand", ["dep<2", "unrelated==3.0"], backend, index_args)
    assert [(f.code, f.severity) for f in findings] == [("install.conflict", Severity.HIGH)]
    assert findings[0].evidence["clashing"] == "dep<2"
    assert "dep>=2" in findings[0].message and "dep<2" in findings[0].message
    assert details["fits"] is False and details["relaxed"] == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_clash_with_a_range_that_depends_on_the_candidate_is_named(
    backend: str, index_args: list[str]
) -> None:
    """uv names the range only on the line under its ``cause:`` ("And because you require
    oldcand==1.0"): the clash is named with both resolvers, in requirements mode."""
    findings, details = fit("dep==2.0", ["oldcand>=1,<2"], backend, index_args, constraints=False)
    assert [(f.code, f.evidence["clashing"]) for f in findings] == [("install.conflict", "oldcand<2,>=1")]
    assert details["fits"] is False


@pytest.mark.parametrize("backend", BACKENDS)
def test_compatible_pins_fit(backend: str, index_args: list[str]) -> None:
    findings, details = fit("cand", ["dep==2.0"], backend, index_args)
    assert findings == [] and details["fits"] is True
    assert details["resolved"] == {"cand": "1.0", "dep": "2.0"}


@pytest.mark.parametrize("backend", BACKENDS)
def test_candidate_that_cannot_resolve_alone_is_not_a_fit_finding(
    backend: str, index_args: list[str]
) -> None:
    findings, details = fit("broken", ["dep==1.0"], backend, index_args)
    assert findings == [] and details["fits"] is None
    assert "missingdep" in details["error"]


def test_environment_pins_leave_out_tooling() -> None:
    pins = project_requirements(None)
    assert f"packaging=={metadata.version('packaging')}" in pins
    names = {pin.split("==")[0] for pin in pins}
    assert not names & {"pip", "setuptools", "wheel", "pytest-spike"}
    assert all(pin.count("==") == 1 for pin in pins)


def test_requirement_files_are_read_like_pip(tmp_path: Path) -> None:
    (tmp_path / "base.txt").write_text("attrs>=22  # comment\n")
    (tmp_path / "constraints.txt").write_text("dep==1.0\n")
    (tmp_path / "requirements.txt").write_text(
        "# top comment\n"
        "--index-url http://127.0.0.1:9/simple\n"
        "-r base.txt\n"
        "-c constraints.txt\n"
        "numpy==1.26.4 \\\n"
        "    --hash=sha256:abc\n"
        "-e ./local-checkout\n"
        "https://example.invalid/pkg.whl\n"
        "tomli ; python_version < '3.11'\n"
    )
    reqs = project_requirements(["requirements.txt"], root=tmp_path)
    assert reqs == ["attrs>=22", "dep==1.0", "numpy==1.26.4", "tomli ; python_version < '3.11'"]


def test_requirement_file_errors_name_the_place(tmp_path: Path) -> None:
    with pytest.raises(SpikeError, match="cannot read .*missing.txt"):
        project_requirements(["missing.txt"], root=tmp_path)
    (tmp_path / "bad.txt").write_text("ok==1\nnot a requirement!\n")
    with pytest.raises(SpikeError, match=r"bad.txt:2: 'not a requirement!'"):
        project_requirements(["bad.txt"], root=tmp_path)


def test_install_findings_for_sdists_and_footprint() -> None:
    env = EnvResult(
        ok=True,
        python="/env/bin/python",
        path="/env",
        backend="venv",
        requirements=["cand"],
        candidate="cand",
        version="1.0",
        from_sdist=False,
        sdists=["dep"],
        dependencies=["dep"],
        size_bytes=2_500_000,
    )
    findings, details = install_findings(env)
    assert [(f.code, f.severity) for f in findings] == [
        ("install.sdist", Severity.LOW),
        ("install.footprint", Severity.INFO),
    ]
    assert "dep" in findings[0].message and "2.5 MB" in findings[1].message
    assert details["size_mb"] == 2.5 and details["from_sdist"] is False
