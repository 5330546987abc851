"""The example spike as a matrix: 3 Pythons x the last 2 minor releases of each parser.

    nox -s spike          # every cell, then the merged scorecard (.spike/report.md)
    nox -s spike -j 2     # two cells at a time
    nox -l --json         # the cells, one session each: spike_cell(py3.11-tomli-2.2.1)

Needs nox and pytest-spike importable where nox runs; from this checkout,
``pip install nox -e ../..`` (cells install pytest-spike from ``../..`` themselves).
"""

from __future__ import annotations

import nox

from pytest_spike.matrix.nox import spike_sessions

nox.options.error_on_missing_interpreters = True  # for any other session in this file
nox.options.sessions = ["spike"]

spike_sessions(
    ["."],
    plugin=["-e", "../.."],
    pythons=["3.9", "3.11", "3.13"],
    versions="latest:2",
)
