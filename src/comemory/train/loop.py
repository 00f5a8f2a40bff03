"""Training: one readable loop, checkpoints every few steps, and at the end calibration and
the score settings chosen on validation (``comemory.train.choice``).

    comemory train --data DIR --preset tiny --out runs/tiny [--resume]

The run folder holds ``checkpoint.pt`` (the latest checkpoint: one every
``train.checkpoint_every`` steps and one at the end of each epoch, then the calibrated
final model), ``losses.csv`` (one row per step), ``config.yaml`` (with the score settings
chosen on validation once training ends) and ``validation.json`` (validation AUC per
pseudo-anomaly kind). A killed run
continues with ``--resume`` from its last checkpoint; the order of samples in an epoch
depends only on (seed, epoch), and a resume inside an epoch skips the batches already
trained, so a resumed run ends exactly where an uninterrupted one does.
"""
from __future__ import annotations

import csv
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler

from comemory import distributed, storage
from comemory.checkpoint import asked_config, load_checkpoint, save_checkpoint, save_finished_run
from comemory.config import Config, TrainConfig
from comemory.cpu import resolve_precision, use_threads
from comemory.data.cache import prepare_split, read_split
from comemory.data.datasets import Video
from comemory.data.flow import flow_identity
from comemory.data.holdout import holdout_of, split_holdout
from comemory.data.model_input import PreparedVideo
from comemory.data.windows import model_windows
from comemory.errors import CheckpointError, TrainingError
from comemory.model import ModelOutput, build_model
from comemory.model.memory import share_updates
from comemory.progress import progress
from comemory.train.choice import fit_scores, model_errors
from comemory.train.floor import train_floor
from comemory.train.validation_set import validation_set

LOSS_NAMES = ("total", "flow", "pred", "app_compact", "app_separate", "motion_compact",
              "motion_separate")


def training_losses(out: ModelOutput, flow: torch.Tensor, target: torch.Tensor,
                    config: TrainConfig) -> dict[str, torch.Tensor]:
    """Eq. 3.17. L_flow and L_pred are mean squared errors; a missing memory (or MNAD's
    missing flow branch) adds nothing."""
    losses = {"pred": F.mse_loss(out.frame, target)}
    if out.flow is not None:
        losses["flow"] = F.mse_loss(out.flow, flow)
    losses.update(out.memory_losses)
    weights = {"flow": config.lambda_flow, "pred": config.lambda_pred,
               "app_compact": config.lambda_app_compact,
               "app_separate": config.lambda_app_separate,
               "motion_compact": config.lambda_motion_compact,
               "motion_separate": config.lambda_motion_separate}
    losses["total"] = sum(weights[name] * value for name, value in losses.items())
    return losses


def train(config: Config, data_root: str | Path, out_dir: str | Path,
          cache_dir: str | Path | None = None, resume: bool = False,
          dataset: str = "frames") -> Path:
    """Train on the training split of ``data_root`` (read in the ``dataset`` layout of
    ``comemory.data.datasets``), calibrate, and return the checkpoint path.

    Under torchrun each process trains on its share of every global batch (DDP); only the
    main process writes the run folder. See ``comemory.distributed``.
    """
    config.check()  # before anything is read or written
    out_dir = Path(out_dir)
    if config.model.architecture == "flow_floor":  # no network: choose and calibrate only
        with storage.folder_lock(out_dir, "train"):
            return train_floor(config, data_root, out_dir, cache_dir, resume, dataset)
    process = distributed.start(config.train.device)
    if not process.is_main:  # only the main process writes, so only it holds the folder
        return _train(config, data_root, out_dir, cache_dir, resume, dataset, process)
    with storage.folder_lock(out_dir, "train"):
        return _train(config, data_root, out_dir, cache_dir, resume, dataset, process)


def _train(config: Config, data_root: str | Path, out_dir: Path, cache_dir: str | Path | None,
           resume: bool, dataset: str, process: distributed.Process) -> Path:
    checkpoint_path = out_dir / "checkpoint.pt"
    use_threads(config.train.threads)
    model, optimizer = _model_and_optimizer(config, process)
    start_epoch, step, seconds = 0, 0, 0.0
    if resume and checkpoint_path.exists():
        start_epoch, step, seconds, finished = _restore(checkpoint_path, config, model, optimizer)
        if finished:
            return checkpoint_path
    elif checkpoint_path.exists():
        raise CheckpointError(f"{checkpoint_path}: a run is already here; pass --resume to "
                              "continue it or choose another --out")
    sources, whole_videos, videos, held_out = _training_videos(
        config, data_root, out_dir, cache_dir, dataset, process, model.past_frames)
    samples = model_windows(videos, model)
    flow = flow_identity(config.flow)
    log = _LossLog(out_dir / "losses.csv", keep_until_step=step) if process.is_main else None
    bf16 = resolve_precision(config.train.precision, process.device) == "bf16"
    if config.train.channels_last:  # convolutions then run NHWC whatever the input layout
        model = model.to(memory_format=torch.channels_last)
    network = _parallel(model, process, config.train.compile)

    def save(epochs_done: int) -> None:  # the training time includes this epoch's so far
        if process.is_main:
            save_checkpoint(checkpoint_path, model, optimizer, config, flow, epochs_done, step,
                            seconds + time.perf_counter() - started)

    batch_size, every = config.train.batch_size, config.train.checkpoint_every
    steps_per_epoch = epoch_steps(len(samples), batch_size, process.world_size)
    total_steps = steps_per_epoch * config.train.epochs
    saved_step = step  # the step of the checkpoint on disk, for the NaN message
    for epoch in range(start_epoch, config.train.epochs):
        started = time.perf_counter()
        model.train()
        indices = _epoch_indices(len(samples), config.train.seed, epoch, process)
        done = step - epoch * steps_per_epoch  # batches of this epoch trained before a resume
        loader = DataLoader(samples, batch_size=batch_size, sampler=indices[done * batch_size:])
        bar = progress(loader, desc=f"epoch {epoch + 1}/{config.train.epochs}", unit="batch",
                       initial=done, total=steps_per_epoch, disable=not process.is_main,
                       leave=True)
        for batch in bar:
            past, flows, target = (batch[k].to(process.device) for k in ("past", "flow", "target"))
            with torch.autocast(process.device.type, dtype=torch.bfloat16, enabled=bf16):
                losses = training_losses(network(past), flows, target, config.train)
            logged = _mean_losses(losses)  # over processes: every process sees a NaN
            if not torch.isfinite(logged["total"]):
                raise TrainingError(f"loss became {logged['total'].item()} at step {step + 1}; "
                                    f"{checkpoint_path} keeps the last good checkpoint "
                                    f"(step {saved_step}); try a lower train.lr")
            optimizer.zero_grad(set_to_none=True)
            losses["total"].backward()
            for group in optimizer.param_groups:  # from the step alone: resumes exactly
                group["lr"] = learning_rate(config.train, step, total_steps)
            optimizer.step()
            step += 1
            if log is not None:
                log.write(epoch + 1, step, logged)
            bar.set_postfix(loss=f"{logged['total'].item():.4f}")
            if every > 0 and step % every == 0 and step % steps_per_epoch != 0:
                save(epoch)
                saved_step = step
        save(epoch + 1)
        seconds += time.perf_counter() - started
        saved_step = step

    if process.is_main:  # score settings chosen on validation, then the alert threshold
        validation = (validation_set(sources, whole_videos, config, model.past_frames)
                      if held_out and not config.train.folds else None)  # a fold: threshold only
        chosen, calibration, report = fit_scores(
            model_errors(model), config.model.architecture, videos, held_out, validation,
            config)
        save_finished_run(out_dir, model, optimizer, config, flow, config.train.epochs, step,
                          seconds, calibration, report, chosen)
    distributed.stop(process)
    return checkpoint_path


def _model_and_optimizer(config: Config, process: distributed.Process
                         ) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    """A fresh network (seeded by train.seed) on the process's device and its optimiser."""
    torch.manual_seed(config.train.seed)
    model = build_model(config.model, margin=config.train.margin).to(process.device)
    if process.world_size > 1:  # before the optimizer: the new layers have new parameters
        model = distributed.synchronise_batchnorm(model, process.device)
        share_updates(model, distributed.gather_rows)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.train.lr,
                                 weight_decay=config.train.weight_decay)
    return model, optimizer


def _training_videos(config: Config, data_root: str | Path, out_dir: Path,
                     cache_dir: str | Path | None, dataset: str, process: distributed.Process,
                     past_frames: int) -> tuple[list[Video], list[PreparedVideo],
                                                list[PreparedVideo], list[PreparedVideo]]:
    """The training split's videos: as read, as prepared (one process fills the cache, the
    others then read it), and that split into the frames trained on and those held out
    (``train.holdout``). The main process first clears what a kill left in ``out_dir``
    and writes config.yaml."""
    with distributed.main_first(process):
        if process.is_main:
            for stale in out_dir.glob(".checkpoint.pt.*.part"):
                stale.unlink()  # left by a kill during a checkpoint write; never read
            storage.write_text(out_dir / "config.yaml",
                               yaml.safe_dump(config.to_dict(), sort_keys=False))
        sources = read_split(data_root, "training", dataset=dataset)
        whole = prepare_split(sources, "training", config, cache_dir)
    return (sources, whole, *split_holdout(whole, config.train.holdout_fraction, past_frames,
                                           **holdout_of(config.train)))


def epoch_steps(samples: int, batch_size: int, world_size: int = 1) -> int:
    """Optimiser steps in one epoch of ``samples`` windows, for each of ``world_size``
    processes (DistributedSampler pads the share of each to the same length)."""
    return math.ceil(math.ceil(samples / world_size) / batch_size)


def learning_rate(config: TrainConfig, step: int, total_steps: int) -> float:
    """The learning rate of step ``step`` (0-based): ``config.lr`` throughout, or annealed
    from it towards 0 along a half cosine over the run (MNAD's schedule)."""
    if config.lr_schedule == "constant":
        return config.lr
    return 0.5 * config.lr * (1.0 + math.cos(math.pi * step / max(1, total_steps)))


def _parallel(model: torch.nn.Module, process: distributed.Process,
              compile_model: bool) -> torch.nn.Module:
    """What the training step calls: the model itself, or wrapped in DDP
    under torchrun; compiled if asked."""
    network = model
    if process.world_size > 1:
        device_ids = [process.device.index] if process.device.type == "cuda" else None
        network = DistributedDataParallel(model, device_ids=device_ids)
    return torch.compile(network) if compile_model else network


def _epoch_indices(count: int, seed: int, epoch: int, process: distributed.Process) -> list[int]:
    """This process's samples for ``epoch``, in order: a permutation that depends only on
    (seed, epoch), shared out by DistributedSampler's rule (process r takes positions r,
    r + N, ...), so the N processes' step-s batches together are a single process's
    step-s batch of N times the size."""
    order = torch.randperm(count, generator=_epoch_generator(seed, epoch)).tolist()
    if process.world_size == 1:
        return order
    sampler = DistributedSampler(order, process.world_size, process.rank, shuffle=False)
    return [order[i] for i in sampler]


def _mean_losses(losses: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The losses averaged over processes, detached, for the log and the NaN check."""
    names = list(losses)
    values = distributed.mean_over_processes(torch.stack([losses[n].detach().float()
                                                          for n in names]))
    return dict(zip(names, values, strict=True))


def _restore(path: Path, config: Config, model: torch.nn.Module,
             optimizer: torch.optim.Optimizer) -> tuple[int, int, float, bool]:
    """Load a run's checkpoint into ``model`` and ``optimizer``: (epoch, step, training
    seconds so far, whether the run already finished and was calibrated)."""
    state = load_checkpoint(path)
    saved = asked_config(state, path)
    if saved.model != config.model or saved.flow != config.flow:
        raise CheckpointError(f"{path}: was trained with another model or flow config; "
                              "resume with the same preset and settings")
    # these fix which samples a step saw
    for key in ("batch_size", "seed", "holdout_fraction", "fold", "folds"):
        if getattr(saved.train, key) != getattr(config.train, key):
            raise CheckpointError(f"{path}: was trained with train.{key}="
                                  f"{getattr(saved.train, key)}; resume with the same value")
    if state["epoch"] > config.train.epochs:
        raise CheckpointError(f"{path}: has trained {state['epoch']} epochs already, more than "
                              f"train.epochs={config.train.epochs}; resume with at least that")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    finished = state["calibration"] is not None and state["epoch"] == config.train.epochs
    return (int(state["epoch"]), int(state["step"]), float(state.get("train_seconds", 0.0)),
            finished)


def _epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 100_003 + epoch)


class _LossLog:
    """Appends one CSV row per step; on resume, drops rows after the checkpoint's step."""

    def __init__(self, path: Path, keep_until_step: int):
        self.path = path
        rows = []
        if keep_until_step > 0 and path.exists():
            with path.open(newline="") as handle:
                rows = [r for r in csv.DictReader(handle) if int(r["step"]) <= keep_until_step]
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["epoch", "step", *LOSS_NAMES])
            writer.writeheader()
            writer.writerows(rows)

    def write(self, epoch: int, step: int, losses: dict[str, torch.Tensor]) -> None:
        row = [epoch, step] + [f"{losses[n].item():.6g}" if n in losses else "" for n in LOSS_NAMES]
        with self.path.open("a", newline="") as handle:
            csv.writer(handle).writerow(row)
