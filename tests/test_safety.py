"""Faults a spike meets from the code it runs: crashes, floods, stray children, credentials.

Real fixture packages (built here, installed by pip), real subprocesses, no mocks. These run
**unboxed** (``--spike-sandbox off``, or where no bubblewrap runs): the credential scrub and
process-group containment that remain there. The box itself is attacked in
tests/_core/test_sandbox.py and tests/test_box_attacks.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pkgfactory import FakeProject, build_sdist, build_wheel, pip_install_target

from pytest_spike._core import runner, sandbox
from pytest_spike.data.budgets import TimeboxExceeded, alarm
from pytest_spike.envs import layer
from pytest_spike.upstream.run import SpikeUpstream

#: Credentials set in the environment of every run below; none may reach candidate code.
SECRETS = {
    "GITHUB_TOKEN": "s3cr3t-token",
    "AWS_ACCESS_KEY_ID": "s3cr3t-aws-id",
    "AWS_SECRET_ACCESS_KEY": "s3cr3t-aws-key",
    "DB_PASSWORD": "s3cr3t-password",
    "APP_SECRET": "s3cr3t-app",
    "SIGNING_KEY": "s3cr3t-key",
}
#: The PYTHONPATH this session started with (a source checkout's ``src``), kept for children.
OUTER_PYTHONPATH = os.environ.get("PYTHONPATH", "")
#: Set beside the secrets: a dump without it did not see our environment at all.
CANARY = ("SPIKE_SAFETY_CANARY", "canary-visible")

ENV_DUMPER = """\
import json, os

def dump(where):
    folder = os.environ.get("SPIKE_SAFETY_DUMPS")
    if folder:
        with open(os.path.join(folder, "%s-%d.json" % (where, os.getpid())), "w") as handle:
            json.dump(dict(os.environ), handle)

dump("import")
"""

PROJECTS = [
    FakeProject("exitpkg", "1.0", files={"exitpkg/__init__.py": "import os\nos._exit(3)\n"}),
    FakeProject(
        "loudpkg",
        "1.0",
        files={
            "loudpkg/__init__.py": "import sys\n"
            "sys.stdout.write('o' * 3000000)  # megabytes, and no newline at the end\n"
            "sys.stdout.flush()\n"
            "sys.stderr.write('e' * 3000000)\n"
            "raise ImportError('loudpkg ' + 'x' * 1000000 + ' needs libloud')\n"
        },
    ),
    FakeProject(
        "warnfloodpkg",
        "1.0",
        files={
            "warnfloodpkg/__init__.py": "import warnings\n"
            "for i in range(5000):\n"
            "    warnings.warn('warnfloodpkg thing %d %s' % (i, 'w' * 200), UserWarning)\n"
        },
    ),
    FakeProject(
        "forkpkg",
        "1.0",
        files={
            # The child outlives the import and keeps the output pipes open.
            "forkpkg/__init__.py": "import os, time\n"
            "pid = os.fork()\n"
            "if pid == 0:\n"
            "    time.sleep(60)\n"
            "    os._exit(0)\n"
            "with open(os.environ['SPIKE_SAFETY_PIDFILE'], 'w') as handle:\n"
            "    handle.write(str(pid))\n"
        },
    ),
    FakeProject(
        "sleeppkg",
        "1.0",
        files={
            "sleeppkg/__init__.py": "import os, time\n"
            "with open(os.environ['SPIKE_SAFETY_PIDFILE'], 'w') as handle:\n"
            "    handle.write(str(os.getpid()))\n"
            "time.sleep(60)\n"
        },
    ),
    FakeProject(
        "envpkg",
        "1.0",
        files={"envpkg/__init__.py": ENV_DUMPER},
        readme="# envpkg\n\n```python\nimport envpkg\nenvpkg.dump('readme')\n```\n",
        sdist_files={"tests/test_env.py": "import envpkg\n\ndef test_env():\n    envpkg.dump('upstream')\n"},
    ),
]


@pytest.fixture(autouse=True)
def _unboxed(request: pytest.FixtureRequest) -> Iterator[None]:
    """The unboxed path: in this process and in every pytest run these tests start."""
    if "pytester" in request.fixturenames:
        request.getfixturevalue("pytester").makeini("[pytest]\nspike_sandbox = off\n")
    with sandbox.use(sandbox.Policy(mode="off")):
        yield


@pytest.fixture(scope="module")
def safety_wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture packages above, installed by pip into a folder of their own."""
    root = tmp_path_factory.mktemp("safety-site")
    wheels = [build_wheel(p, root / "wheels") for p in PROJECTS]
    pip_install_target(wheels, root / "site")
    return root


@pytest.fixture
def safety_site(
    safety_wheels: Path, spike_site: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Path:
    """conftest's ``spike_site`` plus the packages above, the secrets and a dump folder."""
    site = safety_wheels / "site"
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(site), str(spike_site), OUTER_PYTHONPATH]))
    )
    for name, value in {**SECRETS, CANARY[0]: CANARY[1]}.items():
        monkeypatch.setenv(name, value)
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    monkeypatch.setenv("SPIKE_SAFETY_DUMPS", str(dumps))
    return site


def findings(path: Path, name: str) -> dict[str, list[dict]]:
    data = json.loads(path.read_text())
    cand = next(c for c in data["candidates"] if c["name"] == name)
    found: dict[str, list[dict]] = {}
    for finding in cand["findings"]:
        found.setdefault(finding["code"], []).append(finding)
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` is a running process (a zombie waiting for its reaper is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return not Path("/proc").is_dir()
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def assert_dead_soon(pid: int) -> None:
    deadline = time.monotonic() + 3
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pid), f"process {pid} outlived the probe that started it"


def assert_no_secrets(dumps: Path, expected: set[str]) -> None:
    """Every dump saw our environment (the canary), none saw a credential."""
    files = sorted(dumps.glob("*.json"))
    assert {f.name.split("-")[0] for f in files} == expected, [f.name for f in files]
    for dump in files:
        env = json.loads(dump.read_text())
        assert env.get(CANARY[0]) == CANARY[1], f"{dump.name} did not see the environment"
        leaked = sorted(k for k in SECRETS if k in env)
        assert not leaked, f"{dump.name} saw {leaked}"
        assert "s3cr3t" not in dump.read_text()


# -- the import probe --------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_import_that_exits_floods_or_forks_is_contained(
    pytester: pytest.Pytester, safety_site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pidfile = tmp_path / "grandchild.pid"
    monkeypatch.setenv("SPIKE_SAFETY_PIDFILE", str(pidfile))
    started = time.monotonic()
    result = pytester.runpytest(
        "--spike",
        "--spike-probes=import",
        "--spike-probe-timeout=20",
        "--spike-json=r.json",
        *[f"--spike-candidate={name}" for name in ("exitpkg", "loudpkg", "warnfloodpkg", "forkpkg")],
    )
    took = time.monotonic() - started
    out = pytester.path / "r.json"

    exited = findings(out, "exitpkg")["import.crashed"][0]
    assert exited["severity"] == "critical" and "exit code 3" in exited["message"]

    loud = findings(out, "loudpkg")
    assert "import.crashed" not in loud, "the report after unterminated output was lost"
    failed = loud["import.failed"][0]
    assert failed["message"].startswith("import loudpkg failed: ") and len(failed["message"]) < 2100
    assert failed["evidence"]["excerpt"].endswith("x needs libloud")
    assert out.stat().st_size < 200_000, "megabytes of candidate output reached the results"

    flood = findings(out, "warnfloodpkg")
    assert "import.crashed" not in flood, "a report longer than the output cap was lost"
    assert 0 < len(flood["import.warning"]) <= 50

    assert not findings(out, "forkpkg").get("import.crashed")
    assert_dead_soon(int(pidfile.read_text()))
    assert took < 15, f"the session waited {took:.1f}s for a stray child"
    result.stdout.no_fnmatch_line("*Traceback*")
    result.stdout.no_fnmatch_line("*INTERNALERROR*")


def test_an_interrupt_while_waiting_kills_the_childs_group(tmp_path: Path) -> None:
    """Ctrl-C, SIGTERM-as-interrupt or a time box ringing inside runner.run."""
    pidfile = tmp_path / "pid"
    code = (
        "import os, sys, time\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    time.sleep(60)\n"
        "    os._exit(0)\n"
        "open(sys.argv[1], 'w').write('%d %d' % (os.getpid(), pid))\n"
        "time.sleep(60)\n"
    )
    if not hasattr(os, "fork"):
        pytest.skip("needs os.fork")
    with alarm(1.0, "box ran out") as usable:
        if not usable:
            pytest.skip("the timer signal needs the main thread")
        with pytest.raises(TimeboxExceeded):
            runner.run([sys.executable, "-c", code, str(pidfile)], timeout=30)
    for pid in pidfile.read_text().split():
        assert_dead_soon(int(pid))


# -- credentials -------------------------------------------------------------------------------


def test_credentials_never_reach_the_import_probe_or_readme_blocks(
    pytester: pytest.Pytester, safety_site: Path
) -> None:
    result = pytester.runpytest(
        "--spike", "--spike-probes=import,readme", "--spike-candidate=envpkg", "--spike-json=r.json"
    )
    result.assert_outcomes(passed=2)
    assert_no_secrets(Path(os.environ["SPIKE_SAFETY_DUMPS"]), {"import", "readme"})


def test_credentials_never_reach_upstream_tests(
    safety_site: Path, safety_wheels: Path, tmp_path: Path
) -> None:
    sdist = build_sdist(next(p for p in PROJECTS if p.name == "envpkg"), tmp_path / "dist")
    spike = SpikeUpstream(
        sys.executable,
        "envpkg",
        "1.0",
        sdist,
        tmp_path / "work",
        30.0,
        extra_env={"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
    )
    result = spike.probe()
    assert [o.outcome for o in result.outcomes.values()] == ["passed"], result
    # the test imported envpkg (one dump) and called dump (another), both in the child
    assert_no_secrets(Path(os.environ["SPIKE_SAFETY_DUMPS"]), {"import", "upstream"})


def test_credentials_never_reach_user_tests_rerun_by_the_child_pytest(
    safety_site: Path, tmp_path: Path
) -> None:
    from importlib import metadata

    try:
        metadata.distribution("pytest-spike")
    except metadata.PackageNotFoundError:
        pytest.skip("the child pytest loads pytest-spike by its entry point: install it")
    project = tmp_path / "proj"
    project.mkdir()
    (project / "test_user.py").write_text(
        "from pytest_spike import spike\n\n"
        "@spike.candidate('envpkg')\n"
        "@spike.hello_world\n"
        "def test_dump():\n"
        "    import envpkg\n"
        "    envpkg.dump('child')\n"
    )
    layer_dir = tmp_path / "layer"  # empty: this interpreter has pytest already
    layer_dir.mkdir()
    found = layer.run_child(
        sys.executable,
        layer_dir,
        [str(project / "test_user.py") + "::test_dump"],
        [
            "--spike",
            "--spike-probes=none",
            "--spike-isolation=never",
            "-p",
            "no:cacheprovider",
            "-q",
            "--rootdir",
            str(project),
        ],
        cwd=project,
        timeout=60,
    )
    assert [r.outcome for r in found.values()] == ["passed"], found
    assert_no_secrets(Path(os.environ["SPIKE_SAFETY_DUMPS"]), {"import", "child"})


def test_the_scrubbed_names() -> None:
    for name in [*SECRETS, "NPM_TOKEN", "my_api_key", "Azure_Client_Secret", "PGPASSWORD", "SSH_AUTH_SOCK"]:
        assert runner.is_secret(name), name
    for name in ["PATH", "HOME", "PYTHONPATH", "LANG", "KEYBOARD", "TOKENIZERS_PARALLELISM", CANARY[0]]:
        assert not runner.is_secret(name), name


# -- upstream tests that read stdin or wait on the network --------------------------------------


def test_upstream_tests_reading_stdin_or_waiting_on_a_socket(safety_site: Path, tmp_path: Path) -> None:
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts the connection in the kernel, never answers
    port = listener.getsockname()[1]
    project = FakeProject(
        "envpkg",
        "1.0",
        files={"envpkg/__init__.py": ""},
        sdist_files={
            "tests/test_stdin.py": "import sys\n\ndef test_stdin():\n    sys.stdin.read()\n",
            "tests/test_socket.py": "import socket\n\ndef test_socket():\n"
            f"    socket.create_connection(('127.0.0.1', {port})).recv(1)\n",
        },
    )
    sdist = build_sdist(project, tmp_path / "dist")
    env = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    try:
        stdin_run = SpikeUpstream(
            sys.executable, "envpkg", "1.0", sdist, tmp_path / "w1", 20.0, extra_env=env
        )
        stdin_result = stdin_run.run(["tests/test_stdin.py::test_stdin"])
        socket_run = SpikeUpstream(
            sys.executable, "envpkg", "1.0", sdist, tmp_path / "w2", 30.0, extra_env=env
        )
        assert socket_run.test_files() and socket_run.target_info()  # set up before the clock runs
        socket_run.timeout = 5.0  # a loaded 2-core runner needs ~2 s to start the child
        started = time.monotonic()
        socket_result = socket_run.run(["tests/test_socket.py::test_socket"])
        took = time.monotonic() - started
    finally:
        listener.close()
    (stdin_outcome,) = stdin_result.outcomes.values()
    assert stdin_outcome.outcome == "failed"
    assert "reading from stdin" in stdin_outcome.message
    (socket_outcome,) = socket_result.outcomes.values()
    assert socket_outcome.outcome == "error"
    assert socket_outcome.message == "did not run: timed out after 5.0s"
    assert took < 20  # cut by the time box, not by the socket (which never answers)


# -- interrupted runs --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "signum",
    [
        pytest.param(signal.SIGINT, id="SIGINT"),
        pytest.param(signal.SIGTERM, id="SIGTERM"),
    ],
)
def test_an_interrupted_run_writes_valid_incomplete_results(
    pytester: pytest.Pytester, safety_site: Path, tmp_path: Path, signum: int
) -> None:
    pidfile = tmp_path / "probe.pid"
    env = {**os.environ, "SPIKE_SAFETY_PIDFILE": str(pidfile)}
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "--spike",
        "--spike-candidate=goodpkg",
        "--spike-candidate=sleeppkg",
        "--spike-probe-timeout=60",
        "--spike-json=r.json",
    ]
    proc = subprocess.Popen(
        argv,
        cwd=pytester.path,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while not (pidfile.is_file() and pidfile.read_text()) and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()[0].decode()
            time.sleep(0.05)
        assert pidfile.is_file(), "the sleeping import never started"
        proc.send_signal(signum)
        output = proc.communicate(timeout=15)[0].decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    probe_pid = int(pidfile.read_text())
    try:
        assert proc.returncode == pytest.ExitCode.INTERRUPTED, output
        data = json.loads((pytester.path / "r.json").read_text())
        assert data["complete"] is False
        assert [c["name"] for c in data["candidates"]][:1] == ["goodpkg"]
        assert "the run was interrupted: these results are incomplete" in output
        assert_dead_soon(probe_pid)
    finally:
        if alive(probe_pid):  # a failed run must not leave its sleeper behind
            os.kill(probe_pid, signal.SIGKILL)


def test_sigterm_becomes_an_interrupt_once() -> None:
    from pytest_spike._core.interrupt import sigterm_as_interrupt

    seen: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        restore = sigterm_as_interrupt()
        with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)  # the handler runs between bytecodes; never reached
        os.kill(os.getpid(), signal.SIGTERM)  # the second one gets the handler from before
        assert seen == [signal.SIGTERM]
        restore()
        restore = sigterm_as_interrupt()
        restore()
        os.kill(os.getpid(), signal.SIGTERM)
        assert seen == [signal.SIGTERM] * 2
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_credentials_never_reach_a_candidate_in_its_own_environment(
    pytester: pytest.Pytester, safety_site: Path, safety_wheels: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The built-in probes and the user test re-run by the child pytest, end to end."""
    # Candidate environments come from the fixture wheels alone, and nothing on PYTHONPATH
    # may stand in for what the environment installed.
    monkeypatch.setenv("PYTHONPATH", OUTER_PYTHONPATH)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(safety_wheels / "wheels"))
    for name in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL"):
        monkeypatch.delenv(name, raising=False)
    pytester.makepyfile(
        "from pytest_spike import spike\n\n"
        "pytestmark = spike.candidate('envpkg')\n\n"
        "@spike.hello_world\n"
        "def test_dump():\n"
        "    import envpkg\n"
        "    envpkg.dump('child')\n"
    )
    result = pytester.runpytest_subprocess(
        "--spike",
        "--spike-isolation=always",
        "--spike-probes=install,import",
        # environments, layer and venv scripts under a path no shell may see unquoted
        f"--spike-cache-dir={pytester.path / 'cache ü $(touch pwned)'}",
        "--spike-json=r.json",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=3)
    install = next(
        p
        for p in json.loads((pytester.path / "r.json").read_text())["candidates"][0]["probes"]
        if p["kind"] == "install"
    )
    assert install["details"].get("env"), "the candidate was not given an environment of its own"
    assert_no_secrets(Path(os.environ["SPIKE_SAFETY_DUMPS"]), {"import", "child"})
    assert not list(pytester.path.rglob("pwned")) and not list(Path.cwd().glob("pwned"))
