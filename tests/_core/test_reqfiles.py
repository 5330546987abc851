"""The shared reader of requirement-file lines (used for the project's files and sdists')."""

from __future__ import annotations

from pytest_spike._core.reqfiles import include, logical_lines


def test_comments_continuations_and_numbers() -> None:
    text = (
        "# a comment\n"
        "\n"
        "numpy==1.26.4 \\\n"
        "    --hash=sha256:abc  # why\n"
        "pkg @ https://example.invalid/x.zip#egg=pkg\n"
        "last \\\n"
    )
    assert logical_lines(text) == [
        (3, "numpy==1.26.4      --hash=sha256:abc"),
        (5, "pkg @ https://example.invalid/x.zip#egg=pkg"),
        (6, "last"),
    ]


def test_include_spellings() -> None:
    assert include("-r base.txt") == ("-r", "base.txt")
    assert include("-rbase.txt") == ("-r", "base.txt")
    assert include("--requirement=base.txt") == ("-r", "base.txt")
    assert include("-c constraints.txt") == ("-c", "constraints.txt")
    assert include("--constraint constraints.txt") == ("-c", "constraints.txt")
    assert include("--index-url x") is None and include("requests") is None
