"""README verdicts a candidate cannot forge: a package that finds the README child's reporter
(by gc, up the stack) and reports its failing example "ok", or rewrites the results, is seen
by the host: the results contradict the child's event stream or the traceback on stderr.
The block counts as what the host saw, and the candidate gets ``spike.tampered``.

Real wheels, pip, the real box (bubblewrap where it runs), the real child; no mocks.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from pkgfactory import FakeProject, build_wheel, pip_install_target

from pytest_spike.model import TAMPERED, Blame, Severity
from pytest_spike.probes.docs import Page, PageRun, docs_findings
from pytest_spike.readme._child import RAISED_MARK
from pytest_spike.readme.run import BlockOutcome, extract_blocks, readme_findings, run_blocks
from pytest_spike.readme.witness import read_child

PY = sys.executable

# Each forger reads the child's source, as a hostile candidate would, and uses its reporter.
FORGER = '''
import gc, os, sys

def _by_gc():
    return next(o for o in gc.get_objects() if type(o).__name__ == "Reporter")

def _by_stack():
    frame = sys._getframe()
    while "reporter" not in frame.f_locals:
        frame = frame.f_back
    return frame.f_locals["reporter"]

def report_ok_by_gc():
    """The issue's forgery: the block's end and result, "ok", before the block raises."""
    reporter = _by_gc()
    reporter.finish(reporter.current, {"status": "ok", "error": "", "duration": 0.0})

def report_ok_by_stack():
    """Only the result line, straight from the reporter found up the stack."""
    reporter = _by_stack()
    with reporter.lock:
        reporter._result(reporter.current, {"status": "ok", "error": "", "duration": 0.0})

def rewrite_results():
    """From now on every result says ok; the events are left alone."""
    reporter = _by_gc()
    line = reporter._line

    def forged(data):
        line(data if "event" in data else dict(data, status="ok", error=""))

    reporter._line = forged

def rewrite_everything():
    """Results and events say ok; only stderr, written past the reporter's lines, is left."""
    reporter = _by_gc()
    line = reporter._line
    reporter._line = lambda data: line(dict(data, status="ok", error="") if "status" in data else data)

def report_next_ok():
    """An ok for the next block, written on the results descriptor before it ever runs."""
    reporter = _by_gc()
    data = '{"index": %d, "status": "ok", "error": "", "duration": 0.0}\\n' % (reporter.current + 1)
    os.write(reporter.fd, data.encode())
'''

PROJECTS = [
    FakeProject("forgerpkg", "1.0", files={"forgerpkg/__init__.py": FORGER}),
    # The whole probe's view: a README whose one example fails and is reported ok.
    FakeProject(
        "forgedreadme",
        "1.0",
        files={"forgedreadme/__init__.py": FORGER},
        readme="# forgedreadme\n\n```python\nimport forgedreadme\nforgedreadme.report_ok_by_gc()\n"
        "raise RuntimeError('the example is broken')\n```\n",
    ),
]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("forged-readme-site")
    target = root / "site"
    pip_install_target([build_wheel(p, root / "wheels") for p in PROJECTS], target)
    return target


def run(text: str, site: Path, tmp_path: Path, limit: float = 5.0) -> list[BlockOutcome]:
    blocks = extract_blocks(textwrap.dedent(text), "text/markdown")
    return run_blocks(
        PY,
        blocks,
        timeout_per_block=limit,
        cwd=tmp_path,
        extra_env={"PYTHONPATH": str(site)},
        modules=("forgerpkg",),
        dist_name="forgerpkg",
    )


def findings_of(outcomes: list[BlockOutcome]) -> dict[str, Any]:
    return {f.code: f for f in readme_findings(outcomes)[0]}


BROKEN = """\
    ```python
    import forgerpkg
    forgerpkg.{forge}()
    raise RuntimeError("the example is broken")
    ```
    """


@pytest.mark.parametrize(
    ("forge", "why"),
    [
        ("report_ok_by_gc", "2 end events for one block"),
        ("report_ok_by_stack", "a result written while the block was still running"),
        ("rewrite_results", "the result says 'ok', the block ended 'failed'"),
        ("rewrite_everything", "the result says 'ok', stderr says the block ended 'failed'"),
    ],
)
def test_a_failing_example_reported_ok_by_the_candidate_is_tampering(
    forge: str, why: str, site: Path, tmp_path: Path
) -> None:
    [outcome] = run(BROKEN.format(forge=forge), site, tmp_path)
    # What the host saw wins: the example failed, with the error it raised.
    assert (outcome.status, outcome.cumulative, outcome.tampered) == ("failed", "failed", why)
    assert outcome.error == "RuntimeError: the example is broken"
    found = findings_of([outcome])
    tampered = found[TAMPERED]
    assert (tampered.severity, tampered.blame) == (Severity.CRITICAL, Blame.CANDIDATE)
    assert tampered.message == (
        f"1 README example result(s) contradict what the host saw; first at line 2: {why} "
        "(counted as failed: RuntimeError: the example is broken)"
    )
    assert found["readme.failed"].message.startswith("1 of 1 checked README examples failed")


def test_an_ok_written_ahead_for_a_later_block_is_a_second_result(site: Path, tmp_path: Path) -> None:
    outcomes = run(
        """\
        ```python
        import forgerpkg
        forgerpkg.report_next_ok()
        ```

        ```python
        raise RuntimeError("the second example is broken")
        ```
        """,
        site,
        tmp_path,
    )
    first, second = outcomes
    assert (first.status, first.tampered) == ("ok", "")
    assert (second.status, second.cumulative, second.tampered) == (
        "failed",
        "failed",
        "2 results for one block",
    )
    assert second.error == "RuntimeError: the second example is broken"
    assert TAMPERED in findings_of(outcomes)


def test_an_ok_written_ahead_by_a_block_run_alone_is_seen_in_the_next_fork(
    site: Path, tmp_path: Path
) -> None:
    # Alone, the second and third blocks run in forks of one child: the second's fork
    # writes an ok for the third before the third's fork ever started.
    outcomes = run(
        """\
        ```python
        pass
        ```

        ```python
        import forgerpkg
        forgerpkg.report_next_ok()
        ```

        ```python
        raise RuntimeError("the third example is broken")
        ```
        """,
        site,
        tmp_path,
    )
    third = outcomes[2]
    assert (third.status, third.cumulative, third.alone) == ("failed", "failed", "failed")
    assert third.tampered == "2 results for one block"
    assert third.error == "RuntimeError: the third example is broken"
    assert TAMPERED in findings_of(outcomes)


def test_honest_failures_timeouts_and_crashes_are_not_tampering(site: Path, tmp_path: Path) -> None:
    # A failure, a documented exception, an alarm, a watchdog's end and a crash: every way
    # a child legitimately reports (or fails to) keeps its result and gives no tampering.
    outcomes = run(
        """\
        ```python
        raise ValueError("honestly broken")
        ```

        ```pycon
        >>> int("x")
        Traceback (most recent call last):
        ValueError: invalid literal for int() with base 10: 'x'
        ```

        ```python
        import time
        time.sleep(60)
        ```

        ```python
        import time
        while True:
            try:
                time.sleep(60)
            except BaseException:
                pass
        ```

        ```python
        import os
        os._exit(3)
        ```

        ```python
        print("after")
        ```
        """,
        site,
        tmp_path,
        limit=0.5,
    )
    assert [(o.status, o.tampered) for o in outcomes] == [
        ("failed", ""),
        ("ok", ""),
        ("timeout", ""),
        ("unchecked", ""),
        ("failed", ""),
        ("ok", ""),
    ]
    assert outcomes[3].error == "did not stop within 2s after its time limit"
    assert TAMPERED not in findings_of(outcomes)


def _line(data: dict[str, Any]) -> str:
    return json.dumps(data) + "\n"


def test_the_host_reads_the_stream_in_order() -> None:
    start, end = (
        {"event": "start", "index": 0},
        {"event": "end", "index": 0, "status": "failed", "error": "E"},
    )
    result = {"index": 0, "status": "failed", "error": "E"}
    honest = read_child(_line(start) + _line(end) + _line(result), "")
    assert (honest.reports, honest.tampered) == ({0: result}, ())
    # The runner's own error while a block's code ran is the block's doing, not ours.
    error = read_child(_line(start) + _line({"spike_error": "KeyError: 'x'"}), "")
    assert error.tampered == (0,) and error.spike_error == ""
    assert error.reports[0]["tampered"] == "a runner error reported while the block's own code ran"
    # Where the output cap dropped the stream's middle, missing events are no contradiction;
    # a result stderr contradicts still is.
    cut = read_child(_line(result), "", complete=False)
    assert (cut.reports, cut.tampered) == ({0: result}, ())
    ok = {"index": 0, "status": "ok"}
    raised = RAISED_MARK + json.dumps({"index": 0, "status": "failed", "error": "E"})
    assert read_child(_line(ok), raised, complete=False).tampered == (0,)
    # A result with no start nor end: nothing honest is left of the block, it failed.
    alone = read_child(_line({"index": 3, "status": "ok"}), "")
    assert alone.reports[3] == {
        "status": "failed",
        "error": "its result was forged and the block's own end was not seen",
        "tampered": "a result for a block that had not started",
    }


def test_the_readme_probe_scores_the_forgery_and_the_failure(
    pytester: pytest.Pytester, site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(site))
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    result = pytester.runpytest(
        "--spike",
        "--spike-candidate",
        "forgedreadme",
        "--spike-probes=install,readme",
        "--spike-isolation=never",
        "--spike-json=r.json",
    )
    result.assert_outcomes(passed=1, failed=1)  # the readme probe fails on a critical finding
    [cand] = json.loads((pytester.path / "r.json").read_text())["candidates"]
    found = {f["code"]: f for f in cand["findings"]}
    assert (found[TAMPERED]["severity"], found[TAMPERED]["blame"]) == ("critical", "candidate")
    assert "2 end events for one block" in found[TAMPERED]["message"]
    assert "RuntimeError: the example is broken" in found["readme.failed"]["message"]
    assert cand["level"] == "blocked"
    [probe] = [p for p in cand["probes"] if p["kind"] == "readme"]
    [block] = probe["details"]["blocks"]
    assert (block["status"], block["tampered"]) == ("failed", "2 end events for one block")
    result.stdout.fnmatch_lines(["*candidate code: sandboxed (bubblewrap)*"])


def test_a_documentation_page_whose_example_is_reported_ok_by_the_candidate(
    site: Path, tmp_path: Path
) -> None:
    outcomes = run(BROKEN.format(forge="report_ok_by_stack"), site, tmp_path)
    page = PageRun(Page(tmp_path / "quickstart.md", "quickstart.md", "markdown"), tuple(outcomes))
    findings, details = docs_findings([page])
    tampered = next(f for f in findings if f.code == TAMPERED)
    assert (tampered.severity, tampered.blame) == (Severity.CRITICAL, Blame.CANDIDATE)
    assert tampered.message == (
        "1 of 1 docs examples contradicted what the host saw (a result written while the block was "
        "still running): quickstart.md line 2: RuntimeError: the example is broken"
    )
    assert "docs.failed" in {f.code for f in findings}
    assert (
        details["pages"][0]["blocks"][0]["tampered"] == "a result written while the block was still running"
    )
