"""Spike: which dataframe library should the analytics team adopt: pandas, polars or duckdb?

What we need, the way we work: look at ten rows of a file first, then load the whole file;
load fast and without holding much memory; get a group-by right (checked against an answer
worked out by hand); and keep missing values missing. We already pin numpy (see
project-requirements.txt): the fit check says which candidate would move it.

The data is the public Vega datasets collection, extracted from its wheel at run time (see
conftest.py). Run it with ``pytest --spike examples/dataframes`` (see the README).
"""

from __future__ import annotations

import importlib
import math
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_spike import spike

LIBRARIES = [
    pytest.param("pandas", marks=spike.candidate("pandas"), id="pandas"),
    pytest.param("polars", marks=spike.candidate("polars"), id="polars"),
    # duckdb also ships adbc_driver_duckdb, a driver module that needs an optional package
    # (adbc-driver-manager); we use the duckdb module only, so the import probe checks that one.
    pytest.param("duckdb", marks=spike.candidate("duckdb", module="duckdb"), id="duckdb"),
]
AIRPORTS = "airports.csv"  # 3,376 rows; 12 airports have no city and no state
CARS = "cars.json"  # 406 cars; 8 have no Miles_per_Gallon, 6 no Horsepower
ROUNDS = 5

#: Worked out by hand from cars.json (and checked again in plain Python below): cars per
#: origin, and the mean Miles_per_Gallon of the cars that have one.
CARS_PER_ORIGIN = {"USA": 254, "Japan": 79, "Europe": 73}
MEAN_MPG = {"USA": 20.084, "Japan": 30.451, "Europe": 27.891}


# -- one way in per library: the calls a data team would write ------------------------------


def read_csv(name: str, path: Path, n: int | None = None) -> Any:
    lib = importlib.import_module(name)  # candidates are imported inside tests
    if name == "pandas":
        return lib.read_csv(path, nrows=n)
    if name == "polars":
        return lib.read_csv(path, n_rows=n)
    relation = lib.read_csv(str(path))
    return relation.limit(n) if n is not None else relation


def read_json(name: str, path: Path) -> Any:
    lib = importlib.import_module(name)
    if name == "pandas":
        return lib.read_json(path)
    if name == "polars":
        return lib.read_json(path)
    return lib.read_json(str(path))


def records(name: str, frame: Any) -> list[dict[str, Any]]:
    """The frame as plain rows, missing values as None (NaN counts as missing)."""
    if name == "pandas":
        rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
    elif name == "polars":
        rows = frame.to_dicts()
    else:
        rows = [dict(zip(frame.columns, row)) for row in frame.fetchall()]
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()} for r in rows]


def group_by_origin(name: str, frame: Any) -> dict[str, tuple[int, float]]:
    """Cars per origin and their mean Miles_per_Gallon, as each library says it."""
    if name == "pandas":
        out = frame.groupby("Origin").agg(n=("Name", "size"), mpg=("Miles_per_Gallon", "mean"))
        return {origin: (int(row.n), float(row.mpg)) for origin, row in out.iterrows()}
    if name == "polars":
        pl = importlib.import_module("polars")
        out = frame.group_by("Origin").agg(
            pl.len().alias("n"), pl.col("Miles_per_Gallon").mean().alias("mpg")
        )
        return {row["Origin"]: (int(row["n"]), float(row["mpg"])) for row in out.to_dicts()}
    out = frame.aggregate("Origin, count(*) AS n, avg(Miles_per_Gallon) AS mpg").fetchall()
    return {origin: (int(n), float(mpg)) for origin, n, mpg in out}


def rss_mb() -> float:
    """Memory the process holds now (Linux), else its peak so far."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * resource.getpagesize() / 2**20
    except OSError:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def same(expected: str, got: Any) -> bool:
    """A CSV cell (text) against what a library read: numbers as numbers, "" as missing."""
    if expected == "":
        return got is None
    try:
        return math.isclose(float(expected), float(got))
    except (TypeError, ValueError):
        return str(got) == expected


# -- the spike ------------------------------------------------------------------------------


@spike.hello_world
@pytest.mark.parametrize("name", LIBRARIES)
def test_ten_rows_first(name, spike_data):
    """Peek before loading: the first ten airports, as the csv module reads them."""
    path = spike_data.files(AIRPORTS)[0]
    expected = spike_data.rows(AIRPORTS, n=10)
    got = records(name, read_csv(name, path, n=10))
    assert len(got) == 10
    for want, row in zip(expected, got):
        with spike_data.record(want):
            assert list(row) == list(want), "columns differ"
            different = {k: row[k] for k in want if not same(want[k], row[k])}
            assert not different, f"read differently: {different}"


@spike.real_data
@pytest.mark.parametrize("name", LIBRARIES)
def test_then_the_whole_file(name, spike_data, spike_metric, spike_note):
    path = spike_data.files(AIRPORTS)[0]
    spike_data.profile(AIRPORTS, n=5000)  # its notes (missing cells, odd columns) land in the scorecard
    importlib.import_module(name)  # the import is not part of the load
    before = rss_mb()
    times = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        rows = records(name, read_csv(name, path))
        times.append(time.perf_counter() - start)
    held = max(0.0, rss_mb() - before)
    spike_metric("load + to rows", round(statistics.median(times) * 1000, 1), unit="ms", better="lower")
    spike_metric("memory held after loading", round(held, 1), unit="MB", better="lower")
    assert len(rows) == 3376
    # 12 airports have no city and no state: the file says "NA" there, as R writes it.
    missing = sum(1 for row in rows if row["city"] is None)
    spike_metric('"NA" cities read as missing (of 12, no options)', missing, better="higher")
    if missing != 12:
        spike_note(
            f'{name} reads the "NA" cells of {AIRPORTS} as text ({missing} of 12 missing): '
            "we would have to name our missing-value markers on every read"
        )


@spike.real_data
@pytest.mark.parametrize("name", LIBRARIES)
def test_group_by_matches_the_hand_count(name, spike_data, spike_metric, spike_note):
    path = spike_data.files(CARS)[0]
    # The hand-worked answer, checked once more in plain Python so a typo cannot pass.
    plain = spike_data.rows(CARS, n=1000)
    assert {o: sum(1 for c in plain if c["Origin"] == o) for o in CARS_PER_ORIGIN} == CARS_PER_ORIGIN
    start = time.perf_counter()
    frame = read_json(name, path)
    got = group_by_origin(name, frame)
    spike_metric("group-by", round((time.perf_counter() - start) * 1000, 1), unit="ms", better="lower")
    assert {o: n for o, (n, _) in got.items()} == CARS_PER_ORIGIN
    if name == "polars" and str(frame.schema["Miles_per_Gallon"]).startswith("Int"):
        spike_note(
            "polars typed Miles_per_Gallon as Int64 from the first rows of cars.json and cut "
            "the decimals of the later ones (17.5 -> 17, 139 cars) without a warning"
        )
    for origin, mean in MEAN_MPG.items():
        assert round(got[origin][1], 3) == mean, f"mean mpg of {origin}: {got[origin][1]}"


@spike.real_data
@pytest.mark.parametrize("name", LIBRARIES)
def test_missing_values_stay_missing(name, spike_data, spike_metric, spike_note):
    """6 cars have no Horsepower: they must come through as missing, not 0 or a string."""
    path = spike_data.files(CARS)[0]
    frame = read_json(name, path)
    rows = records(name, frame)
    missing = sum(1 for row in rows if row["Horsepower"] is None)
    spike_metric("missing Horsepower read as missing (of 6)", missing, better="higher")
    kind = {
        "pandas": lambda: str(frame["Horsepower"].dtype),
        "polars": lambda: str(frame.schema["Horsepower"]),
        "duckdb": lambda: str(dict(zip(frame.columns, frame.types))["Horsepower"]),
    }[name]()
    spike_note(f"{name}: Horsepower (whole numbers, 6 missing) is read as {kind}")
    assert missing == 6
