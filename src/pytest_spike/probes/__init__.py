"""Built-in probes: each takes a ProbeContext and returns a ProbeOutcome (no pytest here,
except in ``items.py``, which turns probes into pytest items)."""
