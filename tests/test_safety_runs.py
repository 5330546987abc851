"""Faults around a spike run: concurrent runs, xdist, odd paths, a broken index, bad results."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from indexserver import HERMETIC_ENV, IndexServer

import pytest_spike
from pytest_spike.model import SCHEMA

SRC = Path(pytest_spike.__file__).parent

SPIKE_FILE = """
from pytest_spike import spike

pytestmark = spike.candidate("goodpkg")

@spike.hello_world
def test_hello():
    import goodpkg
    assert goodpkg.hello() == "hi"

@spike.candidate("warnpkg")
def test_warn():
    import warnpkg
    assert False, "warnpkg is not good enough"
"""


def candidates(path: Path) -> dict[str, dict]:
    return {c["name"]: c for c in json.loads(path.read_text())["candidates"]}


# -- two runs at once ---------------------------------------------------------------------------

WRITER = """
import sys
from pathlib import Path
from pytest_spike._core.files import write_atomic

path, mark = Path(sys.argv[1]), sys.argv[2]
body = '{"writer": "%s", "pad": "%s"}' % (mark, mark * 300000)
for _ in range(25):
    write_atomic(path, body)
"""


def test_two_runs_writing_one_results_path_never_tear_it(tmp_path: Path) -> None:
    target = tmp_path / "r.json"
    target.write_text('{"writer": "none"}')
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(target), mark]) for mark in "ab"]
    seen = set()
    while any(w.poll() is None for w in writers):
        data = json.loads(target.read_text())  # a torn file would not parse
        assert data["writer"] == "none" or data["pad"] == data["writer"] * 300000
        seen.add(data["writer"])
    assert [w.wait() for w in writers] == [0, 0]
    assert json.loads(target.read_text())["writer"] in "ab"
    assert seen - {"none"}, "the reader never saw a finished write"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]  # no temp files left


LAYER = """
import sys
from pathlib import Path
from pytest_spike.envs import layer
print(layer.build_layer(Path(sys.argv[1])))
"""


def test_two_runs_sharing_a_cache_build_the_child_layer_once(tmp_path: Path) -> None:
    procs = [
        subprocess.Popen([sys.executable, "-c", LAYER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    paths = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert [p.returncode for p in procs] == [0, 0]
    (layer,) = paths
    assert (Path(layer) / "spike-layer.json").is_file()
    assert (Path(layer) / "pytest_spike" / "_core" / "runner.py").is_file()
    leftovers = [p.name for p in (tmp_path / "layers").iterdir() if p.name.startswith(".layer-")]
    assert leftovers == []  # a half-built copy is never left to be taken for a layer


# -- xdist ----------------------------------------------------------------------------------------


def test_four_xdist_workers_give_the_same_scorecard(pytester: pytest.Pytester, spike_site: Path) -> None:
    pytester.makepyfile(test_spike=SPIKE_FILE)
    args = ["--spike", "--spike-candidate=brokenpkg", "-p", "no:cacheprovider"]
    single = pytester.runpytest(*args, "--spike-json=one.json")
    multi = pytester.runpytest_subprocess(*args, "-n", "4", "--spike-json=four.json")
    assert single.ret == multi.ret == 1

    def essence(path: str) -> list:
        return [
            (
                name,
                c["version"],
                c["level"],
                c["score"],
                sorted(f["code"] for f in c["findings"]),
                sorted((p["nodeid"], p["outcome"]) for p in c["probes"]),
            )
            for name, c in candidates(pytester.path / path).items()
        ]

    assert essence("one.json") == essence("four.json")
    assert {c for c, *_ in essence("four.json")} == {"goodpkg", "warnpkg", "brokenpkg"}
    assert multi.stdout.str().count("spike scorecard") == 1


# -- names and paths --------------------------------------------------------------------------------

ODD = "proj dir ü $(touch pwned) ; `touch pwned2` & 'q\" #"


def test_odd_paths_and_names_never_reach_a_shell(pytester: pytest.Pytester, spike_site: Path) -> None:
    project = pytester.path / ODD
    project.mkdir()
    (project / "test_spike.py").write_text(SPIKE_FILE)
    result = pytester.runpytest(
        str(project),
        "--spike",
        "--spike-probes=install,import,readme",
        f"--spike-json={project / 'out ü $(touch pwned3).json'}",
        f"--spike-cache-dir={project / 'cache $HOME'}",
    )
    found = candidates(project / "out ü $(touch pwned3).json")
    assert set(found) == {"goodpkg", "warnpkg"}
    assert "readme.failed" not in {f["code"] for f in found["goodpkg"]["findings"]}
    assert result.ret == 1  # the failing warnpkg test, nothing else
    bad = pytester.runpytest(
        "--spike", "--spike-candidate=goodpkg; touch pwned4", "--spike-candidate=$(touch pwned5)"
    )
    assert bad.ret != 0
    assert "goodpkg; touch pwned4" in bad.stdout.str() + bad.stderr.str()
    assert not [p for p in pytester.path.rglob("pwned*")]
    assert not list(Path.cwd().glob("pwned*"))


def test_no_shell_is_ever_built() -> None:
    """Untrusted names and paths only ever travel in argument lists."""
    shellish = re.compile(r"shell\s*=\s*True|os\.system\(|os\.popen\(|os\.exec\w*p\w*\(|shlex\.join\(")
    offenders = [
        f"{p.relative_to(SRC)}:{n}"
        for p in sorted(SRC.rglob("*.py"))
        for n, line in enumerate(p.read_text("utf-8").splitlines(), 1)
        if shellish.search(line)
    ]
    assert offenders == []


# -- a broken index --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["500", "garbage", "truncated"])
def test_a_broken_index_is_an_info_finding_and_poisons_nothing(
    pytester: pytest.Pytester, spike_site: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, mode: str
) -> None:
    for key, value in HERMETIC_ENV.items():
        monkeypatch.setenv(key, value)
    cache = tmp_path / "cache"
    args = [
        "--spike",
        "--spike-probes=signals",
        f"--spike-cache-dir={cache}",
        "--spike-json=r.json",
        "--spike-candidate=goodpkg",
    ]
    with IndexServer(tmp_path / "index") as index:
        index.add("goodpkg", "1.0", upload_time="2019-03-01", license="MIT")
        index.misbehave(mode)
        broken = pytester.runpytest(*args, f"--spike-index-url={index.url}")
        codes = {f["code"]: f for f in candidates(pytester.path / "r.json")["goodpkg"]["findings"]}
        assert set(codes) == {"signals.unchecked"}, codes
        assert codes["signals.unchecked"]["severity"] == "info"
        assert "\n" not in codes["signals.unchecked"]["message"]
        broken.assert_outcomes(skipped=1)  # no evidence either way: never "passed"
        asked = index.hits("/simple/goodpkg/")
        assert 1 <= asked <= 3, "retries must be bounded"
        index.behave()
        healthy = pytester.runpytest(*args, f"--spike-index-url={index.url}")
    after = {f["code"] for f in candidates(pytester.path / "r.json")["goodpkg"]["findings"]}
    assert "signals.stale" in after and "signals.unchecked" not in after, "a bad answer was cached"
    healthy.assert_outcomes(passed=1)


# -- results files -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, message",
    [
        (
            '{"schema": "pytest-spike/1", "candidates": [{"na',
            "not a JSON results file*was the run cut short?",
        ),
        ("<html>502 Bad Gateway</html>", "not a JSON results file*"),
        ("[1, 2]", "not a pytest-spike results file (top level is not an object)"),
        (
            '{"schema": "pytest-spike/0", "candidates": []}',
            "results schema 'pytest-spike/0' is not *: re-run the spike with this version of pytest-spike",
        ),
        (
            '{"schema": "pytest-spike/7", "candidates": []}',
            "*'pytest-spike/7'*written by a newer pytest-spike; upgrade pytest-spike to read it",
        ),
        ('{"schema": "junit/1"}', "*'junit/1'*not a pytest-spike results file"),
        (json.dumps({"schema": SCHEMA}), "malformed results file (KeyError: 'candidates')"),
    ],
    ids=["truncated", "not-json", "not-object", "older", "newer", "foreign", "no-candidates"],
)
def test_show_refuses_a_bad_results_file_with_one_line(
    pytester: pytest.Pytester, text: str, message: str
) -> None:
    (pytester.path / "r.json").write_text(text)
    shown = pytester.run(sys.executable, "-m", "pytest_spike", "show", "r.json")
    assert shown.ret == 2
    assert len(shown.stderr.lines) == 1 and shown.stdout.lines == []
    shown.stderr.fnmatch_lines([f"pytest-spike: error: r.json: {message}"])
