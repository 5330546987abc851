"""Spike: which TOML parser should the billing service adopt: tomli, tomlkit or toml?

What we need: read our config files (TOML 1.0, see data/), write a config back after a
migration script edits it, and do both fast enough to run on every request's start-up.

Run it with ``pytest --spike examples/toml_parsers`` (see the README's quickstart).
"""

from __future__ import annotations

import importlib
import time
from pathlib import Path

import pytest

from pytest_spike import spike

DATA = Path(__file__).parent / "data"

PARSERS = [
    pytest.param("tomli", marks=spike.candidate("tomli"), id="tomli"),
    pytest.param("tomlkit", marks=spike.candidate("tomlkit"), id="tomlkit"),
    pytest.param("toml", marks=spike.candidate("toml"), id="toml"),
]


def plain(value):
    """tomlkit returns its own container types; compare plain Python values."""
    unwrap = getattr(value, "unwrap", None)
    return unwrap() if unwrap is not None else value


@spike.hello_world
@pytest.mark.parametrize("name", PARSERS)
def test_parses_a_string(name):
    parser = importlib.import_module(name)  # candidates are imported inside tests
    assert plain(parser.loads('a = 1\n[t]\nb = "x"\n')) == {"a": 1, "t": {"b": "x"}}


@spike.real_data
@pytest.mark.parametrize("name", PARSERS)
def test_parses_our_configs(name, spike_data, spike_metric):
    parser = importlib.import_module(name)
    files = spike_data.files("*.toml")  # the folder is spike_data in pytest.ini
    failures = []
    start = time.perf_counter()
    for path in files:
        try:
            parser.loads(path.read_text(encoding="utf-8"))
        except Exception as exc:  # the parser's own error type differs per candidate
            failures.append(f"{path.name}: {type(exc).__name__}: {exc}")
    elapsed = time.perf_counter() - start
    spike_metric("configs parsed", len(files) - len(failures), better="higher")
    spike_metric("parse time", round(elapsed * 1000 / len(files), 3), unit="ms/file", better="lower")
    assert not failures, "; ".join(failures)


@pytest.mark.parametrize("name", PARSERS)
def test_writes_a_config_back(name, spike_note):
    """Our migration scripts edit a config and write it back: we need a writer too."""
    parser = importlib.import_module(name)
    if not hasattr(parser, "dumps"):
        spike_note(f"{name} can read TOML but has no dumps(): we would need a second library to write")
    text = (DATA / "pyproject.toml").read_text(encoding="utf-8")
    document = parser.loads(text)
    assert plain(parser.loads(parser.dumps(document))) == plain(document)
    if parser.dumps(document) == text:
        spike_note(f"{name} keeps comments and layout when it writes a file back")
