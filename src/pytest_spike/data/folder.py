"""The team's own data for ``real_data`` probes: list files, take ten rows, sample, profile.

Everything streams: taking ten rows of a 2 GB file reads a few kilobytes, and sampling keeps
only the sample in memory. Malformed input is a :class:`DataError` naming the file and line,
because a spike must tell "our data is broken" apart from "the candidate is broken".
Standard library only; Parquet needs pyarrow, imported when a Parquet file is read.
"""

from __future__ import annotations

import collections
import csv
import gzip
import io
import itertools
import json
import random
import re
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import IO, Any, NoReturn

from pytest_spike.data.profile import Profile, _cap, excerpt
from pytest_spike.model import Finding, Severity, SpikeError

#: Suffixes (after an optional ``.gz``) and the reader each one gets.
FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_CHUNK = 1 << 16
#: One JSON array element larger than this is a broken file, not a record.
_MAX_RECORD_CHARS = 64 << 20
#: How many handed-out records remember where they came from (for ``record()``).
_PROVENANCE = 4096
#: ``(location, record)`` pairs from one file, read lazily; closing it closes the file.
_Stream = Generator[tuple[str, Any], None, None]


class DataError(SpikeError):
    """Malformed data: ``file`` and ``location`` ("line 7", "row 3") say where."""

    def __init__(self, file: str, location: str, problem: str) -> None:
        self.file, self.location = file, location
        where = " ".join(part for part in (file, location) if part)
        super().__init__(f"spike_data: {where}: {problem}")


@dataclass(frozen=True)
class RecordRef:
    """A record a ``real_data`` test was processing, with where it came from when known."""

    excerpt: str
    file: str | None = None
    location: str | None = None
    error: str | None = None

    def describe(self) -> str:
        """One line: ``orders.csv line 12: {"id": "7", ...}``."""
        where = " ".join(p for p in (self.file, self.location) if p)
        return f"{where}: {self.excerpt}" if where else self.excerpt

    def to_dict(self) -> dict[str, str]:
        return {k: v for k, v in vars(self).items() if v is not None}


class _RecordScope:
    """What ``SpikeData.record`` returns: usable bare or as a context manager."""

    def __init__(self, owner: SpikeData, ref: RecordRef, record: Any) -> None:
        self._owner, self._ref, self._record = owner, ref, record

    def __enter__(self) -> Any:
        return self._record

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._owner._finish(self._ref, exc)  # the exception, if any, goes on


class SpikeData:
    """The data folder a spike reads, as the ``spike_data`` fixture hands it to tests.

    ``source`` names where the folder setting came from (``--spike-data``, ``spike_data in
    pyproject.toml``) so that every error says what to change.
    """

    def __init__(self, root: Path, *, source: str) -> None:
        self.root = Path(root)
        self.source = source
        if not self.root.exists():
            raise SpikeError(
                f"{source}: data folder {self.root} does not exist; create it or point "
                f"{source} at the team's data folder"
            )
        if not self.root.is_dir():
            raise SpikeError(
                f"{source}: {self.root} is a file, not a folder; point {source} at the folder that holds it"
            )
        if next(self._walk("**/*"), None) is None:
            raise SpikeError(
                f"{source}: data folder {self.root} is empty; put a few files in it "
                f"(CSV, TSV, JSON Lines, JSON, Parquet) or point {source} elsewhere"
            )
        self._forget()

    def _forget(self) -> None:
        self._seen: collections.OrderedDict[int, tuple[Any, str, str]] = collections.OrderedDict()
        self._current: RecordRef | None = None
        self._failed: RecordRef | None = None
        #: Notes from every profile() taken; the plugin adds them to the report.
        self.profile_notes: list[str] = []

    def fresh(self) -> SpikeData:
        """The same folder with no record remembered: one per test, without re-checking."""
        clone = object.__new__(SpikeData)
        clone.root, clone.source = self.root, self.source
        clone._forget()
        return clone

    def __repr__(self) -> str:
        return f"SpikeData({str(self.root)!r}, source={self.source!r})"

    # -- files --------------------------------------------------------------------------

    def files(self, pattern: str = "*") -> list[Path]:
        """Files matching a glob under the folder (``**/*.csv`` recurses), sorted; hidden
        files are left out. No match gives an empty list."""
        return sorted(self._walk(pattern), key=lambda p: p.relative_to(self.root).as_posix())

    def _walk(self, pattern: str) -> Iterator[Path]:
        try:
            found = self.root.glob(pattern)
            for path in found:
                rel = path.relative_to(self.root).parts
                if path.is_file() and not any(part.startswith(".") for part in rel):
                    yield path
        except (ValueError, NotImplementedError) as exc:
            raise SpikeError(
                f"spike_data: {pattern!r} is not a usable pattern ({exc}); write one relative "
                "to the data folder, e.g. '*.csv' or '**/*.json'"
            ) from None

    def _resolve(self, path: str | Path) -> Path:
        path = Path(path)
        full = path if path.is_absolute() else self.root / path
        if full.is_file():
            return full
        matches = self.files(str(path)) if not path.is_absolute() and _is_glob(str(path)) else []
        if matches:
            return matches[0]
        present = [p.relative_to(self.root).as_posix() for p in self.files("**/*")]
        listing = ", ".join(present[:5]) + (", ..." if len(present) > 5 else "")
        raise SpikeError(
            f"spike_data: no file matches {str(path)!r} in {self.root} (from {self.source}); "
            f"it holds: {listing or 'nothing'}; list them with spike_data.files()"
        )

    def _display(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    # -- records ------------------------------------------------------------------------

    def _open(self, path: str | Path, header: bool) -> tuple[str, _Stream]:
        full = self._resolve(path)
        display = self._display(full)
        return display, _records(full, display, header)

    def iter_rows(self, path: str | Path, *, header: bool = True) -> Iterator[Any]:
        """Stream every record of a file (see :meth:`rows` for the formats)."""
        display, stream = self._open(path, header)
        for location, record in stream:
            self._remember(record, display, location)
            yield record

    def rows(self, path: str | Path, n: int = 10, *, header: bool = True) -> list[Any]:
        """The first ``n`` records of a file, reading no further than needed.

        CSV and TSV give dicts keyed by the header row (lists with ``header=False``), JSON
        Lines and JSON arrays give the decoded values, Parquet (with pyarrow) gives dicts.
        ``.gz`` files are decompressed on the fly. ``path`` may be relative to the folder or
        a glob, which takes its first match.
        """
        _check_count(n, "rows")
        display, stream = self._open(path, header)
        taken = _take(stream, n)
        for location, record in taken:
            self._remember(record, display, location)
        return [record for _, record in taken]

    def sample(self, path: str | Path, n: int, seed: int = 0, *, header: bool = True) -> list[Any]:
        """A seeded random sample of ``n`` records in file order (one pass, ``n`` in memory)."""
        _check_count(n, "sample")
        display, stream = self._open(path, header)
        rng = random.Random(seed)
        kept: list[tuple[int, str, Any]] = []
        for index, (location, record) in enumerate(stream):
            if index < n:
                kept.append((index, location, record))
                continue
            slot = rng.randrange(index + 1)  # reservoir sampling (Algorithm R)
            if slot < n:
                kept[slot] = (index, location, record)
        kept.sort(key=lambda item: item[0])
        for _, location, record in kept:
            self._remember(record, display, location)
        return [record for _, _, record in kept]

    def profile(self, path: str | Path, n: int = 1000, *, header: bool = True) -> Profile:
        """Column kinds, missing counts and data smells over the first ``n`` records."""
        _check_count(n, "profile")
        display, stream = self._open(path, header)
        records = [record for _, record in _take(stream, n + 1)]
        profile = Profile.build(display, records[:n], truncated=len(records) > n)
        self.profile_notes.extend(f"{display}: {note}" for note in profile.notes())
        return profile

    # -- the record under test ----------------------------------------------------------

    def record(self, record: Any, *, where: str | None = None) -> _RecordScope:
        """Mark ``record`` as the one being processed, so a failure names it.

        Use it as ``with spike_data.record(row): parse(row)`` (a clean exit forgets the row,
        an exception keeps the first failing one) or as a bare call before processing.
        Records from :meth:`rows`, :meth:`sample` and :meth:`iter_rows` know their file and
        line; ``where`` overrides that ("orders.csv line 12").
        """
        file = location = None
        known = self._seen.get(id(record)) if isinstance(record, (dict, list)) else None
        if known is not None and known[0] is record:
            file, location = known[1], known[2]
        if where is not None:
            file, location = where, None
        ref = RecordRef(excerpt=excerpt(record), file=file, location=location)
        self._current = ref
        return _RecordScope(self, ref, record)

    @property
    def current_record(self) -> RecordRef | None:
        """The first record whose processing raised, else the one being processed."""
        return self._failed or self._current

    def _finish(self, ref: RecordRef, exc: BaseException | None) -> None:
        if exc is not None and self._failed is None:
            error = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
            self._failed = replace(ref, error=_cap(" ".join(error.split())))
        if self._current is ref:
            self._current = None

    def _remember(self, record: Any, file: str, location: str) -> None:
        # Keyed by id() with the record held, so the id cannot be reused while remembered;
        # scalars are skipped because equal scalars share one object.
        if isinstance(record, (dict, list)):
            self._seen[id(record)] = (record, file, location)
            if len(self._seen) > _PROVENANCE:
                self._seen.popitem(last=False)


# -- readers ------------------------------------------------------------------------------


def _records(path: Path, display: str, header: bool) -> _Stream:
    """Yield ``(location, record)`` for every record of ``path``, lazily."""
    name = path.name.lower()
    base = name[:-3] if name.endswith(".gz") else name
    kind = FORMATS.get(Path(base).suffix)
    if kind is None:
        known = ", ".join(sorted(FORMATS))
        raise SpikeError(
            f"spike_data: cannot read {display}: its suffix is none of {known} (optionally .gz); "
            "read it yourself from spike_data.root"
        )
    if kind == "parquet":
        yield from _parquet(path, display)
        return
    opener = gzip.open if name.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8-sig", newline="") as fh:
            if kind in ("csv", "tsv"):
                yield from _delimited(fh, display, "\t" if kind == "tsv" else ",", header)
            elif kind == "json" and _first_char(fh) == "[":
                yield from _JsonArray(fh, display).records()
            else:
                yield from _json_lines(fh, display, hint=kind == "json")
    except UnicodeDecodeError as exc:
        problem = f"is not UTF-8 text ({exc.reason}); save it as UTF-8"
        raise DataError(display, "", problem) from None
    except (OSError, EOFError) as exc:
        raise SpikeError(f"spike_data: cannot read {display}: {exc}") from None


def _delimited(fh: IO[str], display: str, delimiter: str, header: bool) -> _Stream:
    reader = csv.reader(fh, delimiter=delimiter, strict=True)
    columns: list[str] | None = None
    start = 1
    try:
        for row in reader:
            location, start = f"line {start}", reader.line_num + 1
            if not row:
                continue
            if not header:
                yield location, row
            elif columns is None:
                columns = _unique(row)
            elif len(row) != len(columns):
                raise DataError(display, location, f"{len(row)} fields where the header has {len(columns)}")
            else:
                yield location, dict(zip(columns, row))
    except csv.Error as exc:
        raise DataError(display, f"line {start}", f"malformed ({exc})") from None


def _unique(names: Sequence[str]) -> list[str]:
    # A repeated header name would silently drop a column from the dicts.
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return out


def _json_lines(fh: IO[str], display: str, hint: bool) -> _Stream:
    for number, line in enumerate(fh, start=1):
        if not line.strip():
            continue
        try:
            yield f"line {number}", json.loads(line)
        except json.JSONDecodeError as exc:
            advice = "; a .json file must hold an array of records or one record per line"
            raise DataError(
                display, f"line {number}", f"not valid JSON ({exc.msg}){advice if hint else ''}"
            ) from None


def _first_char(fh: IO[str]) -> str:
    head = fh.read(_CHUNK)
    while head and not head.strip():
        head = fh.read(_CHUNK)
    fh.seek(0)
    return head.lstrip()[:1]


class _JsonArray:
    """Stream the elements of a top-level JSON array, holding one element at a time."""

    _SPACE = re.compile(r"[ \t\n\r]*")

    def __init__(self, fh: IO[str], display: str) -> None:
        self.fh, self.display = fh, display
        self.buf, self.pos, self.eof = "", 0, False
        # line number at buffer offset ``counted``; counting only moves forward, so the
        # whole pass stays linear in the file size
        self.line, self.counted = 1, 0
        self.decoder = json.JSONDecoder()

    def records(self) -> _Stream:
        self._next_char()
        self.pos += 1  # the "[" that _first_char saw
        if self._next_char() == "]":
            self.pos += 1
        else:
            while True:
                self._next_char()
                yield f"line {self._line_at(self.pos)}", self._value()
                char = self._next_char()
                self.pos += 1
                if char == "]":
                    break
                if char != ",":
                    self._fail(self.pos - 1, "expected ',' or ']' after a record")
        if self._next_char():
            self._fail(self.pos, "extra data after the closing ']'")

    def _more(self) -> bool:
        chunk = self.fh.read(_CHUNK)
        if not chunk:
            self.eof = True
            return False
        self._line_at(self.pos)
        self.buf, self.pos, self.counted = self.buf[self.pos :] + chunk, 0, 0
        return True

    def _next_char(self) -> str:
        while True:
            match = self._SPACE.match(self.buf, self.pos)
            self.pos = match.end() if match else self.pos
            if self.pos < len(self.buf) or not self._more():
                return self.buf[self.pos : self.pos + 1]

    def _value(self) -> Any:
        while True:
            try:
                value, end = self.decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                # An error at the end of the buffer may only mean the element goes on in the
                # next chunk; anywhere else it is malformed.
                cut = exc.msg.startswith("Unterminated string") or exc.pos >= len(self.buf) - 32
                if cut and not self.eof and len(self.buf) - self.pos < _MAX_RECORD_CHARS:
                    self._more()
                    continue
                self._fail(exc.pos, f"not valid JSON ({exc.msg})")
            if end >= len(self.buf) and not self.eof and self._more():
                continue  # a number at the end of the buffer may have more digits
            self.pos = end
            return value

    def _line_at(self, pos: int) -> int:
        self.line += self.buf.count("\n", self.counted, pos)
        self.counted = max(self.counted, pos)
        return self.line

    def _fail(self, pos: int, problem: str) -> NoReturn:
        raise DataError(self.display, f"line {self._line_at(pos)}", problem)


def _parquet(path: Path, display: str) -> _Stream:
    try:
        import pyarrow
        import pyarrow.parquet as pq
    except ImportError:
        raise SpikeError(
            f"spike_data: reading {display} needs pyarrow, which is not installed; pip install pyarrow"
        ) from None
    row = 0
    try:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=1024):
            for record in batch.to_pylist():
                row += 1
                yield f"row {row}", record
    except (pyarrow.ArrowException, OSError, ValueError) as exc:
        raise DataError(display, f"row {row + 1}", f"unreadable Parquet ({exc})") from None


def _take(stream: _Stream, count: int) -> list[tuple[str, Any]]:
    # Closing the generator closes the file now, not whenever it is collected.
    try:
        return list(itertools.islice(stream, count))
    finally:
        stream.close()


def _is_glob(text: str) -> bool:
    return any(char in text for char in "*?[")


def _check_count(n: int, what: str) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise SpikeError(f"spike_data.{what}: n must be a whole number >= 0, not {n!r}")


# -- findings -----------------------------------------------------------------------------


def data_findings(
    failed: bool, nodeid: str, exc_text: str | None, current_record: RecordRef | None
) -> list[Finding]:
    """The finding for a ``real_data`` test: high when it failed, naming the first failing
    record (from ``spike_data.record``) or else the error the test raised."""
    if not failed:
        return []
    evidence = {"nodeid": nodeid}
    error = _error_line(exc_text or "")
    if current_record is not None:
        evidence.update(current_record.to_dict())
        evidence["record"] = evidence.pop("excerpt")
        error = current_record.error or error
        message = f"real-data test failed on {current_record.describe()}"
    else:
        message = f"real-data test failed: {error}" if error else "real-data test failed"
    if error:
        evidence["error"] = error
    return [Finding("real_data.failed", Severity.HIGH, message, evidence)]


def _error_line(text: str) -> str:
    # pytest's long repr marks the raised error with "E   " lines; the first is the most
    # telling (the failed assert or the exception and its message).
    lines = [line.rstrip() for line in io.StringIO(text) if line.strip()]
    marked = [line[1:].strip() for line in lines if line.startswith("E ")]
    return _cap((marked or lines or [""])[0 if marked else -1].strip())
