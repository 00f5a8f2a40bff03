"""Two cameras in one `comemory serve` process against two `comemory detect` processes.

    python benchmarks/serve_throughput.py                 # Ped2's cpu-preset checkpoint
    python benchmarks/serve_throughput.py --checkpoint runs/demo/run/checkpoint.pt \\
        --videos a.mp4 b.mp4

Each way scores the same two videos once, as fast as it can (no pacing to the frame rate):
  - detect x2, 1 thread each: two processes started together (detect's default threads);
  - detect x2, 2 threads each: the same with both processes on all cores;
  - serve: one process, both videos as cameras, one model, all cores (a scoring thread
    per camera here, frames queued for a camera batched); without event clips (the same
    work as detect --no-video), and with them.
Frames/s per camera = its frames / the seconds until its last frame was scored (process
start-up and model loading excluded for both: detect's own figure, serve's from the first
frame), and the resident memory: the two detect processes' together at its highest, the
serve process's. Writes benchmarks/results/serve-throughput.json. Run it alone on the
machine.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from comemory import storage
from comemory.bench import machine
from comemory.cpu import use_threads
from comemory.data.frames import VideoFile, write_video
from comemory.serve import Service
from comemory.serve.config import serve_config_from_dict

PROJECT = Path(__file__).resolve().parents[1]
RESULTS = PROJECT / "benchmarks" / "results" / "serve-throughput.json"
DEFAULT_CHECKPOINT = PROJECT / "runs" / "ped2" / "comemory" / "checkpoint.pt"
PED2_MP4 = PROJECT / "runs" / "ped2" / "ped2-mp4"  # written by benchmarks/ped2_alerts.py
SUMMARY = re.compile(r"^(\S+): (\d+) frames, .*\(([\d.]+) frames/s\)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--videos", type=Path, nargs=2, help="two videos (default: Ped2's "
                        "test videos 01-06 and 07-12, each six joined into one)")
    args = parser.parse_args()
    if args.videos is None and (PED2_MP4 / "12.mp4").exists():
        args.videos = [joined(PED2_MP4, range(1, 7), "ped2-01-06"),
                       joined(PED2_MP4, range(7, 13), "ped2-07-12")]
    missing = [p for p in (args.checkpoint, *(args.videos or [PED2_MP4 / "12.mp4"]))
               if not p.exists()]
    if missing:
        print(f"skipped: {missing[0]} not found (train the Ped2 row and run "
              "benchmarks/ped2_alerts.py first, or pass --checkpoint and --videos)")
        return 0
    result = {"machine": machine(), "checkpoint": str(args.checkpoint),
              "videos": [str(v) for v in args.videos],
              "detect_1_thread_each": two_detects(args.checkpoint, args.videos, 1),
              "detect_2_threads_each": two_detects(args.checkpoint, args.videos, 2),
              "serve": one_serve(args.checkpoint, args.videos, clips=False),
              "serve_with_clips": one_serve(args.checkpoint, args.videos, clips=True),
              "measured": time.strftime("%Y-%m-%d %H:%M")}
    storage.write_text(RESULTS, json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


def joined(folder: Path, numbers: range, name: str) -> Path:
    """The MP4s ``folder``/NN.mp4 one after the other as ``folder``/``name``.mp4."""
    path = folder / f"{name}.mp4"
    if not path.exists():
        frames = [image for number in numbers
                  for image in VideoFile(folder / f"{number:02d}.mp4").read_bgr()]
        write_video(frames, folder / f".{name}.part.mp4", fps=10.0)
        (folder / f".{name}.part.mp4").rename(path)
    return path


def two_detects(checkpoint: Path, videos: list[Path], threads: int) -> dict:
    """Both videos through their own `comemory detect` process, started together."""
    with tempfile.TemporaryDirectory() as out:
        processes = [subprocess.Popen(
            [sys.executable, "-m", "comemory.cli", "detect", str(video), "--checkpoint",
             str(checkpoint), "--out", f"{out}/{number}", "--no-video", "--threads",
             str(threads)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            for number, video in enumerate(videos)]
        peak_mb = 0.0
        while any(p.poll() is None for p in processes):  # their memory, summed
            peak_mb = max(peak_mb, sum(resident_mb(p.pid) for p in processes))
            time.sleep(0.2)
        outputs = [p.communicate()[0] for p in processes]
    per_camera = {}
    for output in outputs:
        match = next(SUMMARY.match(line) for line in output.splitlines() if SUMMARY.match(line))
        per_camera[match.group(1)] = {"frames": int(match.group(2)),
                                      "fps": float(match.group(3))}
    return {"threads_each": threads, "cameras": per_camera,
            "total_fps": sum(c["fps"] for c in per_camera.values()),
            "peak_resident_mb_both": round(peak_mb, 1)}


def one_serve(checkpoint: Path, videos: list[Path], clips: bool) -> dict:
    """Both videos as cameras of one Service, read once, as fast as it scores them;
    ``clips``: record event clips too (VP8, about 10 ms a frame while an event lasts),
    work the detect runs (--no-video) do not do."""
    use_threads(0)
    with tempfile.TemporaryDirectory() as data:
        config = serve_config_from_dict({
            "data": data, "port": 0, "clips": clips,
            "cameras": [{"name": video.stem, "source": str(video),
                         "checkpoint": str(checkpoint), "loop": False, "realtime": False}
                        for video in videos]})
        service = Service(config, environ={})
        service.start(web=False)
        first = finished = None
        done, peak_mb = {}, 0.0
        while len(done) < len(service.cameras):
            now = time.perf_counter()
            peak_mb = max(peak_mb, resident_mb(os.getpid()))
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
            "seconds": finished - first, "peak_resident_mb": round(peak_mb, 1)}


def resident_mb(pid: int) -> float:
    """A process's resident memory now (0 once it has ended)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    line = next((x for x in status.splitlines() if x.startswith("VmRSS:")), None)
    return int(line.split()[1]) / 1024 if line else 0.0


if __name__ == "__main__":
    sys.exit(main())
