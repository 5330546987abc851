"""pytest-spike: turn "can we adopt this package, and at what risk?" into re-runnable tests.

The public surface is what ``__all__`` lists; everything else may change between releases.
"""

from __future__ import annotations

from pytest_spike.marks import spike
from pytest_spike.model import Blame, Finding, Level, Severity, SpikeError

__version__ = "0.1.0"

__all__ = ["Blame", "Finding", "Level", "Severity", "SpikeError", "__version__", "spike"]
