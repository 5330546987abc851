"""What the index's answers say: project pages (PEP 691 JSON, PEP 503 HTML) and JSON metadata."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from indexserver import IndexServer
from packaging.version import Version

from pytest_spike.index.order import version_key
from pytest_spike.index.pages import (
    SIMPLE_JSON,
    Garbage,
    Page,
    parse_json_metadata,
    parse_simple_page,
    project_of,
    releases_of,
    same_version,
    with_upload_times,
)

PAGE = "https://host.invalid/simple/tomly/"


@pytest.mark.parametrize("simple_json", [True, False], ids=["pep691-json", "pep503-html"])
def test_releases_from_json_and_html_pages(tmp_path: Path, simple_json: bool) -> None:
    with IndexServer(tmp_path, simple_json=simple_json) as index:
        index.add("tomly", "1.0.0", upload_time="2021-01-01")
        index.add("tomly", "2.0.1", upload_time="2022-02-01", yanked="broke parsing")
        index.add("tomly", "2.2.0", upload_time="2024-01-01", requires_python=">=3.12")
        index.add("tomly", "3.0.0b1", upload_time="2024-06-01")
        releases = index.client().releases("Tomly")
        base = index.base
    assert [str(v) for v in releases] == ["1.0.0", "2.0.1", "2.2.0", "3.0.0b1"]
    yanked = releases[Version("2.0.1")]
    assert yanked.yanked and yanked.yanked_reason == "broke parsing"
    newest = releases[Version("2.2.0")]
    assert newest.requires_python == ">=3.12"
    assert newest.kinds() == {"wheel", "sdist"}
    # relative file URLs are joined to the page URL
    assert all(f.url.startswith(f"{base}/files/") for f in newest.files)
    assert all(len(f.hashes["sha256"]) == 64 for f in newest.files)
    assert (newest.upload_time is not None) == simple_json  # HTML pages carry no upload times


def test_json_page() -> None:
    body = json.dumps(
        {
            "meta": {"api-version": "1.1"},
            "project-status": {"status": "deprecated", "reason": "use tomlz"},
            "files": [
                {
                    "filename": "tomly-1.0-py3-none-any.whl",
                    "url": "../../files/tomly-1.0-py3-none-any.whl",
                    "hashes": {"sha256": "ab"},
                    "requires-python": ">=3.8",
                    "yanked": "",
                    "upload-time": "2024-01-02T03:04:05.000000Z",
                    "size": 123,
                },
                {"filename": "tomly-1.0.tar.gz", "url": "https://files.invalid/tomly-1.0.tar.gz"},
                {"filename": "notes.txt", "url": "notes.txt", "yanked": False},
            ],
        }
    )
    page = parse_simple_page(body, SIMPLE_JSON, PAGE)
    wheel, sdist, other = page.files
    assert (page.status, page.status_reason) == ("deprecated", "use tomlz")
    assert wheel.url == "https://host.invalid/files/tomly-1.0-py3-none-any.whl"
    assert (wheel.kind, wheel.version, wheel.requires_python, wheel.size) == ("wheel", "1.0", ">=3.8", 123)
    assert wheel.yanked and wheel.yanked_reason is None  # an empty reason still yanks
    assert wheel.upload_time == datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert (sdist.kind, sdist.version, sdist.yanked, sdist.upload_time) == ("sdist", "1.0", False, None)
    assert (other.kind, other.version) == ("other", None)


def test_html_page() -> None:
    body = (
        '<html><head><meta name="pypi:repository-version" content="1.1">'
        '<meta name="pypi:project-status" content="archived"></head><body>'
        '<a href="/files/tomly-1.0.tar.gz#sha256=abc" data-requires-python="&gt;=3.9">tomly-1.0.tar.gz</a>'
        '<a href="tomly%2D2.0-py3-none-any.whl" data-yanked="">x</a>'
        '<a href="tomly-2.1-py3-none-any.whl" data-yanked="bad build">x</a>'
        "</body></html>"
    )
    page = parse_simple_page(body, "text/html; charset=utf-8", PAGE)
    first, second, third = page.files
    assert (page.status, page.status_reason) == ("archived", None)
    assert first.url == "https://host.invalid/files/tomly-1.0.tar.gz"
    assert (first.hashes, first.requires_python, first.yanked) == ({"sha256": "abc"}, ">=3.9", False)
    assert second.filename == "tomly-2.0-py3-none-any.whl" and second.yanked
    assert second.yanked_reason is None and third.yanked_reason == "bad build"


@pytest.mark.parametrize(
    "body, ctype, message",
    [
        ("{", SIMPLE_JSON, "project page is not valid JSON"),
        ('{"name": "tomly"}', "application/json", "has no 'files' list"),
        ('{"files": [{"filename": "a.whl"}]}', SIMPLE_JSON, "without filename or url"),
        ("<html><body>Service unavailable</body></html>", "text/html", "HTML without links"),
        ("tomly-1.0.tar.gz", "text/plain", "came as text/plain"),
        ("", "", "came as no content type"),
    ],
)
def test_garbage_pages(body: str, ctype: str, message: str) -> None:
    with pytest.raises(Garbage, match=message):
        parse_simple_page(body, ctype, PAGE)


def test_json_metadata() -> None:
    assert parse_json_metadata('{"info": {"name": "tomly"}}')["info"] == {"name": "tomly"}
    with pytest.raises(Garbage, match="not valid JSON"):
        parse_json_metadata("<html>")
    with pytest.raises(Garbage, match="no 'info' object"):
        parse_json_metadata('{"info": []}')


def test_releases_of_pages_and_their_upload_times() -> None:
    first = parse_simple_page(
        '<a href="tomly-1.0.tar.gz" data-yanked="">x</a><a href="tomly-0.9.tar.gz">x</a>'
        '<a href="tomly-bad_version.tar.gz">x</a>',
        "text/html",
        PAGE,
    )
    second = parse_simple_page(
        '<a href="tomly-1.0.tar.gz">x</a><a href="tomly-1.0-py3-none-any.whl">x</a>', "text/html", PAGE
    )
    releases = releases_of([first, second, Page(())])
    assert list(releases) == [Version("0.9"), Version("1.0")]
    one = releases[Version("1.0")]
    # the first page wins a file name: its yanked sdist, plus the wheel only the second lists
    assert [(f.filename, f.yanked) for f in one.files] == [
        ("tomly-1.0.tar.gz", True),
        ("tomly-1.0-py3-none-any.whl", False),
    ]
    doc = {
        "releases": {
            "1.0": [{"filename": "tomly-1.0.tar.gz", "upload_time_iso_8601": "2020-05-06T07:08:09Z"}]
        }
    }
    filled = with_upload_times(releases, doc)
    assert filled[Version("1.0")].upload_time == datetime(2020, 5, 6, 7, 8, 9, tzinfo=timezone.utc)
    assert filled[Version("0.9")].upload_time is None and releases[Version("1.0")].upload_time is None


def test_names_and_versions() -> None:
    assert project_of("Tomly_Thing-1.0-py3-none-any.whl") == "tomly-thing"
    assert project_of("tomly-1.0.zip") == "tomly" and project_of("README") is None
    assert same_version("2.0", "2.0.0") and not same_version("2.0", None)
    assert same_version("not a version", "not a version")
    assert sorted(["10.0", "2.0", "dev", "2.0rc1", "abc"], key=version_key) == [
        "2.0rc1",
        "2.0",
        "10.0",
        "abc",
        "dev",
    ]
