"""The session's prebuild gets a cold candidate ready before its probe items ask: its
environment, the fit check's resolve and the environment its upstream tests run in.

Real components throughout: a local index on 127.0.0.1 serving the candidate (a wheel, and
an sdist with tests), pytest where this machine's pip finds it, uv in the box. The prebuild
is called the way its threads call it, then the probes, which must find the work done.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from indexserver import HERMETIC_ENV, IndexServer
from pkgfactory import FakeProject

from pytest_spike.envs.manager import MARKER, pip_index_settings
from pytest_spike.model import Candidate
from pytest_spike.probes.base import ProbeContext
from pytest_spike.probes.install import probe_install
from pytest_spike.probes.upstream import probe_upstream
from pytest_spike.services import Services
from pytest_spike.session.prebuild import Prebuild
from pytest_spike.settings import Settings

COLD = FakeProject(
    "coldpkg",
    "1.0",
    files={"coldpkg/__init__.py": "def add(a, b):\n    return a + b\n"},
    sdist_files={
        "tests/test_add.py": "import coldpkg\n\ndef test_add():\n    assert coldpkg.add(1, 2) == 3\n"
    },
)


@pytest.fixture
def context(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ProbeContext]:
    """A cold cache, isolation always: everything the probes need is still to be built."""
    extra = pip_index_settings().get("extra-index-url", "")
    for key, value in HERMETIC_ENV.items():
        monkeypatch.setenv(key, value)
    with IndexServer(tmp_path / "index") as index:
        index.add(COLD)
        # The installers find the candidate here, and pytest (for the harness) where this
        # machine's pip finds it.
        monkeypatch.setenv("PIP_EXTRA_INDEX_URL", f"{index.url}/ {extra}".strip())
        settings = Settings(
            isolation="always", cache_dir=tmp_path / "cache", index_url=index.url, probe_timeout=120.0
        )
        services = Services(settings, rootdir=tmp_path)
        try:
            yield ProbeContext(Candidate("coldpkg"), settings, services, timeout=settings.probe_timeout)
        finally:
            services.close()


def test_the_prebuild_builds_the_upstream_environment_and_resolves_the_fit(context: ProbeContext) -> None:
    Prebuild(lambda candidate: context, ["install", "upstream"]).ready(context)

    # The fit check resolved in the prebuild: the probe's step finds its answer kept.
    kept = context.remember(("fit", "coldpkg", "1.0"), lambda: pytest.fail("the fit was not resolved ahead"))
    assert kept[1]["fits"] is True
    # The upstream tests' environment (the candidate pinned, pytest) is built and complete.
    harness = context.services.envs().path(["coldpkg==1.0", "pytest"])
    assert (harness / MARKER).is_file()

    install = probe_install(context)
    assert install.details["fit"] is kept[1]
    upstream = probe_upstream(context)
    environment = upstream.details["harness_environment"]
    assert environment["environment"] == str(harness) and environment["reused"] is True
    assert upstream.details["passed"] == 1


def test_without_the_upstream_probe_no_test_environment_is_built(context: ProbeContext) -> None:
    Prebuild(lambda candidate: context, ["install"]).ready(context)
    assert context.remember(("fit", "coldpkg", "1.0"), lambda: pytest.fail("not resolved ahead"))
    assert not context.services.envs().path(["coldpkg==1.0", "pytest"]).exists()
