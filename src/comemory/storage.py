"""Atomic writes: a file is either the old version or the complete new one, never half.

Each writer writes to a temporary file in the same folder, flushes it to disk, then
renames it over the target (``os.replace`` is atomic on POSIX and Windows).
"""
from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np

from comemory.errors import FolderInUse

LOCK_NAME = ".comemory.lock"

_UMASK = os.umask(0)
os.umask(_UMASK)  # reading the umask means setting it: put it straight back


@contextmanager
def atomic_open(path: str | Path, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; on success it replaces ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.chmod(temp_name, 0o666 & ~_UMASK)  # mkstemp makes 0600; give what open() would
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def sync_folder(folder: str | Path) -> None:
    """Make renames inside ``folder`` durable (a power cut after ``os.replace`` could
    otherwise bring back the old name)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_npy(path: str | Path, array: np.ndarray) -> None:
    with atomic_open(path) as handle:
        np.save(handle, array, allow_pickle=False)


def write_text(path: str | Path, text: str) -> None:
    with atomic_open(path, "w") as handle:
        handle.write(text)


def save_torch(path: str | Path, obj: Any) -> None:
    with atomic_open(path) as handle:
        import torch  # here: the command line imports this module before any torch work

        torch.save(obj, handle)


@contextmanager
def folder_lock(folder: str | Path, command: str) -> Iterator[None]:
    """Hold ``folder`` for this process while the block runs: a second process that asks
    for it gets FolderInUse at once. The lock is an ``flock`` on a file in the folder, which
    the operating system releases when the process ends, however it ends (kill -9
    included), so no stale lock is ever left to clear by hand; the block's end removes the
    file too, so a finished run leaves nothing behind."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    handle = _locked_file(path, folder)
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f"comemory {command} (pid {os.getpid()})")
        handle.flush()
        yield
    finally:
        path.unlink(missing_ok=True)  # while still holding it: see _locked_file
        handle.close()  # closing the descriptor releases the lock


def _locked_file(path: Path, folder: Path) -> IO[str]:
    """``path`` opened and flock'ed. A holder removes the file before it lets go, so a
    lock taken on a file that is no longer at ``path`` is dropped and taken again on the
    new one; otherwise two processes could each hold a lock on a different file."""
    while True:
        handle = path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise FolderInUse(f"{folder}: {holder} is writing here; wait for it to end or "
                              "choose another output folder") from None
        try:
            if os.fstat(handle.fileno()).st_ino == os.stat(path).st_ino:
                return handle
        except FileNotFoundError:
            pass
        handle.close()
