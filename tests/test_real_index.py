"""Real packages from the real package index (marked ``network``; CI has the index)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.network


@pytest.fixture(scope="module")
def real_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tomli 2.0.1 and toml 0.10.2 installed by pip from the package index into a folder."""
    site = tmp_path_factory.mktemp("real-site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-compile",
            "--target",
            str(site),
            "tomli==2.0.1",
            "toml==0.10.2",
        ],
        check=True,
    )
    return site


def test_real_candidates_scorecard(
    pytester: pytest.Pytester, real_site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(real_site))
    monkeypatch.syspath_prepend(str(real_site))
    pytester.makepyfile(
        """
        import pytest
        from pytest_spike import spike

        @pytest.mark.parametrize("name", [
            pytest.param("tomli", marks=spike.candidate("tomli", versions=">=2.1")),
            pytest.param("toml", marks=spike.candidate("toml", versions="latest:3")),
        ])
        @spike.hello_world
        def test_hello(name):
            import importlib
            assert importlib.import_module(name).loads("a = [1, 2]") == {"a": [1, 2]}
        """
    )
    result = pytester.runpytest(
        "--spike", "--spike-probes", "install,import", "--spike-isolation", "never", "--spike-json", "r.json"
    )
    data = {c["name"]: c for c in json.loads((pytester.path / "r.json").read_text())["candidates"]}
    assert data["tomli"]["version"] == "2.0.1"
    assert data["toml"]["version"] == "0.10.2"
    mismatch = [f for f in data["tomli"]["findings"] if f["code"] == "install.version_mismatch"]
    assert mismatch and "outside the spike's versions (>=2.1)" in mismatch[0]["message"]
    assert data["tomli"]["level"] == "high"
    assert data["toml"]["level"] == "low"
    imports = next(p for p in data["toml"]["probes"] if p["kind"] == "import")
    assert imports["details"]["modules"] == ["toml"]
    result.stdout.fnmatch_lines(["lowest risk: toml (LOW, 0 points, evidence 3/3)"])


def test_real_candidate_in_its_own_environment_all_probes(pytester: pytest.Pytester, tmp_path: Path) -> None:
    """attrs from the index into a fresh environment: install, import, README, upstream sample
    (with its test harness), signals; and a user test re-run there by a child pytest."""
    pytester.makepyfile(
        """
        from pytest_spike import spike

        @spike.candidate("attrs", versions=">=23")
        @spike.hello_world
        def test_define():
            import attrs
            @attrs.define
            class Point:
                x: int
            assert Point(1).x == 1
        """
    )
    result = pytester.runpytest(
        "--spike",
        "--spike-isolation",
        "always",
        f"--spike-cache-dir={tmp_path / 'cache'}",
        "--spike-upstream-sample",
        "3",
        "--spike-json=r.json",
    )
    cand = json.loads((pytester.path / "r.json").read_text())["candidates"][0]
    probes = {p["kind"]: p for p in cand["probes"]}
    assert probes["install"]["details"]["isolated"] is True
    assert probes["hello_world"]["outcome"] == "passed"
    upstream = probes["upstream"]["details"]
    assert upstream["sampled"] == 3 and upstream["passed"] >= 2, upstream
    assert probes["signals"]["outcome"] == "passed"
    assert "signals.unchecked" not in {f["code"] for f in cand["findings"]}
    result.stdout.fnmatch_lines(["lowest risk: attrs*"])


def freeze() -> list[str]:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--all"], capture_output=True, text=True, check=True
    )
    return sorted(done.stdout.splitlines())


def test_zero_file_spike_leaves_the_environment_unchanged(pytester: pytest.Pytester, tmp_path: Path) -> None:
    before = freeze()
    args = [
        "--spike", "--spike-probes", "install,import,signals", "--spike-isolation", "always",
        f"--spike-cache-dir={tmp_path / 'cache'}", "--spike-json=r.json",
        "--spike-candidate", "tomli", "--spike-candidate", "tomlkit",
    ]  # fmt: skip
    # a name the index does not know is refused before anything is built
    refused = pytester.runpytest(*args, "--spike-candidate", "tomli-but-not-on-the-index-xyz")
    assert refused.ret == pytest.ExitCode.USAGE_ERROR
    refused.stderr.fnmatch_lines(["*no project 'tomli-but-not-on-the-index-xyz' on the package index*"])
    result = pytester.runpytest(*args)
    assert freeze() == before
    data = {c["name"]: c for c in json.loads((pytester.path / "r.json").read_text())["candidates"]}
    assert data["tomli"]["level"] != "blocked" and data["tomlkit"]["level"] != "blocked"
    assert data["tomli"]["version"] and data["tomlkit"]["version"]
    result.stdout.fnmatch_lines(["lowest risk: *"])


def test_tomlkit_gains_docs_evidence_from_its_quickstart(pytester: pytest.Pytester, tmp_path: Path) -> None:
    """The quickstart example's tomlkit has no Python example in its README (the readme probe
    is unknown there); its sdist ships docs/quickstart.rst, whose sessions run."""
    pytester.runpytest(
        "--spike",
        "--spike-probes",
        "install,readme,docs",
        "--spike-isolation",
        "always",
        f"--spike-cache-dir={tmp_path / 'cache'}",
        "--spike-json=r.json",
        "--spike-candidate",
        "tomlkit",
    )
    [tomlkit] = json.loads((pytester.path / "r.json").read_text())["candidates"]
    probes = {p["kind"]: p for p in tomlkit["probes"]}
    assert probes["readme"]["outcome"] == "skipped"
    assert probes["docs"]["outcome"] == "passed"
    pages = {p["page"]: p["counts"] for p in probes["docs"]["details"]["pages"]}
    assert pages["quickstart.rst"]["ok"] >= 3
    summary = next(f for f in tomlkit["findings"] if f["code"] == "docs.pages")
    assert summary["message"].startswith("docs: quickstart.rst ")
    assert "docs" not in tomlkit["evidence"]["unknown"]
