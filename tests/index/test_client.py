"""The index client, its cache and version resolution, against a real index on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from indexserver import IndexServer
from packaging.version import Version
from pkgfactory import FakeProject

from pytest_spike.cli import versions as cli_versions
from pytest_spike.index.client import (
    IndexClient,
    IndexUnavailable,
    ProjectNotFound,
    json_api_url,
    redact,
)
from pytest_spike.index.pipconfig import DEFAULT_INDEX_URL, IndexConfig
from pytest_spike.index.versions import python_allows, resolve, resolve_versions
from pytest_spike.model import SpikeError

SRC = Path(__file__).resolve().parents[2] / "src"


def publish_tomly(index: IndexServer) -> None:
    """1.0 .. 2.2 with a yanked release, a pre-release and a Python floor on the newest."""
    index.add("tomly", "1.0.0", upload_time="2021-01-01")
    index.add("tomly", "1.0.1", upload_time="2021-02-01")
    index.add("tomly", "1.1.0", upload_time="2021-06-01")
    index.add("tomly", "2.0.0", upload_time="2022-01-01")
    index.add("tomly", "2.0.1", upload_time="2022-02-01", yanked="broke parsing")
    index.add("tomly", "2.1.0", upload_time="2023-01-01")
    index.add("tomly", "2.2.0", upload_time="2024-01-01", requires_python=">=3.12")
    index.add("tomly", "3.0.0b1", upload_time="2024-06-01")


@pytest.fixture(scope="module")
def shared_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IndexServer]:
    with IndexServer(tmp_path_factory.mktemp("index")) as server:
        publish_tomly(server)
        yield server


@pytest.fixture
def index(shared_index: IndexServer) -> Iterator[IndexServer]:
    """The shared index, well-behaved and with an empty request log for each test."""
    shared_index.reset()
    yield shared_index
    shared_index.reset()


def make_client(index: IndexServer, cache: Path | None, **options: object) -> IndexClient:
    return index.client(**{"cache_dir": cache, "retries": 1, "timeout": 2.0, **options})


@pytest.fixture
def client(index: IndexServer, tmp_path: Path) -> IndexClient:
    return make_client(index, tmp_path / "cache")


# -- configuration ---------------------------------------------------------------------------


def write_conf(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_index_url_precedence(tmp_path: Path) -> None:
    conf = write_conf(
        tmp_path / "pip.conf",
        "[global]\nindex-url = http://conf.invalid/simple\nextra-index-url =\n"
        "    http://extra1.invalid/simple\n    http://extra2.invalid/simple\n"
        "[install]\nindex-url = http://install.invalid/simple/\n",
    )
    env = {"PIP_CONFIG_FILE": str(conf), "HOME": str(tmp_path)}
    from_file = IndexConfig.from_pip(env=env)
    assert from_file.index_url == "http://install.invalid/simple"  # [install] beats [global]
    assert from_file.extra_index_urls == (
        "http://extra1.invalid/simple",
        "http://extra2.invalid/simple",
    )
    from_env = IndexConfig.from_pip(
        env=dict(env, PIP_INDEX_URL="http://env.invalid/simple", PIP_EXTRA_INDEX_URL="")
    )
    assert (from_env.index_url, from_env.extra_index_urls) == ("http://env.invalid/simple", ())
    assert IndexConfig.from_pip("http://arg.invalid/simple", env=env).index_url == "http://arg.invalid/simple"
    assert (
        IndexConfig.from_pip(env={"PIP_CONFIG_FILE": os.devnull, "HOME": str(tmp_path)}).index_url
        == DEFAULT_INDEX_URL
    )


def test_user_config_is_read_unless_pip_config_file_exists(tmp_path: Path) -> None:
    write_conf(
        tmp_path / ".config" / "pip" / "pip.conf",
        "[global]\nindex-url = http://user.invalid/simple\n",
    )
    env = {"HOME": str(tmp_path), "XDG_CONFIG_DIRS": str(tmp_path / "none")}
    assert IndexConfig.from_pip(env=env).index_url == "http://user.invalid/simple"
    other = write_conf(tmp_path / "other.conf", "[global]\ntimeout = 3\n")
    assert IndexConfig.from_pip(env=dict(env, PIP_CONFIG_FILE=str(other))).index_url == DEFAULT_INDEX_URL


def test_missing_file_indexes_are_skipped(index: IndexServer, tmp_path: Path) -> None:
    client = make_client(index, None, extra_index_urls=[f"file://{tmp_path}/nowhere/simple"])
    assert client.index_urls == [index.url]
    assert Version("2.1.0") in client.releases("tomly")


def test_json_api_url_and_redaction() -> None:
    assert json_api_url("https://host.invalid/simple/", "tomly") == "https://host.invalid/pypi/tomly/json"
    assert json_api_url("http://h.invalid/x/simple", "a", "1.0") == "http://h.invalid/x/pypi/a/1.0/json"
    assert json_api_url("http://h.invalid/root/+simple", "a") is None
    # One redaction for the whole plugin, the stricter one: the user name goes too (often a token).
    assert redact("https://me:s3cret@h.invalid/simple") == "https://***@h.invalid/simple"
    assert redact("https://s3cret@h.invalid/simple") == "https://***@h.invalid/simple"
    assert redact("http://u:p@[::1]:8080/simple") == "http://***@[::1]:8080/simple"
    assert redact("https://h.invalid/simple") == "https://h.invalid/simple"


# -- project pages (what they say: tests/index/test_pages.py) ----------------------------------


def test_release_files_lead_to_a_real_sdist(client: IndexClient, tmp_path: Path) -> None:
    files = client.release_files("tomly", "2.1.0")
    sdist = next(f for f in files if f.kind == "sdist")
    assert sdist.filename == "tomly-2.1.0.tar.gz" and not sdist.yanked
    target = tmp_path / sdist.filename
    with urllib.request.urlopen(sdist.url, timeout=5) as answer:
        target.write_bytes(answer.read())
    with tarfile.open(target) as archive:
        assert "tomly-2.1.0/PKG-INFO" in archive.getnames()
    with pytest.raises(SpikeError, match="no release 9.9"):
        client.release_files("tomly", "9.9")


def test_unknown_project(client: IndexClient, index: IndexServer) -> None:
    with pytest.raises(ProjectNotFound, match="no project 'tomlx' on the package index$"):
        client.releases("tomlx")
    assert index.hits("/simple/tomlx/") == 1  # a 404 is an answer: no retry


def test_file_index_and_did_you_mean(tmp_path: Path, index: IndexServer) -> None:
    folder = tmp_path / "local" / "simple" / "tomlkit-ish"
    folder.mkdir(parents=True)
    (folder / "index.html").write_text(
        '<a href="../../files/tomlkit_ish-0.5.tar.gz">tomlkit_ish-0.5.tar.gz</a>'
    )
    client = make_client(index, None, extra_index_urls=[(tmp_path / "local" / "simple").as_uri()])
    assert [str(v) for v in client.releases("tomlkit-ish")] == ["0.5"]
    with pytest.raises(ProjectNotFound, match="did you mean tomlkit-ish"):
        client.releases("tomlkit_is")
    index.misbehave("500")
    partial = make_client(index, None, retries=0, extra_index_urls=client.extra_index_urls)
    listing = partial.listing("tomlkit-ish")
    assert [str(v) for v in listing.releases] == ["0.5"]
    assert listing.skipped == (
        f"index not reachable: HTTP 500 Internal Server Error from {index.url}/tomlkit-ish/",
    )
    # The reasons are returned with each answer, not left on the client for the next caller.
    assert not hasattr(partial, "skipped")
    assert partial.listing("tomlkit-ish").skipped == listing.skipped


def test_indexes_left_out_come_back_with_the_answer(
    cli,  # type: ignore[no-untyped-def]
    index: IndexServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broken = tmp_path / "broken" / "simple"
    (broken / "tomly").mkdir(parents=True)
    (broken / "tomly" / "index.html").write_bytes(b"\xff\xfe not utf-8")
    client = make_client(index, None, extra_index_urls=[broken.as_uri()])
    result = resolve(client, "tomly", "latest:1", python="3.11")
    assert [str(v) for v in result.versions] == ["2.1.0"]
    assert len(result.skipped) == 1 and "cannot read" in result.skipped[0]
    with pytest.raises(SpikeError, match=r"no release 9\.9 .*not asked: index not reachable: cannot read"):
        resolve(client, "tomly", "9.9")
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", broken.as_uri())
    code, out, err = cli("tomly", "--python", "3.11")
    assert (code, out.split()) == (0, ["2.1.0"])
    assert "note: index not reachable: cannot read" in err and "(answered from the other indexes)" in err


def test_find_links_folder_and_no_index(index: IndexServer, tmp_path: Path) -> None:
    from pkgfactory import build_sdist, build_wheel

    links = tmp_path / "wheels"
    build_wheel(FakeProject("tomly", "9.0"), links)
    build_sdist(FakeProject("other-thing", "1.0"), links)
    client = make_client(index, None, find_links=[str(links)])
    assert Version("9.0") in client.releases("tomly") and Version("2.1.0") in client.releases("tomly")
    conf = write_conf(tmp_path / "pip.conf", f"[global]\nno-index = true\nfind-links = {links}\n")
    local_only = IndexClient(env={"PIP_CONFIG_FILE": str(conf), "HOME": str(tmp_path)}, retries=0)
    assert local_only.index_urls == [] and list(local_only.releases("other_thing")) == [Version("1.0")]
    with pytest.raises(ProjectNotFound):
        local_only.releases("tomly2")


# -- cache and failures ---------------------------------------------------------------------------


def test_second_client_within_freshness_window_asks_nothing(index: IndexServer, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = make_client(index, cache)
    first.project_meta("tomly")
    asked = len(index.requests)
    assert asked >= 2 and first.network_requests == asked  # project page + JSON metadata
    second = make_client(index, cache)
    assert second.project_meta("tomly").info["version"] == "2.2.0"
    assert second.network_requests == 0 and len(index.requests) == asked
    expired = make_client(index, cache, max_age=0)
    expired.releases("tomly")
    assert expired.network_requests == 1
    assert not list(cache.glob(".tmp-*"))  # atomic writes leave no temp files


def test_offline_uses_only_the_cache(index: IndexServer, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(IndexUnavailable, match="offline and nothing cached"):
        make_client(index, cache, offline=True).releases("tomly")
    assert index.requests == []
    make_client(index, cache).releases("tomly")
    offline = make_client(index, cache, offline=True, max_age=0)
    assert resolve_versions(offline, "tomly", "latest:2") == [Version("2.1.0"), Version("2.2.0")]
    assert offline.network_requests == 0


def test_retry_recovers_from_one_500(client: IndexClient, index: IndexServer) -> None:
    index.misbehave("500", path="/simple/", times=1)
    assert Version("2.0.0") in client.releases("tomly")
    assert index.hits("/simple/tomly/") == 2


@pytest.mark.parametrize(
    "mode, reason",
    [
        ("500", "HTTP 500"),
        ("garbage", "garbage: project page is HTML without links"),
        ("truncated", "IncompleteRead"),
        ("hang", "timed out after 0.3 s"),
    ],
)
def test_failures_become_one_line_errors(index: IndexServer, tmp_path: Path, mode: str, reason: str) -> None:
    index.misbehave(mode, path="/simple/")
    cache = tmp_path / "cache"
    client = make_client(index, cache, timeout=0.3)
    with pytest.raises(IndexUnavailable) as info:
        client.releases("tomly")
    message = str(info.value)
    assert message.startswith("index not reachable: ") and reason in message and "\n" not in message
    assert index.hits("/simple/tomly/") == 2  # one retry, then give up
    assert not cache.exists() or not list(cache.iterdir())  # garbage is never cached


def test_a_hanging_host_is_not_waited_for_twice(index: IndexServer) -> None:
    index.misbehave("hang")
    client = make_client(index, None, timeout=0.3, retries=0)
    with pytest.raises(IndexUnavailable, match="timed out"):
        client.releases("tomly")
    with pytest.raises(IndexUnavailable, match="timed out"):
        client.releases("another")
    assert len(index.requests) == 1


def test_stale_cache_beats_a_broken_index(index: IndexServer, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    make_client(index, cache).releases("tomly")
    index.misbehave("500")
    assert Version("2.1.0") in make_client(index, cache, max_age=0).releases("tomly")


def test_json_metadata_and_its_absence(tmp_path: Path) -> None:
    advisory = {"id": "PYSEC-1", "aliases": ["CVE-1"], "fixed_in": ["1.1"]}
    with IndexServer(tmp_path, release_json=False) as index:
        index.add("vuln", "1.0", vulnerabilities=[advisory]).add("vuln", "1.1")
        client = make_client(index, None)
        latest = client.project_meta("vuln")
        assert latest.info["version"] == "1.1" and latest.vulnerabilities == []
        old = client.project_meta("vuln", "1.0")
        assert old.vulnerabilities is None  # the index has no per-release document
    with IndexServer(tmp_path / "full") as index:
        index.add("vuln", "1.0", vulnerabilities=[advisory]).add("vuln", "1.1")
        old = make_client(index, None).project_meta("vuln", "1.0")
        assert [v["id"] for v in old.vulnerabilities or []] == ["PYSEC-1"]
        assert old.sources["vulnerabilities"].endswith("/pypi/vuln/1.0/json")
    with IndexServer(tmp_path / "plain", json_api=False, simple_json=False) as index:
        index.add("vuln", "1.0")
        meta = make_client(index, None).project_meta("vuln")
        assert meta.info == {} and meta.vulnerabilities is None and list(meta.releases) == [Version("1.0")]


# -- version resolution -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec, python, expected",
    [
        (None, None, ["2.2.0"]),
        (None, "3.11", ["2.1.0"]),
        ("latest:2", "3.11", ["2.0.0", "2.1.0"]),  # 2.0.1 yanked, 2.2.0 needs 3.12
        ("latest:3", None, ["2.0.0", "2.1.0", "2.2.0"]),
        ("latest:9", "3.11", ["1.0.1", "1.1.0", "2.0.0", "2.1.0"]),
        (">=1.0.1,<2.1", None, ["1.0.1", "1.1.0", "2.0.0"]),
        (">=3.0.0b1", None, ["3.0.0b1"]),
        (["1.0.0", "2.0.1"], None, ["1.0.0", "2.0.1"]),
        ("2.1, 1.0.1", None, ["1.0.1", "2.1.0"]),
    ],
)
def test_resolve_versions(client: IndexClient, spec: object, python: str | None, expected: list[str]) -> None:
    assert [str(v) for v in resolve_versions(client, "tomly", spec, python=python)] == expected  # type: ignore[arg-type]


def test_resolution_explains_pins_and_specifiers(client: IndexClient) -> None:
    pinned = resolve(client, "tomly", ["1.0.0", "2.0.1"])
    assert pinned.excluded["2.1.0"] == "not in the list" and "2.0.1" not in pinned.excluded
    ranged = resolve(client, "tomly", ">=1.0.1,<2.1")
    assert ranged.excluded["1.0.0"] == "outside <2.1,>=1.0.1"  # the specifier as packaging prints it
    assert ranged.excluded["2.0.1"].startswith("yanked")  # yanked wins over outside


def test_resolution_explains_exclusions(client: IndexClient) -> None:
    result = resolve(client, "tomly", "latest:2", python="3.11")
    assert result.excluded["2.0.1"] == "yanked (broke parsing)"
    assert result.excluded["3.0.0b1"] == "pre-release"
    assert result.excluded["2.2.0"] == "requires-python >=3.12 excludes 3.11"
    assert result.excluded["1.1.0"] == "not the newest of the last 2 minor releases"
    with_pre = resolve_versions(client, "tomly", "latest:1", prereleases=True)
    assert with_pre == [Version("3.0.0b1")]
    assert json.loads(json.dumps(result.to_dict()))["versions"] == ["2.0.0", "2.1.0"]


@pytest.mark.parametrize(
    "spec, message",
    [
        ("latest:0", "whole number >= 1"),
        (">=2,,<", "not a valid specifier"),
        ("two", "not a version"),
        (["1.0.0", "7.0"], "no release 7.0 on the package index"),
    ],
)
def test_bad_specs_are_spike_errors(client: IndexClient, spec: object, message: str) -> None:
    with pytest.raises(SpikeError, match=message):
        resolve_versions(client, "tomly", spec)  # type: ignore[arg-type]


def test_python_allows() -> None:
    assert python_allows(">=3.8", "3.11") and not python_allows(">=3.12", "3.11")
    assert python_allows(">=3.11.2", "3.11") and not python_allows(">=3.11.2", "3.11.1")
    assert not python_allows("!=3.11.*", "3.11") and python_allows("not a spec", "3.11")


# -- the command -------------------------------------------------------------------------------


def run_cli(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(SRC), PIP_CONFIG_FILE=os.devnull)
    env.pop("PIP_INDEX_URL", None)
    env.pop("PIP_EXTRA_INDEX_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "pytest_spike.cli.versions", *args, "--cache-dir", str(cache)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_versions_command_for_people(index: IndexServer, tmp_path: Path) -> None:
    people = run_cli("tomly", "latest:2", "--python", "3.11", "-v", "--index-url", index.url, cache=tmp_path)
    assert people.returncode == 0, people.stderr
    lines = people.stdout.splitlines()
    assert lines[:2] == ["2.0.0", "2.1.0"]
    assert "2.0.1  left out: yanked (broke parsing)" in lines
    assert "2.2.0  left out: requires-python >=3.12 excludes 3.11" in lines


@pytest.fixture
def cli(
    index: IndexServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    """Run the command in-process against the test index; returns (exit code, stdout, stderr)."""
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)

    def call(*args: str) -> tuple[int, str, str]:
        code = cli_versions.run([*args, "--index-url", index.url, "--cache-dir", str(tmp_path / "cache")])
        out, err = capsys.readouterr()
        return code, out, err

    return call


def test_versions_command_for_scripts(cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("tomly")[0] == 0  # warms the cache for --offline
    code, out, _ = cli("tomly>=2", "--python", "any", "--json", "--offline")
    data = json.loads(out)
    assert code == 0 and data["versions"] == ["2.0.0", "2.1.0", "2.2.0"]
    assert data["excluded"]["2.0.1"].startswith("yanked") and data["index_url"].endswith("/simple")
    code, _, err = cli("tomly", ">=5")
    assert code == 1 and "no version of tomly matches >=5 on Python" in err
    code, _, err = cli("tomlx")
    assert (code, err.strip()) == (
        2,
        "pytest-spike versions: error: no project 'tomlx' on the package index",
    )
    code, _, err = cli("tomly", "latest:x")
    assert code == 2 and "whole number" in err and "Traceback" not in err


@pytest.mark.network
def test_real_index_resolves_latest_three_tomli(tmp_path: Path) -> None:
    client = IndexClient(cache_dir=tmp_path, timeout=20)
    versions = resolve_versions(client, "tomli", "latest:3", python="3.11")
    assert len(versions) == 3 and versions == sorted(versions)
    assert len({v.release[:2] for v in versions}) == 3 and versions[0] >= Version("2.0")
