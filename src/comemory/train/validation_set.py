"""The validation set: held-out training frames and pseudo-anomalies made from them,
and how a score is measured on it (AUC per kind and pooled; the bootstrap error).
Test labels are never read here."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.metrics import roc_auc_score

from comemory.config import Config
from comemory.data.datasets import Video
from comemory.data.holdout import holdout_of, holdout_starts
from comemory.data.model_input import PreparedVideo, prepare_images
from comemory.data.pseudo_anomalies import KINDS, make_clips
from comemory.errors import DataError
from comemory.progress import progress
from comemory.scoring import (
    VideoErrors,
)


@dataclass
class ValidationSet:
    """Prepared validation clips (each with labels), each clip's kind ("normal" or one
    of ``KINDS``) and the training video it was made from (default: each its own)."""

    videos: list[PreparedVideo]
    kinds: list[str]
    sources: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.sources:
            self.sources = [video.name for video in self.videos]

    def frame_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for video, kind in zip(self.videos, self.kinds, strict=True):
            counts[kind] = counts.get(kind, 0) + int(len(video.frames))
        return counts


def validation_set(sources: list[Video], prepared: list[PreparedVideo], config: Config,
                   past_frames: int) -> ValidationSet:
    """Pseudo-anomalies from the held-out frames of the training videos (``sources`` and
    their ``prepared`` versions, in the same order; ``train.holdout`` says which frames);
    deterministic from train.seed."""
    tails = {}
    starts = holdout_starts([len(ready.frames) for ready in prepared],
                            config.train.holdout_fraction, past_frames,
                            **holdout_of(config.train))
    for video, start in zip(sources, starts, strict=True):
        if start is not None:
            tails[video.name] = video.source.read_bgr(start)
    if not tails:
        raise DataError("no frames are held out for validation: set train.holdout_fraction "
                        "above 0 (0.1 holds out the last tenth of each training video)")
    clips = make_clips(tails, seed=config.train.seed)
    videos = [prepare_images(clip.name, clip.images, config, clip.labels)
              for clip in progress(clips, desc="pseudo-anomalies", unit="clip", leave=False)]
    return ValidationSet(videos, [clip.kind for clip in clips], [clip.source for clip in clips])


def kind_aucs(scores: list[np.ndarray], errors: list[VideoErrors],
              validation: ValidationSet) -> dict[str, float]:
    """AUC of each kind's anomalous frames against every normal validation frame, and
    "pooled" (every kind at once); scores are per clip, aligned with ``errors``."""
    labels = [video.labels[err.frames] for video, err in
              zip(validation.videos, errors, strict=True)]
    pooled_scores, pooled_labels = np.concatenate(scores), np.concatenate(labels)
    kind_of_frame = np.concatenate([[kind] * len(err.frames) for kind, err in
                                    zip(validation.kinds, errors, strict=True)])
    normal = pooled_labels == 0
    result = {"pooled": _auc(pooled_scores, pooled_labels)}
    for kind in KINDS:
        chosen = normal | ((kind_of_frame == kind) & ~normal)
        if (~normal & chosen).any():
            result[kind] = _auc(pooled_scores[chosen], pooled_labels[chosen])
    return result


def _auc(scores: np.ndarray, labels: np.ndarray) -> float:
    return float(roc_auc_score(labels, scores))


def bootstrap_error(scores: list[np.ndarray], errors: list[VideoErrors],
                    validation: ValidationSet, rounds: int = 200, seed: int = 0) -> float:
    """Standard error of the pooled validation AUC, by resampling the source videos (each
    with all its clips) with replacement: frames of one video are not independent."""
    labels = [video.labels[err.frames] for video, err in
              zip(validation.videos, errors, strict=True)]
    sources = sorted(set(validation.sources))
    clips_of = {name: [i for i, s in enumerate(validation.sources) if s == name]
                for name in sources}
    rng = np.random.default_rng(seed)
    aucs = []
    for _ in range(rounds):
        picked = [i for name in rng.choice(sources, len(sources)) for i in clips_of[name]]
        truth = np.concatenate([labels[i] for i in picked])
        if 0 < truth.sum() < truth.size:
            aucs.append(_auc(np.concatenate([scores[i] for i in picked]), truth))
    return float(np.std(aucs)) if len(aucs) > 1 else 0.0


