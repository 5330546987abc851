"""The docs probe: do the examples in the candidate's documentation run?

Many packages keep their real hello-world in the documentation, not the README (tomlkit's
README has no Python example; its sdist ships ``docs/quickstart.rst``). From the sdist of the
installed version (the shared sdist cache), the probe finds the documentation (``docs/``,
``doc/``, the folder of a Sphinx ``conf.py``, a MkDocs ``docs_dir`` and the pages its ``nav``
names) and the pages a newcomer reads first (quickstart, getting started, tutorial, usage,
examples, index), in Markdown (MyST included), reStructuredText and Jupyter notebooks (code
cells, read with ``nbformat``: the ``docs`` extra).

Each page's examples run with the README probe's machinery and rules (``readme.run``): one
namespace per page, in order and alone, in the box (stage ``docs``), network refused and
unchecked, placeholders and optional packages unchecked, sessions' output compared, a time
limit per block. Findings: ``docs.failed``, ``docs.timeout``, ``docs.unchecked`` with the page
and line (a notebook's "line" is its cell number), ``docs.none`` when nothing ran, and
``docs.pages`` (info: ``docs: quickstart.rst 7/7, tutorial.md 12/14``). No documentation in the
sdist, nothing runnable, or nothing checked: unknown, skipped with the reason.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pytest_spike.index.client import IndexUnavailable, ProjectNotFound, sdist_entry
from pytest_spike.model import TAMPERED, Blame, Finding, Severity, SpikeError
from pytest_spike.probes.base import ProbeContext, ProbeOutcome
from pytest_spike.readme.blocks import Block, classify, cut, extract_blocks
from pytest_spike.readme.run import (
    DEFAULT_BLOCK_TIMEOUT_S,
    BlockOutcome,
    Examples,
    readme_findings,
    run_blocks,
)
from pytest_spike.upstream.sdist import fetch_sdist, redact, safe_extract

#: What a newcomer reads first, in that order (a page's name or its folder's, normalised).
NEWCOMER = ("quickstart", "gettingstarted", "tutorial", "usage", "examples", "index")
#: Pages run per candidate: the first ones a newcomer reads, not the whole manual.
MAX_PAGES = 6
_SUFFIXES = {".md": "markdown", ".markdown": "markdown", ".rst": "rst", ".txt": "rst", ".ipynb": "notebook"}
_DOC_FOLDERS = ("docs", "doc", "documentation")
_CONTENT_TYPES = {"markdown": "text/markdown", "rst": "text/x-rst"}
_MAGIC = re.compile(r"^(?P<indent>\s*)[%!]")
_NAV_PAGE = re.compile(r"[\w./-]+\.(?:md|markdown|ipynb)\b")
_DOCS_DIR = re.compile(r"^docs_dir:\s*['\"]?([^'\"#\s]+)", re.M)
_ROOT_DOC = re.compile(r"^(?:root_doc|master_doc)\s*=\s*['\"]([^'\"]+)['\"]", re.M)
#: An examples' noun for the findings: "docs examples".
DOCS = Examples("docs", "docs")
NBFORMAT_MISSING = "nbformat not installed (pip install 'pytest-spike[docs]')"


@dataclass(frozen=True)
class Page:
    """One documentation page: its path in the sdist, what it is shown as, its format."""

    path: Path
    name: str
    format: str


# -- finding the pages -------------------------------------------------------------------


def doc_roots(root: Path) -> list[Path]:
    """The sdist's documentation folders: ``docs/``, ``doc/``, a Sphinx ``conf.py``'s folder,
    a MkDocs ``docs_dir``."""
    found: list[Path] = [root / name for name in _DOC_FOLDERS if (root / name).is_dir()]
    mkdocs = root / "mkdocs.yml"
    if mkdocs.is_file():
        named = _DOCS_DIR.search(_read(mkdocs))
        folder = root / (named[1] if named else "docs")
        if folder.is_dir() and _inside(folder, root):
            found.append(folder)
    for conf in sorted(root.glob("*/conf.py")) + sorted(root.glob("*/*/conf.py")):
        if not _skipped_folder(conf.relative_to(root)):
            found.append(conf.parent)
    unique: list[Path] = []
    for folder in found:
        resolved = folder.resolve()
        if not any(resolved == u.resolve() for u in unique):
            unique.append(folder)
    return unique


def newcomer_pages(root: Path, limit: int = MAX_PAGES) -> list[Page]:
    """The pages a newcomer reads first, from :func:`doc_roots`, in reading order."""
    named = _config_named(root)
    ranked: dict[Path, tuple[int, int, str]] = {}
    for folder in doc_roots(root):
        for path in _files(folder):
            rank = _rank(path.relative_to(folder), named.get(path.resolve()))
            if rank is None:
                continue
            key = path.resolve()
            order = (rank, len(path.relative_to(folder).parts), path.relative_to(folder).as_posix())
            if key not in ranked or order < ranked[key]:
                ranked[key] = order
    pages = []
    for key, (_, _, shown) in sorted(ranked.items(), key=lambda kv: kv[1]):
        pages.append(Page(key, shown, _SUFFIXES[key.suffix.lower()]))
    return pages[:limit]


def _files(folder: Path) -> Iterator[Path]:
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if path.suffix.lower() in _SUFFIXES and path.is_file() and not _skipped_folder(relative):
            yield path


def _skipped_folder(relative: Path) -> bool:
    """Build output, templates, static files, the API reference, test folders and the
    contributors' pages (packaging's ``development/getting-started.rst`` is not for users)."""
    return any(
        part.startswith(("_", "."))
        or part in ("build", "site", "tests", "test", "api", "reference", "development", "contributing")
        for part in relative.parts[:-1]
    )


def _rank(relative: Path, config_rank: int | None) -> int | None:
    """Where in :data:`NEWCOMER` the page is (its name, else its folder's); a page the Sphinx
    or MkDocs configuration names as its root counts as ``index``."""
    for part in (relative.stem, *reversed(relative.parts[:-1])):
        word = re.sub(r"[^a-z]", "", part.lower())
        for rank, wanted in enumerate(NEWCOMER):
            if word == wanted or (word.startswith(wanted) and wanted != "index"):
                return rank
        if relative.stem.lower() != "index":
            break  # a folder names the page only through its index (``tutorial/index.rst``)
    return config_rank


def _config_named(root: Path) -> dict[Path, int]:
    """Pages the configuration names: Sphinx's root document, MkDocs' ``nav`` pages whose
    names say what a newcomer reads (ranked as such)."""
    named: dict[Path, int] = {}
    for conf in [*root.glob("*/conf.py"), *root.glob("*/*/conf.py")]:
        found = _ROOT_DOC.search(_read(conf))
        for suffix in (".rst", ".md", ".txt"):
            page = conf.parent / f"{found[1] if found else 'index'}{suffix}"
            if page.is_file():
                named[page.resolve()] = NEWCOMER.index("index")
    mkdocs = root / "mkdocs.yml"
    if mkdocs.is_file():
        text = _read(mkdocs)
        folder = root / (m[1] if (m := _DOCS_DIR.search(text)) else "docs")
        for name in _NAV_PAGE.findall(text.partition("nav:")[2]):
            page = folder / name
            if page.is_file() and _inside(page, root):
                rank = _rank(Path(name), None)
                if rank is not None:
                    named[page.resolve()] = rank
    return named


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def _read(path: Path) -> str:
    try:
        return path.read_text("utf-8", errors="replace")
    except OSError:
        return ""


# -- a page's blocks ---------------------------------------------------------------------


def page_blocks(page: Page) -> list[Block]:
    """The code blocks of a page; a notebook's are its code cells (``line``: cell number).

    Raises ``SpikeError`` when a notebook cannot be read (``nbformat`` missing, a broken file).
    """
    if page.format != "notebook":
        return extract_blocks(_read(page.path), _CONTENT_TYPES[page.format])
    return notebook_blocks(page.path)


def notebook_blocks(path: Path) -> list[Block]:
    """A notebook's code cells as Python blocks; IPython magics and shell escapes
    (``%matplotlib``, ``!pip install``) become ``pass``, as a reader would skip them."""
    try:
        import nbformat
    except ImportError as exc:
        raise SpikeError(NBFORMAT_MISSING) from exc
    try:
        notebook = nbformat.read(str(path), as_version=4)  # type: ignore[no-untyped-call]
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
        raise SpikeError(f"cannot read the notebook: {exc}") from exc
    blocks: list[Block] = []
    for number, cell in enumerate(notebook.cells, start=1):
        if cell.get("cell_type") != "code" or not str(cell.get("source", "")).strip():
            continue
        lines = str(cell["source"]).splitlines()
        code = "\n".join(_MAGIC.sub(r"\g<indent>pass  # ", line, count=1) for line in lines)
        blocks.append(Block(len(blocks), number, classify(code, "python"), code, "python"))
    return blocks


# -- the probe ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PageRun:
    """One page's blocks as they ran (or why none ran)."""

    page: Page
    outcomes: tuple[BlockOutcome, ...] = ()
    not_run: str = ""

    @property
    def runnable(self) -> list[BlockOutcome]:
        return [o for o in self.outcomes if o.kind in ("python", "pycon")]

    def status(self, status: str) -> list[BlockOutcome]:
        return [o for o in self.runnable if o.status == status]


def probe_docs(ctx: ProbeContext) -> ProbeOutcome:
    info = ctx.inspect()
    if ctx.python is None or not info.get("installed"):
        return ProbeOutcome(skipped=f"{ctx.candidate.project} is not installed (see the install probe)")
    name, version = str(info["name"]), str(info["version"])
    try:
        sdist = sdist_entry(ctx.services.index(), name, version)
    except IndexUnavailable as exc:
        why = f"{exc}; documentation examples not run"
        unchecked = Finding("docs.unchecked", Severity.INFO, why, blame=Blame.ENVIRONMENT)
        return ProbeOutcome(findings=[unchecked], version=version, skipped=why)
    except ProjectNotFound:
        sdist = None
    if sdist is None:
        return ProbeOutcome(version=version, skipped=f"the package index has no sdist of {name} {version}")
    source = ctx.sdist_source(sdist, purpose="for its docs")
    if source is None:
        return ProbeOutcome(
            version=version,
            skipped=f"docs not run: --spike-offline and the sdist {sdist.filename} is not in the cache",
        )
    workdir = ctx.workdir / f"docs-{ctx.candidate.name}"
    root = _sdist_root(source, workdir, ctx.timeout, sdist.hashes.get("sha256"))
    pages = newcomer_pages(root)
    if not pages:
        why = f"no documentation in the sdist {sdist.filename} (no docs/, doc/, Sphinx or MkDocs pages)"
        return ProbeOutcome(findings=[Finding("docs.none", Severity.INFO, why)], version=version, skipped=why)
    runs = [
        _run_page(ctx, page, workdir, info, index)
        for index, page in enumerate(pages)  # in reading order, each page alone
    ]
    findings, details = docs_findings(runs)
    details["sdist"] = sdist.filename
    details["doc_roots"] = [p.relative_to(root).as_posix() for p in doc_roots(root)]
    return ProbeOutcome(findings=findings, details=details, version=version, skipped=_unknown(runs))


def _sdist_root(source: str, workdir: Path, timeout: float, sha256: str | None) -> Path:
    """The extracted sdist: the cache's folder, or fetched here when the cache gave a URL."""
    local = Path(source)
    if local.is_dir():
        return local
    if "://" not in source:
        raise SpikeError(f"docs source {redact(source)!r} is not a URL or folder")
    archive = fetch_sdist(source, workdir / "download", timeout=timeout, sha256=sha256)
    shutil.rmtree(workdir / "src", ignore_errors=True)
    return safe_extract(archive, workdir / "src")


def _run_page(ctx: ProbeContext, page: Page, workdir: Path, info: dict[str, Any], index: int) -> PageRun:
    try:
        blocks = page_blocks(page)
    except SpikeError as exc:
        return PageRun(page, not_run=str(exc))
    if not any(b.runnable for b in blocks):
        return PageRun(page, tuple(_listed(b) for b in blocks))
    folder = workdir / f"page-{index}"
    folder.mkdir(parents=True, exist_ok=True)
    outcomes = run_blocks(
        str(ctx.python),
        blocks,
        timeout_per_block=min(DEFAULT_BLOCK_TIMEOUT_S, ctx.timeout),
        cwd=folder,
        env=None if ctx.python == ctx.host_python else ctx.foreign_env(),
        allow_network=ctx.settings.allow_network,
        modules=tuple(str(m) for m in info.get("modules") or ()),
        dist_name=str(info["name"]),
        stage=DOCS.code,
    )
    # The README's rules, said of a page: "uses 'Factory', which the page never defines".
    return PageRun(page, tuple(replace(o, unchecked=_of_page(o.unchecked)) for o in outcomes))


def _of_page(reason: str) -> str:
    return reason.replace("the README", "the page").replace("The README", "The page")


def _listed(block: Block) -> BlockOutcome:
    return BlockOutcome(block.index, block.line, block.kind, "skipped", block.first_line)


def _unknown(runs: Sequence[PageRun]) -> str | None:
    """Why the probe holds no evidence either way (None: it does)."""
    runnable = [o for r in runs for o in r.runnable]
    names = ", ".join(r.page.name for r in runs)
    if not runnable:
        return f"nothing runnable: the documentation's first pages ({names}) have no Python example"
    checked = [o for o in runnable if o.status != "unchecked"]
    if not checked:
        return f"every runnable docs example was unchecked ({runnable[0].unchecked})"
    return None


def docs_findings(runs: Sequence[PageRun]) -> tuple[list[Finding], dict[str, Any]]:
    """Findings over every page (see the module's docstring) and the details per page.

    The README probe's rules, summed over pages: ``docs.failed`` is medium when more than
    half of the checked examples failed, low when some did; ``docs.timeout`` low (a page's
    examples share one namespace, and a tutorial's later example may wait on what an earlier
    one still holds, a lock or a server: the README's hello-world keeps ``readme.timeout`` at
    medium, the documentation's deeper pages do not);
    ``docs.unchecked`` info, one per blame; ``docs.none`` info when no page had a runnable
    example; ``docs.pages`` info, which pages ran and how many examples passed;
    ``spike.tampered`` critical when an example's reported result contradicted what the
    host saw of its run.
    """
    runnable = [o for r in runs for o in r.runnable]
    unchecked = [(r, o) for r in runs for o in r.status("unchecked")]
    checked = len(runnable) - len(unchecked)
    findings: list[Finding] = []
    forged = [(r, o) for r in runs for o in r.runnable if o.tampered]
    if forged:
        # Reported results the host saw contradicted (see readme.witness): critical.
        verb = f"contradicted what the host saw ({forged[0][1].tampered})"
        findings.append(
            _where(TAMPERED, Severity.CRITICAL, f"{len(forged)} of {len(runnable)}", verb, forged)
        )
    failed = [(r, o) for r in runs for o in r.status("failed")]
    if failed:
        severity = Severity.MEDIUM if 2 * len(failed) > checked else Severity.LOW
        findings.append(
            _where("docs.failed", severity, f"{len(failed)} of {checked} checked", "failed", failed)
        )
    hung = [(r, o) for r in runs for o in r.status("timeout")]
    if hung:
        findings.append(
            _where("docs.timeout", Severity.LOW, f"{len(hung)} of {checked} checked", "hung", hung)
        )
    for blame in (Blame.ENVIRONMENT, Blame.SPIKE):
        group = [(r, o) for r, o in unchecked if o.blame == blame.value]
        if group:
            finding = _where(
                "docs.unchecked", Severity.INFO, f"{len(group)} of {len(runnable)}", "not checked", group
            )
            findings.append(Finding(finding.code, finding.severity, finding.message, finding.evidence, blame))
    for run in runs:
        if run.not_run:
            blame = Blame.ENVIRONMENT if run.not_run == NBFORMAT_MISSING else Blame.CANDIDATE
            message = f"{run.page.name} not run: {run.not_run}"
            severity = Severity.INFO
            code = "docs.unchecked" if blame is Blame.ENVIRONMENT else "docs.none"
            findings.append(Finding(code, severity, message, {"page": run.page.name}, blame))
    if not runnable:
        kinds = ", ".join(sorted({o.kind for r in runs for o in r.outcomes})) or "no code blocks"
        names = ", ".join(r.page.name for r in runs)
        findings.append(
            Finding(
                "docs.none",
                Severity.INFO,
                f"the docs pages {names} have no runnable Python example ({kinds})",
            )
        )
    else:
        ran = [r for r in runs if r.runnable]
        findings.append(
            Finding("docs.pages", Severity.INFO, "docs: " + ", ".join(_page_count(r) for r in ran))
        )
    details = {
        "pages": [
            {
                "page": r.page.name,
                "format": r.page.format,
                **({"not_run": r.not_run} if r.not_run else {}),
                **readme_findings(r.outcomes, examples=DOCS)[1],
            }
            for r in runs
        ],
        "counts": {
            "pages": len(runs),
            "runnable": len(runnable),
            "checked": checked,
            "ok": sum(o.status == "ok" for o in runnable),
            "failed": len(failed),
            "timeout": len(hung),
            "unchecked": len(unchecked),
        },
    }
    return findings, details


def _page_count(run: PageRun) -> str:
    """``quickstart.rst 7/7`` (ok of runnable), with the unchecked ones said apart."""
    runnable, ok = run.runnable, run.status("ok")
    unchecked = run.status("unchecked")
    more = f" ({len(unchecked)} unchecked)" if unchecked else ""
    return f"{run.page.name} {len(ok)}/{len(runnable)}{more}"


def _where(
    code: str, severity: Severity, count: str, verb: str, hits: Sequence[tuple[PageRun, BlockOutcome]]
) -> Finding:
    """One finding over every page: how many, and the first block of each page (page, line)."""
    first: dict[str, BlockOutcome] = {}
    for run, outcome in hits:
        first.setdefault(run.page.name, outcome)
    said = [f"{page} line {o.line}: {o.unchecked or o.error or o.first_line}" for page, o in first.items()]
    shown = "; ".join(said[:3]) + (f"; and {len(said) - 3} more pages" if len(said) > 3 else "")
    page, outcome = next(iter(first.items()))
    evidence = {
        "page": page,
        "line": str(outcome.line),
        "block": f"{page} line {outcome.line}: {outcome.first_line}",
        "error": outcome.error,
        "count": count.replace(" of ", "/").replace(" checked", ""),
        "pages": ", ".join(f"{p} line {o.line}" for p, o in first.items()),
    }
    if outcome.unchecked:
        evidence["reason"] = outcome.unchecked
    return Finding(code, severity, f"{count} docs examples {verb}: {cut(shown, 240)}", evidence)
