"""The HTML report: what the page shows, its fallbacks without the extra, and a real browser's view.

``data/toml_parsers.json`` is the results file a real run of ``examples/toml_parsers`` wrote
(``pytest --spike examples/toml_parsers --spike-json ...``; probe details trimmed to what the
report reads), so the page is checked on the findings, coverage and metrics of real packages.
"""

from __future__ import annotations

import datetime as dt
import re
import sys
from html import unescape
from pathlib import Path

import pytest

from pytest_spike import cli
from pytest_spike.matrix.merge import load_all, merge
from pytest_spike.model import (
    Blame,
    Candidate,
    CandidateResult,
    Finding,
    Level,
    ProbeResult,
    Scorecard,
    Severity,
    UpgradeResult,
    UpgradeTarget,
)
from pytest_spike.report import html
from pytest_spike.report import schema as results
from pytest_spike.scoring import Weights, build_scorecard, level_for, score
from pytest_spike.waivers import parse_waivers

RECORDED = Path(__file__).parent / "data" / "toml_parsers.json"
IMP = "import nose failed: ModuleNotFoundError: No module named 'imp'"


@pytest.fixture
def toml_card() -> Scorecard:
    return results.load(RECORDED)


def details_blocks(page: str) -> list[str]:
    return re.findall(r'<details class="finding[^"]*">.*?</details>', page, flags=re.S)


def test_scorecard_levels_coverage_and_every_finding_folded(toml_card: Scorecard) -> None:
    page = html.render(toml_card)
    for cand in toml_card.candidates:
        row = re.search(rf'<a class="cand" href="#c-{cand.name}">.*?</tr>', page, flags=re.S)
        assert row is not None, cand.name
        assert f'<span class="lvl lvl-{cand.level.value}">' in row.group(0)
        have, total = cand.evidence["probes_with_evidence"], cand.evidence["probes"]
        assert f"{have}/{total} probes" in row.group(0)
        for kind, why in cand.evidence["why"].items():
            assert f"unknown: {kind} ({why})" in row.group(0)
    folded = details_blocks(page)
    assert len(folded) == sum(len(c.scored) for c in toml_card.candidates)
    toml_real_data = next(b for b in folded if "real_data.failed" in b)
    assert "+30" in toml_real_data and "Not a homogeneous array" in toml_real_data
    assert "<dt>excerpt</dt>" in toml_real_data  # the evidence, behind the fold
    unchecked = [b for b in folded if "readme.unchecked" in b]
    assert len(unchecked) == 2 and all("unchecked (environment)" in b for b in unchecked)
    assert "lowest risk: tomlkit (LOW, 0 points, evidence 7/8)" in page
    assert "tomli can read TOML but has no dumps()" in page  # a note
    assert "<dt>Python</dt><dd>3.11.7</dd>" in page  # the environment and the cell


def test_waived_and_expired_waivers_are_marked() -> None:
    stale = Finding("signals.stale", Severity.MEDIUM, "last release 6 years ago")
    slow = Finding("import.slow", Severity.LOW, "import takes 2.1s")
    probes = [ProbeResult("toml", "signals", "spike::toml::signals", findings=[stale, slow])]
    waivers = parse_waivers(
        [
            "toml signals.stale until 2030-01-31: pinned, replaced next quarter",
            "toml import.slow until 2020-01-01: was fine on the old runners",
        ],
        "spike_waivers",
    )
    card = build_scorecard(
        [(Candidate("toml"), probes)], timebox=600, waivers=waivers, today=dt.date(2026, 1, 1)
    )
    page = html.render(card)
    waived, expired = (next(b for b in details_blocks(page) if code in b) for code in (stale.code, slow.code))
    assert '<span class="pts">0</span>' in waived and "waived until 2030-01-31" in waived
    assert "pinned, replaced next quarter" in waived
    assert '<span class="pts">+3</span>' in expired and "waiver expired 2020-01-01" in expired


def test_one_chart_per_metric_best_marked_unit_on_the_axis(toml_card: Scorecard) -> None:
    page = html.render(toml_card)
    charts = re.findall(r'<figure class="card chart".*?</figure>', page, flags=re.S)
    assert len(charts) == len(toml_card.metric_names()) == 2
    parse_time = next(c for c in charts if "<h3>parse time</h3>" in c)
    svg = parse_time[parse_time.index("<svg") :]
    assert "ms/file" in re.sub(r"<[^>]+>", " ", svg)  # the unit, as text on the axis
    assert "0.071  best" in svg  # tomli's bar is the best (lower is better)
    assert html.BEST_COLOUR in svg and svg.count(html.OTHER_COLOUR) == 2  # tomlkit's and toml's bars
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids)), "two charts share an id"


def test_the_page_loads_nothing_and_runs_no_script(toml_card: Scorecard) -> None:
    page = html.render(toml_card)
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert "<script" not in page
    assert not re.search(r'(src|href)="(?!#|data:)', page), "a link to something outside the page"
    assert "<svg" in page


def test_without_matplotlib_metrics_are_tables_and_the_page_says_why(
    toml_card: Scorecard, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    page = html.render(toml_card)
    assert "<svg" not in page
    assert f"charts need matplotlib: {html.INSTALL_HINT}" in unescape(page)
    assert re.search(
        r"<td>tomli<span class=\"best\">best</span></td><td class=\"num\">0.071 ms/file</td>", page
    )


def test_without_jinja2_spike_html_is_a_usage_error_with_the_hint(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "jinja2", None)
    result = pytester.runpytest("--spike", "--spike-candidate", "goodpkg", "--spike-html", "r.html")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    hint = "ERROR: --spike-html: the HTML report needs Jinja2: pip install 'pytest-spike[html]'"
    assert hint in result.stderr.lines
    assert not (pytester.path / "r.html").exists()


def test_spike_html_writes_the_page(pytester: pytest.Pytester, spike_site: Path) -> None:
    pytester.makepyfile(
        """
        import pytest
        from pytest_spike import spike

        @pytest.mark.parametrize("name, speed", [
            pytest.param("goodpkg", 120.0, marks=spike.candidate("goodpkg")),
            pytest.param("warnpkg", 80.0, marks=spike.candidate("warnpkg")),
        ])
        def test_speed(name, speed, spike_metric, spike_note):
            spike_metric("rows/s", speed, unit="rows/s")
            spike_note(f"{name} felt fine")
        """
    )
    # In a subprocess: pytester restores sys.modules after an in-process run, dropping the
    # matplotlib modules a first chart imported there; numpy and matplotlib's classes then
    # exist twice in this worker and later charts fail (an order-dependent failure under xdist).
    result = pytester.runpytest_subprocess("--spike", "--spike-html", "out/r.html")
    result.stdout.fnmatch_lines(["spike html: */out/r.html"])
    page = (pytester.path / "out" / "r.html").read_text()
    assert page.count("<svg") == 1
    assert 'id="c-goodpkg"' in page and 'id="c-warnpkg"' in page
    assert "import.deprecation" in page and "warnpkg felt fine" in page
    assert not list((pytester.path / "out").glob(".*.tmp")), "written atomically, nothing left over"


# -- the matrix -----------------------------------------------------------------------------


def cell_file(folder: Path, python: str, version: str, findings: list[Finding]) -> Path:
    cid = f"py{python}-nose-{version}"
    probes = [ProbeResult("nose", "import", "spike::nose::import", findings=list(findings))]
    result = CandidateResult(Candidate("nose"), version=version, probes=probes)
    result.scored = score([(f, "spike::nose::import") for f in findings], Weights().points)
    result.score = sum(s.points for s in result.scored)
    result.level = level_for(result.score, result.findings)
    card = Scorecard(cell={"id": cid, "python": f"{python}.1", "python_short": python}, candidates=[result])
    path = folder / f"{cid}.json"
    path.write_text(results.dumps(card))
    return path


@pytest.fixture
def cell_files(tmp_path: Path) -> Path:
    folder = tmp_path / "cells"
    folder.mkdir()
    broke = Finding(
        "import.failed", Severity.CRITICAL, IMP, {"excerpt": "Traceback ...\nModuleNotFoundError"}
    )
    stale = Finding("signals.stale", Severity.MEDIUM, "last release 9 years ago")
    for python in ("3.9", "3.11", "3.12", "3.13"):
        for version in ("1.3.6", "1.3.7"):
            cell_file(folder, python, version, ([broke] if python in ("3.12", "3.13") else []) + [stale])
    return folder


def test_merge_html_heat_grid_shows_the_finding_behind_each_red_cell(cell_files: Path) -> None:
    out = cell_files.parent / "matrix.html"
    assert (
        cli.main(["merge", str(cell_files), "--html", str(out), "--json", str(out.with_suffix(".json"))]) == 0
    )
    page = out.read_text()
    cells = re.findall(r'<td class="cell st-([a-z_]+)" title="([^"]*)">(.*?)</td>', page, flags=re.S)
    assert len(cells) == 8
    red = [(title, body) for state, title, body in cells if state == "blocked"]
    assert len(red) == 4
    for title, body in red:
        assert "matrix.python_gap" in title and "fails on 3.12 and 3.13" in title  # on hover
        assert "<details><summary>BLOCKED</summary>" in body and "No module named" in body  # on click
    medium = [title for state, title, _ in cells if state == "medium"]
    assert len(medium) == 4 and all("signals.stale" in t for t in medium)
    # show --html of the merged file draws the same grid
    shown = cell_files.parent / "shown.html"
    assert cli.main(["show", str(out.with_suffix(".json")), "--html", str(shown)]) == 0
    assert re.findall(r'<td class="cell st-([a-z_]+)"', shown.read_text()) == [s for s, _, _ in cells]


def test_merge_html_without_jinja2_is_the_one_line_hint(
    cell_files: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "jinja2", None)
    out = cell_files.parent / "m.html"
    assert cli.main(["merge", str(cell_files), "--html", str(out), "--md", str(out.with_suffix(".md"))]) == 2
    err = capsys.readouterr().err
    assert err == "pytest-spike: error: the HTML report needs Jinja2: pip install 'pytest-spike[html]'\n"
    assert not out.exists() and not out.with_suffix(".md").exists()


def test_show_html_without_matplotlib_notes_the_fallback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert cli.main(["show", str(RECORDED), "--html", str(tmp_path / "r.html")]) == 0
    assert "charts need matplotlib: pip install 'pytest-spike[html]'" in capsys.readouterr().err
    assert "<svg" not in (tmp_path / "r.html").read_text()


# -- upgrade spikes -------------------------------------------------------------------------

#: A message with everything the page must escape.
BREAK = "1 of 3 tests break on numpy 2.1.3: test_app.py::test_sum (assert <Array 'x'> == \"x\" & more)"
YANKED = 'the version under test, 2.1.3, is yanked: broken <wheel> for "arm64"'


def release(version: str, *, yanked: bool = False) -> CandidateResult:
    """The release's own evidence as release_evidence builds it: its probes, scored."""
    candidate = Candidate(f"numpy=={version}")
    found = [Finding("signals.yanked", Severity.HIGH, YANKED, {"reason": 'broken <wheel> for "arm64"'})]
    probes = [
        ProbeResult(candidate.name, "import", f"upgrade::{candidate.name}::import", duration_s=0.4),
        ProbeResult(
            candidate.name,
            "upstream",
            f"upgrade::{candidate.name}::upstream",
            outcome="skipped",
            details={"unknown": "upstream tests not run: --spike-offline"},
        ),
        ProbeResult(
            candidate.name,
            "signals",
            f"upgrade::{candidate.name}::signals",
            outcome="failed" if yanked else "passed",
            findings=found if yanked else [],
        ),
    ]
    return build_scorecard([(candidate, probes)], timebox=0.0).candidates[0]


@pytest.fixture
def upgrade_card() -> Scorecard:
    """An upgrade-only run: 2.1.3 breaks a test and is yanked, 1.26.4 passes, 2.2.0 is unknown."""
    breaks = Finding("upgrade.breaks", Severity.HIGH, BREAK, {"test_app.py::test_sum": "assert <Array 'x'>"})
    flaky = Finding("upgrade.flaky", Severity.INFO, "1 test(s) flipped once: test_app.py::test_io")
    unknown = Finding(
        "upgrade.unknown",
        Severity.INFO,
        "the project could not be installed in the new environment: no <setup.py>",
        blame=Blame.ENVIRONMENT,
    )
    targets = [
        UpgradeTarget(
            "1.26.4",
            passes=True,
            compared=3,
            moved=["numpy 1.24.4 -> 1.26.4"],
            release=release("1.26.4"),
            duration_s=12.5,
        ),
        UpgradeTarget(
            "2.1.3",
            level=Level.HIGH,
            passes=False,
            findings=[flaky, breaks],
            compared=3,
            broken=1,
            moved=["numpy 1.24.4 -> 2.1.3 (major upgrade)", "pandas 1.5.3 -> 2.2.3 (major upgrade)"],
            release=release("2.1.3", yanked=True),
        ),
        UpgradeTarget("2.2.0", findings=[unknown]),
    ]
    upgrade = UpgradeResult(
        "numpy>=1.26", "numpy", "1.24.4", targets, baseline={"source": "this run", "tests": 4, "passed": 3}
    )
    return Scorecard(cell={"python": "3.11.7"}, candidates=[], upgrades=[upgrade], fail_on=Level.HIGH)


def target_cards(page: str) -> dict[str, str]:
    found = re.findall(
        r'<section class="card target[^"]*" id="u-numpy-([0-9-]+)">(.*?)</section>', page, re.S
    )
    return {anchor.replace("-", "."): body for anchor, body in found}


def text_of(fragment: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def test_upgrades_one_card_per_target_with_the_terminal_verdicts(upgrade_card: Scorecard) -> None:
    page = html.render(upgrade_card)
    cards = target_cards(page)
    assert list(cards) == ["1.26.4", "2.1.3", "2.2.0"]
    passing, breaking, unknown = cards.values()
    assert 'class="card target lvl-border-low"' in page and 'class="card target lvl-border-high"' in page
    assert '<span class="lvl lvl-high">high</span>' in breaking
    assert '<span class="lvl lvl-low">low</span>' in passing and "newest passing" in passing
    assert '<span class="lvl lvl-unknown">unknown</span>' in unknown and "newest passing" not in breaking
    # the terminal's words, in the card's head
    assert "numpy 1.24.4 → 1.26.4 low 0 of 3 tests break" in text_of(passing)
    assert "numpy 1.24.4 → 2.1.3 high 1 of 3 tests break" in text_of(breaking)
    assert "the project could not be installed in the new environment: no <setup.py>" in text_of(unknown)
    assert "also moved: pandas 1.5.3 -> 2.2.3 (major upgrade)" in text_of(breaking)
    assert "also moved" not in passing
    # the project's findings, as the candidates' are drawn, without points (they carry none)
    folded = details_blocks(breaking)
    head = next(b for b in folded if "upgrade.breaks" in b)
    assert '<span class="sev sev-high">high</span>' in head and 'class="pts"' not in head
    assert "<dt>test_app.py::test_sum</dt>" in head  # the evidence, behind the fold
    assert re.search(r'<details class="infos"><summary>1 more: upgrade.flaky</summary>', breaking)
    assert 'class="tag unchecked"' in unknown and "unchecked (environment)" in unknown
    upverdict = re.search(r'<div class="upverdict">(.*?)</div>', page)
    assert upverdict is not None
    assert unescape(upverdict.group(1)) == "numpy: the suite passes on 1.26.4 (newest of the versions tried)"
    # the one "reached" rule (report.view.reaching): a target as merge and the terminal name it
    assert "--spike-fail-on high: reached by numpy 1.24.4 -&gt; 2.1.3 (high)" in page


def test_upgrades_show_the_release_own_evidence(upgrade_card: Scorecard) -> None:
    cards = target_cards(html.render(upgrade_card))
    own = re.search(r'<div class="release">(.*)', cards["2.1.3"], re.S)
    assert own is not None
    release_text = text_of(own.group(1))
    assert release_text.startswith("the release on its own high 30 points")
    assert (
        "evidence from 2 of 3 probe kinds; unknown: upstream (upstream tests not run: --spike-offline)"
        in (release_text)
    )
    probes = re.findall(r'<li class="o-([a-z]+)"[^>]*><b>([a-z]+)</b> (\w+)', own.group(1))
    assert probes == [
        ("passed", "import", "passed"),
        ("skipped", "upstream", "skipped"),
        ("failed", "signals", "failed"),
    ]
    (yanked,) = details_blocks(own.group(1))
    assert '<span class="pts">+30</span>' in yanked and '<span class="sev sev-high">high</span>' in yanked
    assert YANKED in unescape(yanked)
    assert re.search(
        r'<span class="lvl lvl-low">low</span>\s*<span class="score">0 points</span>', cards["1.26.4"]
    )
    assert '<div class="release">' not in cards["2.2.0"]  # no release probe ran: nothing to say


def test_an_upgrade_only_page_is_about_the_upgrade_and_stays_escaped(upgrade_card: Scorecard) -> None:
    page = html.render(upgrade_card)
    assert "no candidates" not in page and "Scorecard</h2>" not in page and "Candidates</h2>" not in page
    assert "<h2>Upgrades</h2>" in page
    verdict = "numpy: the suite passes on 1.26.4 (newest of the versions tried)"
    assert f'<h1 class="verdict">{verdict}</h1>' in page and f"<title>spike report: {verdict}</title>" in page
    tally = re.findall(r'<a class="lvl lvl-([a-z]+)" href="#(u-[^"]+)"', page)
    assert tally == [("low", "u-numpy-1-26-4"), ("high", "u-numpy-2-1-3"), ("unknown", "u-numpy-2-2-0")]
    # every message's <, >, quotes and & are escaped: no stray tag, the text reads back whole
    assert "<Array" not in page and "<wheel>" not in page and "<setup.py>" not in page
    assert BREAK in unescape(page) and YANKED in unescape(page)
    tags = re.findall(r"</?([a-zA-Z][a-zA-Z0-9]*)", page)
    assert set(tags) <= {
        "html", "head", "meta", "title", "style", "body", "main", "header", "div", "h1", "h2", "h3", "h4",
        "a", "dl", "dt", "dd", "section", "span", "p", "code", "pre", "details", "summary", "ul", "li",
        "b", "footer",
    }  # fmt: skip
    # the run's own candidates still lead when both are on one page
    with_candidates = html.render(
        Scorecard(cell={}, candidates=results.load(RECORDED).candidates, upgrades=upgrade_card.upgrades)
    )
    assert '<h1 class="verdict">lowest risk: tomlkit (LOW, 0 points, evidence 7/8)</h1>' in with_candidates
    assert f'<div class="subverdict">{verdict}</div>' in with_candidates


def test_show_html_of_an_upgrade_results_file(upgrade_card: Scorecard, tmp_path: Path) -> None:
    saved = tmp_path / "up.json"
    saved.write_text(results.dumps(upgrade_card))
    assert cli.main(["show", str(saved), "--html", str(tmp_path / "up.html")]) == 0
    page = (tmp_path / "up.html").read_text()
    assert list(target_cards(page)) == ["1.26.4", "2.1.3", "2.2.0"]
    assert "the release on its own" in page


def test_merge_html_of_one_job_per_target(upgrade_card: Scorecard, tmp_path: Path) -> None:
    (upgrade,) = upgrade_card.upgrades
    files = []
    for target in upgrade.targets:  # each CI job ran one target version and wrote up.json
        job = UpgradeResult(upgrade.requirement, upgrade.package, upgrade.current, [target], upgrade.baseline)
        path = tmp_path / f"upgrade-numpy-{target.version}" / "up.json"
        path.parent.mkdir()
        path.write_text(results.dumps(Scorecard(cell={"python": "3.11.7"}, candidates=[], upgrades=[job])))
        files.append(str(path))
    out = tmp_path / "merged.html"
    assert cli.main(["merge", *files, "--html", str(out)]) == 0
    page = out.read_text()
    assert list(target_cards(page)) == ["1.26.4", "2.1.3", "2.2.0"]
    assert "no candidates" not in page and "Scorecard</h2>" not in page
    assert (
        '<div class="upverdict">numpy: the suite passes on 1.26.4 (newest of the versions tried)</div>'
        in page
    )


# -- in a real browser ----------------------------------------------------------------------

#: Evaluated in the page: what a person at a 1280 px wide window would see.
CHECK = """(() => {
  const shown = el => { const r = el.getBoundingClientRect(), s = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none'; };
  const de = document.documentElement;
  return {
    scrollWidth: de.scrollWidth, innerWidth: window.innerWidth,
    wide: [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > innerWidth + 1)
      .slice(0, 5).map(e => e.tagName + '.' + e.className),
    rows: [...document.querySelectorAll('table.scorecard a.cand')].filter(shown).map(a => a.textContent.trim()),
    sections: [...document.querySelectorAll('section.candidate h3')].filter(shown).map(h => h.textContent.trim()),
    charts: [...document.querySelectorAll('figure.chart svg')].filter(s => shown(s) && s.getBoundingClientRect().height > 80).length,
    chartText: [...document.querySelectorAll('figure.chart svg text')].map(t => t.textContent).join(' '),
    heatCells: [...document.querySelectorAll('table.heat td.cell')].filter(shown).length,
    targets: [...document.querySelectorAll('section.target h3')].filter(shown).map(h => h.textContent.trim()),
  };
})()"""


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory):
    browser_mod = pytest.importorskip("browser")
    exe = browser_mod.find_chromium()
    if exe is None:
        pytest.skip(
            "chromium is not installed (.ci/run installs Debian's 'chromium' package when it can; "
            "or set SPIKE_CHROMIUM to a Chromium executable)"
        )
    with browser_mod.Chromium(exe, tmp_path_factory.mktemp("chromium-profile")) as browser:
        yield browser


def view(chromium, text: str, folder: Path, name: str):
    """Open the page ``text`` in the browser, keep its screenshot (its path is printed: look at
    it with ``-s``), and return what the browser saw; a console error fails the test."""
    page = folder / f"{name}.html"
    page.write_text(text)
    seen = chromium.open(page.as_uri(), CHECK)
    shot = folder / f"{name}.png"
    shot.write_bytes(seen.png)
    print(f"screenshot of the {name} report: {shot}")
    assert seen.errors == []
    return seen


@pytest.mark.browser
def test_the_report_in_headless_chromium(chromium, toml_card: Scorecard, tmp_path: Path) -> None:
    seen = view(chromium, html.render(toml_card), tmp_path, "spike")
    checks = seen.checks
    names = [c.name for c in toml_card.candidates]
    assert checks["rows"] == names and checks["sections"] == names
    assert checks["scrollWidth"] <= checks["innerWidth"] == 1280, checks["wide"]
    assert checks["charts"] == 2
    assert "ms/file" in checks["chartText"] and "best" in checks["chartText"]
    assert seen.png.startswith(b"\x89PNG") and len(seen.png) > 20_000


@pytest.mark.browser
def test_the_matrix_report_in_headless_chromium(chromium, cell_files: Path, tmp_path: Path) -> None:
    merged = merge(load_all(sorted(cell_files.glob("*.json")))[0])
    seen = view(chromium, html.render(merged.scorecard, grids=merged.grids), tmp_path, "matrix")
    assert seen.checks["rows"] == ["nose"] and seen.checks["heatCells"] == 8
    assert seen.checks["scrollWidth"] <= seen.checks["innerWidth"], seen.checks["wide"]


@pytest.mark.browser
def test_the_upgrade_report_in_headless_chromium(chromium, upgrade_card: Scorecard, tmp_path: Path) -> None:
    seen = view(chromium, html.render(upgrade_card), tmp_path, "upgrade")
    assert seen.checks["rows"] == [] and seen.checks["sections"] == []
    assert seen.checks["targets"] == [f"numpy 1.24.4 → {v}" for v in ("1.26.4", "2.1.3", "2.2.0")]
    assert seen.checks["scrollWidth"] <= seen.checks["innerWidth"], seen.checks["wide"]


#: Evaluated in the page: the words of the scorecard table's cells that a line break splits.
SPLIT_WORDS = """(() => {
  const split = [];
  for (const cell of document.querySelectorAll('table.scorecard th, table.scorecard td')) {
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (const m of node.data.matchAll(/\\S+/g)) {
        const range = document.createRange();
        range.setStart(node, m.index);
        range.setEnd(node, m.index + m[0].length);
        const tops = new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top)));
        if (tops.size > 1) split.push(m[0]);
      }
    }
  }
  return split;
})()"""


def long_evidence_card() -> Scorecard:
    """Three candidates whose evidence column holds long reasons (the merged matrix's versions too)."""
    why = (
        "collection failed on every sampled module: ModuleNotFoundError: No module named "
        "'hypothesis' (a harness dependency the sdist's test extra names, refused here)"
    )
    candidates = []
    for name in ("tomli", "tomlkit", "toml"):
        probes = [
            ProbeResult(name, "install", f"spike::{name}::install", duration_s=3.47),
            ProbeResult(name, "import", f"spike::{name}::import", duration_s=0.29),
            ProbeResult(
                name, "upstream", f"spike::{name}::upstream", outcome="skipped", details={"unknown": why}
            ),
            ProbeResult(
                name, "readme", f"spike::{name}::readme", outcome="skipped", details={"unknown": why}
            ),
        ]
        candidates.append(CandidateResult(Candidate(name), version="2.0.1, 2.1.0, 2.2.1", probes=probes))
    return Scorecard(cell={"python": "3.11.7"}, candidates=candidates)


@pytest.mark.browser
def test_the_scorecard_wraps_long_evidence_between_words(chromium, tmp_path: Path) -> None:
    """Long evidence text wraps at spaces; no header, version, score or time breaks mid-word
    (it read VERSI/ON, 0.29./0 and 3.4/7s when every cell could break anywhere)."""
    page = tmp_path / "long.html"
    page.write_text(html.render(long_evidence_card()))
    seen = chromium.open(page.as_uri(), SPLIT_WORDS)
    (tmp_path / "long.png").write_bytes(seen.png)
    print(f"screenshot: {tmp_path / 'long.png'}")
    assert seen.errors == []
    assert seen.checks == []
