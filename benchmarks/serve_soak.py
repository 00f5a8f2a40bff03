"""Does `comemory serve` keep flat memory over a long run? A soak, not a test.

    python benchmarks/serve_soak.py                     # 100 000 frames, the demo's model
    python benchmarks/serve_soak.py --frames 20000

Two cameras, looped and scored as fast as the model goes: the demo's test video with a
fast object (events, thumbnails and clips keep coming) and a normal training video; the
web page served, clips pruned to a small budget. The process's resident memory is read
from /proc every ``--every`` frames (both cameras' together). Writes
benchmarks/results/serve-soak.json and serve-soak.png; flat means the largest reading
after the warm-up (the first tenth) is within 10 % of the first reading after it.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from comemory.bench import machine
from comemory.config import preset
from comemory.cpu import use_threads
from comemory.data.synth import SynthSpec, synthesize
from comemory.serve import Service
from comemory.serve.config import serve_config_from_dict
from comemory.train.loop import train
from rows import write_results  # beside this script

PROJECT = Path(__file__).resolve().parents[1]
RESULTS = PROJECT / "benchmarks" / "results"


def resident_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=100_000)
    parser.add_argument("--every", type=int, default=2_000)
    parser.add_argument("--demo", type=Path, default=PROJECT / "runs" / "demo",
                        help="the demo's folder (`make demo`); trained here if absent")
    args = parser.parse_args()
    use_threads(0)
    checkpoint = demo_checkpoint(args.demo)
    videos = {"street": args.demo / "data" / "testing" / "frames" / "01",
              "walkway": args.demo / "data" / "training" / "frames" / "01"}
    with tempfile.TemporaryDirectory() as data:
        config = serve_config_from_dict({
            "data": data, "port": 0, "clip_budget_mb": 5,
            "cameras": [{"name": name, "source": str(video), "checkpoint": str(checkpoint),
                         "realtime": False} for name, video in videos.items()]})
        service = Service(config, environ={})
        service.start()
        readings, started = [], time.perf_counter()
        while (scored := sum(c.view.scored for c in service.cameras)) < args.frames:
            if scored >= len(readings) * args.every:
                readings.append((scored, resident_mb()))
                print(f"{scored:>7} frames: {readings[-1][1]:.1f} MB", flush=True)
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        events = service.store.count()
        service.stop()
    after = [mb for frames, mb in readings if frames >= args.frames // 10]
    result = {"machine": machine(), "frames": args.frames, "seconds": seconds,
              "fps": args.frames / seconds, "events": events,
              "readings": [{"frames": f, "rss_mb": round(mb, 1)} for f, mb in readings],
              "after_warm_up": {"first_mb": after[0], "max_mb": max(after),
                                "growth": max(after) / after[0] - 1},
              "flat_within_10_percent": max(after) <= 1.10 * after[0],
              "measured": time.strftime("%Y-%m-%d %H:%M")}
    write_results(RESULTS / "serve-soak.json", result)
    plot(readings, RESULTS / "serve-soak.png")
    print(json.dumps({k: v for k, v in result.items() if k != "readings"}, indent=2))
    return 0


def demo_checkpoint(folder: Path) -> Path:
    checkpoint = folder / "run" / "checkpoint.pt"
    if not checkpoint.exists():
        synthesize(folder / "data", SynthSpec())
        train(preset("tiny"), folder / "data", folder / "run", folder / "cache", resume=True)
    return checkpoint


def plot(readings: list[tuple[int, float]], path: Path) -> None:
    figure, axis = plt.subplots(figsize=(7, 3))
    axis.plot([f for f, _ in readings], [mb for _, mb in readings], marker=".")
    axis.set(xlabel="frames scored (two cameras)", ylabel="resident memory (MB)",
             title="comemory serve: two cameras, scored as fast as it goes")
    axis.set_ylim(bottom=0)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


if __name__ == "__main__":
    sys.exit(main())
