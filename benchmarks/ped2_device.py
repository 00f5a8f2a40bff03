"""Ped2 at the paper's size (256 x 256, C = 512) on a GPU machine lent for minutes.

    python benchmarks/ped2_device.py train --data .ped2 --out "$OUT" --seconds 450
    python benchmarks/ped2_device.py score --data .ped2 --out "$OUT"

Two calls, because such a machine receives at most 64 MiB per call and Ped2's two splits
are 105 MB together: ``train`` where the training split has arrived (carry
``.ped2/training``), ``score`` once the test split has (carry ``.ped2/testing`` and the
labels; a call's carried data replaces the last's, while ``runs/`` stays as long as the
machine is warm, about 30 s after a call).

- train: checks that training, validation and evaluation run on the GPU (the tiny preset,
  one epoch on a synthetic scene), times the training steps of the comemory_paper_videos
  row (random tensors), trains as many epochs as fit the time left (from that step time
  and the training split's size alone; no AUC is read for it), and chooses the score
  settings on validation for that row and for comemory_paper_motion_videos (the same
  checkpoint with the motion prior), the second only if time is left.
- score: scores the test split once for each row that train finished.

After each row, ped2.json and the row's folder (validation, losses, evaluation; not the
checkpoint) are copied into --out, also when the row failed or ran out of time.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import torch

from comemory.config import preset
from comemory.data.cache import prepare_split, read_split
from comemory.data.holdout import split_holdout
from comemory.data.windows import FrameWindows
from comemory.data.synth import SynthSpec, synthesize
from comemory.evaluate.evaluation import evaluate
from comemory.model.network import CoMemoryNet, build_model
from comemory.train.loop import epoch_steps, train, training_losses
from comemory.train.validate import validate_checkpoint
from ped2_rows import PROJECT, RESULTS, row_config  # beside this script
from rows import write_results  # beside this script

ROW, MOTION_ROW = "comemory_paper_videos", "comemory_paper_motion_videos"
RUNS = PROJECT / "runs" / "ped2-device"
RECORD = RUNS / "device.json"  # the GPU, its step time and the epochs chosen from it
# Training's own costs over the bare steps timed by ``step_seconds`` (data loading, loss
# logging, a checkpoint at each epoch's end). On an H100: 0.028 s per bare step, 18-22 s
# per epoch of 511 steps (1.25-1.5 times).
OVERHEAD = 1.4


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=["train", "score"])
    parser.add_argument("--data", type=Path, required=True, help="Ped2 (its frames layout)")
    parser.add_argument("--out", type=Path, required=True, help="folder for what comes back")
    parser.add_argument("--seconds", type=float, default=450.0,
                        help="train: wall-clock seconds the whole step may take")
    parser.add_argument("--reserve", type=float, default=60.0, help="train: seconds kept "
                        "after training for each row's validation")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("skipped: PyTorch sees no GPU here; this script is for a GPU machine")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    if args.step == "train":
        train_rows(args.data, args.out, time.monotonic() + args.seconds, args.reserve)
    else:
        score_rows(args.data, args.out)
    return 0


def train_rows(data: Path, out: Path, deadline: float, reserve: float) -> None:
    record = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__,
              "smoke_seconds": smoke_test(), "step_seconds": step_seconds()}
    config = row_config(ROW, 0)
    videos = prepare_split(read_split(data, "training"), "training", config, RUNS / "cache")
    past = CoMemoryNet.past_frames
    training, _ = split_holdout(videos, config.train.holdout_fraction, past,
                                by=config.train.holdout)
    steps = epoch_steps(len(FrameWindows(training, past)), config.train.batch_size)
    epoch_seconds = steps * record["step_seconds"] * OVERHEAD
    record["epochs"] = max(1, int((deadline - time.monotonic() - reserve) // epoch_seconds))
    write_results(RECORD, record)
    shutil.copy(RECORD, out / RECORD.name)
    print(f"{json.dumps(record)}\n{steps} steps per epoch, about {epoch_seconds:.0f} s each",
          flush=True)
    for row in (ROW, MOTION_ROW):
        left = deadline - time.monotonic()
        if row == MOTION_ROW and left < reserve:
            print(f"{row}: skipped, {left:.0f} s left")
            break
        run_ped2(row, data, out, record["epochs"], ("--validate-only",), left)


def score_rows(data: Path, out: Path) -> None:
    epochs = json.loads(RECORD.read_text())["epochs"]
    for row in (ROW, MOTION_ROW):
        if (RUNS / row / "checkpoint.pt").exists():
            run_ped2(row, data, out, epochs)


def run_ped2(row: str, data: Path, out: Path, epochs: int, options: tuple[str, ...] = (),
             seconds: float | None = None) -> None:
    """``benchmarks/ped2.py`` on ``row``, killed after ``seconds``; then its results saved
    into ``out``."""
    command = [sys.executable, str(PROJECT / "benchmarks" / "ped2.py"), "--data", str(data),
               "--rows", row, "--runs", str(RUNS), "--epochs", str(epochs), *options]
    try:
        subprocess.run(command, check=True, timeout=None if seconds is None else max(1, seconds))
    finally:  # what a row that failed or ran out of time left is worth a look too
        save(row, out)


def smoke_test() -> float:
    """Train one epoch of the tiny preset on a synthetic scene on the GPU, validate and
    evaluate it there; raises if any step fails. Returns its seconds."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        synthesize(root / "data", SynthSpec())
        config = preset("tiny")
        config.train.epochs, config.train.device = 1, "cuda"
        checkpoint = train(config, root / "data", root / "run", root / "cache")
        validate_checkpoint(checkpoint, root / "data", cache_dir=root / "cache", choose=True,
                            device="cuda")
        metrics = evaluate(checkpoint, root / "data", root / "eval", root / "cache",
                           device="cuda")
    if not metrics["scores"]:
        raise SystemExit("smoke test: evaluate returned no scores")
    return time.monotonic() - started


def step_seconds(steps: int = 20) -> float:
    """Seconds per training step of the row's model and batch on the GPU (bf16 autocast,
    NHWC, Adam), after warm-up steps, on random tensors."""
    config = row_config(ROW, 0)
    size, channels, batch = (config.model.image_size, config.model.channels,
                             config.train.batch_size)
    model = build_model(config.model).cuda().to(memory_format=torch.channels_last).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.train.lr)
    past = torch.rand(batch, model.past_frames, channels, size, size, device="cuda") * 2 - 1
    target = torch.rand(batch, channels, size, size, device="cuda") * 2 - 1
    flow = torch.randn(batch, 2, size, size, device="cuda")
    for step in range(5 + steps):
        if step == 5:
            torch.cuda.synchronize()
            started = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            losses = training_losses(model(past), flow, target, config.train)
        optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        optimizer.step()
    torch.cuda.synchronize()
    return (time.perf_counter() - started) / steps


def save(row: str, out: Path) -> None:
    """ped2.json and ``row``'s folder, without checkpoints, into ``out``."""
    if RESULTS.exists():
        shutil.copy(RESULTS, out / RESULTS.name)
    if (RUNS / row).is_dir():
        with tarfile.open(out / f"{row}.tar.gz", "w:gz") as archive:
            archive.add(RUNS / row, arcname=row,
                        filter=lambda item: None if ".pt" in item.name else item)


if __name__ == "__main__":
    sys.exit(main())
