"""How steady is each score part on normal footage? A diagnostic on training data only.

    python benchmarks/ped2_score_noise.py --row comemory_videos

Runs a row's checkpoint over every Ped2 training video (trained-on and held-out alike;
all normal) and, for each score part (the network's flow error S_F(P~), its frame error
S_I(P~), and the floor's motion: the most moving patch's flow magnitude), measures the
spread of its log within each video (frame-to-frame noise) and of each video's median
log between videos (a scale a training calibration cannot undo). A part that is noisy
on normal frames needs more of an anomaly to stand out. Writes
benchmarks/results/ped2-score-noise.json (one entry per row).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from comemory.checkpoint import load_checkpoint, model_from_checkpoint
from comemory.cpu import use_threads
from comemory.data.cache import prepare_split, read_split
from comemory.scoring import video_errors
from comemory.scoring.errors import LOG_FLOOR  # the scores' own: a part of 0 has no log
from ped2_rows import DEFAULT_DATA, PROJECT, ped2_missing  # beside this script
from rows import write_results  # beside this script

RESULTS = PROJECT / "benchmarks" / "results" / "ped2-score-noise.json"
PARTS = ("flow_error", "frame_error", "motion")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--row", default="comemory_videos", help="run folder under --runs")
    parser.add_argument("--runs", type=Path, default=PROJECT / "runs" / "ped2")
    args = parser.parse_args()
    use_threads(0)
    if ped2_missing(args.data, "training"):
        return 0
    checkpoint = args.runs / args.row / "checkpoint.pt"
    model, config, _ = model_from_checkpoint(load_checkpoint(checkpoint), checkpoint)
    videos = prepare_split(read_split(args.data, "training"), "training", config,
                           args.runs / "cache")
    errors = video_errors(model, videos, config.score, desc="training videos")
    result = {"checkpoint": str(checkpoint), "patch_size": config.score.patch_size,
              "videos": len(errors)}
    for part in PARTS:
        logs = [np.log(np.asarray(getattr(e, part), np.float64) + LOG_FLOOR) for e in errors]
        result[part] = {
            "within_video_sd_of_log": float(np.median([np.std(v) for v in logs])),
            "between_video_sd_of_median_log": float(np.std([np.median(v) for v in logs])),
        }
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results[args.row] = result
    write_results(RESULTS, results)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
