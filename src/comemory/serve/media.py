"""Event pictures and clips on disk: thumbnails as JPEG, clips as WebM (VP8, which
browsers play; OpenCV's usual mp4v does not play in them).

A clip is written under a name starting ``.incomplete-`` and renamed to its final name
only once complete and synced, so a kill -9 can leave an incomplete file but never one
under a name the database knows; ``remove_incomplete`` clears them at the next start, so
a kill -9 loses at most the clip being written (``clip_max_s`` of video). Clips are
pruned oldest first to keep under a disk budget, counting the ones being written.
"""
from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from comemory import storage
from comemory.detect.video_writer import VideoWriter
from comemory.errors import DataError
from comemory.serve.database import EventStore

log = logging.getLogger("comemory.serve")

CLIP_WIDTH = 640
INCOMPLETE = ".incomplete-"
JPEG_QUALITY = 85


def write_jpeg(path: Path, image: np.ndarray) -> int:
    """Write ``image`` (uint8 BGR) as a JPEG atomically; returns its size in bytes."""
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise DataError(f"{path}: OpenCV cannot encode this picture as JPEG")
    with storage.atomic_open(path) as handle:
        handle.write(data.tobytes())
    return len(data)


def remove_incomplete(folder: Path) -> int:
    """Delete clips a stopped service left half-written; returns how many."""
    removed = 0
    for path in folder.glob(f"{INCOMPLETE}*"):
        path.unlink(missing_ok=True)
        removed += 1
    return removed


def prune_clips(store: EventStore, folder: Path, budget_bytes: float) -> int:
    """Delete the oldest clips (of ``store``'s own cameras, the ones in ``folder``) until
    the rest, and the clips still being written there, fit in ``budget_bytes``; returns
    how many went. The events stay, without a clip."""
    clips = store.clips_oldest_first()
    writing = sum(path.stat().st_size for path in folder.glob(f"{INCOMPLETE}*"))
    total, removed = writing + sum(size for _, size in clips), 0
    for name, size in clips:
        if total <= budget_bytes:
            break
        store.forget_clip(name)  # first the database, so no event points at a lost file
        (folder / name).unlink(missing_ok=True)
        total -= size
        removed += 1
    return removed


class ClipRecorder:
    """One camera's event clips: the last ``before`` frames wait in memory (as JPEG, to
    keep it small); ``start(event_id)`` opens a clip with them, every ``push`` adds the
    new frame, ``stop()`` records ``after`` more frames and then finishes the file and
    calls ``on_done(event_ids, file name, bytes)``. An event that starts before the clip
    of the previous one has finished joins that clip. A clip ends at ``longest`` frames
    whatever happens: on a busy camera events follow each other closer than ``after``
    and would otherwise grow one file without end; an event that goes on past it keeps
    the clip of its first ``longest`` frames, and the next event starts a new one.
    """

    def __init__(self, camera: str, folder: Path, fps: float, before: int, after: int,
                 on_done: Callable[[list[int], str, int], None], longest: int = 200):
        if longest < 1:
            raise ValueError(f"a clip must hold at least one frame, got longest={longest}")
        self.camera, self.folder, self.fps = camera, folder, fps
        self.before, self.after, self.on_done = before, after, on_done
        self.longest = longest
        self._recent: deque[bytes] = deque(maxlen=max(1, before))
        self._video: VideoWriter | None = None
        self._events: list[int] = []
        self._left: int | None = None  # frames still to record after the last event ended
        self._temp: Path | None = None

    @property
    def recording(self) -> bool:
        return self._temp is not None

    def push(self, image: np.ndarray) -> None:
        small = _clip_frame(image)
        if self.recording:  # a clip is open (its file opens at its first frame)
            self._video.write(small)
            if self._left is not None:
                self._left -= 1
            if (self._left is not None and self._left <= 0) or self._video.frames >= self.longest:
                self._finish()
            return
        if self.before > 0:
            ok, data = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 90])
            if ok:
                self._recent.append(data.tobytes())

    def start(self, event_id: int) -> None:
        self._events.append(event_id)
        self._left = None
        if self.recording:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        self._temp = self.folder / f"{INCOMPLETE}{self.camera}-{event_id}.webm"
        self._video = VideoWriter(self._temp, self.fps, "VP80")
        for data in self._recent:
            self._video.write(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR))
        self._recent.clear()

    def stop(self) -> None:
        """The current event is over: record ``after`` frames more, then finish."""
        if not self.recording:
            return
        self._left = self.after
        if self.after <= 0:
            self._finish()

    def close(self) -> None:
        """Finish a clip being written (the service is stopping)."""
        if self._events:
            self._finish()

    def _finish(self) -> None:
        events, temp = self._events, self._temp
        self._events, self._left, self._temp = [], None, None
        video, self._video = self._video, None
        if video is None or video.frames == 0:
            return
        video.close()
        with temp.open("rb") as handle:
            os.fsync(handle.fileno())
        name = f"{self.camera}-{events[0]}.webm"
        os.replace(temp, self.folder / name)
        storage.sync_folder(self.folder)
        self.on_done(events, name, (self.folder / name).stat().st_size)


def _clip_frame(image: np.ndarray) -> np.ndarray:
    """The frame at most CLIP_WIDTH wide, with even sides (what VP8 takes)."""
    height, width = image.shape[:2]
    scale = min(1.0, CLIP_WIDTH / width)
    size = (max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2))
    if size == (width, height):
        return image
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
