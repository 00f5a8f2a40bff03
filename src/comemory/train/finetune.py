"""Feedback that changes the model: clips a person marked "false alarm" in the page of
``comemory serve`` become normal footage, the model is fine-tuned on them beside its
training videos, and calibrated again.

    comemory finetune --checkpoint runs/cpu/checkpoint.pt --root DATA \\
        --reviews runs/serve/events.db --out runs/cpu-reviewed
    comemory finetune ... --reviews postgresql://db.example/events --clips runs/serve/media/clips

The new run folder gets checkpoint.pt and finetune.json: how many of the marked false
alarms still raise an event (before and after, each under its own model's threshold), the
share of held-out normal frames above the new threshold, and validation AUC before and
after (whether fine-tuning on the clips cost detection of the pseudo-anomalies). The old
checkpoint is not touched; point ``serve`` at the new one to use it.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader

from comemory import storage
from comemory.alerts import AlertPolicy
from comemory.checkpoint import (
    asked_config,
    load_checkpoint,
    network_from_checkpoint,
    save_finished_run,
)
from comemory.config import Config
from comemory.cpu import use_threads
from comemory.data.cache import prepare_split, read_split
from comemory.data.flow import flow_identity
from comemory.data.frames import VideoFile
from comemory.data.holdout import holdout_of, split_holdout
from comemory.data.model_input import PreparedVideo, prepare_images
from comemory.data.windows import model_windows
from comemory.detect import Detector, torch_engine
from comemory.errors import DataError, TrainingError
from comemory.progress import progress
from comemory.scoring import Calibration, FrameScorer
from comemory.serve.database import EventFilter, EventStore
from comemory.serve.database_address import is_database_url, redacted, sqlite_path
from comemory.train.choice import fit_scores, model_errors
from comemory.train.loop import training_losses
from comemory.train.validation_set import validation_set


def false_alarm_clips(database: str | Path, clips: str | Path | None = None
                      ) -> tuple[list[tuple[int, Path]], list[int]]:
    """(event id, clip file) of every event marked false alarm whose clip is kept in
    ``clips`` (default: media/clips beside a SQLite file), and the ids of those whose clip
    is not there (in a shared database, another machine's service may have it)."""
    if is_database_url(database):
        if clips is None:
            raise DataError(f"{redacted(str(database))}: a database server holds no clips; "
                            "pass the folder of the reviewed clips (--clips)")
    else:
        database = sqlite_path(database)
        if not database.is_file():
            raise DataError(f"{database}: no such events database (the events.db in the "
                            "data folder of `comemory serve`)")
        clips = clips if clips is not None else database.parent / "media" / "clips"
    store = EventStore(database)
    try:
        rows = store.events(EventFilter(reviewed=True, limit=1000))
    finally:
        store.close()
    marked = sorted((row["id"], Path(clips) / row["clip"]) for row in rows
                    if row["verdict"] == "false_alarm" and row["clip"])
    return ([(event, path) for event, path in marked if path.is_file()],
            [event for event, path in marked if not path.is_file()])


def clip_verdicts(model: torch.nn.Module, config: Config, calibration: Calibration,
                  clips: list[np.ndarray]) -> list[dict]:
    """Each clip scored live, as ``detect`` scores it: whether it raises an event under
    the calibration's threshold, and its highest score's margin over that threshold."""
    detector = Detector(torch_engine(FrameScorer(model, config.score)), config, calibration,
                        model.past_frames)
    policy = AlertPolicy.from_calibration(calibration)
    verdicts = []
    for clip in clips:
        detector.reset()
        scored = [(i, r.score) for i, r in enumerate(detector.score_frame(f) for f in clip)
                  if r.score is not None]
        frames = np.array([i for i, _ in scored])
        scores = np.array([s for _, s in scored])
        verdicts.append({"alarm": bool(policy.events(frames, scores)),
                         "peak_margin": float(scores.max() - policy.threshold)})
    return verdicts


def finetune(checkpoint: str | Path, data_root: str | Path, database: str | Path,
             out_dir: str | Path, epochs: int = 1, lr: float | None = None,
             review_share: float = 0.25, cache_dir: str | Path | None = None,
             dataset: str = "frames", clips_dir: str | Path | None = None) -> dict:
    """Fine-tune ``checkpoint`` on its training videos plus the false-alarm clips of
    ``database`` (a SQLite file or a postgresql:// URL; the clips in ``clips_dir``, by
    default media/clips beside the file; windows of the clips make up ``review_share`` of
    each epoch), calibrate again, write ``out_dir``/checkpoint.pt and finetune.json;
    returns the report."""
    if not 0 < review_share < 1 or epochs < 1:
        raise ValueError("review_share must lie in (0, 1) and epochs be >= 1")
    started = time.perf_counter()
    out_dir = Path(out_dir)
    state = load_checkpoint(checkpoint)
    model, config, calibration = network_from_checkpoint(state, checkpoint, "fine-tune")
    asked = asked_config(state, checkpoint)  # the score settings are chosen again from these
    use_threads(config.train.threads)
    clips, elsewhere = false_alarm_clips(database, clips_dir)
    if not clips:
        raise DataError(f"{redacted(str(database))}: no event is marked false alarm with "
                        f"its clip kept{' here' if elsewhere else ''}; review some in the "
                        "page of `comemory serve` first")
    images = [VideoFile(path).read_bgr() for _, path in clips]  # errors name the file
    before = clip_verdicts(model, config, calibration, images)
    sources = read_split(data_root, "training", dataset=dataset)
    whole = prepare_split(sources, "training", config, cache_dir)
    videos, held_out = split_holdout(whole, config.train.holdout_fraction, model.past_frames,
                                     **holdout_of(config.train))
    validation = validation_set(sources, whole, config, model.past_frames) if held_out else None
    reviewed = [prepare_images(f"review-{event}", clip, config)
                for (event, _), clip in zip(clips, images, strict=True)]
    validation_before = state.get("validation") or {}
    rate = lr if lr is not None else config.train.lr * 0.1
    _fit(model, videos, reviewed, config, epochs, rate, review_share)
    chosen, calibration, report = fit_scores(model_errors(model), config.model.architecture,
                                             videos, held_out, validation, asked)
    config = replace(asked, score=chosen)
    after = clip_verdicts(model, config, calibration, images)
    normal = np.array(calibration.extra.get("normal_scores") or [])
    result = {
        "checkpoint": str(checkpoint), "database": redacted(str(database)),
        "false_alarm_events": [event for event, _ in clips],
        "false_alarm_events_without_clip_here": elsewhere,
        "still_alarming_before": sum(v["alarm"] for v in before),
        "still_alarming_after": sum(v["alarm"] for v in after),
        "per_event": {str(event): {"before": b, "after": a} for (event, _), b, a in
                      zip(clips, before, after, strict=True)},
        "held_out_false_alarm_rate": (float(np.mean(normal > calibration.threshold))
                                      if normal.size else None),
        "validation_auc_before": _pooled(validation_before),
        "validation_auc_after": _pooled(report),
        "epochs": epochs, "lr": rate, "review_share": review_share,
        "seconds": time.perf_counter() - started,
    }
    optimizer = torch.optim.Adam(model.parameters(), lr=rate)
    save_finished_run(out_dir, model, optimizer, asked, flow_identity(config.flow),
                      int(state["epoch"]) + epochs, int(state["step"]),
                      float(state.get("train_seconds", 0.0)), calibration, report, chosen)
    storage.write_text(out_dir / "finetune.json", json.dumps(result, indent=2))
    return result


def _fit(model: torch.nn.Module, videos: list[PreparedVideo], reviewed: list[PreparedVideo],
         config: Config, epochs: int, lr: float, review_share: float) -> None:
    """A few epochs of the training loss over the training windows and the reviewed
    clips' windows, repeated to make up ``review_share`` of the samples."""
    normal = model_windows(videos, model)
    clips = model_windows(reviewed, model)
    if len(clips) == 0:
        raise DataError("the reviewed clips are too short to make one training sample")
    repeats = max(1, math.ceil(review_share * len(normal) / ((1 - review_share) * len(clips))))
    samples = ConcatDataset([normal, *[clips] * repeats])
    optimizer = torch.optim.Adam(model.parameters(), lr=lr,
                                 weight_decay=config.train.weight_decay)
    generator = torch.Generator().manual_seed(config.train.seed)
    model.train()
    for epoch in range(epochs):
        loader = DataLoader(samples, batch_size=config.train.batch_size, shuffle=True,
                            generator=generator)
        for batch in progress(loader, desc=f"fine-tuning {epoch + 1}/{epochs}", unit="batch"):
            losses = training_losses(model(batch["past"]), batch["flow"], batch["target"],
                                     config.train)
            if not torch.isfinite(losses["total"]):
                raise TrainingError(f"loss became {losses['total'].item()} while fine-tuning; "
                                    "nothing was written; try a lower --lr")
            optimizer.zero_grad(set_to_none=True)
            losses["total"].backward()
            optimizer.step()
    model.eval()


def _pooled(report: dict) -> float | None:
    return (report.get("auc") or {}).get("causal", {}).get("pooled")
