"""Two gloo processes with batch B train exactly like one process with batch 2B.

In float64: in float32, Adam turns the rounding noise of near-zero gradients (the conv
biases in front of BatchNorm, whose true gradient is 0) into steps of size lr, so any two
float32 runs that add in another order drift apart by about lr per step on those
parameters, a different batch split as much as a different thread count. In float64 that
noise is far below Adam's epsilon, and what is left to compare is the logic: the data
split, the gradient averaging, the batch statistics and the memory update.
"""
from __future__ import annotations

import os
import socket

import torch
import torch.multiprocessing as mp

from comemory.checkpoint import load_checkpoint
from comemory.train.loop import train
from tests.conftest import small_config

SETTINGS = ("train.epochs=1", "train.device=cpu", "train.checkpoint_every=0")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _worker(rank: int, world: int, port: int, scene, cache, out) -> None:
    # as torchrun sets them; LOCAL_WORLD_SIZE makes each process take its share of the cores
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      LOCAL_RANK=str(rank), WORLD_SIZE=str(world), LOCAL_WORLD_SIZE=str(world))
    torch.set_default_dtype(torch.float64)
    train(small_config(*SETTINGS, "train.batch_size=4"), scene, out, cache)


def test_two_processes_match_one_process_with_the_global_batch(scene, tmp_path):
    cache = tmp_path / "cache"
    torch.set_default_dtype(torch.float64)
    try:
        alone = load_checkpoint(train(small_config(*SETTINGS, "train.batch_size=8"), scene,
                                      tmp_path / "alone", cache))
    finally:
        torch.set_default_dtype(torch.float32)
    mp.spawn(_worker, args=(2, _free_port(), scene, cache, tmp_path / "ddp"), nprocs=2)
    together = load_checkpoint(tmp_path / "ddp" / "checkpoint.pt")

    assert together["step"] == alone["step"] > 3
    memories = [name for name in alone["model"] if name.endswith("memory.items")]
    assert len(memories) == 2  # motion and appearance
    for name, tensor in alone["model"].items():  # weights, BN statistics, memory items
        torch.testing.assert_close(together["model"][name], tensor, rtol=1e-6, atol=1e-8,
                                   msg=lambda m, name=name: f"{name}: {m}")
    # only the main process wrote the run folder, and the losses were averaged over both
    assert (tmp_path / "ddp" / "losses.csv").read_text().count("\n") == alone["step"] + 1
