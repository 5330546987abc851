"""2. Zero-file spike of three candidates, all built-in probes, cold and warm, vs by hand.

Three pytest-spike cases: cold; warm (environments and the probes' evidence cached: nothing
changed, so no probe runs again); 2b, warm with ``--spike-fresh-probes`` (every probe runs
again, the environments are kept).

pytest-spike side: ``pytest --spike --spike-candidate tomli --spike-candidate tomlkit
--spike-candidate toml --spike-isolation always`` in an empty folder (``always`` so that both
sides build environments: the benchmark venv may already hold the candidates).
Baseline: ``by_hand.sh`` (venv + pip install + import + pip download of the sdist + pytest
on its tests), per candidate, sequentially.

cold: a new ``--spike-cache-dir`` and a new ``UV_CACHE_DIR`` (pytest-spike), a new
``PIP_CACHE_DIR`` (baseline): every wheel, sdist and index answer is fetched again. The
index itself is whatever pip is configured with, so network time is part of "cold"; it is
shown apart as the time ``pip download`` takes for the same files with an empty cache.
warm: the same caches kept from the previous run (pytest-spike reuses its environments and
its probes' evidence, or only the environments with ``--spike-fresh-probes``; the baseline
reuses pip's cache but makes new venvs, as a fresh shell session would).
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

from _bench import Context, Result, alternate, clean_env, fresh_dir, median, timed

CANDIDATES = {"tomli": "tomli", "tomlkit": "tomlkit", "toml": "toml"}
#: issue 25's targets (2: cold, 2b: warm with the probes re-run); warm with evidence cached
#: is not in its table and keeps its own
TARGET_COLD = 0.15
TARGET_WARM = 0.05
TARGET_FRESH_PROBES = 0.10
BY_HAND = Path(__file__).resolve().parent / "by_hand.sh"
_DURATION = re.compile(r"^\s*([\d.]+)s (setup|call|teardown)\s+spike::([^:]+)::(\w+)", re.MULTILINE)


class _Sides:
    def __init__(self, ctx: Context, root: str = "spike2", extra: tuple[str, ...] = ()) -> None:
        self.ctx = ctx
        self.root = ctx.work / root
        self.extra = extra  # more pytest options (the box benchmark's --spike-sandbox=...)
        self.project = self.root / "project"
        self.log = ctx.work / "spike_vs_hand.log"

    def spike(self, cold: bool, durations: bool = False, fresh_probes: bool = False) -> float:
        cache, uv_cache = self.root / "spike-cache", self.root / "uv-cache"
        if cold:
            fresh_dir(cache), fresh_dir(uv_cache)
        fresh_dir(self.project)
        (self.project / "pytest.ini").write_text("[pytest]\n")
        argv = [
            self.ctx.python,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:xdist",
            "--spike",
            "--spike-isolation",
            "always",
            "--spike-cache-dir",
            str(cache),
        ]
        for name in CANDIDATES:
            argv += ["--spike-candidate", name]
        argv += self.extra
        if durations:
            argv += ["--durations=0", "--durations-min=0"]
        if fresh_probes:
            argv.append("--spike-fresh-probes")
        out = self.root / "last-spike.txt"
        if out.exists():
            out.unlink()
        # Exit 1 is a result (a probe found a high risk), not a broken run.
        return timed(
            argv, cwd=self.project, env=clean_env(UV_CACHE_DIR=str(uv_cache)), ok_codes=(0, 1), log_to=out
        )

    def by_hand(self, cold: bool) -> float:
        pip_cache = self.root / "pip-cache"
        if cold:
            fresh_dir(pip_cache)
        work = fresh_dir(self.root / "by-hand")
        specs = [f"{d}:{m}" for d, m in CANDIDATES.items()]
        return timed(
            ["bash", str(BY_HAND), str(work), self.ctx.python, *specs],
            env=clean_env(PIP_CACHE_DIR=str(pip_cache)),
            log_to=self.log,
        )

    def download_floor(self) -> float:
        """What fetching the candidates' wheels and sdists plus pytest costs with empty caches."""
        dest = fresh_dir(self.root / "download")
        cache = fresh_dir(self.root / "download-cache")
        return timed(
            [
                self.ctx.python,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                "-d",
                str(dest),
                *CANDIDATES,
                "pytest",
            ],
            env=clean_env(PIP_CACHE_DIR=str(cache)),
            log_to=self.log,
        )


def probe_breakdown(text: str) -> list[str]:
    """Seconds per built-in probe kind (summed over candidates) from ``--durations=0``."""
    per_kind: dict[str, float] = defaultdict(float)
    for seconds, _phase, _cand, kind in _DURATION.findall(text):
        per_kind[kind] += float(seconds)
    ranked = sorted(per_kind.items(), key=lambda kv: -kv[1])
    return ["  ".join(f"{kind} {sec:.2f}s" for kind, sec in ranked)] if ranked else []


def measure(ctx: Context) -> list[Result]:
    sides = _Sides(ctx)
    cold_spike, cold_hand = alternate(ctx.cold_runs, lambda: sides.spike(True), lambda: sides.by_hand(True))
    floor = sides.download_floor()
    ctx.log(f"cold: spike {cold_spike}, by hand {cold_hand}")
    # The last cold run of each side left warm caches behind.
    warm_spike, warm_hand = alternate(ctx.runs, lambda: sides.spike(False), lambda: sides.by_hand(False))
    ctx.log(f"warm: spike {warm_spike}, by hand {warm_hand}")
    rerun_spike, rerun_hand = alternate(
        ctx.runs, lambda: sides.spike(False, fresh_probes=True), lambda: sides.by_hand(False)
    )
    ctx.log(f"warm, probes re-run: spike {rerun_spike}, by hand {rerun_hand}")
    sides.spike(False, durations=True, fresh_probes=True)
    breakdown = probe_breakdown((sides.root / "last-spike.txt").read_text(errors="replace"))
    sides.spike(False, durations=True)
    cached = probe_breakdown((sides.root / "last-spike.txt").read_text(errors="replace"))
    names = ", ".join(CANDIDATES)
    return [
        Result(
            f"zero-file spike ({names}), cold",
            median(cold_spike) / median(cold_hand),
            TARGET_COLD,
            detail=[
                (
                    f"pytest-spike {median(cold_spike):.1f}s, by hand {median(cold_hand):.1f}s "
                    f"(median of {len(cold_spike)}); downloading the same wheels and sdists "
                    f"alone with an empty pip cache: {floor:.1f}s"
                )
            ],
        ),
        Result(
            f"zero-file spike ({names}), warm, evidence cached",
            median(warm_spike) / median(warm_hand),
            TARGET_WARM,
            detail=[
                (
                    f"pytest-spike {median(warm_spike):.1f}s, by hand {median(warm_hand):.1f}s "
                    f"(median of {len(warm_spike)})"
                ),
                *(f"probe time by kind (evidence reused): {line}" for line in cached),
            ],
        ),
        Result(
            f"2b zero-file spike ({names}), warm, --spike-fresh-probes (environments kept)",
            median(rerun_spike) / median(rerun_hand),
            TARGET_FRESH_PROBES,
            detail=[
                (
                    f"pytest-spike {median(rerun_spike):.1f}s, by hand {median(rerun_hand):.1f}s "
                    f"(median of {len(rerun_spike)})"
                ),
                *(f"warm probe time by kind: {line}" for line in breakdown),
            ],
        ),
    ]
