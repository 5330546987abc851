"""pytest-spike: turn "can we adopt this package, and at what risk?" into re-runnable tests.

The public surface is what ``__all__`` lists; everything else may change between releases.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pytest_spike.model import Blame, Finding, Level, Severity, SpikeError

if TYPE_CHECKING:
    from pytest_spike.marks import spike

__version__ = "0.1.0"

__all__ = ["Blame", "Finding", "Level", "Severity", "SpikeError", "__version__", "spike"]


def __getattr__(name: str) -> Any:
    # ``spike`` (the marks) needs pytest; the matrix runner, nox and the CLI import this
    # package without running pytest, and pay for importing it only when they use the marks.
    if name == "spike":
        from pytest_spike.marks import spike

        return spike
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
