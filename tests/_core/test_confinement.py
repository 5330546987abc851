"""A step's limits are in place before its command runs, however it is launched.

Two launches: ``/bin/sh`` (with its ``ulimit``, or ``prlimit``) before the command (where the
host has them, so ``subprocess`` may use vfork), and a preexec function between fork and exec
(elsewhere).
Both must join the step's cgroups and set its rlimits before the step's first instruction,
fail the step when they cannot, and never read the step's arguments as shell code.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from pytest_spike._core import runner, sandbox

READ_LIMITS = (
    "import json, resource\n"
    "print(json.dumps({n: resource.getrlimit(getattr(resource, 'RLIMIT_' + n))[0] for n in ('FSIZE', 'CORE')}))"
)
BOXED = sandbox.status(sandbox.Policy()).boxed


@pytest.mark.parametrize("mode", ["off", "require"])
def test_a_step_runs_with_its_limits(launch: str, mode: str) -> None:
    if mode == "require" and not BOXED:
        pytest.skip("no box here")
    limits = sandbox.Limits(file_mb=3)
    with sandbox.use(sandbox.Policy(mode=mode, limits=limits)):
        done = runner.run([sys.executable, "-c", READ_LIMITS], timeout=60, box=sandbox.Box("import"))
    assert done.ok, done.stderr
    assert json.loads(done.stdout) == {"FSIZE": 3 * 1024 * 1024, "CORE": 0}
    assert done.argv == (sys.executable, "-c", READ_LIMITS)  # the caller's command, not a launcher's
    assert done.sandbox == ("unboxed" if mode == "off" else "boxed")


def test_the_launcher_joins_the_steps_cgroups_first() -> None:
    confinement = sandbox.Confinement(sandbox.Limits())
    try:
        prefix = confinement.launcher()
        if prefix is None or not confinement.groups:
            pytest.skip("no launcher, or no cgroup may be made here")
        done = runner.run([*prefix, "/bin/cat", "/proc/self/cgroup"], timeout=60)
        assert done.ok, done.stderr
        assert all(group.name in done.stdout for group in confinement.groups), done.stdout
    finally:
        confinement.close()


@pytest.mark.parametrize("mode", ["off", "require"])
def test_a_cgroup_that_cannot_be_joined_fails_the_step_before_it_runs(
    launch: str, mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if mode == "require" and not BOXED:
        pytest.skip("no box here")
    gone = tmp_path / "removed-cgroup"  # as a cgroup removed under the step's feet
    monkeypatch.setattr(sandbox, "_make_cgroups", lambda limits: [gone])
    marker = tmp_path / "ran"
    with sandbox.use(sandbox.Policy(mode=mode)):
        done = runner.run(
            [sys.executable, "-c", f"open({str(marker)!r}, 'w')"],
            timeout=60,
            box=sandbox.Box("import", write=(str(tmp_path),)),
        )
    assert not done.ok
    assert not marker.exists()


#: Run as a user whose own hard file-size limit (1 MB) is below the step's (3 MB): raising it
#: is refused, so the step must not start (at 1 MB it starts). No launcher for "preexec", no
#: ``ulimit`` for "sh+prlimit".
CANNOT_RAISE = """
import json, os, resource, sys
from pytest_spike._core import runner, sandbox
if sys.argv[2] == "preexec":
    sandbox.Confinement.launcher = lambda self: None
if sys.argv[2] == "sh+prlimit":
    sandbox._shell_sets_limits = lambda shell, memory, nproc: False
if sys.argv[2] == "sh+ulimit":  # this very user's launcher sets the limits with ulimit
    probe = sandbox.Confinement(sandbox.Limits(file_mb=int(sys.argv[3])))
    assert not any(arg.endswith("prlimit") for arg in probe.launcher() or ["prlimit"]), "no ulimit"
    probe.close()
resource.setrlimit(resource.RLIMIT_FSIZE, (1024 * 1024, 1024 * 1024))
marker = os.path.join(sys.argv[1], "ran")
with sandbox.use(sandbox.Policy(mode="off", limits=sandbox.Limits(file_mb=int(sys.argv[3])))):
    done = runner.run(["/bin/sh", "-c", ': > "$0"', marker], timeout=60, box=sandbox.Box("x"))
print(json.dumps([done.ok, done.returncode, os.path.exists(marker), done.stderr[-300:]]))
"""


def _hidden_from_others(paths: list[str]) -> str | None:
    """The first folder on the way to ``paths`` that other users cannot enter (a clone in
    ``mktemp -d``'s 0700 folder), else None."""
    for path in paths:
        folder = Path(path).resolve()
        for each in [*reversed(folder.parents), folder]:
            if not each.stat().st_mode & 0o001:
                return str(each)
    return None


def test_limits_that_cannot_be_set_fail_the_step_before_it_runs(launch: str) -> None:
    drop: list[str] = []
    if os.getuid() == 0:  # root may raise any limit: run as nobody, without capabilities
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("root, and no setpriv to run as another user")
        drop = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
        hidden = _hidden_from_others([sys.prefix, os.path.dirname(sandbox.__file__)])
        if hidden:
            pytest.skip(f"nobody (uid 65534) cannot read {hidden}: this checkout's folder is private")
    found = {}
    for file_mb in (3, 1):
        where = tempfile.mkdtemp(prefix="spike-limits-")
        try:
            os.chmod(where, 0o777)
            done = subprocess.run(
                [*drop, sys.executable, "-c", CANNOT_RAISE, where, launch, str(file_mb)],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert done.returncode == 0, done.stderr
            found[file_mb] = json.loads(done.stdout)
        finally:
            shutil.rmtree(where, ignore_errors=True)
    ok, code, ran, said = found[3]
    assert (ok, ran) == (False, False), (code, said)
    assert found[1][:3] == [True, 0, True], found[1]  # the same step within the user's limit runs


HOSTILE_ARGS = [
    "$(touch {m})",
    "`touch {m}`",
    "; touch {m}",
    "' && touch {m} '",
    '"$@"',
    "a\ntouch {m}",
    "--",
]


def test_the_steps_arguments_are_never_shell_code(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    args = [arg.format(m=marker) for arg in HOSTILE_ARGS]
    with sandbox.use(sandbox.Policy(mode="off")):
        done = runner.run(
            [sys.executable, "-c", "import json, sys; print(json.dumps(sys.argv[1:]))", *args],
            timeout=60,
            box=sandbox.Box("import"),
        )
    assert done.ok, done.stderr
    assert json.loads(done.stdout) == args
    assert not marker.exists()


def test_the_cgroup_paths_are_quoted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "pwned"  # where the touch would land: the step runs in tmp_path
    group = tmp_path / "a b'c$(touch pwned)"  # a plain folder standing in for a cgroup
    group.mkdir()
    monkeypatch.setattr(sandbox, "_make_cgroups", lambda limits: [group])
    prefix = sandbox.Confinement(sandbox.Limits()).launcher()  # not closed: not a real cgroup
    if prefix is None:
        pytest.skip("no /bin/sh or prlimit here")
    pids: list[int] = []
    done = runner.run([*prefix, "/bin/true"], timeout=60, cwd=tmp_path, started=pids.append)
    assert done.ok, done.stderr
    assert (group / "cgroup.procs").read_text().split() == [str(pids[0])]  # the step's own pid
    assert not marker.exists()


def test_a_missing_command_still_says_so(launch: str) -> None:
    with sandbox.use(sandbox.Policy(mode="off")):
        done = runner.run(["/nonexistent/spike-tool", "x"], timeout=60, box=sandbox.Box("import"))
    assert done.returncode == 127
    assert "no such file" in done.stderr


def test_groups_a_killed_run_left_are_swept_and_live_ones_kept() -> None:
    confinement = sandbox.Confinement(sandbox.Limits())
    try:
        made = list(confinement.groups)
    finally:
        confinement.close()
    if not made:
        pytest.skip("no cgroup may be made here: nothing to leave behind")
    base = Path(made[0]).parent
    dead = next(pid for pid in range(4_000_000, 4_100_000) if not os.path.exists(f"/proc/{pid}"))
    left = base / f"pytest-spike-{dead}-7"
    live = base / f"pytest-spike-{os.getppid()}-7"  # a running process's: kept
    left.mkdir()
    live.mkdir()
    try:
        sandbox._sweep.cache_clear()
        sandbox.Confinement(sandbox.Limits()).close()
        assert not left.exists()
        assert live.exists()
    finally:
        for group in (left, live):
            if group.exists():
                group.rmdir()


@pytest.mark.skipif(not BOXED, reason="no box here")
def test_a_boxed_steps_peak_memory_is_the_boxs_or_none_never_bubblewraps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """wait4's rusage of a boxed step is bubblewrap's outer process (it exits before it
    reaps the box's init): a few MB whatever the step used. Only a cgroup measures the box;
    a host where none can be made (cgroup v2 without delegation, as on many CI runners)
    reports no peak memory rather than bubblewrap's."""
    grow = "x = bytearray(120 * 1024 * 1024)\nfor i in range(0, len(x), 4096): x[i] = 1"
    box = sandbox.Box("import")
    probe = sandbox.Confinement(sandbox.Limits())
    measures = probe.peak_memory_mb() is not None
    probe.close()
    with sandbox.use(sandbox.Policy(mode="require")):
        if measures:
            measured = runner.run([sys.executable, "-c", grow], timeout=60, box=box)
            assert measured.ok, measured.stderr
            assert measured.peak_memory_mb is not None and measured.peak_memory_mb >= 120
        monkeypatch.setattr(sandbox, "_make_cgroups", lambda limits: [])
        done = runner.run([sys.executable, "-c", grow], timeout=60, box=box)
    assert done.ok, done.stderr
    assert done.sandbox == "boxed"
    assert done.peak_memory_mb is None
