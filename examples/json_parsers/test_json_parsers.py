"""Spike: which JSON library should the ingestion service adopt: orjson, ujson or simplejson?

What we need: read real-world JSON exactly as the standard library does (our reference),
write rows back out fast, and keep our 20-digit order ids exact. The data is the public Vega
datasets collection, extracted from its wheel at run time (see conftest.py).

Run it with ``pytest --spike examples/json_parsers`` (see the README).
"""

from __future__ import annotations

import importlib
import json
import time

import pytest

from pytest_spike import spike

LIBRARIES = [
    pytest.param("orjson", marks=spike.candidate("orjson"), id="orjson"),
    pytest.param("ujson", marks=spike.candidate("ujson"), id="ujson"),
    pytest.param("simplejson", marks=spike.candidate("simplejson"), id="simplejson"),
]
ROUNDS = 20


def dumps(library, value) -> str:
    """orjson returns bytes; compare text."""
    out = library.dumps(value)
    return out.decode() if isinstance(out, bytes) else out


@spike.hello_world
@pytest.mark.parametrize("name", LIBRARIES)
def test_reads_a_document(name):
    library = importlib.import_module(name)  # candidates are imported inside tests
    assert library.loads('{"a": [1, 2.5, "x"], "b": null}') == {"a": [1, 2.5, "x"], "b": None}


@spike.real_data
@pytest.mark.parametrize("name", LIBRARIES)
def test_reads_the_vega_datasets_like_the_standard_library(name, spike_data, spike_metric):
    library = importlib.import_module(name)
    files = spike_data.files("*.json")
    texts = {path.name: path.read_text(encoding="utf-8") for path in files}
    different = [file for file, text in texts.items() if library.loads(text) != json.loads(text)]
    size_mb = sum(len(text.encode()) for text in texts.values()) / 1e6
    start = time.perf_counter()
    for _ in range(ROUNDS):
        for text in texts.values():
            library.loads(text)
    spike_metric("parse speed", round(size_mb * ROUNDS / (time.perf_counter() - start), 1), unit="MB/s")
    spike_metric("files read as the stdlib reads them", len(files) - len(different))
    assert not different, f"read differently from the standard library: {different}"


@spike.real_data
@pytest.mark.parametrize("name", LIBRARIES)
def test_writes_weather_rows(name, spike_data, spike_metric):
    library = importlib.import_module(name)
    first = spike_data.rows("seattle-weather.csv", n=10)  # take ten rows first
    for row in first:
        with spike_data.record(row):
            assert json.loads(dumps(library, row)) == row
    rows = spike_data.sample("seattle-weather.csv", 1000, seed=1)
    start = time.perf_counter()
    for _ in range(ROUNDS):
        text = dumps(library, rows)
    spike_metric(
        "write speed", round(len(text) * ROUNDS / 1e6 / (time.perf_counter() - start), 1), unit="MB/s"
    )
    assert json.loads(text) == rows


@pytest.mark.parametrize("name", LIBRARIES)
def test_keeps_our_order_ids_exact(name, spike_note):
    """Order ids are 20-digit integers: a library that turns them into floats loses orders."""
    library = importlib.import_module(name)
    order = library.loads('{"order_id": 12345678901234567890123, "total": 10.25}')
    if not isinstance(order["order_id"], int):
        spike_note(f"{name} reads integers beyond 64 bits as floats: ids would be rounded")
    assert order["order_id"] == 12345678901234567890123
