"""Progress of long work: a tqdm bar on a terminal, a plain log line now and then elsewhere.

    for batch in progress(loader, desc="epoch 1/15", unit="batch", total=len(loader)):
        ...

A bar redraws itself many times a second; written to a file or a pipe (a CI log, ``nohup``,
``> train.log``) every redraw is kept, and a one-minute demo filled 134 KB. Off a terminal,
``progress`` prints one line when a piece of work ends and, for long ones, one line every
``LOG_SECONDS`` while it runs.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import IO, Any

from tqdm import tqdm

LOG_SECONDS = 30.0


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``count`` with its noun in the right number: "1 camera", "2 cameras"."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


def progress(iterable: Iterable | None = None, *, desc: str, total: int | None = None,
             unit: str = "it", initial: int = 0, disable: bool = False, leave: bool = False,
             stream: IO[str] | None = None) -> tqdm | LineProgress:
    """A progress bar over ``iterable`` (or updated by hand with ``update``): tqdm where
    ``stream`` (standard error by default) is a terminal (``leave``: keep the finished
    bar on screen), a LineProgress elsewhere."""
    stream = stream or sys.stderr
    if total is None and iterable is not None and hasattr(iterable, "__len__"):
        total = len(iterable)
    if _is_terminal(stream):
        return tqdm(iterable, desc=desc, total=total, unit=unit, initial=initial,
                    disable=disable, leave=leave, file=stream)
    return LineProgress(iterable, desc, total, unit, initial, disable, stream)


class LineProgress:
    """tqdm's interface (iterate, ``update``, ``set_postfix``, ``close``) writing whole
    lines: ``desc: done/total unit, rate, postfix`` every LOG_SECONDS and once at the end."""

    def __init__(self, iterable: Iterable | None, desc: str, total: int | None, unit: str,
                 initial: int, disable: bool, stream: IO[str], interval: float = LOG_SECONDS):
        self.iterable, self.desc, self.total, self.unit = iterable, desc, total, unit
        self.n, self.disable, self.stream, self.interval = initial, disable, stream, interval
        self._initial = initial
        self._postfix = ""
        self._started = self._last = time.monotonic()
        self._closed = False

    def __iter__(self) -> Iterator[Any]:
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def update(self, count: int = 1) -> None:
        self.n += count
        if time.monotonic() - self._last >= self.interval:
            self._write()

    def set_postfix(self, **values: Any) -> None:
        self._postfix = ", ".join(f"{key}={value}" for key, value in values.items())

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._write(final=True)

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _write(self, final: bool = False) -> None:
        self._last = time.monotonic()
        if self.disable:
            return
        seconds = self._last - self._started
        done = f"{self.n}/{self.total}" if self.total else f"{self.n}"
        rate = (self.n - self._initial) / seconds if seconds > 0 else 0.0
        line = f"{self.desc}: {done} {self.unit}, {rate:.1f} {self.unit}/s"
        line += f", {seconds:.0f} s" + (" (done)" if final else "")
        if self._postfix:
            line += f", {self._postfix}"
        print(line, file=self.stream, flush=True)


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False
