"""Upstream-test probe: real sdists, a real installed package, real pytest subprocesses."""

from __future__ import annotations

import random
import sys
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest
from pkgfactory import FakeProject, build_sdist, build_wheel, pip_install_target

from pytest_spike._core import runner
from pytest_spike.model import Severity
from pytest_spike.upstream.findings import unchecked_reason, upstream_findings
from pytest_spike.upstream.layout import (
    Harness,
    copy_tests,
    find_tests,
    harness_requirements,
    read_pytest_config,
)
from pytest_spike.upstream.results import TestOutcome, UpstreamResult, first_error_line
from pytest_spike.upstream.run import (
    _PLAN_SOURCE,
    SpikeUpstream,
    choose_sample,
    install_harness,
    render_ini,
)

NAME = "spikedemo"
PYPROJECT = """\
[project]
name = "spikedemo"
version = "1.0"

[tool.pytest.ini_options]
addopts = "--cov=spikedemo --strict-markers -m 'not slow' -ra"
markers = ["slow: long tests"]
filterwarnings = ["ignore:spike-noise:UserWarning"]
"""
USES_INSTALLED = """\
import os
import spikedemo

def test_imports_the_installed_copy():
    assert spikedemo.ORIGIN == "installed"
    assert spikedemo.__file__.startswith(os.environ["SPIKE_TARGET"])
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """``spikedemo`` installed into a target folder; the env that puts it on the path."""
    base = tmp_path_factory.mktemp("installed")
    wheel = build_wheel(FakeProject(NAME, files={f"{NAME}/__init__.py": 'ORIGIN = "installed"\n'}), base)
    pip_install_target([wheel], base / "target")
    target = str(base / "target")
    # The host's third-party plugins (hypothesis takes seconds to import) are not what is
    # under test; a candidate environment would not have them.
    return {"PYTHONPATH": target, "SPIKE_TARGET": target, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}


@pytest.fixture
def pytests(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """What each child pytest the runner starts was asked: 'collect' or 'run' (the real
    runner runs them; this only counts)."""
    started: list[str] = []
    real = runner.run

    def counting(argv: list[str], *args: object, **kw: object) -> runner.RunResult:
        if "pytest" in argv:
            started.append("collect" if "--collect-only" in argv else "run")
        return real(argv, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(runner, "run", counting)
    yield started


def make_sdist(tmp_path: Path, sdist_files: dict[str, str], **kw: object) -> Path:
    """An sdist whose own package copy says ``ORIGIN = "sdist"``: importing it is a bug."""
    project = FakeProject(
        NAME, files={f"{NAME}/__init__.py": 'ORIGIN = "sdist"\n'}, sdist_files=sdist_files, **kw
    )  # type: ignore[arg-type]
    return build_sdist(project, tmp_path / "dist")


def spike(tmp_path: Path, env: dict[str, str], source: Path, **kw: object) -> SpikeUpstream:
    return SpikeUpstream(sys.executable, NAME, "1.0", source, tmp_path / "work", 60.0, extra_env=env, **kw)  # type: ignore[arg-type]


def test_sample_runs_against_the_installed_package_with_upstream_options(
    tmp_path: Path, installed: dict[str, str], pytests: list[str]
) -> None:
    sdist = make_sdist(
        tmp_path,
        {
            "pyproject.toml": PYPROJECT,
            "tests/test_installed.py": USES_INSTALLED,
            "tests/data/sample.txt": "payload\n",
            "tests/test_data.py": """\
            from pathlib import Path
            import warnings

            def test_reads_its_data_file():
                warnings.warn("spike-noise", UserWarning)
                assert (Path(__file__).parent / "data" / "sample.txt").read_text() == "payload\\n"
            """,
            "tests/test_slow.py": """\
            import pytest

            @pytest.mark.slow
            def test_deselected_by_upstream_markexpr():
                raise AssertionError("-m 'not slow' was dropped")

            def test_fast():
                pass
            """,
            "tests/test_fail.py": "def test_broken():\n    assert 1 == 2, 'upstream is broken'\n",
            "tests/test_extra.py": "import spike_optional_dep\n\ndef test_opt():\n    pass\n",
        },
    )
    up = spike(tmp_path, installed, sdist)
    result = up.probe(n=10)
    # One child collected, met test_extra.py's error and stopped as --collect-only would:
    # its listing is the collection (no second one); then the sample ran, the failure again.
    assert pytests == ["run", "run", "run"]

    assert result.status == "ran", result.reason
    assert result.collected == 4  # the slow test is deselected, --cov did not break the run
    assert result.collected_files == "5 of 5"  # test_extra.py failed: everything collected
    assert any(
        "1 collection error(s) beside 4 tests" in n and "spike_optional_dep" in n for n in result.notes
    )
    assert {k: v.outcome for k, v in result.outcomes.items()} == {
        "tests/test_installed.py::test_imports_the_installed_copy": "passed",
        "tests/test_data.py::test_reads_its_data_file": "passed",
        "tests/test_slow.py::test_fast": "passed",
        "tests/test_fail.py::test_broken": "failed",
    }
    assert "upstream is broken" in result.outcomes["tests/test_fail.py::test_broken"].message
    # only the tests were copied, never the package source
    assert not (up.run_dir / NAME).exists() and (up.run_dir / "tests" / "data" / "sample.txt").is_file()
    assert up.target_info()["origins"][NAME].startswith(installed["SPIKE_TARGET"])
    argv = up.pytest_argv()
    assert "--cov=spikedemo" not in argv and argv[argv.index("-m", 3) + 1] == "not slow"
    # -P keeps the cwd off sys.path; Pythons before 3.11 lack it (the cwd holds only tests)
    assert (argv[1] == "-P") == (sys.version_info >= (3, 11)) and "--import-mode=importlib" in argv

    findings, details = upstream_findings(result)
    # one failure that persists when run again: weak evidence, low
    assert [(f.code, f.severity) for f in findings] == [("upstream.failed", Severity.LOW)]
    assert "weak evidence" in findings[0].message and "again when run alone" in findings[0].message
    assert findings[0].evidence["nodeids"] == "tests/test_fail.py::test_broken"
    assert details["passed"] == 3 and details["failed"] == 1 and details["mode"] == "importlib"

    passing = [k for k, v in result.outcomes.items() if v.outcome == "passed"]
    assert upstream_findings(up.run(passing))[0] == []


def test_sample_is_deterministic_for_a_seed(
    tmp_path: Path, installed: dict[str, str], pytests: list[str]
) -> None:
    files = {f"tests/test_m{i}.py": "".join(f"def test_{j}(): pass\n" for j in range(3)) for i in range(6)}
    up = spike(tmp_path, installed, make_sdist(tmp_path, files), seed=7)
    fast = up.probe(4)  # collects only the 4 hash-chosen files
    assert pytests == ["run"]  # collected and ran the sample in one child
    assert (fast.collected, fast.collected_files) == (12, "4 of 6")
    assert len({nodeid.split("::")[0] for nodeid in fast.sampled}) == 4  # one per file
    assert fast.count("passed") == 4
    first = up.sample(4)  # from the full collection: the same sample
    assert len(up.collect().ids) == 18 and first == fast.sampled
    assert first == choose_sample(sorted(up.collect().ids, reverse=True), 4, seed=7)


def test_a_chosen_file_without_tests_collects_every_file_in_one_child(
    tmp_path: Path, installed: dict[str, str], pytests: list[str]
) -> None:
    files = {f"tests/test_m{i}.py": "def test_a(): pass\ndef test_b(): pass\n" for i in range(4)}
    files["tests/test_helpers.py"] = "HELPER = 1\n"  # matches python_files, holds no test
    # a seed that chooses test_helpers.py among the 4 files collected first
    seed = next(s for s in range(100) if "tests/test_helpers.py" in choose_sample(sorted(files), 4, s))
    up = spike(tmp_path, installed, make_sdist(tmp_path, files), seed=seed)
    result = up.probe(4)
    # the 4 chosen files in one child, which ran nothing; every file in a second, which ran
    assert pytests == ["run", "run"]
    assert result.status == "ran" and result.count("passed") == 4
    assert (result.collected, result.collected_files) == (8, "5 of 5")
    assert result.sampled == choose_sample(up.collect().ids, 4, seed=seed)


def test_a_conftest_cannot_change_which_sample_the_collecting_child_runs(
    tmp_path: Path, installed: dict[str, str], pytests: list[str]
) -> None:
    files = {f"tests/test_m{i}.py": "".join(f"def test_{j}(): pass\n" for j in range(3)) for i in range(6)}
    files["tests/conftest.py"] = """\
import json, os
for name in ("SPIKE_UPSTREAM_PLAN", "SPIKE_UPSTREAM_SELECT"):
    if name in os.environ:
        path = os.environ[name]
        if name.endswith("PLAN"):
            plan = json.load(open(path))
            plan.update(seed=plan["seed"] + 1, n=1)
            json.dump(plan, open(path, "w"))
        else:
            open(path, "w").write("")
"""
    up = spike(tmp_path, installed, make_sdist(tmp_path, files), seed=7)
    result = up.probe(4)
    assert pytests == ["run"]  # the plan was read before the conftest changed it
    assert result.sampled == choose_sample(up.collect().ids, 4, seed=7) and result.count("passed") == 4


def test_the_one_child_sample_is_choose_sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The plugin that collects and runs in one child picks its sample with its own copy
    of choose_sample (the child has no pytest-spike): the two must agree."""
    (tmp_path / "plan.json").write_text("{}")
    monkeypatch.setenv("SPIKE_UPSTREAM_PLAN", str(tmp_path / "plan.json"))  # read at import
    plugin: dict[str, object] = {}
    exec(compile(_PLAN_SOURCE, "_spike_upstream_plan.py", "exec"), plugin)
    sample = plugin["_sample"]
    rng = random.Random(5)
    for _ in range(200):
        ids = [
            f"tests/{rng.choice('abcdefg')}/test_{rng.randrange(9)}.py::test_{rng.randrange(30)}"
            for _ in range(rng.randrange(0, 60))
        ]
        n, seed = rng.randrange(0, 12), rng.randrange(0, 1000)
        assert sample(list(dict.fromkeys(ids)), n, seed) == choose_sample(list(dict.fromkeys(ids)), n, seed)  # type: ignore[operator]


def test_choose_sample_ignores_listing_order_and_fills_round_robin() -> None:
    ids = [f"t/test_{f}.py::test_{i}" for f in "abc" for i in range(4)]
    assert choose_sample(ids, 5, seed=1) == choose_sample(list(reversed(ids)), 5, seed=1)
    picked = choose_sample(ids, 5, seed=1)
    assert len({p.split("::")[0] for p in picked[:3]}) == 3  # every file before any repeats
    assert choose_sample(ids, 0) == [] and choose_sample([], 5) == []
    seeds = {tuple(choose_sample(ids, 3, seed=s)) for s in range(10)}
    assert len(seeds) > 1  # the seed matters


def test_no_tests_in_the_sdist_is_an_info_finding_and_unknown(
    tmp_path: Path, installed: dict[str, str]
) -> None:
    result = spike(tmp_path, installed, make_sdist(tmp_path, {})).probe()
    assert result.status == "none"
    findings, details = upstream_findings(result)
    # no evidence against the candidate: it scores nothing and the probe ends unknown
    assert [(f.code, f.severity) for f in findings] == [("upstream.unavailable", Severity.INFO)]
    assert unchecked_reason(result) == "no upstream tests: the sdist has no tests"
    assert details["sampled"] == 0
    missing = SpikeUpstream(sys.executable, NAME, "1.0", None, tmp_path / "w2", 10.0).probe()
    assert missing.status == "none" and "has no sdist of spikedemo 1.0" in missing.reason
    assert upstream_findings(missing)[0][0].code == "upstream.unavailable"


def test_missing_harness_dependency_makes_tests_uncollectable(
    tmp_path: Path, installed: dict[str, str]
) -> None:
    sdist = make_sdist(
        tmp_path,
        {"tests/test_h.py": "import spike_missing_harness\n\ndef test_h():\n    pass\n"},
        extras={"tests": ["spike_missing_harness>=1", f"{NAME}[speedups]"], "speedups": ["fastlib"]},
    )
    result = spike(tmp_path, installed, sdist).probe()
    assert result.status == "uncollectable"
    assert "missing harness dependency 'spike_missing_harness'" in result.reason
    findings, details = upstream_findings(result)
    assert [(f.code, f.severity) for f in findings] == [("upstream.uncollectable", Severity.MEDIUM)]
    assert details["harness"] == "extra 'tests'"
    assert result.harness is not None
    assert result.harness.requirements == ("spike_missing_harness>=1", "fastlib")


def test_broken_conftest_falls_back_to_noconftest_with_low_confidence(
    tmp_path: Path, installed: dict[str, str], pytests: list[str]
) -> None:
    sdist = make_sdist(
        tmp_path, {"conftest.py": "import spike_missing_plugin\n", "tests/test_installed.py": USES_INSTALLED}
    )
    result = spike(tmp_path, installed, sdist).probe()
    assert result.status == "ran" and result.low_confidence and result.mode == "importlib+noconftest"
    assert result.count("passed") == 1
    # The first child died loading the conftest (no listing: collected again, as usual); the
    # --noconftest try collected and ran the sample in one child (two children before).
    assert pytests == ["run", "collect", "run"]
    codes = [f.code for f in upstream_findings(result)[0]]
    assert codes == ["upstream.low_confidence"]
    assert any("spike_missing_plugin" in note for note in result.notes)


def test_local_helper_module_retries_in_prepend_mode(
    tmp_path: Path, installed: dict[str, str], pytests: list[str]
) -> None:
    sdist = make_sdist(
        tmp_path,
        {
            "tests/spike_helper.py": "VALUE = 3\n",
            "tests/test_helper.py": "from spike_helper import VALUE\n\ndef test_v():\n    assert VALUE == 3\n",
            "tests/test_other.py": "def test_a():\n    pass\n\ndef test_b():\n    assert 0, 'broken'\n",
        },
    )
    up = spike(tmp_path, installed, sdist)
    result = up.probe()
    assert result.status == "ran" and result.mode == "prepend"
    # importlib's child stopped at the import error; prepend's collected and ran the sample;
    # the failure ran again, alone
    assert pytests == ["run", "run", "run"]
    assert {k: v.outcome for k, v in result.outcomes.items()} == {
        "tests/test_helper.py::test_v": "passed",
        "tests/test_other.py::test_a": "passed",
        "tests/test_other.py::test_b": "failed",
    }
    # the same evidence as collecting first, then running the sample apart
    apart = spike(tmp_path / "apart", installed, sdist)
    found = apart.collect()
    assert found == up.collect() and found.mode == "prepend"
    ran = apart.run(choose_sample(found.ids, 10), found)
    assert ran.outcomes == result.outcomes and ran.sampled == result.sampled


def test_target_without_pytest_is_uncollectable(tmp_path: Path, installed: dict[str, str]) -> None:
    venv.create(tmp_path / "bare", with_pip=False)
    python = str(tmp_path / "bare" / "bin" / "python")
    sdist = make_sdist(tmp_path, {"tests/test_a.py": "def test_a(): pass\n"})
    result = SpikeUpstream(python, NAME, "1.0", sdist, tmp_path / "work", 30.0).probe()
    assert result.status == "uncollectable" and "pytest is not installed" in result.reason
    assert "cannot import spikedemo in the target: ModuleNotFoundError" in result.notes[0]
    gone = SpikeUpstream(str(tmp_path / "no-python"), NAME, "1.0", sdist, tmp_path / "w2", 30.0).probe()
    assert gone.status == "uncollectable" and "cannot run" in gone.reason


def test_path_traversal_sdist_is_refused_and_reported(tmp_path: Path, installed: dict[str, str]) -> None:
    sdist = make_sdist(tmp_path, {"../../escaped.py": "X = 1\n", "tests/test_a.py": ""})
    result = spike(tmp_path, installed, sdist).probe()
    assert result.status == "unsafe" and "climbs out" in result.reason
    assert [f.code for f in upstream_findings(result)[0]] == ["upstream.unsafe"]
    assert not list(tmp_path.rglob("escaped.py"))


def test_a_local_tests_folder_can_be_the_source(tmp_path: Path, installed: dict[str, str]) -> None:
    folder = tmp_path / "mytests"
    folder.mkdir()
    (folder / "test_installed.py").write_text(USES_INSTALLED)
    (folder / "test_other.py").write_text("def test_other():\n    pass\n")
    up = spike(tmp_path, installed, folder)
    picked = up.sample(keyword="installed")
    assert picked == ["mytests/test_installed.py::test_imports_the_installed_copy"]
    result = up.run(picked)
    assert result.outcomes[picked[0]].outcome == "passed"
    assert upstream_findings(result)[0] == []


# -- layout, configuration and harness (no subprocess) ------------------------------------


def test_find_tests_locates_folders_and_never_copies_package_source(tmp_path: Path) -> None:
    root = tmp_path / "src"
    for rel in (
        "pkg/__init__.py",
        "pkg/tests/__init__.py",
        "pkg/tests/test_in.py",
        "tests/test_top.py",
        "tests/sub/test_deep.py",
        "docs/tests/test_doc.py",
        "testing/helpers.py",
        "conftest.py",
        "test_root.py",
        "setup.py",
    ):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("")
    layout = find_tests(root, ["pkg"])
    assert layout.test_dirs == ("tests", "pkg/tests")  # testing/ has no tests, docs/ is skipped
    assert layout.test_files == ("test_root.py",) and layout.conftest
    paths = copy_tests(layout, tmp_path / "run")
    # pkg/tests moves: a copied pkg/ folder would be imported as the package by importlib mode
    assert paths == ["tests", "_in_package/pkg/tests", "test_root.py"]
    copied = sorted(p.relative_to(tmp_path / "run").as_posix() for p in (tmp_path / "run").rglob("*.py"))
    assert copied == [
        "_in_package/pkg/tests/__init__.py",
        "_in_package/pkg/tests/test_in.py",
        "conftest.py",
        "test_root.py",
        "tests/sub/test_deep.py",
        "tests/test_top.py",
    ]


@pytest.mark.parametrize(
    "name, text, source",
    [
        (
            "pytest.ini",
            "[pytest]\naddopts = -x -m 'not net' -p pytester\nmarkers =\n  net: x\n",
            "pytest.ini [pytest]",
        ),
        (
            "tox.ini",
            '[tox]\nenvlist = py\n[pytest]\naddopts = -m"not net" -p pytester\n',
            "tox.ini [pytest]",
        ),
        (
            "setup.cfg",
            "[tool:pytest]\naddopts = --cov -m 'not net' -p pytester\n",
            "setup.cfg [tool:pytest]",
        ),
        (
            "pyproject.toml",
            "[tool.pytest.ini_options]\naddopts = ['-m', 'not net', '-p', 'pytester']\n",
            "pyproject.toml [tool.pytest.ini_options]",
        ),
    ],
)
def test_upstream_config_keeps_markexpr_and_plugins_and_drops_addopts(
    tmp_path: Path, name: str, text: str, source: str
) -> None:
    (tmp_path / name).write_text(text)
    config = read_pytest_config(tmp_path)
    assert (config.source, config.markexpr, config.plugins) == (source, "not net", ("pytester",))
    assert "addopts" not in render_ini(find_tests(tmp_path))


def test_render_ini_writes_lists_and_booleans(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.pytest.ini_options]\nfilterwarnings = ["error", "ignore::DeprecationWarning"]\n'
        'xfail_strict = true\nminversion = "99"\n'
    )
    ini = render_ini(find_tests(tmp_path))
    assert "filterwarnings =\n    error\n    ignore::DeprecationWarning" in ini
    assert "xfail_strict = true" in ini and "minversion" not in ini


def test_harness_sources_in_order(tmp_path: Path) -> None:
    (tmp_path / "requirements-dev.txt").write_text("hypothesis\nblack\n")
    assert harness_requirements(tmp_path, "demo") == Harness(
        ("hypothesis",), "requirements-dev.txt", ("hypothesis",)
    )
    (tmp_path / "requirements").mkdir()
    (tmp_path / "requirements" / "base.txt").write_text("attrs  # pinned elsewhere\n")
    (tmp_path / "requirements-tests.txt").write_text("-r requirements/base.txt\n-e .[extra]\n--index-url x\n")
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "demo"\n[project.optional-dependencies]\nextra = ["six"]\n'
        '[tool.poetry.group.test.dependencies]\npython = "^3.9"\nhypothesis = {version = "^6", extras = ["cli"]}\n'
    )
    assert (
        harness_requirements(tmp_path, "demo").source == "Poetry group 'test' (version constraints dropped)"
    )
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "demo"\n[project.optional-dependencies]\nextra = ["six"]\n'
    )
    assert harness_requirements(tmp_path, "demo").requirements == ("attrs", "six")
    assert harness_requirements(tmp_path, "demo").source == "requirements-tests.txt"
    (tmp_path / "pyproject.toml").write_text(
        '[dependency-groups]\ntest = ["pytest>=8", {include-group = "typing"}, "demo[extra]"]\n'
        'typing = ["mypy", {include-group = "test"}]\n'
        '[project.optional-dependencies]\nextra = ["six"]\n'
    )
    harness = harness_requirements(tmp_path, "demo")
    assert harness.requirements == ("pytest>=8", "mypy", "six")
    assert harness.source == "dependency group 'test' in pyproject.toml"
    (tmp_path / "PKG-INFO").write_text(
        "Metadata-Version: 2.1\nName: demo\nProvides-Extra: testing\n"
        'Requires-Dist: tomli; python_version < "3.11" and extra == "testing"\n'
        'Requires-Dist: demo[extra]; extra == "testing"\n'
        'Requires-Dist: six; extra == "extra"\n'
    )
    harness = harness_requirements(tmp_path, "demo")
    assert harness.requirements == ('tomli; python_version < "3.11"', "six")
    assert harness.source == "extra 'testing'"


def test_a_test_requirements_file_named_test_first_is_found(tmp_path: Path) -> None:
    """numpy 1.x keeps its harness in ``test_requirements.txt`` (``test-requirements.txt``
    elsewhere): chosen before the development requirements."""
    (tmp_path / "requirements-dev.txt").write_text("black\n")
    (tmp_path / "test_requirements.txt").write_text("hypothesis==6.81.1\npytest\n")
    harness = harness_requirements(tmp_path, "demo")
    assert (harness.source, harness.requirements) == (
        "test_requirements.txt",
        ("hypothesis==6.81.1", "pytest"),
    )


def test_pyproject_that_is_not_toml_is_a_note(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[tool.pytest.ini_options]\naddopts = \"-m 'not slow'\"\n= broken\n"
    )
    layout = find_tests(tmp_path)
    assert layout.config.markexpr is None
    assert any(n.startswith("pyproject.toml: invalid TOML (") for n in layout.notes), layout.notes


def test_install_harness_pins_the_candidate_and_reports_pip_errors(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    build_wheel(FakeProject("spike-harness-lib", requires=[f"{NAME}>=2"]), wheels)
    build_wheel(FakeProject(NAME, version="2.0"), wheels)
    env = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheels), "PIP_TARGET": str(tmp_path / "t")}
    pinned = install_harness(sys.executable, ["spike-harness-lib"], 120, pin=f"{NAME}==1.0", extra_env=env)
    assert not pinned.ok and any(NAME in line for line in pinned.errors)
    free = install_harness(sys.executable, ["spike-harness-lib"], 120, extra_env=env)
    assert free.ok, free.errors
    assert (tmp_path / "t" / NAME / "__init__.py").is_file()


def test_findings_grade_failures_and_label_low_confidence() -> None:
    sampled = [f"t.py::test_{i}" for i in range(4)]
    outcomes = {s: TestOutcome("failed", "AssertionError: x") for s in sampled[:3]}
    outcomes[sampled[3]] = TestOutcome("passed")
    result = UpstreamResult(
        "ran",
        sampled=sampled,
        outcomes=outcomes,
        mode="prepend+noconftest",
        low_confidence=True,
        collected=40,
        seed=3,
    )
    findings, details = upstream_findings(result)
    assert [(f.code, f.severity) for f in findings] == [
        ("upstream.failed", Severity.HIGH),
        ("upstream.low_confidence", Severity.INFO),
    ]
    assert findings[0].message.startswith(
        "3 of 4 sampled upstream tests failed, and again when run alone: t.py::test_0"
    )
    assert "weak" not in findings[0].message
    assert details["seed"] == 3 and details["collected"] == 40


def test_first_error_line_prefers_pytest_e_lines() -> None:
    text = "ImportError while loading conftest\nE   ModuleNotFoundError: No module named 'x'\n"
    assert first_error_line(text) == "ModuleNotFoundError: No module named 'x'"
    assert first_error_line("nothing to see\n") == "nothing to see"


def test_dev_requirements_lose_docs_and_lint_tools(tmp_path: Path) -> None:
    (tmp_path / "requirements-dev.txt").write_text(
        "pytest>=7\nSphinx<5,>=4.3\nfuro\nmypy==1.19.1\npre-commit\nPyYAML~=6.0\n"
    )
    harness = harness_requirements(tmp_path, "somepkg")
    assert harness.source == "requirements-dev.txt"
    assert list(harness.requirements) == ["pytest>=7", "PyYAML~=6.0"]
