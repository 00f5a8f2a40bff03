"""A threshold that backs its false-alarm rate on videos the model has not seen, and says
with what confidence.

A quantile of pooled held-out frames promises its rate for frames like those, but a
score's level moves from one video to the next (lighting, crowding, the encoder), so a
new video may flag many times the rate. Here the unit is the video: each calibration
video (normal footage the model did not train on) gives its own threshold, the lowest
score above which at most ``rate`` of its frames lie. If a new video is exchangeable with
the n calibration videos, the r-th smallest of their thresholds is at or above the new
video's with probability at least r / (n + 1) (the split-conformal argument, over videos),
and at that threshold at most ``rate`` of the new video's frames alarm. So the threshold
is the r-th smallest with r = ceil(confidence x (n + 1)). With fewer than
confidence / (1 - confidence) videos (9 for 90 %) r would exceed n: then no threshold
backs the rate at that confidence without assuming a distribution, the highest video's
threshold is used, and the promise says it holds with n / (n + 1) only.

    promise = video_threshold([scores_of_video_1, ...], rate=0.01, confidence=0.9,
                              source="4 held-out training videos")
    promise.threshold, promise.confidence, promise.kept, promise.statement()
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from comemory.errors import ConfigError

DEFAULT_CONFIDENCE = 0.9  # alert.confidence: how sure a promise on a new video must be
KEPT_VIDEO_SCORES = 512  # quantiles of each calibration video kept in a checkpoint


@dataclass(frozen=True)
class Promise:
    """What a video-level threshold backs. threshold: the alert threshold. rate: the
    share of a new normal video's frames it lets alarm. confidence: the probability that
    a new video keeps that rate (r / (n + 1)); asked: the confidence asked for
    (alert.confidence). videos: n, the calibration videos; source: what they are."""

    threshold: float
    rate: float
    confidence: float
    asked: float
    videos: int
    source: str

    @property
    def kept(self) -> bool:
        """Whether the asked confidence is reached."""
        return self.confidence >= self.asked - 1e-12

    def statement(self) -> str:
        """One line for a user: the rate, the confidence and what backs it."""
        text = (f"threshold {self.threshold:.4g}: at most {self.rate:.1%} of a new normal "
                f"video's frames above it, with {self.confidence:.0%} confidence "
                f"({self.videos} calibration videos: {self.source})")
        if self.kept:
            return text
        return (f"{text}; cannot promise {self.rate:.1%} with {self.asked:.0%} confidence: "
                f"that needs {videos_needed(self.asked)} calibration videos (cross-fit "
                "with `comemory calibrate --folds K`, or hold out more training videos)")

    def to_dict(self) -> dict:
        return {**asdict(self), "kept": self.kept}


def videos_needed(confidence: float) -> int:
    """The fewest calibration videos that back a rate with ``confidence``: the smallest n
    with ceil(confidence (n + 1)) <= n."""
    _check_confidence(confidence)
    return math.ceil(confidence / (1.0 - confidence) - 1e-9)


def video_quantile(scores: np.ndarray, rate: float) -> float:
    """The lowest of ``scores``'s values above which at most ``rate`` of them lie (frames
    alarm when strictly above the threshold)."""
    values = np.sort(np.asarray(scores, dtype=np.float64).ravel())
    if values.size == 0:
        raise ConfigError("a calibration video has no scored frames")
    allowed = math.floor(rate * values.size + 1e-9)  # frames that may lie above
    return float(values[values.size - 1 - min(allowed, values.size - 1)])


def video_threshold(videos: list[np.ndarray], rate: float,
                    confidence: float = DEFAULT_CONFIDENCE, source: str = "") -> Promise:
    """The threshold that keeps ``rate`` on a new video with ``confidence`` (or the most
    confidence ``videos`` allow), from each calibration video's frame scores."""
    if not 0.0 < rate < 1.0:
        raise ConfigError(f"false-alarm rate must be between 0 and 1, got {rate}")
    _check_confidence(confidence)
    if not videos:
        raise ConfigError("no calibration videos to set a threshold from")
    per_video = np.sort([video_quantile(scores, rate) for scores in videos])
    count = len(per_video)
    rank = min(count, math.ceil(confidence * (count + 1) - 1e-9))
    return Promise(float(per_video[rank - 1]), rate, rank / (count + 1), confidence, count,
                   source or f"{count} videos")


def summarise_scores(scores: np.ndarray, kept: int) -> list[float]:
    """Up to ``kept`` evenly spaced quantiles of ``scores``, ascending: what a checkpoint
    keeps to set another rate later without the footage (down to about 1 / ``kept``)."""
    values = np.sort(np.asarray(scores, dtype=np.float64).ravel())
    if values.size > kept:
        values = np.quantile(values, np.linspace(0.0, 1.0, kept))
    return [float(v) for v in values]


def summarise_video_scores(videos: list[np.ndarray]) -> list[list[float]]:
    """Each video's scores as up to KEPT_VIDEO_SCORES quantiles (``summarise_scores``)."""
    return [summarise_scores(scores, KEPT_VIDEO_SCORES) for scores in videos]


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ConfigError(f"alert.confidence must be between 0 and 1, got {confidence}")
