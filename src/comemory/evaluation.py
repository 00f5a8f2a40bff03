"""Evaluation: score every test frame with a trained checkpoint and measure it.

    comemory evaluate --checkpoint runs/tiny/checkpoint.pt --data DIR --out runs/tiny/eval

Writes metrics.json (micro/macro AUC, EER, AP for the co-memory score and the PSNR
score, each under the normalisations of ``comemory.metrics``), scores.csv (one row per
scored frame), roc.png and score_curves.png.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from comemory import plots, storage
from comemory.checkpoint import load_checkpoint, model_from_checkpoint
from comemory.config import FlowConfig
from comemory.data.flow import flow_identity
from comemory.data.prepared import load_split
from comemory.errors import CheckpointError, DataError
from comemory.metrics import NORMALISATIONS, all_metrics, normalise
from comemory.scoring import abnormality, video_errors


def evaluate(checkpoint: str | Path, data_root: str | Path, out_dir: str | Path,
             cache_dir: str | Path | None = None, labels_path: str | Path | None = None,
             flow: FlowConfig | None = None) -> dict[str, Any]:
    """Score ``data_root/testing`` and write the results; returns the metrics dict.

    ``flow`` may point a ``flo`` model at another folder of flows; a different extractor
    than the one the model was trained with is refused.
    """
    state = load_checkpoint(checkpoint)
    model, config, calibration = model_from_checkpoint(state, checkpoint)
    if flow is not None:
        if flow_identity(flow) != state["flow"]:
            raise CheckpointError(f"{checkpoint}: trained on {state['flow']} flows, refusing to "
                                  f"score with {flow_identity(flow)}; a model's flow errors are "
                                  "only meaningful with the extractor it learned")
        config.flow = flow
    videos = load_split(data_root, "testing", config, cache_dir, labels_path)
    errors = video_errors(model, videos, config.score)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = []
    for video, err in zip(videos, errors, strict=True):
        scores = abnormality(err.flow_error, err.frame_error, calibration, config.score.lambda_s)
        table.append((err, scores, video.labels[err.frames]))  # aligned by frame index
    kinds = {"comemory": [scores for _, scores, _ in table],
             "psnr": [-err.psnr for err, _, _ in table]}  # low PSNR = anomalous
    labels = [label for _, _, label in table]
    pooled = np.concatenate(labels)
    if pooled.min() == pooled.max():
        raise DataError(f"{data_root}: every scored test frame is labelled {pooled[0]}; "
                        "AUC needs normal and anomalous frames")
    metrics = {
        "checkpoint": str(checkpoint),
        "data": str(data_root),
        "flow": state["flow"],
        "frames_scored": int(pooled.size),
        "frames_without_score": int(sum(len(v.frames) for v in videos) - pooled.size),
        "scores": {kind: all_metrics(values, labels) for kind, values in kinds.items()},
    }
    storage.write_text(out_dir / "metrics.json", json.dumps(metrics, indent=2))
    _write_scores_csv(out_dir / "scores.csv", table)
    _write_plots(out_dir, table, pooled)
    return metrics


def _write_scores_csv(path: Path, table: list) -> None:
    with storage.atomic_open(path, "w") as handle:
        writer = csv.writer(handle)
        writer.writerow(["video", "frame", "flow_error", "frame_error", "score", "psnr", "label"])
        for err, scores, labels in table:
            for row in zip(err.frames, err.flow_error, err.frame_error, scores, err.psnr, labels,
                           strict=True):
                writer.writerow([err.name, int(row[0]), *(f"{v:.6g}" for v in row[1:5]),
                                 int(row[5])])


def _write_plots(out_dir: Path, table: list, pooled_labels: np.ndarray) -> None:
    curves = {mode: (pooled_labels, np.concatenate([normalise(s, mode) for _, s, _ in table]))
              for mode in NORMALISATIONS}
    plots.roc_plot(out_dir / "roc.png", curves, "co-memory score, frame level (micro)")
    panels = [(err.name, err.frames, scores, labels) for err, scores, labels in table]
    plots.score_curves_plot(out_dir / "score_curves.png", panels, "score (training-calibrated)")
