"""The built-in probe kinds: one row each, and every part of a row agrees with the code."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
from pathlib import Path

import pytest

import pytest_spike
from pytest_spike import kinds
from pytest_spike.kinds import BUILTIN, BUILTIN_NAMES, ProbeKind
from pytest_spike.model import BUILTIN_KINDS, PROBE_KINDS, RENAMED_CODES, USER_KINDS
from pytest_spike.readme.run import Examples, readme_findings
from pytest_spike.settings import Settings
from pytest_spike.upgrade.release import RELEASE_PROBES

SOURCE = Path(pytest_spike.__file__).parent


def _literal_codes() -> dict[str, set[str]]:
    """Every string literal in the sources shaped like a built-in kind's finding code."""
    shape = re.compile(rf"^({'|'.join(map(re.escape, BUILTIN_NAMES))})\.[a-z_]+$")
    found: dict[str, set[str]] = {}
    for path in SOURCE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and shape.match(node.value):
                found.setdefault(node.value, set()).add(path.relative_to(SOURCE).as_posix())
    return found


def test_every_consumer_reads_the_one_tuple() -> None:
    assert BUILTIN_KINDS == BUILTIN_NAMES == tuple(k.name for k in BUILTIN)
    assert PROBE_KINDS[: len(BUILTIN)] == BUILTIN_NAMES
    assert set(PROBE_KINDS) >= set(USER_KINDS)
    assert Settings().probes == BUILTIN_NAMES
    assert RELEASE_PROBES == tuple(k.name for k in BUILTIN if k.release)
    assert len(set(BUILTIN_NAMES)) == len(BUILTIN_NAMES)


@pytest.mark.parametrize("kind", BUILTIN, ids=BUILTIN_NAMES)
def test_a_kinds_function_is_a_probe_in_its_own_module(kind: ProbeKind) -> None:
    function = kind.function
    assert callable(function)
    assert function.__module__.startswith("pytest_spike.probes."), kind.probe
    assert list(inspect.signature(function).parameters) == ["ctx"]
    assert kinds.kind(kind.name) is kind and kinds.find(kind.name) is kind


@pytest.mark.parametrize("kind", BUILTIN, ids=BUILTIN_NAMES)
def test_a_kinds_codes_settings_and_flags_agree(kind: ProbeKind) -> None:
    assert kind.version >= 1
    assert all(code.startswith(f"{kind.name}.") for code in kind.all_codes), kind.codes
    assert len(set(kind.all_codes)) == len(kind.all_codes)
    assert kind.transient <= set(kind.codes), "a transient code the probe never gives"
    # Its settings read real fields: a value for each, from the defaults' table.
    values = kind.reads(Settings())
    assert isinstance(values, tuple) and values
    if kind.rests_on_index_answers:
        assert kind.environment_is_transient, "index trouble must not be kept either"


def test_every_code_in_the_sources_is_declared_by_its_kind() -> None:
    declared = {code for k in BUILTIN for code in k.all_codes}
    undeclared = {
        code: sorted(where)
        for code, where in _literal_codes().items()
        if code not in declared and code not in RENAMED_CODES
    }
    assert not undeclared, f"finding codes missing from their kind's row in kinds.py: {undeclared}"


def test_every_declared_code_is_given_somewhere() -> None:
    literal = set(_literal_codes())
    # the examples runner builds its codes from a prefix (readme.failed, docs.failed...)
    outcomes_codes = {f"readme.{part}" for part in ("failed", "timeout", "unchecked", "none")}
    unused = {code for k in BUILTIN for code in k.codes if code not in literal and code not in outcomes_codes}
    assert not unused, f"codes declared in kinds.py that no source gives: {sorted(unused)}"


def test_the_examples_runner_speaks_with_the_prefix_it_is_given() -> None:
    readme = kinds.kind("readme")
    findings, _ = readme_findings([])
    assert [f.code for f in findings] == ["readme.none"]
    assert {f.code for f in findings} <= set(readme.codes)
    docs, _ = readme_findings([], examples=Examples("docs", "documentation page"))
    assert [f.code for f in docs] == ["docs.none"]
    assert docs[0].message.startswith("the documentation page has no runnable Python example")


def test_a_row_is_a_frozen_value() -> None:
    row = BUILTIN[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.version = 99  # type: ignore[misc]
    assert kinds.find("hello_world") is None and not kinds.builtin("custom")
