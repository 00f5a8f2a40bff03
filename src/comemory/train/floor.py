"""The floor as a detector (``model.architecture: flow_floor``): no network to train. Its
patch size and smoothing are chosen on the same validation set a network's are, its row
speeds (``score.perspective``) and alert threshold set on the training videos, and all of
it written to a checkpoint that ``detect``, ``serve``, ``evaluate`` and ``calibrate``
read like a network's.

    config = preset("cpu"); config.model.architecture = "flow_floor"
    checkpoint = train(config, "data/", "runs/floor")     # comemory.train.loop.train
"""
from __future__ import annotations

from pathlib import Path

from comemory.checkpoint import load_checkpoint, save_finished_run
from comemory.config import Config, ScoreConfig
from comemory.data.cache import prepare_split, read_split
from comemory.data.flow import flow_identity
from comemory.data.holdout import holdout_of, split_holdout
from comemory.errors import CheckpointError
from comemory.scoring import Calibration
from comemory.scoring.formulas import FloorScorer
from comemory.train.choice import fit_scores, floor_errors
from comemory.train.validation_set import validation_set


def fit_floor(config: Config, data_root: str | Path, cache_dir: str | Path | None = None,
              dataset: str = "frames") -> tuple[ScoreConfig, Calibration, dict]:
    """The floor's score settings chosen on validation (when ``choose.on_validation``),
    its calibration (row speeds where ``score.perspective``; the alert threshold from the
    held-out videos) and the validation report. A cross-fitting fold (``train.folds``)
    sets its threshold only."""
    sources = read_split(data_root, "training", dataset=dataset)
    whole = prepare_split(sources, "training", config, cache_dir)
    past = FloorScorer.PAST_FRAMES
    training, held_out = split_holdout(whole, config.train.holdout_fraction, past,
                                       **holdout_of(config.train))
    validation = (validation_set(sources, whole, config, past)
                  if held_out and not config.train.folds else None)
    return fit_scores(floor_errors, "flow_floor", training, held_out, validation, config)


def train_floor(config: Config, data_root: str | Path, out_dir: Path,
                cache_dir: str | Path | None, resume: bool, dataset: str) -> Path:
    """``fit_floor`` into ``out_dir``: checkpoint.pt, config.yaml (the settings it runs
    with) and validation.json; a finished run is returned as it is with ``resume``."""
    path = out_dir / "checkpoint.pt"
    if path.exists():
        if not resume:
            raise CheckpointError(f"{path}: a run is already here; pass --resume to "
                                  "continue it or choose another --out")
        if load_checkpoint(path).get("calibration") is not None:
            return path
    chosen, calibration, report = fit_floor(config, data_root, cache_dir, dataset)
    return save_finished_run(out_dir, None, None, config, flow_identity(config.flow), 0, 0,
                             0.0, calibration, report, chosen)
