"""A learned model of how objects move (after Reiss & Hoshen's attribute-based VAD): each
object's motion as a short vector, a Gaussian mixture fitted on the training footage's
objects, and an object's anomaly score as its negative log-likelihood under it.

The vector: the flow magnitude inside the object's box in 8 direction bins (each bin's
summed magnitude over the box's pixels), divided by the box's height, so that a walker
near the camera, who moves more pixels, looks like one far away; optionally the box
centre's position in the frame (``with_position``), so that a place where nobody walks
can look unusual. A frame scores its most unusual object; a frame with no object scores
as the quietest training frames do.

    model = MotionModel().fit(np.stack(training_vectors))
    scores = model.score(np.stack(vectors))        # (n,) negative log-likelihoods
"""
from __future__ import annotations

import numpy as np
from sklearn.mixture import GaussianMixture

from comemory.data.objects import Box

DIRECTION_BINS = 8
QUIET_QUANTILE = 0.01  # "the quietest training frames": this quantile of their scores


def motion_vector(flow: np.ndarray, box: Box, frame_shape: tuple[int, int] | None = None,
                  foreground: np.ndarray | None = None) -> np.ndarray:
    """float64 (8,) (or (10,) with ``frame_shape``: the box centre as shares of the frame's
    width and height) from ``flow`` (H, W, 2), in the frame's pixels. With ``foreground``
    (H, W; nonzero on the object, ObjectFinder.foreground_mask) only the object's own
    pixels count, not the background the box also holds."""
    region = flow[box.y:box.y + box.height, box.x:box.x + box.width].reshape(-1, 2)
    if foreground is not None:
        inside = foreground[box.y:box.y + box.height, box.x:box.x + box.width].reshape(-1)
        region = region[inside > 0] if (inside > 0).any() else region
    magnitude = np.hypot(region[:, 0], region[:, 1])
    direction = np.arctan2(region[:, 1], region[:, 0])  # -pi .. pi
    bins = ((direction + np.pi) / (2 * np.pi) * DIRECTION_BINS).astype(int) % DIRECTION_BINS
    sums = np.bincount(bins, weights=magnitude, minlength=DIRECTION_BINS)
    vector = sums / max(1, len(region)) / max(1, box.height)
    if frame_shape is None:
        return vector
    centre = [(box.x + box.width / 2) / frame_shape[1], (box.y + box.height / 2) / frame_shape[0]]
    return np.concatenate([vector, centre])


class MotionModel:
    """A Gaussian mixture of ``components`` full-covariance components over motion vectors
    (scikit-learn), fitted on training objects, each dimension first standardised with
    the training objects' mean and spread (speeds per pixel of height are small numbers:
    the mixture's regularisation would otherwise swamp them); ``score`` gives each
    vector's negative log-likelihood, and ``frame_scores`` a frame's from its objects'."""

    def __init__(self, components: int = 5, seed: int = 0):
        self.components, self.seed = components, seed
        self.mixture: GaussianMixture | None = None
        self.mean: np.ndarray | None = None
        self.spread: np.ndarray | None = None
        self.quiet: float | None = None  # the score of a frame with no object

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
        frames = self.frame_scores(self.score(vectors), frame_counts or [1] * len(vectors),
                                   empty=-np.inf)
        self.quiet = float(np.quantile(frames[np.isfinite(frames)], QUIET_QUANTILE))
        return self

    def score(self, vectors: np.ndarray) -> np.ndarray:
        """(N,) negative log-likelihoods of ``vectors`` (N, D): higher is more unusual."""
        if self.mixture is None:
            raise ValueError("the motion model is not fitted: call fit() on training objects")
        if len(vectors) == 0:
            return np.zeros(0)
        return -self.mixture.score_samples((vectors - self.mean) / self.spread)

    def frame_scores(self, object_scores: np.ndarray, frame_counts: list[int],
                     empty: float | None = None) -> np.ndarray:
        """Each frame's highest object score; ``frame_counts`` says how many of the
        ``object_scores`` (in order) each frame holds. A frame with none scores ``empty``
        (default: the quietest training frames' score)."""
        empty = self.quiet if empty is None else empty
        edges = np.concatenate([[0], np.cumsum(frame_counts)]).astype(int)
        return np.array([object_scores[a:b].max() if b > a else empty
                         for a, b in zip(edges[:-1], edges[1:], strict=True)])
