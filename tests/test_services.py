"""Services: the index client, environments and work folder of one process, made once, on demand."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_spike.model import Candidate, default_cache_root
from pytest_spike.probes.base import ProbeContext
from pytest_spike.services import Services, index_client
from pytest_spike.settings import Settings


def test_the_index_client_builder_caches_under_the_spike_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    default = index_client("http://index.invalid/simple")
    assert default.cache_dir == tmp_path / "pytest-spike" / "index" == default_cache_root() / "index"
    assert (default.index_url, default.offline) == ("http://index.invalid/simple", False)
    chosen = index_client(
        "http://index.invalid/simple", cache_dir=tmp_path / "mine", offline=True, timeout=3.0
    )
    assert (chosen.cache_dir, chosen.offline, chosen.timeout) == (tmp_path / "mine", True, 3.0)


def test_services_are_built_once_from_the_settings(tmp_path: Path) -> None:
    settings = Settings(cache_dir=tmp_path / "cache", index_url="http://index.invalid/simple", offline=True)
    services = Services(settings, rootdir=tmp_path)
    client = services.index()
    assert client is services.index()
    assert (client.cache_dir, client.index_url, client.offline) == (
        tmp_path / "cache" / "index",
        "http://index.invalid/simple",
        True,
    )
    envs = services.envs()
    assert envs is services.envs()
    assert envs.cache_dir == tmp_path / "cache" / "envs"


def test_the_work_folder_is_made_on_demand_and_removed_on_close(tmp_path: Path) -> None:
    services = Services(Settings(cache_dir=tmp_path), rootdir=tmp_path)
    context = ProbeContext(Candidate("tomli"), Settings(), services, timeout=5.0)
    workdir = context.workdir
    assert workdir.is_dir() and workdir == services.workdir()
    services.close()
    assert not workdir.exists()


def test_a_relative_xdg_cache_home_is_ignored_as_the_xdg_specification_asks(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", "../caches/xdg")
    assert default_cache_root() == tmp_path / ".cache" / "pytest-spike"
    monkeypatch.setenv("XDG_CACHE_HOME", "")
    assert default_cache_root() == tmp_path / ".cache" / "pytest-spike"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_root() == tmp_path / "xdg" / "pytest-spike"
