"""Where a cold spike's wall time goes: a timeline of its steps (not judged).

Runs benchmark 2's pytest-spike side once, cold (a new ``--spike-cache-dir`` and a new
``UV_CACHE_DIR``), with ``PYTEST_SPIKE_TIMELINE`` set, and prints every span the host
recorded (steps through the runner, environment builds, sdist downloads and unpacking) as a
chart: one row per span, in start order, its thread, its start and end in seconds from the
spike's start, and a bar on the run's time axis. Then the sum per kind of span.

``--upgrade`` runs benchmark 6's upgrade spike instead (its 500 tests, oldlib 1.0 -> 2.0 from
a folder of two wheels, a new cache): the baseline's run is a span too (``upgrade-baseline``).

    python benchmarks/cold_timeline.py [--upgrade] [--sandbox auto|off] [--work DIR] [--width N]
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
    parser.add_argument("--upgrade", action="store_true", help="benchmark 6's upgrade spike instead")
    parser.add_argument("--sandbox", default="auto", choices=("auto", "off"))
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "spike-cold-timeline")
    parser.add_argument("--width", type=int, default=40, help="the bars' width (default 40)")
    args = parser.parse_args()
    work = fresh_dir(args.work)
    spans = work / "timeline.jsonl"
    if args.upgrade:
        argv, project, env = _upgrade_spike(work, args.sandbox)
    else:
        project = fresh_dir(work / "project")
        (project / "pytest.ini").write_text("[pytest]\n")
        argv = [sys.executable, "-m", "pytest", "-p", "no:xdist", "--spike", "--spike-isolation", "always"]
        argv += [f"--spike-cache-dir={work / 'spike-cache'}", f"--spike-sandbox={args.sandbox}"]
        for name in CANDIDATES:
            argv += ["--spike-candidate", name]
        env = clean_env(UV_CACHE_DIR=str(fresh_dir(work / "uv-cache")))
    env["PYTEST_SPIKE_TIMELINE"] = str(spans)
    start = time.time()
    done = subprocess.run(argv, cwd=project, env=env, capture_output=True, text=True)
    wall = time.time() - start
    (work / "spike.log").write_text(done.stdout + done.stderr)
    if done.returncode not in (0, 1):
        print(f"the spike failed ({done.returncode}); see {work / 'spike.log'}", file=sys.stderr)
        return 2
    rows = [json.loads(line) for line in spans.read_text().splitlines()]
    rows.sort(key=lambda r: r["start"])
    kind = "upgrade spike" if args.upgrade else "spike"
    print(f"cold {kind}, --spike-sandbox={args.sandbox}: {wall:.2f} s wall, {len(rows)} spans")
    scale = args.width / wall
    for row in rows:
        begin, end = row["start"] - start, row["end"] - start
        bar = " " * int(begin * scale) + "#" * max(1, int((end - begin) * scale))
        label = row.get("stage") or row.get("candidate") or row.get("archive") or row.get("file") or ""
        label = label or (f"{row['tests']} tests" if "tests" in row else "")
        argv_text = " ".join(row.get("argv", "").split())[:50]  # a "-c" script on one line
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


def _upgrade_spike(work: Path, sandbox: str) -> tuple[list[str], Path, dict[str, str]]:
    """Benchmark 6's set-up in ``work`` (its index, project and oldlib 1.0 environment, the
    suite run once so its bytecode is there, as the benchmark does), and its spike's command."""
    import upgrade_spike
    from _bench import Context, find_uv

    uv = find_uv()
    if uv is None:
        raise SystemExit("--upgrade needs uv (the benchmark builds its environments with it)")
    index = upgrade_spike.make_index(work / "index")
    project = fresh_dir(work / "project")
    upgrade_spike.make_project(project)
    setup = Context(work=work, python=sys.executable, runs=1, cold_runs=1, log=print)
    python = upgrade_spike.make_env(setup, uv, work / "env-1.0", index, "1.0")
    env = upgrade_spike.offline_env(index, fresh_dir(work / "uv-cache"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    suite = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    subprocess.run(suite, cwd=project, env=env, capture_output=True, check=False)
    argv = [*suite, "--spike-upgrade=oldlib", f"--spike-cache-dir={work / 'spike-cache'}"]
    return [*argv, f"--spike-sandbox={sandbox}"], project, env


if __name__ == "__main__":
    os.chdir(Path(__file__).resolve().parent)
    raise SystemExit(main())
