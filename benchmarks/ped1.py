"""The UCSD Ped1 benchmark: the evaluation set. Nothing in comemory was chosen on it.

    python benchmarks/ped1.py --rows floor_native_videos          # about 5 minutes
    python benchmarks/ped1.py --rows comemory_videos --seed 1      # one training run
    python benchmarks/ped1.py --alerts comemory_videos             # detect on the test MP4s
    python benchmarks/ped1.py --alerts comemory_videos --adapt-from-held-out   # adaptation on
    python benchmarks/ped1.py --alerts objects_videos --cross-fit 4   # threshold cross-fitted
    python benchmarks/ped1.py --table                              # every row
    python benchmarks/ped1.py --readme-table                       # the README's table

The rules (docs/benchmarks.md, "Ped1: the evaluation set"): every row below was committed
before its first test figure was computed, and each row records the commit it ran from;
the test labels are read once per row, by ``evaluate``, after training and validation;
no default, preset, pseudo-anomaly or rule changes because of a Ped1 test figure. Ped1's
training videos are used as any user's footage: the validation set and the alert
threshold come from a fifth of them, held out whole.

Reads ../shared/data/ped1 in the own-videos layout (``--dataset videos``: H.264 MP4 files,
labels.csv, testing_masks/ for 10 test clips), so training, validation, evaluate and the
alert check all decode the same compressed files a camera's user has. Rows go to
benchmarks/results/ped1.json (the structure of ped2.json), the alert check to
ped1-alerts.json. Skips with a message where the dataset is absent.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from comemory.config import Config
from comemory.cpu import use_threads
from comemory.data.datasets import read_dataset
from rows import (  # beside this script
    CHOSEN,
    FULL_EPOCHS,
    HELD_OUT_VIDEOS,
    MNAD_AS_ITS_CODE,
    MOTION_PRIOR,
    PROJECT,
    SHARED_DATA,
    alert_variant,
    alerts_through_detect,
    build_row_config,
    dataset_missing,
    print_table,
    row_parser,
    run_row,
    save_alerts,
    save_row,
    summary_line,
)

DEFAULT_DATA = SHARED_DATA / "ped1"
RESULTS = PROJECT / "benchmarks" / "results" / "ped1.json"
ALERTS = PROJECT / "benchmarks" / "results" / "ped1-alerts.json"
DATASET = "videos"

# The design as it stood when Ped1 was taken up (commit 6b6b97b's defaults, the `cpu`
# preset, Ped2's current protocol), frozen before any Ped1 test figure: name -> (what it
# is, settings over the cpu preset, epochs; None: training-free). The cpu preset's 3
# epochs take under the 60 minutes a row may train on 2 cores, so no budget curve was run.
ROWS: dict[str, tuple[str, list[str], int | None]] = {
    "floor_native_videos": ("floor: flow magnitude, flow at the frames' 238 x 158, settings "
                            "chosen on whole held-out training videos",
                            [*CHOSEN, *HELD_OUT_VIDEOS], None),
    "comemory_videos": ("co-memory, cpu preset, whole training videos held out for "
                        "validation and the threshold", [*CHOSEN, *HELD_OUT_VIDEOS],
                        FULL_EPOCHS),
    "no_motion_memory_videos": ("without motion memory", [*CHOSEN, *HELD_OUT_VIDEOS,
                                                          "model.motion_memory=0"],
                                FULL_EPOCHS),
    "memory_15_videos": ("memories of 15 items (the thesis's setting for its second "
                         "dataset)", [*CHOSEN, *HELD_OUT_VIDEOS, "model.appearance_memory=15",
                                      "model.motion_memory=15"], FULL_EPOCHS),
    "mnad_videos": ("MNAD as its code trains it", [*MNAD_AS_ITS_CODE, *HELD_OUT_VIDEOS],
                    FULL_EPOCHS),
    "comemory_location_videos": ("co-memory (comemory_videos's checkpoints), the per-pixel "
                                 "location formula offered to validation",
                                 [*CHOSEN, *HELD_OUT_VIDEOS, "score.offer_location=true"],
                                 FULL_EPOCHS),
    # Frozen later (issue 26), before its first Ped1 test figure: the co-memory network on
    # objects' crops, preset "objects" as Ped2 (development) left it (flows in grid pixels)
    "objects_videos": ("co-memory on objects' crops (preset objects: boxes from motion on "
                       "a 256 x 256 grid, 32 x 32 crops, flows in grid pixels)",
                       [*CHOSEN, *HELD_OUT_VIDEOS], FULL_EPOCHS),
    # Frozen later (issue 26's motion model, learned from motion rather than from boxes),
    # before its first Ped1 test figure: the floor with each pixel's flow magnitude divided
    # by the speed the training frames show at its row (score.perspective; Ped2,
    # development: 0.960 against the plain floor's 0.953, calibrated, causal)
    "floor_perspective_videos": ("floor: flow magnitude at the frames' 238 x 158, each "
                                 "pixel's divided by the speed training frames show at "
                                 "its row (score.perspective)",
                                 [*CHOSEN, *HELD_OUT_VIDEOS, "score.perspective=true"], None),
    # Frozen later (issue 27's alert check for it), before its first Ped1 figure: the same
    # floor as a detector (model.architecture flow_floor), the checkpoint `comemory train`
    # writes, scored by evaluate and, for alerts, by detect on the test MP4s; the epochs
    # are not used
    "floor_perspective_checkpoint_videos": ("floor per row speed as a detector "
                                            "(model.architecture flow_floor)",
                                            [*CHOSEN, *HELD_OUT_VIDEOS,
                                             "score.perspective=true",
                                             "model.architecture=flow_floor"], FULL_EPOCHS),
    # Frozen later (issue 26's ablation), before its first Ped1 figure: the objects row
    # without motion memory, as Ped2 (development) ran it (0.868 against 0.880-0.896)
    "objects_no_motion_memory_videos": ("co-memory on objects' crops (preset objects) "
                                        "without motion memory",
                                        [*CHOSEN, *HELD_OUT_VIDEOS, "model.motion_memory=0"],
                                        FULL_EPOCHS),
    # Frozen later (issue 26: does the learning add to the floor per row speed?), before
    # their first Ped1 figure: the network's flow error counted against the square of each
    # row's speed, alone and with the motion prior per row speed, on comemory_videos's
    # checkpoints (Ped2, development, on a retrained seed 0: 0.891 and 0.934 against the
    # network's own 0.905 and the floor per row speed's 0.960, calibrated, causal)
    "comemory_perspective_videos": ("co-memory (comemory_videos's checkpoints), S_F divided "
                                    "by the square of its row's speed (score.perspective), "
                                    "settings chosen again on validation",
                                    [*CHOSEN, *HELD_OUT_VIDEOS, "score.perspective=true"],
                                    FULL_EPOCHS),
    "comemory_motion_perspective_videos": ("co-memory + the motion prior, both per row speed "
                                           "(score.perspective; zscore, motion weight 1; "
                                           "comemory_videos's checkpoints)",
                                           [*CHOSEN, *HELD_OUT_VIDEOS, *MOTION_PRIOR,
                                            "score.perspective=true"], FULL_EPOCHS),
    # Frozen later (issue 26's last ablation), before its first Ped1 figure: the objects
    # row with memories of 15 items, as Ped2 (development) ran it (0.888 against 0.887)
    "objects_memory_15_videos": ("co-memory on objects' crops (preset objects), memories "
                                 "of 15 items",
                                 [*CHOSEN, *HELD_OUT_VIDEOS, "model.appearance_memory=15",
                                  "model.motion_memory=15"], FULL_EPOCHS),
    # Frozen later (issue 26's learned motion model in the product, score.motion_model),
    # before their first Ped1 figure: on objects_videos's checkpoints, the motion model
    # alone and z-scored and added to the network's zscore score, as Ped2 (development)
    # ran them
    "objects_motion_model_videos": ("the motion model alone (score.motion_model alone; "
                                    "objects_videos's boxes)",
                                    [*CHOSEN, *HELD_OUT_VIDEOS, "score.motion_model=alone"],
                                    FULL_EPOCHS),
    "objects_motion_model_added_videos": ("co-memory on objects' crops + the motion model, "
                                          "each z-scored on training frames (zscore, "
                                          "score.motion_model added; objects_videos's "
                                          "checkpoints)",
                                          [*CHOSEN, *HELD_OUT_VIDEOS, "score.formula=zscore",
                                           "score.motion_model=added"], FULL_EPOCHS),
}
# rows built on another preset than "cpu"
PRESETS = {"objects_videos": "objects", "objects_no_motion_memory_videos": "objects",
           "objects_memory_15_videos": "objects", "objects_motion_model_videos": "objects",
           "objects_motion_model_added_videos": "objects"}
# rows that differ from another only in how frames are scored: that row's checkpoint is
# copied, its score settings and threshold chosen again on validation, then the test scored
SAME_TRAINING = {"comemory_location_videos": "comemory_videos",
                 "comemory_perspective_videos": "comemory_videos",
                 "comemory_motion_perspective_videos": "comemory_videos",
                 "objects_motion_model_videos": "objects_videos",
                 "objects_motion_model_added_videos": "objects_videos"}

# The README's table, each configuration with its seeds
README_ROWS = {
    "floor: flow magnitude, flow at 238 x 158": ["floor_native_videos"],
    "floor: flow magnitude per row speed (`score.perspective`; alerts: as a detector)": [
        "floor_perspective_checkpoint_videos"],
    "co-memory, `cpu` preset, the default": [
        "comemory_videos", "comemory_videos_seed1", "comemory_videos_seed2"],
    "co-memory, `location` offered to validation (never chosen; alerts: seeds 1 and 2)": [
        "comemory_location_videos", "comemory_location_videos_seed1",
        "comemory_location_videos_seed2"],
    "without motion memory": ["no_motion_memory_videos"],
    "memories of 15 items": ["memory_15_videos"],
    "MNAD as its code trains it": ["mnad_videos"],
    "co-memory on objects' crops, `objects` preset (frozen 13979ee)": [
        "objects_videos", "objects_videos_seed1", "objects_videos_seed2"],
    "objects without motion memory (frozen c1797e3)": ["objects_no_motion_memory_videos"],
    "objects, memories of 15 items (frozen c05d56a)": ["objects_memory_15_videos"],
    "the motion model alone (`score.motion_model`, frozen 2e55751; seed 0's boxes)": [
        "objects_motion_model_videos"],
    "objects + the motion model, z-scored and added (frozen 2e55751; seed 0)": [
        "objects_motion_model_added_videos"],
    "co-memory, S_F per row speed (`score.perspective`, frozen 3fb75ee; seed 0)": [
        "comemory_perspective_videos"],
    "co-memory + motion prior, both per row speed (frozen 3fb75ee; alerts: seed 0)": [
        "comemory_motion_perspective_videos", "comemory_motion_perspective_videos_seed1",
        "comemory_motion_perspective_videos_seed2"],
}


def main() -> int:
    parser = row_parser(__doc__, list(ROWS), DEFAULT_DATA, PROJECT / "runs" / "ped1", [])
    parser.add_argument("--results", type=Path, default=RESULTS, help="rows file (alerts go "
                        "to ped1-alerts.json beside it)")
    parser.add_argument("--alerts", metavar="ROW", help="run `comemory detect` with ROW's "
                        "checkpoint (e.g. comemory_videos_seed1) on each test MP4")
    parser.add_argument("--adapt-from-held-out", action="store_true", help="with --alerts: "
                        "per-camera adaptation from ROW's held-out training videos, marked "
                        "normal (the entry is ROW_adapted)")
    parser.add_argument("--cross-fit", type=int, metavar="K", help="with --alerts: first set "
                        "the threshold of a copy of ROW (ROW_crossfit) by K-fold "
                        "cross-fitting (comemory calibrate; K trainings)")
    args = parser.parse_args()
    use_threads(args.threads)
    if args.table or args.readme_table:
        print_table(args.results, args.results.parent / ALERTS.name,
                    README_ROWS if args.readme_table else None)
        return 0
    if dataset_missing(args.data, "UCSD Ped1", "training", "testing"):
        return 0
    if args.alerts:
        return alerts(args.data, args.runs, args.alerts, args.results.parent / ALERTS.name,
                      args.adapt_from_held_out, args.cross_fit)
    for name in args.rows:
        key = name if args.seed == 0 else f"{name}_seed{args.seed}"
        print(f"== {key}: {ROWS[name][0]}", flush=True)
        rescore_from = (args.runs / (SAME_TRAINING[name] + key.removeprefix(name))
                        if name in SAME_TRAINING else None)
        row = run_row(ROWS[name][0], ped1_config(name, args.seed, args.threads),
                      ROWS[name][2] is not None, args.data, args.runs / key,
                      args.runs / "cache", DATASET, rescore_from)
        save_row(args.results, key, row)
        print(summary_line(key, row), flush=True)
    return 0


def ped1_config(name: str, seed: int, threads: int = 0) -> Config:
    _, settings, epochs = ROWS[name]
    return build_row_config(settings, epochs, seed, threads, PRESETS.get(name, "cpu"))


def alerts(data: Path, runs: Path, row: str, results: Path, adapt: bool = False,
           cross_fit_folds: int | None = None) -> int:
    """The alert check through ``comemory detect`` on Ped1's own test MP4 files; with
    ``adapt``, per-camera adaptation from the row's held-out training videos; with
    ``cross_fit_folds``, on a copy of the row whose threshold was cross-fitted."""
    videos = {video.name: (video.source.location,
                           video.labels.resolve(video.source.frame_count(), video.name))
              for video in read_dataset(DATASET, data, "testing")}
    training = ({video.name: Path(video.source.location)
                 for video in read_dataset(DATASET, data, "training")} if adapt else None)
    checkpoint, adapt_from, name = alert_variant(runs, row, data, DATASET, cross_fit_folds,
                                                 training, SAME_TRAINING)
    result = alerts_through_detect(checkpoint, videos, runs / name / "detect", adapt_from)
    save_alerts(results, name, result)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
