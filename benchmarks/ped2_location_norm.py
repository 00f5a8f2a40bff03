"""Would normalising each pixel's error by its own training statistics help? A diagnostic
on training data only: no test label is read.

    python benchmarks/ped2_location_norm.py --rows comemory_videos comemory_videos_seed1

Ped2's camera looks down a walkway at an angle: a cyclist far away moves fewer pixels
than one near, and the network's errors are larger where people usually walk than on the
lawn. The scores today take the most anomalous patch of each frame and normalise it with
one mean and spread for the whole frame. Here each pixel's patch-mean error (log) is
z-scored with its own mean and standard deviation over the training frames (the frames
the network trained on, not the held-out ones) and the frame's score is the largest z.
For the network's flow error S_F, its frame error S_I and the training-free flow
magnitude, the validation AUC (raw, per kind and pooled) of the frame-wide maximum is
compared with that of the per-pixel one, at patch sizes 8 and 16. Writes
benchmarks/results/ped2-location-norm.json.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from comemory.checkpoint import load_checkpoint, model_from_checkpoint
from comemory.cpu import use_threads
from comemory.data.cache import prepare_split, read_split
from comemory.data.holdout import split_holdout
from comemory.scoring import flow_floor_errors, video_errors_per_patch
from comemory.scoring.errors import LOG_FLOOR, VideoErrors
from comemory.train.validation_set import ValidationSet, kind_aucs, validation_set
from ped2_rows import DEFAULT_DATA, PROJECT, ped2_missing  # beside this script
from rows import write_results  # beside this script

RESULTS = PROJECT / "benchmarks" / "results" / "ped2-location-norm.json"
PATCHES = (8, 16)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--rows", nargs="+", default=["comemory_videos"],
                        help="run folders under --runs whose checkpoints are measured")
    parser.add_argument("--runs", type=Path, default=PROJECT / "runs" / "ped2")
    args = parser.parse_args()
    use_threads(0)
    if ped2_missing(args.data, "training"):
        return 0
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for row in args.rows:
        results[row] = measure(args.runs / row / "checkpoint.pt", args.data,
                               args.runs / "cache")
        print(row, json.dumps(results[row], indent=1), flush=True)
        write_results(RESULTS, results)
    return 0


def measure(checkpoint: Path, data: Path, cache: Path) -> dict:
    """{patch: {map: {"frame_max" | "per_pixel": AUC per kind}}} for one checkpoint."""
    model, config, _ = model_from_checkpoint(load_checkpoint(checkpoint), checkpoint)
    sources = read_split(data, "training")
    whole = prepare_split(sources, "training", config, cache)
    training, _ = split_holdout(whole, config.train.holdout_fraction, model.past_frames,
                                by=config.train.holdout)
    validation = validation_set(sources, whole, config, model.past_frames)
    patches = list(PATCHES)
    fitted = video_errors_per_patch(model, training, config.score, patches,
                                    desc="training frames", keep_maps=True)
    checked = video_errors_per_patch(model, validation.videos, config.score, patches,
                                     desc="validation clips", keep_maps=True)
    result = {}
    for patch in patches:
        score = replace(config.score, patch_size=patch)
        floors = (flow_floor_errors(training, score, model.past_frames, keep_maps=True),
                  flow_floor_errors(validation.videos, score, model.past_frames,
                                    keep_maps=True))
        maps = {"flow_error": ("flow_maps", fitted[patch], checked[patch]),
                "frame_error": ("frame_maps", fitted[patch], checked[patch]),
                "flow_magnitude": ("flow_maps", *floors)}
        result[str(patch)] = {name: compare(field, fit, check, validation)
                              for name, (field, fit, check) in maps.items()}
    return result


def compare(field: str, fit: list[VideoErrors], check: list[VideoErrors],
            validation: ValidationSet) -> dict:
    """Validation AUC of the frame-wide maximum of ``field`` against the maximum of its
    per-pixel z-scores (log error, statistics from the ``fit`` frames)."""
    logs = np.log(np.concatenate([getattr(e, field) for e in fit]).astype(np.float64)
                  + LOG_FLOOR)
    mean, spread = logs.mean(0), logs.std(0) + 1e-6
    frame_max, per_pixel = [], []
    for errors in check:
        log_maps = np.log(getattr(errors, field).astype(np.float64) + LOG_FLOOR)
        frame_max.append(log_maps.reshape(len(log_maps), -1).max(1))
        per_pixel.append(((log_maps - mean) / spread).reshape(len(log_maps), -1).max(1))
    return {"frame_max": kind_aucs(frame_max, check, validation),
            "per_pixel": kind_aucs(per_pixel, check, validation)}


if __name__ == "__main__":
    raise SystemExit(main())
