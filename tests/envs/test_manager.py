"""Real environments built from a local index of tiny wheels and sdists (no network)."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from backends import BACKENDS, hermetic  # noqa: F401
from pkgfactory import FakeProject, build_local_index, build_wheel

from pytest_spike._core import sandbox
from pytest_spike._core.runner import run
from pytest_spike.envs.fit import install_findings
from pytest_spike.envs.manager import (
    _INTERPRETER,
    MARKER,
    EnvManager,
    EnvResult,
    _move_built,
    find_uv,
    uv_index_args,
)
from pytest_spike.model import Severity, SpikeError


@pytest.fixture(scope="module")
def index_args(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    folder = build_local_index(tmp_path_factory.mktemp("index"))
    return ["--no-index", "--find-links", str(folder)]


@pytest.fixture(scope="module", params=BACKENDS)
def built(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, index_args: list[str]
) -> tuple[EnvManager, EnvResult]:
    """One environment with ``cand`` per backend, shared by the module's tests."""
    with hermetic():
        manager = EnvManager(tmp_path_factory.mktemp("cache"), backend=request.param, index_args=index_args)
        return manager, manager.ensure(["cand"])


def test_installs_candidate_with_its_dependency(built: tuple[EnvManager, EnvResult]) -> None:
    manager, result = built
    assert result.ok, result.error
    assert (result.backend, result.version, result.reused) == (manager.backend, "1.0", False)
    assert result.dependencies == ["dep"] and result.dependency_count == 1
    assert result.from_sdist is False and result.sdists == []
    assert result.size_bytes > 0 and result.install_time_s > 0
    assert Path(result.python).is_relative_to(manager.cache_dir)
    probe = run([result.python, "-I", "-c", "import cand, dep; print(dep.VERSION)"], timeout=30)
    assert probe.stdout.strip() == "2", probe.stderr
    findings, details = install_findings(result)
    assert [f.code for f in findings] == ["install.footprint"]
    assert details["dependencies"] == 1 and details["version"] == "1.0"


def test_second_ensure_reuses_the_entry(built: tuple[EnvManager, EnvResult]) -> None:
    manager, first = built
    again = EnvManager(manager.cache_dir, backend=manager.backend, index_args=manager.index_args)
    start = time.perf_counter()
    second = again.ensure(["cand"])
    elapsed = time.perf_counter() - start
    assert second.reused and second.ok
    assert second.path == first.path and second.version == first.version
    assert elapsed < min(1.0, first.install_time_s)


def test_fresh_rebuilds(built: tuple[EnvManager, EnvResult]) -> None:
    manager, first = built
    sentinel = Path(first.path) / "left-by-an-old-build"
    sentinel.write_text("x")
    fresh = EnvManager(manager.cache_dir, backend=manager.backend, index_args=manager.index_args, fresh=True)
    result = fresh.ensure(["cand"])
    assert result.ok and not result.reused and result.path == first.path
    assert not sentinel.exists()
    assert (Path(result.path) / MARKER).is_file()
    assert fresh.ensure(["cand"]).reused  # fresh means once per run, not once per call


@pytest.mark.parametrize("backend", BACKENDS)
def test_half_built_entry_is_rebuilt(backend: str, tmp_path: Path, index_args: list[str]) -> None:
    said: list[str] = []
    manager = EnvManager(tmp_path, backend=backend, index_args=index_args, progress=said.append)
    entry = manager.path(["dep==1.0"])
    (entry / "bin").mkdir(parents=True)
    (entry / "half-written").write_text("a build died here")
    result = manager.ensure(["dep==1.0"])
    assert result.ok and not result.reused and result.version == "1.0"
    assert not (entry / "half-written").exists()
    assert manager.ensure(["dep==1.0"]).reused
    assert said == [f"building environment for dep==1.0 ({backend})"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_unresolvable_candidate_fails_with_resolver_text(
    backend: str, tmp_path: Path, index_args: list[str]
) -> None:
    manager = EnvManager(tmp_path, backend=backend, index_args=index_args)
    result = manager.ensure(["broken"])
    assert not result.ok and result.version is None
    assert "missingdep" in result.error_line and "missingdep" in result.error
    assert "Traceback" not in result.error
    assert not Path(result.path).exists()  # failures are not cached
    findings, details = install_findings(result)
    assert [(f.code, f.severity) for f in findings] == [("install.failed", Severity.CRITICAL)]
    assert "missingdep" in findings[0].message
    assert "missingdep" in findings[0].evidence["resolver"]
    assert details["error"] == result.error


@pytest.mark.parametrize("backend", BACKENDS)
def test_sdist_only_candidate_is_built_and_flagged(
    backend: str, tmp_path: Path, index_args: list[str]
) -> None:
    result = EnvManager(tmp_path, backend=backend, index_args=index_args).ensure(["srconly"])
    assert result.ok, result.error
    assert result.from_sdist is True and result.sdists == ["srconly"]
    findings, _ = install_findings(result)
    sdist = [f for f in findings if f.code == "install.sdist"]
    assert len(sdist) == 1 and sdist[0].severity is Severity.LOW
    assert "srconly" in sdist[0].message


@pytest.mark.parametrize("backend", BACKENDS)
def test_failing_build_reports_the_builds_error_line(
    backend: str, tmp_path: Path, index_args: list[str]
) -> None:
    result = EnvManager(tmp_path, backend=backend, index_args=index_args).ensure(["failbuild"])
    assert not result.ok
    assert result.error_line == "RuntimeError: failbuild does not build here"
    findings, _ = install_findings(result)
    assert findings[0].message.endswith("RuntimeError: failbuild does not build here")


def test_the_running_interpreter_answers_as_its_child_would(tmp_path: Path) -> None:
    """Asked in process (no child), the answer is the child's: cache keys do not move."""
    asked = run([sys.executable, "-I", "-c", _INTERPRETER], timeout=60)
    assert EnvManager(tmp_path).interpreter() == json.loads(asked.stdout)


def test_relative_cache_and_bare_interpreter_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, index_args: list[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent), prepend=os.pathsep)
    name = Path(sys.executable).name
    manager = EnvManager("envs", python=name, backend="venv", index_args=index_args)
    result = manager.ensure(["dep==1.0"])
    assert result.ok, result.error
    assert Path(result.path).is_absolute() and Path(result.path).parent == tmp_path / "envs"


def test_two_runs_sharing_a_cache_build_once(tmp_path: Path, index_args: list[str]) -> None:
    results: list[EnvResult] = []

    def build() -> None:
        results.append(EnvManager(tmp_path, backend="venv", index_args=index_args).ensure(["dep"]))

    threads = [threading.Thread(target=build) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(r.ok for r in results) and len(results) == 2
    assert sorted(r.reused for r in results) == [False, True]


def test_cache_key_follows_requirements_and_index_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = EnvManager(tmp_path, backend="venv")
    key = manager.key(["Cand>=1", "dep"])
    assert manager.key(["dep", "cand>=1", "dep"]) == key
    assert manager.key(["dep", "cand>=2"]) != key
    offline = EnvManager(tmp_path, backend="venv", index_args=["--no-index"])
    assert offline.key(["dep", "cand>=1"]) != key
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    assert manager.key(["dep", "cand>=1"]) != key


def test_pip_settings_are_translated_for_uv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "pip.conf"
    config.write_text("[global]\nindex-url = http://127.0.0.1:9/simple\nfind-links = /a /b\n")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(tmp_path / "none"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "none"))
    monkeypatch.setenv("PIP_CONFIG_FILE", str(config))
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "http://127.0.0.1:8/simple")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    assert uv_index_args() == [
        "--index-url",
        "http://127.0.0.1:9/simple",
        "--extra-index-url",
        "http://127.0.0.1:8/simple",
        # pip's choice across indexes (best version), not uv's default (first index)
        "--index-strategy",
        "unsafe-best-match",
        "--find-links",
        "/a",
        "--find-links",
        "/b",
        "--no-index",
    ]


def test_bad_inputs_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(SpikeError, match="does not run"):
        EnvManager(tmp_path, python=str(tmp_path / "no-python")).ensure(["dep"])
    with pytest.raises(SpikeError, match="not a valid requirement"):
        EnvManager(tmp_path, backend="venv").ensure(["dep >= >= 1"])
    with pytest.raises(SpikeError, match="not one of"):
        EnvManager(tmp_path, backend="conda")


@pytest.mark.network
def test_real_candidate_from_the_package_index(tmp_path: Path) -> None:
    result = EnvManager(tmp_path, fresh=True).ensure(["tomli"])
    assert result.ok, result.error
    assert result.version and result.from_sdist is False and result.dependencies == []
    code = "import tomli; print(tomli.loads('a = 1'))"
    probe = run([result.python, "-I", "-c", code], timeout=60)
    assert probe.stdout.strip() == "{'a': 1}"
    assert sys.executable != result.python


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_index_with_credentials_installs_wheels_before_any_backend_runs(
    tmp_path: Path, backend: str
) -> None:
    """With a password in the index URL, wheels alone are tried first, so no build backend runs
    in a step that holds it; where an sdist must be built after all, the result says so."""
    from indexserver import IndexServer
    from pkgfactory import _BACKEND, _PYPROJECT

    with IndexServer(tmp_path / "index") as index, hermetic():
        index.add(FakeProject("dep", "2.0"))
        index.add(
            FakeProject(
                "srconly", "1.5", sdist_files={"pyproject.toml": _PYPROJECT, "tinybackend.py": _BACKEND}
            ),
            wheel=False,
        )
        secret_url = index.url.replace("http://", "http://spike:s3cr3t@") + "/"
        manager = EnvManager(tmp_path / "cache", backend=backend, index_args=["--index-url", secret_url])
        wheels = manager.ensure(["dep"])
        built = manager.ensure(["srconly"])
    assert wheels.ok and not wheels.credentials_exposed, wheels.error
    assert built.ok and built.credentials_exposed, built.error
    findings, _ = install_findings(built)
    exposed = [f for f in findings if f.code == "install.credentials"]
    assert exposed and "in reach of a build backend" in exposed[0].message
    assert "s3cr3t" not in exposed[0].message


def test_a_staged_build_is_moved_in_place_only_as_a_real_folder(tmp_path: Path) -> None:
    """A boxed uv build's folder (in the candidate's installer cache) becomes the entry by a
    rename; a link in its place is refused, the candidate's; across file systems it is
    copied, links inside kept as links."""
    staging = tmp_path / "installer" / "building-x"
    (staging / "bin").mkdir(parents=True)
    (staging / "bin" / "python").symlink_to(sys.executable)
    entry = tmp_path / "envs" / "key"
    entry.parent.mkdir()
    assert _move_built(staging, entry) == ("", "")
    assert not staging.exists() and (entry / "bin" / "python").is_symlink()

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    link = tmp_path / "installer" / "building-y"
    link.symlink_to(elsewhere)
    why, blame = _move_built(link, tmp_path / "envs" / "other")
    assert "replaced its environment's folder" in why and blame == ""  # the candidate's
    assert not (tmp_path / "envs" / "other").exists()

    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK) and os.stat(shm).st_dev != os.stat(tmp_path).st_dev):
        return  # no second file system at hand for the copy
    far = Path(tempfile.mkdtemp(dir=shm))
    try:
        (far / "bin").mkdir()
        (far / "bin" / "python").symlink_to(sys.executable)
        (far / "pyvenv.cfg").write_text("home = /x\n")
        assert _move_built(far, tmp_path / "envs" / "far") == ("", "")
        assert (tmp_path / "envs" / "far" / "bin" / "python").is_symlink()
        assert (tmp_path / "envs" / "far" / "pyvenv.cfg").read_text() == "home = /x\n"
    finally:
        shutil.rmtree(far, ignore_errors=True)


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_environment_is_compiled_but_for_the_modules_nobody_imports(backend: str, tmp_path: Path) -> None:
    """A built environment holds the compiled modules of what it installed (boxed steps see
    it read-only: without them every run compiles again), except pygments' lexers other
    than the ones pytest loads (~300 modules in every environment that holds pytest); a
    module that does not compile does not fail the build, and the compile step does not run
    the environment's ``.pth`` files (candidate code)."""
    pth = "import os, sys; open(os.path.join(sys.prefix, 'pth-ran'), 'w').close()\n"
    files = {
        "lexy/__init__.py": "VALUE = 1\n",
        "lexy/py2.py": "print 'a module for another Python'\n",
        "pygments/__init__.py": "",
        "pygments/lexers/__init__.py": "",
        "pygments/lexers/python.py": "NAME = 'python'\n",
        "pygments/lexers/rust.py": "NAME = 'rust'\n",
        "lexy-hook.pth": pth,
    }
    index = tmp_path / "index"
    build_wheel(FakeProject("lexy", "1.0", files=files), index)
    with hermetic():
        manager = EnvManager(
            tmp_path / "cache", backend=backend, index_args=["--no-index", "--find-links", str(index)]
        )
        result = manager.ensure(["lexy"])
    assert result.ok, result.error
    env = Path(result.path)
    [site] = list((env / "lib").glob("python*/site-packages"))

    def compiled(module: str) -> bool:
        source = site / module
        return any((source.parent / "__pycache__").glob(f"{source.stem}.*.pyc"))

    assert compiled("lexy/__init__.py") and compiled("pygments/lexers/python.py")
    assert compiled("pygments/lexers/__init__.py")
    assert not compiled("pygments/lexers/rust.py") and not compiled("lexy/py2.py")
    assert not (env / "pth-ran").exists()


def test_worker_processes_compile_only_an_environment_with_many_modules(tmp_path: Path) -> None:
    """Workers cost more than a few modules take to compile (a candidate alone: +20 ms in a
    box): they compile where there are many (pytest and pygments: 0.35 s instead of 0.5)."""
    import importlib.util

    from pytest_spike.envs.manager import COMPILE_SCRIPT

    spec = importlib.util.spec_from_file_location("_spike_compile", COMPILE_SCRIPT)
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    holds = script.holds_modules

    lib = tmp_path / "lib" / "site-packages"
    (lib / "pkg").mkdir(parents=True)
    for i in range(5):
        (lib / "pkg" / f"m{i}.py").write_text("")
    (lib / "pkg" / "data.txt").write_text("")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for i in range(10):
        (elsewhere / f"x{i}.py").write_text("")
    (lib / "link").symlink_to(elsewhere, target_is_directory=True)  # not followed
    assert holds(str(tmp_path / "lib"), 5) and not holds(str(tmp_path / "lib"), 6)


WRAPPER = """#!/bin/sh
printf '%s\\t%s\\t%s\\n' "$*" "${GITHUB_TOKEN:-none}" "${HOME}" >> "$(dirname "$0")/calls"
exec {python} "$@"
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_empty_environment_is_made_on_the_host_from_the_allow_list(
    backend: str, tmp_path: Path, index_args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``uv venv`` / ``python -m venv`` run nothing of a candidate's: made on the host (no
    box's start), from the box's allow-list of variables (no token reaches it)."""
    from pytest_spike._core import timeline

    # The base interpreter behind a script that notes how it was started; boxed steps see
    # the base's prefix through the pyvenv.cfg beside the script's bin/.
    base = os.path.realpath(sys.executable)
    interpreter = tmp_path / "wrapped" / "bin" / "python"
    interpreter.parent.mkdir(parents=True)
    interpreter.write_text(WRAPPER.replace("{python}", base))
    interpreter.chmod(0o755)
    (tmp_path / "wrapped" / "pyvenv.cfg").write_text(f"home = {os.path.dirname(base)}\n")
    monkeypatch.setenv("GITHUB_TOKEN", "s3cr3t-gh")
    monkeypatch.setenv(timeline.ENV, str(tmp_path / "timeline.jsonl"))
    cache = tmp_path / "cache"
    with hermetic():
        result = EnvManager(cache, python=str(interpreter), backend=backend, index_args=index_args).ensure(
            ["cand"]
        )
    assert result.ok, result.error
    calls = [line.split("\t") for line in (interpreter.parent / "calls").read_text().splitlines()]
    assert {token for _, token, _ in calls} == {"none"}  # no step of the build sees it
    # The venv step's own start of the interpreter: pip's venv module, or uv's query of it.
    made = [home for argv, _, home in calls if "-m venv" in argv or "get_interpreter_info" in argv]
    assert made, calls
    assert os.path.expanduser("~") not in made
    steps = [json.loads(line) for line in (tmp_path / "timeline.jsonl").read_text().splitlines()]
    steps = [s for s in steps if s["what"] == "step"]
    venv = next(s for s in steps if " venv" in s["argv"] or "-m venv" in s["argv"])
    assert venv["stage"] == "host"
    assert any(s["stage"] == "install" for s in steps[steps.index(venv) + 1 :])


@pytest.mark.skipif(find_uv() is None, reason="uv is not installed")
def test_uv_keeps_its_query_of_the_interpreter_in_pytest_spikes_own_cache(
    tmp_path: Path, index_args: list[str]
) -> None:
    """The venv step's uv cache is pytest-spike's own installer cache (no candidate's step
    writes it): the next build's ``uv venv`` does not ask the interpreter again."""
    with hermetic():
        result = EnvManager(tmp_path / "envs", backend="uv", index_args=index_args).ensure(["dep"])
    assert result.ok, result.error
    own = tmp_path / "installer" / "_own" / "uv"
    assert list(own.glob("interpreter-v*")), sorted(p.name for p in own.iterdir())


@pytest.mark.skipif(
    not sandbox.status(sandbox.Policy()).boxed, reason="one box for both only where steps are boxed"
)
@pytest.mark.parametrize("backend", BACKENDS)
def test_an_install_and_its_compile_are_one_boxed_step(
    backend: str, tmp_path: Path, index_args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The compile had a box of its own after the install's (~30 ms more on every build's
    path): it runs in the install's, once the install ended well; the timeline names the
    step by its installer, not by the shell that runs both."""
    from pytest_spike._core import timeline

    monkeypatch.setenv(timeline.ENV, str(tmp_path / "timeline.jsonl"))
    with hermetic():
        result = EnvManager(tmp_path / "envs", backend=backend, index_args=index_args).ensure(["cand"])
    assert result.ok, result.error
    steps = [json.loads(line) for line in (tmp_path / "timeline.jsonl").read_text().splitlines()]
    boxed = [s for s in steps if s["what"] == "step" and s["stage"] == "install"]
    assert len(boxed) == 1, boxed
    assert " pip " in f" {boxed[0]['argv']} " and not boxed[0]["argv"].startswith("/bin/sh"), boxed
    [site] = list((Path(result.path) / "lib").glob("python*/site-packages"))
    assert list((site / "cand" / "__pycache__").glob("__init__.*.pyc"))
