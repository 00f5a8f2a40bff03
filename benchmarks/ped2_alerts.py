"""Does the alert threshold keep its promise on Ped2? Tried as a new user would: each Ped2
test video written as an MP4, then `comemory detect` on it with a trained checkpoint.

    python benchmarks/ped2_alerts.py --row comemory     # the checkpoint of runs/ped2/comemory

Counts, over the test videos, the share of normal frames flagged (the promise:
score.false_alarm_rate of held-out normal training frames, 0.01 by default) and the share
of anomalous frames flagged, and the events. Writes benchmarks/results/ped2-alerts.json
(one entry per row). Skips with a message where the dataset is absent.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from comemory import storage
from comemory.checkpoint import load_checkpoint
from comemory.data.datasets import read_dataset
from comemory.data.frames import write_video
from comemory.detection import detect

PROJECT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = PROJECT.parent / "shared" / "data" / "ped2"
RESULTS = PROJECT / "benchmarks" / "results" / "ped2-alerts.json"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--row", default="comemory", help="run folder under --runs")
    parser.add_argument("--runs", type=Path, default=PROJECT / "runs" / "ped2")
    args = parser.parse_args()
    if not (args.data / "testing").is_dir():
        print(f"skipped: UCSD Ped2 not found at {args.data} (see the README, Datasets)")
        return 0
    checkpoint = args.runs / args.row / "checkpoint.pt"
    videos = write_mp4s(args.data, args.runs / "ped2-mp4")
    started = time.perf_counter()
    out = args.runs / args.row / "detect"
    flagged, labels, events = [], [], 0
    for name, (path, truth) in videos.items():
        (summary,) = detect(path, checkpoint, out, video=False, progress=False)
        rows = [json.loads(line) for line in
                (out / name / "scores.jsonl").read_text().splitlines()]
        flagged.append(np.array([r["anomalous"] for r in rows]))
        labels.append(truth[:len(rows)])
        events += len(json.loads((out / name / "events.json").read_text())["events"])
    flagged_all, labels_all = np.concatenate(flagged), np.concatenate(labels).astype(bool)
    calibration = load_checkpoint(checkpoint)["calibration"]
    result = {
        "checkpoint": str(checkpoint),
        "false_alarm_rate": calibration["false_alarm_rate"],
        "threshold": calibration["threshold"],
        "normal_frames_flagged": float(flagged_all[~labels_all].mean()),
        "anomalous_frames_flagged": float(flagged_all[labels_all].mean()),
        "events": events,
        "frames": int(labels_all.size),
        "seconds": time.perf_counter() - started,
    }
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results[args.row] = result
    storage.write_text(RESULTS, json.dumps(results, indent=2))
    print(json.dumps(result, indent=2))
    return 0


def write_mp4s(data: Path, folder: Path, split: str = "testing"
               ) -> dict[str, tuple[Path, np.ndarray | None]]:
    """Each video of ``split`` as an MP4 (mp4v, 10 frames/s), written once: {name: (path,
    labels; None for training videos)}."""
    folder.mkdir(parents=True, exist_ok=True)
    videos = {}
    for video in read_dataset("frames", data, split):
        path = folder / f"{video.name}.mp4"
        count = video.source.frame_count()
        if not path.exists():  # written under another name first: a kill leaves no half file
            partial = folder / f".{video.name}.part.mp4"
            write_video([cv2.imread(str(p)) for p in video.source.paths], partial, fps=10.0)
            partial.rename(path)
        labels = video.labels.resolve(count, video.name) if video.labels else None
        videos[video.name] = (path, labels)
    return videos


if __name__ == "__main__":
    sys.exit(main())
