"""What an upgrade spike starts with the session: the new version's environment and the
child pytest's layer are built while the project's tests run, and stopped when the run is
interrupted. Real local index, real environments, real child pytests."""

from __future__ import annotations

import json
import shutil
import sys
import threading
import time
from concurrent.futures import Future
from pathlib import Path

import pytest
from backends import use_local_index
from pkgfactory import FakeProject, backend_from_sdist, build_sdist
from test_upgrade import local_index, old_site, project, to_two, upgrades  # noqa: F401  (fixtures)

from pytest_spike._core import sandbox
from pytest_spike.upgrade.ahead import Relay

BOXED = sandbox.status(sandbox.Policy()).boxed

#: A test of the project that passes only once the upgrade's environment (oldlib 2.0
#: installed) and the layer exist, waiting for them a bounded time: they are built while the
#: tests run. In the child pytest (the suite on the new version) it has nothing to wait for.
WAITS_FOR_THE_BUILDS = """
import os, time
from pathlib import Path

def test_the_builds_happen_while_the_tests_run():
    if os.environ.get("PYTEST_SPIKE_UPGRADE_CHILD"):
        return
    cache = Path(os.environ["AHEAD_CACHE"])
    deadline = time.monotonic() + 60
    env = layer = None
    while time.monotonic() < deadline and not (env and layer):
        env = next(cache.glob("envs/*/lib/python*/site-packages/oldlib-2.0.dist-info"), None)
        layers = cache / "layers"
        layer = layers.is_dir() and any(
            p.is_dir() and not p.name.startswith(".") for p in layers.iterdir()
        )
        time.sleep(0.02)
    assert env, "no environment with oldlib 2.0 was built while the tests ran"
    assert layer, "the child pytest's layer was not built while the tests ran"
"""

#: Interrupts the run (as Ctrl-C would) once the upgrade's environment build has begun.
INTERRUPTS = """
import os, time
from pathlib import Path

def test_interrupted():
    envs = Path(os.environ["AHEAD_CACHE"]) / "envs"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (envs.is_dir() and any(envs.iterdir())):
        time.sleep(0.005)
    raise KeyboardInterrupt
"""


def test_the_environment_and_the_layer_are_built_while_the_baseline_runs(
    project: pytest.Pytester,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cache = tmp_path / "cache"  # new: nothing built by an earlier test
    monkeypatch.setenv("AHEAD_CACHE", str(cache))
    project.makepyfile(test_waits=WAITS_FOR_THE_BUILDS)
    result = project.runpytest(*to_two(cache, "--spike-json=up.json"))
    result.assert_outcomes(passed=3, failed=1)
    [target] = upgrades(project)["targets"]
    assert target["version"] == "2.0" and target["compared"] == 3 and target["broken"] == 1
    # What the builds said while the tests ran is said after them: pytest's rows stay whole.
    lines = result.stdout.lines
    building = next(
        i for i, line in enumerate(lines) if "upgrade: building the environment for oldlib==2.0" in line
    )
    running = next(i for i, line in enumerate(lines) if "upgrade: running 4 tests on oldlib==2.0" in line)
    last_row = max(i for i, line in enumerate(lines) if line.endswith("[100%]"))
    assert last_row < building < running


#: oldlib 2.0 as an sdist whose build takes two minutes: the interrupt comes while it builds
#: (a wheel installed in ~0.1 s, sometimes before the interrupt reached the session).
SLOW_BUILD = FakeProject(
    "oldlib",
    "2.0",
    files={"oldlib/__init__.py": "def total(xs):\n    return sum(xs)\n"},
    sdist_files={
        "pyproject.toml": '[build-system]\nrequires = []\nbuild-backend = "slowbackend"\nbackend-path = ["."]\n',
        "slowbackend.py": backend_from_sdist("oldlib", "2.0", before="import time\ntime.sleep(120)"),
    },
)


def test_an_interrupted_run_builds_nothing_further_and_leaves_no_thread(
    project: pytest.Pytester,  # noqa: F811
    local_index: Path,  # noqa: F811
    old_site: Path,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slow = tmp_path / "slow-index"
    slow.mkdir()
    shutil.copy2(local_index / "oldlib-1.0-py3-none-any.whl", slow)
    build_sdist(SLOW_BUILD, slow)
    use_local_index(monkeypatch, slow, old_site)
    cache = tmp_path / "cache"
    monkeypatch.setenv("AHEAD_CACHE", str(cache))
    (project.path / "test_app.py").unlink()
    project.makepyfile(test_interrupts=INTERRUPTS)
    result = project.runpytest_inprocess(*to_two(cache), no_reraise_ctrlc=True)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert "spike upgrade" not in result.stdout.str()
    # The threads end (their installer was stopped, no build starts after it)...
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _upgrade_threads():
        time.sleep(0.05)
    assert not _upgrade_threads()
    # ...and no environment with the new version was completed after the interrupt.
    assert not list(cache.glob("envs/*/lib/python*/site-packages/oldlib-2.0.dist-info"))


def _upgrade_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("spike-upgrade")]


def test_the_relay_says_background_lines_when_the_session_thread_speaks() -> None:
    said: list[str] = []
    relay = Relay(said.append)
    worker = threading.Thread(target=lambda: [relay.put("built a"), relay.put("built b")])
    worker.start()
    worker.join()
    assert said == []  # nothing is written from another thread
    relay("running")
    assert said == ["built a", "built b", "running"]
    relay.put("built c")
    relay.flush()
    relay.flush()
    assert said == ["built a", "built b", "running", "built c"]


def test_the_relay_says_what_a_build_says_while_the_session_waits_for_it() -> None:
    said: list[str] = []
    relay = Relay(said.append)
    done: Future[str] = Future()
    go = threading.Event()

    def build() -> None:
        relay.put("building")
        go.wait(30)
        done.set_result("env")

    worker = threading.Thread(target=build)
    worker.start()
    # the line is said before the build ends: the waiting session says it as it comes
    deadline = time.monotonic() + 30
    waited: list[str] = []
    waiter = threading.Thread(target=lambda: waited.append(relay.wait(done)))
    waiter.start()
    while time.monotonic() < deadline and said != ["building"]:
        time.sleep(0.01)
    assert said == ["building"] and not waited
    go.set()
    waiter.join(30)
    worker.join(30)
    assert waited == ["env"]


#: With --spike-upgrade-overlap: the project's test waits (a bounded time) until the child
#: pytest on the new version is running, so the suites overlap whatever the machine's speed.
#: In the child it sleeps ``CHILD_SLEEP`` seconds (the box passes no variable of the test's).
WAITS_FOR_THE_CHILD = """
import os, time
from pathlib import Path

HERE = str(Path(__file__).resolve().parent).encode()

def _child_running():
    # this project's child (its --rootdir), not another test's that runs beside this one
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if b"pytest_spike.upgrade._child" in cmdline and HERE in cmdline:
            return True
    return False

CHILD_SLEEP = 0

def test_the_new_versions_suite_runs_meanwhile():
    if os.environ.get("PYTEST_SPIKE_UPGRADE_CHILD"):
        time.sleep(CHILD_SLEEP)
        return
    deadline = time.monotonic() + 60
    seen = _child_running()
    while time.monotonic() < deadline and not seen:
        time.sleep(0.02)
        seen = _child_running()
    # (seen once is enough: a quick child may be gone by the time of a second look)
    assert seen, "no child pytest ran while this run's tests ran"
"""


def _spans(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.skipif(not BOXED, reason="overlap needs the box")
def test_with_overlap_the_new_versions_suite_runs_while_the_baseline_runs(
    project: pytest.Pytester,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same outcomes as one after the other, the child started before the baseline
    ended; without the option the child waits for the baseline (the test would fail)."""
    spans = tmp_path / "timeline.jsonl"
    monkeypatch.setenv("PYTEST_SPIKE_TIMELINE", str(spans))
    project.makepyfile(test_meanwhile=WAITS_FOR_THE_CHILD)
    result = project.runpytest(*to_two(tmp_path / "cache", "--spike-json=up.json", "--spike-upgrade-overlap"))
    result.assert_outcomes(passed=3, failed=1)
    [target] = upgrades(project)["targets"]
    assert target["compared"] == 3 and target["broken"] == 1 and target["passes"] is False
    result.stdout.fnmatch_lines(["*upgrade: 4 tests on oldlib==2.0, started while this run's tests ran*"])
    rows = _spans(spans)
    [baseline] = [r for r in rows if r["what"] == "upgrade-baseline"]
    # the suite's child (the re-runs of what flipped come after the baseline, as before)
    [suite] = [r for r in rows if r.get("stage") == "tests" and r["thread"] == "spike-upgrade-suites"]
    assert suite["start"] < baseline["end"]


@pytest.mark.skipif(not BOXED, reason="overlap needs the box")
def test_a_suite_run_early_on_other_tests_than_the_baseline_runs_again(
    project: pytest.Pytester,  # noqa: F811
    tmp_path: Path,
) -> None:
    """-x stops the baseline at its first failure, before test_z_after; the early child ran
    every test collected: not the same tests, so the suite runs again on what the baseline
    ran."""
    project.makepyfile(test_a_meanwhile=WAITS_FOR_THE_CHILD, test_z_after="def test_after():\n    pass\n")
    result = project.runpytest(
        "-x", *to_two(tmp_path / "cache", "--spike-json=up.json", "--spike-upgrade-overlap")
    )
    result.assert_outcomes(passed=3, failed=1)  # test_z_after never ran
    result.stdout.fnmatch_lines(
        ["*upgrade: the suite run early on oldlib==2.0 ran other tests than this run: running them again*"]
    )
    result.stdout.fnmatch_lines(["*upgrade: running 4 tests on oldlib==2.0*"])
    [target] = upgrades(project)["targets"]
    assert target["compared"] == 3 and target["broken"] == 1  # test_after is not among them


@pytest.mark.skipif(not BOXED, reason="overlap needs the box")
def test_a_suite_run_early_is_held_to_the_limit_the_baselines_time_sets(
    project: pytest.Pytester,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib

    # The module the run imports (sys.modules'), not a package attribute an earlier in-process
    # run left behind when its modules were dropped.
    session = importlib.import_module("pytest_spike.upgrade.session")
    monkeypatch.setattr(session, "suite_limit", lambda probe_timeout, baseline_s: 2.0)
    project.makepyfile(test_meanwhile=WAITS_FOR_THE_CHILD.replace("CHILD_SLEEP = 0", "CHILD_SLEEP = 120"))
    started = time.monotonic()
    project.runpytest(
        *to_two(
            tmp_path / "cache",
            "--spike-json=up.json",
            "--spike-upgrade-overlap",
            "--spike-probes=none",
        )
    )
    assert time.monotonic() - started < 60  # the child's 120 s sleep was cut short
    [target] = upgrades(project)["targets"]
    [finding] = [f for f in target["findings"] if f["code"] == "upgrade.unchecked"]
    assert "ran past its time limit" in finding["message"], target["findings"]
    assert target["passes"] is None and target["compared"] == 0


def test_without_the_box_the_suites_do_not_overlap_and_the_run_says_so(
    project: pytest.Pytester,  # noqa: F811
    tmp_path: Path,
) -> None:
    result = project.runpytest(
        *to_two(tmp_path / "cache", "--spike-upgrade-overlap", "--spike-sandbox=off"), "-k", "not meanwhile"
    )
    result.stdout.fnmatch_lines(
        [
            "*--spike-upgrade-overlap is off without the box (bubblewrap)*the suites ran after this run's tests*"
        ]
    )
    result.stdout.fnmatch_lines(["*upgrade: running 3 tests on oldlib==2.0*"])


@pytest.mark.skipif(not BOXED, reason="overlap needs the box")
def test_an_interrupt_stops_the_suite_run_early(
    project: pytest.Pytester,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Ctrl-C while the early child runs (it would sleep two minutes): the run ends at once,
    and no thread of the upgrade (nor its child) is left."""
    waits = WAITS_FOR_THE_CHILD.replace("CHILD_SLEEP = 0", "CHILD_SLEEP = 120")
    waits += "\n\ndef test_then_ctrl_c():\n    raise KeyboardInterrupt\n"
    project.makepyfile(test_meanwhile=waits)
    started = time.monotonic()
    result = project.runpytest_inprocess(
        *to_two(tmp_path / "cache", "--spike-upgrade-overlap"), no_reraise_ctrlc=True
    )
    assert result.ret == pytest.ExitCode.INTERRUPTED
    # test_app's two and the test that found the child running (it fails otherwise)
    assert result.parseoutcomes().get("passed") == 3, result.stdout.str()[-2000:]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (_upgrade_threads() or _children_of(project.path)):
        time.sleep(0.05)
    assert not _upgrade_threads() and not _children_of(project.path)
    assert time.monotonic() - started < 60  # the child's two minutes were cut short


def _children_of(root: Path) -> list[str]:
    """The upgrade child pytests running for the project at ``root`` (their --rootdir)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if b"pytest_spike.upgrade._child" in cmdline and str(root.resolve()).encode() in cmdline:
            found.append(proc.name)
    return found


#: Passes only where the interpreter switches threads every 0.5 ms (in the child pytest,
#: a process of its own, nothing is asked of it).
SWITCHES_OFTEN = """
import os, sys

def test_the_builds_get_the_interpreter_back_soon():
    if not os.environ.get("PYTEST_SPIKE_UPGRADE_CHILD"):
        assert sys.getswitchinterval() == 0.0005
"""


def test_while_the_tests_run_beside_the_builds_threads_switch_often_and_after_as_before(
    project: pytest.Pytester,  # noqa: F811
    tmp_path: Path,
) -> None:
    """A building thread gives up the interpreter lock at each system call: beside a test
    that computes it waited up to 5 ms to take it back each time. While the tests run the
    interpreter switches every 0.5 ms; after them, as it did before."""
    before = sys.getswitchinterval()
    (project.path / "test_app.py").unlink()
    project.makepyfile(test_switches=SWITCHES_OFTEN)
    result = project.runpytest_inprocess(*to_two(tmp_path / "cache", "--spike-json=up.json"))
    result.assert_outcomes(passed=1)
    [target] = upgrades(project)["targets"]
    assert (target["version"], target["compared"], target["broken"]) == ("2.0", 1, 0)
    assert sys.getswitchinterval() == before
