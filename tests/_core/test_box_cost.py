"""What the box makes once per process and what it makes per step, with the real bubblewrap.

A step's HOME of decoys and its audit folder are made in memory where a tmpfs has room (files
made and removed on a busy disk cost a step tens of ms); the decoy watch still sees a read
there. The box's ``/etc`` is one bind of a per-process copy of the allowed files, made again
when a source changes, instead of one bind per file.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_spike._core import hostfiles, runner, sandbox
from pytest_spike.services import WORK_ROOM_MB, Services
from pytest_spike.settings import Settings

pytestmark = pytest.mark.skipif(
    not sandbox.status(sandbox.Policy()).boxed,
    reason=f"no box here: {sandbox.status(sandbox.Policy()).reason}",
)

#: Where the step's HOME and audit folder came from: the file system type and folder of the
#: mount at HOME (from the box's own mount table), and the audit folder's path.
WHERE = r"""
import os
for line in open("/proc/self/mountinfo"):
    before, _, after = line.partition(" - ")
    fields = before.split()
    if fields[4] == os.environ["HOME"]:
        print("home", after.split()[0], fields[3])
print("audit", os.environ["PYTEST_SPIKE_AUDIT"])
"""


@pytest.fixture
def fresh_scratch() -> Iterator[None]:
    """The scratch folder worked out again (it is looked at once per process)."""
    hostfiles.scratch.cache_clear()
    yield
    hostfiles.scratch.cache_clear()


def where(result: runner.RunResult) -> dict[str, list[str]]:
    assert result.ok, result.stderr
    return {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines()}


@pytest.mark.skipif(
    hostfiles.scratch(hostfiles.scratch_room(sandbox.Limits().memory_mb)) is None,
    reason="no tmpfs with room here",
)
def test_a_steps_home_and_audit_folder_are_made_in_a_tmpfs_with_room() -> None:
    done = runner.run([sys.executable, "-c", WHERE], timeout=60, box=sandbox.Box("import"))
    seen = where(done)
    folder = hostfiles.scratch(hostfiles.scratch_room(sandbox.Limits().memory_mb))
    assert seen["home"][0] == "tmpfs" and seen["home"][1].startswith("/spike-home-")
    assert seen["audit"][0].startswith(f"{folder}/spike-audit-")
    # ...and both are gone with the step.
    assert not os.path.exists(seen["audit"][0])
    assert not os.path.exists(str(folder) + seen["home"][1])


@pytest.mark.skipif(
    hostfiles.scratch(hostfiles.scratch_room(sandbox.Limits().memory_mb)) is None,
    reason="no tmpfs with room here",
)
def test_a_decoy_read_in_a_home_in_memory_is_seen_from_the_host() -> None:
    done = runner.run(
        ["/bin/sh", "-c", "cat ~/.aws/credentials >/dev/null"], timeout=60, box=sandbox.Box("readme")
    )
    assert done.ok, done.stderr
    assert done.decoys_read == (".aws/credentials",)


def test_without_a_tmpfs_with_room_the_home_is_made_in_the_temp_folder(
    fresh_scratch: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sandbox._etc.view()  # the process's /etc copy is made where it always is, not in tmp_path
    # A folder on the disk is no tmpfs; a tmpfs without the room asked for is not taken either.
    monkeypatch.setattr(hostfiles, "SCRATCH_CANDIDATES", (str(tmp_path),))
    assert hostfiles.scratch(0) is None
    hostfiles.scratch.cache_clear()
    monkeypatch.setattr(hostfiles, "SCRATCH_CANDIDATES", ("/dev/shm",))
    assert hostfiles.scratch(1 << 40) is None  # a TB of room
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(temp))
    hostfiles.scratch.cache_clear()
    monkeypatch.setattr(hostfiles, "SCRATCH_CANDIDATES", ())
    done = runner.run([sys.executable, "-c", WHERE], timeout=60, box=sandbox.Box("import"))
    seen = where(done)
    # (the mount's folder is given from the root of its file system)
    home = seen["home"][1]
    assert os.path.basename(home).startswith("spike-home-") and str(temp).endswith(os.path.dirname(home))
    assert seen["audit"][0].startswith(f"{temp}/spike-audit-")
    done = runner.run(["/bin/sh", "-c", "cat ~/.netrc"], timeout=60, box=sandbox.Box("readme"))
    assert done.decoys_read == (".netrc",)
    assert os.listdir(temp) == []  # removed with each step


@pytest.mark.parametrize("option", ["noexec", "noatime", "ro"])
def test_a_tmpfs_mounted_noexec_noatime_or_read_only_is_not_taken(option: str) -> None:
    # /dev/shm remounted in a mount namespace of the child's own, a bind remount: the flags of
    # that namespace's mount only (a plain remount,ro would make the file system read-only
    # for everyone); the host's mount is checked unchanged after.
    unshare = shutil.which("unshare")
    if unshare is None or "/dev/shm" not in Path("/proc/self/mounts").read_text():
        pytest.skip("no unshare or no /dev/shm here")
    code = "from pytest_spike._core import hostfiles; print(hostfiles.scratch(0))"
    remount = f"mount -o remount,bind,{option} /dev/shm || exit 99; exec {sys.executable} -c '{code}'"
    before = Path("/proc/self/mountinfo").read_text()
    done = subprocess.run(
        [unshare, "--mount", "--propagation", "private", "/bin/sh", "-c", remount],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode == 99 or done.stderr.startswith("unshare:"):  # refused (not root)
        pytest.skip(f"cannot remount /dev/shm in a mount namespace here: {done.stderr.strip()[-200:]}")
    assert (done.returncode, done.stdout.split()) == (0, ["None"]), done.stderr
    assert Path("/proc/self/mountinfo").read_text() == before


def test_what_a_killed_run_left_in_the_scratch_tmpfs_is_swept(fresh_scratch: None) -> None:
    folder = hostfiles.scratch(0)
    if folder is None:
        pytest.skip("no tmpfs with room here")
    dead = subprocess.Popen(["/bin/true"])  # a pid that no longer runs
    dead.wait()
    left = [
        Path(folder, f"{prefix}{dead.pid}-spiketest")
        for prefix in (hostfiles.HOME_PREFIX, hostfiles.AUDIT_PREFIX, hostfiles.WORK_PREFIX)
    ]
    live = Path(folder, f"{hostfiles.HOME_PREFIX}{os.getpid()}-spiketest")
    for path in (*left, live):
        (path / ".ssh").mkdir(parents=True)
    try:
        hostfiles.scratch.cache_clear()
        assert hostfiles.scratch(0) == folder
        assert not any(path.exists() for path in left)
        assert live.exists()  # this run's own
    finally:
        for path in (*left, live):
            shutil.rmtree(path, ignore_errors=True)


#: What a boxed step sees of its working folder and of the scratch tmpfs around it.
SEEN = r"""
import os, sys
print(open("tests/test_x.py").read().strip())
print(sorted(os.listdir(os.path.dirname(os.getcwd()))))
print(sorted(os.listdir(os.path.dirname(os.path.dirname(os.getcwd())))))
print(sorted(os.listdir(os.path.dirname(os.path.dirname(os.path.dirname(os.getcwd()))))))
try:
    open("tests/test_x.py", "a").write("planted")
except OSError as exc:
    print("refused", exc.errno)
"""


def test_a_runs_work_folder_is_made_in_the_scratch_tmpfs_and_a_step_sees_only_its_own_part(
    fresh_scratch: None, tmp_path: Path
) -> None:
    folder = hostfiles.scratch(WORK_ROOM_MB)
    if folder is None:
        pytest.skip("no tmpfs with room here")
    services = Services(Settings(cache_dir=tmp_path), rootdir=tmp_path)
    other = Path(tempfile.mkdtemp(prefix="spike-test-other-", dir=folder))  # another program's
    try:
        work = services.workdir()
        assert work.parent == Path(folder) and work.name.startswith(f"{hostfiles.WORK_PREFIX}{os.getpid()}-")
        run = work / "upstream-x" / "run"
        (run / "tests").mkdir(parents=True)
        (run / "tests" / "test_x.py").write_text("def test_x(): pass\n")
        (work / "readme-y").mkdir()
        done = runner.run([sys.executable, "-c", SEEN], timeout=60, cwd=str(run), box=sandbox.Box("readme"))
        assert done.ok, done.stderr
        lines = done.stdout.splitlines()
        # Its folder read-only; the run's other folders and the tmpfs's other folders out of sight.
        assert lines[:3] + lines[4:] == ["def test_x(): pass", "['run']", "['upstream-x']", "refused 30"]
        in_view = ast.literal_eval(lines[3])  # the tmpfs: this folder and the step's audit folder
        assert work.name in in_view and other.name not in in_view
        assert all(name.startswith((hostfiles.WORK_PREFIX, hostfiles.AUDIT_PREFIX)) for name in in_view)
        assert (run / "tests" / "test_x.py").read_text() == "def test_x(): pass\n"
    finally:
        services.close()
        other.rmdir()
    assert not work.exists()


def test_without_a_tmpfs_with_room_a_runs_work_folder_is_made_in_the_temp_folder(
    fresh_scratch: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(hostfiles, "SCRATCH_CANDIDATES", ())
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    services = Services(Settings(cache_dir=tmp_path / "cache"), rootdir=tmp_path)
    try:
        work = services.workdir()
        assert work.parent == tmp_path and work.name.startswith(f"{hostfiles.WORK_PREFIX}{os.getpid()}-")
    finally:
        services.close()


def test_the_room_asked_of_a_scratch_tmpfs_is_the_steps_memory_at_most() -> None:
    assert hostfiles.scratch_room(100) == 100
    half = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // (2 * 1024 * 1024)
    assert hostfiles.scratch_room(1 << 30) == half


#: The box's mounts at or under /etc, the digest of each file named, and what a write to /etc does.
ETC_SEEN = r"""
import hashlib, json, sys
mounts = [line.split()[4] for line in open("/proc/self/mountinfo")]
print(sum(m == "/etc" or m.startswith("/etc/") for m in mounts))
for name in json.loads(sys.argv[1]):
    print(name, hashlib.sha256(open(name, "rb").read()).hexdigest())
try:
    open("/etc/spike-was-here", "w")
    print("written")
except OSError as exc:
    print(exc.strerror)
"""


def etc_seen(*names: str, box: sandbox.Box | None = None) -> list[str]:
    # (named in JSON: a path in the argv would be bound by itself)
    done = runner.run(
        [sys.executable, "-c", ETC_SEEN, json.dumps(names)], timeout=60, box=box or sandbox.Box("import")
    )
    assert done.ok, done.stderr
    return done.stdout.splitlines()


def digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def hidden_here() -> list[str]:
    """The private-key folders of this host's /etc the box shows empty (a mount each)."""
    return [
        name
        for name in sandbox.ETC_HIDDEN
        if os.path.isdir(f"/etc/{name}")
        and not os.path.islink(f"/etc/{name}")
        and os.access(f"/etc/{name}", os.R_OK | os.X_OK)
    ]


def test_the_boxs_etc_is_one_bind_of_a_copy_read_only_with_the_allowed_folders_on_top() -> None:
    names = [f"/etc/{n}" for n in sandbox.ETC_ALLOWED]
    files = [p for p in names if os.path.isfile(p) and os.access(p, os.R_OK)]
    folders = [p for p in names if os.path.isdir(p)]
    if not files:
        pytest.skip("no allowed /etc file here")
    mounts, *digests, write = etc_seen(*files)
    # /etc itself, each allowed folder and each hidden one (a trust folder under /etc/ssl
    # may be bound again), not one mount per file
    least = len(folders) + 1 + len(hidden_here())
    assert least <= int(mounts) <= least + len(sandbox._TRUST_FILES)
    # every allowed file reads as the host's (its content, links followed, as a bind showed it)
    assert digests == [f"{p} {digest(p)}" for p in files]
    assert write == "Read-only file system"


def test_a_trust_folder_in_an_allowed_etc_folder_is_not_bound_again(monkeypatch: pytest.MonkeyPatch) -> None:
    if not os.path.isdir("/etc/ssl/certs"):
        pytest.skip("no /etc/ssl/certs here")
    monkeypatch.setenv("SSL_CERT_DIR", "/etc/ssl/certs")
    for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "PIP_CERT"):
        monkeypatch.delenv(name, raising=False)
    folders = [n for n in sandbox.ETC_ALLOWED if os.path.isdir(f"/etc/{n}")]
    mounts, _ = etc_seen()
    assert int(mounts) == len(folders) + 1 + len(hidden_here())


def test_a_trust_file_in_etc_outside_the_allow_list_is_still_in_view(monkeypatch: pytest.MonkeyPatch) -> None:
    # Its mount point is made in the copy (bubblewrap cannot make one in a read-only bind).
    found = [p for p in ("/etc/shells", "/etc/profile", "/etc/issue") if os.path.isfile(p)]
    if not found or os.path.basename(found[0]) in sandbox.ETC_ALLOWED:
        pytest.skip("no /etc file outside the allow-list here")
    monkeypatch.setenv("SSL_CERT_FILE", found[0])
    _, seen, _ = etc_seen(found[0])
    assert seen == f"{found[0]} {digest(found[0])}"


def test_the_copy_is_made_once_and_again_when_a_source_changes(tmp_path: Path) -> None:
    source = tmp_path / "etc"
    (source / "fonts").mkdir(parents=True)
    (source / "hosts").write_text("127.0.0.1 localhost\n")
    copy = hostfiles.EtcCopy(str(source), sandbox.ETC_ALLOWED)
    try:
        args, folder = copy.view()
        assert folder is not None
        assert args == ("--ro-bind", folder, "/etc", "--ro-bind", f"{source}/fonts", "/etc/fonts")
        assert copy.view() == (args, folder)  # nothing changed: the same copy
        assert (Path(folder) / "hosts").read_text() == "127.0.0.1 localhost\n"
        assert (Path(folder) / "fonts").is_dir() and not any((Path(folder) / "fonts").iterdir())
        (source / "hosts").write_text("127.0.0.1 localhost spike-host\n")
        again, newer = copy.view()
        assert newer is not None and newer != folder
        assert (Path(newer) / "hosts").read_text() == "127.0.0.1 localhost spike-host\n"
        assert Path(folder).is_dir()  # a step started before may still use it: kept until exit
    finally:
        copy.remove()
    assert not Path(folder).exists() and not Path(newer).exists()


def test_closing_a_steps_cgroups_kills_what_is_left_and_removes_them() -> None:
    confinement = sandbox.Confinement(sandbox.Limits())
    prefix = confinement.launcher()
    if not confinement.groups or prefix is None:
        confinement.close()
        pytest.skip("no cgroup may be made here, or no launcher")
    left = subprocess.Popen([*prefix, "/bin/sleep", "30"], stdin=subprocess.DEVNULL)
    try:
        for _ in range(500):  # until the launcher has joined the groups and exec'd sleep
            if str(left.pid) in (confinement.groups[0] / "cgroup.procs").read_text().split():
                break
            time.sleep(0.01)
        groups = list(confinement.groups)
        confinement.close()
        assert left.wait(timeout=10) == -9
        assert not any(group.exists() for group in groups)
    finally:
        left.kill()
        left.wait()


def test_a_shell_whose_ulimit_reads_other_units_keeps_prlimit(monkeypatch: pytest.MonkeyPatch) -> None:
    # bash, not started as sh, reads ``ulimit -f`` in KB (not 512-byte blocks) and ``-p`` as
    # the pipe size: its launcher must not set a step's limits with ulimit.
    bash = shutil.which("bash", path="/usr/bin:/bin")
    if bash is None or sandbox._tool("prlimit") is None:
        pytest.skip("no bash or no prlimit here")
    monkeypatch.setattr(sandbox, "_SHELL", bash)
    assert not sandbox._shell_sets_limits(bash, memory=False, nproc=False)
    limits = sandbox.Limits(file_mb=3)
    confinement = sandbox.Confinement(limits)
    try:
        prefix = confinement.launcher()
        assert prefix is not None and prefix[0] == bash and any(a.endswith("prlimit") for a in prefix)
        code = "import resource; print(resource.getrlimit(resource.RLIMIT_FSIZE)[0])"
        done = runner.run([*prefix, sys.executable, "-c", code], timeout=60)
        assert done.ok, done.stderr
        assert int(done.stdout) == 3 * 1024 * 1024
    finally:
        confinement.close()


def test_the_copy_keeps_its_sources_permissions_and_a_fork_never_removes_its_parents(tmp_path: Path) -> None:
    source = tmp_path / "etc"
    source.mkdir()
    (source / "hosts").write_text("127.0.0.1 localhost\n")
    (source / "gai.conf").write_text("# only root reads this one\n")
    (source / "gai.conf").chmod(0o600)
    copy = hostfiles.EtcCopy(str(source), sandbox.ETC_ALLOWED)
    try:
        _, folder = copy.view()
        assert folder is not None
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
        assert stat.S_IMODE(os.stat(Path(folder, "gai.conf")).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(Path(folder, "hosts")).st_mode) == stat.S_IMODE(
            (source / "hosts").stat().st_mode
        )
        pid = os.fork()
        if pid == 0:  # the child's exit handlers and its own steps
            try:
                copy.remove()
                _, own = copy.view()
                copy.remove()
                os._exit(0 if own and own != folder and not os.path.exists(own) else 1)
            finally:
                os._exit(2)
        assert os.waitpid(pid, 0)[1] == 0
        assert Path(folder, "hosts").read_text() == "127.0.0.1 localhost\n"
    finally:
        copy.remove()
    assert not Path(folder).exists()


def test_private_key_folders_in_an_allowed_etc_folder_are_empty_in_the_box(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An attacker's look at ``/etc/ssl``: the certificates are there, the private keys a
    user who can read them (root, the ``ssl-cert`` group) keeps beside them are not."""
    source = tmp_path / "etc"
    (source / "ssl" / "certs").mkdir(parents=True)
    (source / "ssl" / "private").mkdir()
    (source / "ssl" / "certs" / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    (source / "ssl" / "private" / "server.key").write_text("FAKE-PRIVATE-KEY\n")
    (source / "hosts").write_text("127.0.0.1 localhost\n")
    # Red Hat's layout: the trust store is in view, the entitlement keys beside it are not.
    for folder in ("pki/tls/certs", "pki/tls/private", "pki/ca-trust/extracted", "pki/entitlement"):
        (source / folder).mkdir(parents=True)
    (source / "pki/tls/certs/ca-bundle.crt").write_text("BUNDLE\n")
    (source / "pki/ca-trust/extracted/tls-ca-bundle.pem").write_text("EXTRACTED\n")
    (source / "pki/tls/private/localhost.key").write_text("FAKE-PRIVATE-KEY\n")
    (source / "pki/entitlement/123-key.pem").write_text("FAKE-ENTITLEMENT-KEY\n")
    copy = hostfiles.EtcCopy(str(source), sandbox.ETC_ALLOWED, sandbox.ETC_HIDDEN)
    monkeypatch.setattr(sandbox, "_etc", copy)
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "PIP_CERT"):
        monkeypatch.delenv(name, raising=False)
    look = (
        "import os\n"
        "print(sorted(os.listdir('/etc/ssl/private')))\n"
        "print(open('/etc/ssl/certs/ca.pem').read().strip())\n"
        "print(sorted(os.listdir('/etc/pki')), sorted(os.listdir('/etc/pki/tls/private')))\n"
        "print(open('/etc/pki/tls/certs/ca-bundle.crt').read().strip())\n"
        "print(open('/etc/pki/ca-trust/extracted/tls-ca-bundle.pem').read().strip())\n"
        "try:\n"
        "    open('/etc/ssl/private/planted', 'w')\n"
        "    print('written')\n"
        "except OSError as exc:\n"
        "    print(exc.strerror)\n"
    )
    try:
        done = runner.run([sys.executable, "-c", look], timeout=60, box=sandbox.Box("import"))
    finally:
        copy.remove()
    if done.sandbox != "boxed":
        pytest.skip("no bubblewrap here")
    assert done.ok, done.stderr
    assert done.stdout.splitlines() == [
        "[]",
        "-----BEGIN CERTIFICATE-----",
        "['ca-trust', 'tls'] []",
        "BUNDLE",
        "EXTRACTED",
        "Read-only file system",
    ]
    assert (source / "ssl" / "private" / "server.key").read_text() == "FAKE-PRIVATE-KEY\n"
    assert not (source / "ssl" / "private" / "planted").exists()
    # A link pays no mount: its target is out of the box's view already.
    (source / "ssl" / "private").rename(source / "ssl" / "elsewhere")
    (source / "ssl" / "private").symlink_to(source / "ssl" / "elsewhere")
    linked = hostfiles.EtcCopy(str(source), sandbox.ETC_ALLOWED, sandbox.ETC_HIDDEN)
    try:
        args = linked.view()[0]
        assert "/etc/ssl/private" not in args and "/etc/pki/tls/private" in args
    finally:
        linked.remove()
