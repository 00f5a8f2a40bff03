"""Pictures of a result: ROC curves and per-video score curves with anomalies shaded."""
from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np

# matplotlib and scikit-learn load when a picture is drawn (_pyplot), not with this module:
# `detect` imports it for ScoreEnvelope at start-up, and they take about 1.5 s to load.


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers or CI
    import matplotlib.pyplot as plt

    return plt


def roc_plot(path: Path, curves: dict[str, tuple[np.ndarray, np.ndarray]], title: str) -> None:
    """curves: label -> (pooled 0/1 labels, pooled scores); one line each, its AUC in the
    legend."""
    from sklearn.metrics import roc_auc_score, roc_curve

    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(5, 5))
    for name, (labels, scores) in curves.items():
        fpr, tpr, _ = roc_curve(labels, scores)
        axis.plot(fpr, tpr, label=f"{name}: AUC {roc_auc_score(labels, scores):.3f}")
    axis.plot([0, 1], [0, 1], color="grey", linestyle=":", label="chance")
    axis.set(xlabel="false positive rate", ylabel="true positive rate", title=title,
             xlim=(0, 1), ylim=(0, 1.01))
    axis.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def score_curves_plot(path: Path, videos: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]],
                      ylabel: str, threshold: float | None = None) -> None:
    """videos: (name, frame indices, scores, 0/1 labels); one panel per video, anomalous
    frames shaded red, the alert ``threshold`` (where there is one) a dashed line."""
    plt = _pyplot()
    columns = min(3, len(videos))
    rows = math.ceil(len(videos) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.5 * columns, 2.4 * rows), squeeze=False)
    for axis, (name, frames, scores, labels) in zip(axes.flat, videos, strict=False):
        axis.plot(frames, scores, color="tab:blue", linewidth=1)
        for start, end in _spans(frames, labels):
            axis.axvspan(start - 0.5, end + 0.5, color="tab:red", alpha=0.2, linewidth=0)
        if threshold is not None:
            axis.axhline(threshold, color="tab:red", linestyle="--", linewidth=0.8)
        axis.set_title(f"video {name}", fontsize=9)
        axis.set_xlabel("frame", fontsize=8)
        axis.set_ylabel(ylabel, fontsize=8)
        axis.tick_params(labelsize=7)
    for axis in list(axes.flat)[len(videos):]:
        axis.axis("off")
    key = "red: anomalous frames" + ("; dashed: alert threshold" if threshold is not None else "")
    figure.suptitle(key, fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def heatmap_plot(path: Path, panels: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]
                 ) -> None:
    """panels: (title, frame uint8 (S, S, C), score map (S, S), mask bool (S, S)); the
    map over the frame with its colour key, the ground-truth mask outlined in white."""
    plt = _pyplot()
    columns = min(4, len(panels))
    rows = math.ceil(len(panels) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.4 * columns, 3.2 * rows), squeeze=False)
    for axis, (title, image, heat, mask) in zip(axes.flat, panels, strict=False):
        axis.imshow(image.squeeze(-1) if image.shape[-1] == 1 else image, cmap="gray")
        shown = axis.imshow(heat, cmap="inferno", alpha=0.45)
        key = figure.colorbar(shown, ax=axis, fraction=0.046, pad=0.03)
        key.set_label("score", fontsize=7)
        key.ax.tick_params(labelsize=6)
        if mask.any():
            axis.contour(mask, levels=[0.5], colors="white", linewidths=0.8)
        axis.set_title(title, fontsize=8)
        axis.axis("off")
    for axis in list(axes.flat)[len(panels):]:
        axis.axis("off")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


class ScoreEnvelope:
    """A fixed-size summary of a score sequence, for plotting runs of any length with flat
    memory: at most ``bins`` bins, each the first frame, the lowest and the highest score
    of ``per_bin`` consecutive scores. When full, neighbouring bins merge pairwise
    (``per_bin`` doubles), so a single high score is never averaged away.

    ``add(frame, score)``; ``frames``, ``low``, ``high``: lists of equal length.
    """

    def __init__(self, bins: int = 2048):
        if bins < 2 or bins % 2:
            raise ValueError(f"bins must be an even number >= 2, got {bins}")
        self.bins, self.per_bin, self.count = bins, 1, 0
        self.frames: list[int] = []
        self.low: list[float] = []
        self.high: list[float] = []
        self._in_last = 0

    def add(self, frame: int, score: float) -> None:
        self.count += 1
        if self.frames and self._in_last < self.per_bin:
            self.low[-1] = min(self.low[-1], score)
            self.high[-1] = max(self.high[-1], score)
            self._in_last += 1
            return
        if len(self.frames) == self.bins:
            self._merge()
        self.frames.append(frame)
        self.low.append(score)
        self.high.append(score)
        self._in_last = 1

    def _merge(self) -> None:
        self.frames = self.frames[0::2]
        self.low = [min(a, b) for a, b in zip(self.low[0::2], self.low[1::2], strict=True)]
        self.high = [max(a, b) for a, b in zip(self.high[0::2], self.high[1::2], strict=True)]
        self.per_bin *= 2


def detection_plot(path: Path, scores: ScoreEnvelope, threshold: float,
                   events: list[tuple[int, int]], title: str) -> None:
    """One video's score over its frames, the threshold as a line, events shaded. Where a
    bin holds several frames, the band spans their lowest to highest score."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(9, 3))
    frames = np.array(scores.frames)
    if scores.per_bin == 1:
        axis.plot(frames, scores.high, color="tab:blue", linewidth=1, label="score")
    else:
        axis.fill_between(frames, scores.low, scores.high, color="tab:blue", alpha=0.35,
                          linewidth=0, step="post",
                          label=f"score (lowest to highest of {scores.per_bin} frames)")
        axis.step(frames, scores.high, where="post", color="tab:blue", linewidth=0.8)
    axis.axhline(threshold, color="tab:red", linestyle="--", linewidth=1, label="threshold")
    for number, (start, end) in enumerate(events):
        axis.axvspan(start - 0.5, end + 0.5, color="tab:red", alpha=0.2, linewidth=0,
                     label="event" if number == 0 else None)
    axis.set(xlabel="frame", ylabel="score (training-calibrated)", title=title)
    axis.legend(loc="upper right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _spans(frames: np.ndarray, labels: np.ndarray) -> list[tuple[int, int]]:
    """Runs of consecutive anomalous frames as (first, last) frame indices."""
    spans = []
    for anomalous, run in itertools.groupby(zip(frames, labels, strict=True), key=lambda x: x[1]):
        if anomalous:
            run = list(run)
            spans.append((run[0][0], run[-1][0]))
    return spans
