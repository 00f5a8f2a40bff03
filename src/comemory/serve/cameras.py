"""One camera in ``comemory serve``: a thread that reads its source into a short queue
(CameraFeed), and what the service keeps of it between frames (Camera): the detector's
memory of its recent frames, its events, clip, live picture and figures for the page.

A camera's frames are numbered by the camera (``sequence``), never restarted by a looped
file or a reconnect, so events keep increasing frame numbers. Frames the model could not
keep up with are dropped from the queue's old end, and the next one is marked
``resumed``: the detector then starts afresh instead of scoring two frames that are not
neighbours (their flow would look like fast motion).
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from comemory.alerts import Event, EventGrouper
from comemory.annotate import FramePainter
from comemory.data.stream import is_live, open_sources
from comemory.detection import Detector, FrameResult
from comemory.errors import DataError
from comemory.serve.config import CameraConfig, ServeConfig
from comemory.serve.database import EventStore
from comemory.serve.media import ClipRecorder, prune_clips, write_jpeg

log = logging.getLogger("comemory.serve")

CURVE_POINTS = 300  # scores the page's curve shows per camera
# A camera whose frames queue up (the model is behind) has up to this many scored in one
# batch, one model call per step; one that keeps up scores each frame as it comes (batch
# 1, no added latency). On 2 AVX2 cores batching bought no speed per frame (67.8 ms at
# batch 1, 68.4 at 4: docs/benchmarks.md, Serve); the bound keeps a step short.
FRAMES_PER_STEP = 4
RETRY_SECONDS = 5.0  # wait before opening a source that failed again
DEFAULT_FPS = 25.0


@dataclass
class QueuedFrame:
    """sequence: the camera's frame number; image: uint8 BGR; read_at: wall clock
    (time.time()) when read; resumed: frames were lost just before this one."""

    sequence: int
    image: np.ndarray
    read_at: float
    resumed: bool


class CameraFeed(threading.Thread):
    """Reads one source (reopening it when it fails, looping a file) into a queue of at
    most ``queue_frames`` frames. A realtime feed drops the oldest frame when the queue is
    full (a camera does not wait); otherwise the reader waits for room."""

    def __init__(self, camera: CameraConfig, queue_seconds: float, reconnect_seconds: float,
                 stopping: threading.Event):
        super().__init__(name=f"feed-{camera.name}", daemon=True)
        self.camera, self.stopping = camera, stopping
        self.queue_seconds, self.reconnect_seconds = queue_seconds, reconnect_seconds
        self.status = "starting"
        self.fps: float | None = None
        self.read, self.dropped = 0, 0
        self._queue: deque[QueuedFrame] = deque()
        self._room = threading.Condition()
        self._sequence = 0
        self._gap = True  # the next frame follows lost frames (or is the first)

    @property
    def capacity(self) -> int:
        return max(4, round(self.queue_seconds * (self.fps or DEFAULT_FPS)))

    def take(self, limit: int = 1) -> list[QueuedFrame]:
        """Up to ``limit`` frames from the queue, oldest first; never past a gap (a frame
        marked resumed comes only first), so one detector state serves them all."""
        taken: list[QueuedFrame] = []
        with self._room:
            while self._queue and len(taken) < limit and not (taken and
                                                              self._queue[0].resumed):
                taken.append(self._queue.popleft())
            if taken:
                self._room.notify()
        return taken

    def run(self) -> None:
        live = is_live(self.camera.source)
        while not self.stopping.is_set():
            try:
                for stream in open_sources(self.camera.source, self.reconnect_seconds):
                    self._read(stream, paced=self.camera.realtime and not live)
                    if self.stopping.is_set():
                        return
                if not self.camera.loop and not live:
                    self.status = "ended"
                    return
            except DataError as error:
                self.status = f"reconnecting: {error}"
                log.warning("camera %s: %s; trying again in %.0f s", self.camera.name, error,
                            RETRY_SECONDS)
                self.stopping.wait(RETRY_SECONDS)
            except Exception as error:  # a broken source must not take the others down
                self.status = f"failed: {type(error).__name__}: {error}"
                log.exception("camera %s: reading stopped", self.camera.name)
                self.stopping.wait(RETRY_SECONDS)
            self._gap = True

    def _read(self, stream, paced: bool) -> None:
        self.fps = stream.fps or self.fps or DEFAULT_FPS
        self.status = "running"
        started, count = time.monotonic(), 0
        self._gap = True  # a looped file's start is not its end's neighbour
        for frame in stream:
            if self.stopping.is_set():
                return
            if paced:
                wait = started + count / self.fps - time.monotonic()
                if wait > 0:
                    self.stopping.wait(wait)
                count += 1
            self._put(frame.image, frame.resumed)

    def _put(self, image: np.ndarray, resumed: bool) -> None:
        with self._room:
            if not self.camera.realtime:
                while len(self._queue) >= self.capacity and not self.stopping.is_set():
                    self._room.wait(0.1)
            elif len(self._queue) >= self.capacity:
                self._queue.popleft()
                self.dropped += 1
                if self._queue:
                    self._queue[0].resumed = True
                else:
                    self._gap = True
            self._queue.append(QueuedFrame(self._sequence, image, time.time(),
                                           resumed or self._gap))
            self._sequence += 1
            self.read += 1
            self._gap = False


class Camera:
    """The scoring side of one camera: ``handle(item, result)`` after the detector scored
    ``item``. Keeps events in ``store`` (open as soon as long enough to be kept, updated
    about once a second, closed with their end, peak and thumbnail) and their clips."""

    def __init__(self, config: CameraConfig, detector: Detector, threshold: float,
                 serve: ServeConfig, store: EventStore, media: Path):
        self.config, self.name, self.detector = config, config.name, detector
        self.threshold, self.store, self.media = threshold, store, media
        self.serve_config = serve
        self.feed: CameraFeed | None = None
        self.state = detector.new_state()
        self.grouper = EventGrouper(serve.min_event_frames, serve.event_gap)
        median = detector.calibration.extra.get("score_quantiles", {}).get("0.5")
        self.painter = FramePainter(threshold, median, detector.config.model.resize)
        self.lock = threading.Lock()
        self.curve: deque[tuple[int, float]] = deque(maxlen=CURVE_POINTS)
        self.latest: tuple[FrameResult, bool] | None = None
        self.scored, self.lag = 0, 0.0
        self._scored_at: deque[float] = deque(maxlen=64)
        history = serve.min_event_frames + serve.min_event_frames * serve.event_gap + 2
        self._recent: deque[tuple[QueuedFrame, FrameResult]] = deque(maxlen=history)
        self._event_id: int | None = None
        self._peak_picture: np.ndarray | None = None
        self._last_update = 0.0
        self.clips: ClipRecorder | None = None
        self.error: str | None = None

    def handle(self, item: QueuedFrame, result: FrameResult) -> None:
        result.anomalous = result.score is not None and result.score > self.threshold
        self._recent.append((item, result))
        if self.clips is None and self.serve_config.clips:
            self.clips = self._recorder()
        for event in self.grouper.update(item.sequence, result.score, result.anomalous):
            self._close(event, cut=False)
        event = self.grouper.current()
        if event is not None:
            self._follow(event, item, result)
        if self.clips is not None:
            self.clips.push(item.image)
        now = time.time()
        with self.lock:
            self.latest = (result, self.grouper.confirmed(item.sequence))
            if result.score is not None:
                self.curve.append((item.sequence, result.score))
            self.scored += 1
            self.lag = max(0.0, now - item.read_at)
            self._scored_at.append(time.monotonic())

    def finish(self) -> None:
        """The service is stopping: close an open event (marked cut) and its clip."""
        for event in self.grouper.finish(cut=True):
            self._close(event, cut=True)
        if self.clips is not None:
            self.clips.close()

    def status(self) -> dict:
        """What the page shows of this camera."""
        with self.lock:
            times = list(self._scored_at)
            curve = list(self.curve)
            lag, scored = self.lag, self.scored
        rate = ((len(times) - 1) / (times[-1] - times[0])
                if len(times) > 1 and times[-1] > times[0] else 0.0)
        if times and time.monotonic() - times[-1] > 5.0:
            rate = 0.0
        feed = self.feed
        return {"name": self.name, "status": self.error or (feed.status if feed else "?"),
                "fps": round(rate, 2), "source_fps": feed.fps if feed else None,
                "lag_s": round(lag, 3), "dropped": feed.dropped if feed else 0,
                "scored": scored, "threshold": self.threshold,
                "in_event": self._event_id is not None,
                "curve": [[s, round(v, 4)] for s, v in curve]}

    def picture(self) -> np.ndarray | None:
        """The last scored frame with its score map, framed red in an event."""
        with self.lock:
            latest = self.latest
        return None if latest is None else self.painter.picture(*latest)

    def _recorder(self) -> ClipRecorder:
        fps = (self.feed.fps if self.feed else None) or DEFAULT_FPS
        return ClipRecorder(self.name, self.media / "clips", fps,
                            round(self.serve_config.clip_before_s * fps),
                            round(self.serve_config.clip_after_s * fps), self._clip_done,
                            longest=max(1, round(self.serve_config.clip_max_s * fps)))

    def _follow(self, event: Event, item: QueuedFrame, result: FrameResult) -> None:
        """Keep the open event's database row, peak picture and clip up to date."""
        if self._event_id is None:
            self._event_id = self.store.open_event(
                self.name, self._read_at(event.start_frame), event.start_frame,
                event.end_frame, event.peak_frame, event.peak_score, self.threshold)
            self._peak_picture = self._picture_of(event.peak_frame)
            self.store.update_event(self._event_id, event.end_frame, event.peak_frame,
                                    event.peak_score, thumbnail=self._write_thumbnail())
            if self.clips is not None:
                self.clips.start(self._event_id)
            self._last_update = time.monotonic()
            log.info("camera %s: event %d started (score %.2f)", self.name, self._event_id,
                     event.peak_score)
        elif event.peak_frame == item.sequence:
            self._peak_picture = self.painter.picture(result, True)
        if time.monotonic() - self._last_update > 1.0:
            self.store.update_event(self._event_id, event.end_frame, event.peak_frame,
                                    event.peak_score, seen_at=self._read_at(event.end_frame))
            self._last_update = time.monotonic()

    def _close(self, event: Event, cut: bool) -> None:
        if self._event_id is None:
            return
        thumbnail = self._write_thumbnail()
        fps = (self.feed.fps if self.feed else None) or DEFAULT_FPS
        self.store.update_event(self._event_id, event.end_frame, event.peak_frame,
                                event.peak_score, self._read_at(event.end_frame) + 1 / fps,
                                thumbnail, cut)
        log.info("camera %s: event %d ended (%d frames, peak %.2f)", self.name,
                 self._event_id, event.frames, event.peak_score)
        self._event_id, self._peak_picture = None, None
        if self.clips is not None:
            self.clips.stop()

    def _write_thumbnail(self) -> str | None:
        """The open event's peak picture as thumbnails/<event id>.jpg; its file name."""
        if self._peak_picture is None:
            return None
        name = f"{self._event_id}.jpg"
        write_jpeg(self.media / "thumbnails" / name, self._peak_picture)
        return name

    def _picture_of(self, sequence: int) -> np.ndarray | None:
        for item, result in self._recent:
            if item.sequence == sequence:
                return self.painter.picture(result, True)
        return None

    def _read_at(self, sequence: int) -> float:
        for item, _ in self._recent:
            if item.sequence == sequence:
                return item.read_at
        return time.time()

    def _clip_done(self, event_ids: list[int], name: str, size: int) -> None:
        self.store.set_clip(event_ids, name, size)
        budget = self.serve_config.clip_budget_mb * 1e6
        removed = prune_clips(self.store, self.media / "clips", budget)
        if removed:
            log.info("pruned %d old clips to keep under %.0f MB", removed,
                     self.serve_config.clip_budget_mb)
