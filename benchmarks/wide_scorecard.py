"""5. A scorecard of 50 candidates: render time and whether every line fits 80 columns.

Renders with ``pytest_spike.report.terminal.scorecard_lines`` at width 79 (an 80-column
terminal, as pytest's reporter uses it) and with the matrix renderer's Markdown for scale.
Not a ratio: the render time is reported, and the width is a yes/no target.
"""

from __future__ import annotations

import time

from _bench import Context, Result, median
from _samples import candidate_result, scorecard

from pytest_spike.report.terminal import scorecard_lines

CANDIDATES = 50
WIDTH = 79  # pytest's terminal reporter writes width - 1 on an 80-column terminal
TARGET_SECONDS = 0.5


def measure(ctx: Context) -> list[Result]:
    card = scorecard(
        {"python": "3.11", "python_short": "3.11"},
        [candidate_result(f"candidate-{i:02d}", f"1.{i}.0", i) for i in range(CANDIDATES)],
    )
    times = []
    for _ in range(max(ctx.runs, 5)):
        start = time.perf_counter()
        lines = scorecard_lines(card, WIDTH)
        times.append(time.perf_counter() - start)
    too_wide = [text for text, _ in lines if len(text) > WIDTH + 1]
    detail = [f"{len(lines)} lines"]
    detail += [f"{len(t)} columns: {t[:70]}..." for t in too_wide[:3]]
    return [
        Result(
            f"scorecard of {CANDIDATES} candidates, render",
            median(times),
            TARGET_SECONDS,
            unit="s",
            detail=[f"median of {len(times)} renders"],
        ),
        Result(
            f"scorecard of {CANDIDATES} candidates fits 80 columns",
            float(max(len(t) for t, _ in lines)),
            80.0,
            unit=" cols",
            detail=detail,
            check=not too_wide,
        ),
    ]
