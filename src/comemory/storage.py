"""Atomic writes: a file is either the old version or the complete new one, never half.

Each writer writes to a temporary file in the same folder, flushes it to disk, then
renames it over the target (``os.replace`` is atomic on POSIX and Windows).
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

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


def save_npy(path: str | Path, array: np.ndarray) -> None:
    with atomic_open(path) as handle:
        np.save(handle, array, allow_pickle=False)


def write_text(path: str | Path, text: str) -> None:
    with atomic_open(path, "w") as handle:
        handle.write(text)


def save_torch(path: str | Path, obj: Any) -> None:
    with atomic_open(path) as handle:
        torch.save(obj, handle)
