"""The signals probe through pytest, against a real index server on 127.0.0.1."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from indexserver import HERMETIC_ENV, IndexServer


@pytest.fixture
def index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spike_site: Path):
    for key, value in HERMETIC_ENV.items():
        monkeypatch.setenv(key, value)
    with IndexServer(tmp_path) as server:
        server.add(
            "goodpkg",
            "1.0",
            upload_time="2019-03-01",
            license="MIT",
            project_urls={"Source": "https://example.invalid/goodpkg"},
        )
        server.add(
            "warnpkg",
            "1.0",
            upload_time="2026-06-01",
            license="MIT",
            project_urls={"Source": "https://example.invalid/warnpkg"},
            vulnerabilities=[{"id": "PYSEC-2026-1", "fixed_in": ["1.1"]}],
        )
        server.add("warnpkg", "1.1", upload_time="2026-09-01", license="MIT")
        yield server


def run_signals(pytester: pytest.Pytester, index: IndexServer, *extra: str) -> tuple[pytest.RunResult, dict]:
    result = pytester.runpytest(
        "--spike",
        "--spike-probes",
        "signals",
        "--spike-index-url",
        index.url,
        f"--spike-cache-dir={pytester.path / 'cache'}",
        "--spike-json",
        "r.json",
        "--spike-candidate",
        "goodpkg",
        "--spike-candidate",
        "warnpkg",
        *extra,
    )
    data = {c["name"]: c for c in json.loads((pytester.path / "r.json").read_text())["candidates"]}
    return result, data


def test_signals_findings_and_cache(pytester: pytest.Pytester, index: IndexServer) -> None:
    result, data = run_signals(pytester, index)
    good = {f["code"]: f for f in data["goodpkg"]["findings"]}
    assert good["signals.stale"]["severity"] == "medium"
    assert "2019-03-01" in json.dumps(good["signals.stale"])
    vulnerable = {f["code"]: f for f in data["warnpkg"]["findings"]}["signals.vulnerable"]
    assert vulnerable["severity"] == "high" and "PYSEC-2026-1" in vulnerable["message"]
    result.assert_outcomes(passed=1, failed=1)  # a known vulnerability fails the probe item
    asked = index.hits()
    assert asked > 0
    again, _ = run_signals(pytester, index)
    assert index.hits() == asked, "the second run inside the freshness window asked the index"
    again.assert_outcomes(passed=1, failed=1)


def test_unreachable_index_is_unknown_never_passed(pytester: pytest.Pytester, index: IndexServer) -> None:
    result, data = run_signals(pytester, index, "--spike-offline")
    for cand in data.values():
        unchecked = [f for f in cand["findings"] if f["code"] == "signals.unchecked"]
        assert unchecked and unchecked[0]["severity"] == "info"
        assert unchecked[0]["blame"] == "environment" and unchecked[0]["points"] == 0
        assert "signals not checked" in unchecked[0]["message"]
        assert cand["evidence"]["unknown"] == ["signals"]
        assert "signals not checked" in cand["evidence"]["why"]["signals"]
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["*LOW risk on evidence 0/1, unknown: signals: signals not checked*"])
    assert index.hits() == 0


def test_young_release_is_shown_never_scored(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spike_site: Path
) -> None:
    for key, value in HERMETIC_ENV.items():
        monkeypatch.setenv(key, value)
    yesterday = datetime.now(timezone.utc) - timedelta(days=1)
    with IndexServer(tmp_path) as server:
        server.add("goodpkg", "0.9", upload_time="2025-01-01", license="MIT")
        server.add(
            "goodpkg",
            "1.0",
            upload_time=yesterday,
            license="MIT",
            project_urls={"Source": "https://example.invalid/goodpkg"},
        )
        result = pytester.runpytest(
            "--spike",
            "--spike-probes=signals",
            f"--spike-index-url={server.url}",
            f"--spike-cache-dir={pytester.path / 'cache'}",
            "--spike-json=r.json",
            "--spike-candidate=goodpkg",
        )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["goodpkg*LOW*0*", "*+0 info signals.young_release: 1.0 was released 1 day(s) ago*"]
    )
    [cand] = json.loads((pytester.path / "r.json").read_text())["candidates"]
    assert cand["score"] == 0 and cand["level"] == "low"
    probe = next(p for p in cand["probes"] if p["kind"] == "signals")
    assert probe["details"]["thresholds"]["young_release_days"] == 3
    assert probe["details"]["thresholds"]["stale_after_days"] == 730


def test_a_newest_release_needing_a_newer_python_is_said_with_the_release_probed(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On Python 3.11 the resolver quietly takes an older release when the newest needs 3.12
    (issue 24): the card says which release was probed, and why."""
    for key, value in HERMETIC_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    with IndexServer(tmp_path / "index") as server:
        server.add("newpy", "1.0", upload_time="2026-06-01", requires_python=">=3.8", license="MIT")
        server.add("newpy", "2.0", upload_time="2026-09-01", requires_python=">=3.99", license="MIT")
        monkeypatch.setenv("PIP_INDEX_URL", server.url)
        result = pytester.runpytest(
            "--spike",
            "--spike-probes",
            "install,signals",
            "--spike-isolation=always",
            "--spike-index-url",
            server.url,
            f"--spike-cache-dir={pytester.path / 'cache'}",
            "--spike-json=r.json",
            "--spike-md=r.md",
            "--spike-candidate",
            "newpy",
        )
    python = "{}.{}".format(*sys.version_info[:2])
    line = (
        "probed 1.0: the newest release, 2.0, requires Python >=3.99 (this spike runs Python " + python + ")"
    )
    result.stdout.fnmatch_lines(["*newpy*1.0*LOW*", "  probed 1.0: the newest release, 2.0, requires*"])
    [cand] = json.loads((pytester.path / "r.json").read_text())["candidates"]
    found = {f["code"]: f for f in cand["findings"]}["signals.newest_needs_python"]
    assert (found["severity"], found["points"]) == ("info", 0)
    assert found["message"] == (
        f"the newest release, 2.0, requires Python >=3.99; on Python {python} the spike probed 1.0 instead"
    )
    assert line in (pytester.path / "r.md").read_text()
