"""Turn what the package index says about a project into findings: maintenance and security signals.

Every signal is also recorded in a details dict with the value it saw and where that came from,
so a score point can always be traced back to an index answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from packaging.tags import Tag, sys_tags
from packaging.utils import InvalidWheelFilename, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from pytest_spike.index.client import (
    IndexClient,
    IndexUnavailable,
    ProjectMeta,
    ProjectNotFound,
    Release,
    same_version,
)
from pytest_spike.index.order import version_key
from pytest_spike.index.versions import python_allows
from pytest_spike.model import STALE_AFTER_DAYS, YOUNG_RELEASE_DAYS, Blame, Finding, Severity

INACTIVE_CLASSIFIER = "Development Status :: 7 - Inactive"
INACTIVE_STATUSES = ("archived", "deprecated", "quarantined")
# The release-age thresholds (STALE_AFTER_DAYS, YOUNG_RELEASE_DAYS) live in model.py with
# the other defaults; all of them are in the details under "thresholds".
#: Cadence counts the final releases of this many days.
CADENCE_WINDOW_DAYS = 365
#: How much of a README counts as its opening: declarations of deprecation live up top.
README_HEAD_CHARS = 3000
SHOUTED_HEAD_CHARS = 600
_DEPRECATION = re.compile(
    r"""
    \b(?:this|the)\s+(?:[\w.-]+\s+)?(?:project|package|library|module|repository|repo)\s+
        (?:is|has\s+been)\s+(?:now\s+)?
        (?:deprecated|archived|abandoned|unmaintained|discontinued|no\s+longer\s+maintained)
    | \bno\s+longer\s+(?:maintained|developed|under\s+(?:active\s+)?development)\b
    | \bwill\s+be\s+the\s+last\s+(?:version|release)\b
    | \bdevelopment\s+(?:will\s+continue|has\s+moved)\s+(?:with|in|to)\b
    | \bsuperseded\s+by\b
    | \A\W*(?:deprecated|obsolete|unmaintained)\b
    """,
    re.IGNORECASE | re.VERBOSE,
)
_SHOUTED = re.compile(r"\b(?:DEPRECATED|UNMAINTAINED|ARCHIVED)\b")
_BADGE = re.compile(r"\[!\[[^\]]*\]\([^)]*\)\]\([^)]*\)|!\[[^\]]*\]\([^)]*\)")


def _finding(code: str, severity: Severity, message: str, **evidence: Any) -> Finding:
    return Finding(code, severity, message, {k: str(v) for k, v in evidence.items() if v is not None})


def _age_text(days: int) -> str:
    return f"{days / 365.25:.1f} years" if days >= 365 else f"{days} days"


def deprecation_phrase(text: str) -> str | None:
    """The sentence fragment where ``text`` declares its project deprecated, if it does."""
    head = _BADGE.sub("", text or "")[:README_HEAD_CHARS]
    # A shouted DEPRECATED is a banner only near the top; further down it names an option.
    match = _DEPRECATION.search(head) or _SHOUTED.search(head[:SHOUTED_HEAD_CHARS])
    if match is None:
        return None
    line_start = head.rfind("\n", 0, match.start()) + 1
    start = max(line_start, match.start() - 60)
    if start > line_start:
        start = head.find(" ", start, match.start()) + 1 or match.start()  # whole words only
    end = head.find("\n", match.end())
    words = head[start : end if end != -1 else None].split()
    return " ".join(words)[:200]


def _wheel_tags(release: Release) -> set[Tag]:
    """The tags of the release's wheels: those not yanked, or all of a release yanked whole
    (``signals.yanked`` says that; "no wheels" would charge it twice)."""
    tags: set[Tag] = set()
    for entry in [f for f in release.files if not f.yanked] or release.files:
        if entry.kind == "wheel":
            try:
                tags |= set(parse_wheel_filename(entry.filename)[3])
            except (InvalidWheelFilename, InvalidVersion):
                continue
    return tags


def signal_findings(
    meta: ProjectMeta,
    *,
    installed_version: str | None,
    matrix_pythons: Sequence[str] = (),
    now: datetime | None = None,
    stale_after_days: int = STALE_AFTER_DAYS,
    tags: Iterable[Tag] | None = None,
    version_source: str = "installed",
    python_version: str | None = None,
) -> tuple[list[Finding], dict[str, Any]]:
    """Findings from the index's view of a project, and every signal's value and source.

    ``installed_version`` is the version under test (None: the latest release), known from
    ``version_source`` ("installed", or the pin of a candidate that could not be installed);
    ``matrix_pythons`` the interpreters the spike asks for ("3.9", "3.13");
    ``tags`` the wheel tags the running interpreter accepts (default: this one's);
    ``python_version`` the spike's interpreter ("3.11"): when the newest release needs a newer
    one, ``signals.newest_needs_python`` (info) says so and which release was probed instead.
    """
    now = now or datetime.now(timezone.utc)
    details: dict[str, Any] = {}
    latest = meta.latest()
    version = installed_version or (str(latest.version) if latest else None)
    try:
        current = meta.releases.get(Version(version)) if version else None
    except InvalidVersion:
        current = None
    releases_src = meta.sources.get("releases", "")
    details["version"] = {
        "value": version,
        "source": version_source if installed_version else releases_src,
    }
    # The thresholds the verdict used, so the results file shows them next to the values.
    details["thresholds"] = {
        "stale_after_days": stale_after_days,
        "young_release_days": YOUNG_RELEASE_DAYS,
        "cadence_window_days": CADENCE_WINDOW_DAYS,
        "readme_head_chars": README_HEAD_CHARS,
    }
    findings = _release_age(meta, now, stale_after_days, details)
    findings += _young_release(current or latest, now, details, releases_src)
    findings += _yanked(meta, current, version, details)
    findings += _vulnerabilities(meta, version, details)
    findings += _status(meta, details)
    findings += _python_gap(current or latest, matrix_pythons, details, releases_src)
    findings += _newest_needs_python(meta, version, python_version, details, releases_src)
    findings += _wheels(current or latest, tags, details, releases_src)
    findings += _hygiene(meta, details)
    return findings, details


def not_a_release(release: Release) -> str | None:
    """Why ``release`` does not count as a release for age and cadence (None: it counts)."""
    if release.yanked:
        return "yanked"
    if release.version.is_devrelease:
        return "dev release"
    if release.version.is_prerelease:
        return "pre-release"
    return None


_Dated = tuple[datetime, Release]


def _release_age(
    meta: ProjectMeta, now: datetime, stale_after_days: int, details: dict[str, Any]
) -> list[Finding]:
    """Staleness and cadence, from final releases only: pre-, dev and yanked releases are noted."""
    source = meta.sources.get("releases", "")
    dated = _dated_releases(meta)
    finals = [(t, r) for t, r in dated if not_a_release(r) is None]
    others = [(t, r) for t, r in dated if not_a_release(r) in ("pre-release", "dev release")]
    if not finals and not others:
        details["last_release"] = {
            "value": None,
            "source": "the index gave no upload times for releases that are not yanked",
        }
        return []
    # Nothing final was ever released: the newest pre-release is all there is to judge.
    last_time, last = finals[-1] if finals else others[-1]
    age = (now - last_time).days
    details["last_release"] = {
        "value": {"version": str(last.version), "date": str(last_time.date()), "age_days": age},
        "final": bool(finals),
        "source": source,
    }
    findings = _stale(_last_release_label(last, bool(finals)), last_time, last, now, stale_after_days, source)
    newer = [(t, r) for t, r in others if t > last_time] if finals else []
    findings += _recent_prereleases(newer, last_time, last, now, details, source)
    findings.append(_cadence(dated, finals, now, details, source))
    return findings


def _dated_releases(meta: ProjectMeta) -> list[_Dated]:
    """Releases with an upload time, oldest first (ties by version)."""
    return sorted(
        ((r.upload_time, r) for r in meta.releases.values() if r.upload_time),
        key=lambda pair: (pair[0], pair[1].version),
    )


def _last_release_label(last: Release, final: bool) -> str:
    return "last release" if final else f"last release (a {not_a_release(last)}, no final release exists)"


def _stale(
    label: str, last_time: datetime, last: Release, now: datetime, stale_after_days: int, source: str
) -> list[Finding]:
    """``signals.stale`` when the last release is older than ``stale_after_days``."""
    age = (now - last_time).days
    if age <= stale_after_days:
        return []
    return [
        _finding(
            "signals.stale",
            Severity.MEDIUM,
            f"{label} {last.version} was {_age_text(age)} ago ({last_time.date()}); "
            f"stale after {_age_text(stale_after_days)}",
            last_release=last.version,
            date=last_time.date(),
            source=source,
        )
    ]


def _recent_prereleases(
    newer: list[_Dated],
    last_time: datetime,
    last: Release,
    now: datetime,
    details: dict[str, Any],
    source: str,
) -> list[Finding]:
    """Pre- and dev releases since the last final one; a finding when the newest is recent."""
    details["prereleases_since_last_release"] = {
        "value": [{"version": str(r.version), "date": str(t.date())} for t, r in newer[-10:]],
        "source": source,
    }
    if not newer or now - newer[-1][0] > timedelta(days=CADENCE_WINDOW_DAYS):
        return []
    newest_time, newest = newer[-1]
    return [
        _finding(
            "signals.recent_prereleases",
            Severity.INFO,
            f"{len(newer)} pre-release(s) since the last release {last.version} ({last_time.date()}), "
            f"newest {newest.version} ({newest_time.date()}); pre-releases do not count as releases",
            versions=", ".join(str(r.version) for _, r in newer[-10:]),
            source=source,
        )
    ]


def _cadence(
    dated: list[_Dated], finals: list[_Dated], now: datetime, details: dict[str, Any], source: str
) -> Finding:
    """Final releases in the cadence window (info), and which recent ones did not count."""
    window = timedelta(days=CADENCE_WINDOW_DAYS)
    recent = sorted(r.version for t, r in finals if now - t <= window)
    ignored = {
        str(r.version): not_a_release(r)
        for t, r in sorted(dated, key=lambda pair: pair[1].version)
        if now - t <= window and not_a_release(r)
    }
    details["cadence"] = {
        "value": len(recent),
        "versions": [str(v) for v in recent],
        "not_counted": ignored,
        "window_days": CADENCE_WINDOW_DAYS,
        "source": source,
    }
    return _finding(
        "signals.cadence",
        Severity.INFO,
        f"{len(recent)} release(s) in the last 12 months"
        + (f" (not counted: {len(ignored)} pre-, dev or yanked release(s))" if ignored else ""),
        releases=", ".join(str(v) for v in recent[-10:]) or "none",
        source=source,
    )


def _young_release(
    release: Release | None, now: datetime, details: dict[str, Any], source: str
) -> list[Finding]:
    """The version under test is only days old: worth knowing, never a reason on its own."""
    uploaded = release.upload_time if release else None
    hours = (now - uploaded).total_seconds() / 3600 if uploaded else None
    young = hours is not None and hours < YOUNG_RELEASE_DAYS * 24
    details["young_release"] = {
        "value": young,
        "age_hours": None if hours is None else round(hours, 1),
        "source": source,
    }
    if not young or release is None or uploaded is None or hours is None:
        return []
    age = f"{hours / 24:.0f} day(s)" if hours >= 24 else f"{hours:.0f} hour(s)"
    return [
        _finding(
            "signals.young_release",
            Severity.INFO,
            f"{release.version} was released {age} ago ({uploaded.date()}), under {YOUNG_RELEASE_DAYS} days: "
            "it has had little time for bug reports or a quick fix release",
            date=uploaded.date(),
            source=source,
        )
    ]


def _yanked(
    meta: ProjectMeta, current: Release | None, version: str | None, details: dict[str, Any]
) -> list[Finding]:
    source = meta.sources.get("releases", "")
    yanked = [r for r in meta.releases.values() if r.yanked]
    details["yanked"] = {
        "value": {str(r.version): r.yanked_reason for r in yanked},
        "source": source,
    }
    if current is not None and current.yanked:
        reason = current.yanked_reason or "no reason given"
        message = f"the version under test, {version}, is yanked: {reason}"
        return [_finding("signals.yanked", Severity.HIGH, message, reason=reason, source=source)]
    if yanked:
        listed = ", ".join(str(r.version) for r in yanked[-10:])
        message = f"{len(yanked)} yanked release(s): {listed}"
        return [_finding("signals.yanked", Severity.INFO, message, source=source)]
    return []


def _vulnerabilities(meta: ProjectMeta, version: str | None, details: dict[str, Any]) -> list[Finding]:
    source = meta.sources.get("vulnerabilities", "")
    if meta.vulnerabilities is None or not same_version(meta.version, version):
        why = f"the index offers no per-release metadata for {meta.name} {version}"
        details["vulnerabilities"] = {"value": None, "source": why}
        # Unknown is not clean: say so rather than let silence read as "no advisories".
        return [
            _finding(
                "signals.vulnerabilities_unknown",
                Severity.INFO,
                f"known vulnerabilities not checked: {why}",
            )
        ]
    live = [v for v in meta.vulnerabilities if not v.get("withdrawn")]
    rows: list[dict[str, Any]] = [
        {
            "id": str(v.get("id")),
            "aliases": [str(a) for a in v.get("aliases") or []],
            "fixed_in": [str(f) for f in v.get("fixed_in") or []],
        }
        for v in live
    ]
    details["vulnerabilities"] = {
        "value": rows,
        "withdrawn": len(meta.vulnerabilities) - len(live),
        "source": source,
    }
    if not rows:
        return []
    ids = ", ".join(str(row["id"]) for row in rows)
    fixes = sorted({f for row in rows for f in row["fixed_in"]}, key=version_key)
    fixed = f"; fixed in {', '.join(fixes)}" if fixes else "; no fixed version listed"
    return [
        _finding(
            "signals.vulnerable",
            Severity.HIGH,
            f"{len(rows)} known {'vulnerability' if len(rows) == 1 else 'vulnerabilities'} "
            f"in {meta.name} {version}: {ids}{fixed}",
            ids=ids,
            aliases=", ".join(a for row in rows for a in row["aliases"]),
            fixed_in=", ".join(fixes),
            source=source,
        )
    ]


def _status(meta: ProjectMeta, details: dict[str, Any]) -> list[Finding]:
    info_src = meta.sources.get("info", "")
    findings = []
    classifiers = list(meta.info.get("classifiers") or [])
    status_classifiers = [c for c in classifiers if c.startswith("Development Status ::")]
    details["status"] = {
        "value": {"index_status": meta.status, "classifiers": status_classifiers},
        "source": f"{meta.sources.get('releases', '')} {info_src}".strip(),
    }
    if INACTIVE_CLASSIFIER in classifiers:
        findings.append(
            _finding(
                "signals.inactive",
                Severity.HIGH,
                f"{meta.name} declares itself inactive ({INACTIVE_CLASSIFIER})",
                classifier=INACTIVE_CLASSIFIER,
                source=info_src,
            )
        )
    if (meta.status or "").lower() in INACTIVE_STATUSES:
        reason = f": {meta.status_reason}" if meta.status_reason else ""
        findings.append(
            _finding(
                "signals.inactive",
                Severity.HIGH,
                f"the package index marks {meta.name} as {meta.status}{reason}",
                status=meta.status,
                source=meta.sources.get("releases", ""),
            )
        )
    for field_name, label in (("summary", "summary"), ("description", "README")):
        phrase = deprecation_phrase(str(meta.info.get(field_name) or ""))
        if phrase:
            details["deprecated"] = {"value": phrase, "field": label, "source": info_src}
            findings.append(
                _finding(
                    "signals.deprecated",
                    Severity.HIGH,
                    f'the {label} declares {meta.name} deprecated: "{phrase}"',
                    excerpt=phrase,
                    source=info_src,
                )
            )
            break
    else:
        details["deprecated"] = {"value": None, "source": info_src or "no JSON metadata"}
    return findings


def _python_gap(
    release: Release | None, pythons: Sequence[str], details: dict[str, Any], source: str
) -> list[Finding]:
    requires = release.requires_python if release else None
    excluded = [p for p in pythons if not python_allows(requires, p)]
    details["requires_python"] = {"value": requires, "excludes": excluded, "source": source}
    if not excluded or release is None:
        return []
    return [
        _finding(
            "signals.python_gap",
            Severity.MEDIUM,
            f"{release.version} requires Python {requires}, "
            f"which excludes {', '.join(excluded)} from the matrix",
            requires_python=requires,
            excluded=", ".join(excluded),
            source=source,
        )
    ]


def _newest_needs_python(
    meta: ProjectMeta, version: str | None, python: str | None, details: dict[str, Any], source: str
) -> list[Finding]:
    """Whether the newest release needs a newer Python than the spike's, so an older one was
    probed (a resolver picks the newest release that allows the interpreter, quietly)."""
    latest = meta.latest()
    if latest is None or not python or not version or python_allows(latest.requires_python, python):
        return []
    try:
        if Version(version) >= latest.version:
            return []
    except InvalidVersion:
        return []
    details["newest_release"] = {
        "value": str(latest.version),
        "requires_python": latest.requires_python,
        "python": python,
        "probed": version,
        "source": source,
    }
    return [
        _finding(
            "signals.newest_needs_python",
            Severity.INFO,
            f"the newest release, {latest.version}, requires Python {latest.requires_python}; "
            f"on Python {python} the spike probed {version} instead",
            newest=str(latest.version),
            requires_python=latest.requires_python,
            python=python,
            probed=version,
            source=source,
        )
    ]


def _wheels(
    release: Release | None, tags: Iterable[Tag] | None, details: dict[str, Any], source: str
) -> list[Finding]:
    if release is None:
        details["wheels"] = {"value": None, "source": source}
        return []
    kinds = sorted(release.kinds())
    wheel_tags = _wheel_tags(release)
    accepted = set(sys_tags() if tags is None else tags)
    fits = bool(wheel_tags & accepted)
    details["wheels"] = {
        "value": {"kinds": kinds, "wheel_for_this_platform": fits},
        "source": source,
    }
    if not wheel_tags:
        return [
            _finding(
                "signals.no_wheels",
                Severity.LOW,
                f"{release.version} has no wheels (sdist only): installing needs a build, maybe a compiler",
                files=", ".join(f.filename for f in release.files),
                source=source,
            )
        ]
    if not fits:
        return [
            _finding(
                "signals.no_platform_wheel",
                Severity.LOW,
                f"no wheel of {release.version} fits this interpreter and platform: pip builds from source",
                wheels=", ".join(sorted({str(t) for t in wheel_tags})[:5]),
                source=source,
            )
        ]
    return []


def _hygiene(meta: ProjectMeta, details: dict[str, Any]) -> list[Finding]:
    info_src = meta.sources.get("info", "")
    if not meta.info:
        details["license"] = details["project_urls"] = {"value": None, "source": "no JSON metadata"}
        return []
    info = meta.info
    licence = (info.get("license_expression") or info.get("license") or "").strip() or next(
        (c for c in info.get("classifiers") or [] if c.startswith("License ::")), None
    )
    urls = dict(info.get("project_urls") or {})
    for key in ("home_page", "download_url"):
        if info.get(key):
            urls.setdefault(key, info[key])
    details["license"] = {
        "value": licence.splitlines()[0][:100] if licence else None,
        "source": info_src,
    }
    details["project_urls"] = {"value": urls, "source": info_src}
    findings = []
    if not licence and not info.get("license_files"):
        findings.append(
            _finding(
                "signals.no_license",
                Severity.LOW,
                f"{meta.name} declares no license",
                source=info_src,
            )
        )
    if not urls:
        findings.append(
            _finding(
                "signals.no_urls",
                Severity.LOW,
                f"{meta.name} lists no project URLs (no home, source or tracker)",
                source=info_src,
            )
        )
    return findings


def unchecked(reason: str) -> tuple[list[Finding], dict[str, Any]]:
    """The info finding when the index cannot be asked: the run goes on without signals."""
    message = f"{reason}; signals not checked"
    finding = Finding(
        "signals.unchecked", Severity.INFO, message, {"source": "index"}, blame=Blame.ENVIRONMENT
    )
    return [finding], {"unchecked": {"value": reason}}


def _partly_answered(meta: ProjectMeta, version: str | None) -> str | None:
    """Why the answer is too partial to judge (None: good enough).

    Some index did not answer (offline with a cold cache, unreachable) and the ones that did
    lack the version under test or any release metadata (a ``file://`` index has no dates):
    a release age, a cadence or a yank computed from that would be a guess, so it is unknown.
    """
    skipped = meta.sources.get("skipped")
    if not skipped:
        return None
    lacks = []
    if version is not None and not any(same_version(str(v), version) for v in meta.releases):
        lacks.append(f"release {version}")
    if not meta.info:
        lacks.append("release metadata")
    if not lacks:
        return None
    return f"the package index answered only in part (no {' or '.join(lacks)} from those that did; {skipped})"


def collect_signals(
    client: IndexClient,
    name: str,
    *,
    installed_version: str | None,
    matrix_pythons: Sequence[str] = (),
    now: datetime | None = None,
    stale_after_days: int = STALE_AFTER_DAYS,
    version_source: str = "installed",
    python_version: str | None = None,
) -> tuple[list[Finding], dict[str, Any]]:
    """Ask the index about ``name`` and return ``signal_findings``; index trouble is a finding."""
    try:
        meta = client.project_meta(name, installed_version)
    except IndexUnavailable as exc:
        return unchecked(str(exc))
    except ProjectNotFound as exc:
        not_there = Finding(
            "signals.not_on_index", Severity.INFO, f"{exc}; signals not checked", blame=Blame.ENVIRONMENT
        )
        return [not_there], {"unchecked": {"value": str(exc)}}
    partial = _partly_answered(meta, installed_version)
    if partial:
        return unchecked(partial)
    return signal_findings(
        meta,
        installed_version=installed_version,
        version_source=version_source,
        python_version=python_version,
        matrix_pythons=matrix_pythons,
        now=now,
        stale_after_days=stale_after_days,
    )
