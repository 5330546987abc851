"""The built-in probes as plain functions: a real ProbeContext in, a ProbeOutcome out.

No pytester here: each probe is called the way the probe items call it (``kind.function``),
on the session's fixture packages installed in the running environment (``spike_site``) and
a real index on 127.0.0.1. Every finding a probe gives must be one its kind declares.
The end-to-end tests beside this file drive the same probes through pytest.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from indexserver import HERMETIC_ENV, IndexServer

from pytest_spike import kinds
from pytest_spike.model import Blame, Candidate, Severity
from pytest_spike.probes.base import ProbeContext, ProbeOutcome
from pytest_spike.probes.docs import probe_docs
from pytest_spike.probes.importing import probe_import
from pytest_spike.probes.install import probe_install
from pytest_spike.probes.items import failing_findings
from pytest_spike.probes.licence import probe_licence
from pytest_spike.probes.readme import probe_readme
from pytest_spike.probes.signals import probe_signals
from pytest_spike.probes.upstream import probe_upstream
from pytest_spike.services import Services
from pytest_spike.settings import Settings


@pytest.fixture
def index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[IndexServer]:
    for key, value in HERMETIC_ENV.items():
        monkeypatch.setenv(key, value)
    with IndexServer(tmp_path) as server:
        server.add("goodpkg", "1.0", upload_time="2019-03-01", license="MIT")
        server.add("readmepkg", "1.0", upload_time="2026-01-01", license="MIT")
        yield server


@pytest.fixture
def settings(tmp_path: Path, index: IndexServer, spike_site: Path) -> Settings:
    """The running environment only (where ``spike_site`` installed the fixture packages)."""
    return Settings(isolation="never", cache_dir=tmp_path / "cache", index_url=index.url, probe_timeout=60.0)


@pytest.fixture
def services(settings: Settings, tmp_path: Path) -> Iterator[Services]:
    made = Services(settings, rootdir=tmp_path)
    yield made
    made.close()


def probe(kind: str, requirement: str, settings: Settings, services: Services) -> ProbeOutcome:
    ctx = ProbeContext(Candidate(requirement), settings, services, timeout=settings.probe_timeout)
    outcome = kinds.kind(kind).function(ctx)
    declared = set(kinds.kind(kind).all_codes)
    assert {f.code for f in outcome.findings} <= declared, "a finding its kind does not declare"
    return outcome


def codes(outcome: ProbeOutcome) -> dict[str, Severity]:
    return {f.code: f.severity for f in outcome.findings}


def test_each_row_runs_the_function_of_its_module() -> None:
    functions = [
        probe_install,
        probe_import,
        probe_readme,
        probe_docs,
        probe_upstream,
        probe_signals,
        probe_licence,
    ]
    assert [k.function for k in kinds.BUILTIN] == functions


def test_install_finds_the_installed_version(settings: Settings, services: Services) -> None:
    outcome = probe("install", "goodpkg", settings, services)
    assert outcome.version == "1.0" and outcome.skipped is None
    assert outcome.details["installed"] is True
    assert not failing_findings(outcome)


def test_install_of_an_unmet_pin_says_so(settings: Settings, services: Services) -> None:
    outcome = probe("install", "goodpkg==9.9", settings, services)
    assert codes(outcome)["install.version_mismatch"] is Severity.HIGH  # 1.0 is there, 9.9 asked
    assert failing_findings(outcome)


def test_import_passes_and_names_the_modules(settings: Settings, services: Services) -> None:
    outcome = probe("import", "goodpkg", settings, services)
    assert not failing_findings(outcome)
    assert "goodpkg" in outcome.details[kinds.kind("import").module_names or ""]


def test_import_of_a_broken_package_fails_on_the_candidate(settings: Settings, services: Services) -> None:
    outcome = probe("import", "brokenpkg", settings, services)
    failed = [f for f in outcome.findings if f.code == "import.failed"]
    assert failed and failed[0].blame is Blame.CANDIDATE
    assert "libfoo" in failed[0].message
    assert failing_findings(outcome)


def test_readme_runs_the_examples(settings: Settings, services: Services) -> None:
    outcome = probe("readme", "goodpkg", settings, services)
    counts = outcome.details["counts"]
    assert counts["runnable"] == 2 and counts["ok"] == 2
    assert not outcome.findings and outcome.skipped is None


def test_readme_leaves_placeholders_unchecked_and_charges_the_rest(
    settings: Settings, services: Services
) -> None:
    outcome = probe("readme", "readmepkg", settings, services)
    found = codes(outcome)
    assert "readme.failed" in found  # readmepkg.missing_module is the candidate's
    counts = outcome.details["counts"]
    assert counts["runnable"] == 3 and counts["skipped"] == 1  # the console block is not run


def test_signals_reads_the_index(settings: Settings, services: Services) -> None:
    outcome = probe("signals", "goodpkg", settings, services)
    assert codes(outcome).get("signals.stale") is Severity.MEDIUM  # last release in 2019
    assert outcome.details["installed_version"] == "1.0"


def test_signals_without_the_index_is_unknown(settings: Settings, tmp_path: Path, index: IndexServer) -> None:
    index.stop()
    offline = dataclasses.replace(settings, cache_dir=tmp_path / "empty", offline=True)
    with_nothing = Services(offline, rootdir=tmp_path)
    try:
        outcome = probe("signals", "goodpkg", offline, with_nothing)
    finally:
        with_nothing.close()
    assert outcome.skipped and "signals not checked" in outcome.skipped
    assert "signals.unchecked" in codes(outcome)
    assert not kinds.kind("signals").transient.isdisjoint(codes(outcome))  # never kept


def test_upstream_of_a_package_that_is_not_installed_is_unknown(
    settings: Settings, services: Services
) -> None:
    outcome = probe("upstream", "notinstalledpkg", settings, services)
    assert outcome.skipped and "is not installed" in outcome.skipped
    assert not outcome.findings
