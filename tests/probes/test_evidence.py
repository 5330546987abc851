"""Cached probe evidence and parallel environment builds, end to end through pytester.

The fixture package ``counted`` appends a line to a file each time it is imported, so a
test can tell whether the import probe ran again or its evidence was reused.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from indexserver import HERMETIC_ENV, IndexServer
from pkgfactory import FAILING_BUILD, FakeProject, build_sdist, build_wheel


def counted(version: str, log: Path) -> FakeProject:
    source = (
        "import os, time\n"
        f"with open({str(log)!r}, 'a') as f:\n"
        "    f.write('imported\\n')\n"
        "time.sleep(float(os.environ.get('COUNTED_SLEEP', '0')))\n"
    )
    return FakeProject("counted", version, files={"counted/__init__.py": source})


@pytest.fixture
def local_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A find-links folder with ``counted`` 1.0 and the file its imports are counted in."""
    folder, log = tmp_path / "index", tmp_path / "imports.log"
    folder.mkdir()
    build_wheel(counted("1.0", log), folder)
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
    monkeypatch.delenv("PIP_INDEX_URL", raising=False)
    monkeypatch.delenv("PIP_EXTRA_INDEX_URL", raising=False)
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    monkeypatch.delenv("COUNTED_SLEEP", raising=False)
    return folder, log


def imports(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


def run(
    pytester: pytest.Pytester, *args: str, probes: str = "install,import"
) -> tuple[pytest.RunResult, dict]:
    result = pytester.runpytest(
        "--spike",
        # These tests count the candidate's imports in a file it writes, which the box
        # refuses by design (tests/_core/test_sandbox.py): they run unboxed.
        "--spike-sandbox=off",
        "--spike-probes",
        probes,
        "--spike-isolation",
        "always",
        f"--spike-cache-dir={pytester.path / 'cache'}",
        "--spike-json=r.json",
        "--spike-candidate",
        "counted",
        *args,
    )
    data = json.loads((pytester.path / "r.json").read_text())
    return result, {p["kind"]: p for c in data["candidates"] for p in c["probes"]}


def test_unchanged_run_reuses_evidence_and_says_so(
    pytester: pytest.Pytester, local_index: tuple[Path, Path]
) -> None:
    _, log = local_index
    _, probes = run(pytester)
    assert imports(log) == 1
    assert probes["import"]["cached"] is False and probes["import"]["taken"]
    first_taken = probes["import"]["taken"]
    result, probes = run(pytester)
    assert imports(log) == 1, "the import probe ran again with nothing changed"
    assert probes["import"]["cached"] is True and probes["install"]["cached"] is True
    assert probes["import"]["taken"] == first_taken  # when the evidence was taken, not now
    assert probes["import"]["outcome"] == "passed"
    result.stdout.fnmatch_lines(["*probes: install passed (cached *s ago), import passed (cached *s ago)*"])
    # An option the import probe does not read leaves its evidence good.
    _, probes = run(pytester, "--spike-upstream-seed", "7")
    assert imports(log) == 1 and probes["import"]["cached"] is True


def test_changed_option_or_environment_invalidates(
    pytester: pytest.Pytester, local_index: tuple[Path, Path]
) -> None:
    folder, log = local_index
    run(pytester)
    assert imports(log) == 1
    _, probes = run(pytester, "--spike-probe-timeout", "61")  # an option the probe reads
    assert imports(log) == 2 and probes["import"]["cached"] is False
    _, probes = run(pytester, "--spike-probe-timeout", "61")
    assert imports(log) == 2 and probes["import"]["cached"] is True
    # A new release, and the environment rebuilt: other content, other evidence.
    build_wheel(counted("1.1", log), folder)
    shutil.rmtree(pytester.path / "cache" / "envs")
    _, probes = run(pytester, "--spike-probe-timeout", "61")
    assert imports(log) == 3 and probes["import"]["cached"] is False
    assert probes["install"]["version"] == "1.1"


def test_fresh_reruns_probes_and_the_users_tests_always_run(
    pytester: pytest.Pytester, local_index: tuple[Path, Path]
) -> None:
    _, log = local_index
    pytester.makepyfile(
        test_user="""
        from pytest_spike import spike

        @spike.hello_world
        @spike.candidate("counted")
        def test_hello():
            import counted
        """
    )
    run(pytester)
    assert imports(log) == 2  # the import probe and the user's test
    _, probes = run(pytester)
    assert imports(log) == 3, "the user's own test must run every time"
    assert probes["import"]["cached"] is True and probes["hello_world"]["cached"] is False
    _, probes = run(pytester, "--spike-fresh-probes")
    assert imports(log) == 5 and probes["import"]["cached"] is False
    assert probes["install"]["details"]["reused"] is True  # environment kept
    _, probes = run(pytester, "--spike-fresh")
    assert imports(log) == 7 and probes["import"]["cached"] is False
    assert probes["install"]["details"]["reused"] is False  # environment rebuilt too


def test_time_box_cut_is_never_kept(
    pytester: pytest.Pytester, local_index: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, log = local_index
    run(pytester, probes="install")  # the environment, built outside the time box below
    monkeypatch.setenv("COUNTED_SLEEP", "30")
    _, probes = run(pytester, "--spike-timebox", "2")
    assert probes["import"]["details"].get("timebox") is True
    count = imports(log)
    monkeypatch.delenv("COUNTED_SLEEP")
    # The time box is not part of the evidence's key: a kept cut would be reused here. A wider
    # one, so a loaded machine does not cut the healthy import too.
    _, probes = run(pytester, "--spike-timebox", "30")
    assert imports(log) == count + 1 and probes["import"]["cached"] is False
    assert probes["import"]["outcome"] == "passed"


def test_interrupted_run_keeps_nothing(pytester: pytest.Pytester, local_index: tuple[Path, Path]) -> None:
    _, log = local_index
    pytester.makepyfile(test_stop="def test_stop():\n    raise KeyboardInterrupt\n")
    stopped = pytester.inline_run(  # the probes run first, then the run is interrupted
        "--spike",
        "--spike-sandbox=off",
        "--spike-probes",
        "install,import",
        "--spike-isolation",
        "always",
        f"--spike-cache-dir={pytester.path / 'cache'}",
        "--spike-candidate",
        "counted",
        no_reraise_ctrlc=True,
    )
    assert stopped.ret == pytest.ExitCode.INTERRUPTED
    assert imports(log) == 1
    (pytester.path / "test_stop.py").unlink()
    _, probes = run(pytester)
    assert imports(log) == 2 and probes["import"]["cached"] is False


def test_parallel_builds_overlap_and_a_failed_build_is_a_finding(
    pytester: pytest.Pytester, local_index: tuple[Path, Path]
) -> None:
    folder, _ = local_index
    for name in ("para_a", "para_b", "para_c"):
        build_wheel(FakeProject(name, "1.0"), folder)
    build_sdist(FAILING_BUILD, folder)
    args = [a for n in ("para_a", "para_b", "para_c", "failbuild") for a in ("--spike-candidate", n)]
    result = pytester.runpytest(
        "-q",
        "--spike",
        "--spike-probes",
        "install",
        "--spike-isolation",
        "always",
        f"--spike-cache-dir={pytester.path / 'cache'}",
        "--spike-json=r.json",
        *args,
    )
    data = {c["name"]: c for c in json.loads((pytester.path / "r.json").read_text())["candidates"]}
    assert "Traceback" not in result.stdout.str()
    assert "spike: building" not in result.stdout.str()  # -q: the background builds say nothing
    failed = [f for f in data["failbuild"]["findings"] if f["code"] == "install.failed"]
    assert failed and "failbuild does not build here" in json.dumps(failed)
    spans = []
    for marker in (pytester.path / "cache" / "envs").glob("*/spike-env.json"):
        env = json.loads(marker.read_text())
        spans.append((env["built_at"] - env["install_time_s"], env["built_at"]))
    assert len(spans) == 3
    # Every build started before any had ended: they ran at the same time.
    assert max(start for start, _ in spans) < min(end for _, end in spans), spans


@pytest.fixture
def index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spike_site: Path):
    for key, value in HERMETIC_ENV.items():
        monkeypatch.setenv(key, value)
    with IndexServer(tmp_path) as server:
        server.add("goodpkg", "1.0", upload_time="2019-03-01", license="MIT")
        yield server


def test_signals_reuse_expires_with_the_index_cache(pytester: pytest.Pytester, index: IndexServer) -> None:
    cache = pytester.path / "cache"
    argv = (
        "--spike",
        "--spike-probes",
        "signals",
        "--spike-index-url",
        index.url,
        f"--spike-cache-dir={cache}",
        "--spike-json",
        "r.json",
        "--spike-candidate",
        "goodpkg",
    )

    def signals() -> dict:
        pytester.runpytest(*argv)
        data = json.loads((pytester.path / "r.json").read_text())
        return next(p for c in data["candidates"] for p in c["probes"] if p["kind"] == "signals")

    assert signals()["cached"] is False
    assert signals()["cached"] is True
    asked = index.hits()
    # The index answers grow old: the evidence built on them goes with them.
    for entry in (cache / "index").glob("*.json"):
        doc = json.loads(entry.read_text())
        doc["fetched"] = time.time() - 7200
        entry.write_text(json.dumps(doc))
    probe = signals()
    assert probe["cached"] is False and index.hits() > asked
    assert signals()["cached"] is True


def test_evidence_is_keyed_on_pytest_spikes_own_code(tmp_path: Path) -> None:
    """A changed probe must not reuse the verdicts its old code took (the key holds this digest)."""
    import inspect

    from pytest_spike.envs.digest import source_digest
    from pytest_spike.probes import evidence

    package = tmp_path / "pkg"
    package.mkdir()
    (package / "probe.py").write_text("RULE = 1\n")
    before = source_digest(package)
    (package / "probe.py").write_text("RULE = 2\n")
    source_digest.cache_clear()
    assert source_digest(package) != before
    assert '"code": source_digest()' in inspect.getsource(evidence.key)
