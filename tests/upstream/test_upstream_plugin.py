"""The upstream probe and spike_upstream through pytest, with a local index on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from indexserver import HERMETIC_ENV, IndexServer
from pkgfactory import FakeProject, build_wheel, pip_install_target

UPPKG = FakeProject(
    "uppkg",
    "1.0",
    files={"uppkg/__init__.py": "def add(a, b):\n    return a + b\n"},
    sdist_files={
        "tests/test_add.py": "import uppkg\n\ndef test_add():\n    assert uppkg.add(1, 2) == 3\n",
        "tests/test_more.py": "import uppkg\n\ndef test_zero():\n    assert uppkg.add(0, 0) == 0\n",
        "tests/test_broken.py": "import uppkg\n\ndef test_wrong():\n    assert uppkg.add(2, 2) == 5\n",
        "tests/test_unicode.py": "def test_ok():\n    assert 'é'.upper() == 'É'\n",
    },
)


@pytest.fixture
def upstream_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    site = tmp_path / "site"
    pip_install_target([build_wheel(UPPKG, tmp_path / "wheels")], site)
    monkeypatch.setenv("PYTHONPATH", str(site))
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    for key, value in HERMETIC_ENV.items():
        monkeypatch.setenv(key, value)
    with IndexServer(tmp_path) as index:
        index.add(UPPKG)
        yield index


def test_upstream_probe_samples_the_installed_version(
    pytester: pytest.Pytester, upstream_env: IndexServer
) -> None:
    result = pytester.runpytest(
        "--spike",
        "--spike-candidate",
        "uppkg",
        "--spike-probes",
        "upstream",
        "--spike-isolation",
        "never",
        f"--spike-index-url={upstream_env.url}",
        f"--spike-cache-dir={pytester.path / 'cache'}",
        "--spike-upstream-sample",
        "4",
        "--spike-json=r.json",
    )
    cand = json.loads((pytester.path / "r.json").read_text())["candidates"][0]
    details = next(p for p in cand["probes"] if p["kind"] == "upstream")["details"]
    assert details["sampled"] == 4 and details["passed"] == 3 and details["failed"] == 1
    failed = next(f for f in cand["findings"] if f["code"] == "upstream.failed")
    assert failed["severity"] == "low" and "weak evidence" in failed["message"]
    assert "tests/test_broken.py::test_wrong" in failed["evidence"]["nodeids"]
    result.assert_outcomes(passed=1)  # a low finding does not fail the item
    # A warm run takes the extracted sdist from the cache: no second download.
    downloads = upstream_env.hits("/files/")
    assert downloads == 1
    again = pytester.runpytest(
        "--spike",
        "--spike-candidate",
        "uppkg",
        "--spike-probes",
        "upstream",
        "--spike-isolation",
        "never",
        f"--spike-index-url={upstream_env.url}",
        f"--spike-cache-dir={pytester.path / 'cache'}",
        "--spike-upstream-sample",
        "4",
    )
    again.assert_outcomes(passed=1)
    assert upstream_env.hits("/files/") == downloads


def test_spike_upstream_fixture(pytester: pytest.Pytester, upstream_env: IndexServer) -> None:
    pytester.makepyfile(
        """
        from pytest_spike import spike

        @spike.candidate("uppkg")
        @spike.upstream
        def test_theirs(spike_upstream):
            ids = spike_upstream.collect().ids
            assert len(ids) == 4
            result = spike_upstream.run(spike_upstream.sample(2))
            assert len(result.sampled) == 2
            assert spike_upstream.sample(2) == spike_upstream.sample(2)
            assert spike_upstream.sample(5, keyword="add") == ["tests/test_add.py::test_add"]

        @spike.candidate("uppkg")
        def test_local_checkout(spike_upstream, tmp_path):
            (tmp_path / "tests").mkdir()
            (tmp_path / "tests" / "test_local.py").write_text(
                "import uppkg\\ndef test_sub():\\n    assert uppkg.add(2, -2) == 0\\n")
            local = spike_upstream.with_source(tmp_path)
            result = local.run(local.sample(1))
            assert result.count("passed") == 1
        """
    )
    result = pytester.runpytest(
        "--spike",
        "--spike-probes",
        "none",
        f"--spike-index-url={upstream_env.url}",
        f"--spike-cache-dir={pytester.path / 'cache'}",
    )
    result.assert_outcomes(passed=2)


def test_fetching_the_sdist_is_said_only_when_it_is_fetched(
    pytester: pytest.Pytester, upstream_env: IndexServer
) -> None:
    def run(*more: str) -> pytest.RunResult:
        return pytester.runpytest(
            "--spike",
            "--spike-candidate",
            "uppkg",
            "--spike-probes",
            "upstream",
            "--spike-isolation",
            "never",
            f"--spike-index-url={upstream_env.url}",
            f"--spike-cache-dir={pytester.path / 'cache'}",
            "-rs",
            *more,
        )

    cold = run()
    # said by the probe run ahead of its item ("in the background: "), or by its item
    cold.stdout.re_match_lines(
        [r"spike: (in the background: )?uppkg upstream: fetching the sdist uppkg-1\.0\.tar\.gz for its tests"]
    )
    # Probes re-run (--spike-fresh-probes), so the sdist is asked for again: from the cache.
    warm = run("--spike-fresh-probes")
    warm.assert_outcomes(passed=1)
    warm.stdout.no_fnmatch_line("*fetching the sdist*")
    # the card says how much of the suite the verdict sampled (issue 24)
    warm.stdout.fnmatch_lines(["*upstream passed (* of * tests sampled)*"])
    cached = run()
    cached.stdout.fnmatch_lines(["*upstream passed (* of * tests sampled; cached *ago)*"])
    offline = run("--spike-offline", "--spike-fresh-probes")
    offline.assert_outcomes(passed=1)
    offline.stdout.no_fnmatch_line("*fetching the sdist*")
    # Offline with the extracted sdist gone: nothing is fetched, and the probe says why.
    import shutil

    shutil.rmtree(pytester.path / "cache" / "sdists")
    gone = run("--spike-offline", "--spike-fresh-probes")
    gone.assert_outcomes(skipped=1)
    gone.stdout.no_fnmatch_line("*fetching the sdist*")
    gone.stdout.fnmatch_lines(["*--spike-offline and the sdist uppkg-1.0.tar.gz is not in the cache*"])
    assert upstream_env.hits("/files/") == 1
