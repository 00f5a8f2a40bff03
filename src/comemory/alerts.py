"""From scores to alerts: one policy for ``detect``, ``serve``, ``evaluate``'s alert report
and ``finetune``'s verdicts.

The threshold is the score quantile that gives a chosen false-alarm rate on normal frames
the model did not train on (held out at training time: ``train.holdout`` and
``train.holdout_fraction``); the held-out scores are kept in the checkpoint so another
rate can be chosen later without the data. Anomalous frames close together become one
event, so a flickering score raises one alert, not ten.

    policy = AlertPolicy.from_calibration(detector.calibration)  # the checkpoint's threshold
    alerts = policy.watch("camera 1", fps=25.0)                   # one source's events
    verdict = alerts.add(result.index, result.score, result.top_box)  # per scored frame
    verdict.alarm, verdict.in_event, verdict.closed

Everything that sets, chooses or applies a threshold is in this module.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from comemory.errors import CheckpointError, ConfigError

if TYPE_CHECKING:
    from comemory.detect import FrameResult
    from comemory.scoring import Calibration

log = logging.getLogger("comemory.alerts")

KEPT_NORMAL_SCORES = 4096  # quantiles of this many held-out scores fit in a checkpoint
# One set of event defaults for the commands, the Python API and the annotated video:
MIN_EVENT_FRAMES = 3  # shorter runs above the threshold are blips, not events
EVENT_GAP = 5  # up to this many normal frames inside an event do not end it
NORMAL_QUANTILES = (0.5, 0.9, 0.95, 0.99, 0.999)  # kept in the checkpoint, for pictures


class FirstMinuteCheck:
    """Says once when most of a source's first minute (or of a shorter source, at its end)
    is above the alert threshold: a checkpoint trained on another scene flags nearly
    every frame, and a user should hear that rather than read it off the counts.

    ``add(flagged)`` per scored frame and ``finish()`` at the end each return the warning
    the first time it is due, else None."""

    SECONDS = 60.0
    SHARE = 0.5
    FEWEST = 20  # frames: below this a share says little

    def __init__(self, name: str, fps: float | None):
        self.name, self.window = name, max(self.FEWEST, round((fps or 25.0) * self.SECONDS))
        self.seen = self.flagged = 0
        self.done = False

    def add(self, flagged: bool) -> str | None:
        if self.done:
            return None
        self.seen += 1
        self.flagged += int(flagged)
        return self._verdict() if self.seen >= self.window else None

    def finish(self) -> str | None:
        return None if self.done or self.seen < self.FEWEST else self._verdict()

    def _verdict(self) -> str | None:
        self.done = True
        if self.flagged <= self.SHARE * self.seen:
            return None
        return (f"{self.flagged} of the first {self.seen} scored frames of {self.name} are "
                "above the alert threshold: the model may not fit this camera. Train one on "
                "its own normal footage (`comemory train --root DIR --dataset videos --out "
                "RUN`, README: Train and evaluate on your own footage), or raise the threshold "
                "(detect: --threshold; serve: the camera's threshold in its YAML)")


def threshold_for(normal_scores: np.ndarray, false_alarm_rate: float) -> float:
    """The score above which ``false_alarm_rate`` of ``normal_scores`` lie."""
    if not 0.0 < false_alarm_rate < 1.0:
        raise ConfigError(f"false-alarm rate must be between 0 and 1, got {false_alarm_rate}")
    if len(normal_scores) == 0:
        raise ConfigError("no normal scores to set a threshold from")
    return float(np.quantile(np.asarray(normal_scores, dtype=np.float64), 1.0 - false_alarm_rate))


def calibrate_threshold(calibration: Calibration, normal: np.ndarray, false_alarm_rate: float,
                        source: str) -> None:
    """Set ``calibration``'s alert threshold for ``false_alarm_rate`` on the ``normal``
    scores (held-out normal frames, as ``detect`` scores them), and keep their
    distribution; ``source`` says which frames they are."""
    calibration.false_alarm_rate = false_alarm_rate
    calibration.threshold = threshold_for(normal, false_alarm_rate)
    calibration.extra = {
        "score_mean": float(normal.mean()), "score_std": float(normal.std()),
        "score_quantiles": {str(q): float(np.quantile(normal, q)) for q in NORMAL_QUANTILES},
        "frames": int(normal.size), "threshold_source": source,
        "normal_scores": summarise_normal_scores(normal),
        "calibrated_at": time.strftime("%Y-%m-%dT%H:%M:%S")}


def summarise_normal_scores(scores: np.ndarray) -> list[float]:
    """Up to KEPT_NORMAL_SCORES evenly spaced quantiles of ``scores``, ascending: enough
    to set any false-alarm rate down to about 1 / KEPT_NORMAL_SCORES later."""
    scores = np.sort(np.asarray(scores, dtype=np.float64))
    if scores.size > KEPT_NORMAL_SCORES:
        scores = np.quantile(scores, np.linspace(0.0, 1.0, KEPT_NORMAL_SCORES))
    return [float(s) for s in scores]


@dataclass
class Event:
    """A run of anomalous frames: first and last frame index, and the highest score in it.
    Times are in seconds from the start of the source (None when its frame rate is unknown).
    peak_box: with model.input objects, the box (x, y, width, height, in the frame's
    pixels) of the highest-scoring object of the peak frame.
    """

    start_frame: int
    end_frame: int
    peak_frame: int
    peak_score: float
    start_time: float | None = None
    end_time: float | None = None
    cut: bool = False  # still going on when the source stopped early: its end is unknown
    peak_box: list[int] | None = None

    @property
    def frames(self) -> int:
        return self.end_frame - self.start_frame + 1

    def to_dict(self) -> dict:
        record = {**asdict(self), "frames": self.frames}
        if self.peak_box is None:  # a frame model's events read as they always have
            del record["peak_box"]
        return record


class EventGrouper:
    """Groups anomalous frames as they arrive into events.

    Frames less than ``max_gap`` + 1 apart join one event (a gap of up to ``max_gap``
    normal frames is bridged); an event shorter than ``min_frames`` is dropped as a blip.
    ``update`` returns the events that just closed; ``finish`` closes the open one.
    """

    def __init__(self, min_frames: int = MIN_EVENT_FRAMES, max_gap: int = EVENT_GAP,
                 fps: float | None = None):
        if min_frames < 1 or max_gap < 0:
            raise ConfigError(f"events need min_frames >= 1 and max_gap >= 0, got "
                              f"{min_frames} and {max_gap}")
        self.min_frames, self.max_gap, self.fps = min_frames, max_gap, fps
        self._open: Event | None = None

    def update(self, frame: int, score: float | None, anomalous: bool,
               box: list[int] | None = None) -> list[Event]:
        """One frame in order (``box``: its top object's, if any); the events it closed."""
        closed = []
        alarm = anomalous and score is not None
        if self._open is not None:  # normal frames since the event's last anomalous one
            normal_run = frame - self._open.end_frame - (1 if alarm else 0)
            if normal_run > self.max_gap:
                closed = self._close()
        if alarm:
            if self._open is None:
                self._open = Event(frame, frame, frame, score, peak_box=box)
            self._open.end_frame = frame
            if score > self._open.peak_score:
                self._open.peak_frame, self._open.peak_score = frame, score
                self._open.peak_box = box
        return closed

    def finish(self, cut: bool = False) -> list[Event]:
        """Close the open event at the end of the frames; ``cut``: the source stopped early,
        so the event's true end is unknown (it is kept, marked, if long enough)."""
        if self._open is None:
            return []
        self._open.cut = cut
        return self._close()

    def settled_until(self) -> int | None:
        """Frames before this index keep their place in or out of an event whatever comes
        next; None when every frame seen so far does. Until a run above the threshold is
        long enough (or over), its frames may still become an event or a dropped blip, and
        normal frames after an event may still be bridged into it."""
        if self._open is None:
            return None
        if self._open.frames >= self.min_frames:
            return self._open.end_frame + 1
        return self._open.start_frame

    def current(self) -> Event | None:
        """The open event once it is long enough to be kept (None before, or without one)."""
        event = self._open
        return event if event is not None and event.frames >= self.min_frames else None

    def confirmed(self, frame: int) -> bool:
        """Whether ``frame`` lies in the open event, which is already long enough to be kept."""
        event = self._open
        return (event is not None and event.frames >= self.min_frames
                and event.start_frame <= frame <= event.end_frame)

    def _close(self) -> list[Event]:
        event, self._open = self._open, None
        if event.frames < self.min_frames:
            return []
        if self.fps:
            event.start_time = event.start_frame / self.fps
            event.end_time = (event.end_frame + 1) / self.fps
        return [event]


def group_events(frames: np.ndarray, scores: np.ndarray, threshold: float,
                 min_frames: int = MIN_EVENT_FRAMES, max_gap: int = EVENT_GAP,
                 fps: float | None = None) -> list[Event]:
    """Events of a whole score sequence at once (the same rule as EventGrouper)."""
    grouper = EventGrouper(min_frames, max_gap, fps)
    events = []
    for frame, score in zip(frames, scores, strict=True):
        events += grouper.update(int(frame), float(score), bool(score > threshold))
    return events + grouper.finish()


@dataclass(frozen=True)
class AlertPolicy:
    """Which scores alarm, and how alarms become events.

    threshold: a score above it alarms. min_event_frames, event_gap: EventGrouper's rule.
    false_alarm_rate: the share of held-out normal frames above the threshold (None for a
    threshold set by hand); threshold_source: which frames set it.
    """

    threshold: float
    min_event_frames: int = MIN_EVENT_FRAMES
    event_gap: int = EVENT_GAP
    false_alarm_rate: float | None = None
    threshold_source: str | None = None

    def __post_init__(self):
        if not math.isfinite(self.threshold):
            raise ConfigError(f"the threshold must be a finite number, got {self.threshold}")
        if self.min_event_frames < 1 or self.event_gap < 0:
            raise ConfigError(f"events need min_frames >= 1 and max_gap >= 0, got "
                              f"{self.min_event_frames} and {self.event_gap}")

    @classmethod
    def from_calibration(cls, calibration: Calibration, threshold: float | None = None,
                         false_alarm_rate: float | None = None,
                         min_event_frames: int = MIN_EVENT_FRAMES, event_gap: int = EVENT_GAP,
                         path: str | Path = "checkpoint") -> AlertPolicy:
        """The policy of a checkpoint's calibration: ``threshold`` if given, else the one
        for ``false_alarm_rate`` on its held-out normal scores, else its own threshold;
        ``path`` names the checkpoint in errors."""
        source = calibration.extra.get("threshold_source")
        if threshold is not None:
            return cls(float(threshold), min_event_frames, event_gap, None, "set by hand")
        if false_alarm_rate is not None:
            normal = calibration.extra.get("normal_scores")
            if not normal:
                raise CheckpointError(f"{path}: holds no normal-frame scores to set a "
                                      "threshold for a false-alarm rate; pass --threshold")
            return cls(threshold_for(np.array(normal), false_alarm_rate), min_event_frames,
                       event_gap, false_alarm_rate, source)
        if calibration.threshold is None:
            raise CheckpointError(f"{path}: holds no alert threshold (trained before "
                                  "thresholds were calibrated); pass --threshold")
        return cls(calibration.threshold, min_event_frames, event_gap,
                   calibration.false_alarm_rate, source)

    def alarm(self, score: float | None) -> bool:
        """Whether ``score`` (None: not scored yet) is above the threshold."""
        return score is not None and score > self.threshold

    def events(self, frames: np.ndarray, scores: np.ndarray,
               fps: float | None = None) -> list[Event]:
        """The events of a whole score sequence at once (frames in order)."""
        return group_events(frames, scores, self.threshold, self.min_event_frames,
                            self.event_gap, fps)

    def watch(self, name: str, fps: float | None = None) -> AlertStream:
        """Follow one source's frames as they come (``name`` is used in warnings)."""
        return AlertStream(self, name, fps)

    def to_dict(self) -> dict:
        """The policy as events.json starts: threshold, where it came from, event rule."""
        return {"threshold": self.threshold, "threshold_source": self.threshold_source,
                "false_alarm_rate": self.false_alarm_rate,
                "min_event_frames": self.min_event_frames, "event_gap": self.event_gap}


@dataclass
class Verdict:
    """What the policy makes of one frame. alarm: its score is above the threshold;
    in_event: it lies in an event already long enough to be kept (frames of a run that is
    still too short learn later, see ``AlertStream.in_event``); event: that open event;
    closed: the events that ended before this frame."""

    alarm: bool
    in_event: bool = False
    event: Event | None = None
    closed: list[Event] = field(default_factory=list)


class AlertStream:
    """One source's alarms and events under an AlertPolicy, frame by frame.

    ``add(frame, score)`` per frame in order returns its Verdict; ``finish(cut)`` closes
    the open event at the end (``cut``: the source stopped early). Keeps the closed
    events (``events``) and counts the frames seen, scored and alarming and the last
    frame's index, and says once, as a warning, when most of the first minute alarms
    (FirstMinuteCheck).
    """

    def __init__(self, policy: AlertPolicy, name: str, fps: float | None = None):
        self.policy, self.name = policy, name
        self.grouper = EventGrouper(policy.min_event_frames, policy.event_gap, fps)
        self.events: list[Event] = []
        self.frames = self.scored = self.alarms = 0
        self.last_frame: int | None = None
        self._fit = FirstMinuteCheck(name, fps)

    def add(self, frame: int, score: float | None, box: list[int] | None = None) -> Verdict:
        """The verdict on one frame, in order (``box``: its top object's, if any)."""
        alarm = self.policy.alarm(score)
        self.frames, self.last_frame = self.frames + 1, frame
        if score is not None:
            self.scored += 1
            self.alarms += int(alarm)
            _warn(self._fit.add(alarm))
        closed = self.grouper.update(frame, score, alarm, box)
        self.events += closed
        return Verdict(alarm, self.grouper.confirmed(frame), self.grouper.current(), closed)

    def finish(self, cut: bool = False) -> list[Event]:
        closed = self.grouper.finish(cut)
        self.events += closed
        _warn(self._fit.finish())
        return closed

    def settled_until(self) -> int | None:
        """Frames before this index keep their place in or out of an event whatever comes
        next (None: every frame so far): EventGrouper.settled_until."""
        return self.grouper.settled_until()

    def in_event(self, frame: int) -> bool:
        """Whether ``frame``, once settled, lies in an event (asked in frame order)."""
        if self.grouper.confirmed(frame):
            return True
        for event in reversed(self.events):
            if event.end_frame < frame:
                return False
            if event.start_frame <= frame:
                return True
        return False


def _warn(message: str | None) -> None:
    if message:
        log.warning(message)


class Sink(Protocol):
    """Where a scored frame and the policy's verdict on it go: ``detect``'s files
    (comemory.detect.outputs), ``serve``'s database, clips and page
    (comemory.serve.recorder). ``add`` per frame in order; ``close`` once at the end, with
    the events the end closed and, where the source stopped early, why."""

    def add(self, result: FrameResult, verdict: Verdict) -> None: ...

    def close(self, closed: list[Event], stopped_because: str | None = None) -> None: ...
