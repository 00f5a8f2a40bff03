"""``comemory calibrate``: a trained checkpoint's alert threshold set again from every
training video, by cross-fitting.

A threshold can only back its false-alarm rate on a new video with the confidence that
the number of calibration videos allows (comemory.alerts.promise: 9 videos for 90 %),
and a run holds out only a few. Cross-fitting scores every training video with a model
that did not train on it: the videos are split into k folds, one model per fold is
trained (the run's own settings, score settings as chosen for the run) on the other
folds, and each fold's videos are scored by its model, as held-out videos are. Every
training video then counts as a calibration video, so k + 1 trainings buy a promise
with up to n / (n + 1) confidence. The fold models' scores stand in for the run's model
on footage it has not seen: each is measured against its own training frames (the
training-calibrated score), as the run's model is against its own.

    comemory calibrate --checkpoint runs/cpu/checkpoint.pt --root DATA --folds 4

The fold runs go to ``folds/`` beside the checkpoint; a killed calibration resumes
where it stopped (each fold run resumes; finished ones are read as they are).
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from comemory import storage
from comemory.alerts import calibrate_threshold
from comemory.checkpoint import (
    asked_config,
    config_from_checkpoint,
    load_checkpoint,
    network_from_checkpoint,
    write_report,
)
from comemory.config import Config
from comemory.cpu import use_threads
from comemory.data.cache import read_split
from comemory.data.holdout import fold_starts
from comemory.errors import CheckpointError
from comemory.scoring import Calibration
from comemory.train.loop import train
from comemory.train.validate import score_again


def fold_config(config: Config, chosen: Config, fold: int, folds: int) -> Config:
    """The run's settings (``config``: as asked) for fold ``fold`` of ``folds``: its
    videos held out whole, the score settings fixed to the run's chosen ones (``chosen``)
    so that every fold scores as the run does."""
    return replace(config, score=chosen.score,
                   choose=replace(config.choose, on_validation=False),
                   train=replace(config.train, fold=fold, folds=folds))


def cross_fit(checkpoint: str | Path, data_root: str | Path, folds: int,
              dataset: str = "frames", cache_dir: str | Path | None = None,
              false_alarm_rate: float | None = None, confidence: float | None = None,
              threads: int | None = None) -> dict:
    """Train ``folds`` fold models beside ``checkpoint`` (on ``threads`` CPU threads,
    default the run's train.threads), gather every training video's held-out scores, and
    set the checkpoint's threshold from them for ``false_alarm_rate`` (default: the
    run's) at ``confidence`` (default: the run's alert.confidence), per video or pooled
    as the run's alert.threshold_by says. Returns the promise as a dict, with the fold
    runs' folder."""
    state = load_checkpoint(checkpoint)
    if state.get("calibration") is None:
        raise CheckpointError(f"{checkpoint}: the run has not finished training; finish it "
                              "(comemory train --resume) before calibrating")
    asked, chosen = asked_config(state, checkpoint), config_from_checkpoint(state, checkpoint)
    if threads is not None:
        asked = replace(asked, train=replace(asked.train, threads=threads))
    fold_starts(len(read_split(data_root, "training", dataset=dataset)), 0, folds)  # checks
    folder = Path(checkpoint).parent / "folds"
    videos = []
    for fold in range(folds):
        run = folder / f"{fold + 1}-of-{folds}"
        config = fold_config(asked, chosen, fold, folds)
        fold_checkpoint = train(config, data_root, run, cache_dir,
                                resume=(run / "checkpoint.pt").exists(), dataset=dataset)
        videos += fold_video_scores(fold_checkpoint, config, data_root, cache_dir, dataset)
    calibration = Calibration.from_dict(state["calibration"])
    frames = sum(len(v) for v in videos)
    source = (f"{frames} frames of {len(videos)} training videos, each scored by one of "
              f"{folds} cross-fitted models that did not train on it")
    promise = calibrate_threshold(
        calibration, videos, false_alarm_rate or asked.alert.false_alarm_rate, source,
        asked.alert.threshold_by, confidence or asked.alert.confidence)
    state["calibration"] = calibration.to_dict()
    state["cross_fit"] = {"folds": folds, "runs": str(folder), "videos": len(videos)}
    storage.save_torch(checkpoint, state)
    return {**promise.to_dict(), "statement": promise.statement(), "folds": str(folder)}


def fold_video_scores(fold_checkpoint: Path, config: Config, data_root: str | Path,
                      cache_dir: str | Path | None, dataset: str) -> list[np.ndarray]:
    """Each held-out video's frame scores from a finished fold run, under ``config``'s
    score settings. A fold scored under other ones (the run chose again since it was
    cross-fitted: ``validate --choose --set score.perspective=true``) is scored again with
    its network as trained, since the training settings, which ``train`` checked, are the
    same."""
    state = load_checkpoint(fold_checkpoint)
    if config_from_checkpoint(state, fold_checkpoint).score != config.score:
        model, _, _ = network_from_checkpoint(state, fold_checkpoint, "calibrate")
        use_threads(config.train.threads)
        write_report(fold_checkpoint.parent / "validation.json",
                     score_again(fold_checkpoint, state, model, config, data_root, cache_dir,
                                 dataset))
    held_out = Calibration.from_dict(state["calibration"])
    return [np.asarray(v) for v in held_out.extra["video_scores"]]
