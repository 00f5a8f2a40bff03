"""Evaluation: score every test frame and measure it.

    comemory evaluate --checkpoint runs/tiny/checkpoint.pt --root DIR --out runs/tiny/eval

Writes metrics.json (micro/macro AUC, EER, AP for each score under the normalisations of
``comemory.evaluate.metrics``, and the pixel AUROC where the dataset has masks), scores.csv (one
row per scored frame), roc.png, score_curves.png and, where the dataset has masks,
heatmaps.png (the highest-scoring frame of each video, its score map, the mask outlined).

Scores: a co-memory checkpoint gives "comemory" (its ``score.formula``: eq. 3.18 or
"zscore") and "psnr"; an MNAD checkpoint gives "mnad" (PSNR + feature distance) and
"psnr"; ``evaluate_floor`` gives "flow_floor", the training-free motion score, with no
checkpoint at all. Each main score also comes as "<name>_causal" and "<name>_centred"
where the checkpoint's settings (chosen on validation) smooth it; every table names them.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from comemory import storage
from comemory.alerts import AlertPolicy
from comemory.checkpoint import load_checkpoint, model_from_checkpoint
from comemory.config import Config, FlowConfig
from comemory.data.cache import load_split
from comemory.data.flow import flow_identity
from comemory.data.frames import from_model_grid, to_model_grid
from comemory.data.model_input import PreparedVideo
from comemory.distributed import resolve_device
from comemory.errors import CheckpointError, DataError
from comemory.evaluate import plots
from comemory.evaluate.metrics import (
    NORMALISATION_NAMES,
    NORMALISATIONS,
    PixelAUROC,
    alarm_figures,
    all_metrics,
    normalise,
    score_name,
)
from comemory.progress import progress
from comemory.scoring import (
    Calibration,
    FloorScorer,
    Scorer,
    VideoErrors,
    flow_floor_errors,
    mnad_scores_video_minmax,
    score_statistics,
    scorer_for,
    smooth,
    video_errors,
)


def evaluate(checkpoint: str | Path, data_root: str | Path, out_dir: str | Path,
             cache_dir: str | Path | None = None, labels_path: str | Path | None = None,
             flow: FlowConfig | None = None, dataset: str = "frames",
             device: str = "auto", fps: float | None = None) -> dict[str, Any]:
    """Score the test split of ``data_root`` (``dataset`` layout), write the results and
    return the metrics dict. The network runs on ``device`` (auto: a GPU if there is one);
    ``fps``, the footage's frame rate, turns the alert report's false events into events
    per hour.

    ``flow`` may point a ``flo`` model at another folder of flows; a different extractor
    than the one the model was trained with is refused.
    """
    state = load_checkpoint(checkpoint)
    model, config, calibration = model_from_checkpoint(state, checkpoint,
                                                       resolve_device(device))
    if flow is not None:
        if flow_identity(flow) != state["flow"]:
            raise CheckpointError(f"{checkpoint}: trained on {state['flow']} flows, refusing to "
                                  f"score with {flow_identity(flow)}; a model's flow errors are "
                                  "only meaningful with the extractor it learned")
        config.flow = flow
    if model is None:  # the floor's checkpoint: its chosen settings and calibration
        return evaluate_floor(config, data_root, out_dir, cache_dir, labels_path, dataset,
                              calibration=calibration,
                              record={"checkpoint": str(checkpoint), "fps": fps,
                                      "validation": state.get("validation")})
    videos = _labelled_test_videos(data_root, config, cache_dir, labels_path, dataset)
    architecture = config.model.architecture
    scorer = scorer_for(architecture, config.score)
    errors = video_errors(model, videos, config.score,
                          keep_maps=_has_masks(videos) or scorer.reads_maps)
    kinds = _smoothed_kinds(architecture, [scorer.frame_scores(e, calibration) for e in errors],
                            config)
    overrides = ({"mnad": {"video_minmax": [mnad_scores_video_minmax(e) for e in errors]}}
                 if architecture == "mnad" else {})
    kinds["psnr"] = [-e.psnr for e in errors]  # low PSNR = anomalous
    record = {"checkpoint": str(checkpoint), "flow": state["flow"],
              "architecture": architecture, "score_settings": _score_settings(config),
              "validation": state.get("validation"), "fps": fps}
    return _report(videos, errors, kinds, overrides, scorer, calibration, config, data_root,
                   out_dir, record)


def evaluate_floor(config: Config, data_root: str | Path, out_dir: str | Path,
                   cache_dir: str | Path | None = None, labels_path: str | Path | None = None,
                   dataset: str = "frames", past_frames: int = FloorScorer.PAST_FRAMES,
                   calibration: Calibration | None = None,
                   record: dict[str, Any] | None = None) -> dict[str, Any]:
    """The training-free floor: score each test frame by its most moving patch (mean flow
    magnitude over ``config.score.patch_size`` patches of ``config.flow`` flows).

    Same outputs as ``evaluate``, with the one score "flow_floor". A learned model that
    does not beat it has learned nothing the flow extractor did not already know. With
    ``score.perspective`` the floor reads the row speeds of ``calibration`` (from
    ``validate_floor`` or a floor checkpoint), or, where none is given, of every training
    video. ``record`` adds to what metrics.json says of the run (a checkpoint's path).
    """
    scorer = scorer_for("flow_floor", config.score)
    if calibration is None:
        calibration = (floor_calibration(config, data_root, cache_dir, dataset, past_frames)
                       if scorer.reads_maps else Calibration())
    videos = _labelled_test_videos(data_root, config, cache_dir, labels_path, dataset)
    errors = flow_floor_errors(videos, config.score, past_frames,
                               keep_maps=_has_masks(videos) or scorer.reads_maps)
    kinds = _smoothed_kinds("flow_floor", [scorer.frame_scores(e, calibration) for e in errors],
                            config)
    record = {"checkpoint": None, "flow": flow_identity(config.flow),
              "architecture": "flow_floor (training-free)"
              if calibration.statistics is None else "flow_floor (training-calibrated)",
              "score_settings": _score_settings(config), **(record or {})}
    return _report(videos, errors, kinds, {}, scorer, calibration, config, data_root, out_dir,
                   record)


def floor_calibration(config: Config, data_root: str | Path, cache_dir: str | Path | None,
                      dataset: str, past_frames: int = FloorScorer.PAST_FRAMES) -> Calibration:
    """The floor's training statistics (the row speeds of ``score.perspective``) from every
    video of the training split."""
    training = load_split(data_root, "training", config, cache_dir, None, dataset)
    errors = flow_floor_errors(training, config.score, past_frames, keep_maps=True)
    return score_statistics(errors, "flow_floor")


def _smoothed_kinds(name: str, raw: list[np.ndarray], config: Config) -> dict[str, list]:
    """The raw score under ``name``, and where set, ``<name>_causal`` (the mean over the
    last ``score.causal_window`` frames, as detect outputs it) and ``<name>_centred`` (a
    Gaussian over past and future frames: offline only)."""
    score = config.score
    kinds = {name: raw}
    if score.causal_window > 1:
        kinds[f"{name}_causal"] = [smooth(s, "causal", score.causal_window, 0) for s in raw]
    if score.centred_sigma > 0:
        kinds[f"{name}_centred"] = [smooth(s, "centred", 1, score.centred_sigma) for s in raw]
    return kinds


def _score_settings(config: Config) -> dict[str, Any]:
    score = config.score
    return {"patch_size": score.patch_size, "formula": score.formula,
            "lambda_s": score.lambda_s, "zscore_frame_weight": score.zscore_frame_weight,
            "zscore_motion_weight": score.zscore_motion_weight,
            "perspective": score.perspective, "motion_model": score.motion_model,
            "causal_window": score.causal_window, "centred_sigma": score.centred_sigma}


def _labelled_test_videos(data_root: str | Path, config: Config, cache_dir: str | Path | None,
                          labels_path: str | Path | None, dataset: str) -> list[PreparedVideo]:
    videos = load_split(data_root, "testing", config, cache_dir, labels_path, dataset)
    unlabelled = [v.name for v in videos if v.labels is None]
    if unlabelled:
        raise DataError(f"{data_root}: test video {unlabelled[0]!r} has no frame labels; "
                        f"the {dataset!r} layout looks for them as described in "
                        "`comemory prepare --help`, or pass --labels")
    return videos


def _has_masks(videos: list[PreparedVideo]) -> bool:
    return any(v.masks is not None for v in videos)


def _report(videos: list[PreparedVideo], errors: list[VideoErrors],
            kinds: dict[str, list[np.ndarray]], overrides: dict[str, dict], scorer: Scorer,
            calibration: Calibration, config: Config, data_root: str | Path,
            out_dir: str | Path, record: dict[str, Any]) -> dict[str, Any]:
    """Metrics, scores.csv and plots for per-video scores of each kind."""
    labels = [video.labels[err.frames] for video, err in zip(videos, errors, strict=True)]
    pooled = np.concatenate(labels)  # aligned with the scores by frame index
    if pooled.min() == pooled.max():
        raise DataError(f"{data_root}: every scored test frame is labelled {pooled[0]}; "
                        "AUC needs normal and anomalous frames")
    metrics = {
        **record,
        "data": str(data_root),
        "frames_scored": int(pooled.size),
        "frames_without_score": int(sum(len(v.frames) for v in videos) - pooled.size),
        "scores": {kind: all_metrics(scores, labels, overrides.get(kind))
                   for kind, scores in kinds.items()},
        "pixel_auroc": _pixel_auroc(videos, errors, scorer, calibration, config),
        "pixel_auroc_videos": sum(v.masks is not None for v in videos),
    }
    if calibration.threshold is not None:
        metrics["alerts"] = _alert_shares(kinds, labels, calibration, record.get("fps"))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    storage.write_text(out_dir / "metrics.json", json.dumps(metrics, indent=2))
    _write_scores_csv(out_dir / "scores.csv", errors, kinds, labels)
    _write_plots(out_dir, errors, kinds, labels, pooled, calibration.threshold)
    main_kind = next(iter(kinds))
    if _has_masks(videos):
        _write_heatmaps(out_dir / "heatmaps.png", videos, errors, kinds[main_kind], scorer,
                        calibration, config.model.resize)
    return metrics


def _alert_shares(kinds: dict[str, list[np.ndarray]], labels: list[np.ndarray],
                  calibration: Calibration, fps: float | None) -> dict[str, Any]:
    """Does the alert threshold keep its promise here: the share of normal test frames
    above it (promised: ``false_alarm_rate`` of held-out normal training frames) and of
    anomalous ones, under the score ``detect`` outputs (causal where it smooths), and the
    events ``detect`` would raise, as an operator judges them (``metrics.alarm_figures``;
    scored frames only, in order)."""
    name = _live_kind(kinds)
    policy = AlertPolicy.from_calibration(calibration)
    flagged = np.concatenate(kinds[name]) > policy.threshold
    truth = np.concatenate(labels).astype(bool)
    events = [[(e.start_frame, e.end_frame) for e in
               policy.events(np.arange(len(scores)), scores)] for scores in kinds[name]]
    return {"score": name, "threshold": policy.threshold,
            "false_alarm_rate": policy.false_alarm_rate, "promise": policy.statement(),
            "normal_frames_flagged": float(flagged[~truth].mean()),
            "anomalous_frames_flagged": float(flagged[truth].mean()),
            **alarm_figures(labels, events, fps)}


def _pixel_auroc(videos: list[PreparedVideo], errors: list[VideoErrors], scorer: Scorer,
                 calibration: Calibration, config: Config) -> float | None:
    """Pixel AUROC of the score maps, each resized to its mask, over the frames of the
    videos that have masks (metrics.json says how many: ``pixel_auroc_videos``);
    training-calibrated (no per-video normalisation). None without masks."""
    pairs = [(v, e) for v, e in zip(videos, errors, strict=True) if v.masks is not None]
    if not pairs:
        return None
    maps = [scorer.pixel_maps(err, calibration) for _, err in pairs]
    accumulator = PixelAUROC(min(float(m.min()) for m in maps), max(float(m.max()) for m in maps))
    for (video, err), score_maps in progress(zip(pairs, maps, strict=True), total=len(pairs),
                                         desc="pixel AUROC", unit="video", leave=False):
        masks = video.masks.load()
        for frame, score_map in zip(err.frames, score_maps, strict=True):
            mask = masks[frame]
            upsampled = from_model_grid(score_map, mask.shape[0], mask.shape[1],
                                        config.model.resize)
            accumulator.add(upsampled, mask)
    return accumulator.value()


def _write_scores_csv(path: Path, errors: list[VideoErrors], kinds: dict[str, list[np.ndarray]],
                      labels: list[np.ndarray]) -> None:
    """One row per scored frame: each score (training-calibrated), then the score parts the
    model has (psnr; S_F and S_I of eq. 3.19; MNAD's feature distance; the motion prior),
    then the label."""
    parts = [name for name in ("psnr", "flow_error", "frame_error", "distance", "motion")
             if getattr(errors[0], name) is not None]
    with storage.atomic_open(path, "w") as handle:
        writer = csv.writer(handle)
        writer.writerow(["video", "frame", *(f"{kind}_score" for kind in kinds), *parts, "label"])
        for index, err in enumerate(errors):
            columns = [kinds[kind][index] for kind in kinds] + [getattr(err, p) for p in parts]
            for row, frame in enumerate(err.frames):
                writer.writerow([err.name, int(frame), *(f"{c[row]:.6g}" for c in columns),
                                 int(labels[index][row])])


def _live_kind(kinds: dict[str, list[np.ndarray]]) -> str:
    """The score ``detect`` outputs: the main one, causal-smoothed where it is smoothed."""
    main = next(iter(kinds))
    return f"{main}_causal" if f"{main}_causal" in kinds else main


def _write_plots(out_dir: Path, errors: list[VideoErrors], kinds: dict[str, list[np.ndarray]],
                 labels: list[np.ndarray], pooled_labels: np.ndarray,
                 threshold: float | None) -> None:
    """roc.png: the main score under each normalisation; score_curves.png: the score
    ``detect`` outputs (causal where smoothed) per video, with the alert threshold."""
    main = next(iter(kinds))
    curves = {NORMALISATION_NAMES[mode]: (pooled_labels,
                                          np.concatenate([normalise(s, mode) for s in kinds[main]]))
              for mode in NORMALISATIONS}
    plots.roc_plot(out_dir / "roc.png", curves,
                   f"{score_name(main)} score, frame level, micro AUC")
    live = _live_kind(kinds)
    panels = [(err.name, err.frames, s, label) for err, s, label in
              zip(errors, kinds[live], labels, strict=True)]
    plots.score_curves_plot(out_dir / "score_curves.png", panels,
                            f"{score_name(live)} (calibrated)", threshold)


def _write_heatmaps(path: Path, videos: list[PreparedVideo], errors: list[VideoErrors],
                    scores: list[np.ndarray], scorer: Scorer, calibration: Calibration,
                    resize: str, most: int = 8) -> None:
    """The highest-scoring frame of up to ``most`` videos with masks, its score map over it."""
    panels = []
    for video, err, video_scores in zip(videos, errors, scores, strict=True):
        if video.masks is None or len(panels) == most:
            continue
        row = int(np.argmax(video_scores))
        frame = int(err.frames[row])
        image = np.asarray(video.frames[frame])
        size = image.shape[0]
        mask = to_model_grid(video.masks.load()[frame].astype(np.uint8), size, resize,
                             cv2.INTER_NEAREST).astype(bool)
        heat = scorer.pixel_maps(err, calibration)[row]
        panels.append((f"video {video.name}, frame {frame}", image, heat, mask))
    plots.heatmap_plot(path, panels)
