"""The signals probe through pytest, against a real index server on 127.0.0.1."""

from __future__ import annotations

import json
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
