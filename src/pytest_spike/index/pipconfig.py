"""pip's index configuration, read the way pip reads it (environment, then config files)."""

from __future__ import annotations

import configparser
import os
import sys
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_INDEX_URL = "https://pypi.org/simple"


def redact(url: str) -> str:
    """``url`` without its credentials (user name too: it is often a token), for messages,
    caches and reports."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[-1]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"***@{host}"))


@dataclass(frozen=True)
class IndexConfig:
    """Where to look (index, extra indexes, find-links) and the CA bundle, as pip would."""

    index_url: str
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    no_index: bool = False
    cert: str | None = None

    @classmethod
    def from_pip(cls, explicit: str | None = None, *, env: Mapping[str, str] | None = None) -> IndexConfig:
        """Read pip's settings: ``explicit`` > ``PIP_*`` variables > pip config files > default."""
        env = os.environ if env is None else env
        values = pip_config_values(env)
        index = explicit or env.get("PIP_INDEX_URL") or values.get("index-url") or DEFAULT_INDEX_URL
        extras = env.get("PIP_EXTRA_INDEX_URL", values.get("extra-index-url", ""))
        links = env.get("PIP_FIND_LINKS", values.get("find-links", ""))
        no_index = env.get("PIP_NO_INDEX", values.get("no-index", "")).strip().lower() in (
            "1",
            "true",
            "yes",
            "on",
        )
        cert = env.get("PIP_CERT") or values.get("cert") or None
        index = index.strip().rstrip("/")
        extra = tuple(dict.fromkeys(u.rstrip("/") for u in extras.split() if u.rstrip("/") != index))
        # an explicit index URL is the user asking for that index, whatever pip.conf says
        return cls(index, extra, tuple(links.split()), no_index and not explicit, cert)


def pip_config_files(env: Mapping[str, str]) -> list[Path]:
    """pip's config files, lowest precedence first; empty when ``PIP_CONFIG_FILE`` is devnull."""
    chosen = env.get("PIP_CONFIG_FILE")
    if chosen == os.devnull:
        return []
    home = Path(env.get("HOME") or Path.home())
    xdg_dirs = env.get("XDG_CONFIG_DIRS") or "/etc/xdg"
    files = [Path(d) / "pip" / "pip.conf" for d in xdg_dirs.split(os.pathsep) if d]
    files.append(Path("/etc/pip.conf"))
    # pip skips the user's files when PIP_CONFIG_FILE names an existing file.
    if not (chosen and Path(chosen).exists()):
        xdg_home = Path(env.get("XDG_CONFIG_HOME") or home / ".config")
        files += [home / ".pip" / "pip.conf", xdg_home / "pip" / "pip.conf"]
        files.append(home / "Library" / "Application Support" / "pip" / "pip.conf")
    site = [Path(sys.prefix)] + ([Path(env["VIRTUAL_ENV"])] if env.get("VIRTUAL_ENV") else [])
    files += [folder / "pip.conf" for folder in dict.fromkeys(site)]
    if chosen:
        files.append(Path(chosen))
    return files


def pip_config_values(env: Mapping[str, str]) -> dict[str, str]:
    """The ``[global]`` and ``[install]`` options of pip's config files, later files winning."""
    values: dict[str, str] = {}
    for path in pip_config_files(env):
        parser = configparser.RawConfigParser()
        try:
            parser.read(path, encoding="utf-8")
        except (OSError, configparser.Error, UnicodeDecodeError):
            continue  # pip refuses a broken file loudly; for reading the index URL we move on
        for section in ("global", "install"):
            if parser.has_section(section):
                values.update({k: v for k, v in parser.items(section)})
    return values
