"""Validation without test labels, and every score choice made on it.

    comemory validate --checkpoint runs/ped2/checkpoint.pt --data DIR

The validation set is made from training data only: each training video's held-out tail
(``train.holdout_fraction``, never trained on) and pseudo-anomalies made from those same
frames (``comemory.data.pseudo_anomalies``: speed, foreign object, dropped object), all run
through the pipeline like any video. Its AUC (training-calibrated, micro: every validation
frame pooled) is reported per kind and pooled.

At the end of ``train`` (and with ``comemory validate --choose``) the score settings are
chosen by that AUC: patch size, formula (``thesis`` or ``zscore``), lambda_S, the causal
window (what ``detect`` outputs, so it decides the others) and, separately, the centred
sigma for offline reports. Then the alert threshold is set on the held-out normal frames
under the chosen score. Test labels are never read here.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from comemory import storage
from comemory.alerts import summarise_normal_scores, threshold_for
from comemory.checkpoint import load_checkpoint, model_from_checkpoint
from comemory.config import Config, ScoreConfig
from comemory.data.datasets import Video
from comemory.data.prepared import (
    PreparedVideo,
    holdout_start,
    prepare_images,
    prepare_split,
    read_split,
    split_holdout,
)
from comemory.data.pseudo_anomalies import KINDS, make_clips
from comemory.errors import DataError
from comemory.progress import progress
from comemory.scoring import (
    Calibration,
    VideoErrors,
    causal_mean,
    centred_gaussian,
    flow_floor_errors,
    score_statistics,
    scorer_for,
    video_errors,
    video_errors_per_patch,
)

PATCH_SIZES = (4, 8, 16)
LAMBDAS = (0.0, 0.1, 0.3, 1.0, 3.0)  # lambda_S (thesis) or the frame weight (zscore)
CAUSAL_WINDOWS = (1, 3, 5, 9)
CENTRED_SIGMAS = (0.0, 1.0, 3.0, 5.0)
# Choosing among some 120 settings on fewer normal frames than this fits their noise (the
# synthetic demo holds out 16; Ped2 about 270): the configured settings are kept instead.
MIN_NORMAL_FRAMES = 100

# (videos, score settings, patch sizes, progress label) -> {patch size: errors per video}
ErrorFunction = Callable[[list[PreparedVideo], ScoreConfig, list[int], str],
                         dict[int, list[VideoErrors]]]


@dataclass
class ValidationSet:
    """Prepared validation clips (each with labels) and each clip's kind ("normal" or one
    of ``KINDS``)."""

    videos: list[PreparedVideo]
    kinds: list[str]

    def frame_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for video, kind in zip(self.videos, self.kinds, strict=True):
            counts[kind] = counts.get(kind, 0) + int(len(video.frames))
        return counts


def validation_set(sources: list[Video], prepared: list[PreparedVideo], config: Config,
                   past_frames: int) -> ValidationSet:
    """Pseudo-anomalies from the held-out tail of each training video (``sources`` and
    their ``prepared`` versions, in the same order); deterministic from train.seed."""
    tails = {}
    for video, ready in zip(sources, prepared, strict=True):
        start = holdout_start(len(ready.frames), config.train.holdout_fraction, past_frames)
        if start is not None:
            tails[video.name] = video.source.read_bgr(start)
    if not tails:
        raise DataError("no frames are held out for validation: set train.holdout_fraction "
                        "above 0 (0.1 holds out the last tenth of each training video)")
    clips = make_clips(tails, seed=config.train.seed)
    videos = [prepare_images(clip.name, clip.images, config, clip.labels)
              for clip in progress(clips, desc="pseudo-anomalies", unit="clip", leave=False)]
    return ValidationSet(videos, [clip.kind for clip in clips])


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


def model_errors(model: torch.nn.Module) -> ErrorFunction:
    """The score parts of ``model`` on prepared videos, for ``fit_scores``."""
    def errors(videos: list[PreparedVideo], score: ScoreConfig, patch_sizes: list[int],
               desc: str) -> dict[int, list[VideoErrors]]:
        return video_errors_per_patch(model, videos, score, patch_sizes, desc=desc)
    return errors


def floor_errors(videos: list[PreparedVideo], score: ScoreConfig, patch_sizes: list[int],
                 desc: str) -> dict[int, list[VideoErrors]]:
    """The training-free floor's parts, for ``fit_scores``."""
    return {patch: flow_floor_errors(videos, replace(score, patch_size=patch))
            for patch in patch_sizes}


def fit_scores(errors_of: ErrorFunction, architecture: str, training: list[PreparedVideo],
               held_out: list[PreparedVideo], validation: ValidationSet | None,
               config: Config) -> tuple[ScoreConfig, Calibration, dict]:
    """Training statistics, the score settings (chosen on ``validation`` when
    ``score.choose_on_validation``, else as configured), and the alert threshold.

    Returns (score settings, calibration with threshold, validation report). Without a
    validation set the configured settings are kept and the report says why.
    """
    choose, why_not = _may_choose(config, validation)
    candidates = _patch_sizes(config) if choose else [config.score.patch_size]
    rows, statistics, best = [], {}, None
    train_errors = errors_of(training, config.score, candidates, "calibrating")
    clip_errors_by_patch = (errors_of(validation.videos, config.score, candidates, "validating")
                            if validation is not None else {})
    for patch in candidates:
        score = replace(config.score, patch_size=patch)
        statistics[patch] = score_statistics(train_errors[patch], architecture)
        if validation is None:
            best = score
            break
        clip_errors = clip_errors_by_patch[patch]
        for option in (_formulas(score, architecture) if choose else [score]):
            scorer = scorer_for(architecture, option)
            raw = [scorer.frame_scores(e, statistics[patch]) for e in clip_errors]
            for window in (CAUSAL_WINDOWS if choose else [option.causal_window]):
                causal = [causal_mean(s, window) for s in raw]
                aucs = kind_aucs(causal, clip_errors, validation)
                rows.append({**_settings(option), "causal_window": window, "causal": aucs})
                if best is None or aucs["pooled"] > best[0]:
                    best = (aucs["pooled"], replace(option, causal_window=window),
                            clip_errors, raw)
    if validation is None:
        report = {"skipped": "no frames held out (train.holdout_fraction 0): nothing to "
                             "validate on; the configured score settings are kept"}
        chosen, normal = best, None
    else:
        _, chosen, clip_errors, raw = best
        chosen, report = _finish_report(chosen, raw, clip_errors, validation, rows, choose,
                                        why_not)
        if architecture == "comemory":  # the term alignment ablation, raw scores
            scorer = scorer_for(architecture, chosen)
            aligned = [scorer.aligned_scores(e, statistics[chosen.patch_size])
                       for e in clip_errors]
            report["aligned_raw_auc"] = kind_aucs(aligned, clip_errors, validation)
        normal = _normal_scores(raw, clip_errors, validation, chosen.causal_window)
    calibration = statistics[chosen.patch_size]
    if normal is None:  # no held-out frames: the training frames set it, optimistically
        normal = _held_out_scores(errors_of, architecture, training, held_out, chosen,
                                  calibration)
    _set_threshold(calibration, normal, chosen, held_out)
    return chosen, calibration, report


def _may_choose(config: Config, validation: ValidationSet | None) -> tuple[bool, str]:
    """(whether to choose the score settings on ``validation``, and if not, why)."""
    if not config.score.choose_on_validation:
        return False, "not chosen (score.choose_on_validation is off): settings as configured"
    if validation is None:
        return False, "no validation set"
    normal = validation.frame_counts().get("normal", 0)
    if normal < MIN_NORMAL_FRAMES:
        return False, (f"not chosen: {normal} held-out normal frames, fewer than "
                       f"{MIN_NORMAL_FRAMES} (raise train.holdout_fraction): settings as "
                       "configured")
    return True, ""


def _finish_report(chosen: ScoreConfig, raw: list[np.ndarray], clip_errors: list[VideoErrors],
                   validation: ValidationSet, rows: list[dict], choose: bool,
                   why_not: str = "settings as configured") -> tuple[ScoreConfig, dict]:
    """Pick the centred sigma for the chosen settings; AUCs raw, causal and centred."""
    sigmas = CENTRED_SIGMAS if choose else [chosen.centred_sigma]
    centred = {sigma: kind_aucs([centred_gaussian(s, sigma) for s in raw], clip_errors,
                                validation) for sigma in sigmas}
    sigma = max(sigmas, key=lambda s: centred[s]["pooled"])  # first (smallest) on ties
    chosen = replace(chosen, centred_sigma=sigma)
    report = {
        "chosen": _settings(chosen) | {"causal_window": chosen.causal_window,
                                       "centred_sigma": sigma},
        "chosen_by": "pooled validation AUC of the causal score (what detect outputs); "
                     "centred sigma by the pooled AUC of the centred score"
                     if choose else why_not,
        "auc": {"raw": kind_aucs(raw, clip_errors, validation),
                "causal": kind_aucs([causal_mean(s, chosen.causal_window) for s in raw],
                                    clip_errors, validation),
                "centred": centred[sigma]},
        "frames": validation.frame_counts(),
        "normalisation": "none (training-calibrated), micro (validation frames pooled)",
        "grid": rows,
        "centred_grid": {str(s): a for s, a in centred.items()},
        "validated_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    return chosen, report


def _normal_scores(raw: list[np.ndarray], clip_errors: list[VideoErrors],
                   validation: ValidationSet, window: int) -> np.ndarray:
    """The held-out normal frames' causal scores (the "normal" clips are those frames)."""
    return np.concatenate([causal_mean(s, window) for s, kind in
                           zip(raw, validation.kinds, strict=True) if kind == "normal"])


def _held_out_scores(errors_of: ErrorFunction, architecture: str,
                     training: list[PreparedVideo], held_out: list[PreparedVideo],
                     score: ScoreConfig, calibration: Calibration) -> np.ndarray:
    scorer = scorer_for(architecture, score)
    frames = held_out or training
    errors = errors_of(frames, score, [score.patch_size], "held-out frames")[score.patch_size]
    return np.concatenate([causal_mean(scorer.frame_scores(e, calibration), score.causal_window)
                           for e in errors])


def _set_threshold(calibration: Calibration, normal: np.ndarray, score: ScoreConfig,
                   held_out: list[PreparedVideo]) -> None:
    calibration.false_alarm_rate = score.false_alarm_rate
    calibration.threshold = threshold_for(normal, score.false_alarm_rate)
    quantiles = (0.5, 0.9, 0.95, 0.99, 0.999)
    source = (f"{normal.size} held-out normal frames" if held_out
              else "training frames (no frames held out: optimistic)")
    calibration.extra = {
        "score_mean": float(normal.mean()), "score_std": float(normal.std()),
        "score_quantiles": {str(q): float(np.quantile(normal, q)) for q in quantiles},
        "frames": int(normal.size), "threshold_source": source,
        "normal_scores": summarise_normal_scores(normal),
        "calibrated_at": time.strftime("%Y-%m-%dT%H:%M:%S")}


def _patch_sizes(config: Config) -> list[int]:
    """Patches of 4, 8 and 16 pixels and the configured size, where they fit the grid: a
    fixed list, so that choosing again on a checkpoint does not drift from its last choice."""
    size, patch = config.model.image_size, config.score.patch_size
    return sorted({p for p in (*PATCH_SIZES, patch) if 2 <= p <= size // 2})


def _formulas(score: ScoreConfig, architecture: str) -> list[ScoreConfig]:
    """Every formula and appearance weight the architecture's scorer reads."""
    if architecture != "comemory":
        return [score]
    options = [replace(score, formula="thesis", lambda_s=w) for w in LAMBDAS]
    options += [replace(score, formula="zscore", zscore_frame_weight=w) for w in LAMBDAS]
    return options


def _settings(score: ScoreConfig) -> dict:
    keys = ("patch_size", "formula", "lambda_s", "zscore_frame_weight")
    return {k: v for k, v in asdict(score).items() if k in keys}


def write_report(path: Path, report: dict) -> None:
    storage.write_text(path, json.dumps(report, indent=2))


def validate_checkpoint(checkpoint: str | Path, data_root: str | Path,
                        out_dir: str | Path | None = None, cache_dir: str | Path | None = None,
                        dataset: str = "frames", choose: bool = False) -> dict:
    """Validation AUC of a trained checkpoint on its training data's held-out frames and
    pseudo-anomalies; written to ``out_dir``/validation.json (default: beside the
    checkpoint) and into the checkpoint. With ``choose``, the score settings and threshold
    are chosen again on it and stored in the checkpoint too. Returns the report."""
    state = load_checkpoint(checkpoint)
    model, config, calibration = model_from_checkpoint(state, checkpoint)
    sources = read_split(data_root, "training", dataset=dataset)
    whole = prepare_split(sources, "training", config, cache_dir)
    training, held_out = split_holdout(whole, config.train.holdout_fraction, model.past_frames)
    validation = validation_set(sources, whole, config, model.past_frames)
    architecture = config.model.architecture
    if choose:
        config.score.choose_on_validation = True
        config.score, calibration, report = fit_scores(model_errors(model), architecture,
                                                       training, held_out, validation, config)
        state["config"], state["calibration"] = config.to_dict(), calibration.to_dict()
    else:
        clip_errors = video_errors(model, validation.videos, config.score, desc="validating")
        scorer = scorer_for(architecture, config.score)
        raw = [scorer.frame_scores(e, calibration) for e in clip_errors]
        _, report = _finish_report(config.score, raw, clip_errors, validation, [], False,
                                   "settings as stored in the checkpoint")
    state["validation"] = report
    storage.save_torch(checkpoint, state)
    write_report(Path(out_dir or Path(checkpoint).parent) / "validation.json", report)
    return report


def validate_floor(config: Config, data_root: str | Path, cache_dir: str | Path | None = None,
                   dataset: str = "frames", past_frames: int = 2) -> tuple[ScoreConfig, dict]:
    """The training-free floor on the same validation set as a model: its patch size and
    smoothing chosen there (when ``score.choose_on_validation``). Returns (settings,
    report)."""
    sources = read_split(data_root, "training", dataset=dataset)
    whole = prepare_split(sources, "training", config, cache_dir)
    training, held_out = split_holdout(whole, config.train.holdout_fraction, past_frames)
    validation = validation_set(sources, whole, config, past_frames)
    score, _, report = fit_scores(floor_errors, "flow_floor", training, held_out, validation,
                                  config)
    return score, report
