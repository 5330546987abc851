"""What an upgrade spike starts with the session: the new version's environment and the
child pytest's layer are built while the project's tests run, and stopped when the run is
interrupted. Real local index, real environments, real child pytests."""

from __future__ import annotations

import shutil
import threading
import time
from concurrent.futures import Future
from pathlib import Path

import pytest
from backends import use_local_index
from pkgfactory import FakeProject, backend_from_sdist, build_sdist
from test_upgrade import local_index, old_site, project, to_two, upgrades  # noqa: F401  (fixtures)

from pytest_spike.upgrade.ahead import Relay

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
