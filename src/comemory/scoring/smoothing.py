"""Temporal smoothing of one video's frame scores.

causal   the mean over the last ``window`` frames (fewer at a video's start): it reads
         no future frame, so ``comemory detect`` applies it live, frame by frame.
centred  a Gaussian of ``sigma`` frames over the whole video (Reiss et al. use sigma 3 on
         Ped2): it reads the future, so it is for offline evaluation only and every table
         labels it.
"""
from __future__ import annotations

from collections import deque

import numpy as np
from scipy.ndimage import gaussian_filter1d

SMOOTHINGS = ("raw", "causal", "centred")


def causal_mean(scores: np.ndarray, window: int) -> np.ndarray:
    """(T,) -> (T,): frame t gets the mean of frames max(0, t - window + 1) .. t."""
    scores = np.asarray(scores, dtype=np.float64)
    if window <= 1 or scores.size == 0:
        return scores
    sums = np.cumsum(np.concatenate([[0.0], scores]))
    ends = np.arange(1, scores.size + 1)
    starts = np.maximum(0, ends - window)
    return (sums[ends] - sums[starts]) / (ends - starts)


class CausalMean:
    """The live form of ``causal_mean``: ``push(score)`` returns the mean of the last
    ``window`` scores pushed since the last ``reset()``."""

    def __init__(self, window: int):
        self.window = max(1, window)
        self.reset()

    def reset(self) -> None:
        self._recent: deque[float] = deque(maxlen=self.window)

    def push(self, score: float) -> float:
        self._recent.append(float(score))
        return float(np.mean(self._recent))


def centred_gaussian(scores: np.ndarray, sigma: float) -> np.ndarray:
    """(T,) -> (T,): a Gaussian over past and future frames (edges repeat the end value)."""
    scores = np.asarray(scores, dtype=np.float64)
    if sigma <= 0 or scores.size == 0:
        return scores
    return gaussian_filter1d(scores, sigma, mode="nearest")


def smooth(scores: np.ndarray, smoothing: str, causal_window: int,
           centred_sigma: float) -> np.ndarray:
    """One video's scores with the named smoothing ("raw" leaves them as they are)."""
    if smoothing == "raw":
        return np.asarray(scores, dtype=np.float64)
    if smoothing == "causal":
        return causal_mean(scores, causal_window)
    if smoothing == "centred":
        return centred_gaussian(scores, centred_sigma)
    raise ValueError(f"unknown smoothing {smoothing!r}; choose one of {SMOOTHINGS}")
