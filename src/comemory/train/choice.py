"""Every score choice made on the validation set, and the alert threshold.

The validation set (``comemory.train.validation_set``) is made from training data only:
the held-out frames, never trained on (each training video's tail, or whole training
videos: ``train.holdout`` and ``train.holdout_fraction``), and pseudo-anomalies made from
those same frames
(``comemory.data.pseudo_anomalies``: speed, foreign object, dropped object), all run
through the pipeline like any video. Its AUC (training-calibrated, micro: every validation
frame pooled) is reported per kind and pooled.

At the end of ``train`` (and with ``comemory validate --choose``) the score settings are
chosen by that AUC: patch size, formula (``thesis`` or ``zscore``), lambda_S, the causal
window (what ``detect`` outputs, so it decides the others) and, separately, the centred
sigma for offline reports: by default the simplest setting within one bootstrap standard
error of the best (``choose.rule``). Then the alert threshold is set on the
held-out normal frames under the chosen score. Test labels are never read here.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, replace

import numpy as np
import torch

from comemory.alerts import calibrate_threshold
from comemory.config import Config, ScoreConfig
from comemory.data.model_input import PreparedVideo
from comemory.scoring import (
    Calibration,
    ErrorStatistics,
    VideoErrors,
    causal_mean,
    centred_gaussian,
    flow_floor_errors,
    score_statistics,
    scorer_for,
    video_errors_per_patch,
)
from comemory.scoring.calibration import fit_motion_model
from comemory.train.validation_set import ValidationSet, bootstrap_error, kind_aucs

PATCH_SIZES = (4, 8, 16)
LAMBDAS = (0.0, 0.1, 0.3, 1.0, 3.0)  # lambda_S (thesis) or the frame weight (zscore)
CAUSAL_WINDOWS = (1, 3, 5, 9)
CENTRED_SIGMAS = (0.0, 1.0, 3.0, 5.0)
# Choosing among some 120 settings on fewer normal frames than this fits their noise (the
# synthetic demo holds out 16; Ped2 about 270): the configured settings are kept instead.
MIN_NORMAL_FRAMES = 100

# (videos, score settings, patch sizes, progress label, keep the error maps)
#   -> {patch size: errors per video}
ErrorFunction = Callable[[list[PreparedVideo], ScoreConfig, list[int], str, bool],
                         dict[int, list[VideoErrors]]]


def model_errors(model: torch.nn.Module) -> ErrorFunction:
    """The score parts of ``model`` on prepared videos, for ``fit_scores``."""
    def errors(videos: list[PreparedVideo], score: ScoreConfig, patch_sizes: list[int],
               desc: str, keep_maps: bool) -> dict[int, list[VideoErrors]]:
        return video_errors_per_patch(model, videos, score, patch_sizes, desc=desc,
                                      keep_maps=keep_maps)
    return errors


def floor_errors(videos: list[PreparedVideo], score: ScoreConfig, patch_sizes: list[int],
                 desc: str, keep_maps: bool) -> dict[int, list[VideoErrors]]:
    """The training-free floor's parts, for ``fit_scores``."""
    return {patch: flow_floor_errors(videos, replace(score, patch_size=patch),
                                     keep_maps=keep_maps)
            for patch in patch_sizes}


def fit_scores(errors_of: ErrorFunction, architecture: str, training: list[PreparedVideo],
               held_out: list[PreparedVideo], validation: ValidationSet | None,
               config: Config) -> tuple[ScoreConfig, Calibration, dict]:
    """Training statistics, the score settings (chosen on ``validation`` when
    ``choose.on_validation``, else as configured), and the alert threshold.

    Returns (score settings, calibration with threshold, validation report). Without a
    validation set the configured settings are kept and the report says why.
    """
    choose, why_not = _may_choose(config, validation)
    patches = _patch_sizes(config) if choose else [config.score.patch_size]
    offer = config.choose.offer_location
    maps = _needs_maps(config.score, architecture, choose, offer)
    train_errors = errors_of(training, config.score, patches, "calibrating", maps)
    statistics = {patch: score_statistics(train_errors[patch], architecture)
                  for patch in patches}
    _share_motion_model(statistics, train_errors[patches[0]])
    if validation is None:
        chosen = config.score
        calibration = statistics[chosen.patch_size]
        # a fold run's held-out videos set the threshold; with none held out, the
        # training frames do, optimistically
        normal = _held_out_scores(errors_of, architecture, training, held_out, chosen,
                                  calibration)
        _set_threshold(calibration, normal, config, held_out)
        why = ("a cross-fitting fold (comemory calibrate): its held-out videos only set "
               "its threshold" if held_out else "no frames held out (train.holdout_fraction "
               "0): nothing to validate on")
        return chosen, calibration, {"skipped": f"{why}; the configured score settings are kept"}
    errors_by_patch = errors_of(validation.videos, config.score, patches, "validating", maps)
    grid = _grid(architecture, errors_by_patch, statistics, validation, config.score,
                 choose, offer, config.choose.offer_motion_model)
    best, best_aucs = max(grid, key=lambda item: item[1]["pooled"])
    error = _bootstrap_error_of(best, architecture, errors_by_patch, statistics, validation)
    rule = config.choose.rule if choose else "best"
    chosen, near = pick_setting(grid, error, rule)
    spread = {"rule": rule, "best_pooled": best_aucs["pooled"],
              "bootstrap_standard_error": error, "settings_within_one_error": near}
    clip_errors = errors_by_patch[chosen.patch_size]
    scorer = scorer_for(architecture, chosen)
    raw = [scorer.frame_scores(e, statistics[chosen.patch_size]) for e in clip_errors]
    tolerance = error if rule == "one_se" else 0.0
    chosen, report = finish_report(chosen, raw, clip_errors, validation,
                                    [{**_settings(o), "causal_window": o.causal_window,
                                      "causal": a} for o, a in grid], choose, why_not,
                                    tolerance)
    report["spread"] = spread
    if (architecture == "comemory" and chosen.formula != "location"
            and chosen.motion_model == "off"):  # term alignment, raw
        aligned = [scorer.aligned_scores(e, statistics[chosen.patch_size])
                   for e in clip_errors]
        report["aligned_raw_auc"] = kind_aucs(aligned, clip_errors, validation)
    calibration = statistics[chosen.patch_size]
    _set_threshold(calibration, _normal_scores(raw, clip_errors, validation,
                                               chosen.causal_window), config, held_out)
    return chosen, calibration, report


def _share_motion_model(statistics: dict[int, Calibration], errors: list[VideoErrors]) -> None:
    """The training objects' motion model (``score.motion_model``), fitted once on
    ``errors`` and given to every patch size's co-memory statistics: the objects' motion
    is the same at every patch size."""
    model = fit_motion_model(errors)
    for calibration in statistics.values():
        if isinstance(calibration.statistics, ErrorStatistics):
            calibration.statistics.motion_model = model


def _grid(architecture: str, errors_by_patch: dict[int, list[VideoErrors]],
          statistics: dict[int, Calibration], validation: ValidationSet, score: ScoreConfig,
          choose: bool, offer_location: bool, offer_motion_model: bool = False
          ) -> list[tuple[ScoreConfig, dict[str, float]]]:
    """Every candidate setting (each patch, formula, weight and causal window; only the
    configured one without ``choose``) with its causal validation AUCs. The motion model
    is offered where the training objects gave one."""
    grid = []
    for patch, clip_errors in errors_by_patch.items():
        base = replace(score, patch_size=patch)
        fitted = getattr(statistics[patch].statistics, "motion_model", None) is not None
        options = (_formulas(base, architecture, offer_location, offer_motion_model and fitted)
                   if choose else [base])
        for option in options:
            scorer = scorer_for(architecture, option)
            raw = [scorer.frame_scores(e, statistics[patch]) for e in clip_errors]
            for window in (CAUSAL_WINDOWS if choose else [option.causal_window]):
                aucs = kind_aucs([causal_mean(s, window) for s in raw], clip_errors,
                                 validation)
                grid.append((replace(option, causal_window=window), aucs))
    return grid


def pick_setting(grid: list[tuple[ScoreConfig, dict[str, float]]], error: float,
                 rule: str) -> tuple[ScoreConfig, int]:
    """The setting ``rule`` picks from ``grid`` (settings with their validation AUCs), and
    how many settings were within ``error`` of the best pooled AUC.

    ``best``: the highest pooled AUC (the first on ties). ``one_se``: the simplest setting
    whose AUC is within one standard error of the best (the one-standard-error rule): the
    frame-wide statistics before per-pixel ones (the ``location`` formula), then the
    smallest appearance weight, then the shortest causal window, then the highest AUC;
    the network's own score before the motion model's (``score.motion_model``).
    Differences inside that spread are noise of the validation set, and choosing among
    them by AUC fits that noise.
    """
    best, best_aucs = max(grid, key=lambda item: item[1]["pooled"])  # first of the maxima
    near = [item for item in grid if item[1]["pooled"] >= best_aucs["pooled"] - error]
    if rule == "best":
        return best, len(near)
    chosen, _ = min(near, key=lambda item: (item[0].formula == "location",
                                            item[0].motion_model != "off",
                                            _appearance_weight(item[0]),
                                            item[0].causal_window, -item[1]["pooled"]))
    return chosen, len(near)


def _bootstrap_error_of(setting: ScoreConfig, architecture: str,
                        errors_by_patch: dict[int, list[VideoErrors]],
                        statistics: dict[int, Calibration], validation: ValidationSet) -> float:
    """The bootstrap standard error of ``setting``'s pooled causal validation AUC."""
    scorer = scorer_for(architecture, setting)
    errors = errors_by_patch[setting.patch_size]
    scores = [causal_mean(scorer.frame_scores(e, statistics[setting.patch_size]),
                          setting.causal_window) for e in errors]
    return bootstrap_error(scores, errors, validation)


def _appearance_weight(score: ScoreConfig) -> float:
    """How much a setting leans on the appearance term (0: flow only, or not a choice)."""
    if score.formula == "zscore":
        return score.zscore_frame_weight
    return score.lambda_s


def _may_choose(config: Config, validation: ValidationSet | None) -> tuple[bool, str]:
    """(whether to choose the score settings on ``validation``, and if not, why)."""
    if not config.choose.on_validation:
        return False, "not chosen (choose.on_validation is off): settings as configured"
    if validation is None:
        return False, "no validation set"
    normal = validation.frame_counts().get("normal", 0)
    if normal < MIN_NORMAL_FRAMES:
        return False, (f"not chosen: {normal} held-out normal frames, fewer than "
                       f"{MIN_NORMAL_FRAMES} (raise train.holdout_fraction): settings as "
                       "configured")
    return True, ""


def finish_report(chosen: ScoreConfig, raw: list[np.ndarray], clip_errors: list[VideoErrors],
                   validation: ValidationSet, rows: list[dict], choose: bool,
                   why_not: str = "settings as configured",
                   tolerance: float = 0.0) -> tuple[ScoreConfig, dict]:
    """Pick the centred sigma for the chosen settings (the smallest within ``tolerance``
    of the best pooled AUC); AUCs raw, causal and centred."""
    sigmas = CENTRED_SIGMAS if choose else [chosen.centred_sigma]
    centred = {sigma: kind_aucs([centred_gaussian(s, sigma) for s in raw], clip_errors,
                                validation) for sigma in sigmas}
    top = max(centred[s]["pooled"] for s in sigmas)
    sigma = min(s for s in sigmas if centred[s]["pooled"] >= top - tolerance)
    chosen = replace(chosen, centred_sigma=sigma)
    rule = ("the simplest setting within one bootstrap standard error of the best pooled "
            "validation AUC" if tolerance > 0 else "the best pooled validation AUC")
    report = {
        "chosen": _settings(chosen) | {"causal_window": chosen.causal_window,
                                       "centred_sigma": sigma},
        "chosen_by": f"{rule} of the causal score (what detect outputs); the centred "
                     "sigma likewise by the centred score" if choose else why_not,
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
                   validation: ValidationSet, window: int) -> list[np.ndarray]:
    """The held-out normal frames' causal scores, one array per held-out video or part
    (the "normal" clips are those frames)."""
    return [causal_mean(s, window) for s, kind in
            zip(raw, validation.kinds, strict=True) if kind == "normal"]


def _held_out_scores(errors_of: ErrorFunction, architecture: str,
                     training: list[PreparedVideo], held_out: list[PreparedVideo],
                     score: ScoreConfig, calibration: Calibration) -> list[np.ndarray]:
    scorer = scorer_for(architecture, score)
    frames = held_out or training
    errors = errors_of(frames, score, [score.patch_size], "held-out frames",
                       scorer.reads_maps)[score.patch_size]
    return [causal_mean(scorer.frame_scores(e, calibration), score.causal_window)
            for e in errors]


def _set_threshold(calibration: Calibration, normal: list[np.ndarray], config: Config,
                   held_out: list[PreparedVideo]) -> None:
    frames = sum(len(scores) for scores in normal)
    if not held_out:
        source = "training frames (no frames held out: optimistic)"
    elif config.train.holdout == "tail" and not config.train.folds:
        source = (f"{frames} held-out frames, the tails of {len(normal)} training videos "
                  "(next to frames trained on: optimistic)")
    else:
        source = f"{frames} frames of {len(normal)} held-out training videos"
    calibrate_threshold(calibration, normal, config.alert.false_alarm_rate, source,
                        config.alert.threshold_by, config.alert.confidence)


def _patch_sizes(config: Config) -> list[int]:
    """Patches of 4, 8 and 16 pixels and the configured size, where they fit the grid: a
    fixed list, so that choosing again on a checkpoint does not drift from its last choice."""
    size, patch = config.model.network_size, config.score.patch_size
    return sorted({p for p in (*PATCH_SIZES, patch) if 2 <= p <= size // 2})


def _formulas(score: ScoreConfig, architecture: str, offer_location: bool = False,
              offer_motion_model: bool = False) -> list[ScoreConfig]:
    """Every formula and appearance weight the architecture's scorer reads (the ``zscore``
    formula alone where a motion prior or the motion model is added: the others have no
    place for it; the ``location`` formula where ``offer_location`` (choose.offer_location)
    or where it is the one set; the motion model alone and added to each zscore weight
    where ``offer_motion_model``; nothing else where the motion model alone is set)."""
    if architecture != "comemory" or score.motion_model == "alone":
        return [score]
    options = [replace(score, formula="zscore", zscore_frame_weight=w) for w in LAMBDAS]
    if score.zscore_motion_weight > 0 or score.motion_model == "added":
        return options
    if offer_motion_model:
        options += [replace(o, motion_model="added") for o in options]
        options.append(replace(score, motion_model="alone"))
    options = [replace(score, formula="thesis", lambda_s=w) for w in LAMBDAS] + options
    if score.perspective:  # location weighs each pixel by its own errors instead
        return options
    if offer_location or score.formula == "location":  # a formula set is never dropped
        options += [replace(score, formula="location", lambda_s=w) for w in LAMBDAS]
    return options


def _needs_maps(score: ScoreConfig, architecture: str, choose: bool,
                offer_location: bool = False) -> bool:
    """Whether the frames' error maps must be kept: where the configured score reads them,
    or where choosing offers one that does (``_formulas``)."""
    if choose:
        return any(scorer_for(architecture, o).reads_maps
                   for o in _formulas(score, architecture, offer_location))
    return scorer_for(architecture, score).reads_maps


def _settings(score: ScoreConfig) -> dict:
    keys = ("patch_size", "formula", "lambda_s", "zscore_frame_weight", "zscore_motion_weight",
            "motion_model")
    return {k: v for k, v in asdict(score).items() if k in keys}


