"""The example's data: the public Vega datasets, extracted once into ``.data/vega`` (see
``../vega_data.py``), the spike_data folder of this example (pytest.ini)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # examples/: the shared fetcher
from vega_data import fetch_vega  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    fetch_vega(Path(__file__).parent / ".data" / "vega")
