"""A throwaway PostgreSQL server for the tests of a shared events database: initdb into a
temporary folder, started on a free port of 127.0.0.1 with password checks off (so any
password in a URL is accepted: the tests check it never shows), stopped at the end.

Debian's ``postgresql`` package provides the programs (CI installs it); PostgreSQL refuses
to run as root, so as root they run as the package's ``postgres`` user.
"""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest


def programs() -> Path | None:
    """The folder of initdb and pg_ctl, if PostgreSQL is installed."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(versions[-1]).parent if versions else None


def programs_or_skip() -> Path:
    folder = programs()
    if folder is not None:
        return folder
    if os.environ.get("COMEMORY_REQUIRE_POSTGRES"):
        pytest.fail("PostgreSQL's initdb is missing (CI installs Debian's postgresql)")
    pytest.skip("PostgreSQL not installed (apt-get install postgresql); CI runs this test")


class Server:
    """``start()``, ``url()`` for a new empty database on it, ``stop()``."""

    def __init__(self, bin_dir: Path):
        self.bin = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="comemory-postgres-"))
        self.port = free_port()
        self._databases = 0

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run(prefix + list(command), check=True, capture_output=True, text=True,
                       timeout=120)

    def start(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        data = self.root / "data"
        self._run(str(self.bin / "initdb"), "-D", str(data), "-U", "postgres",
                  "--auth=trust", "--no-sync")
        self._run(str(self.bin / "pg_ctl"), "-D", str(data), "-l", str(self.root / "log"),
                  "-w", "-o", f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                  "-c fsync=on", "start")

    def url(self, password: str = "") -> str:
        """A new empty database on the server, as a URL (with ``password``, ignored)."""
        import psycopg

        self._databases += 1
        name = f"events_{self._databases}"
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres",
                             autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
        secret = f":{password}" if password else ""
        return f"postgresql://postgres{secret}@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.root / "data"), "-m", "fast",
                      "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
