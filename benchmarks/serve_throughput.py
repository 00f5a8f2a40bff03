"""Two cameras in one `comemory serve` process against two `comemory detect` processes.

    python benchmarks/serve_throughput.py                 # Ped2's cpu-preset checkpoint
    python benchmarks/serve_throughput.py --checkpoint runs/demo/run/checkpoint.pt \\
        --videos a.mp4 b.mp4

Each way scores the same two videos once, as fast as it can (no pacing to the frame rate):
  - detect x2, 1 thread each: two processes started together (detect's default threads);
  - detect x2, 2 threads each: the same with both processes on all cores;
  - serve: one process, both videos as cameras, frames batched through one model, all
    cores.
Frames/s per camera = its frames / the seconds until its last frame was scored (process
start-up and model loading excluded for both: detect's own figure, serve's from the first
frame). Writes benchmarks/results/serve-throughput.json. Run it alone on the machine.
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from comemory import storage
from comemory.bench import machine
from comemory.cpu import use_threads
from comemory.serve import Service
from comemory.serve.config import serve_config_from_dict

PROJECT = Path(__file__).resolve().parents[1]
RESULTS = PROJECT / "benchmarks" / "results" / "serve-throughput.json"
DEFAULT_CHECKPOINT = PROJECT / "runs" / "ped2" / "comemory" / "checkpoint.pt"
DEFAULT_VIDEOS = [PROJECT / "runs" / "ped2" / "ped2-mp4" / f"{n}.mp4" for n in ("01", "02")]
SUMMARY = re.compile(r"^(\S+): (\d+) frames, .*\(([\d.]+) frames/s\)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--videos", type=Path, nargs=2, default=DEFAULT_VIDEOS)
    args = parser.parse_args()
    missing = [p for p in (args.checkpoint, *args.videos) if not p.exists()]
    if missing:
        print(f"skipped: {missing[0]} not found (train the Ped2 row and run "
              "benchmarks/ped2_alerts.py first, or pass --checkpoint and --videos)")
        return 0
    result = {"machine": machine(), "checkpoint": str(args.checkpoint),
              "videos": [str(v) for v in args.videos],
              "detect_1_thread_each": two_detects(args.checkpoint, args.videos, 1),
              "detect_2_threads_each": two_detects(args.checkpoint, args.videos, 2),
              "serve": one_serve(args.checkpoint, args.videos),
              "measured": time.strftime("%Y-%m-%d %H:%M")}
    storage.write_text(RESULTS, json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


def two_detects(checkpoint: Path, videos: list[Path], threads: int) -> dict:
    """Both videos through their own `comemory detect` process, started together."""
    with tempfile.TemporaryDirectory() as out:
        processes = [subprocess.Popen(
            [sys.executable, "-m", "comemory.cli", "detect", str(video), "--checkpoint",
             str(checkpoint), "--out", f"{out}/{number}", "--no-video", "--threads",
             str(threads)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            for number, video in enumerate(videos)]
        outputs = [p.communicate()[0] for p in processes]
    per_camera = {}
    for output in outputs:
        match = next(SUMMARY.match(line) for line in output.splitlines() if SUMMARY.match(line))
        per_camera[match.group(1)] = {"frames": int(match.group(2)),
                                      "fps": float(match.group(3))}
    return {"threads_each": threads, "cameras": per_camera,
            "total_fps": sum(c["fps"] for c in per_camera.values())}


def one_serve(checkpoint: Path, videos: list[Path]) -> dict:
    """Both videos as cameras of one Service, read once, as fast as it scores them."""
    use_threads(0)
    with tempfile.TemporaryDirectory() as data:
        config = serve_config_from_dict({
            "data": data, "port": 0,
            "cameras": [{"name": video.stem, "source": str(video),
                         "checkpoint": str(checkpoint), "loop": False, "realtime": False}
                        for video in videos]})
        service = Service(config, environ={})
        service.start(web=False)
        first = finished = None
        done = {}
        while len(done) < len(service.cameras):
            now = time.perf_counter()
            if first is None and any(c.scored for c in service.cameras):
                first = now
            for camera in service.cameras:
                if (camera.name not in done and camera.feed.status == "ended"
                        and camera.scored == camera.feed.read):
                    done[camera.name] = (camera.scored, now)
            time.sleep(0.01)
        finished = max(t for _, t in done.values())
        service.stop()
    per_camera = {name: {"frames": frames, "fps": frames / (end - first)}
                  for name, (frames, end) in done.items()}
    return {"threads": use_threads(0), "cameras": per_camera,
            "total_fps": sum(c["fps"] for c in per_camera.values()),
            "seconds": finished - first}


if __name__ == "__main__":
    sys.exit(main())
