"""Frame-level metrics under three normalisations.

Normalisations of a video's scores:
  video_max     S / max|S| over the video (thesis eq. 3.21; we divide by max |S|
                because eq. 3.18 can be negative, and dividing by a negative max would
                reverse the video's ranking). Uses the video's future: not causal.
  video_minmax  (S - min) / (max - min) over the video, as MNAD. Not causal.
  none          S as it is: calibrated on training frames only, the one that runs live.

AUCs: micro pools every scored test frame; macro averages the AUCs of the videos
that hold both classes (a video with one class has no AUC of its own). Pixel AUROC pools
every pixel of every scored test frame that has a mask.
"""
from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

NORMALISATIONS = ("video_max", "video_minmax", "none")
# as the README and the pictures name them
NORMALISATION_NAMES = {"video_max": "per-video max (thesis)",
                       "video_minmax": "per-video min-max (MNAD)",
                       "none": "training-calibrated (live)"}
SCORE_NAMES = {"comemory": "co-memory", "mnad": "MNAD", "flow_floor": "flow floor",
               "psnr": "PSNR"}


def score_name(kind: str) -> str:
    """A score kind as people read it: "comemory_causal" -> "co-memory, causal"."""
    for suffix in ("_causal", "_centred"):
        if kind.endswith(suffix):
            base = kind.removesuffix(suffix)
            return f"{SCORE_NAMES.get(base, base)}, {suffix[1:]}"
    return SCORE_NAMES.get(kind, kind)


def normalise(scores: np.ndarray, mode: str) -> np.ndarray:
    """One video's scores (T,) -> normalised (T,)."""
    scores = np.asarray(scores, dtype=np.float64)
    if mode == "none":
        return scores
    if mode == "video_max":
        peak = np.abs(scores).max()
        return scores / peak if peak > 0 else scores
    if mode == "video_minmax":
        span = scores.max() - scores.min()
        return (scores - scores.min()) / span if span > 0 else np.zeros_like(scores)
    raise ValueError(f"unknown normalisation {mode!r}; choose one of {NORMALISATIONS}")


def equal_error_rate(labels: np.ndarray, scores: np.ndarray) -> float:
    """The rate where false positives equal misses, interpolated on the ROC curve."""
    fpr, tpr, _ = roc_curve(labels, scores)
    fnr = 1.0 - tpr
    crossing = int(np.argmax(fpr >= fnr))  # first ROC point past the crossing
    if crossing == 0:
        return float(fpr[0])
    # Linear interpolation of (fpr - fnr) between the two points around zero.
    before, after = fpr[crossing - 1] - fnr[crossing - 1], fpr[crossing] - fnr[crossing]
    share = before / (before - after)
    return float(fpr[crossing - 1] + share * (fpr[crossing] - fpr[crossing - 1]))


def frame_metrics(scores: list[np.ndarray], labels: list[np.ndarray]) -> dict[str, float | None]:
    """Per-video score and 0/1 label arrays (already normalised and aligned) -> metrics.

    Returns micro_auc, macro_auc (None if no video holds both classes), macro_videos
    (how many videos entered it), eer and ap (micro, pooled frames).
    """
    pooled_scores, pooled_labels = np.concatenate(scores), np.concatenate(labels)
    if len(np.unique(pooled_labels)) < 2:
        raise ValueError("the test labels hold one class only: AUC is undefined")
    per_video = [roc_auc_score(truth, score) for score, truth in zip(scores, labels, strict=True)
                 if len(np.unique(truth)) == 2]
    return {
        "micro_auc": float(roc_auc_score(pooled_labels, pooled_scores)),
        "macro_auc": float(np.mean(per_video)) if per_video else None,
        "macro_videos": len(per_video),
        "eer": equal_error_rate(pooled_labels, pooled_scores),
        "ap": float(average_precision_score(pooled_labels, pooled_scores)),
    }


def all_metrics(scores: list[np.ndarray], labels: list[np.ndarray],
                overrides: dict[str, list[np.ndarray]] | None = None) -> dict[str, dict]:
    """frame_metrics of training-calibrated per-video ``scores`` under every normalisation;
    ``overrides`` gives a score's own version of a normalisation (MNAD's min-max)."""
    overrides = overrides or {}
    return {mode: frame_metrics(overrides.get(mode) or [normalise(s, mode) for s in scores],
                                labels)
            for mode in NORMALISATIONS}


def alarm_figures(labels: list[np.ndarray], events: list[list[tuple[int, int]]],
                  fps: float | None) -> dict[str, float | int | None]:
    """What an operator judges alerts by, from each video's 0/1 frame labels (indexed by
    frame) and its events ((first, last) frame): false events (touching no anomalous
    frame) per hour of normal footage (None without ``fps``) and per 1,000 normal frames,
    the share of labelled anomalous spans that at least one event touches, and the median
    delay from a span's start to the first event touching it (0 where one was already
    going on; seconds with ``fps``, else None; frames always)."""
    normal_frames, false_events, all_events, delays, spans = 0, 0, 0, [], 0
    for truth, video_events in zip(labels, events, strict=True):
        truth = np.asarray(truth).astype(bool)
        normal_frames += int((~truth).sum())
        all_events += len(video_events)
        false_events += sum(not truth[start:end + 1].any() for start, end in video_events)
        for first, last in _runs(truth):
            spans += 1
            starts = [start for start, end in video_events if start <= last and end >= first]
            if starts:
                delays.append(max(0, min(starts) - first))
    delay = float(np.median(delays)) if delays else None
    return {
        "events": all_events, "false_events": false_events,
        "false_events_per_hour": (false_events / (normal_frames / fps / 3600)
                                  if fps and normal_frames else None),
        "false_events_per_1000_normal_frames": (1000 * false_events / normal_frames
                                                if normal_frames else None),
        "anomalous_spans": spans,
        "spans_alarmed": len(delays) / spans if spans else None,
        "median_delay_frames": delay,
        "median_delay_seconds": delay / fps if delay is not None and fps else None,
    }


def _runs(truth: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) index of each run of True."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], truth.astype(np.int8), [0]])))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2], strict=True)]

def metrics_text(metrics: dict) -> str:
    """``evaluate``'s metrics as the command prints them: a row per score and
    normalisation, then the macro AUC's videos, pixel AUROC and the alert report."""
    lines = [f"{'score':<17} {'normalisation':<13} {'micro AUC':>9} {'macro AUC':>9} "
             f"{'EER':>6} {'AP':>6}"]
    for kind, by_mode in metrics["scores"].items():
        for mode, m in by_mode.items():
            macro = f"{m['macro_auc']:.3f}" if m["macro_auc"] is not None else "n/a"
            lines.append(f"{kind:<17} {mode:<13} {m['micro_auc']:>9.3f} {macro:>9} "
                         f"{m['eer']:>6.3f} {m['ap']:>6.3f}")
    macro_videos = next(iter(next(iter(metrics["scores"].values())).values()))["macro_videos"]
    lines.append(f"macro AUC: the mean over the {macro_videos} test videos that hold both "
                 "normal and anomalous frames")
    if metrics.get("pixel_auroc") is not None:
        lines.append(f"pixel AUROC (training-calibrated): {metrics['pixel_auroc']:.3f}, over "
                     f"the {metrics.get('pixel_auroc_videos', 'n/a')} test videos with masks")
    alerts = metrics.get("alerts")
    if alerts:
        lines.append(f"alert threshold ({alerts['score']}, promised for "
                     f"{alerts['false_alarm_rate']:.1%} of normal frames): "
                     f"{alerts['normal_frames_flagged']:.1%} of normal and "
                     f"{alerts['anomalous_frames_flagged']:.1%} of anomalous test frames above it")
        if alerts.get("promise"):
            lines.append(f"the promise: {alerts['promise']}")
        per_hour = alerts.get("false_events_per_hour")
        rate = (f"{per_hour:.1f} an hour of normal footage" if per_hour is not None else
                f"{alerts.get('false_events_per_1000_normal_frames', 0):.1f} per 1,000 "
                "normal frames (--fps gives them per hour)")
        if "spans_alarmed" in alerts and alerts["spans_alarmed"] is not None:
            delay, frames = alerts["median_delay_seconds"], alerts["median_delay_frames"]
            delay_text = (f"{delay:.1f} s" if delay is not None else
                          f"{frames:.0f} frames" if frames is not None else "none")
            lines.append(f"events: {alerts['events']}, {alerts['false_events']} false "
                         f"({rate}); {alerts['spans_alarmed']:.0%} of "
                         f"{alerts['anomalous_spans']} anomalous spans alarmed, median "
                         f"delay {delay_text}")
    return "\n".join(lines)

class PixelAUROC:
    """Pixel-level AUROC accumulated frame by frame over score histograms.

    Holding every pixel of a test set at once is out of reach (ShanghaiTech has about
    16 billion), so scores are counted into ``bins`` equal bins over [low, high] for
    anomalous and normal pixels, and the AUROC is read off the counts with ties inside a
    bin counted half, as the exact AUROC counts tied scores. With 2^16 bins it differs
    from the exact figure by at most the share of (anomalous, normal) pixel pairs that fall
    into one bin.
    """

    def __init__(self, low: float, high: float, bins: int = 65536):
        if not high > low:
            high = low + 1.0  # every score equal: one bin holds them all
        self.edges = (low, high)
        self.bins = bins
        self.positive = np.zeros(bins, dtype=np.int64)
        self.negative = np.zeros(bins, dtype=np.int64)

    def add(self, scores: np.ndarray, masks: np.ndarray) -> None:
        """scores (float) and masks (bool) of the same shape, any number of frames."""
        low, high = self.edges
        index = ((scores - low) / (high - low) * self.bins).astype(np.int64)
        index = np.clip(index, 0, self.bins - 1).ravel()
        masks = masks.ravel()
        self.positive += np.bincount(index[masks], minlength=self.bins)
        self.negative += np.bincount(index[~masks], minlength=self.bins)

    def value(self) -> float | None:
        """The AUROC, or None where the masks hold one class only."""
        positives, negatives = self.positive.sum(), self.negative.sum()
        if positives == 0 or negatives == 0:
            return None
        positive = self.positive.astype(np.float64)  # products overflow int64 on big sets
        negatives_below = np.cumsum(self.negative) - self.negative
        wins = (positive * negatives_below).sum() + 0.5 * (positive * self.negative).sum()
        return float(wins / (float(positives) * float(negatives)))
