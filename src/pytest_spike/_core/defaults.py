"""Defaults shared by the settings and the modules that use them (no heavy imports here)."""

from __future__ import annotations

import os
from pathlib import Path

#: How candidate environments are built.
BACKENDS = ("auto", "uv", "venv")
#: Where candidates run: see probes.base.ProbeContext.target().
ISOLATION_MODES = ("auto", "always", "never")
#: Wall time all probes of one candidate may take together.
DEFAULT_TIMEBOX_S = 600.0


def default_cache_root() -> Path:
    """Where pytest-spike keeps what it fetched: ``$XDG_CACHE_HOME/pytest-spike``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pytest-spike"
