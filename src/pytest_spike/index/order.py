"""How version strings sort, apart from the index's pages: the report view of every
``--spike`` session sorts versions, and importing the page parsers (an HTML parser, pip's
configuration reader) for it cost each matrix cell's start-up ~5 ms."""

from __future__ import annotations

from typing import Any

from packaging.version import InvalidVersion, Version


def version_key(text: str) -> tuple[int, Any]:
    """Sort key for version strings: valid versions in version order, then the rest as text."""
    try:
        return 0, Version(text)
    except InvalidVersion:
        return 1, text
