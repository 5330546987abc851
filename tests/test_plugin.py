"""End-to-end tests of the core: marks, built-in items, findings, score, reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SPIKE_FILE = """
import pytest
from pytest_spike import spike

pytestmark = spike.candidate("goodpkg")

@spike.hello_world
def test_hello():
    import goodpkg
    assert goodpkg.hello() == "hi"

def test_custom():
    import goodpkg
    assert goodpkg
"""


#: the discard port: nothing listens there, so the index cannot be asked
UNREACHABLE = "http://127.0.0.1:9/simple/"


def results(path: Path) -> dict:
    return json.loads(path.read_text())


def by_name(data: dict) -> dict:
    return {c["name"]: c for c in data["candidates"]}


def codes(candidate: dict) -> set:
    return {f["code"] for f in candidate["findings"]}


def test_without_spike_candidate_tests_are_skipped(pytester: pytest.Pytester, spike_site: Path) -> None:
    pytester.makepyfile(test_spike=SPIKE_FILE, test_plain="def test_plain():\n    assert True\n")
    result = pytester.runpytest("-rs", "-p", "no:randomly")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(["*spike probe: run with --spike*"])
    result.stdout.no_fnmatch_line("*spike scorecard*")
    result.stdout.no_fnmatch_line("*spike::*")


def test_spike_adds_builtin_items_with_stable_node_ids(pytester: pytest.Pytester, spike_site: Path) -> None:
    pytester.makepyfile(test_spike=SPIKE_FILE)
    result = pytester.runpytest("--spike", "--collect-only", "-q")
    result.stdout.fnmatch_lines(
        [
            "spike::goodpkg::install",
            "spike::goodpkg::import",
            "test_spike.py::test_hello",
            "test_spike.py::test_custom",
        ]
    )


def test_spike_run_scores_and_prints_scorecard(pytester: pytest.Pytester, spike_site: Path) -> None:
    pytester.makepyfile(test_spike=SPIKE_FILE)
    result = pytester.runpytest("--spike", "--spike-json", "out.json", "--spike-md", "out.md")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        [
            "*= spike scorecard =*",
            "candidate*version*level*score*evidence*time*peak mem",
            "goodpkg*1.0*LOW*0*4/4*",
            "*probes: install passed, import passed, test_hello passed, test_custom passed*",
            "lowest risk: goodpkg (LOW, 0 points, evidence 4/4)",
        ]
    )
    data = results(pytester.path / "out.json")
    assert data["schema"] == "pytest-spike/1"
    assert data["complete"] is True
    assert data["cell"]["python"] and data["cell"]["implementation"] == "CPython"
    good = by_name(data)["goodpkg"]
    assert good["version"] == "1.0" and good["level"] == "low" and good["score"] == 0
    kinds = {p["nodeid"]: (p["kind"], p["outcome"]) for p in good["probes"]}
    assert kinds == {
        "spike::goodpkg::install": ("install", "passed"),
        "spike::goodpkg::import": ("import", "passed"),
        "test_spike.py::test_hello": ("hello_world", "passed"),
        "test_spike.py::test_custom": ("custom", "passed"),
    }
    assert all(p["duration_s"] >= 0 for p in good["probes"])
    md = (pytester.path / "out.md").read_text()
    assert "| goodpkg | 1.0 | **LOW** | 0 | 4/4 |" in md
    assert not list(pytester.path.glob(".out.json.*")), "temporary files left behind"


def test_zero_file_spike_in_an_empty_folder(pytester: pytest.Pytester, spike_site: Path) -> None:
    result = pytester.runpytest("--spike", "--spike-candidate", "goodpkg", "--spike-candidate", "other-name")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        [
            # the probe items count as collected, though no file was collected
            "collected 4 items",
            "spike: 2 candidates (goodpkg, other-name); 4 built-in probes added as spike::<name>::<probe>",
            "lowest risk: goodpkg and other-name (tie)*",
        ]
    )
    result.stdout.no_fnmatch_line("collected 0 items")
    assert result.ret == 0


def test_the_collected_count_includes_the_probes_next_to_deselection(
    pytester: pytest.Pytester, spike_site: Path
) -> None:
    pytester.makepyfile(test_spike=SPIKE_FILE)
    result = pytester.runpytest("--spike", "-k", "not custom")
    result.stdout.fnmatch_lines(["collected 4 items / 1 deselected / 3 selected"])
    result.assert_outcomes(passed=3)


def test_module_name_is_read_from_the_distribution(pytester: pytest.Pytester, spike_site: Path) -> None:
    result = pytester.runpytest("--spike", "--spike-candidate", "Other_Name", "--spike-json", "r.json")
    result.assert_outcomes(passed=2)
    cand = by_name(results(pytester.path / "r.json"))["other-name"]
    imports = next(p for p in cand["probes"] if p["kind"] == "import")["details"]
    assert imports["modules"] == ["othermod"]


@pytest.mark.parametrize(
    "mark, expected",
    [
        (
            'spike.candidate("goodpkg", verions="latest:3")',
            "*unknown keyword 'verions' (did you mean 'versions'?)*",
        ),
        ('spike.candidate("good pkg!!")', "*'good pkg!!' is not a valid requirement*"),
        (
            'spike.candidate("goodpkg", python="three")',
            "*python='three' has 'three', which is not like '3.11'*",
        ),
        ('spike.candidate("goodpkg", versions="~~2")', "*versions='~~2' is not a specifier*"),
        ('spike.candidate("goodpkg", timebox="soon")', "*'soon' is not a duration*"),
    ],
)
def test_bad_mark_is_a_collection_error_naming_the_test(
    pytester: pytest.Pytester, mark: str, expected: str
) -> None:
    pytester.makepyfile(
        test_bad=f"""
        from pytest_spike import spike

        @{mark}
        def test_it():
            pass

        def test_fine():
            pass
        """
    )
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(["*ERROR collecting test_bad.py*", f"test_bad.py::test_it: {expected}"])
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.no_fnmatch_line("*Traceback*")


def test_kind_without_candidate_is_an_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("from pytest_spike import spike\n\n@spike.hello_world\ndef test_it():\n    pass\n")
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(["*test_it: tagged spike.hello_world but has no spike.candidate(...)*"])


def test_candidate_declared_twice_differently_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from pytest_spike import spike

        @spike.candidate("goodpkg>=1")
        def test_a():
            pass

        @spike.candidate("goodpkg<3")
        def test_b():
            pass
        """
    )
    result = pytester.runpytest("--spike")
    result.stderr.fnmatch_lines(["*candidate 'goodpkg' is declared twice with different settings*"])
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_select_keeps_only_named_candidates(pytester: pytest.Pytester, spike_site: Path) -> None:
    pytester.makepyfile(test_spike=SPIKE_FILE)
    result = pytester.runpytest(
        "--spike", "--spike-candidate", "other-name", "--spike-select", "other_name", "-q"
    )
    result.assert_outcomes(passed=2, deselected=2)
    result.stdout.no_fnmatch_line("*goodpkg*LOW*")
    bad = pytester.runpytest("--spike", "--spike-select", "tomly")
    bad.stderr.fnmatch_lines(["*--spike-select tomly matches no candidate (candidates: goodpkg)*"])
    assert bad.ret == pytest.ExitCode.USAGE_ERROR


def test_missing_candidate_is_blocked_with_a_fix(
    pytester: pytest.Pytester, spike_site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the index cannot be asked (a name it does not know is a usage error: test_honest_paths.py)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", UNREACHABLE)
    result = pytester.runpytest("--spike", "--spike-candidate", "no-such-package-xyz", "-rs")
    result.assert_outcomes(failed=1, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*[[]critical] install.missing: no-such-package-xyz is not installed for*python -m pip install 'no-such-package-xyz'*",
            "no-such-package-xyz*BLOCKED*100*1/2*",
        ]
    )
    result.stdout.no_fnmatch_line("*Traceback*")


def test_version_outside_spec_is_high(pytester: pytest.Pytester, spike_site: Path) -> None:
    result = pytester.runpytest("--spike", "--spike-candidate", "goodpkg>=2", "--spike-json", "r.json")
    result.assert_outcomes(failed=1, passed=1)
    good = by_name(results(pytester.path / "r.json"))["goodpkg"]
    assert "install.version_mismatch" in codes(good)
    assert good["level"] == "high" and good["score"] == 30


def test_pip_check_conflicts_involving_the_candidate(pytester: pytest.Pytester, spike_site: Path) -> None:
    result = pytester.runpytest(
        "--spike", "--spike-candidate", "conflictpkg", "--spike-candidate", "deppkg", "--spike-json", "r.json"
    )
    cands = by_name(results(pytester.path / "r.json"))
    conflict = next(f for f in cands["conflictpkg"]["findings"] if f["code"] == "install.pip_check")
    assert "missingdep, which is not installed" in conflict["message"]
    assert "install.pip_check" not in codes(cands["deppkg"])
    assert "install.conflicts" not in codes(cands["conflictpkg"])  # the old, confusable name
    footprint = next(f for f in cands["deppkg"]["findings"] if f["code"] == "install.footprint")
    assert footprint["message"].startswith("1 transitive dependencies")
    result.assert_outcomes(failed=1, passed=3)


@pytest.mark.parametrize(
    "package, code, severity, text",
    [
        ("warnpkg", "import.deprecation", "medium", "DeprecationWarning: warnpkg.old_api is deprecated"),
        ("brokenpkg", "import.failed", "critical", "ImportError: brokenpkg needs libfoo"),
        ("segvpkg", "import.crashed", "critical", "killed by SIGSEGV"),
        ("hangpkg", "import.timeout", "critical", "timed out after"),
    ],
)
def test_import_probe_turns_faults_into_findings(
    pytester: pytest.Pytester, spike_site: Path, package: str, code: str, severity: str, text: str
) -> None:
    result = pytester.runpytest(
        "--spike", "--spike-candidate", package, "--spike-probe-timeout", "3", "--spike-json", "r.json"
    )
    cand = by_name(results(pytester.path / "r.json"))[package]
    found = [f for f in cand["findings"] if f["code"] == code]
    assert found, cand["findings"]
    assert found[0]["severity"] == severity
    assert text in found[0]["message"]
    result.stdout.no_fnmatch_line("*Traceback*")
    assert result.ret == (0 if severity == "medium" else 1)


def test_user_test_failure_is_a_finding(pytester: pytest.Pytester, spike_site: Path) -> None:
    pytester.makepyfile(
        """
        from pytest_spike import spike

        @spike.candidate("goodpkg")
        @spike.real_data
        def test_rows():
            assert 1 + 1 == 3, "row 7 did not parse"
        """
    )
    result = pytester.runpytest("--spike", "--spike-json", "r.json")
    good = by_name(results(pytester.path / "r.json"))["goodpkg"]
    finding = next(f for f in good["findings"] if f["code"] == "real_data.failed")
    assert finding["severity"] == "high"
    assert "test_rows failed: AssertionError: row 7 did not parse" in finding["message"]
    assert finding["probe"] == "test_user_test_failure_is_a_finding.py::test_rows"
    result.stdout.fnmatch_lines(["*+30 high real_data.failed: test_rows failed*"])


def test_weights_and_fail_on_from_ini(pytester: pytest.Pytester, spike_site: Path) -> None:
    pytester.makeini(
        """
        [pytest]
        spike_weights =
            medium = 4
            import.deprecation = 12
        spike_fail_on = medium
        """
    )
    result = pytester.runpytest("--spike", "--spike-candidate", "warnpkg")
    result.stdout.fnmatch_lines(
        ["warnpkg*MEDIUM*12*", "*--spike-fail-on medium: reached by warnpkg (medium)*"]
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    relaxed = pytester.runpytest("--spike", "--spike-candidate", "warnpkg", "--spike-fail-on", "high")
    assert relaxed.ret == pytest.ExitCode.OK


@pytest.mark.parametrize(
    "args, ini, expected",
    [
        (
            ["--spike-fail-on", "severe"],
            "",
            "*--spike-fail-on: 'severe' is not one of low, medium, high, blocked*",
        ),
        ([], "spike_fail_on = meh", "*spike_fail_on in tox.ini: 'meh' is not one of*"),
        ([], "spike_weights = high: 3", "*spike_weights in tox.ini: 'high: 3' is not 'name = points'*"),
        (["--spike-probe-timeout", "-1"], "", "*--spike-probe-timeout: '-1' is not a duration*"),
    ],
)
def test_bad_settings_name_their_source(
    pytester: pytest.Pytester, args: list, ini: str, expected: str
) -> None:
    pytester.makefile(".ini", tox=f"[pytest]\n{ini}\n")
    result = pytester.runpytest("--spike", *args)
    result.stderr.fnmatch_lines([expected])
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_hooks_add_findings_reweight_and_relevel(pytester: pytest.Pytester, spike_site: Path) -> None:
    pytester.makeconftest(
        """
        from pytest_spike import Finding, Level, Severity

        def pytest_spike_add_findings(result, config):
            if result.name == "goodpkg":
                return [Finding("policy.review", Severity.LOW, "needs a security review")]

        def pytest_spike_weight(finding, config):
            return 7.0 if finding.code == "policy.review" else None

        def pytest_spike_level(result, config):
            return Level.HIGH if result.score >= 7 else None
        """
    )
    result = pytester.runpytest("--spike", "--spike-candidate", "goodpkg")
    result.stdout.fnmatch_lines(["goodpkg*HIGH*7*", "*+7 low policy.review: needs a security review*"])


def test_notes_and_metrics_side_by_side(pytester: pytest.Pytester, spike_site: Path) -> None:
    pytester.makepyfile(
        """
        import pytest
        from pytest_spike import spike

        @pytest.mark.parametrize("name, speed", [
            pytest.param("goodpkg", 120.0, marks=spike.candidate("goodpkg")),
            pytest.param("other-name", 80.0, marks=spike.candidate("other-name")),
        ])
        def test_speed(name, speed, spike_metric, spike_note):
            spike_metric("rows/s", speed, unit="rows/s")
            if name == "goodpkg":
                spike_metric("errors", 3, better="lower")
            spike_note(f"{name} felt fine")
        """
    )
    result = pytester.runpytest("--spike", "--spike-json", "r.json", "--spike-md", "r.md")
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(
        [
            "metrics",
            "rows/s (higher is better): goodpkg 120 rows/s (best), other-name 80 rows/s",
            "errors (lower is better): goodpkg 3 (best), other-name missing",
        ]
    )
    data = by_name(results(pytester.path / "r.json"))
    assert data["goodpkg"]["metrics"]["rows/s"] == {"value": 120.0, "unit": "rows/s", "better": "higher"}
    assert data["other-name"]["notes"] == ["other-name felt fine"]
    assert "> note: goodpkg felt fine" in (pytester.path / "r.md").read_text()


def test_bad_metric_fails_the_test(pytester: pytest.Pytester, spike_site: Path) -> None:
    pytester.makepyfile(
        """
        from pytest_spike import spike

        @spike.candidate("goodpkg")
        def test_m(spike_metric):
            spike_metric("acc", "high")
        """
    )
    result = pytester.runpytest("--spike")
    result.stdout.fnmatch_lines(["*spike_metric('acc'): value must be a finite number, got 'high'*"])
    result.assert_outcomes(passed=2, failed=1)


def test_scorecard_fits_80_columns(
    pytester: pytest.Pytester, spike_site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", UNREACHABLE)
    long_name = "other-name"
    result = pytester.runpytest(
        "--spike",
        "--spike-candidate",
        "warnpkg",
        "--spike-candidate",
        long_name,
        "--spike-candidate",
        "a-very-long-package-name-that-is-not-installed-anywhere",
    )
    lines = result.stdout.lines
    start = next(i for i, line in enumerate(lines) if "spike scorecard" in line)
    section = lines[
        start : next(i for i in range(start, len(lines)) if lines[i].startswith("lowest risk")) + 1
    ]
    assert len(section) > 8
    assert max(len(line) for line in section) <= 80, "\n".join(section)


def test_github_step_summary(
    pytester: pytest.Pytester, spike_site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = pytester.path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    pytester.runpytest("--spike", "--spike-candidate", "goodpkg", "--spike-md", "r.md")
    text = summary.read_text()
    assert text.startswith("earlier step\n## spike scorecard")
    assert "lowest risk: goodpkg" in text


def test_unwritable_results_path_is_an_error_not_a_traceback(
    pytester: pytest.Pytester, spike_site: Path
) -> None:
    (pytester.path / "blocker").write_text("a file, not a folder")
    result = pytester.runpytest("--spike", "--spike-candidate", "goodpkg", "--spike-json", "blocker/r.json")
    result.stdout.fnmatch_lines(["spike results: cannot write */blocker/r.json: *"])
    result.stdout.no_fnmatch_line("*Traceback*")
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_xdist_gives_the_same_scorecard(pytester: pytest.Pytester, spike_site: Path) -> None:
    pytester.makepyfile(test_spike=SPIKE_FILE)
    args = ["--spike", "--spike-candidate", "warnpkg", "--spike-candidate", "brokenpkg"]
    single = pytester.runpytest_subprocess(*args, "--spike-json", "one.json")
    multi = pytester.runpytest_subprocess(*args, "-n", "2", "--spike-json", "two.json")
    assert single.ret == multi.ret == 1

    def essence(path: str) -> list:
        return [
            (
                c["name"],
                c["version"],
                c["level"],
                c["score"],
                sorted(codes(c)),
                sorted((p["nodeid"], p["outcome"]) for p in c["probes"]),
            )
            for c in results(pytester.path / path)["candidates"]
        ]

    assert essence("one.json") == essence("two.json")
    assert multi.stdout.str().count("spike scorecard") == 1


def test_show_command_reprints_a_results_file(pytester: pytest.Pytester, spike_site: Path) -> None:
    pytester.runpytest("--spike", "--spike-candidate", "warnpkg", "--spike-json", "r.json")
    shown = pytester.run(sys.executable, "-m", "pytest_spike", "show", "r.json")
    shown.stdout.fnmatch_lines(["warnpkg*MEDIUM*10*", "lowest risk: warnpkg*"])
    (pytester.path / "bad.json").write_text('{"schema": "pytest-spike/1", "cand')
    bad = pytester.run(sys.executable, "-m", "pytest_spike", "show", "bad.json")
    assert bad.ret == 2
    bad.stderr.fnmatch_lines(["pytest-spike: error: bad.json: not a JSON results file*"])


def test_readme_probe_runs_the_examples(pytester: pytest.Pytester, spike_site: Path) -> None:
    result = pytester.runpytest(
        "--spike",
        "--spike-probes",
        "readme",
        "--spike-candidate",
        "goodpkg",
        "--spike-candidate",
        "readmepkg",
        "--spike-candidate",
        "brokenpkg",
        "--spike-json",
        "r.json",
    )
    cands = by_name(results(pytester.path / "r.json"))
    good = next(p for p in cands["goodpkg"]["probes"] if p["kind"] == "readme")
    assert good["outcome"] == "passed"
    assert good["details"]["counts"]["ok"] == 2
    bad = cands["readmepkg"]
    failed = next(f for f in bad["findings"] if f["code"] == "readme.failed")
    assert failed["severity"] == "medium" and "2 of 3" in failed["message"]
    # Scored, but an item fails only on a high or critical finding, as every probe's does.
    assert next(p for p in bad["probes"] if p["kind"] == "readme")["outcome"] == "passed"
    assert "readme.none" in codes(cands["brokenpkg"])
    # Nothing runnable in brokenpkg's README: unknown, so skipped, never passed.
    assert next(p for p in cands["brokenpkg"]["probes"] if p["kind"] == "readme")["outcome"] == "skipped"
    result.assert_outcomes(passed=2, skipped=1)


def test_spike_readme_fixture(pytester: pytest.Pytester, spike_site: Path) -> None:
    pytester.makepyfile(
        """
        from pytest_spike import spike

        @spike.candidate("goodpkg")
        def test_examples(spike_readme):
            assert [b.kind for b in spike_readme.blocks()] == ["python", "pycon"]
            run = spike_readme.run()
            assert run.ok, run.summary()

        @spike.candidate("readmepkg")
        def test_broken_examples(spike_readme):
            run = spike_readme.run()
            assert len(run.failed) == 2
            assert not run.ok
        """
    )
    result = pytester.runpytest("--spike", "--spike-probes", "install")
    result.assert_outcomes(passed=4)


def test_scorecard_lines_fit_with_many_tied_candidates() -> None:
    from pytest_spike.model import Candidate, CandidateResult, Level, ProbeResult, Scorecard
    from pytest_spike.report.terminal import scorecard_lines

    def evidenced(name: str) -> CandidateResult:
        return CandidateResult(
            Candidate(name), version="1.0", probes=[ProbeResult(name, "install", f"spike::{name}::install")]
        )

    tied = [evidenced(f"package-number-{i}") for i in range(30)]
    card = Scorecard(cell={}, candidates=tied, fail_on=Level.LOW)
    lines = [text for text, _ in scorecard_lines(card, 80)]
    assert max(map(len, lines)) <= 80
    assert any(line.startswith("lowest risk: package-number-0 and") for line in lines)
    assert any(line.startswith("--spike-fail-on low: reached by") for line in lines)


def test_a_bad_candidate_option_is_a_usage_error_alone(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_spike=SPIKE_FILE)
    result = pytester.runpytest("--spike", "--spike-candidate", "foo>>1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --spike-candidate 'foo>>1': 'foo>>1' is not a valid requirement*"])
    for wrong in ("*spike scorecard*", "*no candidates*", "*spike: 0 candidates*", "*interrupted*"):
        result.stdout.no_fnmatch_line(wrong)


def test_a_collection_error_prints_no_scorecard(pytester: pytest.Pytester, spike_site: Path) -> None:
    pytester.makepyfile(test_spike=SPIKE_FILE, test_broken="import no_such_module_here\n")
    result = pytester.runpytest("--spike", "--spike-probes=none", "--spike-json", "r.json")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        ["*ERROR collecting test_broken.py*", "*Interrupted: 1 error during collection*"]
    )
    for wrong in ("*spike scorecard*", "*no candidates*", "*the run was interrupted*"):
        result.stdout.no_fnmatch_line(wrong)
    assert not (pytester.path / "r.json").exists()

    # Told to go on, the run is a run: its scorecard is printed and complete.
    result = pytester.runpytest("--spike", "--spike-probes=none", "--continue-on-collection-errors")
    result.stdout.fnmatch_lines(["*spike scorecard*", "goodpkg *", "lowest risk: goodpkg*"])
    result.stdout.no_fnmatch_line("*the run was interrupted*")


def test_an_idle_plugin_imports_only_its_entry_modules() -> None:
    """What pytest loads without --spike stays small, so an installed plugin costs nothing."""
    allowed = {
        "pytest_spike",
        "pytest_spike.plugin",
        "pytest_spike.marks",
        "pytest_spike.settings",
        "pytest_spike.fixtures",
        "pytest_spike.hookspec",
        "pytest_spike.model",
        "pytest_spike.kinds",  # the model's floor: the probe kinds' rows, no probe imported
        # the report formats' registry rows, which the --spike-NAME options are made from
        "pytest_spike.report",
        "pytest_spike.report.formats",
    }
    script = (
        "import sys, pytest_spike.plugin; "
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] == 'pytest_spike')))"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    loaded = set(out.split())
    assert "pytest_spike.plugin" in loaded
    assert not loaded - allowed, f"imported by pytest_spike.plugin: {sorted(loaded - allowed)}"


def test_the_matrix_runner_nox_and_the_cli_import_no_pytest() -> None:
    """The runner's own process (``pytest-spike run``, ``nox -s spike``) runs no tests:
    importing pytest for the marks cost it ~0.1 s of CPU on every run."""
    script = (
        "import sys, pytest_spike.matrix.nox, pytest_spike.matrix.runner, pytest_spike.cli.run; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pytest', '_pytest')))"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_public_api_is_importable_as_before() -> None:
    """``spike`` is loaded when asked for (it needs pytest), as a name or by ``import *``."""
    script = """
import pytest_spike
from pytest_spike import Blame, Finding, Level, Severity, SpikeError, __version__, spike
from pytest_spike.marks import spike as defined
assert spike is defined is pytest_spike.spike
names = {}
exec("from pytest_spike import *", names)
assert set(pytest_spike.__all__) <= set(names), pytest_spike.__all__
try:
    pytest_spike.no_such_name
except AttributeError as exc:
    print(exc)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "module 'pytest_spike' has no attribute 'no_such_name'"


def test_an_idle_session_loads_only_the_entry_modules(pytester: pytest.Pytester) -> None:
    """A whole pytest run without --spike (configure, collection, tests) loads nothing more."""
    pytester.makeconftest(
        """
        import sys

        def pytest_sessionfinish(session):
            loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'pytest_spike')
            print('\\nSPIKE-MODULES ' + ' '.join(loaded))
        """
    )
    pytester.makepyfile(test_plain="def test_one():\n    pass\n")
    result = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    line = next(line for line in result.outlines if line.startswith("SPIKE-MODULES "))
    loaded = set(line.split()[1:])
    allowed = {
        "pytest_spike",
        "pytest_spike.plugin",
        "pytest_spike.marks",
        "pytest_spike.settings",
        "pytest_spike.fixtures",
        "pytest_spike.hookspec",
        "pytest_spike.model",
        "pytest_spike.kinds",  # the model's floor: the probe kinds' rows, no probe imported
        # the report formats' registry rows, which the --spike-NAME options are made from
        "pytest_spike.report",
        "pytest_spike.report.formats",
    }
    assert not loaded - allowed, f"an idle run imported {sorted(loaded - allowed)}"


def test_a_spike_of_an_installed_candidate_loads_no_index_client_nor_environment_manager(
    pytester: pytest.Pytester, spike_site: Path
) -> None:
    """A matrix cell's candidate is installed and its probes need no index: the index client
    (with the network stack) and the environment manager (file locks, pip's configuration)
    cost its start-up for nothing, so they load only when a probe asks for them. Looked at
    when pytest unconfigures, after the spike controller's end of session (which once
    imported the upgrade session, and with it all of these, to read its results)."""
    pytester.makeconftest(
        """
        import sys

        def pytest_unconfigure(config):
            print('\\nSPIKE-MODULES ' + ' '.join(sorted(sys.modules)))
        """
    )
    result = pytester.runpytest_subprocess(
        "-s", "-p", "no:cacheprovider", "--spike", "--spike-probes=import", "--spike-candidate=goodpkg"
    )
    result.assert_outcomes(passed=1)
    line = next(line for line in result.outlines if line.startswith("SPIKE-MODULES "))
    loaded = set(line.split()[1:])
    assert "pytest_spike.probes.imports" in loaded or "pytest_spike.session.worker" in loaded
    unwanted = {
        "pytest_spike.index.client", "pytest_spike.envs.manager", "http.client", "ssl",
        "pytest_spike.upgrade.session", "html.parser",
    }  # fmt: skip
    assert not loaded & unwanted, sorted(loaded & unwanted)


def test_a_spike_that_reuses_its_evidence_takes_no_file_lock(
    pytester: pytest.Pytester, spike_site: Path
) -> None:
    """Kept evidence is read without the evidence index's lock (it is taken to write), so a
    warm matrix cell does not import the lock library (~9 ms of its start-up)."""
    pytester.makeconftest(
        """
        import sys

        def pytest_unconfigure(config):
            print('\\nFILELOCK ' + str('filelock' in sys.modules))
        """
    )
    args = ("-s", "-p", "no:cacheprovider", "--spike", "--spike-probes=import", "--spike-candidate=goodpkg")
    seen = []
    for _ in range(2):
        result = pytester.runpytest_subprocess(*args)
        result.assert_outcomes(passed=1)
        seen.append(next(line for line in result.outlines if line.startswith("FILELOCK ")))
    assert seen == ["FILELOCK True", "FILELOCK False"]  # written (under the lock), then read


ROLES_CONFTEST = """
import os

def pytest_sessionfinish(session):
    config = session.config
    role = config.workerinput["workerid"] if hasattr(config, "workerinput") else "main"
    plugins = sorted(
        name for name in ("spike-worker", "spike-controller", "spike-sigterm")
        if config.pluginmanager.has_plugin(name)
    )
    with open(os.path.join(str(config.rootpath), f"roles-{role}.txt"), "w") as handle:
        handle.write(" ".join(plugins))
"""


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param([], {"main": "spike-controller spike-sigterm spike-worker"}, id="no-xdist"),
        pytest.param(
            ["-n", "1"],
            {"main": "spike-controller spike-sigterm", "gw0": "spike-sigterm spike-worker"},
            id="xdist",
        ),
        pytest.param(
            ["-n", "1", "--collect-only"], {"main": "spike-sigterm spike-worker"}, id="collect-only"
        ),
    ],
)
def test_each_side_of_the_session_is_registered_where_it_applies(
    pytester: pytest.Pytester, spike_site: Path, args: list, expected: dict
) -> None:
    pytester.makeconftest(ROLES_CONFTEST)
    pytester.makepyfile(test_spike=SPIKE_FILE)
    result = pytester.runpytest_subprocess("--spike", "--spike-probes=none", "-p", "no:randomly", *args)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    found = {p.stem[len("roles-") :]: p.read_text() for p in pytester.path.glob("roles-*.txt")}
    assert found == expected


FREEZE_FILE = """
import gc
import weakref

from pytest_spike import spike

pytestmark = spike.candidate("goodpkg")


class Node:
    pass


@spike.hello_world
def test_what_the_session_built_is_frozen_only_in_a_cell(request):
    import goodpkg

    assert (gc.get_freeze_count() > 10_000) == bool(request.config.getoption("spike_cell"))
    node = Node()
    node.itself = node
    gone = weakref.ref(node)
    del node
    gc.collect()
    assert gone() is None  # a test's own garbage is still collected
"""


def test_a_matrix_cell_freezes_what_its_session_built(pytester: pytest.Pytester, spike_site: Path) -> None:
    """A cell's process ends with its session: what pytest and pytest-spike built before the
    tests is frozen, so the collections at the end skip it; elsewhere nothing is frozen."""
    pytester.makepyfile(test_spike=FREEZE_FILE)
    for cell in (["--spike-cell", "py3.11-goodpkg-1.0"], []):
        # a child process: freezing this one would keep every test's garbage after it
        result = pytester.runpytest_subprocess("--spike", "--spike-probes=none", *cell)
        result.assert_outcomes(passed=1)
