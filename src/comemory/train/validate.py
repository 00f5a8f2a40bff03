"""``comemory validate``: measure a trained checkpoint (or the training-free floor) on
the validation set, and with ``--choose`` choose its score settings again."""
from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

import torch

from comemory import storage
from comemory.checkpoint import (
    asked_config,
    load_checkpoint,
    network_from_checkpoint,
    write_report,
)
from comemory.config import Config, ScoreConfig, apply_overrides
from comemory.data.cache import prepare_split, read_split
from comemory.data.holdout import holdout_of, split_holdout
from comemory.distributed import resolve_device
from comemory.errors import ConfigError
from comemory.scoring import Calibration, scorer_for, video_errors
from comemory.train.choice import finish_report, fit_scores, model_errors
from comemory.train.floor import fit_floor
from comemory.train.validation_set import validation_set


def validate_checkpoint(checkpoint: str | Path, data_root: str | Path,
                        out_dir: str | Path | None = None, cache_dir: str | Path | None = None,
                        dataset: str = "frames", choose: bool = False,
                        overrides: list[str] | None = None, device: str = "auto") -> dict:
    """Validation AUC of a trained checkpoint on its training data's held-out frames and
    pseudo-anomalies; written to ``out_dir``/validation.json (default: beside the
    checkpoint) and into the checkpoint. With ``choose``, the score settings and threshold
    are chosen again on it and stored in the checkpoint too, after ``overrides``
    ("score.key=value", e.g. a motion prior) change the score settings. The network runs
    on ``device`` (auto: a GPU if there is one). Returns the report."""
    state = load_checkpoint(checkpoint)
    model, config, calibration = network_from_checkpoint(state, checkpoint, "validate",
                                                         resolve_device(device))
    asked = asked_config(state, checkpoint)
    if overrides:
        asked = _score_overrides(asked, overrides, choose)
    if choose:  # from the settings asked for, choosing whatever the run said about it
        choosing = replace(asked, choose=replace(asked.choose, on_validation=True))
        report = score_again(checkpoint, state, model, choosing, data_root, cache_dir, dataset)
    else:
        sources = read_split(data_root, "training", dataset=dataset)
        whole = prepare_split(sources, "training", config, cache_dir)
        validation = validation_set(sources, whole, config, model.past_frames)
        scorer = scorer_for(config.model.architecture, config.score)
        clip_errors = video_errors(model, validation.videos, config.score, desc="validating",
                                   keep_maps=scorer.reads_maps)
        raw = [scorer.frame_scores(e, calibration) for e in clip_errors]
        _, report = finish_report(config.score, raw, clip_errors, validation, [], False,
                                   "settings as stored in the checkpoint")
        state["validation"] = report
        storage.save_torch(checkpoint, state)
    write_report(Path(out_dir or Path(checkpoint).parent) / "validation.json", report)
    return report


def score_again(checkpoint: str | Path, state: dict, model: torch.nn.Module, config: Config,
                data_root: str | Path, cache_dir: str | Path | None, dataset: str) -> dict:
    """Fit the training statistics, score settings (chosen on validation where ``config``
    says so) and alert threshold of ``checkpoint`` (``state``, its network ``model`` as
    trained) again under ``config``'s score settings, and save them into it. A
    cross-fitting fold (``train.folds``) builds no validation set: its held-out videos set
    its threshold only, as at the end of its training. Returns the report."""
    sources = read_split(data_root, "training", dataset=dataset)
    whole = prepare_split(sources, "training", config, cache_dir)
    training, held_out = split_holdout(whole, config.train.holdout_fraction, model.past_frames,
                                       **holdout_of(config.train))
    validation = (None if config.train.folds
                  else validation_set(sources, whole, config, model.past_frames))
    chosen, calibration, report = fit_scores(model_errors(model), config.model.architecture,
                                             training, held_out, validation, config)
    state.update(config=config.to_dict(), chosen_score=asdict(chosen),
                 calibration=calibration.to_dict(), validation=report)
    storage.save_torch(checkpoint, state)
    return report


def _score_overrides(config: Config, overrides: list[str], choose: bool) -> Config:
    """``config`` with the score, choice and alert settings of ``overrides`` changed: only
    those (the network is trained), and only when choosing (the stored calibration fits
    the stored settings)."""
    if not choose:
        raise ConfigError("--set changes score settings for --choose only: add --choose")
    for item in overrides:
        if not item.startswith(("score.", "choose.", "alert.")):
            raise ConfigError(f"--set {item}: a trained checkpoint takes score settings "
                              "only (score.KEY, choose.KEY or alert.KEY=VALUE); train again "
                              "to change the others")
    return apply_overrides(config, overrides).check()


def validate_floor(config: Config, data_root: str | Path, cache_dir: str | Path | None = None,
                   dataset: str = "frames") -> tuple[ScoreConfig, Calibration, dict]:
    """The training-free floor on the same validation set as a model: its patch size and
    smoothing chosen there (when ``choose.on_validation``). Returns (settings, calibration:
    the row speeds where ``score.perspective`` and the alert threshold, report)."""
    return fit_floor(config, data_root, cache_dir, dataset)
