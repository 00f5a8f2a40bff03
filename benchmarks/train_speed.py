"""Training speed of the co-memory network on this machine, for sizing the `cpu` preset.

    python benchmarks/train_speed.py

Times one training step (forward, losses, backward, Adam) of batch 8 on random grey
frames for several input sizes and widths, with and without bf16 autocast and
channels_last; median of 4 steps after 2 warm-up steps. Writes
benchmarks/results/train_speed.json (frames per second). Looks at no accuracy.
"""
from __future__ import annotations

import platform
import time
from pathlib import Path

import torch

from comemory.config import merge, preset
from comemory.model import build_model
from comemory.train.loop import training_losses
from rows import write_results  # beside this script

SETTINGS = [(128, 0.5), (96, 0.5), (64, 0.5), (128, 0.25), (96, 0.25)]
BATCH = 8


def step_seconds(size: int, width: float, bf16: bool, channels_last: bool) -> float:
    config = merge(preset("cpu"), {"model": {"image_size": size, "width": width}}, "speed")
    model = build_model(config.model)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), 1e-4)
    past = torch.rand(BATCH, 2, 1, size, size) * 2 - 1
    flow = torch.randn(BATCH, 2, size, size)
    times = []
    for _ in range(6):
        started = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            losses = training_losses(model(past), flow, past[:, -1], config.train)
        optimizer.zero_grad()
        losses["total"].backward()
        optimizer.step()
        times.append(time.perf_counter() - started)
    measured = sorted(times[2:])
    return (measured[1] + measured[2]) / 2


def main() -> None:
    torch.manual_seed(0)
    rows = []
    for size, width in SETTINGS:
        for bf16 in (False, True):
            for channels_last in (False, True):
                seconds = step_seconds(size, width, bf16, channels_last)
                rows.append({"size": size, "width": width, "bf16": bf16,
                             "channels_last": channels_last, "frames_per_second": BATCH / seconds})
                print(rows[-1], flush=True)
    out = Path(__file__).resolve().parent / "results" / "train_speed.json"
    record = {"threads": torch.get_num_threads(), "torch": torch.__version__,
              "cpu": platform.processor(), "batch": BATCH, "rows": rows}
    write_results(out, record)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
