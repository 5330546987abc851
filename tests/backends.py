"""Environment backends the tests run against, and a context without this machine's index."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

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


def use_find_links(monkeypatch: pytest.MonkeyPatch, index: Path) -> None:
    """Installers see only the find-links folder ``index`` (pip's settings; uv gets them from
    pytest-spike), and the run gets no options from this machine's PYTEST_ADDOPTS."""
    for name in (*INDEX_ENV_VARS, "PYTEST_ADDOPTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))


def use_local_index(monkeypatch: pytest.MonkeyPatch, index: Path, site: Path) -> None:
    """:func:`use_find_links`, and the run and its children import from ``site`` first."""
    use_find_links(monkeypatch, index)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", str(site))
