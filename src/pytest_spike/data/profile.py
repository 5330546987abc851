"""Profiles of the team's data: column kinds, missing values, and tutorial-data smells.

A profile reads a bounded number of records and says what a spike checks by hand on
tutorial data: integers only, categoricals pre-cast to codes, no missing values at all.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

_EXCERPT = 200


def _cap(text: str, limit: int = _EXCERPT) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def excerpt(record: Any, limit: int = _EXCERPT) -> str:
    """A record as one short line of JSON (``repr`` for what JSON cannot show)."""
    try:
        text = json.dumps(record, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(record)
    return _cap(" ".join(text.split()), limit)


#: Text that means "no value" in exported data.
MISSING_TEXT = frozenset({"", "na", "n/a", "nan", "null", "none", "nil", "-", "?"})
#: Below this many records a profile reports kinds but no smells: too few to judge.
SMELL_MIN_ROWS = 20
_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?|[+-]?inf(inity)?", re.I)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?")
_BOOL = frozenset({"true", "false", "yes", "no"})
_DISTINCT_CAP = 64


def value_kind(value: Any) -> str:
    """The kind of one value: int, float, bool, str, date, nested or empty (missing)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "empty"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "int" if isinstance(value, int) else "float"
    if isinstance(value, (dict, list, tuple)):
        return "nested"
    if not isinstance(value, str):
        return "date" if hasattr(value, "isoformat") else "str"
    text = value.strip()
    low = text.lower()
    if low in MISSING_TEXT:
        return "empty"
    for kind, pattern in (("int", _INT), ("float", _FLOAT), ("date", _DATE)):
        if pattern.fullmatch(text):
            return kind
    return "bool" if low in _BOOL else "str"


@dataclass
class ColumnProfile:
    """What the first records of a file hold in one column."""

    name: str
    kinds: dict[str, int] = field(default_factory=dict)
    missing: int = 0
    distinct: set[str] = field(default_factory=set)
    low: int | None = None
    high: int | None = None

    @property
    def kind(self) -> str:
        """int, float, bool, str, date, nested, empty (no values) or mixed."""
        present = set(self.kinds) - {"empty"}
        if present == {"int", "float"}:
            return "float"
        if len(present) > 1:
            return "mixed"
        return present.pop() if present else "empty"

    def add(self, value: Any) -> None:
        kind = value_kind(value)
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        if kind == "empty":
            return
        if len(self.distinct) <= _DISTINCT_CAP:
            self.distinct.add(value.strip() if isinstance(value, str) else excerpt(value, 80))
        if kind == "int":
            number = int(value)
            self.low = number if self.low is None else min(self.low, number)
            self.high = number if self.high is None else max(self.high, number)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "kinds": dict(self.kinds),
            "missing": self.missing,
            "distinct": min(len(self.distinct), _DISTINCT_CAP),
            "distinct_capped": len(self.distinct) > _DISTINCT_CAP,
            "min": self.low,
            "max": self.high,
        }


@dataclass
class Profile:
    """Column kinds, missing counts and data smells of the first records of one file."""

    file: str
    rows: int
    columns: list[ColumnProfile]
    truncated: bool = False

    @classmethod
    def build(cls, file: str, records: Iterable[Any], *, truncated: bool = False) -> Profile:
        """Profile records: dicts by key, lists by position, anything else as ``value``."""
        columns: dict[str, ColumnProfile] = {}
        rows = 0
        for record in records:
            rows += 1
            if isinstance(record, dict):
                items: Iterable[tuple[Any, Any]] = record.items()
            elif isinstance(record, (list, tuple)):
                items = enumerate(record)
            else:
                items = [("value", record)]
            for key, value in items:
                columns.setdefault(str(key), ColumnProfile(str(key))).add(value)
        for col in columns.values():
            # A key absent from a record is as missing as an empty cell.
            col.missing = rows - sum(c for k, c in col.kinds.items() if k != "empty")
        return cls(file, rows, list(columns.values()), truncated)

    def notes(self) -> list[str]:
        """Smells that suggest tutorial data rather than the real thing, one line each."""
        cols = self.columns
        out: list[str] = []
        if self.rows < SMELL_MIN_ROWS or not cols:
            return out
        shape = f"{self.rows} rows x {len(cols)} columns"
        if len(cols) > 1 and all(c.kind == "int" for c in cols):
            out.append(
                f"{self.file}: integers only in every column ({shape}): looks pre-encoded; "
                "try the candidate on data that still has its text and decimals"
            )
        if not any(c.missing for c in cols):
            out.append(
                f"{self.file}: no missing values at all ({shape}): real data has gaps; "
                "include rows with missing values"
            )
        for col in cols:
            out.extend(self._column_notes(col))
        return out

    def _column_notes(self, col: ColumnProfile) -> list[str]:
        if col.kind == "empty":
            return [f"{self.file}: column {col.name!r} is empty in all {self.rows} rows"]
        if len(col.distinct) == 1 and not col.missing:
            value = next(iter(col.distinct))
            return [f"{self.file}: column {col.name!r} is constant ({value!r} in every row)"]
        count = self.rows - col.missing
        if (
            col.kind == "int"
            and col.low in (0, 1)
            and col.high is not None
            and 3 <= len(col.distinct) == col.high - col.low + 1 <= 12
            and len(col.distinct) * 4 <= count
        ):
            return [
                f"{self.file}: column {col.name!r} holds {len(col.distinct)} distinct "
                f"integers {col.low}..{col.high}: categoricals pre-cast to codes? "
                "real data may carry the labels"
            ]
        return []

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "rows": self.rows,
            "truncated": self.truncated,
            "columns": {c.name: c.to_dict() for c in self.columns},
            "notes": self.notes(),
        }
