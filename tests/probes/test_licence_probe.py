"""The licence probe: real wheels with licence metadata, installed by pip, read by the host.

``licapp`` (MIT, License-Expression) needs ``licmid`` (Apache, a classifier only), which
needs ``gpldep`` (GPL-3.0-only) and ``nolicdep`` (no licence information at all);
``bsdfile`` says its licence only through a License-File.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from email.message import Message
from pathlib import Path

import pytest
from backends import use_local_index
from pkgfactory import FakeProject, build_wheel, pip_install_target

from pytest_spike import kinds
from pytest_spike.model import Candidate, Severity
from pytest_spike.probes.base import ProbeContext, ProbeOutcome
from pytest_spike.probes.licence import Policy, licence_of, probe_licence
from pytest_spike.services import Services
from pytest_spike.settings import Settings

BSD3 = """Copyright (c) 2024, Someone
Redistribution and use in source and binary forms, with or without modification, are
permitted provided that the following conditions are met: ...
3. Neither the name of the copyright holder nor the names of its contributors may be used
"""

PROJECTS = [
    FakeProject("licapp", "1.0", requires=["licmid"], license_expression="mit"),
    FakeProject(
        "licmid",
        "2.0",
        requires=["gpldep", "nolicdep"],
        classifiers=["License :: OSI Approved :: Apache Software License"],
    ),
    FakeProject("gpldep", "3.0", license_expression="GPL-3.0-only"),
    FakeProject("nolicdep", "0.1"),
    FakeProject("bsdfile", "1.0", license_files={"LICENSE.txt": BSD3}),
]


@pytest.fixture(scope="module")
def licence_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("licence-site")
    wheels = [build_wheel(p, root / "wheels") for p in PROJECTS]
    pip_install_target(wheels, root / "site")
    return root / "site"


@pytest.fixture
def site(licence_site: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(licence_site))
    monkeypatch.setenv("PYTHONPATH", str(licence_site))
    return licence_site


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    made = Services(Settings(cache_dir=tmp_path / "cache"), rootdir=tmp_path)
    yield made
    made.close()


def run(requirement: str, services: Services, *rules: tuple[str, tuple[str, ...]]) -> ProbeOutcome:
    settings = Settings(isolation="never", cache_dir=services.settings.cache_dir, licenses=rules)
    outcome = probe_licence(ProbeContext(Candidate(requirement), settings, services, timeout=60.0))
    assert {f.code for f in outcome.findings} <= set(kinds.kind("licence").all_codes)
    return outcome


def meta(**fields: str | list[str]) -> Message:
    message = Message()
    for name, value in fields.items():
        for one in value if isinstance(value, list) else [value]:
            message[name.replace("_", "-")] = one
    return message


def test_each_metadata_source_is_read_in_order_and_normalised() -> None:
    assert licence_of(meta(License_Expression="mit or apache-2.0", License="GPL")).spdx == "MIT OR Apache-2.0"
    assert licence_of(meta(License="Apache 2.0")).spdx == "Apache-2.0"
    assert licence_of(meta(License="BSD-3-Clause")).spdx == "BSD-3-Clause"
    classified = licence_of(meta(Classifier=["License :: OSI Approved :: MIT License", "Topic :: Utilities"]))
    assert (classified.spdx, classified.source) == ("MIT", "classifier")
    dual = licence_of(
        meta(
            Classifier=[
                "License :: OSI Approved :: MIT License",
                "License :: OSI Approved :: Apache Software License",
            ]
        )
    )
    assert dual.spdx == "Apache-2.0 OR MIT"
    from_file = licence_of(meta(License_File="COPYING"), {"COPYING": BSD3}.get)
    assert (from_file.spdx, from_file.source) == ("BSD-3-Clause", "License-File COPYING")
    family = meta(Classifier="License :: OSI Approved :: BSD License", License_File="LICENSE.txt")
    assert licence_of(family, {"LICENSE.txt": BSD3}.get).spdx == "BSD-3-Clause"  # the text says which
    assert licence_of(family).spdx == "LicenseRef-BSD"  # no text: the family only
    assert licence_of(meta(License="UNKNOWN")).spdx is None
    assert licence_of(meta(License="see the website")).spdx is None


def test_the_policy_reads_expressions_and_wildcards() -> None:
    deny_gpl = Policy(deny=("GPL-*",))
    assert deny_gpl.judge("GPL-3.0-only")[0] == 0
    assert deny_gpl.judge("LGPL-3.0-only")[0] == 1  # GPL-* is not LGPL
    assert deny_gpl.judge("MIT OR GPL-3.0-only")[0] == 1  # we may take MIT
    assert deny_gpl.judge("MIT AND GPL-2.0-or-later")[0] == 0
    assert deny_gpl.judge("(MIT OR GPL-2.0-only) AND Apache-2.0")[0] == 1
    allow = Policy(allow=("MIT", "BSD-*", "Apache-2.0"))
    assert allow.judge("BSD-3-Clause")[0] == 2
    assert allow.judge("MPL-2.0") == (0, "MPL-2.0 is not in the allow list")
    classpath = Policy(allow=("GPL-2.0-only WITH Classpath-exception-2.0",), deny=("GPL-*",))
    assert classpath.judge("GPL-2.0-only WITH Classpath-exception-2.0")[0] == 0  # deny wins


def test_a_denied_licence_is_named_with_the_path_that_brings_it(site: Path, services: Services) -> None:
    outcome = run("licapp", services, ("deny", ("GPL-*", "AGPL-*")))
    found = {f.code: f for f in outcome.findings}
    denied = found["licence.denied"]
    assert denied.severity is Severity.HIGH
    assert denied.evidence["path"] == "licapp -> licmid -> gpldep"
    assert "gpldep 3.0 is GPL-3.0-only (deny: GPL-*)" in denied.message
    assert found["licence.unknown"].severity is Severity.LOW
    assert "nolicdep" in found["licence.unknown"].message
    licences = outcome.details["licences"]
    assert licences["licapp"] == {"version": "1.0", "licence": "MIT", "source": "License-Expression"}
    assert licences["licmid"]["licence"] == "Apache-2.0" and licences["licmid"]["source"] == "classifier"
    assert outcome.version == "1.0" and outcome.skipped is None


def test_without_a_policy_nothing_scores_above_info(site: Path, services: Services) -> None:
    outcome = run("licapp", services)
    assert {f.severity for f in outcome.findings} == {Severity.INFO}
    summary = next(f for f in outcome.findings if f.code == "licence.summary")
    assert summary.message == (
        "licences of 4 distributions: MIT (1), Apache-2.0 (1), GPL-3.0-only (1), unknown (1)"
    )


def test_an_allow_list_denies_what_it_does_not_name(site: Path, services: Services) -> None:
    outcome = run("licapp", services, ("allow", ("MIT", "Apache-*")))
    denied = [f for f in outcome.findings if f.code == "licence.denied"]
    assert [f.evidence["distribution"] for f in denied] == ["gpldep"]
    assert denied[0].evidence["rule"] == "GPL-3.0-only is not in the allow list"


def test_a_licence_file_alone_is_enough(site: Path, services: Services) -> None:
    outcome = run("bsdfile", services, ("deny", ("GPL-*",)))
    assert outcome.details["licences"]["bsdfile"]["licence"] == "BSD-3-Clause"
    assert [f.message for f in outcome.findings] == ["licences of 1 distribution: BSD-3-Clause (1)"]


def test_not_installed_is_unknown(site: Path, services: Services) -> None:
    outcome = run("notinstalledpkg", services)
    assert outcome.skipped and "is not installed" in outcome.skipped and not outcome.findings


def test_the_ini_policy_fails_the_item_end_to_end(pytester: pytest.Pytester, site: Path) -> None:
    pytester.makeini(
        """
        [pytest]
        spike_licenses =
            allow: MIT, Apache-2.0, BSD-*
            deny: GPL-*
        """
    )
    result = pytester.runpytest(
        "--spike",
        "--spike-probes",
        "licence",
        "--spike-isolation",
        "never",
        f"--spike-cache-dir={pytester.path / 'cache'}",
        "--spike-json=r.json",
        "--spike-candidate",
        "licapp",
    )
    result.stdout.fnmatch_lines(
        [
            "[[]high[]] licence.denied: licapp -> licmid -> gpldep: gpldep 3.0 is GPL-3.0-only (deny: GPL-[*])",
            "*+3 low licence.unknown: no licence information for nolicdep",
            "FAILED spike::licapp::licence*",
        ]
    )
    (candidate,) = json.loads((pytester.path / "r.json").read_text())["candidates"]
    codes = {f["code"]: f["severity"] for f in candidate["findings"]}
    assert codes["licence.denied"] == "high" and codes["licence.unknown"] == "low"


def test_the_closure_as_it_installs_in_its_own_environment(
    pytester: pytest.Pytester, licence_site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Isolated: the candidate's environment is built from the local index and the host
    reads that environment's dist-info files."""
    use_local_index(monkeypatch, licence_site.parent / "wheels", pytester.path / "empty-site")
    pytester.makeini("[pytest]\nspike_licenses =\n    deny: GPL-*\n")
    pytester.runpytest(
        "--spike",
        "--spike-probes",
        "install,licence",
        "--spike-isolation",
        "always",
        f"--spike-cache-dir={pytester.path / 'cache'}",
        "--spike-json=r.json",
        "--spike-candidate",
        "licapp",
    )
    (candidate,) = json.loads((pytester.path / "r.json").read_text())["candidates"]
    licence = next(p for p in candidate["probes"] if p["kind"] == "licence")
    install = next(p for p in candidate["probes"] if p["kind"] == "install")
    assert str(install["details"]["env"]).startswith(str(pytester.path / "cache"))  # its own environment
    assert set(licence["details"]["licences"]) == {"licapp", "licmid", "gpldep", "nolicdep"}
    denied = [f for f in candidate["findings"] if f["code"] == "licence.denied"]
    assert [f["evidence"]["path"] for f in denied] == ["licapp -> licmid -> gpldep"]


def test_a_bad_rule_names_the_ini_key(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nspike_licenses =\n    permit: MIT\n")
    result = pytester.runpytest("--spike")
    assert result.ret != 0
    result.stderr.fnmatch_lines(
        ["*spike_licenses in *: 'permit: MIT' is not 'allow: ID, ...' or 'deny: ID, ...'*"]
    )


def test_a_licence_file_named_outside_its_dist_info_is_not_read(
    tmp_path: Path, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``License-File: ../../outside/LICENSE`` (or ``/dev/zero``) names no file of the
    distribution: the host reads neither, so a BSD text planted outside is not its licence."""
    outside = tmp_path / "outside" / "LICENSE"
    outside.parent.mkdir()
    outside.write_text(BSD3)
    site = tmp_path / "site"
    pip_install_target([build_wheel(FakeProject("travlic", "1.0"), tmp_path / "wheels")], site)
    metadata = site / "travlic-1.0.dist-info" / "METADATA"
    escape = "../" * len(metadata.parent.relative_to(tmp_path).parts)
    names = [f"{escape}outside/LICENSE", "/dev/zero"]
    metadata.write_text(metadata.read_text() + "".join(f"License-File: {n}\n" for n in names))
    monkeypatch.syspath_prepend(str(site))
    outcome = run("travlic", services)
    assert outcome.details["licences"]["travlic"]["licence"] is None
