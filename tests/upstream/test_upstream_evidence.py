"""Evidence that holds up: re-runs, harness gaps, and a harness that brings what tests read.

Every case runs real pytest subprocesses on a real sdist against an installed package.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from pkgfactory import FakeProject, build_sdist, build_wheel, pip_install_target

from pytest_spike.scoring import Weights
from pytest_spike.upstream.findings import unchecked_reason, upstream_findings
from pytest_spike.upstream.layout import find_tests, harness_requirements
from pytest_spike.upstream.results import TestOutcome, UpstreamResult
from pytest_spike.upstream.run import SpikeUpstream, render_ini

NAME = "evpkg"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    base = tmp_path_factory.mktemp("installed")
    wheel = build_wheel(FakeProject(NAME, files={f"{NAME}/__init__.py": 'ORIGIN = "installed"\n'}), base)
    pip_install_target([wheel], base / "target")
    target = str(base / "target")
    return {"PYTHONPATH": target, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}


def probe(tmp_path: Path, env: dict[str, str], sdist_files: dict[str, str], n: int = 5) -> UpstreamResult:
    project = FakeProject(NAME, files={f"{NAME}/__init__.py": 'ORIGIN = "sdist"\n'}, sdist_files=sdist_files)
    sdist = build_sdist(project, tmp_path / "dist")
    up = SpikeUpstream(sys.executable, NAME, "1.0", sdist, tmp_path / "work", 60.0, extra_env=env)
    return up.probe(n)


def points(result: UpstreamResult) -> float:
    return sum(Weights().points(f) for f in upstream_findings(result)[0])


def codes(result: UpstreamResult) -> dict[str, tuple[str, str]]:
    return {f.code: (f.severity.value, f.blame.value) for f in upstream_findings(result)[0]}


def test_a_test_that_passes_when_run_again_is_flaky_info(tmp_path: Path, installed: dict[str, str]) -> None:
    result = probe(
        tmp_path,
        installed,
        {
            "tests/test_flaky.py": """\
            from pathlib import Path

            def test_fails_the_first_time():
                counter = Path(__file__).with_name("runs.txt")
                runs = int(counter.read_text()) if counter.exists() else 0
                counter.write_text(str(runs + 1))
                assert runs > 0, "first run fails"
            """,
            "tests/test_ok.py": "def test_ok():\n    pass\n",
        },
    )
    flaky = result.outcomes["tests/test_flaky.py::test_fails_the_first_time"]
    assert flaky.outcome == "flaky" and "first run fails" in flaky.message
    assert codes(result) == {"upstream.flaky": ("info", "candidate")}
    assert points(result) == 0 and unchecked_reason(result) is None  # evidence, for


def test_one_persistent_failure_is_low_two_are_high(tmp_path: Path, installed: dict[str, str]) -> None:
    one = probe(
        tmp_path / "one",
        installed,
        {
            "tests/test_a.py": "def test_a():\n    assert False, 'broken'\n",
            "tests/test_b.py": "def test_b():\n    pass\n",
        },
    )
    assert one.outcomes["tests/test_a.py::test_a"].outcome == "failed"
    assert codes(one) == {"upstream.failed": ("low", "candidate")} and points(one) == 3
    two = probe(
        tmp_path / "two",
        installed,
        {
            "tests/test_a.py": "import evpkg\n\ndef test_a():\n    assert evpkg.ORIGIN == 'x'\n",
            "tests/test_b.py": "def test_b():\n    raise ValueError('genuine')\n",
        },
    )
    assert codes(two) == {"upstream.failed": ("high", "candidate")} and points(two) == 30


def test_a_set_up_error_from_a_missing_file_is_a_harness_gap(
    tmp_path: Path, installed: dict[str, str]
) -> None:
    result = probe(
        tmp_path,
        installed,
        {
            "tests/conftest.py": """\
            import pytest
            from pathlib import Path

            @pytest.fixture
            def payload():
                return (Path(__file__).parent / "data" / "not-shipped.json").read_text()
            """,
            "tests/test_uses_data.py": "def test_reads(payload):\n    assert payload\n",
        },
    )
    outcome = result.outcomes["tests/test_uses_data.py::test_reads"]
    assert outcome.outcome == "error" and "not-shipped.json" in outcome.gap
    assert codes(result) == {"upstream.harness_gap": ("medium", "environment")}
    assert points(result) == 0
    # nothing was checked: the probe ends unknown, never "passed"
    assert "none of the 1 sampled upstream tests could be checked" in (unchecked_reason(result) or "")


def test_missing_credentials_or_services_are_harness_gaps(tmp_path: Path, installed: dict[str, str]) -> None:
    # botocore's integration tests: credentials are scrubbed here, the service is the reader's
    result = probe(
        tmp_path,
        installed,
        {
            "tests/test_cloud.py": "class NoCredentialsError(Exception):\n    pass\n\n"
            "def test_put():\n    raise NoCredentialsError('Unable to locate credentials')\n",
            "tests/test_db.py": "import socket\n\ndef test_db():\n"
            "    socket.create_connection(('127.0.0.1', 9), timeout=2)\n",
        },
    )
    assert codes(result) == {"upstream.harness_gap": ("medium", "environment")}
    assert points(result) == 0
    gaps = sorted(o.gap for o in result.outcomes.values())
    assert "Unable to locate credentials" in gaps[1] or "NoCredentialsError" in gaps[1], gaps
    assert "Connection refused" in gaps[0] or "ConnectionRefusedError" in gaps[0], gaps


def test_config_sibling_folders_and_in_package_tests_are_brought(
    tmp_path: Path, installed: dict[str, str]
) -> None:
    result = probe(
        tmp_path,
        installed,
        {
            # sqlalchemy's plugin reads a section of setup.cfg from the working folder
            "setup.cfg": "[db]\ndefault = sqlite:///:memory:\n",
            "tests/test_config.py": """\
            import configparser

            def test_db_section():
                parser = configparser.ConfigParser()
                parser.read(["setup.cfg"])
                assert parser.get("db", "default").startswith("sqlite")
            """,
            # pyparsing's tests import the sdist's examples/ folder
            "examples/__init__.py": "",
            "examples/calc.py": "def add(a, b):\n    return a + b\n",
            "tests/test_examples.py": "from examples.calc import add\n\ndef test_add():\n    assert add(1, 2) == 3\n",
            # psutil's tests run the sdist's scripts/ by path
            "scripts/hello.py": "print('hello')\n",
            "tests/test_scripts.py": """\
            import os
            import subprocess
            import sys

            ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

            def test_script():
                path = os.path.join(ROOT, "scripts", "hello.py")
                assert subprocess.check_output([sys.executable, path], text=True) == "hello\\n"
            """,
            # regex keeps its tests inside the package: they must still import the installed copy
            f"{NAME}/tests/test_inside.py": f"import {NAME}\n\ndef test_origin():\n    assert {NAME}.ORIGIN == 'installed'\n",
        },
    )
    assert {k: v.outcome for k, v in result.outcomes.items()} == {
        "tests/test_config.py::test_db_section": "passed",
        "tests/test_examples.py::test_add": "passed",
        "tests/test_scripts.py::test_script": "passed",
        f"_in_package/{NAME}/tests/test_inside.py::test_origin": "passed",
    }
    assert codes(result) == {}


def test_a_conftest_that_reads_a_file_outside_the_tests_gets_it(
    tmp_path: Path, installed: dict[str, str]
) -> None:
    result = probe(
        tmp_path,
        installed,
        {
            "tools/plugin/bootstrap.py": "VALUE = 42\n",
            "tests/conftest.py": """\
            import os

            here = os.path.dirname(__file__)
            parts = ("..", "tools") + ("plugin", "bootstrap.py")  # not a literal path
            with open(os.path.join(here, *parts)) as f:
                exec(f.read())
            """,
            "tests/test_v.py": "def test_v():\n    pass\n",
        },
    )
    assert result.count("passed") == 1 and not result.low_confidence
    assert any("copied tools/plugin/ from the sdist" in n for n in result.notes)


def test_upstream_cli_options_that_would_break_the_run_are_dropped(
    tmp_path: Path, installed: dict[str, str]
) -> None:
    # psutil's addopts disable junitxml (no results at all) and load plugins we may lack
    result = probe(
        tmp_path,
        installed,
        {
            "pyproject.toml": '[tool.pytest]\naddopts = ["-p no:junitxml", "-p spike_absent_plugin"]\n'
            'anyio_mode = "auto"\nfilterwarnings = ["error"]\n',
            "tests/test_ok.py": "def test_ok():\n    pass\n",
        },
    )
    assert result.status == "ran" and result.count("passed") == 1, result
    assert any("'-p spike_absent_plugin' left out" in n for n in result.notes)
    # a plugin's own ini key is kept (anyio's anyio_mode decides whether async tests run)
    layout = find_tests(tmp_path / "work" / "src" / f"{NAME}-1.0")
    assert "anyio_mode = auto" in render_ini(layout)


def test_harness_listed_only_in_a_requirements_file_is_installed(
    tmp_path: Path, installed: dict[str, str]
) -> None:
    wheels = tmp_path / "wheels"
    build_wheel(FakeProject("evharness", files={"evharness/__init__.py": "READY = True\n"}), wheels)
    project = FakeProject(
        NAME,
        sdist_files={
            "tests/requirements.txt": "evharness\n",
            "tests/test_h.py": "import evharness\n\ndef test_h():\n    assert evharness.READY\n",
        },
    )
    target = tmp_path / "target"
    env = {
        **installed,
        "PYTHONPATH": f"{target}:{installed['PYTHONPATH']}",
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(wheels),
        "PIP_TARGET": str(target),
    }
    up = SpikeUpstream(
        sys.executable,
        NAME,
        "1.0",
        build_sdist(project, tmp_path / "dist"),
        tmp_path / "w",
        120.0,
        extra_env=env,
    )
    assert up.harness.requirements == ("evharness",) and up.harness.source == "tests/requirements.txt"
    result = up.probe(install=True)
    assert result.count("passed") == 1, result


def test_a_module_declared_in_another_requirement_set_is_provided(tmp_path: Path) -> None:
    # urllib3: the 'test' group lacks trustme, which its conftest imports; 'dev' names it
    (tmp_path / "pyproject.toml").write_text(
        '[dependency-groups]\ntest = ["pytest"]\ndev = [{include-group = "test"}, "trustme>=1", "sphinx"]\n'
    )
    (tmp_path / "requirements.txt").write_text("pytest-mock\n")
    harness = harness_requirements(tmp_path, "demo")
    assert harness.requirements == ("pytest",)
    assert harness.providing(["trustme", "pytest_mock.plugin", "sphinx", "unknown_mod"]) == [
        "trustme>=1",
        "pytest-mock",
    ]
    result = UpstreamResult(
        "ran",
        sampled=["t.py::a"],
        outcomes={"t.py::a": TestOutcome("error", "x", gap="No module named 'trustme' (...)")},
        notes=["the root conftest failed to import (ModuleNotFoundError: No module named 'pytest_mock')"],
    )
    assert result.missing_modules == ["pytest_mock", "trustme"]


def test_tests_that_do_not_collect_for_harness_reasons_are_unknown(
    tmp_path: Path, installed: dict[str, str]
) -> None:
    result = probe(
        tmp_path, installed, {"tests/test_h.py": "import spike_missing_harness\n\ndef test_h():\n    pass\n"}
    )
    assert result.status == "uncollectable" and result.gap
    assert codes(result) == {"upstream.uncollectable": ("medium", "environment")} and points(result) == 0
    assert "could not be collected here" in (unchecked_reason(result) or "")
    # the candidate's own module missing a name its tests import is the candidate's
    own = probe(
        tmp_path / "own",
        installed,
        {"tests/test_o.py": f"from {NAME} import missing_name\n\ndef test_o():\n    pass\n"},
    )
    assert own.status == "uncollectable" and not own.gap
    assert codes(own)["upstream.uncollectable"] == ("medium", "candidate")
    assert unchecked_reason(own) is None


def test_a_module_named_twice_is_provided_once(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[dependency-groups]\ntest = ["pytest"]\ndev = ["trustme>=1.2"]\ndev-min = ["trustme==0.9"]\n'
    )
    assert harness_requirements(tmp_path, "demo").providing(["trustme"]) == ["trustme>=1.2"]
