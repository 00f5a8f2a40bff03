"""One camera in ``comemory serve``: a thread that reads its source into a short queue
(CameraFeed), and what the service keeps of it between frames (Camera): the detector's
memory of its recent frames, its alert policy's state, and its sinks (serve.recorder).

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

from comemory.alerts import AlertPolicy, Sink
from comemory.data.stream import is_live, open_sources
from comemory.detect import Detector, FrameResult
from comemory.detect.annotate import FramePainter
from comemory.errors import DataError
from comemory.serve.config import CameraConfig, ServeConfig
from comemory.serve.database import EventStore
from comemory.serve.recorder import EventRecorder, LiveView

log = logging.getLogger("comemory.serve")

# A camera whose frames queue up (the model is behind) has up to this many scored in one
# batch, one model call per step; one that keeps up scores each frame as it comes (batch
# 1, no added latency). Batching bought no speed per frame on 2 CPU cores
# (docs/benchmarks.md, Serve), so the bound only keeps a step short.
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
    ``item`` puts the result through the camera's alert policy (``alerts``) and hands it
    with the verdict to its sinks: the event recorder (database, thumbnails, clips) and
    the live view (the page)."""

    def __init__(self, config: CameraConfig, detector: Detector, policy: AlertPolicy,
                 serve: ServeConfig, store: EventStore, media: Path):
        self.config, self.name, self.detector = config, config.name, detector
        self.policy = policy
        self.feed: CameraFeed | None = None
        self.state = detector.new_state()
        self.alerts = policy.watch(self.name)
        self.painter = FramePainter(policy.threshold, detector.calibration.median_score(),
                                    detector.config.model.resize)
        self.recorder = EventRecorder(self.name, store, media, self.painter, policy.threshold,
                                      serve, self._fps)
        self.view = LiveView(self.painter)
        self.sinks: list[Sink] = [self.recorder, self.view]
        self.error: str | None = None

    def handle(self, item: QueuedFrame, result: FrameResult) -> None:
        result.read_at = item.read_at
        verdict = self.alerts.add(result.index, result.score, result.top_box)
        if self.alerts.tracker is not None:  # a camera that adapts: pictures and events
            self.painter.threshold = self.recorder.threshold = self.alerts.threshold  # follow
        for sink in self.sinks:
            sink.add(result, verdict)

    def finish(self) -> None:
        """The service is stopping: close an open event (marked cut) and its clip."""
        closed = self.alerts.finish(cut=True)
        for sink in self.sinks:
            sink.close(closed, "the service stopped")

    def status(self) -> dict:
        """What the page shows of this camera."""
        feed = self.feed
        figures = self.view.figures()
        return {"name": self.name, "status": self.error or (feed.status if feed else "?"),
                "fps": figures["fps"], "source_fps": feed.fps if feed else None,
                "lag_s": figures["lag_s"], "dropped": feed.dropped if feed else 0,
                "scored": figures["scored"], "threshold": self.alerts.threshold,
                "in_event": self.recorder.event_id is not None, "curve": figures["curve"]}

    def picture(self) -> np.ndarray | None:
        """The last scored frame with its score map, framed red in an event."""
        return self.view.picture()

    def _fps(self) -> float:
        return (self.feed.fps if self.feed else None) or DEFAULT_FPS
