"""What ``serve`` does with a camera's scored frames, as sinks of the alert road
(comemory.alerts.Sink): ``EventRecorder`` keeps events in the database with their
thumbnail and clip; ``LiveView`` keeps what the page shows (the last picture, the recent
score curve, the scoring rate and lag)."""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import numpy as np

from comemory.alerts import Event, Verdict
from comemory.detect import FrameResult
from comemory.detect.annotate import FramePainter
from comemory.serve.config import ServeConfig
from comemory.serve.database import EventStore
from comemory.serve.media import ClipRecorder, prune_clips, write_jpeg

log = logging.getLogger("comemory.serve")

CURVE_POINTS = 300  # scores the page's curve shows per camera


class EventRecorder:
    """One camera's events in ``store``: a row opened as soon as an event is long enough
    to be kept, updated about once a second, closed with its end, peak and thumbnail;
    its clip (``serve.clips``) recorded around it. ``threshold``: the policy's, kept
    with each event; ``fps()`` gives the camera's frame rate once its feed knows it."""

    def __init__(self, camera: str, store: EventStore, media: Path, painter: FramePainter,
                 threshold: float, serve: ServeConfig, fps: Callable[[], float]):
        self.camera, self.store, self.media, self.painter = camera, store, media, painter
        self.threshold, self.serve, self.fps = threshold, serve, fps
        history = serve.min_event_frames + serve.min_event_frames * serve.event_gap + 2
        self._recent: deque[tuple[FrameResult, bool]] = deque(maxlen=history)
        self.event_id: int | None = None
        self._peak_picture: np.ndarray | None = None
        self._last_update = 0.0
        self.clips: ClipRecorder | None = None

    def add(self, result: FrameResult, verdict: Verdict) -> None:
        self._recent.append((result, verdict.alarm))
        if self.clips is None and self.serve.clips:
            self.clips = self._recorder()
        for event in verdict.closed:
            self._close(event, cut=False)
        if verdict.event is not None:
            self._follow(verdict.event, result, verdict.alarm)
        if self.clips is not None:
            self.clips.push(result.image)

    def close(self, closed: list[Event], stopped_because: str | None = None) -> None:
        """The service is stopping: close an open event (marked cut) and its clip."""
        for event in closed:
            self._close(event, cut=True)
        if self.clips is not None:
            self.clips.close()

    def _recorder(self) -> ClipRecorder:
        fps = self.fps()
        return ClipRecorder(self.camera, self.media / "clips", fps,
                            round(self.serve.clip_before_s * fps),
                            round(self.serve.clip_after_s * fps), self._clip_done,
                            longest=max(1, round(self.serve.clip_max_s * fps)))

    def _follow(self, event: Event, result: FrameResult, alarm: bool) -> None:
        """Keep the open event's database row, peak picture and clip up to date."""
        if self.event_id is None:
            self.event_id = self.store.open_event(
                self.camera, self._read_at(event.start_frame), event.start_frame,
                event.end_frame, event.peak_frame, event.peak_score, self.threshold)
            self._peak_picture = self._picture_of(event.peak_frame)
            self.store.update_event(self.event_id, event.end_frame, event.peak_frame,
                                    event.peak_score, thumbnail=self._write_thumbnail())
            if self.clips is not None:
                self.clips.start(self.event_id)
            self._last_update = time.monotonic()
            log.info("camera %s: event %d started (score %.2f)", self.camera, self.event_id,
                     event.peak_score)
        elif event.peak_frame == result.index:
            self._peak_picture = self.painter.picture(result, True, alarm)
        if time.monotonic() - self._last_update > 1.0:
            self.store.update_event(self.event_id, event.end_frame, event.peak_frame,
                                    event.peak_score, seen_at=self._read_at(event.end_frame))
            self._last_update = time.monotonic()

    def _close(self, event: Event, cut: bool) -> None:
        if self.event_id is None:
            return
        thumbnail = self._write_thumbnail()
        ended_at = self._read_at(event.end_frame) + 1 / self.fps()
        self.store.update_event(self.event_id, event.end_frame, event.peak_frame,
                                event.peak_score, ended_at, thumbnail, cut)
        log.info("camera %s: event %d ended (%d frames, peak %.2f)", self.camera,
                 self.event_id, event.frames, event.peak_score)
        self.event_id, self._peak_picture = None, None
        if self.clips is not None:
            self.clips.stop()

    def _write_thumbnail(self) -> str | None:
        """The open event's peak picture as thumbnails/<event id>.jpg; its file name."""
        if self._peak_picture is None:
            return None
        name = f"{self.event_id}.jpg"
        write_jpeg(self.media / "thumbnails" / name, self._peak_picture)
        return name

    def _picture_of(self, frame: int) -> np.ndarray | None:
        for result, alarm in self._recent:
            if result.index == frame:
                return self.painter.picture(result, True, alarm)
        return None

    def _read_at(self, frame: int) -> float:
        for result, _ in self._recent:
            if result.index == frame and result.read_at is not None:
                return result.read_at
        return time.time()

    def _clip_done(self, event_ids: list[int], name: str, size: int) -> None:
        self.store.set_clip(event_ids, name, size)
        budget = self.serve.clip_budget_mb * 1e6
        removed = prune_clips(self.store, self.media / "clips", budget)
        if removed:
            log.info("pruned %d old clips to keep under %.0f MB", removed,
                     self.serve.clip_budget_mb)


class LiveView:
    """What the page shows of one camera, safe to read from the web thread: the last
    scored frame (``picture``), the recent scores, frames scored, the rate and the lag
    behind the source."""

    def __init__(self, painter: FramePainter):
        self.painter = painter
        self.lock = threading.Lock()
        self.curve: deque[tuple[int, float]] = deque(maxlen=CURVE_POINTS)
        self.latest: tuple[FrameResult, bool, bool] | None = None
        self.scored, self.lag = 0, 0.0
        self._scored_at: deque[float] = deque(maxlen=64)

    def add(self, result: FrameResult, verdict: Verdict) -> None:
        now = time.time()
        with self.lock:
            self.latest = (result, verdict.in_event, verdict.alarm)
            if result.score is not None:
                self.curve.append((result.index, result.score))
            self.scored += 1
            if result.read_at is not None:
                self.lag = max(0.0, now - result.read_at)
            self._scored_at.append(time.monotonic())

    def close(self, closed: list[Event], stopped_because: str | None = None) -> None:
        pass  # nothing kept on disk

    def figures(self) -> dict:
        """Frames scored a second (0 after 5 s without one), lag, count, curve."""
        with self.lock:
            times, curve = list(self._scored_at), list(self.curve)
            lag, scored = self.lag, self.scored
        rate = ((len(times) - 1) / (times[-1] - times[0])
                if len(times) > 1 and times[-1] > times[0] else 0.0)
        if times and time.monotonic() - times[-1] > 5.0:
            rate = 0.0
        return {"fps": round(rate, 2), "lag_s": round(lag, 3), "scored": scored,
                "curve": [[s, round(v, 4)] for s, v in curve]}

    def picture(self) -> np.ndarray | None:
        """The last scored frame with its score map, framed red in an event."""
        with self.lock:
            latest = self.latest
        return None if latest is None else self.painter.picture(*latest)
