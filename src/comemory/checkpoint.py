"""Checkpoints: plain data (tensors, numbers, strings, dicts), written atomically and read
with ``torch.load(..., weights_only=True)`` so that loading one never runs code.

Contents: format, config (the settings asked for, nested dict), chosen_score (the score
settings validation chose, or None: then config's own apply, as in checkpoints written
before the two were kept apart), flow (the extractor identity), model (state dict,
memory items included as buffers), optimizer (state dict), epoch and step completed,
train_seconds (wall time spent in training epochs, summed over resumes),
calibration (w_F, w_I and training score statistics, or None before calibration),
validation (the validation report of ``comemory.train.choice``, or None).
"""
from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch
import yaml

from comemory import storage
from comemory.config import Config, ScoreConfig, merge
from comemory.errors import CheckpointError
from comemory.model import build_model
from comemory.scoring import Calibration

FORMAT = "comemory-checkpoint-v1"


def save_checkpoint(path: str | Path, model: torch.nn.Module | None,
                    optimizer: torch.optim.Optimizer | None, config: Config,
                    flow: dict[str, str], epoch: int, step: int, train_seconds: float,
                    calibration: dict[str, Any] | None = None,
                    validation: dict[str, Any] | None = None,
                    chosen_score: ScoreConfig | None = None) -> None:
    """``config``: the settings asked for; ``chosen_score``: validation's choice, if made.
    ``model`` and ``optimizer`` are None for the floor, which has no network."""
    storage.save_torch(path, {
        "format": FORMAT,
        "config": config.to_dict(),
        "chosen_score": None if chosen_score is None else asdict(chosen_score),
        "flow": flow,
        "model": {} if model is None else model.state_dict(),
        "optimizer": {} if optimizer is None else optimizer.state_dict(),
        "epoch": epoch,
        "step": step,
        "train_seconds": train_seconds,
        "calibration": calibration,
        "validation": validation,
    })


def save_finished_run(out_dir: Path, model: torch.nn.Module | None,
                      optimizer: torch.optim.Optimizer | None, config: Config,
                      flow: dict[str, str], epoch: int, step: int, train_seconds: float,
                      calibration: Calibration, report: dict[str, Any],
                      chosen_score: ScoreConfig) -> Path:
    """A finished run's files in ``out_dir``: validation.json (``report``), config.yaml (the
    settings the model runs with: ``config`` with the chosen score settings) and, last, as
    the mark that the run is complete, checkpoint.pt with its calibration. Returns the
    checkpoint's path."""
    write_report(out_dir / "validation.json", report)
    storage.write_text(out_dir / "config.yaml",
                       yaml.safe_dump(replace(config, score=chosen_score).to_dict(),
                                      sort_keys=False))
    path = out_dir / "checkpoint.pt"
    save_checkpoint(path, model, optimizer, config, flow, epoch, step, train_seconds,
                    calibration.to_dict(), report, chosen_score)
    return path


def write_report(path: Path, report: dict[str, Any]) -> None:
    """A validation report as validation.json (atomically, as every run file)."""
    storage.write_text(path, json.dumps(report, indent=2))


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read and validate a checkpoint; raises CheckpointError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many kinds for a corrupt file
        # torch's own message runs to many lines and advises weights_only=False, which is
        # wrong advice for a damaged file and unsafe for a foreign one
        raise CheckpointError(f"{path}: not a readable checkpoint: the file is damaged "
                              "(cut short by a full disk or a copy?) or not a comemory "
                              f"checkpoint ({type(error).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a comemory checkpoint (format {FORMAT} expected)")
    return state


def model_from_checkpoint(state: dict[str, Any], path: str | Path = "checkpoint",
                          device: torch.device | str = "cpu"
                          ) -> tuple[torch.nn.Module | None, Config, Calibration]:
    """Rebuild the trained, calibrated model in eval mode, on ``device``, from a loaded
    checkpoint; with the configuration it runs with (``config_from_checkpoint``). The
    floor's checkpoint (``model.architecture`` flow_floor) has no network: None."""
    config = config_from_checkpoint(state, path)
    if state.get("calibration") is None:
        raise CheckpointError(f"{path}: training did not finish (no calibration); "
                              "run `comemory train --resume` on its folder first")
    calibration = Calibration.from_dict(state["calibration"])
    if config.model.architecture == "flow_floor":
        return None, config, calibration
    model = build_model(config.model, margin=config.train.margin)
    model.load_state_dict(state["model"])
    return model.to(device).eval(), config, calibration


def network_from_checkpoint(state: dict[str, Any], path: str | Path, action: str,
                            device: torch.device | str = "cpu"
                            ) -> tuple[torch.nn.Module, Config, Calibration]:
    """``model_from_checkpoint`` where ``action`` (e.g. "export") needs a network: the
    floor's checkpoint is refused, saying so."""
    model, config, calibration = model_from_checkpoint(state, path, device)
    if model is None:
        raise CheckpointError(f"{path}: a floor checkpoint (model.architecture flow_floor) "
                              f"has no network to {action}")
    return model, config, calibration


def asked_config(state: dict[str, Any], path: str | Path = "checkpoint") -> Config:
    """The settings the run was asked for (before validation chose any score settings)."""
    return Config.from_dict(state["config"], source=str(path))


def config_from_checkpoint(state: dict[str, Any], path: str | Path = "checkpoint") -> Config:
    """The settings the checkpoint's model runs with: those asked for, with validation's
    choice of score settings in place of the asked ones where it made one."""
    config = asked_config(state, path)
    chosen = state.get("chosen_score")
    if chosen is not None:
        config.score = merge(Config(), {"score": chosen}, f"{path}: chosen_score").score
    return config
