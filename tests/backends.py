"""Environment backends the tests run against, and a context without this machine's index."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import pytest

from pytest_spike.envs.manager import INDEX_ENV_VARS, find_uv

BACKENDS = [
    "venv",
    pytest.param("uv", marks=pytest.mark.skipif(find_uv() is None, reason="uv is not installed")),
]


@contextlib.contextmanager
def hermetic() -> Iterator[None]:
    """No index settings from this machine: only the local index the test passes."""
    with pytest.MonkeyPatch.context() as mp:
        for name in INDEX_ENV_VARS:
            mp.delenv(name, raising=False)
        mp.setenv("PIP_CONFIG_FILE", os.devnull)
        yield
