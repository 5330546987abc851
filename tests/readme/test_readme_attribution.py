"""Whose fault a failing README example is: real packages' cases, on local fixture packages.

Each package below reproduces what a healthy real package's README did to the probe
(issue 13): the failure must land on the environment or the spike (unchecked, 0 points),
while a genuine failure of the candidate's own code is still scored.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
from pkgfactory import FakeProject, build_wheel, pip_install_target

from pytest_spike.model import Blame, Finding, Severity
from pytest_spike.readme.run import (
    BlockOutcome,
    SpikeReadme,
    extract_blocks,
    parse_session,
    read_readme,
    readme_findings,
    run_blocks,
)
from pytest_spike.scoring import Weights

PY = sys.executable


def md(*blocks: str) -> str:
    """A Markdown README with one python fence per block."""
    return "# demo\n\n" + "\n".join(f"```python\n{textwrap.dedent(b).strip()}\n```\n" for b in blocks)


PROJECTS = [
    FakeProject(
        "netpkg",
        files={
            "netpkg/__init__.py": "def fetch(url):\n"
            "    import urllib.request\n"
            "    return urllib.request.urlopen(url, timeout=5).read()\n"
        },
        readme=md(
            "import netpkg\npage = netpkg.fetch('http://example.invalid/')",
            "import netpkg\nnetpkg.no_such_function()",
        ),
    ),
    FakeProject(
        "onlynetpkg",
        files={"onlynetpkg/__init__.py": "import urllib.request\nget = urllib.request.urlopen\n"},
        readme=md("import onlynetpkg\nonlynetpkg.get('http://example.invalid/', timeout=5)"),
    ),
    FakeProject(
        "pathpkg",
        files={
            "pathpkg/__init__.py": "import os\n"
            "def load(path):\n    with open(path) as fh:\n        return fh.read()\n"
            "def load_default():\n"
            "    return load(os.path.join(os.path.dirname(__file__), 'data', 'default.srt'))\n"
        },
        readme=md(
            "import pathpkg\nsubs = pathpkg.load('./my_subtitle.srt')",
            "import configparser\nconfig = configparser.ConfigParser()\n"
            "with open('example.ini') as fh:\n    config.read_file(fh)",
            "import pathpkg\nsubs = pathpkg.load_default()",
        ),
    ),
    FakeProject(
        "namepkg",
        files={
            "namepkg/__init__.py": "def process(text):\n    return text.upper()\n"
            "def broken():\n    return undefined_helper()\n"
        },
        readme=md(
            "import namepkg\nresult = namepkg.process(your_text_string)",
            "for step in range(3):\n    do_step(step)",
            "import namepkg\nnamepkg.broken()",
        ),
    ),
    FakeProject(
        "optpkg",
        files={
            "optpkg/__init__.py": "def plot(data):\n    import spike_absent_plotting\n"
            "    return spike_absent_plotting.draw(data)\n"
        },
        readme=md(
            "import spike_absent_weather\nspike_absent_weather.OWM('key')",
            "import optpkg\noptpkg.plot([1, 2])",
            "import optpkg.missing_module",
        ),
    ),
    FakeProject(
        "clipkg",
        files={
            "clipkg/__init__.py": "import argparse\n"
            "def main(argv=None):\n"
            "    parser = argparse.ArgumentParser(prog='clipkg')\n"
            "    parser.add_argument('--version', action='version', version='clipkg 1.0')\n"
            "    parser.add_argument('path')\n"
            "    return parser.parse_args(argv)\n"
        },
        readme=md(
            "from clipkg import main\nmain(['--version'])",
            "from clipkg import main\nmain()",
        ),
    ),
    FakeProject(
        "regpkg",
        files={
            "regpkg/__init__.py": "import re\ndef match(pattern, text):\n    return re.match(pattern, text)\n"
        },
        readme_type="text/x-rst",
        # As the regex README: sessions that use the module and never import it.
        readme="regpkg\n======\n\n.. sourcecode:: python\n\n"
        "  >>> regpkg.match(r'\\d+', '123abc').group()\n  '123'\n\n"
        "Fuzzy::\n\n  >>> print(regpkg.match(r'x', 'abc'))\n  None\n",
    ),
]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("attribution-site")
    target = root / "site"
    pip_install_target([build_wheel(p, root / "wheels") for p in PROJECTS], target)
    return target


def readme_of(name: str, site: Path, tmp_path: Path, **kwargs: object) -> SpikeReadme:
    return SpikeReadme(PY, name, 5, tmp_path / "work", extra_env={"PYTHONPATH": str(site)}, **kwargs)  # type: ignore[arg-type]


def finding(findings: list[Finding], code: str, blame: Blame = Blame.CANDIDATE) -> Finding:
    return next(f for f in findings if f.code == code and f.blame is blame)


def assert_unchecked(outcome: BlockOutcome, reason: str, blame: Blame = Blame.ENVIRONMENT) -> None:
    assert (outcome.status, outcome.blame) == ("unchecked", blame.value), outcome
    assert reason in outcome.unchecked


def test_network_refused_is_unchecked_and_own_attribute_error_is_scored(site: Path, tmp_path: Path) -> None:
    run = readme_of("netpkg", site, tmp_path).run()
    refused, broken = run.outcomes
    assert "network access refused by pytest-spike" in refused.error
    assert_unchecked(refused, "needs network access, which pytest-spike refused")
    assert broken.status == "failed"
    assert broken.error == "AttributeError: module 'netpkg' has no attribute 'no_such_function'"
    unchecked = finding(run.findings, "readme.unchecked", Blame.ENVIRONMENT)
    assert (unchecked.severity, Weights().points(unchecked)) == (Severity.INFO, 0)
    failed = finding(run.findings, "readme.failed")
    # One of the one checked example failed: more than half, so medium, and scored.
    assert failed.message.startswith("1 of 1 checked README examples failed")
    assert (failed.severity, Weights().points(failed)) == (Severity.MEDIUM, 10)
    assert (run.details["counts"]["checked"], run.details["counts"]["unchecked"]) == (1, 1)


def test_allow_network_reaches_the_child(tmp_path: Path) -> None:
    """With allow_network the child leaves socket alone (no real traffic needed to show it)."""
    block = "import socket\nassert socket.getaddrinfo.__module__ == 'socket', 'patched'"
    blocks = extract_blocks(md(block), "text/markdown")
    refused = run_blocks(PY, blocks, timeout_per_block=5, cwd=tmp_path)
    allowed = run_blocks(PY, blocks, timeout_per_block=5, cwd=tmp_path, allow_network=True)
    assert (refused[0].status, refused[0].error) == ("failed", "AssertionError: patched")
    assert allowed[0].status == "ok"


def test_paths_the_reader_supplies_are_unchecked_missing_package_data_is_scored(
    site: Path, tmp_path: Path
) -> None:
    run = readme_of("pathpkg", site, tmp_path).run()
    subtitle, ini, data = run.outcomes
    assert_unchecked(subtitle, "uses 'my_subtitle.srt', a path the README names but never creates")
    assert_unchecked(ini, "uses 'example.ini'")
    # A file the candidate's own code looks for inside itself: its packaging, its fault.
    assert data.status == "failed" and "default.srt" in data.error
    assert Weights().points(finding(run.findings, "readme.failed")) > 0
    assert Weights().points(finding(run.findings, "readme.unchecked", Blame.ENVIRONMENT)) == 0


def test_names_the_readme_never_defines_are_unchecked_a_nameerror_inside_the_candidate_is_scored(
    site: Path, tmp_path: Path
) -> None:
    run = readme_of("namepkg", site, tmp_path).run()
    text, step, broken = run.outcomes
    assert_unchecked(text, "uses 'your_text_string', which the README never defines: left to the reader")
    assert_unchecked(step, "uses 'do_step'")
    assert broken.status == "failed"
    assert broken.error == "NameError: name 'undefined_helper' is not defined"
    failed = finding(run.findings, "readme.failed")
    assert failed.message.startswith("1 of 1 checked README examples failed")
    assert Weights().points(failed) == 10
    assert finding(run.findings, "readme.unchecked", Blame.ENVIRONMENT).evidence["count"] == "2/3"


def test_a_name_from_an_earlier_block_that_failed_is_a_consequence(tmp_path: Path) -> None:
    blocks = extract_blocks(
        md("import json\nclient = json.loads(your_config)", "client.get('x')", "print(later)", "later = 1"),
        "text/markdown",
    )
    first, consequence, used_before, defined = run_blocks(PY, blocks, timeout_per_block=5, cwd=tmp_path)
    assert_unchecked(first, "uses 'your_config'")
    assert_unchecked(
        consequence, "uses 'client', defined by an earlier example, but its example did not run clean"
    )
    # Used before the README defines it: the README's own order is wrong.
    assert used_before.status == "failed" and defined.status == "ok"


def test_a_name_lost_when_a_block_ended_the_process_is_a_consequence(tmp_path: Path) -> None:
    blocks = extract_blocks(md("value = 1", "import os\nos._exit(3)", "print(value)"), "text/markdown")
    defined, crash, lost = run_blocks(PY, blocks, timeout_per_block=5, cwd=tmp_path)
    assert (defined.status, crash.status) == ("ok", "failed")
    assert_unchecked(
        lost, "uses 'value', defined by an earlier example, but an earlier example ended the process"
    )


def test_optional_packages_not_installed_are_unchecked_own_missing_module_is_scored(
    site: Path, tmp_path: Path
) -> None:
    run = readme_of("optpkg", site, tmp_path).run()
    weather, plotting, own = run.outcomes
    assert_unchecked(weather, "needs 'spike_absent_weather', an optional package that is not installed")
    assert_unchecked(plotting, "needs 'spike_absent_plotting'")
    assert own.status == "failed"
    assert own.error == "ModuleNotFoundError: No module named 'optpkg.missing_module'"
    assert finding(run.findings, "readme.failed").severity is Severity.MEDIUM


def test_cli_examples_exiting_are_not_failures(site: Path, tmp_path: Path) -> None:
    run = readme_of("clipkg", site, tmp_path).run()
    version, usage = run.outcomes
    assert version.status == "ok"  # SystemExit(0): the CLI did its job
    assert_unchecked(usage, "a command-line example: it exited with status 2")
    assert usage.error == "SystemExit: 2"
    assert not [f for f in run.findings if Weights().points(f)]
    assert finding(run.findings, "readme.unchecked", Blame.ENVIRONMENT).severity is Severity.INFO


def test_a_readme_that_uses_its_module_without_importing_it(site: Path, tmp_path: Path) -> None:
    run = readme_of("regpkg", site, tmp_path).run()
    assert [(o.kind, o.status, o.output_matched) for o in run.outcomes] == [("pycon", "ok", True)] * 2
    assert run.assumed_imports == ("regpkg",)
    assert run.details["assumed_imports"] == ["regpkg"]
    assert run.findings == []


def test_a_module_the_readme_imports_is_not_assumed(tmp_path: Path) -> None:
    blocks = extract_blocks(md("import json as js\njs.dumps(1)", "print(json.dumps(2))"), "text/markdown")
    outcomes = run_blocks(PY, blocks, timeout_per_block=5, cwd=tmp_path, modules=["json"])
    # "json" is bound by no block ("js" is), so it is assumed: both blocks run.
    assert [o.status for o in outcomes] == ["ok", "ok"]
    blocks = extract_blocks(md("import json\nprint(json.dumps(2))", "print(json.dumps(3))"), "text/markdown")
    outcomes = run_blocks(PY, blocks, timeout_per_block=5, cwd=tmp_path, modules=["json", "csv"])
    assert [o.status for o in outcomes] == ["ok", "ok"]
    # imported by the first block that uses it: nothing assumed (and csv is never used)
    from pytest_spike.readme.verdict import ReadmeFacts

    assert ReadmeFacts.of(blocks, ["json", "csv"]).assumed_imports(["json", "csv"]) == []


def test_a_module_used_before_the_readme_imports_a_name_from_it_is_assumed(tmp_path: Path) -> None:
    # As the wcwidth README: sessions call wcwidth.wcwidth(...) with no import, and a later
    # example binds the name to the function (from wcwidth import wcwidth).
    blocks = extract_blocks(
        md(">>> json.dumps(1)\n'1'", ">>> from json import dumps as json\n>>> json(2)\n'2'"), "text/markdown"
    )
    outcomes = run_blocks(PY, blocks, timeout_per_block=5, cwd=tmp_path, modules=["json"])
    assert [o.status for o in outcomes] == ["ok", "ok"]


def test_a_refused_connection_to_a_server_the_readme_starts_elsewhere_is_unchecked(tmp_path: Path) -> None:
    # As the websockets README: the client example connects to the server of another example.
    code = "import socket\ns = socket.create_connection(('127.0.0.1', 9), timeout=2)"
    blocks = extract_blocks(md(code), "text/markdown")
    (outcome,) = run_blocks(PY, blocks, timeout_per_block=5, cwd=tmp_path, modules=[])
    assert_unchecked(outcome, "connects to a server that is not running here")
    findings, _ = readme_findings([outcome])
    assert sum(Weights().points(f) for f in findings) == 0


PATHSPEC_README = """\
pathspec
========

If you want to load the patterns from file::

\t>>> with open('patterns.list', 'r') as fh:
\t>>>     spec = fh.read().splitlines()

After writing them::

\t>>> with open('written.list', 'w') as fh:
\t>>>     _ = fh.write('*.pyc\\n')
\t>>> with open('written.list', 'r') as fh:
\t>>>     spec = fh.read().splitlines()
\t>>> spec
\t['*.pyc']

Or elide them::

\t>>> import fnmatch
\t>>> fnmatch.filter([...], '*.py')
"""


def test_pathspec_style_prompted_block_bodies(tmp_path: Path) -> None:
    examples = parse_session(">>> with open('p') as fh:\n>>>     spec = fh.read()\n>>> spec\n'x'")
    assert [(e.source, e.want) for e in examples] == [
        ("with open('p') as fh:\n    spec = fh.read()", ""),
        ("spec", "'x'"),
    ]
    outcomes = run_blocks(
        PY, extract_blocks(PATHSPEC_README, "text/x-rst"), timeout_per_block=5, cwd=tmp_path
    )
    reader, written, elided = outcomes
    assert "IndentationError" not in reader.error
    assert_unchecked(reader, "uses 'patterns.list', a path the README names but never creates")
    assert (written.status, written.output_matched) == ("ok", True)
    assert elided.error.startswith("TypeError")
    assert_unchecked(elided, "elides code with `...`")


def test_code_after_a_bare_prompt_keeps_its_indentation() -> None:
    """orjson's README: a bare ``>>>``, then a whole function at column 0."""
    session = (
        ">>> import json\n>>>\ndef default(obj):\n    if obj:\n        return str(obj)\n"
        "    raise TypeError\n\nclass Secret(str):\n    pass\n\n>>> 1\n1\n\n2\n"
    )
    examples = parse_session(session, line=10)
    assert [(e.source, e.line) for e in examples] == [
        ("import json", 10),
        ("def default(obj):\n    if obj:\n        return str(obj)\n    raise TypeError", 12),
        ("class Secret(str):\n    pass", 17),
        ("1", 20),  # "2" after a blank line is output, not code: no bare ">>>" before it
    ]


def test_blocks_that_are_not_python_are_the_spikes_reading(tmp_path: Path) -> None:
    blocks = extract_blocks(
        md("'anaconda fuuoo bar'\n        ^^", "demo.run(path/to/file, <your key>)", 'print "hello"'),
        "text/markdown",
    )
    illustration, placeholder, python2 = run_blocks(PY, blocks, timeout_per_block=5, cwd=tmp_path)
    assert_unchecked(illustration, "not valid Python as read (IndentationError", Blame.SPIKE)
    assert_unchecked(placeholder, "not valid Python as read (SyntaxError", Blame.SPIKE)
    assert python2.status == "failed"  # a README written for Python 2: the candidate's
    findings = readme_findings([illustration, placeholder, python2])[0]
    assert finding(findings, "readme.unchecked", Blame.SPIKE).evidence["count"] == "2/3"


def test_documented_exception_is_what_the_readme_says(tmp_path: Path) -> None:
    blocks = extract_blocks(
        md("int('x')\n# Raises: ValueError (not a number)", "int('y')\n# returns 0"), "text/markdown"
    )
    said, unsaid = run_blocks(PY, blocks, timeout_per_block=5, cwd=tmp_path)
    assert said.status == "ok" and "the README says: Raises: ValueError" in said.error
    assert unsaid.status == "failed"


def test_servers_and_progress_bars_run_by_design_a_deadlock_hangs(tmp_path: Path) -> None:
    blocks = extract_blocks(
        md(
            "import http.server\n"
            "server = http.server.HTTPServer(('127.0.0.1', 0), http.server.SimpleHTTPRequestHandler)\n"
            "server.serve_forever()",
            "import sys, time\nfor i in range(10000):\n"
            "    sys.stderr.write(f'\\r{i}')\n    sys.stderr.flush()\n    time.sleep(0.05)",
            "import threading\nlock = threading.Lock()\nlock.acquire()\nlock.acquire()",
        ),
        "text/markdown",
    )
    server, progress, deadlock = run_blocks(PY, blocks, timeout_per_block=1.5, cwd=tmp_path)
    assert server.cumulative == progress.cumulative == deadlock.cumulative == "timeout"
    assert_unchecked(server, "starts a server (it listened on a socket)")
    assert_unchecked(progress, "was still printing")
    assert deadlock.status == "timeout"
    findings = readme_findings([server, progress, deadlock])[0]
    hung = finding(findings, "readme.timeout")
    assert hung.message.startswith("1 of 1 checked README examples hung")
    assert Weights().points(hung) == 10


def test_a_long_readme_is_read_whole(tmp_path: Path) -> None:
    """pydantic's README with its changelog (140 kB) was cut by the output cap."""
    long = md("import longpkg") + "\n".join(f"* change {i}: " + "x" * 80 for i in range(2000)) + "\n"
    assert len(long) > 150_000
    target = tmp_path / "site"
    pip_install_target([build_wheel(FakeProject("longpkg", readme=long), tmp_path / "wheels")], target)
    text, ctype = read_readme(PY, "longpkg", 10, extra_env={"PYTHONPATH": str(target)})
    assert (text, ctype) == (long, "text/markdown")


def test_an_error_of_the_child_itself_is_reported_as_ours(tmp_path: Path) -> None:
    from pytest_spike._core import runner
    from pytest_spike.readme.run import _child_source
    from pytest_spike.readme.verdict import Failure, ReadmeFacts, attribute

    result = runner.run(runner.python_argv(PY, _child_source()), timeout=10, cwd=tmp_path, stdin_data=b"{}")
    assert result.returncode == 70
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"spike_error": "KeyError: 'argv0'"}
    (block,) = extract_blocks(md("x = 1"), "text/markdown")
    run = {"status": "failed", "error": "KeyError: 'limit'", "spike": True}
    why = attribute(Failure(block, run, ReadmeFacts.of([block]), frozenset(), 5))
    assert why is not None and why.blame is Blame.SPIKE


def test_probe_with_every_example_unchecked_is_skipped_and_scores_nothing(
    pytester: pytest.Pytester, site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(site))
    monkeypatch.syspath_prepend(str(site))  # installed in the running environment, as in its children
    result = pytester.runpytest(
        "--spike",
        "--spike-probes=readme",
        "--spike-isolation=never",
        "--spike-candidate=onlynetpkg",
        "--spike-candidate=netpkg",
        "--spike-json=r.json",
        "-rs",
    )
    result.stdout.fnmatch_lines(
        ["*SKIPPED*every runnable README example was unchecked (needs network access*"]
    )
    result.assert_outcomes(passed=1, skipped=1)
    cands = {c["name"]: c for c in json.loads((pytester.path / "r.json").read_text())["candidates"]}
    only = cands["onlynetpkg"]
    assert [p["outcome"] for p in only["probes"] if p["kind"] == "readme"] == ["skipped"]
    assert [(f["code"], f["blame"], f["points"]) for f in only["findings"]] == [
        ("readme.unchecked", "environment", 0)
    ]
    assert only["score"] == 0
    # netpkg: one unchecked, one genuine failure, scored medium; the item still passes
    # because an item fails only on a high or critical finding.
    scored = {f["code"]: f["points"] for f in cands["netpkg"]["findings"]}
    assert scored == {"readme.failed": 10, "readme.unchecked": 0}


def test_an_exception_shown_by_another_name_or_a_base_class_is_what_the_readme_shows(tmp_path: Path) -> None:
    """orjson shows ``JSONEncodeError: ...`` for what is, at run time, a TypeError."""
    text = md(
        ">>> int('x')\nBadInputError: invalid literal for int() with base 10: 'x'\n"
        ">>> {}['k']\nLookupError: 'k'\n>>> int('y')\nBadInputError: another message"
    )
    (session,) = run_blocks(PY, extract_blocks(text, "text/markdown"), timeout_per_block=5, cwd=tmp_path)
    assert session.status == "failed"  # only the last example: neither name nor message fits
    assert session.error == "ValueError: invalid literal for int() with base 10: 'y'"
