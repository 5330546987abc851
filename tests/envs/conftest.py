from __future__ import annotations

from collections.abc import Iterator

import pytest
from backends import hermetic


@pytest.fixture(autouse=True)
def _offline(request: pytest.FixtureRequest) -> Iterator[None]:
    """Environment tests use only the local index they pass, unless marked ``network``."""
    if request.node.get_closest_marker("network"):
        yield
        return
    with hermetic():
        yield
