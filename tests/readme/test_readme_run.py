"""The readme probe's machinery: block extraction, the lenient REPL parser, real runs."""

from __future__ import annotations

import glob
import json
import os
import shutil
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest
from pkgfactory import FakeProject, build_wheel, pip_install_target

from pytest_spike._core import runner
from pytest_spike.model import Blame, Severity, SpikeError
from pytest_spike.readme._child import is_local, output_matches
from pytest_spike.readme.run import (
    BlockOutcome,
    SpikeReadme,
    classify,
    extract_blocks,
    parse_session,
    read_readme,
    readme_findings,
    run_blocks,
)
from pytest_spike.scoring import Weights

PY = sys.executable

MARKDOWN = """\
# demo

Install it:

```console
$ pip install demo
```

~~~ python title="first"
from fractions import Fraction
half = Fraction(1, 2)
~~~

A session in a python fence is a session:

```python
>>> half + half
Fraction(1, 1)
```

Configure:

```toml
[tool.demo]
level = 3
```

```yaml
level: 3
```

    print("indented", half)

- a list item

  ```json
  {"level": 3}
  ```
"""

RST = """\
demo
====

.. code-block:: python
   :linenos:

   total = sum([1, 2, 3])

Shell::

    pip install demo

.. code:: toml

   [tool.demo]
   a = 1

Then::

    assert total == 6

>>> total * 2
12

.. note::

   .. code-block::

      print(total)
"""


def run(text: str, tmp_path: Path, *, ctype: str = "text/markdown", limit: float = 5.0) -> list[BlockOutcome]:
    return run_blocks(PY, extract_blocks(textwrap.dedent(text), ctype), timeout_per_block=limit, cwd=tmp_path)


# --- extraction ---------------------------------------------------------------------------


def test_markdown_blocks_are_classified_by_content() -> None:
    blocks = extract_blocks(MARKDOWN, "text/markdown; charset=UTF-8")
    assert [(b.line, b.kind, b.first_line) for b in blocks] == [
        (6, "shell", "$ pip install demo"),
        (10, "python", "from fractions import Fraction"),
        (17, "pycon", ">>> half + half"),
        (24, "toml", "[tool.demo]"),
        (29, "other", "level: 3"),
        (32, "python", 'print("indented", half)'),
        (37, "json", '{"level": 3}'),
    ]
    assert blocks[1].language == "python"
    assert [b.index for b in blocks] == list(range(7))


def test_rst_blocks_directives_literals_and_doctest_paragraphs() -> None:
    blocks = extract_blocks(RST, "text/x-rst")
    assert [(b.line, b.kind, b.code) for b in blocks] == [
        (7, "python", "total = sum([1, 2, 3])"),
        (11, "shell", "pip install demo"),
        (15, "toml", "[tool.demo]\na = 1"),
        (20, "python", "assert total == 6"),
        (22, "pycon", ">>> total * 2\n12"),
        (29, "python", "print(total)"),
    ]


def test_a_list_items_indented_paragraph_is_not_code() -> None:
    """CommonMark (markdown-it-py): text continuing a list item is no indented code block
    (pydantic's changelog in its README), a fence nested in an item still is."""
    text = (
        "* fix a thing\n"
        "\n"
        "    This was initially considered as a bugfix, but caused regressions.\n"
        "\n"
        "1. install it:\n"
        "\n"
        "   ```bash\n"
        "   pip install demo\n"
        "   ```\n"
        "\n"
        "text\n"
        "\n"
        "    import os\n"
    )
    blocks = extract_blocks(text, "text/markdown")
    assert [(b.line, b.kind, b.code) for b in blocks] == [
        (8, "shell", "pip install demo"),
        (13, "python", "import os"),
    ]


def test_a_literal_block_in_a_list_item_ends_at_the_items_text() -> None:
    """docutils' README: ``2. Install ... with pip::`` then the block, then the item's prose."""
    text = (
        "1. Docutils requires Python.\n"
        "\n"
        "2. Install the latest release with pip_::\n"
        "\n"
        "       pip install docutils\n"
        "\n"
        "   For alternatives, see `Installation`_ below.\n"
        "\n"
        "* To install from source:\n"
        "\n"
        "  3. Install the package with one of::\n"
        "\n"
        "         pip install -e .\n"
        "         pip install .\n"
        "\n"
        "     or do a manual install.\n"
    )
    blocks = extract_blocks(text, "text/x-rst")
    assert [(b.line, b.code) for b in blocks] == [
        (5, "pip install docutils"),
        (13, "pip install -e .\npip install ."),
    ]


def test_unknown_content_type_is_sniffed() -> None:
    assert extract_blocks("text\n\n```\nimport os\n```\n", "")[0].kind == "python"
    assert extract_blocks("text::\n\n    import os\n", "text/plain")[0].kind == "python"
    assert extract_blocks("no code here\n", "text/markdown") == []
    # no type, reST whose "~~~" title underline looks like a fence (freezegun's README): reST
    rst = "Decorator\n~~~~~~~~~\n\n.. code-block:: python\n\n    import os\n\nText.\n"
    assert [(b.line, b.code) for b in extract_blocks(rst, "")] == [(6, "import os")]


@pytest.mark.parametrize(
    ("code", "language", "kind"),
    [
        ("import os\nos.getcwd()", "", "python"),
        # tqdm's API listing: Python whose docstring shows a session is Python
        (
            'class T:\n    def update(self):\n        """E.g.:\n        >>> t.update()\n        """',
            "python",
            "python",
        ),
        ("Some output first\n>>> 1 + 1\n2", "", "pycon"),
        (">>> 1 + 1\n2", "text", "pycon"),
        ("pip install demo", "python", "shell"),
        ("python -m demo --help", "", "shell"),
        ('{"a": [1, 2]}', "", "json"),
        ("[project]\nname = 'demo'\ndeps = [\n  'a',\n]", "", "toml"),
        ("a: 1", "yaml", "other"),
        ("echo hi", "bash", "shell"),
        ("requests", "", "other"),
        ("{'a': 1}", "", "other"),
        ("demo.run(path/to/file, <your key>)", "python", "python"),
        ("Some prose, not code.", "", "other"),
    ],
)
def test_classify(code: str, language: str, kind: str) -> None:
    assert classify(code, language) == kind


def test_session_parser_is_lenient() -> None:
    session = textwrap.dedent(
        """\
        >>> def double(x):
                return x * 2
        >>> double(2)
        4
        >>>
        total = double(
        5)
        >>> int("z")
        ValueError: invalid literal for int() with base 10: 'z'
        >>> {}["k"]
        Traceback (most recent call last):
          ...
        KeyError: 'k'
        >>> for i in range(2):
        ...     print(i)
        0
        1
        >>> open("missing")
        <...>
        FileNotFoundError: [Errno 2] No such file or directory: 'missing'
        """
    )
    examples = parse_session(session, line=10)
    assert [(e.source, e.want, e.line, e.exception) for e in examples] == [
        ("def double(x):\n    return x * 2", "", 10, ""),
        ("double(2)", "4", 12, ""),
        ("total = double(\n5)", "", 15, ""),
        ('int("z")', "ValueError: invalid literal for int() with base 10: 'z'", 17, "ValueError"),
        ('{}["k"]', "Traceback (most recent call last):\n  ...\nKeyError: 'k'", 19, "KeyError"),
        ("for i in range(2):\n    print(i)", "0\n1", 23, ""),
        (
            'open("missing")',
            "<...>\nFileNotFoundError: [Errno 2] No such file or directory: 'missing'",
            27,
            "FileNotFoundError",
        ),
    ]


def test_output_matching_and_loopback_rule() -> None:
    assert output_matches("[1,  2,\n 3]", "[1, 2, 3]\n")
    assert output_matches("<Thing at 0x...>", "<Thing at 0x7f00>")
    assert output_matches("a\n<BLANKLINE>\nb", "a\n\nb")
    assert not output_matches("a ... b", "a b")
    assert not output_matches("1", "2")
    assert is_local("127.0.0.1") and is_local("::1") and is_local("localhost") and is_local(None)
    assert not is_local("192.0.2.1") and not is_local("example.invalid")


# --- running ------------------------------------------------------------------------------


def test_clean_readme_runs_ok(tmp_path: Path) -> None:
    outcomes = run(MARKDOWN, tmp_path)
    assert [o.status for o in outcomes] == [
        "skipped",
        "ok",
        "ok",
        "skipped",
        "skipped",
        "ok",
        "skipped",
    ]
    session = outcomes[2]
    assert (session.ran_clean, session.output_matched, session.mismatch) == (True, True, "")
    findings, details = readme_findings(outcomes)
    assert findings == []
    assert details["counts"]["runnable"] == 3 and details["counts"]["ok"] == 3
    assert details["kinds"] == {
        "shell": 1,
        "python": 2,
        "pycon": 1,
        "toml": 1,
        "other": 1,
        "json": 1,
    }
    json.dumps(details)


def test_rst_readme_builds_on_earlier_blocks(tmp_path: Path) -> None:
    outcomes = run(RST, tmp_path, ctype="text/x-rst")
    assert [(o.kind, o.status, o.cumulative, o.alone) for o in outcomes] == [
        ("python", "ok", "ok", "ok"),
        ("shell", "skipped", "skipped", "skipped"),
        ("toml", "skipped", "skipped", "skipped"),
        ("python", "ok", "ok", "failed"),
        ("pycon", "ok", "ok", "failed"),
        ("python", "ok", "ok", "failed"),
    ]


def test_dependent_block_fails_alone_and_error_is_kept_when_both_fail(tmp_path: Path) -> None:
    outcomes = run(
        """\
        ```python
        client = {"ready": True}
        ```

        ```python
        assert client["ready"]
        ```

        ```python
        client.connect()
        ```
        """,
        tmp_path,
    )
    assert [(o.status, o.cumulative, o.alone) for o in outcomes] == [
        ("ok", "ok", "ok"),
        ("ok", "ok", "failed"),
        ("failed", "failed", "failed"),
    ]
    assert outcomes[2].error == "AttributeError: 'dict' object has no attribute 'connect'"
    assert outcomes[2].line == 10 and outcomes[2].first_line == "client.connect()"


def test_session_output_matched_separately_from_ran_clean(tmp_path: Path) -> None:
    outcomes = run(
        """\
        ```pycon
        >>> import time
        >>> print("hello")
        hello
        >>> 2 ** 10
        1024
        ```

        ```python
        >>> time.time()
        0.0
        >>> sorted({3, 1})
        [1, 3]
        ```

        ```
        >>> time.no_such_clock()
        42
        ```
        """,
        tmp_path,
    )
    matching, mismatching, broken = outcomes
    assert (matching.status, matching.ran_clean, matching.output_matched) == ("ok", True, True)
    assert (mismatching.status, mismatching.ran_clean, mismatching.output_matched) == (
        "ok",
        True,
        False,
    )
    assert mismatching.mismatch.startswith("line 10: expected '0.0', got '")
    assert (broken.status, broken.ran_clean, broken.output_matched) == ("failed", False, False)
    assert broken.error == "AttributeError: module 'time' has no attribute 'no_such_clock'"
    assert [f.code for f in readme_findings(outcomes)[0]] == ["readme.failed"]


def test_hanging_blocks_time_out_and_the_rest_still_run(tmp_path: Path) -> None:
    started = time.perf_counter()
    outcomes = run(
        """\
        ```python
        before = 1
        ```

        ```python
        import time
        time.sleep(60)
        ```

        ```python
        after = before + 1
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
        assert "before" not in globals()
        ```
        """,
        tmp_path,
        limit=0.5,
    )
    elapsed = time.perf_counter() - started
    assert [(o.status, o.cumulative, o.alone) for o in outcomes] == [
        ("ok", "ok", "ok"),
        ("timeout", "timeout", "skipped"),  # the alarm: same process, same namespace
        ("ok", "ok", "failed"),
        # alarm swallowed: the watchdog ends the process; `while True` without a break
        # runs until stopped by design, so it is unchecked rather than a hang
        ("unchecked", "timeout", "skipped"),
        ("failed", "failed", "failed"),
        ("ok", "ok", "ok"),  # a new process after the crash: a fresh namespace
    ]
    assert outcomes[1].error == "timed out after 0.5s"
    assert outcomes[3].error == "did not stop within 2s after its time limit"
    assert outcomes[3].unchecked == "loops forever by design (`while True` without a break)"
    assert outcomes[4].error == "the interpreter ended: exit code 3"
    assert elapsed < 15
    findings = {f.code: f for f in readme_findings(outcomes)[0]}
    assert findings["readme.timeout"].severity == Severity.MEDIUM
    assert findings["readme.timeout"].evidence["block"] == "line 6: import time"
    assert findings["readme.timeout"].message.startswith("1 of 5 checked README examples hung")
    assert findings["readme.failed"].severity == Severity.LOW
    assert (findings["readme.unchecked"].blame, findings["readme.unchecked"].severity) == (
        Blame.ENVIRONMENT,
        Severity.INFO,
    )


def test_stdin_argv_and_network_are_closed(tmp_path: Path) -> None:
    started = time.perf_counter()
    outcomes = run(
        """\
        ```python
        name = input("Your name? ")
        ```

        ```python
        import sys
        assert sys.stdin.read() == ""
        assert len(sys.argv) == 1
        print(sys.argv[1])
        ```

        ```python
        import socket
        socket.create_connection(("192.0.2.1", 80), timeout=5)
        ```

        ```python
        import urllib.request
        urllib.request.urlopen("http://example.invalid/", timeout=5)
        ```

        ```python
        import socket
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        socket.create_connection(server.getsockname(), timeout=5).close()
        ```
        """,
        tmp_path,
    )
    assert time.perf_counter() - started < 10
    assert [o.error for o in outcomes] == [
        "EOFError: EOF when reading a line",
        "IndexError: list index out of range",
        "ConnectionRefusedError: [Errno 111] network access refused by pytest-spike "
        "(README example): ('192.0.2.1', 80)",
        outcomes[3].error,
        "",
    ]
    assert "network access refused by pytest-spike" in outcomes[3].error
    # What the spike closed or refused is not the README's fault: all four unchecked.
    assert [o.status for o in outcomes] == ["unchecked"] * 4 + ["ok"]
    assert [o.unchecked for o in outcomes[:4]] == [
        "reads standard input, which pytest-spike closes",
        "reads command-line arguments, which pytest-spike does not give",
        "needs network access, which pytest-spike refused (--spike-allow-network allows it)",
        "needs network access, which pytest-spike refused (--spike-allow-network allows it)",
    ]
    (finding,) = readme_findings(outcomes)[0]
    assert (finding.code, finding.severity, finding.blame) == (
        "readme.unchecked",
        Severity.INFO,
        Blame.ENVIRONMENT,
    )
    assert Weights().points(finding) == 0
    assert finding.evidence == {
        "block": 'line 2: name = input("Your name? ")',
        "error": "EOFError: EOF when reading a line",
        "count": "4/5",
        "reason": "reads standard input, which pytest-spike closes",
    }


def test_no_runnable_block_is_reported(tmp_path: Path) -> None:
    outcomes = run("```bash\npip install demo\n```\n\n```toml\n[a]\nb = 1\n```\n", tmp_path)
    assert [o.status for o in outcomes] == ["skipped", "skipped"]
    findings, details = readme_findings(outcomes)
    assert [(f.code, f.severity, f.message) for f in findings] == [
        (
            "readme.none",
            Severity.INFO,
            "the README has no runnable Python example (1 shell, 1 toml)",
        )
    ]
    assert details["counts"]["skipped"] == 2


def test_a_missing_interpreter_is_a_one_line_error(tmp_path: Path) -> None:
    blocks = extract_blocks("```python\nx = 1\n```\n", "text/markdown")
    with pytest.raises(SpikeError, match="check the interpreter path"):
        run_blocks(str(tmp_path / "no-python"), blocks, cwd=tmp_path)


# --- installed distributions ------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a real wheel installed by pip, plus a dist with a Description header."""
    root = tmp_path_factory.mktemp("readme-site")
    project = FakeProject(
        "readme-demo",
        files={"readme_demo/__init__.py": "def greet(name):\n    return 'hello ' + name\n"},
        readme="# readme-demo\n\n```python\nimport readme_demo\n"
        "message = readme_demo.greet('you')\n```\n\n"
        "```pycon\n>>> message\n'hello you'\n>>> readme_demo.greet(1)\nTypeError: boom\n```\n",
    )
    site = root / "site"
    pip_install_target([build_wheel(project, root / "wheels")], site)
    info = site / "old_style-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 1.1\nName: old-style\nVersion: 1.0\n"
        "Description: Old style\n        ===========\n        \n        ::\n        \n"
        "                import json\n"
    )
    return site


def test_read_readme_from_installed_metadata(demo_site: Path) -> None:
    env = {"PYTHONPATH": str(demo_site)}
    text, ctype = read_readme(PY, "readme-demo", 10, extra_env=env)
    assert ctype == "text/markdown" and text.startswith("# readme-demo\n")
    text, ctype = read_readme(PY, "old_style", 10, extra_env=env)
    assert (text, ctype) == ("Old style\n===========\n\n::\n\n        import json", "")
    assert [b.code for b in extract_blocks(text, ctype)] == ["import json"]
    with pytest.raises(SpikeError, match="'not-there' is not installed for"):
        read_readme(PY, "not-there", 10, extra_env=env)


def test_spike_readme_end_to_end(demo_site: Path, tmp_path: Path) -> None:
    readme = SpikeReadme(PY, "readme_demo", 10, tmp_path / "work", extra_env={"PYTHONPATH": str(demo_site)})
    assert [b.kind for b in readme.blocks()] == ["python", "pycon"]
    assert [b.line for b in readme.blocks("pycon")] == [9]
    result = readme.run()
    assert result.ok and not result.failed and not result.timed_out
    assert [o.output_matched for o in result.outcomes] == [None, True]
    assert [o.alone for o in result.outcomes] == ["ok", "failed"]
    assert result.findings == []
    assert result.summary() == "2 blocks: 2 ok, 0 failed, 0 timed out, 0 unchecked, 0 not run"
    with pytest.raises(SpikeError, match="'bash' is not one of"):
        readme.blocks("bash")


def _oldest_python() -> str | None:
    """Python 3.9 from PATH or pyenv, if this machine has it (the child must run there)."""
    found = shutil.which("python3.9")
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    candidates = ([found] if found else []) + sorted(glob.glob(f"{root}/versions/3.9*/bin/python"))
    # pyenv shims may fail for versions that are not selected: use real interpreters.
    return next((c for c in candidates if "shims" not in c and os.access(c, os.X_OK)), None)


def test_blocks_run_on_the_oldest_supported_python(tmp_path: Path) -> None:
    python = _oldest_python()
    if python is None:
        pytest.skip("no Python 3.9 interpreter on this machine")
    blocks = extract_blocks(RST, "text/x-rst")
    outcomes = run_blocks(python, blocks, timeout_per_block=5, cwd=tmp_path)
    assert [o.status for o in outcomes] == ["ok", "skipped", "skipped", "ok", "ok", "ok"]
    assert outcomes[4].output_matched is True


CRASHES = """\
```python
value = 1
```

```python
import os, signal
os.kill(os.getpid(), signal.SIGSEGV)
```

```python
import os
os._exit(0)
```

```python
import subprocess, sys
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "spike-leftover-marker"])
```

```python
import os
def command(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read()
    except OSError:
        return b""
assert not [p for p in os.listdir("/proc") if p.isdigit() and b"spike-leftover-marker" in command(p)]
```
"""


def _leftovers(marker: str) -> list[str]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
        except OSError:
            continue
    return found


@pytest.mark.skipif(not hasattr(os, "fork"), reason="blocks run alone in forks only where there is fork")
@pytest.mark.parametrize("forks", [True, False], ids=["forks", "new-interpreters"])
def test_blocks_alone_in_forks_end_as_in_interpreters_of_their_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, forks: bool
) -> None:
    """A crash, an ``os._exit(0)`` and a leftover process, each alone: the same outcomes
    whether the blocks run alone in forks of one child or in a new interpreter each."""
    monkeypatch.setattr("pytest_spike.readme.run.FORKS", forks)
    starts = []
    real = runner.run
    monkeypatch.setattr(runner, "run", lambda *a, **k: starts.append(1) or real(*a, **k))
    # A marker of this run's own: another test's leftover (an xdist worker's) is not ours.
    marker = f"spike-leftover-{uuid.uuid4().hex}"
    outcomes = run(CRASHES.replace("spike-leftover-marker", marker), tmp_path)
    assert [(o.status, o.cumulative, o.alone) for o in outcomes] == [
        ("ok", "ok", "ok"),
        ("failed", "failed", "failed"),
        ("failed", "failed", "failed"),
        ("ok", "ok", "ok"),
        ("ok", "failed", "ok"),  # in order, the leftover of the block before still runs
    ]
    assert outcomes[1].error == "the interpreter ended: killed by SIGSEGV"
    assert outcomes[2].error == "the interpreter ended: exit code 0"
    # in order: a start, then one after each crash; alone: the same, or one per block
    assert len(starts) == (3 + 3 if forks else 3 + 4)
    assert _leftovers(marker) == []


def test_blocks_alone_take_one_interpreter_start_in_forks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    starts = []
    real = runner.run
    monkeypatch.setattr(runner, "run", lambda *a, **k: starts.append(1) or real(*a, **k))
    text = "\n\n".join(f"```python\nx{i} = {i}\nassert 'x{i - 1}' not in globals()\n```" for i in range(1, 6))
    outcomes = run(text, tmp_path)
    assert [(o.status, o.cumulative, o.alone) for o in outcomes] == [("ok", "ok", "ok")] + [
        ("ok", "failed", "ok")
    ] * 4
    assert len(starts) == (2 if hasattr(os, "fork") else 5)
