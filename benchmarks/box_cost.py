"""7. The box's cost: benchmarks 2 and 3 boxed (``--spike-sandbox auto``) vs ``off``.

Both sides are pytest-spike, the same commands as benchmark 2 (the zero-file spike of three
candidates) and benchmark 3 (``nox -s spike -j 2`` over 3 Pythons x 3 versions of tomli),
once with the box (bubblewrap) and once with ``--spike-sandbox off`` (ini ``spike_sandbox =
off`` in the matrix's project, which its cells read), run in turn in the same run; the ratio
boxed / off is judged. Each side has caches of its own, so cold is cold on both.

Measured: the zero-file spike cold and warm with ``--spike-fresh-probes`` (every probe runs
again: the steps a box wraps, without the environment builds), and the matrix cold and warm.
Where bubblewrap cannot run here, both sides would run unboxed: reported "not measured".

The judged figure is the median of the pairs' ratios (each boxed run against the run of the
other side next to it), over at least :data:`MIN_COLD` cold and :data:`MIN_WARM` warm pairs:
one run on this machine swings by 10-20 %, more than the 5 % judged, and the ratio of two
medians of two or three runs each flipped between 0.8 and 1.28 for the same code. A pair's
two runs share the machine's state of the moment. The ratio of the medians is shown beside it.
"""

from __future__ import annotations

from pathlib import Path

from _bench import Context, Result, alternate, median, pyenv_pythons, tool_python
from matrix_vs_nox import PYTHONS, _Matrix
from spike_vs_hand import _Sides

TARGET = 1.05
#: The fewest pairs judged (``--cold-runs`` / ``--runs`` ask for more, not fewer).
MIN_COLD = 4
MIN_WARM = 6


def measure(ctx: Context) -> list[Result]:
    from pytest_spike._core import sandbox

    state = sandbox.status(sandbox.Policy())
    names = ("zero-file spike, cold", "zero-file spike, warm, probes re-run", "matrix, cold", "matrix, warm")
    if not state.boxed:
        return [Result(f"box cost, {n}", None, TARGET, detail=[state.describe()]) for n in names]
    results = _spike(ctx)
    results += _matrix(ctx)
    return results


def _ratio(name: str, boxed: list[float], off: list[float]) -> Result:
    pairs = sorted(b / o for b, o in zip(boxed, off))
    return Result(
        f"box cost, {name}, boxed / --spike-sandbox off",
        median(pairs),
        TARGET,
        detail=[
            f"median of {len(pairs)} pairs' ratios (each boxed run against the off run beside it): "
            f"{median(pairs):.3f}, from {pairs[0]:.3f} to {pairs[-1]:.3f}; ratio of the medians "
            f"{median(boxed) / median(off):.3f}",
            f"boxed {median(boxed):.2f}s, off {median(off):.2f}s (medians; "
            f"boxed {', '.join(f'{t:.2f}' for t in boxed)}; off {', '.join(f'{t:.2f}' for t in off)})",
        ],
    )


def _spike(ctx: Context) -> list[Result]:
    boxed = _Sides(ctx, "box-spike-boxed", ("--spike-sandbox=auto",))
    off = _Sides(ctx, "box-spike-off", ("--spike-sandbox=off",))
    cold_boxed, cold_off = alternate(
        max(ctx.cold_runs, MIN_COLD), lambda: boxed.spike(True), lambda: off.spike(True)
    )
    ctx.log(f"spike cold: boxed {cold_boxed}, off {cold_off}")
    warm_boxed, warm_off = alternate(
        max(ctx.runs, MIN_WARM),
        lambda: boxed.spike(False, fresh_probes=True),
        lambda: off.spike(False, fresh_probes=True),
    )
    ctx.log(f"spike warm, probes re-run: boxed {warm_boxed}, off {warm_off}")
    return [
        _ratio("zero-file spike (3 candidates), cold", cold_boxed, cold_off),
        _ratio("zero-file spike, warm, --spike-fresh-probes", warm_boxed, warm_off),
    ]


def _matrix(ctx: Context) -> list[Result]:
    interpreters = pyenv_pythons(PYTHONS)
    missing = [v for v in PYTHONS if v not in interpreters]
    if missing:
        why = f"no pyenv interpreter for Python {', '.join(missing)}"
        return [Result(f"box cost, matrix, {m}", None, TARGET, detail=[why]) for m in ("cold", "warm")]
    nox = str(Path(tool_python(ctx)).parent / "nox")
    boxed = _Matrix(ctx, nox, interpreters, "box-boxed", "spike_sandbox = auto\n")
    off = _Matrix(ctx, nox, interpreters, "box-off", "spike_sandbox = off\n")
    plugin = boxed.plugin()
    boxed.write_spike(plugin)
    off.write_spike(plugin)
    cold_boxed, cold_off = alternate(
        max(ctx.cold_runs, MIN_COLD), lambda: boxed.spike(True), lambda: off.spike(True)
    )
    ctx.log(f"matrix cold: boxed {cold_boxed}, off {cold_off}")
    warm_boxed, warm_off = alternate(
        max(ctx.runs, MIN_WARM), lambda: boxed.spike(False), lambda: off.spike(False)
    )
    ctx.log(f"matrix warm: boxed {warm_boxed}, off {warm_off}")
    return [
        _ratio(f"matrix {len(PYTHONS)} Pythons x 3 versions of tomli (nox -j 2), cold", cold_boxed, cold_off),
        _ratio("matrix, warm", warm_boxed, warm_off),
    ]
