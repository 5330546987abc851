"""Fixtures of the box's own tests."""

from __future__ import annotations

import pytest

from pytest_spike._core import sandbox


@pytest.fixture(params=["sh+ulimit", "sh+prlimit", "preexec"])
def launch(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each way a confined step starts: the shell's ``ulimit`` where it sets what it is asked,
    ``prlimit`` where it does not (taken away here), the preexec function where the launcher is."""
    if request.param == "sh+prlimit":
        monkeypatch.setattr(sandbox, "_shell_sets_limits", lambda shell, memory, nproc: False)
    if request.param in ("sh+ulimit", "sh+prlimit"):
        probe = sandbox.Confinement(sandbox.Limits())
        try:
            prefix = probe.launcher()
            if prefix is None:
                pytest.skip("no /bin/sh or prlimit here")
            if (request.param == "sh+ulimit") == any(p.endswith("prlimit") for p in prefix):
                pytest.skip(
                    f"this shell's ulimit {'does not set' if request.param == 'sh+ulimit' else 'sets'} the limits"
                )
        finally:
            probe.close()
    if request.param == "preexec":
        monkeypatch.setattr(sandbox.Confinement, "launcher", lambda self: None)
    return str(request.param)
