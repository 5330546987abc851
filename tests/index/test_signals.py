"""Maintenance and security signals, from a real index on 127.0.0.1 through the real client."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from indexserver import IndexServer
from packaging.tags import Tag
from pkgfactory import FakeProject

from pytest_spike.index.client import IndexClient
from pytest_spike.index.signals import collect_signals, deprecation_phrase, signal_findings
from pytest_spike.model import Finding, Severity
from pytest_spike.scoring import Weights

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
PDF_README = """\
[![PyPI version](https://badge.invalid/pdfish.svg)](https://example.invalid/pdfish)

# **NOTE**: pdfish is going back to its roots. pdfish==3.0.X will be the last version of pdfish.
Development will continue with [`newpdf`](https://example.invalid/newpdf).

# pdfish

A PDF library. Its `merge()` is deprecated in favour of `join()`.
"""


def publish(index: IndexServer) -> None:
    index.add("oldie", "0.9", upload_time="2019-05-01").add("oldie", "1.0", upload_time="2020-11-01")
    index.add("fresh", "0.9", upload_time="2024-01-01", yanked="bad build")
    for version, day in (("1.0", "2025-03-01"), ("1.1", "2025-09-01"), ("1.2", "2025-12-01")):
        index.add("fresh", version, upload_time=day)
    advisories = [
        {"id": "PYSEC-1", "aliases": ["CVE-2025-1"], "fixed_in": ["1.1"]},
        {
            "id": "GHSA-old",
            "aliases": [],
            "fixed_in": ["1.0.1"],
            "withdrawn": "2025-06-01T00:00:00Z",
        },
    ]
    index.add("vuln", "1.0", upload_time="2025-06-01", vulnerabilities=advisories)
    index.add("vuln", "1.1", upload_time="2025-07-01")
    index.add(
        FakeProject("retired", "1.0", classifiers=["Development Status :: 7 - Inactive"]),
        upload_time="2025-01-01",
    )
    index.add("shelved", "1.0", upload_time="2025-01-01")
    index.set_status("shelved", "archived", "moved to shelved2")
    index.add(
        FakeProject("oldname", "2.0", summary="Deprecated: use newname instead"),
        upload_time="2025-01-01",
    )
    index.add(FakeProject("pdfish", "3.0.1", readme=PDF_README), upload_time="2025-01-01")
    index.add("modern", "1.0", upload_time="2025-01-01", requires_python=">=3.11")
    index.add("sdistonly", "1.0", upload_time="2025-01-01", wheel=False)
    index.add("bare", "1.0", upload_time="2025-01-01", license=None, project_urls=None)
    # dev releases after the last final one: not releases for cadence nor for the last release
    index.add("devcycle", "1.0", upload_time="2025-06-01")
    for n, day in ((4, "2025-10-01"), (5, "2025-11-01"), (6, "2025-12-01")):
        index.add("devcycle", f"1.1.dev{n}", upload_time=day)
    # a final release long ago, only pre-releases since
    index.add("prerecent", "1.0", upload_time="2020-01-01")
    index.add("prerecent", "2.0a1", upload_time="2025-09-01").add(
        "prerecent", "2.0b1", upload_time="2025-12-01"
    )
    index.add("onlypre", "0.1.dev1", upload_time="2025-10-01").add(
        "onlypre", "0.1b1", upload_time="2025-11-01"
    )
    index.add("young", "1.0", upload_time="2025-06-01")
    index.add("young", "1.1", upload_time="2025-12-31T06:00:00")


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IndexServer]:
    with IndexServer(tmp_path_factory.mktemp("index")) as server:
        publish(server)
        yield server


@pytest.fixture
def client(index: IndexServer) -> IndexClient:
    index.reset()
    return index.client()


def signals(
    client: IndexClient, name: str, version: str | None = None, **kwargs: Any
) -> tuple[dict[str, Finding], dict[str, Any]]:
    meta = client.project_meta(name, version)
    options: dict[str, Any] = dict(installed_version=version, matrix_pythons=("3.11",), now=NOW)
    options.update(kwargs)
    findings, details = signal_findings(meta, **options)
    json.dumps(details)  # details must survive a results file
    by_code = {f.code: f for f in findings}
    assert len(by_code) == len(findings), "one finding per code"
    return by_code, details


def test_healthy_project_has_only_info_findings(client: IndexClient) -> None:
    found, details = signals(client, "fresh", "1.2")
    assert sorted(found) == ["signals.cadence", "signals.yanked"]
    assert all(f.severity is Severity.INFO for f in found.values())
    assert found["signals.cadence"].message == "3 release(s) in the last 12 months"
    assert found["signals.yanked"].message == "1 yanked release(s): 0.9"
    assert details["last_release"]["value"] == {
        "version": "1.2",
        "date": "2025-12-01",
        "age_days": 31,
    }
    assert details["last_release"]["source"].endswith("/simple/fresh/")


def test_stale_project(client: IndexClient) -> None:
    found, details = signals(client, "oldie", "1.0")
    stale = found["signals.stale"]
    assert stale.severity is Severity.MEDIUM
    assert stale.message == "last release 1.0 was 5.2 years ago (2020-11-01); stale after 2.0 years"
    assert stale.evidence["date"] == "2020-11-01"
    assert "signals.stale" not in signals(client, "oldie", "1.0", stale_after_days=3650)[0]
    assert details["cadence"]["value"] == 0


def test_installed_version_yanked(client: IndexClient) -> None:
    found, _ = signals(client, "fresh", "0.9")
    assert found["signals.yanked"].severity is Severity.HIGH
    assert found["signals.yanked"].message == "the version under test, 0.9, is yanked: bad build"
    # its wheel is yanked with it: that is the yanked finding, not also "no wheels"
    assert "signals.no_wheels" not in found


def test_vulnerabilities_of_the_installed_version(client: IndexClient) -> None:
    found, details = signals(client, "vuln", "1.0")
    vulnerable = found["signals.vulnerable"]
    assert vulnerable.severity is Severity.HIGH
    assert (
        vulnerable.message == "1 known vulnerability in vuln 1.0: PYSEC-1; fixed in 1.1"
    )  # withdrawn one ignored
    assert vulnerable.evidence["aliases"] == "CVE-2025-1"
    assert details["vulnerabilities"]["withdrawn"] == 1
    assert details["vulnerabilities"]["source"].endswith("/pypi/vuln/1.0/json")
    clean, _ = signals(client, "vuln", "1.1.0")  # same release as the index's "1.1"
    assert "signals.vulnerable" not in clean and "signals.vulnerabilities_unknown" not in clean


def test_vulnerabilities_unknown_without_per_release_metadata(tmp_path: Path) -> None:
    with IndexServer(tmp_path, release_json=False) as index:
        index.add("vuln", "1.0", vulnerabilities=[{"id": "PYSEC-1"}]).add("vuln", "1.1")
        client = index.client()
        found, details = signals(client, "vuln", "1.0")
    assert "signals.vulnerable" not in found
    assert found["signals.vulnerabilities_unknown"].severity is Severity.INFO
    assert details["vulnerabilities"]["value"] is None


@pytest.mark.parametrize(
    "name, code, message",
    [
        (
            "retired",
            "signals.inactive",
            "retired declares itself inactive (Development Status :: 7 - Inactive)",
        ),
        (
            "shelved",
            "signals.inactive",
            "the package index marks shelved as archived: moved to shelved2",
        ),
        (
            "oldname",
            "signals.deprecated",
            'the summary declares oldname deprecated: "Deprecated: use newname instead"',
        ),
        ("pdfish", "signals.deprecated", "the README declares pdfish deprecated: "),
    ],
)
def test_inactive_and_deprecated(client: IndexClient, name: str, code: str, message: str) -> None:
    found, _ = signals(client, name)
    assert found[code].severity is Severity.HIGH
    assert found[code].message.startswith(message)


def test_readme_excerpt_is_the_declaring_sentence(client: IndexClient) -> None:
    found, details = signals(client, "pdfish")
    excerpt = found["signals.deprecated"].evidence["excerpt"]
    assert (
        excerpt
        == "**NOTE**: pdfish is going back to its roots. pdfish==3.0.X will be the last version of pdfish."
    )
    assert details["deprecated"]["field"] == "README"


def test_python_gap(client: IndexClient) -> None:
    found, details = signals(client, "modern", matrix_pythons=["3.9", "3.11", "3.13"])
    gap = found["signals.python_gap"]
    assert gap.message == "1.0 requires Python >=3.11, which excludes 3.9 from the matrix"
    assert (details["requires_python"]["value"], details["requires_python"]["excludes"]) == (
        ">=3.11",
        ["3.9"],
    )
    assert "signals.python_gap" not in signals(client, "modern", matrix_pythons=["3.11", "3.13"])[0]


def test_wheel_coverage(client: IndexClient) -> None:
    assert signals(client, "sdistonly")[0]["signals.no_wheels"].severity is Severity.LOW
    elsewhere = [Tag("cp311", "cp311", "win_amd64")]  # pkgfactory wheels are py3-none-any
    found, details = signals(client, "fresh", tags=elsewhere)
    assert found["signals.no_platform_wheel"].severity is Severity.LOW
    assert details["wheels"]["value"] == {
        "kinds": ["sdist", "wheel"],
        "wheel_for_this_platform": False,
    }
    assert "signals.no_platform_wheel" not in signals(client, "fresh", tags=[Tag("py3", "none", "any")])[0]


def test_missing_license_and_urls(client: IndexClient) -> None:
    found, _ = signals(client, "bare")
    assert found["signals.no_license"].severity is Severity.LOW
    assert found["signals.no_urls"].message == "bare lists no project URLs (no home, source or tracker)"


def test_unreachable_index_is_one_info_finding(client: IndexClient, index: IndexServer) -> None:
    index.misbehave("500")
    findings, details = collect_signals(client, "fresh", installed_version="1.2")
    assert [(f.code, f.severity) for f in findings] == [("signals.unchecked", Severity.INFO)]
    assert findings[0].message.startswith("index not reachable: HTTP 500")
    assert findings[0].message.endswith("; signals not checked")
    assert "unchecked" in details


def test_unknown_project_is_not_a_crash(client: IndexClient) -> None:
    findings, _ = collect_signals(client, "no-such-thing", installed_version=None)
    assert [f.code for f in findings] == ["signals.not_on_index"]


def test_plain_html_index_still_gives_signals(tmp_path: Path) -> None:
    with IndexServer(tmp_path, json_api=False, simple_json=False) as index:
        index.add("fresh", "0.9", yanked="bad").add("fresh", "1.0", wheel=False)
        client = index.client()
        found, details = signals(client, "fresh", "1.0")
    assert set(found) == {"signals.yanked", "signals.vulnerabilities_unknown", "signals.no_wheels"}
    assert details["last_release"]["value"] is None and details["license"]["value"] is None


def test_dev_releases_are_not_releases(client: IndexClient) -> None:
    found, details = signals(client, "devcycle", "1.0")
    assert found["signals.cadence"].message == (
        "1 release(s) in the last 12 months (not counted: 3 pre-, dev or yanked release(s))"
    )
    assert details["cadence"]["versions"] == ["1.0"]
    assert details["cadence"]["not_counted"] == {
        "1.1.dev4": "dev release",
        "1.1.dev5": "dev release",
        "1.1.dev6": "dev release",
    }
    assert details["last_release"]["value"]["version"] == "1.0"
    noted = found["signals.recent_prereleases"]
    assert noted.severity is Severity.INFO
    assert noted.message.startswith(
        "3 pre-release(s) since the last release 1.0 (2025-06-01), newest 1.1.dev6"
    )


def test_recent_prereleases_do_not_hide_an_old_final_release(client: IndexClient) -> None:
    found, details = signals(client, "prerecent")
    stale = found["signals.stale"]
    assert stale.message == "last release 1.0 was 6.0 years ago (2020-01-01); stale after 2.0 years"
    assert found["signals.recent_prereleases"].evidence["versions"] == "2.0a1, 2.0b1"
    assert details["cadence"]["value"] == 0
    assert details["prereleases_since_last_release"]["value"][-1] == {
        "version": "2.0b1",
        "date": "2025-12-01",
    }


def test_only_prereleases_judged_on_the_newest(client: IndexClient) -> None:
    found, details = signals(client, "onlypre")
    assert "signals.stale" not in found
    assert details["last_release"]["final"] is False
    assert details["last_release"]["value"]["version"] == "0.1b1"
    assert found["signals.cadence"].message.startswith("0 release(s) in the last 12 months")
    old, _ = signals(client, "onlypre", now=datetime(2029, 1, 1, tzinfo=timezone.utc))
    assert old["signals.stale"].message.startswith(
        "last release (a pre-release, no final release exists) 0.1b1 was 3.2 years ago"
    )


def test_young_release_is_info_and_scores_nothing(client: IndexClient) -> None:
    found, details = signals(client, "young", "1.1")
    young = found["signals.young_release"]
    assert young.severity is Severity.INFO and Weights().points(young) == 0
    assert young.message.startswith("1.1 was released 18 hour(s) ago (2025-12-31), under 3 days")
    assert (details["young_release"]["value"], details["young_release"]["age_hours"]) == (True, 18.0)
    assert details["young_release"]["source"].endswith("/simple/young/")
    assert [f.severity for f in found.values() if f.severity is not Severity.INFO] == []
    assert "signals.young_release" not in signals(client, "young", "1.0")[0]


def test_every_threshold_is_in_the_details(client: IndexClient) -> None:
    _, details = signals(client, "fresh", "1.2", stale_after_days=400)
    assert details["thresholds"] == {
        "stale_after_days": 400,
        "young_release_days": 3,
        "cadence_window_days": 365,
        "readme_head_chars": 3000,
    }


@pytest.mark.parametrize(
    "text, declares",
    [
        ("This project is no longer maintained. Use bar.", True),
        ("The foo package has been deprecated, see bar.", True),
        ("DEPRECATED - moved to bar", True),
        ("Unmaintained fork of bar", True),
        ("This library is superseded by bar.", True),
        (
            "A fast TOML parser. The `load()` keyword `strict` is deprecated in favour of `mode`.",
            False,
        ),
        ("Python 2 is no longer supported.", False),
        (
            "There is a very old fork in the python2.2 branch. This is based on a very old "
            "version, is not maintained, and should only be used as a last resort.",
            False,
        ),
        ("Actively maintained; deprecated APIs are listed in the changelog.", False),
        ("", False),
    ],
)
def test_deprecation_phrase(text: str, declares: bool) -> None:
    assert (deprecation_phrase(text) is not None) == declares


@pytest.mark.network
def test_real_index_says_toml_is_stale(tmp_path: Path) -> None:
    client = IndexClient(cache_dir=tmp_path, timeout=20, env=dict(os.environ))
    findings, details = collect_signals(client, "toml", installed_version="0.10.2")
    stale = [f for f in findings if f.code == "signals.stale"]
    assert stale and "2020-11-01" in stale[0].message, [f.message for f in findings]
    assert details["last_release"]["value"]["version"] == "0.10.2"
