"""Fixtures of the box's own tests."""

from __future__ import annotations

import pytest

from pytest_spike._core import sandbox


@pytest.fixture(params=["sh+prlimit", "preexec"])
def launch(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each way a confined step starts; the preexec function where the launcher is taken away."""
    if request.param == "sh+prlimit":
        probe = sandbox.Confinement(sandbox.Limits())
        try:
            if probe.launcher() is None:
                pytest.skip("no /bin/sh or prlimit here")
        finally:
            probe.close()
    if request.param == "preexec":
        monkeypatch.setattr(sandbox.Confinement, "launcher", lambda self: None)
    return str(request.param)
