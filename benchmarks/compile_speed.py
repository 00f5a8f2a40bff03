"""Does torch.compile speed up training on this machine? The `cpu` preset's training step
(batch 8, bf16 autocast, channels_last, as the preset trains) eager and compiled.

    python benchmarks/compile_speed.py

Times 20 steps after 3 warm-up steps (the first compiled step also compiles; its time is
reported apart). Writes benchmarks/results/compile_speed.json. Looks at no accuracy.
"""
from __future__ import annotations

import time
from pathlib import Path

import torch

from comemory.config import preset
from comemory.model import build_model
from comemory.train.loop import training_losses
from rows import write_results  # beside this script

STEPS, WARM_UP = 20, 3


def measure(compiled: bool) -> dict:
    config = preset("cpu")
    torch.manual_seed(0)
    model = build_model(config.model).to(memory_format=torch.channels_last)
    network = torch.compile(model) if compiled else model
    optimizer = torch.optim.Adam(model.parameters(), config.train.lr)
    size, batch = config.model.image_size, config.train.batch_size
    past = torch.rand(batch, 2, 1, size, size) * 2 - 1
    flow, target = torch.randn(batch, 2, size, size), torch.rand(batch, 1, size, size) * 2 - 1
    times = []
    for _ in range(WARM_UP + STEPS):
        started = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            losses = training_losses(network(past), flow, target, config.train)
        optimizer.zero_grad()
        losses["total"].backward()
        optimizer.step()
        times.append(time.perf_counter() - started)
    steady = sorted(times[WARM_UP:])[STEPS // 2]
    return {"compiled": compiled, "first_step_seconds": times[0],
            "median_step_seconds": steady, "frames_per_second": batch / steady}


def main() -> None:
    rows = [measure(False), measure(True)]
    for row in rows:
        print(row, flush=True)
    out = Path(__file__).resolve().parent / "results" / "compile_speed.json"
    write_results(out, {"torch": torch.__version__, "threads": torch.get_num_threads(),
                        "rows": rows})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
