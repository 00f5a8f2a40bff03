"""The one way comemory writes video: ``detect``'s annotated MP4 and ``serve``'s event
clips (WebM, which browsers play) both go through ``VideoWriter``, and so do the MP4 files
benchmarks and tests make (``write_video``)."""
from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from comemory.errors import DataError


class VideoWriter:
    """Frames into a video file with OpenCV. ``codec``: a FourCC, "mp4v" (MP4) or "VP80"
    (WebM). The file opens at the first ``write``: its size is the file's, and a later
    frame of another size (a source that changed resolution midway) is resized to it.
    ``advice`` ends the error raised when OpenCV cannot write it; ``close()`` finishes
    the file (again: nothing)."""

    def __init__(self, path: Path, fps: float, codec: str, advice: str = ""):
        self.path, self.fps, self.codec, self.advice = Path(path), fps, codec, advice
        self.frames = 0
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None

    def write(self, frame: np.ndarray) -> None:
        """frame: uint8 BGR (H, W, 3)."""
        size = (frame.shape[1], frame.shape[0])
        if self._writer is None:
            self._open(size)
        if size != self._size:
            frame = cv2.resize(frame, self._size)
        self._writer.write(frame)
        self.frames += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None

    def _open(self, size: tuple[int, int]) -> None:
        with _without_tag_warning():
            writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*self.codec),
                                     self.fps, size)
        if not writer.isOpened():
            raise DataError(f"{self.path}: OpenCV cannot write {self.codec} video here (no "
                            f"such encoder, or the folder is not writable){self.advice}")
        self._writer, self._size = writer, size


@contextmanager
def _without_tag_warning() -> Iterator[None]:
    """Drop the line OpenCV's FFmpeg writer prints to standard error at every WebM file it
    opens ("tag ... 'VP80' is not supported with codec id ... 'webm'": WebM stores no codec
    tag; the file is fine, and OpenCV will not change it). It writes with C's stderr, which
    no Python setting silences, so the descriptor is pointed at a file for the call and
    every other line (another thread's, say) is written on afterwards."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            kept = [line for line in caught.read().splitlines(keepends=True)
                    if b"is not supported with codec id" not in line]
            if kept:
                os.write(2, b"".join(kept))


def write_video(images: list[np.ndarray], path: Path, fps: float) -> None:
    """Write uint8 BGR frames (H, W, 3), all one size, as an MP4 (mp4v) that OpenCV reads."""
    video = VideoWriter(path, fps, "mp4v")
    try:
        for image in images:
            video.write(image)
    finally:
        video.close()
