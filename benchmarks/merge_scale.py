"""4. ``pytest-spike merge`` of 125, 250 and 500 cell files: seconds, peak memory, linearity.

Each cell file is a results file as a matrix cell writes it (one candidate, five probes,
findings, a metric, a note), for 10 candidates x 5 Pythons x up to 10 versions. The merge
runs as the real command in a child process (``python -m pytest_spike merge DIR --json
--md``), which also reports its own time in the merge and its peak RSS. Linear means:
from 250 to 500 files the time in the merge at most doubles (x2 / 2 = 1.0; judged <= 1.3,
quadratic work would give 2.0); memory growth per cell file is shown.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from _bench import Context, Result, clean_env, fresh_dir, median
from _samples import candidate_result, scorecard

from pytest_spike.report.schema import dumps

SIZES = (125, 250, 500)
PYTHONS = ("3.9", "3.10", "3.11", "3.12", "3.13")
#: The child: run the CLI's main, then print wall time and peak RSS (KiB on Linux) as JSON.
_CHILD = (
    "import json, resource, sys, time, io, contextlib\n"
    "from pytest_spike.cli import main\n"
    "start = time.perf_counter()\n"
    "with contextlib.redirect_stdout(io.StringIO()):\n"
    "    code = main(sys.argv[1:])\n"
    "print(json.dumps({'code': code, 'seconds': time.perf_counter() - start,\n"
    "                  'rss_kb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))\n"
)


def write_cells(folder: Path, count: int) -> None:
    fresh_dir(folder)
    for n in range(count):
        cand, py, ver = n % 10, PYTHONS[(n // 10) % 5], n // 50
        name, version = f"candidate-{cand}", f"1.{ver}.0"
        cell_id = f"py{py}-{name}-{version}"
        card = scorecard(
            {
                "id": cell_id,
                "python": f"{py}.1",
                "python_short": py,
                "candidate": name,
                "version": version,
                "implementation": "CPython",
                "platform": "linux",
            },
            [candidate_result(name, version, n)],
        )
        (folder / f"{cell_id}.json").write_text(dumps(card))


def merge_once(ctx: Context, folder: Path, out: Path) -> dict[str, float]:
    argv = [
        ctx.python,
        "-c",
        _CHILD,
        "merge",
        str(folder),
        "--json",
        str(out / "merged.json"),
        "--md",
        str(out / "merged.md"),
    ]
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=clean_env(COLUMNS="80"), check=False)
    wall = time.perf_counter() - start
    try:
        data = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise RuntimeError(f"merge failed: {done.stderr.strip()[-400:]}") from None
    if data["code"] not in (0, 1):
        raise RuntimeError(f"merge exited {data['code']}: {done.stderr.strip()[-400:]}")
    rss_mb = data["rss_kb"] / (1024 if sys.platform != "darwin" else 1024 * 1024)
    return {"wall": wall, "inside": data["seconds"], "rss": rss_mb}


def measure(ctx: Context) -> list[Result]:
    root = ctx.work / "merge"
    rows: dict[int, dict[str, float]] = {}
    for size in SIZES:
        folder = root / f"cells-{size}"
        write_cells(folder, size)
        out = fresh_dir(root / f"out-{size}")
        samples = [merge_once(ctx, folder, out) for _ in range(max(2 * ctx.runs, 5))]
        rows[size] = {k: median([s[k] for s in samples]) for k in samples[0]}
    lines = [
        f"{n} files: {r['wall']:.2f}s wall ({r['inside']:.2f}s in merge), peak {r['rss']:.0f} MB"
        for n, r in rows.items()
    ]
    mid, big = rows[SIZES[1]], rows[SIZES[2]]
    # Doubling the cells may at most double the time (quadratic work would give x4): the
    # normalised growth is judged, on the two largest sizes where start-up matters least.
    growth = (big["inside"] / max(mid["inside"], 1e-9)) / (SIZES[2] / SIZES[1])
    per_cell_kb = (big["rss"] - rows[SIZES[0]]["rss"]) * 1024 / (SIZES[2] - SIZES[0])
    lines.append(
        f"time x{big['inside'] / max(mid['inside'], 1e-9):.2f} from {SIZES[1]} to {SIZES[2]} files "
        f"(x2 is linear); memory grows {per_cell_kb:.0f} KB per cell file"
    )
    return [
        Result("merge of 500 cell files", big["wall"], None, unit="s", detail=lines),
        Result(
            f"merge time growth per doubling of cells ({SIZES[1]} -> {SIZES[2]}), normalised",
            growth,
            1.3,
            detail=["1.0 is linear, 2.0 quadratic"],
        ),
    ]
