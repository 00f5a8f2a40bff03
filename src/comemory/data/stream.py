"""Frames as they arrive, from a video file, a folder of frames, a camera or a stream URL.

    for stream in open_sources("cam.mp4"):        # a folder of videos gives several
        for frame in stream:                      # StreamFrame(index, image, time, resumed)
            ...

Frames come out as OpenCV decodes them (uint8 BGR, H x W x 3). What goes wrong on the way
is logged and survived where it can be: an unreadable image in a folder is skipped; a
video file that stops decoding before its end skips up to ``max_bad_frames`` frames; a
camera or stream that drops is reopened with growing waits for ``reconnect_seconds``,
then gives up with a DataError. A frame after such a gap has ``resumed`` set, so the
caller knows the previous frame is not its neighbour.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from comemory.data.frames import FRAME_EXTENSIONS, VIDEO_EXTENSIONS, as_bgr, list_frames
from comemory.errors import DataError

log = logging.getLogger("comemory.stream")


@dataclass
class StreamFrame:
    """index: frame number in the source (skipped frames keep their number); image: uint8
    BGR (H, W, 3); time: seconds from the start (None where the rate is unknown); resumed:
    True when frames were lost just before this one."""

    index: int
    image: np.ndarray
    time: float | None
    resumed: bool = False


def is_live(source: str) -> bool:
    """A camera index ("0") or a stream URL (rtsp://, http://, ...)."""
    return source.isdigit() or "://" in source


def open_sources(source: str | Path, reconnect_seconds: float = 30.0) -> list:
    """What ``source`` names, as a list of streams (one per video for a folder of videos).

    Raises DataError naming ``source`` when it is none of: a video file, a folder of frames,
    a folder of videos, a camera index, a URL.
    """
    text = str(source)
    if is_live(text):
        return [CaptureStream(text, live=True, reconnect_seconds=reconnect_seconds)]
    path = Path(source)
    if path.is_file():
        if path.suffix.lower() not in VIDEO_EXTENSIONS:
            raise DataError(f"{path}: not a video file ({'/'.join(VIDEO_EXTENSIONS)}); for "
                            "single images give their folder")
        return [CaptureStream(str(path), live=False)]
    if path.is_dir():
        if list_frames(path):
            return [ImageFolderStream(path)]
        videos = sorted(p for p in path.iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS
                        and not p.name.startswith("."))
        if videos:
            return [CaptureStream(str(p), live=False) for p in videos]
        raise DataError(f"{path}: holds neither frames ({'/'.join(FRAME_EXTENSIONS)}) nor "
                        f"videos ({'/'.join(VIDEO_EXTENSIONS)})")
    raise DataError(f"{path}: no such file or folder (and not a camera index or URL)")


class ImageFolderStream:
    """The images of one folder in name order, as one video."""

    live = False

    def __init__(self, folder: Path, fps: float | None = None):
        self.folder, self.fps = folder, fps
        self.paths = list_frames(folder)
        self.name = folder.name
        self.total: int | None = len(self.paths)

    def __iter__(self) -> Iterator[StreamFrame]:
        lost = False
        for index, path in enumerate(self.paths):
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                log.warning("skipped %s: cannot read the image (corrupt or not an image)", path)
                lost = True
                continue
            yield StreamFrame(index, image, index / self.fps if self.fps else None, lost)
            lost = False


class CaptureStream:
    """A video file, camera or URL read through ``opener`` (cv2.VideoCapture by default;
    tests pass a fake that fails midway)."""

    def __init__(self, source: str, live: bool, reconnect_seconds: float = 30.0,
                 max_bad_frames: int = 25,
                 opener: Callable[[str | int], cv2.VideoCapture] | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        self.source, self.live = source, live
        self.reconnect_seconds, self.max_bad_frames = reconnect_seconds, max_bad_frames
        self.opener = opener or cv2.VideoCapture
        self.sleep = sleep
        self.name = f"camera{source}" if source.isdigit() else Path(source.split("?")[0]).stem
        capture = self._open()  # fails now, before any output, if it cannot be opened
        fps = capture.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and 0 < fps < 1000 else None
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.total = count if count > 0 and not live else None
        # a live source stays open; files are reopened when read (a folder of many videos
        # would otherwise hold them all open)
        self._capture = capture if live else None
        if not live:
            capture.release()

    def __iter__(self) -> Iterator[StreamFrame]:
        if self._capture is None:
            self._capture = self._open()
        index, lost, bad = 0, False, 0
        try:
            while True:
                ok, image = self._capture.read()
                if ok and image is not None:
                    yield StreamFrame(index, as_bgr(image),
                                      index / self.fps if self.fps else None, lost)
                    index, lost, bad = index + 1, False, 0
                    continue
                if self.live:
                    self._reconnect()
                    lost = True
                    continue
                if self.total is None or index >= self.total - 1 or bad >= self.max_bad_frames:
                    return  # the end of the file, or too damaged to go on
                log.warning("skipped frame %d of %s: cannot decode it", index, self.source)
                index, lost, bad = index + 1, True, bad + 1
        finally:
            self._capture.release()
            self._capture = None

    def _open(self) -> cv2.VideoCapture:
        capture = self.opener(int(self.source) if self.source.isdigit() else self.source)
        if not capture.isOpened():
            what = "camera" if self.source.isdigit() else "stream" if self.live else "video"
            raise DataError(f"{self.source}: cannot open this {what} (damaged file, codec "
                            "OpenCV lacks, wrong address or camera in use)")
        return capture

    def _reconnect(self) -> None:
        """Reopen a dropped live source, waiting 0.5, 1, 2, ... s (at most 8) between tries,
        for ``reconnect_seconds`` in all."""
        log.warning("%s dropped; reconnecting for up to %.0f s", self.source,
                    self.reconnect_seconds)
        self._capture.release()
        waited, wait = 0.0, 0.5
        while waited < self.reconnect_seconds:
            self.sleep(wait)
            waited += wait
            try:
                self._capture = self._open()
                log.warning("%s reconnected after %.1f s", self.source, waited)
                return
            except DataError:
                wait = min(wait * 2, 8.0)
        raise DataError(f"{self.source}: dropped and could not be reopened within "
                        f"{self.reconnect_seconds:.0f} s; what was scored so far is written")

