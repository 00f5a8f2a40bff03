"""Per-camera adaptation (opt-in): a camera's own alert threshold, learned from its first
minutes or from footage its operator marks normal, and kept current as its scores drift.

Why: a checkpoint's threshold comes from its training footage. A camera whose normal
scores sit higher (another encoder, other light, more people) flags many normal frames
under it, one whose scores sit lower misses anomalies; and a camera's level drifts with
the day. How: the camera's recent normal scores are kept (every frame outside an event
long enough to be kept, so an incident does not teach the threshold to accept it), and
every ``REFIT_EVERY`` frames a generalised Pareto distribution is fitted to their
excesses over their ``TAIL_QUANTILE`` quantile (peaks over threshold, as SPOT does:
Siffer et al., KDD 2017); the threshold is the score that distribution says normal
frames exceed with probability ``rate``.

What it risks: whatever the camera shows while it learns is taken as normal (an
incident in the first minutes, or in footage marked normal, becomes normal), and a drift
slow enough to stay under the threshold is learned: an anomaly that builds up gradually
over minutes can be absorbed. Sudden anomalies still alarm: their frames are never
learned. While a camera learns, the checkpoint's threshold applies.

    tracker = CameraThreshold(rate=0.01, learn=1500, window=15000)
    tracker.add(score, normal=True)   # per scored frame; False inside an event
    tracker.threshold                 # None while learning
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
from scipy.stats import genpareto

from comemory.errors import ConfigError

TAIL_QUANTILE = 0.98  # SPOT's initial threshold t: the peaks are the scores above it
REFIT_EVERY = 25  # frames between fits (a fit takes milliseconds)
FEWEST_PEAKS = 10  # below this the empirical quantile stands in for the fitted tail
WINDOW_LEARNS = 10  # the recent window holds this many learning periods


@dataclass(frozen=True)
class Adaptation:
    """A policy's adaptation settings. learn_seconds: how long a source is learned before
    its own threshold applies (0 with ``normal_scores``: the marked footage is enough).
    window_seconds: how much recent normal footage the threshold follows (default ten
    learning periods). normal_scores: scores of footage the operator marked normal,
    learned first by every source."""

    learn_seconds: float = 120.0
    window_seconds: float | None = None
    normal_scores: tuple[float, ...] = ()

    def __post_init__(self):
        if self.learn_seconds < 0 or (self.window_seconds is not None
                                      and self.window_seconds <= 0):
            raise ConfigError(f"adaptation needs learn_seconds >= 0 and window_seconds > 0, "
                              f"got {self.learn_seconds} and {self.window_seconds}")
        if self.learn_seconds == 0 and not self.normal_scores:
            raise ConfigError("adaptation with no learning time needs footage marked normal")

    def tracker(self, rate: float, fps: float | None) -> CameraThreshold:
        """A new source's tracker, at ``fps`` (25 where unknown)."""
        fps = fps or 25.0
        learn = round(self.learn_seconds * fps)
        window = round(self.window_seconds * fps) if self.window_seconds else None
        window = max(window or WINDOW_LEARNS * max(learn, len(self.normal_scores)), 1)
        return CameraThreshold(rate, learn + len(self.normal_scores), window,
                               self.normal_scores)


class CameraThreshold:
    """One source's adapted threshold: ``add(score, normal)`` per scored frame (``normal``:
    it lies in no event); ``threshold`` is None until ``learn``
    frames are learned (the frames of ``initial`` count, and while learning every frame
    is learned), then the peaks-over-threshold estimate of the score normal frames exceed
    with probability ``rate``, over the last ``window`` normal frames."""

    def __init__(self, rate: float, learn: int, window: int, initial=()):
        if not 0.0 < rate < 1.0:
            raise ConfigError(f"false-alarm rate must be between 0 and 1, got {rate}")
        self.rate, self.learn = rate, learn
        self.scores: deque[float] = deque(maxlen=window)
        self.seen = 0
        self.threshold: float | None = None
        for score in initial:
            self.add(float(score), True)

    def add(self, score: float, normal: bool) -> None:
        learning = self.threshold is None
        if not (learning or normal):
            return
        self.scores.append(score)
        self.seen += 1
        if (learning and self.seen >= self.learn) or (
                not learning and self.seen % REFIT_EVERY == 0):
            self.threshold = tail_threshold(np.fromiter(self.scores, float), self.rate)


def tail_threshold(scores: np.ndarray, rate: float) -> float:
    """The score that normal frames like ``scores`` exceed with probability ``rate``: a
    generalised Pareto tail fitted over their TAIL_QUANTILE quantile (SPOT's z_q), or
    their empirical quantile where too few peaks lie above it or ``rate`` is not in the
    tail."""
    start = float(np.quantile(scores, TAIL_QUANTILE))
    peaks = scores[scores > start] - start
    if len(peaks) < FEWEST_PEAKS or rate >= 1.0 - TAIL_QUANTILE or np.ptp(peaks) == 0:
        return float(np.quantile(scores, 1.0 - rate))
    shape, _, scale = genpareto.fit(peaks, floc=0.0)
    ratio = rate * len(scores) / len(peaks)  # < 1: how far into the tail
    if abs(shape) < 1e-6:
        return float(start - scale * math.log(ratio))
    return float(start + scale / shape * (ratio ** -shape - 1.0))
