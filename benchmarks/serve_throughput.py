"""Several cameras in one `comemory serve` process against one `comemory detect` process
each.

    python benchmarks/serve_throughput.py                 # Ped2's cpu-preset checkpoint
    python benchmarks/serve_throughput.py --checkpoint runs/demo/run/checkpoint.pt \\
        --videos a.mp4 b.mp4
    python benchmarks/serve_throughput.py --repeats 3   # the two main ways, alternated
    python benchmarks/serve_throughput.py --cameras 4 --repeats 2   # four cameras

Each way scores the same videos once, as fast as it can (no pacing to the frame rate);
by default two, Ped2's test videos 01-06 and 07-12 each joined into one (``--cameras 4``:
01-03, 04-06, 07-09, 10-12):
  - detect xN, 1 thread each: N processes started together (detect's default threads);
  - detect xN, 2 threads each: the same with every process on all cores;
  - serve: one process, the videos as cameras, one model, all cores (a scoring thread
    per core, at most one per camera, frames queued for a camera batched); without event
    clips (the same work as detect --no-video), and with them.
Frames/s per camera = its frames / the seconds until its last frame was scored (process
start-up and model loading excluded for both: detect's own figure, serve's from the first
frame), and the resident memory: the detect processes' together at its highest, the
serve process's. With ``--repeats N`` the two main ways (detect xN at 1 thread each, serve
without clips) run N times, alternated, and "repeats" gives every total and which way won
each time: a win smaller than the run-to-run spread is no win. Writes
benchmarks/results/serve-throughput.json (serve-throughput-4-cameras.json for four). Run it
alone on the machine.
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

from comemory.bench import machine
from comemory.cpu import use_threads
from comemory.data.frames import VideoFile
from comemory.serve import Service
from comemory.serve.config import serve_config_from_dict
from comemory.detect.video_writer import write_video
from rows import write_results  # beside this script

PROJECT = Path(__file__).resolve().parents[1]
RESULTS = PROJECT / "benchmarks" / "results" / "serve-throughput.json"
DEFAULT_CHECKPOINT = PROJECT / "runs" / "ped2" / "comemory" / "checkpoint.pt"
PED2_MP4 = PROJECT / "runs" / "ped2" / "ped2-mp4"  # written by benchmarks/ped2_alerts.py
SUMMARY = re.compile(r"^(\S+): (\d+) frames, .*\(([\d.]+) frames/s\)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--videos", type=Path, nargs="+", help="one video per camera "
                        "(default: Ped2's test videos, joined into --cameras videos)")
    parser.add_argument("--cameras", type=int, default=2, choices=(2, 3, 4, 6),
                        help="cameras made from Ped2's 12 test videos (default 2)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="run the two main ways this many times, alternated")
    args = parser.parse_args()
    if args.videos is None and (PED2_MP4 / "12.mp4").exists():
        per = 12 // args.cameras
        args.videos = [joined(PED2_MP4, range(first, first + per),
                              f"ped2-{first:02d}-{first + per - 1:02d}")
                       for first in range(1, 13, per)]
    missing = [p for p in (args.checkpoint, *(args.videos or [PED2_MP4 / "12.mp4"]))
               if not p.exists()]
    if missing:
        print(f"skipped: {missing[0]} not found (train the Ped2 row and run "
              "benchmarks/ped2_alerts.py first, or pass --checkpoint and --videos)")
        return 0
    detects, serves = [], []
    for _ in range(max(1, args.repeats)):
        detects.append(detect_processes(args.checkpoint, args.videos, 1))
        serves.append(one_serve(args.checkpoint, args.videos, clips=False))
    result = {"machine": machine(), "checkpoint": str(args.checkpoint),
              "videos": [str(v) for v in args.videos],
              "detect_1_thread_each": detects[0],
              "detect_2_threads_each": detect_processes(args.checkpoint, args.videos, 2),
              "serve": serves[0],
              "repeats": repeated(detects, serves),
              "serve_with_clips": one_serve(args.checkpoint, args.videos, clips=True),
              "measured": time.strftime("%Y-%m-%d %H:%M")}
    results = (RESULTS if len(args.videos) == 2
               else RESULTS.with_name(f"serve-throughput-{len(args.videos)}-cameras.json"))
    write_results(results, result)
    print(json.dumps(result, indent=2))
    return 0


def repeated(detects: list[dict], serves: list[dict]) -> dict:
    """Every repeat's total frames/s of both ways, their means and ranges, and the wins."""
    detect = [round(d["total_fps"], 2) for d in detects]
    serve = [round(s["total_fps"], 2) for s in serves]
    return {"detect_1_thread_each_total_fps": detect, "serve_total_fps": serve,
            "detect_mean": round(sum(detect) / len(detect), 2),
            "serve_mean": round(sum(serve) / len(serve), 2),
            "detect_range": round(max(detect) - min(detect), 2),
            "serve_range": round(max(serve) - min(serve), 2),
            "serve_won": sum(s > d for s, d in zip(serve, detect, strict=True)),
            "of": len(serve)}


def joined(folder: Path, numbers: range, name: str) -> Path:
    """The MP4s ``folder``/NN.mp4 one after the other as ``folder``/``name``.mp4."""
    path = folder / f"{name}.mp4"
    if not path.exists():
        frames = [image for number in numbers
                  for image in VideoFile(folder / f"{number:02d}.mp4").read_bgr()]
        write_video(frames, folder / f".{name}.part.mp4", fps=10.0)
        (folder / f".{name}.part.mp4").rename(path)
    return path


def detect_processes(checkpoint: Path, videos: list[Path], threads: int) -> dict:
    """Each video through its own `comemory detect` process, all started together."""
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
            "peak_resident_mb_all": round(peak_mb, 1)}


def one_serve(checkpoint: Path, videos: list[Path], clips: bool) -> dict:
    """The videos as cameras of one Service, read once, as fast as it scores them;
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
            if first is None and any(c.view.scored for c in service.cameras):
                first = now
            for camera in service.cameras:
                if (camera.name not in done and camera.feed.status == "ended"
                        and camera.view.scored == camera.feed.read):
                    done[camera.name] = (camera.view.scored, now)
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
