"""The ML and data world's README examples (issue 24): what they leave to the reader.

Each fixture package reproduces a false alarm of a healthy real ML or data package: an
optional package named only in words, a model the reader downloads first, a reader's file
named only in a compiled extension's message, a system facility (clipboard, display), and a
block that is slow, not hung. Each must be unchecked with its reason (0 points), while the
candidate's own failures beside them still score.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
from pkgfactory import FakeProject, build_wheel, pip_install_target

from pytest_spike.model import Blame, Finding
from pytest_spike.readme.run import BlockOutcome, SpikeReadme, extract_blocks, readme_findings, run_blocks
from pytest_spike.scoring import Weights

PY = sys.executable


def md(*blocks: str) -> str:
    return "# demo\n\n" + "\n".join(f"```python\n{textwrap.dedent(b).strip()}\n```\n" for b in blocks)


PROJECTS = [
    FakeProject(
        "plotwords",
        files={
            "plotwords/__init__.py": "class FeatureNotFound(ValueError):\n    pass\n"
            "def plot(data):\n"
            "    raise ImportError('You must install the matplotlib library to plot a frame')\n"
            "def hvplot(data):\n"
            "    raise ImportError('plotwords.hvplot requires pandas matplotlib datashader bokeh "
            "holoviews to be installed')\n"
            "def soup(markup, features):\n"
            "    raise FeatureNotFound(\"Couldn't find a tree builder with the features you requested: "
            'xml. Do you need to install a parser library?")\n'
            "def total(values):\n    raise ValueError('values must be numbers')\n"
        },
        readme=md(
            "import plotwords\nplotwords.plot([1, 2])",
            "import plotwords\nplotwords.hvplot([1, 2])",
            "import plotwords\nplotwords.soup('<a/>', 'xml')",
            "import plotwords\nplotwords.total([1, 2])",
        ),
    ),
    FakeProject(
        "nlpmodel",
        files={
            "nlpmodel/__init__.py": "def load(name):\n"
            "    raise OSError(f\"[E050] Can't find model '{name}'. It doesn't seem to be a Python \"\n"
            "                  'package or a valid path to a data directory.')\n"
            "def tokenize(text):\n"
            "    raise LookupError('Resource punkt not found. Please use the downloader to obtain the resource')\n"
        },
        readme=md(
            "import nlpmodel\nnlp = nlpmodel.load('en_core_web_sm')",
            "import nlpmodel\nnlpmodel.tokenize('a b')",
        ),
    ),
    FakeProject(
        "rustframe",
        files={
            # As a compiled reader raises it: no filename attribute, the name only in the text.
            "rustframe/__init__.py": "def read_parquet(path):\n"
            "    raise FileNotFoundError(f'No such file or directory (os error 2): {path}')\n"
            "def example():\n    return read_parquet('bundled/example.parquet')\n"
        },
        readme=md(
            "import rustframe\ndf = rustframe.read_parquet('orders.parquet')",
            "import rustframe\ndf = rustframe.example()",
        ),
    ),
    FakeProject(
        "deskpkg",
        files={
            "deskpkg/__init__.py": "class PyperclipException(RuntimeError):\n    pass\n"
            "def copy(text):\n"
            "    raise PyperclipException('Pyperclip could not find a copy/paste mechanism for your system.')\n"
            "def window():\n"
            "    raise RuntimeError('no display name and no $DISPLAY environment variable')\n"
        },
        readme=md("import deskpkg\ndeskpkg.copy('hi')", "import deskpkg\ndeskpkg.window()"),
    ),
]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ml-attribution-site")
    target = root / "site"
    pip_install_target([build_wheel(p, root / "wheels") for p in PROJECTS], target)
    return target


def run_readme(name: str, site: Path, tmp_path: Path) -> tuple[list[BlockOutcome], list[Finding]]:
    run = SpikeReadme(PY, name, 5, tmp_path / "work", extra_env={"PYTHONPATH": str(site)}).run()  # type: ignore[arg-type]
    return list(run.outcomes), run.findings


def assert_unchecked(outcome: BlockOutcome, reason: str) -> None:
    assert (outcome.status, outcome.blame) == ("unchecked", Blame.ENVIRONMENT.value), outcome
    assert reason in outcome.unchecked


def scored(findings: list[Finding]) -> dict[str, float]:
    weights = Weights()
    return {f.code: weights.points(f) for f in findings if weights.points(f) > 0}


def test_optional_packages_named_in_words_are_unchecked(site: Path, tmp_path: Path) -> None:
    outcomes, findings = run_readme("plotwords", site, tmp_path)
    plot, hvplot, soup, total = outcomes
    assert_unchecked(plot, "needs an optional package that is not installed, as its message says")
    assert "You must install the matplotlib library" in plot.unchecked
    assert_unchecked(hvplot, "to be installed")
    assert_unchecked(soup, "Do you need to install a parser library?")
    # The candidate's own error beside them still counts.
    assert total.status == "failed" and total.error == "ValueError: values must be numbers"
    assert scored(findings) == {"readme.failed": 10}


def test_data_and_models_the_reader_downloads_first_are_unchecked(site: Path, tmp_path: Path) -> None:
    outcomes, findings = run_readme("nlpmodel", site, tmp_path)
    model, resource = outcomes
    assert_unchecked(
        model, "needs data or a model the reader downloads first (OSError: [E050] Can't find model"
    )
    assert_unchecked(resource, "Resource punkt not found")
    assert scored(findings) == {}


def test_a_readers_file_named_only_in_a_compiled_readers_message(site: Path, tmp_path: Path) -> None:
    outcomes, findings = run_readme("rustframe", site, tmp_path)
    orders, bundled = outcomes
    assert_unchecked(orders, "uses 'orders.parquet', a path the README names but never creates")
    # A file the candidate's own code looks for, which the README never names: its fault.
    assert bundled.status == "failed" and "bundled/example.parquet" in bundled.error
    assert scored(findings) == {"readme.failed": 10}


def test_a_readme_needing_a_clipboard_or_a_display_is_unchecked(site: Path, tmp_path: Path) -> None:
    outcomes, findings = run_readme("deskpkg", site, tmp_path)
    clipboard, display = outcomes
    assert_unchecked(clipboard, "needs a clipboard, a system facility pytest-spike's box does not have")
    assert_unchecked(display, "needs a display")
    assert scored(findings) == {}


def test_slow_is_not_hung_a_block_making_no_progress_is(tmp_path: Path) -> None:
    """CPU time that keeps growing is work: the block gets the larger allowance and, still
    computing at its end, is "slow" (unchecked); a block that stops using CPU is hung."""
    blocks = extract_blocks(
        md(
            "ready = True",
            # about 0.6 s of CPU: past the 0.4 s limit, well inside the allowance
            "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.6:\n"
            "    sum(range(1000))\nfinished = True",
            "x = 0\nfor i in range(10**12):\n    x += i",
            "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.5:\n"
            "    pass\ntime.sleep(600)",
            "import threading\nlock = threading.Lock()\nlock.acquire()\nlock.acquire()",
        ),
        "text/markdown",
    )
    _, fits, slow, stalls, deadlock = run_blocks(
        PY, blocks, timeout_per_block=0.4, slow_allowance=30, cwd=tmp_path
    )
    assert fits.status == "ok", fits
    assert fits.alone == "skipped"  # ran clean in order, past its limit: not paid for twice
    assert slow.cumulative == "timeout" and slow.error == "slow: still computing after 30s"
    assert_unchecked(slow, "slow: still computing after 30 s")
    assert "working, not hung" in slow.unchecked
    assert stalls.status == "timeout" and "made no progress" in stalls.error, stalls
    assert deadlock.status == "timeout" and deadlock.error == "timed out after 0.4s"
    findings = readme_findings([fits, slow, stalls, deadlock])[0]
    hung = next(f for f in findings if f.code == "readme.timeout")
    assert hung.message.startswith("2 of 3 checked README examples hung")
