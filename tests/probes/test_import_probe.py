"""Which modules the import probe imports, and whose warnings it charges: real wheels, real pip, pytest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pkgfactory import FakeProject, build_wheel, pip_install_target

_SHIM_WARNS = "import warnings\nwarnings.warn('_shim moved to realpkg._shim', DeprecationWarning)\n"
_DEP_WARNS = "import warnings\nwarnings.warn('noisydep.old is going away', DeprecationWarning)\n"

PROJECTS = [
    # A PEP 420 namespace: no nsroot/__init__.py in the wheel.
    FakeProject("nsdist", "1.0", files={"nsroot/realmod/__init__.py": "VALUE = 1\n"}),
    # A pkgutil-style namespace: an __init__ that only extends its path.
    FakeProject(
        "pkgutildist",
        "1.0",
        files={
            "pkgns/__init__.py": "__path__ = __import__('pkgutil').extend_path(__path__, __name__)\n",
            "pkgns/sub/__init__.py": "VALUE = 2\n",
        },
    ),
    # PyYAML's layout: a deprecated private shim next to the real package (top_level.txt lists both).
    FakeProject(
        "shimdist",
        "1.0",
        requires=["noisydep"],
        files={"_shim.py": _SHIM_WARNS, "realpkg/__init__.py": "import noisydep\nVALUE = 3\n"},
    ),
    # A dependency whose own import warns about itself: its warning, not the candidate's.
    FakeProject("noisydep", "1.0", files={"noisydep/__init__.py": _DEP_WARNS}),
    # A private submodule of a public package is the candidate's own code.
    FakeProject(
        "internaldist",
        "1.0",
        files={
            "internalpkg/__init__.py": "from internalpkg import _impl\n",
            "internalpkg/_impl.py": "import warnings\nwarnings.warn('internalpkg.old is deprecated', DeprecationWarning)\n",
        },
    ),
    FakeProject("privdist", "1.0", files={"_private.py": "VALUE = 4\n"}),
    # Data only: nothing to import.
    FakeProject("emptydist", "1.0", files={"emptydist_data/notes.txt": "just text\n"}),
    # An editable install the way some backends make it: a .pth file, no module in the file list.
    FakeProject("guessdist", "1.0", files={"guessdist.pth": "/nonexistent/src\n"}),
    # A namespace holding many plain modules: imported up to a limit, the rest counted.
    FakeProject("manydist", "1.0", files={f"manyns/m{i:02}.py": "" for i in range(25)}),
    # Tests shipped at the top level are not the API.
    FakeProject(
        "withtests",
        "1.0",
        files={"withtests/__init__.py": "", "tests/__init__.py": "import pytest_not_installed_here\n"},
    ),
    # duckdb's layout: a second top-level package that needs an optional extra not installed.
    FakeProject(
        "optdist",
        "1.0",
        files={
            "optmain/__init__.py": "VALUE = 1\n",
            "optdriver/__init__.py": "import optional_extra_not_here\n",
        },
    ),
    # The only module needs an undeclared package: the candidate's own fault.
    FakeProject("needsdist", "1.0", files={"needsmod/__init__.py": "import undeclared_dep_not_here\n"}),
    # python-multipart's layout: a deprecated alias module beside the real one it re-exports.
    FakeProject(
        "aliasdist",
        "1.0",
        files={
            "aliasmod/__init__.py": "import warnings\n"
            "warnings.warn('Please use `import aliasreal` instead.', PendingDeprecationWarning, stacklevel=2)\n"
            "from aliasreal import *\n",
            "aliasreal/__init__.py": "VALUE = 1\n",
        },
    ),
    # A module pointing to another project's module: the warning is about the candidate itself.
    FakeProject(
        "renameddist",
        "1.0",
        files={
            "renamedmod/__init__.py": "import warnings\n"
            "warnings.warn('Please use `import othernewmod` instead.', DeprecationWarning, stacklevel=2)\n"
        },
    ),
    # mypyc's runtime ships as a top-level "<hash>__mypyc" module next to the package (tomli).
    FakeProject(
        "compileddist",
        "1.0",
        files={
            "compiledpkg/__init__.py": "",
            "c787785866c7b801238d__mypyc.py": "raise ImportError('internal')\n",
        },
    ),
]


@pytest.fixture(scope="module")
def import_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("import-site")
    wheels = [build_wheel(p, root / "wheels") for p in PROJECTS]
    pip_install_target(wheels, root / "site")
    return root / "site"


@pytest.fixture
def site(import_site: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PYTHONPATH", str(import_site))
    monkeypatch.syspath_prepend(str(import_site))
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    return import_site


def spike(pytester: pytest.Pytester, name: str) -> tuple[pytest.RunResult, dict[str, Any]]:
    result = pytester.runpytest(
        "--spike",
        "--spike-candidate",
        name,
        "--spike-probes=install,import",
        "--spike-isolation=never",
        "--spike-json=r.json",
        "-rs",
    )
    data = json.loads((pytester.path / "r.json").read_text())
    cand = next(c for c in data["candidates"] if c["name"] == name)
    return result, cand


def import_probe(cand: dict[str, Any]) -> dict[str, Any]:
    return next(p for p in cand["probes"] if p["kind"] == "import")


def codes(cand: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["code"]: f for f in cand["findings"] if f["code"].startswith("import.")}


def test_namespace_package_imports_its_real_subpackage(pytester: pytest.Pytester, site: Path) -> None:
    result, cand = spike(pytester, "nsdist")
    result.assert_outcomes(passed=2)
    assert import_probe(cand)["details"]["modules"] == ["nsroot.realmod"]
    assert codes(cand)["import.modules"]["message"].startswith("imported nsroot.realmod (")


def test_pkgutil_namespace_resolves_too(pytester: pytest.Pytester, site: Path) -> None:
    _, cand = spike(pytester, "pkgutildist")
    assert import_probe(cand)["details"]["modules"] == ["pkgns.sub"]


def test_private_shim_and_dependency_warnings_are_not_charged(pytester: pytest.Pytester, site: Path) -> None:
    result, cand = spike(pytester, "shimdist")
    result.assert_outcomes(passed=2)
    details = import_probe(cand)["details"]
    assert details["modules"] == ["realpkg"]
    assert details["left_out"] == {"_shim": "private (a public module exists)"}
    found = codes(cand)
    assert "import.deprecation" not in found and "import.warning" not in found
    assert cand["score"] == 0
    assert found["import.modules"]["message"].endswith("; left out _shim")
    foreign = found["import.foreign_warning"]
    assert foreign["severity"] == "info" and "noisydep/__init__.py" in foreign["message"]
    [row] = details["warnings_not_charged"]
    assert row["message"] == "noisydep.old is going away" and row["owner"] == "other"


def test_the_candidates_own_warning_still_counts(pytester: pytest.Pytester, site: Path) -> None:
    # The same dependency imported as the candidate is the candidate's warning.
    _, cand = spike(pytester, "noisydep")
    assert codes(cand)["import.deprecation"]["message"].endswith("noisydep.old is going away")


def test_a_private_submodules_warning_counts(pytester: pytest.Pytester, site: Path) -> None:
    _, cand = spike(pytester, "internaldist")
    deprecation = codes(cand)["import.deprecation"]
    assert (
        deprecation["message"]
        == "import internalpkg raises DeprecationWarning: internalpkg.old is deprecated"
    )
    assert deprecation["evidence"]["where"].split(":")[0].endswith("internalpkg/_impl.py")


def test_only_private_modules_are_imported(pytester: pytest.Pytester, site: Path) -> None:
    result, cand = spike(pytester, "privdist")
    result.assert_outcomes(passed=2)
    assert import_probe(cand)["details"]["modules"] == ["_private"]
    assert codes(cand)["import.modules"]["message"].endswith("the distribution has only private modules")


def test_nothing_importable_is_skipped_not_passed(pytester: pytest.Pytester, site: Path) -> None:
    result, cand = spike(pytester, "emptydist")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED*spike::emptydist::import*nothing importable found*"])
    probe = import_probe(cand)
    assert probe["outcome"] == "skipped" and probe["details"]["unknown"].startswith(
        "nothing importable found"
    )
    assert not codes(cand)


def test_a_module_guessed_from_the_name_that_is_missing_is_no_evidence(
    pytester: pytest.Pytester, site: Path
) -> None:
    result, cand = spike(pytester, "guessdist")
    result.assert_outcomes(passed=1, skipped=1)
    details = import_probe(cand)["details"]
    assert details["found_by"] == "guessed"
    assert (
        details["unknown"]
        == "nothing importable found: guessdist lists no module, and none is named guessdist"
    )
    assert "import.failed" not in codes(cand)


def test_many_modules_are_capped_and_counted(pytester: pytest.Pytester, site: Path) -> None:
    _, cand = spike(pytester, "manydist")
    details = import_probe(cand)["details"]
    assert details["modules"] == [f"manyns.m{i:02}" for i in range(20)]
    assert details["left_out"] == {"5 more modules": "over the limit of 20 modules"}
    message = codes(cand)["import.modules"]["message"]
    assert message.startswith(
        "imported 20 modules (manyns.m00, manyns.m01, manyns.m02, manyns.m03 and 16 more) in "
    )
    assert message.endswith("; left out 5 more modules")


def test_top_level_tests_package_is_not_imported(pytester: pytest.Pytester, site: Path) -> None:
    result, cand = spike(pytester, "withtests")
    result.assert_outcomes(passed=2)
    assert import_probe(cand)["details"]["modules"] == ["withtests"]
    assert "import.failed" not in codes(cand)


@pytest.mark.network
def test_a_secondary_module_needing_an_optional_package_is_unchecked(
    pytester: pytest.Pytester, site: Path
) -> None:
    result, cand = spike(pytester, "optdist")
    (finding,) = [f for f in cand["findings"] if f["code"] == "import.optional"]
    assert finding["blame"] == "environment" and finding["points"] == 0
    assert "optional_extra_not_here" in finding["message"] and "optmain imported clean" in finding["message"]
    assert cand["level"] == "low"
    _, needs = spike(pytester, "needsdist")
    assert "import.failed" in codes(needs) and needs["level"] == "blocked"


def test_mypyc_runtime_module_is_not_api(pytester: pytest.Pytester, site: Path) -> None:
    result, cand = spike(pytester, "compileddist")
    details = import_probe(cand)["details"]
    assert details["modules"] == ["compiledpkg"]
    assert "c787785866c7b801238d__mypyc" in details["left_out"]
    assert cand["level"] == "low"


def test_real_packages_import_their_public_modules(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """PyYAML (private _yaml shim), ruamel.yaml (namespace), protobuf (no top_level.txt), each in
    an environment of its own, installed from the package index."""
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    expected = {
        "pyyaml": ["yaml"],
        "ruamel-yaml": ["ruamel.yaml"],
        "protobuf": ["google.protobuf"],
        "zope-interface": ["zope.interface"],
    }
    result = pytester.runpytest(
        "--spike",
        "--spike-probes=install,import",
        "--spike-isolation=always",
        f"--spike-cache-dir={tmp_path / 'cache'}",
        "--spike-json=r.json",
        *[f"--spike-candidate={name}" for name in expected],
    )
    result.assert_outcomes(passed=2 * len(expected))
    data = {c["name"]: c for c in json.loads((pytester.path / "r.json").read_text())["candidates"]}
    for name, modules in expected.items():
        assert import_probe(data[name])["details"]["modules"] == modules, name
        charged = {f["code"] for f in data[name]["findings"] if f["severity"] != "info"}
        assert charged <= {"import.slow"}, (name, data[name]["findings"])  # slow: a loaded machine


def test_a_deprecated_alias_module_beside_the_real_one_is_not_charged(
    pytester: pytest.Pytester, site: Path
) -> None:
    """``import multipart`` warned "Please use import python_multipart instead" (issue 24): the
    module the warning points to is imported, and when it is clean the warning is the alias's."""
    result, cand = spike(pytester, "aliasdist")
    result.assert_outcomes(passed=2)
    found = codes(cand)
    assert "import.deprecation" not in found and cand["score"] == 0
    assert found["import.alias"]["message"] == (
        "import aliasmod is a deprecated alias (PendingDeprecationWarning: Please use `import aliasreal` "
        "instead.); imported aliasreal, which it points to, instead: clean"
    )
    assert "import.foreign_warning" not in found


def test_a_warning_pointing_to_another_projects_module_still_counts(
    pytester: pytest.Pytester, site: Path
) -> None:
    _, cand = spike(pytester, "renameddist")
    found = codes(cand)
    assert found["import.deprecation"]["message"].endswith("Please use `import othernewmod` instead.")
    assert "import.alias" not in found
