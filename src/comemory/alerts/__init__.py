"""From scores to alerts: one policy for ``detect``, ``serve``, ``evaluate``'s alert report
and ``finetune``'s verdicts.

The threshold keeps a chosen false-alarm rate on normal footage the model did not train
on (held out at training time: ``train.holdout`` and ``train.holdout_fraction``; or
every training video, cross-fitted by ``comemory calibrate``): per video, with the
confidence the number of those videos allows (``alerts.promise``). The held-out scores
are kept in the checkpoint so another rate can be chosen later without the data. A
camera may learn its own threshold (``alerts.adapt``). Anomalous frames close together
become one event, so a flickering score raises one alert, not ten (``alerts.events``).

    policy = AlertPolicy.from_calibration(detector.calibration)  # the checkpoint's threshold
    alerts = policy.watch("camera 1", fps=25.0)                   # one source's events
    verdict = alerts.add(result.index, result.score, result.top_box)  # per scored frame
    verdict.alarm, verdict.in_event, verdict.closed

Everything that sets, chooses or applies a threshold is in this package.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from comemory.alerts.adapt import Adaptation
from comemory.alerts.events import (
    EVENT_GAP,
    MIN_EVENT_FRAMES,
    AlertStream,
    Event,
    EventGrouper,
    FirstMinuteCheck,
    Verdict,
    group_events,
)
from comemory.alerts.promise import (
    DEFAULT_CONFIDENCE,
    Promise,
    summarise_scores,
    summarise_video_scores,
    video_threshold,
)
from comemory.errors import CheckpointError, ConfigError

if TYPE_CHECKING:
    from comemory.detect import FrameResult
    from comemory.scoring import Calibration

log = logging.getLogger("comemory.alerts")

KEPT_NORMAL_SCORES = 4096  # quantiles of this many held-out scores fit in a checkpoint
NORMAL_QUANTILES = (0.5, 0.9, 0.95, 0.99, 0.999)  # kept in the checkpoint, for pictures


def threshold_for(normal_scores: np.ndarray, false_alarm_rate: float) -> float:
    """The score above which ``false_alarm_rate`` of ``normal_scores`` lie."""
    if not 0.0 < false_alarm_rate < 1.0:
        raise ConfigError(f"false-alarm rate must be between 0 and 1, got {false_alarm_rate}")
    if len(normal_scores) == 0:
        raise ConfigError("no normal scores to set a threshold from")
    return float(np.quantile(np.asarray(normal_scores, dtype=np.float64), 1.0 - false_alarm_rate))


def calibrate_threshold(calibration: Calibration, normal: list[np.ndarray],
                        false_alarm_rate: float, source: str, by: str = "videos",
                        confidence: float = DEFAULT_CONFIDENCE) -> Promise:
    """Set ``calibration``'s alert threshold for ``false_alarm_rate`` on the ``normal``
    scores (one array per held-out normal video or part, as ``detect`` scores them), and
    keep their distribution; ``source`` says which frames they are. ``by="videos"``
    (alert.threshold_by): the threshold that keeps the rate on a new video with
    ``confidence`` (comemory.alerts.promise); ``"frames"``: the pooled frames' quantile.
    Returns the promise (what the video-level threshold backs, whichever is set)."""
    pooled = np.concatenate(normal)
    promise = video_threshold(normal, false_alarm_rate, confidence, source)
    calibration.false_alarm_rate = false_alarm_rate
    calibration.threshold = (promise.threshold if by == "videos"
                             else threshold_for(pooled, false_alarm_rate))
    calibration.extra = {
        "score_mean": float(pooled.mean()), "score_std": float(pooled.std()),
        "score_quantiles": {str(q): float(np.quantile(pooled, q)) for q in NORMAL_QUANTILES},
        "frames": int(pooled.size), "threshold_source": source,
        "normal_scores": summarise_scores(pooled, KEPT_NORMAL_SCORES),
        "video_scores": summarise_video_scores(normal), "threshold_by": by,
        "promise": promise.to_dict(),
        "calibrated_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    return promise


def checkpoint_promise(calibration: Calibration, false_alarm_rate: float | None = None
                       ) -> Promise | None:
    """What the checkpoint's threshold backs on a new video (for ``false_alarm_rate``,
    default its own): None for a checkpoint calibrated before promises were kept."""
    kept = calibration.extra.get("promise")
    videos = calibration.extra.get("video_scores")
    if not kept or not videos:
        return None
    rate = false_alarm_rate or calibration.false_alarm_rate
    if rate == kept["rate"]:  # as set from every frame, not from the kept quantiles
        return Promise(**{name: kept[name] for name in Promise.__dataclass_fields__})
    return video_threshold([np.array(v) for v in videos], rate, kept["asked"], kept["source"])


@dataclass(frozen=True)
class AlertPolicy:
    """Which scores alarm, and how alarms become events.

    threshold: a score above it alarms. min_event_frames, event_gap: EventGrouper's rule.
    false_alarm_rate: the share of held-out normal frames above the threshold (None for a
    threshold set by hand); threshold_source: which frames set it. promise: what the
    threshold backs on a new video (alerts.promise; None where nothing is backed).
    adaptation: each source then learns its own threshold (alerts.adapt; None: off).
    """

    threshold: float
    min_event_frames: int = MIN_EVENT_FRAMES
    event_gap: int = EVENT_GAP
    false_alarm_rate: float | None = None
    threshold_source: str | None = None
    promise: Promise | None = None
    adaptation: Adaptation | None = None

    def __post_init__(self):
        if not math.isfinite(self.threshold):
            raise ConfigError(f"the threshold must be a finite number, got {self.threshold}")
        if self.adaptation is not None and self.false_alarm_rate is None:
            raise ConfigError("per-camera adaptation learns the threshold for a false-alarm "
                              "rate: leave out the threshold set by hand")
        if self.min_event_frames < 1 or self.event_gap < 0:
            raise ConfigError(f"events need min_frames >= 1 and max_gap >= 0, got "
                              f"{self.min_event_frames} and {self.event_gap}")

    @classmethod
    def from_calibration(cls, calibration: Calibration, threshold: float | None = None,
                         false_alarm_rate: float | None = None,
                         min_event_frames: int = MIN_EVENT_FRAMES, event_gap: int = EVENT_GAP,
                         path: str | Path = "checkpoint") -> AlertPolicy:
        """The policy of a checkpoint's calibration: ``threshold`` if given, else the one
        for ``false_alarm_rate`` on its held-out normal scores (set as the checkpoint's
        was: per video or pooled frames), else its own threshold; ``path`` names the
        checkpoint in errors. Its ``promise`` says what the threshold backs on a new video
        (None for one set by hand, or a checkpoint calibrated before promises)."""
        source = calibration.extra.get("threshold_source")
        if threshold is not None:
            return cls(float(threshold), min_event_frames, event_gap, None, "set by hand")
        if false_alarm_rate is not None:
            normal = calibration.extra.get("normal_scores")
            if not normal:
                raise CheckpointError(f"{path}: holds no normal-frame scores to set a "
                                      "threshold for a false-alarm rate; pass --threshold")
            promise = checkpoint_promise(calibration, false_alarm_rate)
            by_videos = promise is not None and calibration.extra.get("threshold_by") == "videos"
            value = (promise.threshold if by_videos
                     else threshold_for(np.array(normal), false_alarm_rate))
            return cls(value, min_event_frames, event_gap, false_alarm_rate, source, promise)
        if calibration.threshold is None:
            raise CheckpointError(f"{path}: holds no alert threshold (trained before "
                                  "thresholds were calibrated); pass --threshold")
        return cls(calibration.threshold, min_event_frames, event_gap,
                   calibration.false_alarm_rate, source, checkpoint_promise(calibration))

    def statement(self) -> str:
        """What the threshold promises, in a line: the promise's statement where the
        calibration kept one, else where the threshold came from; and whether each
        source learns its own."""
        text = self._promised()
        if self.adaptation is None:
            return text
        return (f"{text}; each source then learns its own threshold for that rate "
                f"(adaptation: {len(self.adaptation.normal_scores)} frames marked normal, "
                f"then its first {self.adaptation.learn_seconds:g} s)")

    def _promised(self) -> str:
        if self.threshold_source == "set by hand":
            return f"threshold {self.threshold:.4g}, set by hand: it promises no rate"
        if self.promise is None:
            return (f"threshold {self.threshold:.4g} from {self.threshold_source}: a "
                    "checkpoint calibrated before video-level promises, so no promise on "
                    "a new video (calibrate it again: `comemory calibrate`)")
        if abs(self.promise.threshold - self.threshold) > 1e-12:  # alert.threshold_by frames
            return (f"threshold {self.threshold:.4g}, the pooled frames' quantile; the "
                    f"video-level one would be {self.promise.statement()}")
        return self.promise.statement()

    def adapted(self, adaptation: Adaptation | None) -> AlertPolicy:
        """This policy, with each source learning its own threshold (None: as it is)."""
        return replace(self, adaptation=adaptation)

    def announce(self, name: str) -> None:
        """Say what the threshold promises for ``name`` (a command, a camera): a warning
        where it cannot back its rate at the asked confidence or states no promise (a
        checkpoint calibrated before promises), else a note."""
        unbacked = self.promise is None and self.threshold_source != "set by hand"
        if unbacked or (self.promise is not None and not self.promise.kept):
            log.warning("%s: %s", name, self.statement())
        else:
            log.info("%s: %s", name, self.statement())

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
                "promise": self.promise.to_dict() if self.promise else None,
                "adaptation": None if self.adaptation is None else {
                    "learn_seconds": self.adaptation.learn_seconds,
                    "window_seconds": self.adaptation.window_seconds,
                    "frames_marked_normal": len(self.adaptation.normal_scores)},
                "min_event_frames": self.min_event_frames, "event_gap": self.event_gap}


class Sink(Protocol):
    """Where a scored frame and the policy's verdict on it go: ``detect``'s files
    (comemory.detect.outputs), ``serve``'s database, clips and page
    (comemory.serve.recorder). ``add`` per frame in order; ``close`` once at the end, with
    the events the end closed and, where the source stopped early, why."""

    def add(self, result: FrameResult, verdict: Verdict) -> None: ...

    def close(self, closed: list[Event], stopped_because: str | None = None) -> None: ...


__all__ = ["EVENT_GAP", "MIN_EVENT_FRAMES", "AlertPolicy", "AlertStream", "Event",
           "EventGrouper", "FirstMinuteCheck", "Sink", "Verdict", "calibrate_threshold",
           "checkpoint_promise", "group_events", "threshold_for"]
