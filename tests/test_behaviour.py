"""What a hostile candidate tried, as findings: a decoy read by its build backend, a connect to
a 127.0.0.1 listener, a shell and a write into the project at import, a daemon left running.

Real bubblewrap, a real index on 127.0.0.1, real installs, no mocks: each behaviour gives its
``behaviour.*`` finding naming the file, address or program and the stage.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from indexserver import IndexServer
from pkgfactory import FakeProject, backend_from_sdist

from pytest_spike._core import sandbox
from pytest_spike.envs.manager import pip_index_settings

pytestmark = pytest.mark.skipif(
    not sandbox.status(sandbox.Policy()).boxed,
    reason=f"no box here: {sandbox.status(sandbox.Policy()).reason}",
)

# The credential theft of a hijacked release: read from C code (cat), not Python.
BACKEND = backend_from_sdist(
    "nosypkg", "1.0", before='os.spawnlp(os.P_WAIT, "cat", "cat", os.path.expanduser("~/.aws/credentials"))'
)

IMPORT_TIME = r"""
import os, socket, subprocess

def _phone_home():
    try:
        socket.create_connection(("127.0.0.1", %(port)d), timeout=1).close()
    except OSError:
        pass

def _shell():
    subprocess.run("echo hi", shell=True, stdout=subprocess.DEVNULL)

def _write():
    try:
        with open(%(target)r, "a") as handle:
            handle.write("# nosy\n")
    except OSError:
        pass

def _daemon():
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            import time
            time.sleep(30)
        os._exit(0)
    os.wait()

_phone_home()
_shell()
_write()
_daemon()
"""


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4)
    sock.settimeout(0.1)
    yield sock
    sock.close()


def _candidate(results: Path, name: str) -> dict[str, Any]:
    data = json.loads(results.read_text())
    for candidate in data["candidates"]:
        if candidate["name"] == name:
            found: dict[str, Any] = candidate
            return found
    raise AssertionError(f"{name} not in the results")


def _findings(results: Path, name: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = _candidate(results, name)["findings"]
    return found


def test_what_a_hostile_candidate_tried_is_a_finding_at_each_stage(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, listener: socket.socket
) -> None:
    project = pytester.path
    port = listener.getsockname()[1]
    target = str(project / "conftest.py")
    nosy = FakeProject(
        "nosypkg",
        "1.0",
        files={"nosypkg/__init__.py": IMPORT_TIME % {"port": port, "target": target}},
        sdist_files={
            "pyproject.toml": '[build-system]\nrequires = []\nbuild-backend = "nosybackend"\nbackend-path = ["."]\n',
            "nosybackend.py": BACKEND,
        },
    )
    results = tmp_path / "r.json"
    with IndexServer(tmp_path / "index") as index:
        index.add(nosy, wheel=False)
        index.add("goodpkg", "1.0")
        extra = pip_index_settings().get("extra-index-url", "")
        monkeypatch.setenv("PIP_EXTRA_INDEX_URL", f"{index.url}/ {extra}".strip())
        run = pytester.runpytest_subprocess(
            "--spike",
            "--spike-isolation=always",
            "--spike-candidate=nosypkg",
            "--spike-candidate=goodpkg",
            "--spike-probes=install,import",
            f"--spike-index-url={index.url}",
            f"--spike-cache-dir={tmp_path / 'cache'}",
            f"--spike-json={results}",
            "-p",
            "no:cacheprovider",
            timeout=600,
        )
    output = run.stdout.str()
    found = {
        (f["code"], f["evidence"].get("stage"), f["evidence"].get("what")): f
        for f in _findings(results, "nosypkg")
    }
    assert run.ret == 1, output

    secrets = found[("behaviour.secrets", "install", "~/.aws/credentials")]
    assert secrets["severity"] == "critical" and secrets["blame"] == "candidate"
    network = found[("behaviour.network", "import", f"127.0.0.1:{port}")]
    assert network["severity"] == "high"
    assert "nosypkg/__init__.py" in network["evidence"]["by"]
    shell = found[("behaviour.exec", "import", "/bin/sh")]
    assert shell["severity"] == "high" and "echo hi" in str(shell["message"])
    writes = found[("behaviour.writes", "import", target)]
    assert writes["severity"] == "high"
    daemon = [k for k in found if k[0] == "behaviour.persistence" and k[1] == "import"]
    assert daemon and found[daemon[0]]["severity"] == "high"
    # Nothing arrived, nothing was written: the box refused, the evidence kept the attempt.
    with pytest.raises(OSError):
        listener.accept()
    assert not Path(target).exists()
    # The healthy neighbour has no behaviour finding at all, and the card says so in one line.
    assert not [f for f in _findings(results, "goodpkg") if str(f["code"]).startswith("behaviour.")]
    assert "BLOCKED" in output
    nosy_probes = {p["kind"]: p for p in _candidate(results, "nosypkg")["probes"]}
    said = nosy_probes["install"]["details"]["behaviour"]["summary"]
    assert said.startswith("install: ran setup code, no network, secrets (~/.aws/credentials)"), said
    assert "behaviour: install: ran setup code" in " ".join(output.split())  # wrapped to the width
    assert _candidate(results, "nosypkg")["behaviour"].startswith("install: ran setup code")
    good = {p["kind"]: p for p in _candidate(results, "goodpkg")["probes"]}
    assert good["import"]["details"]["behaviour"]["summary"] == "import: 0 attempts"
