"""The licence probe: can we ship with it? The licences of the candidate and of every
distribution its environment installs for it, against the team's policy.

Read by the host from the installed ``.dist-info`` files (no candidate code runs): core
metadata 2.4's ``License-Expression`` first, then the free-text ``License`` field, then
the licence classifiers, then the text of the ``License-File``s. Each is normalised to an
SPDX expression with packaging's licence support (``packaging.licenses``, PEP 639's
reference code, already a dependency); free text and classifiers go through the small
tables below, licence texts through their signature sentences.

The policy is ini ``spike_licenses``: ``allow:`` and ``deny:`` lines of SPDX ids or
expressions, wildcards such as ``GPL-*``. ``deny`` wins; with an ``allow`` line, an id it
does not name is denied too. ``A OR B`` is acceptable when one side is, ``A AND B`` when
both are. Without a policy the probe reports and scores nothing above info.

Findings: ``licence.denied`` (high, one per denied distribution, with the path by which
the candidate brings it), ``licence.unknown`` (no licence information: low under a policy,
info without), ``licence.summary`` (info: the closure's licences), and in an upgrade spike's
release probes ``licence.changed`` (the release's licence differs from the installed version's:
medium under a policy that does not allow the new one, info otherwise).
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from packaging.licenses import InvalidLicenseExpression, canonicalize_license_expression
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from pytest_spike.envs import inspection
from pytest_spike.model import Finding, Severity, SpikeError
from pytest_spike.probes.base import ProbeContext, ProbeOutcome

#: Trove classifiers (after ``License :: ``) and common free-text names -> SPDX ids.
#: "BSD License" names no clause count: ``LicenseRef-BSD``, made precise by a License-File.
_NAMES = {
    "osi approved :: mit license": "MIT",
    "osi approved :: mit no attribution license (mit-0)": "MIT-0",
    "osi approved :: apache software license": "Apache-2.0",
    "osi approved :: bsd license": "LicenseRef-BSD",
    "osi approved :: isc license (iscl)": "ISC",
    "osi approved :: python software foundation license": "PSF-2.0",
    "osi approved :: mozilla public license 2.0 (mpl 2.0)": "MPL-2.0",
    "osi approved :: the unlicense (unlicense)": "Unlicense",
    "osi approved :: zope public license": "ZPL-2.1",
    "osi approved :: gnu general public license v2 (gplv2)": "GPL-2.0-only",
    "osi approved :: gnu general public license v2 or later (gplv2+)": "GPL-2.0-or-later",
    "osi approved :: gnu general public license v3 (gplv3)": "GPL-3.0-only",
    "osi approved :: gnu general public license v3 or later (gplv3+)": "GPL-3.0-or-later",
    "osi approved :: gnu general public license (gpl)": "LicenseRef-GPL",
    "osi approved :: gnu lesser general public license v2 (lgplv2)": "LGPL-2.0-only",
    "osi approved :: gnu lesser general public license v2 or later (lgplv2+)": "LGPL-2.0-or-later",
    "osi approved :: gnu lesser general public license v3 (lgplv3)": "LGPL-3.0-only",
    "osi approved :: gnu lesser general public license v3 or later (lgplv3+)": "LGPL-3.0-or-later",
    "osi approved :: gnu affero general public license v3": "AGPL-3.0-only",
    "osi approved :: gnu affero general public license v3 or later (agplv3+)": "AGPL-3.0-or-later",
    "public domain": "LicenseRef-Public-Domain",
    "mit license": "MIT",
    "the mit license": "MIT",
    "apache 2.0": "Apache-2.0",
    "apache-2": "Apache-2.0",
    "apache license 2.0": "Apache-2.0",
    "apache license, version 2.0": "Apache-2.0",
    "apache software license": "Apache-2.0",
    "bsd": "LicenseRef-BSD",
    "bsd license": "LicenseRef-BSD",
    "new bsd license": "BSD-3-Clause",
    "simplified bsd license": "BSD-2-Clause",
    "psf": "PSF-2.0",
    "gplv3": "GPL-3.0-only",
    "gplv2": "GPL-2.0-only",
    "lgplv3": "LGPL-3.0-only",
    "mpl-2": "MPL-2.0",
}
#: Sentences that identify a licence text, most specific first.
_SIGNATURES = (
    (re.compile(r"GNU AFFERO GENERAL PUBLIC LICENSE\s+Version 3", re.I), "AGPL-3.0-only"),
    (re.compile(r"GNU LESSER GENERAL PUBLIC LICENSE\s+Version 3", re.I), "LGPL-3.0-only"),
    (re.compile(r"GNU GENERAL PUBLIC LICENSE\s+Version 3", re.I), "GPL-3.0-only"),
    (re.compile(r"GNU GENERAL PUBLIC LICENSE\s+Version 2", re.I), "GPL-2.0-only"),
    (re.compile(r"Mozilla Public License,?\s+(?:Version|v\.)\s*2\.0", re.I), "MPL-2.0"),
    (re.compile(r"Apache License\s+Version 2\.0", re.I), "Apache-2.0"),
    (re.compile(r"Permission is hereby granted, free of charge", re.I), "MIT"),
    (re.compile(r"Permission to use, copy, modify, and(?:/or)? distribute this software", re.I), "ISC"),
    (
        re.compile(r"Redistribution and use in source and binary forms.*Neither the name", re.I | re.S),
        "BSD-3-Clause",
    ),
    (re.compile(r"Redistribution and use in source and binary forms", re.I), "BSD-2-Clause"),
    (
        re.compile(r"This is free and unencumbered software released into the public domain", re.I),
        "Unlicense",
    ),
)
_TOKEN = re.compile(r"\(|\)|[^\s()]+")
#: How acceptable an expression is: denied < unlisted (no rule names it) < allowed.
_DENIED, _UNLISTED, _ALLOWED = 0, 1, 2


@dataclass(frozen=True)
class Licence:
    """A distribution's licence as SPDX (None: unknown), where it was read, and the raw text."""

    spdx: str | None
    source: str
    raw: str = ""


@dataclass(frozen=True)
class Dist:
    name: str
    version: str
    licence: Licence
    requires: tuple[str, ...]


@dataclass(frozen=True)
class Policy:
    """``spike_licenses`` as patterns; empty: report only."""

    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()

    @classmethod
    def of(cls, rules: Iterable[tuple[str, Sequence[str]]]) -> Policy:
        allow: list[str] = []
        deny: list[str] = []
        for verb, names in rules:
            (allow if verb == "allow" else deny).extend(names)
        return cls(tuple(allow), tuple(deny))

    def __bool__(self) -> bool:
        return bool(self.allow or self.deny)

    def judge(self, expression: str) -> tuple[int, str]:
        """How acceptable ``expression`` is, and the rule (or id) that decided a denial."""
        for pattern in self.deny:
            if _matches(pattern, expression):
                return _DENIED, f"deny: {pattern}"
        for pattern in self.allow:
            if _matches(pattern, expression):
                return _ALLOWED, ""
        return self._node(_parse(_TOKEN.findall(expression)))

    def _node(self, node: _Node) -> tuple[int, str]:
        if isinstance(node, str):
            return self._leaf(node)
        op, children = node
        judged = [self._node(child) for child in children]
        pick = max if op == "OR" else min
        return pick(judged, key=lambda j: j[0])

    def _leaf(self, text: str) -> tuple[int, str]:
        base = text.split(" WITH ")[0]
        for pattern in self.deny:
            if _matches(pattern, text) or _matches(pattern, base):
                return _DENIED, f"deny: {pattern}"
        if not self.allow:
            return _UNLISTED, ""
        if any(_matches(p, text) or _matches(p, base) for p in self.allow):
            return _ALLOWED, ""
        return _DENIED, f"{base} is not in the allow list"


#: An expression's tree: a leaf (an id, possibly ``id WITH exception``) or (AND|OR, children).
_Node = Any


def _matches(pattern: str, text: str) -> bool:
    return fnmatch.fnmatchcase(text.lower(), pattern.lower())


def _parse(tokens: list[str]) -> _Node:
    """An SPDX expression's tree; AND binds tighter than OR."""
    position = 0

    def expression() -> _Node:
        nonlocal position
        terms = [conjunction()]
        while position < len(tokens) and tokens[position] == "OR":
            position += 1
            terms.append(conjunction())
        return terms[0] if len(terms) == 1 else ("OR", terms)

    def conjunction() -> _Node:
        nonlocal position
        factors = [atom()]
        while position < len(tokens) and tokens[position] == "AND":
            position += 1
            factors.append(atom())
        return factors[0] if len(factors) == 1 else ("AND", factors)

    def atom() -> _Node:
        nonlocal position
        token = tokens[position] if position < len(tokens) else ""
        position += 1
        if token == "(":
            inner = expression()
            position += 1  # the closing parenthesis
            return inner
        if position + 1 < len(tokens) and tokens[position] == "WITH":
            position += 2
            return f"{token} WITH {tokens[position - 1]}"
        return token

    return expression()


# -- reading -------------------------------------------------------------------------------


def licence_of(meta: Any, read_file: Callable[[str], str | None] | None = None) -> Licence:
    """The licence ``meta`` (a distribution's core metadata, an ``email.message.Message``
    as ``importlib.metadata`` gives it) declares, as SPDX.

    ``read_file(name)`` returns a ``License-File``'s text (None when absent).
    """
    expression = (meta.get("License-Expression") or "").strip()
    if expression:
        spdx = _canonical(expression)
        return Licence(spdx, "License-Expression", expression)
    text = (meta.get("License") or "").strip()
    named: Licence | None = None
    if text and text.upper() != "UNKNOWN" and (spdx := _from_text(text)) is not None:
        named = Licence(spdx, "License", text[:200])
    if named is None:
        classified = [
            _NAMES.get(c.partition("License :: ")[2].strip().lower())
            for c in meta.get_all("Classifier") or ()
            if c.startswith("License :: ")
        ]
        found = sorted({c for c in classified if c})
        if found:
            named = Licence(_canonical(" OR ".join(found)), "classifier", ", ".join(found))
    if named is not None and "LicenseRef-" not in str(named.spdx):
        return named
    # Nothing named, or a family without its variant ("BSD License"): the licence text says which.
    for name in meta.get_all("License-File") or ():
        body = read_file(name) if read_file is not None else None
        spdx = _signature(body or "")
        if spdx is not None:
            return Licence(spdx, f"License-File {name}", name)
    if named is not None:
        return named
    if text and text.upper() != "UNKNOWN":
        return Licence(None, "License", text[:200])  # said something, but nothing we can name
    return Licence(None, "none")


def _canonical(expression: str) -> str | None:
    try:
        return str(canonicalize_license_expression(expression))
    except InvalidLicenseExpression:
        return None


def _from_text(text: str) -> str | None:
    """A ``License`` field: an SPDX expression, a known name, or a pasted licence text."""
    if "\n" not in text and len(text) < 100:
        named = _NAMES.get(text.lower().rstrip("."))
        return named or _canonical(text)
    return _signature(text)


def _signature(text: str) -> str | None:
    for pattern, spdx in _SIGNATURES:
        if pattern.search(text):
            return spdx
    return None


def read_dists(names: Iterable[str], site: inspection.Site) -> dict[str, Dist]:
    """The installed distributions ``names`` (canonical) found in ``site``, read by the host
    from their dist-info files (see envs/inspection.py); the first found on the path wins,
    as for imports."""
    installed = inspection.Installed(site)
    found: dict[str, Dist] = {}
    for wanted in names:
        dist = installed.find(wanted)
        name = canonicalize_name(dist.name_of()) if dist is not None else ""
        if dist is None or name != wanted or name in found:
            continue
        requires = []
        for text in dist.requires or ():
            try:
                requires.append(canonicalize_name(Requirement(text).name))
            except InvalidRequirement:
                continue
        licence = licence_of(dist.headers, functools.partial(_license_file, dist))
        found[name] = Dist(name, dist.version, licence, tuple(requires))
    return found


def _license_file(dist: inspection.HostDistribution, name: str) -> str | None:
    # A License-File names a file of the dist-info: one that leads elsewhere (../, /dev/zero)
    # is not read, nor one the host's reader refuses (a link out of the environment, a pipe).
    if PurePath(name).is_absolute() or ".." in PurePath(name).parts:
        return None
    try:
        # PEP 639 puts them under licenses/ in the dist-info; older tools at its top.
        return dist.read_text(f"licenses/{name}") or dist.read_text(name)
    except SpikeError:
        return None


def paths_from(root: str, dists: Mapping[str, Dist]) -> dict[str, list[str]]:
    """The shortest requirement path from ``root`` to each distribution of ``dists``."""
    paths = {root: [root]}
    queue = deque([root])
    while queue:
        name = queue.popleft()
        for dep in dists[name].requires if name in dists else ():
            if dep in dists and dep not in paths:
                paths[dep] = [*paths[name], dep]
                queue.append(dep)
    return paths


# -- the probe -----------------------------------------------------------------------------


def probe_licence(ctx: ProbeContext) -> ProbeOutcome:
    info = ctx.inspect()
    if ctx.python is None or not info.get("installed"):
        return ProbeOutcome(skipped=f"{ctx.candidate.project} is not installed (see the install probe)")
    root = canonicalize_name(str(info["name"]))
    closure = [n for n, v in (info.get("dependencies") or {}).items() if v is not None]
    # The host reads the files: the environment's site-packages, or the running
    # environment's path when the candidate lives there.
    dists = read_dists([root, *closure], ctx.site(str(ctx.python)))
    if root not in dists:
        return ProbeOutcome(
            version=str(info["version"]),
            skipped=f"the metadata of {info['name']} could not be read from {info['location']}",
        )
    policy = Policy.of(ctx.settings.licenses)
    findings, details = licence_findings(root, dists, policy)
    if ctx.upgrading_from is not None:
        # An upgrade's release: the version it moves from is the running environment's.
        before = read_dists([root], inspection.running_site()).get(root)
        details["before"] = (
            {"version": before.version, "licence": before.licence.spdx, "source": before.licence.source}
            if before is not None
            else {"version": ctx.upgrading_from, "licence": None, "source": "not installed here"}
        )
        changed = licence_change(before, dists[root], policy)
        if changed is not None:
            findings.insert(0, changed)
    return ProbeOutcome(findings=findings, details=details, version=str(info["version"]))


def licence_change(before: Dist | None, after: Dist, policy: Policy) -> Finding | None:
    """``licence.changed`` when the release's licence differs from the version it replaces.

    Medium under a policy unless the policy allows the new licence (info then: a change a
    reviewer may still want to see), info without a policy. Nothing when either side is not
    known (the installed version could not be read, or both say nothing).
    """
    if before is None or before.licence.spdx == after.licence.spdx:
        return None
    if before.licence.spdx is None:
        return None  # it said nothing before: the release's licence is read as for any candidate
    new = after.licence.spdx or "no licence information"
    acceptable = after.licence.spdx is not None and policy.judge(after.licence.spdx)[0] == _ALLOWED
    severity = Severity.MEDIUM if policy and not acceptable else Severity.INFO
    return Finding(
        "licence.changed",
        severity,
        f"{after.name} changed its licence: {before.licence.spdx} in {before.version}, {new} in {after.version}",
        {
            "before": before.licence.spdx,
            "after": after.licence.spdx or "",
            "versions": f"{before.version} -> {after.version}",
            "source": after.licence.source,
        },
    )


def licence_findings(
    root: str, dists: Mapping[str, Dist], policy: Policy
) -> tuple[list[Finding], dict[str, Any]]:
    """Judge every distribution's licence by ``policy``; see the module's docstring."""
    paths = paths_from(root, dists)
    order = sorted(dists, key=lambda n: (n != root, len(paths.get(n, ())) or 99, n))
    findings: list[Finding] = []
    for name in order:
        dist = dists[name]
        if dist.licence.spdx is None or not policy:
            continue
        verdict, why = policy.judge(dist.licence.spdx)
        if verdict == _DENIED:
            route = " -> ".join(paths.get(name, [root, name]))
            findings.append(
                Finding(
                    "licence.denied",
                    Severity.HIGH,
                    f"{route}: {name} {dist.version} is {dist.licence.spdx} ({why})",
                    {"distribution": name, "licence": dist.licence.spdx, "path": route, "rule": why},
                )
            )
    unknown = [n for n in order if dists[n].licence.spdx is None]
    if unknown:
        findings.append(
            Finding(
                "licence.unknown",
                Severity.LOW if policy else Severity.INFO,
                f"no licence information for {', '.join(unknown)}",
                {"distributions": ", ".join(unknown)},
            )
        )
    counts = Counter(dists[n].licence.spdx or "unknown" for n in order)
    summary = ", ".join(f"{spdx} ({n})" for spdx, n in counts.most_common())
    findings.append(
        Finding(
            "licence.summary",
            Severity.INFO,
            f"licences of {len(order)} distribution{'s' if len(order) != 1 else ''}: {summary}",
        )
    )
    details = {
        "licences": {
            n: {
                "version": dists[n].version,
                "licence": dists[n].licence.spdx,
                "source": dists[n].licence.source,
            }
            for n in order
        },
        "policy": {"allow": list(policy.allow), "deny": list(policy.deny)},
    }
    return findings, details
