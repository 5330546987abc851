"""Where a cold zero-file spike's wall time goes: a timeline of its steps (not judged).

Runs benchmark 2's pytest-spike side once, cold (a new ``--spike-cache-dir`` and a new
``UV_CACHE_DIR``), with ``PYTEST_SPIKE_TIMELINE`` set, and prints every span the host
recorded (steps through the runner, environment builds, sdist downloads and unpacking) as a
chart: one row per span, in start order, its thread, its start and end in seconds from the
spike's start, and a bar on the run's time axis. Then the sum per kind of span.

    python benchmarks/cold_timeline.py [--sandbox auto|off] [--work DIR] [--width N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from _bench import clean_env, fresh_dir

CANDIDATES = ("tomli", "tomlkit", "toml")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sandbox", default="auto", choices=("auto", "off"))
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "spike-cold-timeline")
    parser.add_argument("--width", type=int, default=40, help="the bars' width (default 40)")
    args = parser.parse_args()
    work = fresh_dir(args.work)
    project = fresh_dir(work / "project")
    (project / "pytest.ini").write_text("[pytest]\n")
    spans = work / "timeline.jsonl"
    argv = [sys.executable, "-m", "pytest", "-p", "no:xdist", "--spike", "--spike-isolation", "always"]
    argv += [f"--spike-cache-dir={work / 'spike-cache'}", f"--spike-sandbox={args.sandbox}"]
    for name in CANDIDATES:
        argv += ["--spike-candidate", name]
    env = clean_env(UV_CACHE_DIR=str(fresh_dir(work / "uv-cache")), PYTEST_SPIKE_TIMELINE=str(spans))
    start = time.time()
    done = subprocess.run(argv, cwd=project, env=env, capture_output=True, text=True)
    wall = time.time() - start
    (work / "spike.log").write_text(done.stdout + done.stderr)
    if done.returncode not in (0, 1):
        print(f"the spike failed ({done.returncode}); see {work / 'spike.log'}", file=sys.stderr)
        return 2
    rows = [json.loads(line) for line in spans.read_text().splitlines()]
    rows.sort(key=lambda r: r["start"])
    print(f"cold spike, --spike-sandbox={args.sandbox}: {wall:.2f} s wall, {len(rows)} spans")
    scale = args.width / wall
    for row in rows:
        begin, end = row["start"] - start, row["end"] - start
        bar = " " * int(begin * scale) + "#" * max(1, int((end - begin) * scale))
        label = row.get("stage") or row.get("candidate") or row.get("archive") or row.get("file") or ""
        argv_text = row.get("argv", "")[:50]
        print(
            f"{begin:6.2f} {end:6.2f} {end - begin:5.2f} {row['thread'][-16:]:16} "
            f"{bar:{args.width}} {row['what']} {label} {argv_text}"
        )
    totals: dict[str, float] = defaultdict(float)
    for row in rows:
        totals[f"{row['what']} {row.get('stage', '')}".strip()] += row["end"] - row["start"]
    print("sum per kind (seconds, overlapping spans each counted):")
    for what, seconds in sorted(totals.items(), key=lambda item: -item[1]):
        print(f"  {seconds:6.2f} {what}")
    return 0


if __name__ == "__main__":
    os.chdir(Path(__file__).resolve().parent)
    raise SystemExit(main())
