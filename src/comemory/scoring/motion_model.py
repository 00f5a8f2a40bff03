"""A learned model of how objects move (after Reiss & Hoshen's attribute-based VAD): each
object's motion as a short vector, a Gaussian mixture fitted on the training footage's
objects, and an object's anomaly score as its negative log-likelihood under it.

The vector: the flow magnitude inside the object's box in 8 direction bins (each bin's
summed magnitude over the box's pixels, divided by their number). ``box_motion`` leaves it
in grid pixels, as ``score.motion_model`` reads it; ``motion_vector`` divides it by the
box's height as Reiss & Hoshen do (so that a walker near the camera, who moves more
pixels, looks like one far away; on Ped2 this scored 0.49 causal AUC against 0.71 in
pixels: docs/benchmarks.md), optionally with the box centre's position in the frame. A
frame scores its most unusual object; a frame with no object scores as the quietest
training frames do.

    model = MotionModel().fit(np.stack(training_vectors))
    scores = model.score(np.stack(vectors))        # (n,) negative log-likelihoods
"""
from __future__ import annotations

import numpy as np
import torch
from sklearn.mixture import GaussianMixture

from comemory.data.objects import Box

DIRECTION_BINS = 8
QUIET_QUANTILE = 0.01  # "the quietest training frames": this quantile of their scores


def box_motion(flow: np.ndarray, box: tuple[int, int, int, int] | np.ndarray,
               foreground: np.ndarray | None = None) -> np.ndarray:
    """float64 (8,): the mean flow magnitude of each direction bin over the pixels of
    ``box`` (x, y, width, height) in ``flow`` (H, W, 2), in the flow's pixels. With
    ``foreground`` (H, W; nonzero on the object, ObjectFinder.foreground_mask) only the
    object's own pixels count, not the background the box also holds."""
    x, y, width, height = (int(value) for value in box)
    region = np.asarray(flow[y:y + height, x:x + width], dtype=np.float64).reshape(-1, 2)
    if foreground is not None:
        inside = foreground[y:y + height, x:x + width].reshape(-1)
        region = region[inside > 0] if (inside > 0).any() else region
    magnitude = np.hypot(region[:, 0], region[:, 1])
    direction = np.arctan2(region[:, 1], region[:, 0])  # -pi .. pi
    bins = ((direction + np.pi) / (2 * np.pi) * DIRECTION_BINS).astype(int) % DIRECTION_BINS
    return np.bincount(bins, weights=magnitude, minlength=DIRECTION_BINS) / max(1, len(region))


def motion_vector(flow: np.ndarray, box: Box, frame_shape: tuple[int, int] | None = None,
                  foreground: np.ndarray | None = None) -> np.ndarray:
    """float64 (8,) (or (10,) with ``frame_shape``: the box centre as shares of the frame's
    width and height): ``box_motion`` divided by the box's height (Reiss & Hoshen)."""
    vector = box_motion(flow, (box.x, box.y, box.width, box.height), foreground)
    vector = vector / max(1, box.height)
    if frame_shape is None:
        return vector
    centre = [(box.x + box.width / 2) / frame_shape[1], (box.y + box.height / 2) / frame_shape[0]]
    return np.concatenate([vector, centre])


class MotionModel:
    """A Gaussian mixture of ``components`` full-covariance components over motion vectors
    (scikit-learn), fitted on training objects, each dimension first standardised with
    the training objects' mean and spread (speeds per pixel of height are small numbers:
    the mixture's regularisation would otherwise swamp them); ``score`` gives each
    vector's negative log-likelihood, and ``frame_scores`` a frame's from its objects'.
    ``frame_mean`` and ``frame_spread`` are the training frames' (``score.motion_model``
    "added" z-scores with them); ``state`` and ``from_state`` carry it in a checkpoint."""

    def __init__(self, components: int = 5, seed: int = 0):
        self.components, self.seed = components, seed
        self.mixture: GaussianMixture | None = None
        self.mean: np.ndarray | None = None
        self.spread: np.ndarray | None = None
        self.quiet: float | None = None  # the score of a frame with no object
        self.frame_mean: float | None = None
        self.frame_spread: float | None = None

    def fit(self, vectors: np.ndarray, frame_counts: list[int] | None = None) -> MotionModel:
        """``vectors`` (N, D) of the training objects; ``frame_counts``: how many of them
        each training frame held, in order (for the score of an empty frame; default: one
        object a frame)."""
        if len(vectors) <= self.components:
            raise ValueError(f"{len(vectors)} training objects are too few for a mixture of "
                             f"{self.components} components")
        self.mean, self.spread = vectors.mean(0), np.maximum(vectors.std(0), 1e-9)
        self.mixture = GaussianMixture(self.components, covariance_type="full",
                                       reg_covar=1e-6, random_state=self.seed)
        self.mixture.fit((vectors - self.mean) / self.spread)
        counts = frame_counts if frame_counts is not None else [1] * len(vectors)
        scores = self.score(vectors)
        frames = self.frame_scores(scores, counts, empty=-np.inf)
        self.quiet = float(np.quantile(frames[np.isfinite(frames)], QUIET_QUANTILE))
        frames = self.frame_scores(scores, counts)
        self.frame_mean, self.frame_spread = float(frames.mean()), max(float(frames.std()),
                                                                       1e-12)
        return self

    def score(self, vectors: np.ndarray) -> np.ndarray:
        """(N,) negative log-likelihoods of ``vectors`` (N, D): higher is more unusual."""
        if self.mixture is None:
            raise ValueError("the motion model is not fitted: call fit() on training objects")
        if len(vectors) == 0:
            return np.zeros(0)
        return -self.mixture.score_samples((vectors - self.mean) / self.spread)

    def frame_scores(self, object_scores: np.ndarray, frame_counts: list[int] | np.ndarray,
                     empty: float | None = None) -> np.ndarray:
        """Each frame's highest object score; ``frame_counts`` says how many of the
        ``object_scores`` (in order) each frame holds. A frame with none scores ``empty``
        (default: the quietest training frames' score)."""
        empty = self.quiet if empty is None else empty
        edges = np.concatenate([[0], np.cumsum(frame_counts)]).astype(int)
        return np.array([object_scores[a:b].max() if b > a else empty
                         for a, b in zip(edges[:-1], edges[1:], strict=True)])

    def state(self) -> dict:
        """What a checkpoint keeps (tensors and numbers: loads with weights_only)."""
        if self.mixture is None:
            raise ValueError("the motion model is not fitted: nothing to keep")
        arrays = {"weights": self.mixture.weights_, "means": self.mixture.means_,
                  "precisions_cholesky": self.mixture.precisions_cholesky_,
                  "mean": self.mean, "spread": self.spread}
        return {**{name: torch.from_numpy(np.asarray(value, dtype=np.float64))
                   for name, value in arrays.items()},
                "components": self.components, "seed": self.seed, "quiet": self.quiet,
                "frame_mean": self.frame_mean, "frame_spread": self.frame_spread}

    @classmethod
    def from_state(cls, state: dict) -> MotionModel:
        """The model ``state`` kept, scoring as it did."""
        model = cls(int(state["components"]), int(state["seed"]))
        model.mixture = GaussianMixture(model.components, covariance_type="full")
        model.mixture.weights_ = np.asarray(state["weights"], dtype=np.float64)
        model.mixture.means_ = np.asarray(state["means"], dtype=np.float64)
        model.mixture.precisions_cholesky_ = np.asarray(state["precisions_cholesky"],
                                                        dtype=np.float64)
        model.mean = np.asarray(state["mean"], dtype=np.float64)
        model.spread = np.asarray(state["spread"], dtype=np.float64)
        model.quiet, model.frame_mean, model.frame_spread = (
            float(state[key]) for key in ("quiet", "frame_mean", "frame_spread"))
        return model
