"""Where the events database is: a SQLite file (a path or a ``sqlite:`` URL) or a
PostgreSQL server (a ``postgresql://`` URL or libpq's ``host=... dbname=...`` keyword
string), and how to name it in messages without its password."""
from __future__ import annotations

import os
import re
from pathlib import Path

from comemory.errors import ConfigError

URL = re.compile(r"^postgres(ql)?://", re.IGNORECASE)
KEYWORDS = re.compile(r"^\s*[a-z_]+\s*=", re.IGNORECASE)  # libpq's "host=db user=bob ..."
OTHER_URL = re.compile(r"^([a-z][a-z0-9+.-]+):", re.IGNORECASE)  # a one-letter one: C:\
# a password in any form libpq reads: user:PASSWORD@ in a URL, ?password=PASSWORD in its
# query, password=PASSWORD (or password='pass word') in a keyword string
PASSWORDS = (re.compile(r"^[^:]+://[^:/@]*:([^@]*)@"),
             re.compile(r"[?&]password=([^&]*)", re.IGNORECASE),
             re.compile(r"(?:^|\s)password\s*=\s*('(?:[^'\\]|\\.)*'|[^\s']\S*)",
                        re.IGNORECASE))


def is_database_url(location: str | Path) -> bool:
    """Whether ``location`` names a PostgreSQL server (a ``postgresql://`` URL or libpq's
    ``host=... dbname=...`` keyword string) rather than a SQLite file."""
    return isinstance(location, str) and bool(URL.match(location) or KEYWORDS.match(location))


def sqlite_path(location: str | Path) -> Path:
    """The SQLite file ``location`` names: a path, or a ``sqlite:`` URL as SQLAlchemy
    writes them (``sqlite:///events.db`` relative, ``sqlite:////var/events.db`` absolute;
    ``sqlite:events.db`` too). Any other URL scheme is refused, so that a mistyped server
    address never becomes a file of that name."""
    if isinstance(location, Path):
        return location
    scheme = OTHER_URL.match(location)
    if scheme is None:
        return Path(location)
    if scheme.group(1).lower() != "sqlite":
        raise ConfigError(f"events database {redacted(location)}: a {scheme.group(1)}: URL is "
                          "not supported; give a file path, a sqlite: URL or a postgresql:// "
                          "URL")
    rest = location[len(scheme.group(0)):]
    return Path(rest[3:] if rest.startswith("///") else rest)


def redacted(text: str, location: str | None = None) -> str:
    """``text`` with every password of the database ``location`` (``text`` itself where
    not given) replaced by ***, for messages and logs."""
    for secret in sorted(passwords(text if location is None else location), key=len,
                         reverse=True):
        text = text.replace(secret, "***")
    return text


def passwords(location: str) -> set[str]:
    """The passwords written in a database URL or keyword string (and their unquoted
    forms), never shown."""
    found = {match.group(1) for pattern in PASSWORDS for match in pattern.finditer(location)}
    found |= {secret[1:-1] for secret in found if secret[:1] == "'" and len(secret) > 1}
    found.add(os.environ.get("PGPASSWORD", ""))  # libpq reads it; no message may echo it
    return {secret for secret in found if secret}
