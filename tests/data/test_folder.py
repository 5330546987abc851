"""spike_data on real files written to a temporary folder: formats, errors, sampling, profiles."""

from __future__ import annotations

import gzip
import json
import random
import sys
import time
from pathlib import Path

import pytest

from pytest_spike.data.folder import DataError, SpikeData, data_findings
from pytest_spike.data.profile import Profile, value_kind
from pytest_spike.model import Severity, SpikeError


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def data(tmp_path: Path) -> SpikeData:
    root = tmp_path / "data"
    people = 'id,name,quote\n1,"Smith, Ann","said ""hi"""\n2,Bo,"two\nlines"\n3,Cy,plain\n'
    write(root, "people.csv", people)
    write(root, "people.tsv", "id\tname\n1\tAnn\n2\tBo\n")
    write(root, "events.jsonl", '{"a": 1}\n\n{"a": 2}\n{"a": \n{"a": 4}\n')
    write(root, "list.json", '[\n  {"a": 1},\n  {"a": [2, 3]},\n  17\n]\n')
    write(root, "nested/deep/more.csv", "x\n1\n")
    write(root, ".hidden.csv", "x\n1\n")
    return SpikeData(root, source="--spike-data")


# -- the folder setting ---------------------------------------------------------------------


# An unset setting and relative paths are the settings' job: test_spike_data_plugin.py.


def test_missing_folder_names_the_setting_and_fix(tmp_path: Path) -> None:
    with pytest.raises(SpikeError) as info:
        SpikeData(tmp_path / "nope", source="spike_data in pyproject.toml")
    message = str(info.value)
    assert "spike_data in pyproject.toml" in message
    assert str(tmp_path / "nope") in message and "does not exist" in message
    assert "\n" not in message


@pytest.mark.parametrize("hidden_only", [False, True])
def test_empty_folder_is_an_error(tmp_path: Path, hidden_only: bool) -> None:
    if hidden_only:
        write(tmp_path, ".gitkeep", "")
    with pytest.raises(SpikeError, match=r"--spike-data: data folder .* is empty; put a few"):
        SpikeData(tmp_path, source="--spike-data")


def test_a_file_is_not_a_folder(tmp_path: Path) -> None:
    write(tmp_path, "a.csv", "x\n")
    with pytest.raises(SpikeError, match="is a file, not a folder"):
        SpikeData(tmp_path / "a.csv", source="--spike-data")


# -- files ----------------------------------------------------------------------------------


def test_files_globs_sorted_without_hidden(data: SpikeData) -> None:
    names = [p.relative_to(data.root).as_posix() for p in data.files()]
    assert names == ["events.jsonl", "list.json", "people.csv", "people.tsv"]
    deep = [p.relative_to(data.root).as_posix() for p in data.files("**/*.csv")]
    assert deep == ["nested/deep/more.csv", "people.csv"]
    assert data.files("*.parquet") == []


def test_bad_pattern_is_an_error(data: SpikeData) -> None:
    with pytest.raises(SpikeError, match="not a usable pattern"):
        data.files("")


def test_rows_of_unknown_file_lists_what_is_there(data: SpikeData) -> None:
    with pytest.raises(SpikeError) as info:
        data.rows("*.parquet")
    message = str(info.value)
    assert "no file matches '*.parquet'" in message and "--spike-data" in message
    assert "events.jsonl" in message and "spike_data.files()" in message
    assert data.rows("nested/**/*.csv") == [{"x": "1"}]  # a glob takes its first match


# -- formats --------------------------------------------------------------------------------


def test_csv_quoting_and_embedded_newlines(data: SpikeData) -> None:
    assert data.rows("people.csv") == [
        {"id": "1", "name": "Smith, Ann", "quote": 'said "hi"'},
        {"id": "2", "name": "Bo", "quote": "two\nlines"},
        {"id": "3", "name": "Cy", "quote": "plain"},
    ]
    assert data.rows("people.csv", 1, header=False) == [["id", "name", "quote"]]


def test_tsv_and_gzip(data: SpikeData) -> None:
    rows = data.rows(data.root / "people.tsv")
    assert rows == [{"id": "1", "name": "Ann"}, {"id": "2", "name": "Bo"}]
    with gzip.open(data.root / "packed.csv.gz", "wt", encoding="utf-8") as fh:
        fh.write("a,b\n1,2\n")
    assert data.rows("packed.csv.gz") == [{"a": "1", "b": "2"}]


def test_malformed_csv_row_names_file_and_line(tmp_path: Path) -> None:
    # line 3 starts a quoted field over two lines, so the ragged record starts at line 5
    write(tmp_path, "bad.csv", 'a,b\n1,2\n"x\ny",3\n4,5,6\n')
    data = SpikeData(tmp_path, source="--spike-data")
    assert len(data.rows("bad.csv", 2)) == 2
    with pytest.raises(DataError) as info:
        data.rows("bad.csv")
    assert str(info.value) == "spike_data: bad.csv line 5: 3 fields where the header has 2"
    assert (info.value.file, info.value.location) == ("bad.csv", "line 5")
    write(tmp_path, "quote.csv", 'a,b\n1,"2"x\n')
    with pytest.raises(DataError, match=r"quote.csv line 2: malformed"):
        data.rows("quote.csv")


def test_duplicate_header_names_keep_every_column(tmp_path: Path) -> None:
    write(tmp_path, "dup.csv", "a,a,b\n1,2,3\n")
    data = SpikeData(tmp_path, source="--spike-data")
    assert data.rows("dup.csv") == [{"a": "1", "a_2": "2", "b": "3"}]


def test_json_lines_stop_before_and_fail_at_a_malformed_line(data: SpikeData) -> None:
    assert data.rows("events.jsonl", 2) == [{"a": 1}, {"a": 2}]
    with pytest.raises(DataError, match=r"^spike_data: events.jsonl line 4: not valid JSON"):
        data.rows("events.jsonl")


def test_json_array_records(data: SpikeData, tmp_path: Path) -> None:
    assert data.rows("list.json") == [{"a": 1}, {"a": [2, 3]}, 17]
    assert data.rows("list.json", 1) == [{"a": 1}]
    write(data.root, "empty.json", " [ ] ")
    assert data.rows("empty.json") == []
    write(data.root, "lines.json", '{"a": 1}\n{"a": 2}\n')
    assert data.rows("lines.json") == [{"a": 1}, {"a": 2}]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[\n {"a": 1},\n {"a": 2,}\n]', r"bad.json line 3: not valid JSON"),
        ('[\n {"a": 1}\n {"a": 2}\n]', r"bad.json line 3: expected ',' or '\]'"),
        ("[1, 2] x", r"bad.json line 1: extra data"),
        ("[1, 2", r"bad.json line 1: expected ',' or '\]'"),
        ('{\n "records": []\n}\n', r"bad.json line 1: .* array of records or one record per line"),
    ],
)
def test_malformed_json_names_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    write(tmp_path, "bad.json", text)
    with pytest.raises(DataError, match=message):
        SpikeData(tmp_path, source="--spike-data").rows("bad.json")


def test_unknown_suffix_and_bad_encoding(tmp_path: Path) -> None:
    write(tmp_path, "notes.txt", "hello\n")
    (tmp_path / "latin.csv").write_bytes("a\ncaf\xe9\n".encode("latin-1"))
    data = SpikeData(tmp_path, source="--spike-data")
    with pytest.raises(SpikeError, match=r"cannot read notes.txt: its suffix is none of"):
        data.rows("notes.txt")
    with pytest.raises(DataError, match=r"latin.csv: is not UTF-8 text"):
        data.rows("latin.csv")


def test_negative_count_is_an_error(data: SpikeData) -> None:
    with pytest.raises(SpikeError, match=r"spike_data.rows: n must be a whole number >= 0"):
        data.rows("people.csv", -1)
    assert data.rows("people.csv", 0) == []


def test_parquet_without_pyarrow_names_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "t.parquet").write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(SpikeError, match=r"t.parquet needs pyarrow.*; pip install pyarrow$"):
        SpikeData(tmp_path, source="--spike-data").rows("t.parquet")


def test_parquet_with_pyarrow(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table({"id": list(range(3000)), "name": ["x"] * 3000})
    pq.write_table(table, tmp_path / "t.parquet")
    (tmp_path / "broken.parquet").write_bytes(b"not parquet at all")
    data = SpikeData(tmp_path, source="--spike-data")
    assert data.rows("t.parquet", 2) == [{"id": 0, "name": "x"}, {"id": 1, "name": "x"}]
    assert len(data.sample("t.parquet", 5)) == 5
    with pytest.raises(DataError, match=r"broken.parquet row 1: unreadable Parquet"):
        data.rows("broken.parquet")


# -- big files: ten rows must not read the whole file --------------------------------------

BIG_LINES = 60_000  # about 2.5 MB per file; everything after line 1000 is broken
JUNK = '{"oops": ' + "x" * 30


def _big(root: Path, kind: str) -> Path:
    good = [{"id": i, "text": f"row number {i} " + "x" * 30} for i in range(999)]
    if kind == "csv":
        lines = ["id,text"] + [f"{r['id']},{r['text']}" for r in good]
        lines += ['1,"never closed'] + ["junk," * 8] * BIG_LINES
    elif kind == "jsonl":
        lines = [json.dumps(r) for r in good] + [JUNK] * BIG_LINES
        lines.insert(0, json.dumps({"id": -1, "text": "first"}))
    else:
        lines = ["["] + [json.dumps(r) + "," for r in good] + [JUNK] * BIG_LINES
    path = root / f"big.{kind}"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("kind", ["csv", "jsonl", "json"])
def test_ten_rows_of_a_big_file_read_only_the_start(tmp_path: Path, kind: str) -> None:
    path = _big(tmp_path, kind)
    assert path.stat().st_size > 2_000_000
    data = SpikeData(tmp_path, source="--spike-data")
    start = time.perf_counter()
    rows = data.rows(path.name, n=10)
    elapsed = time.perf_counter() - start
    assert len(rows) == 10 and elapsed < 0.5
    with pytest.raises(DataError, match=r"big\.\w+ line 1001: "):
        data.sample(path.name, 5)  # a full pass meets the broken tail, at its first line


# -- sampling -------------------------------------------------------------------------------


def test_sample_is_seeded_spread_and_in_file_order(tmp_path: Path) -> None:
    write(tmp_path, "n.jsonl", "".join(json.dumps({"i": i}) + "\n" for i in range(2000)))
    data = SpikeData(tmp_path, source="--spike-data")
    first = [r["i"] for r in data.sample("n.jsonl", 20, seed=7)]
    assert first == [r["i"] for r in data.sample("n.jsonl", 20, seed=7)]
    assert first != [r["i"] for r in data.sample("n.jsonl", 20, seed=8)]
    assert len(set(first)) == 20 and first == sorted(first)
    assert max(first) > 1000 and min(first) < 1000  # drawn from the whole file
    assert [r["i"] for r in data.sample("n.jsonl", 5000)] == list(range(2000))


def test_sample_is_roughly_uniform(tmp_path: Path) -> None:
    write(tmp_path, "n.csv", "i\n" + "".join(f"{i}\n" for i in range(100)))
    data = SpikeData(tmp_path, source="--spike-data")
    hits = [0] * 100
    for seed in range(300):
        for row in data.sample("n.csv", 10, seed=seed):
            hits[int(row["i"])] += 1
    # each index is expected 30 times; the first n slots must not be favoured
    assert sum(hits[:10]) < 2 * sum(hits[45:55]) and min(hits) > 5


# -- the record under test -----------------------------------------------------------------


def test_record_context_forgets_passing_and_keeps_first_failing(data: SpikeData) -> None:
    rows = data.rows("people.csv")
    with data.record(rows[0]) as row:
        assert row is rows[0]
        assert data.current_record is not None
    assert data.current_record is None
    for row in rows[1:]:
        with pytest.raises(ValueError):
            with data.record(row):
                int(row["name"])
    ref = data.current_record
    assert ref is not None
    assert (ref.file, ref.location) == ("people.csv", "line 3")
    assert ref.excerpt == '{"id": "2", "name": "Bo", "quote": "two\\nlines"}'
    assert ref.error == "ValueError: invalid literal for int() with base 10: 'Bo'"
    assert ref.describe().startswith('people.csv line 3: {"id": "2"')


def test_fresh_copy_forgets_records(data: SpikeData) -> None:
    data.record({"a": 1})
    clone = data.fresh()
    assert data.current_record is not None and clone.current_record is None
    assert (clone.root, clone.source) == (data.root, data.source)
    assert clone.rows("people.tsv", 1) == [{"id": "1", "name": "Ann"}]


def test_record_as_bare_call_and_with_where(data: SpikeData) -> None:
    sampled = data.sample("people.tsv", 1, seed=3)
    data.record(sampled[0])
    assert data.current_record is not None
    line = f"line {int(sampled[0]['id']) + 1}"
    assert (data.current_record.file, data.current_record.location) == ("people.tsv", line)
    data.record({"made": "up"}, where="orders.csv line 12")
    assert data.current_record.describe() == 'orders.csv line 12: {"made": "up"}'
    data.record("x" * 1000)
    assert data.current_record.file is None and len(data.current_record.excerpt) == 200


# -- profile --------------------------------------------------------------------------------


def test_profile_catches_tutorial_smells(tmp_path: Path) -> None:
    rng = random.Random(1)
    lines = ["age,fare,pclass,embarked,survived,source"]
    lines += [
        f"{rng.randint(1, 80)},{rng.randint(5, 500)},{rng.randint(1, 3)},{rng.randint(0, 2)},"
        f"{rng.randint(0, 1)},7"
        for _ in range(200)
    ]
    write(tmp_path, "titanic.csv", "\n".join(lines) + "\n")
    profile = SpikeData(tmp_path, source="--spike-data").profile("titanic.csv", n=100)
    assert profile.rows == 100 and profile.truncated
    notes = profile.notes()
    assert notes[0].startswith("titanic.csv: integers only in every column (100 rows x 6 columns)")
    assert notes[1].startswith("titanic.csv: no missing values at all")
    codes = [n for n in notes if "categoricals pre-cast to codes" in n]
    assert [n.split("'")[1] for n in codes] == ["pclass", "embarked"]
    assert "titanic.csv: column 'source' is constant ('7' in every row)" in notes
    assert len(notes) == 5  # age, fare and the 0/1 flag raise nothing


def test_profile_of_clean_mixed_data_raises_nothing(tmp_path: Path) -> None:
    rng = random.Random(2)
    rows = []
    for i in range(60):
        rows.append(
            {
                "name": rng.choice(["Ann", "Bo", "Cy", "Dee"]) + str(i),
                "age": None if i % 7 == 0 else rng.randint(18, 90),
                "score": round(rng.uniform(0, 10), 2),
                "joined": f"2024-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
                "active": rng.choice([True, False]),
                "city": rng.choice(["Oslo", "Lima", "Pune", ""]),
            }
        )
    rows[5].pop("score")  # a record without the key counts as missing
    write(tmp_path, "users.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    profile = SpikeData(tmp_path, source="--spike-data").profile("users.jsonl")
    assert profile.notes() == []
    kinds = {c.name: c.kind for c in profile.columns}
    assert kinds == {
        "name": "str",
        "age": "int",
        "score": "float",
        "joined": "date",
        "active": "bool",
        "city": "str",
    }
    summary = profile.to_dict()
    assert summary["columns"]["age"]["missing"] == 9
    assert summary["columns"]["score"]["missing"] == 1
    assert summary["rows"] == 60 and not summary["truncated"]
    assert json.loads(json.dumps(summary)) == summary


def test_profile_kinds_mixed_empty_and_few_rows() -> None:
    records = [{"a": "1", "b": "", "c": "x"}, {"a": "2.5", "b": "NA", "c": "3"}]
    profile = Profile.build("f.csv", records)
    assert {c.name: c.kind for c in profile.columns} == {"a": "float", "b": "empty", "c": "mixed"}
    assert profile.notes() == []  # two rows are too few to judge
    many = Profile.build("f.csv", records * 10)
    assert "f.csv: column 'b' is empty in all 20 rows" in many.notes()


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("12", "int"),
        (" -3 ", "int"),
        ("1e5", "float"),
        ("nan", "empty"),
        ("TRUE", "bool"),
        ("2024-01-31T10:00:00Z", "date"),
        ("12 apples", "str"),
        (True, "bool"),
        (3.0, "float"),
        (float("nan"), "empty"),
        ([1], "nested"),
        (None, "empty"),
    ],
)
def test_value_kind(value: object, kind: str) -> None:
    assert value_kind(value) == kind


# -- findings -------------------------------------------------------------------------------


def test_data_findings_name_file_and_first_failing_record(data: SpikeData) -> None:
    assert data_findings(False, "t.py::test_x", "boom", None) == []
    row = data.rows("people.csv")[2]
    with pytest.raises(KeyError):
        with data.record(row):
            row["missing"]
    (finding,) = data_findings(True, "t.py::test_x", "E   KeyError", data.current_record)
    assert finding.code == "real_data.failed" and finding.severity is Severity.HIGH
    record = '{"id": "3", "name": "Cy", "quote": "plain"}'
    assert finding.message == f"real-data test failed on people.csv line 5: {record}"
    assert finding.evidence == {
        "nodeid": "t.py::test_x",
        "file": "people.csv",
        "location": "line 5",
        "record": record,
        "error": "KeyError: 'missing'",
    }


def test_data_findings_fall_back_to_the_error_text() -> None:
    longrepr = (
        "def test_x():\n>       assert parse(1) == 2\nE       assert 3 == 2\n"
        "E        +  where 3 = parse(1)\n\nt.py:3: AssertionError\n"
    )
    (finding,) = data_findings(True, "t.py::test_x", longrepr, None)
    assert finding.message == "real-data test failed: assert 3 == 2"
    assert finding.evidence == {"nodeid": "t.py::test_x", "error": "assert 3 == 2"}
    (plain,) = data_findings(True, "t.py::test_x", "ValueError: " + "v" * 500, None)
    assert len(plain.evidence["error"]) == 200 and plain.evidence["error"].endswith("...")
