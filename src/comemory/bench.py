"""How fast ``comemory detect`` runs on this machine, stage by stage.

    comemory bench [--presets cpu tiny paper] [--frames 150] [--seconds 60] [--source VIDEO]

For each preset and each of fp32, bf16 autocast, fp32 + channels_last and bf16 +
channels_last (the bf16 ones only on CPUs with native bf16: elsewhere it is emulated, some
50 times slower, and measuring it would take many minutes): end-to-end frames per second
of the streaming detector (decode, resize and flow, model, score, one frame at a time as a
camera delivers them) and each stage's share
of the time; the model's GFLOP per frame (counted by torch.utils.flop_counter; with
``model.input: objects``, per crop times the crops a frame had) and the
GFLOP/s it achieves next to what this machine reaches on a large matrix product in the
same precision (a reference, not a ceiling: oneDNN's convolutions can beat PyTorch's fp32
matrix product). Speed does not depend on the weights, so the models are untrained;
the default source is a synthetic 360 x 240 scene written as MP4 (Ped2's frame size).
"""
from __future__ import annotations

import os
import platform
import tempfile
import time
from pathlib import Path

import cv2
import torch
from torch.utils.flop_counter import FlopCounterMode

from comemory.config import Config, preset
from comemory.cpu import native_bf16, thread_settings
from comemory.data.frames import list_frames
from comemory.data.stream import CaptureStream
from comemory.data.synth import SynthSpec, synthesize
from comemory.detect import STAGES, Detector, torch_engine
from comemory.detect.video_writer import write_video
from comemory.export import example_inputs
from comemory.model import build_model
from comemory.progress import progress
from comemory.scoring import Calibration, ErrorStatistics, FrameScorer

VARIANTS = (("fp32", False), ("bf16", False), ("fp32", True), ("bf16", True))
WARM_UP_FRAMES = 5


def bench(presets: list[str], frames: int = 150, source: str | Path | None = None,
          seconds: float = 60.0) -> dict:
    """Measure every preset and variant, each for ``frames`` frames or ``seconds`` seconds,
    whichever ends first; returns the results as a dict."""
    torch.manual_seed(0)
    variants = [v for v in VARIANTS if v[0] == "fp32" or native_bf16()]
    with tempfile.TemporaryDirectory() as folder:
        video = Path(source) if source else synthetic_video(Path(folder), frames)
        matmul = {p: matmul_gflops(p == "bf16") for p in {v[0] for v in variants}}
        rows = []
        for name in presets:
            config = preset(name)
            gflop = gflop_per_frame(config)  # one call: a frame, or (objects) one crop
            for precision, channels_last in variants:
                row = measure(config, video, frames, precision == "bf16", channels_last,
                              seconds)
                per_frame = gflop * (row["crops_per_frame"] if config.model.input == "objects"
                                     else 1.0)
                row.update(preset=name, precision=precision, channels_last=channels_last,
                           image_size=config.model.image_size, width=config.model.width,
                           gflop_per_frame=per_frame,
                           model_gflops=per_frame / row["model_ms"] * 1e3,
                           matmul_gflops=matmul[precision])
                rows.append(row)
    return {"machine": machine(), "source": str(source or "synthetic 360x240 scene"),
            "frames": frames, "rows": rows,
            "bf16": "measured" if native_bf16() else "skipped: no native bf16 on this CPU"}


def measure(config: Config, video: Path, frames: int, bf16: bool, channels_last: bool,
            seconds: float = 60.0) -> dict:
    """Stream ``frames`` frames of ``video`` through a detector after a short warm-up."""
    model = build_model(config.model)
    engine = torch_engine(FrameScorer(model, config.score), bf16, channels_last)
    detector = Detector(engine, config, Calibration(ErrorStatistics(1.0, 1.0)),
                        model.past_frames)
    results = detector.run_stream(CaptureStream(str(video), live=False), progress=False)
    label = f"{config.model.image_size}px w{config.model.width} {'bf16' if bf16 else 'fp32'}" \
            f"{' cl' if channels_last else ''}"
    for _ in range(WARM_UP_FRAMES):
        next(results)
    detector.stage_seconds = dict.fromkeys(STAGES, 0.0)
    started, count = time.perf_counter(), 0
    crops = 0  # model.input objects: the network runs once per crop, the scene's included
    for result in progress(results, total=frames - WARM_UP_FRAMES, desc=label, unit="frame",
                           leave=False):
        count += 1
        crops += len(result.objects) + 1 if result.score is not None else 0
        if time.perf_counter() - started > seconds:
            break
    wall = time.perf_counter() - started
    results.close()
    stages = detector.stage_seconds
    return {"fps": count / wall, "frames_timed": count, "crops_per_frame": crops / count,
            "model_ms": stages["model"] / count * 1e3,
            "share": {stage: spent / wall for stage, spent in stages.items()},
            "other_share": 1 - sum(stages.values()) / wall}


def gflop_per_frame(config: Config) -> float:
    """GFLOP of one FrameScorer call (batch 1), as torch's flop counter counts them
    (multiply-adds of convolutions and matrix products count 2)."""
    model = build_model(config.model).eval()
    scorer = FrameScorer(model, config.score)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        scorer(*example_inputs(config, model.past_frames))
    return counter.get_total_flops() / 1e9


def matmul_gflops(bf16: bool, size: int = 2048, repeats: int = 10, trials: int = 3) -> float:
    """GFLOP/s of a large matrix product, the best of ``trials``: a reference for what the
    CPU does in that precision."""
    dtype = torch.bfloat16 if bf16 else torch.float32
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    for _ in range(2):
        torch.mm(a, b)  # warm-up: thread pool, packing buffers
    best = 0.0
    for _ in range(trials):
        started = time.perf_counter()
        for _ in range(repeats):
            torch.mm(a, b)
        best = max(best, 2 * size**3 * repeats / (time.perf_counter() - started) / 1e9)
    return best


def synthetic_video(folder: Path, frames: int) -> Path:
    """A synthetic scene at Ped2's 360 x 240, written as MP4."""
    synthesize(folder / "scene", SynthSpec(seed=0, train_videos=0, test_videos=1,
                                           frames=frames, height=240, width=360))
    images = [cv2.imread(str(p)) for p in list_frames(folder / "scene/testing/frames/01")]
    write_video(images, folder / "bench.mp4", fps=25.0)
    return folder / "bench.mp4"


def markdown_table(results: dict) -> str:
    header = ("| preset | precision | channels_last | frames/s | " + " | ".join(STAGES)
              + " | GFLOP/frame | model GFLOP/s (matmul) |")
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for row in results["rows"]:
        share = row["share"]
        lines.append(
            f"| `{row['preset']}` ({row['image_size']} px, width {row['width']}) | "
            f"{row['precision']} | {'yes' if row['channels_last'] else 'no'} | "
            f"**{row['fps']:.1f}** | "
            + " | ".join(f"{share[s]:.0%}" for s in STAGES)
            + f" | {row['gflop_per_frame']:.2f} | {row['model_gflops']:.0f} "
            f"({row['matmul_gflops']:.0f}) |")
    return "\n".join(lines)


def machine() -> dict:
    """Where a measurement ran: speeds and training times compare only on one machine."""
    return {"python": platform.python_version(), "torch": torch.__version__,
            "cpu": cpu_model(), "cores": os.cpu_count(), "threads": torch.get_num_threads(),
            "opencv": cv2.__version__, **thread_settings()}


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (platform.processor() says only x86_64)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
