"""Training on several processes with PyTorch's own engine: torchrun starts them,
``torch.distributed`` connects them (NCCL on GPUs, gloo on CPUs), DistributedDataParallel
averages the gradients.

    torchrun --nproc_per_node=2 -m comemory.cli train --root DATA --out runs/ddp

Two things DDP does not do for this model, done here:
- The memory items are updated by a rule, not by gradients. ``gather_rows`` hands the
  update the queries of every process, so each process applies the same update, the one
  a single process would apply to the whole global batch.
- Batch statistics: a process sees only its part of the global batch. On GPUs the model
  gets torch.nn.SyncBatchNorm; PyTorch's SyncBatchNorm refuses CPU tensors, so on CPU
  ``GlobalBatchNorm2d`` reduces the per-channel sums across processes with the
  differentiable ``torch.distributed.nn.all_reduce`` instead.
Outside torchrun (no WORLD_SIZE, or 1) nothing here changes the computation.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_nn
from torch import nn

from comemory.config import DEVICE_PATTERN
from comemory.errors import ConfigError


@dataclass
class Process:
    """This process's place: rank, world size, and the device it trains on."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """Only the main process writes logs, checkpoints and progress bars."""
        return self.rank == 0


def start(device: str = "auto") -> Process:
    """Join the process group torchrun describes in the environment (WORLD_SIZE, RANK,
    LOCAL_RANK, MASTER_ADDR/PORT), or run alone. ``device``: auto (a GPU when there is
    one), cpu, cuda or cuda:N (alone; under torchrun each process takes its LOCAL_RANK's
    GPU)."""
    chosen = resolve_device(device)
    use_cuda = chosen.type == "cuda"
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Process(device=chosen)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    if use_cuda:
        torch.cuda.set_device(local_rank)
    return Process(dist.get_rank(), dist.get_world_size(),
                   torch.device(f"cuda:{local_rank}" if use_cuda else "cpu"))


def resolve_device(name: str) -> torch.device:
    """A device name (auto, cpu, cuda, cuda:N; ``train.device``, ``--device``) as a torch
    device; a GPU asked for where PyTorch sees none is a ConfigError, not a silent run on
    the CPU."""
    if DEVICE_PATTERN.fullmatch(name) is None:
        raise ConfigError(f"device {name!r}: use auto, cpu, cuda or cuda:N")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name}: PyTorch sees no CUDA GPU here (torch "
                              f"{torch.__version__}); use cpu or auto")
        index = int(name.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise ConfigError(f"device {name}: only {torch.cuda.device_count()} "
                              "GPU(s) visible")
    return torch.device(name)


@contextmanager
def main_first(process: Process) -> Iterator[None]:
    """The main process runs the block first (preparing caches, say), the others after."""
    if process.world_size > 1 and not process.is_main:
        dist.barrier()
    yield
    if process.world_size > 1 and process.is_main:
        dist.barrier()


def stop(process: Process) -> None:
    if process.world_size > 1 and dist.is_initialized():
        dist.destroy_process_group()


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def gather_rows(rows: torch.Tensor) -> torch.Tensor:
    """(K_i, C) rows of every process -> (sum K_i, C), in rank order, on every process.
    Processes may hold different numbers of rows (the last batch of an epoch)."""
    if not is_distributed():
        return rows
    world = dist.get_world_size()
    count = torch.tensor([rows.shape[0]], device=rows.device)
    counts = [torch.zeros_like(count) for _ in range(world)]
    dist.all_gather(counts, count)
    longest = int(max(c.item() for c in counts))
    padded = torch.zeros(longest, *rows.shape[1:], dtype=rows.dtype, device=rows.device)
    padded[:rows.shape[0]] = rows
    gathered = [torch.zeros_like(padded) for _ in range(world)]
    dist.all_gather(gathered, padded)
    return torch.cat([g[:int(c.item())] for g, c in zip(gathered, counts, strict=True)])


def mean_over_processes(values: torch.Tensor) -> torch.Tensor:
    """The mean of ``values`` over processes (no gradient), e.g. the losses to log."""
    if not is_distributed():
        return values
    values = values.detach().clone()
    dist.all_reduce(values)
    return values / dist.get_world_size()


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics cover the global batch of all processes, on
    any device: (B, C, H, W) -> (B, C, H, W). Alone, it is nn.BatchNorm2d."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and is_distributed()):
            return super().forward(x)
        dims = (0, 2, 3)
        count = torch.tensor([x.numel() / x.shape[1]], dtype=x.dtype, device=x.device)
        totals = dist_nn.all_reduce(torch.cat([x.sum(dims), count]))
        n = totals[-1]
        mean = totals[:-1] / n
        centred = x - mean[None, :, None, None]
        var = dist_nn.all_reduce(centred.pow(2).sum(dims)) / n  # two passes: stabler
        with torch.no_grad():
            self.num_batches_tracked += 1
            momentum = self.momentum if self.momentum is not None else \
                1.0 / float(self.num_batches_tracked)
            self.running_mean.lerp_(mean.detach(), momentum)
            self.running_var.lerp_(var.detach() * n / (n - 1), momentum)
        normalised = centred * torch.rsqrt(var + self.eps)[None, :, None, None]
        return normalised * self.weight[None, :, None, None] + self.bias[None, :, None, None]


def synchronise_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """Every BatchNorm2d of ``model`` made to use global-batch statistics: SyncBatchNorm
    on GPUs, GlobalBatchNorm2d elsewhere. The weights and running statistics are kept."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    for name, child in model.named_children():
        if type(child) is nn.BatchNorm2d:
            replacement = GlobalBatchNorm2d(child.num_features, child.eps, child.momentum,
                                            child.affine, child.track_running_stats)
            replacement.load_state_dict(child.state_dict())
            setattr(model, name, replacement)
        else:
            synchronise_batchnorm(child, device)
    return model
