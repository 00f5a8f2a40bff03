"""One source's frames under an alert policy: each frame's verdict, and events, the runs
of alarming frames grouped as they arrive (one rule for ``detect``, ``serve``,
``evaluate`` and the annotated video)."""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from comemory.errors import ConfigError

if TYPE_CHECKING:
    from comemory.alerts import AlertPolicy

log = logging.getLogger("comemory.alerts")

# One set of event defaults for the commands, the Python API and the annotated video:
MIN_EVENT_FRAMES = 3  # shorter runs above the threshold are blips, not events
EVENT_GAP = 5  # up to this many normal frames inside an event do not end it


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


@dataclass
class Verdict:
    """What the policy makes of one frame. alarm: its score is above the threshold;
    in_event: it lies in an event already long enough to be kept (frames of a run that is
    still too short learn later, see ``AlertStream.in_event``); event: that open event;
    closed: the events that ended before this frame; threshold: the one it was judged by
    (a camera's own, where it adapts)."""

    alarm: bool
    in_event: bool = False
    event: Event | None = None
    closed: list[Event] = field(default_factory=list)
    threshold: float | None = None


class AlertStream:
    """One source's alarms and events under an AlertPolicy, frame by frame.

    ``add(frame, score)`` per frame in order returns its Verdict; ``finish(cut)`` closes
    the open event at the end (``cut``: the source stopped early). Keeps the closed
    events (``events``) and counts the frames seen, scored and alarming and the last
    frame's index, and says once, as a warning, when most of the first minute alarms
    (FirstMinuteCheck). Where the policy adapts, the source learns its own threshold
    (comemory.alerts.adapt) from every frame outside an event long enough to be kept:
    blips above the threshold are the normal tail it must learn, or each fit would see
    the tail cut at the last threshold and set the next one lower.
    """

    def __init__(self, policy: AlertPolicy, name: str, fps: float | None = None):
        self.policy, self.name = policy, name
        self.tracker = (policy.adaptation.tracker(policy.false_alarm_rate, fps)
                        if policy.adaptation is not None else None)
        self.grouper = EventGrouper(policy.min_event_frames, policy.event_gap, fps)
        self.events: list[Event] = []
        self.frames = self.scored = self.alarms = 0
        self.last_frame: int | None = None
        self._fit = FirstMinuteCheck(name, fps)

    def add(self, frame: int, score: float | None, box: list[int] | None = None) -> Verdict:
        """The verdict on one frame, in order (``box``: its top object's, if any)."""
        threshold = self.threshold
        alarm = bool(score is not None and score > threshold)
        self.frames, self.last_frame = self.frames + 1, frame
        if score is not None:
            self.scored += 1
            self.alarms += int(alarm)
            _warn(self._fit.add(alarm))
        closed = self.grouper.update(frame, score, alarm, box)
        self.events += closed
        if self.tracker is not None and score is not None:  # blips are learned, events not
            self.tracker.add(score, normal=self.grouper.current() is None)
        return Verdict(alarm, self.grouper.confirmed(frame), self.grouper.current(), closed,
                       threshold)

    @property
    def threshold(self) -> float:
        """The threshold the next frame is judged by: the source's own where it adapts
        and has learned, else the policy's."""
        if self.tracker is not None and self.tracker.threshold is not None:
            return self.tracker.threshold
        return self.policy.threshold

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
