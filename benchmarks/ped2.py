"""The UCSD Ped2 benchmark: a training-free floor, the co-memory network, the thesis's
ablations and an MNAD baseline, all at one budget, evaluated on the last checkpoint.

    python benchmarks/ped2.py                       # every row (hours on 2 CPU cores)
    python benchmarks/ped2.py --rows floor comemory # some rows; the others are kept
    python benchmarks/ped2.py --table               # print the README table from the JSON

Each row trains on ../shared/data/ped2/training (resuming a killed run), evaluates the
final checkpoint on the test set (no checkpoint is chosen by its test score), and is
written into benchmarks/results/ped2-<preset>.json as soon as it finishes: its config,
seed, git commit, training and evaluation time, and every AUC (micro and macro under the
per-video max of the thesis, per-video min-max, and training calibration) plus pixel AUROC.
Skips with a message where the dataset is absent.
"""
from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from comemory import storage
from comemory.bench import machine
from comemory.checkpoint import load_checkpoint
from comemory.config import merge, preset
from comemory.evaluation import evaluate, evaluate_floor
from comemory.metrics import all_metrics
from comemory.training import train

PROJECT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = PROJECT.parent / "shared" / "data" / "ped2"

# name -> (what it is, settings over the preset). "comemory" is also the memory-10 row.
ROWS = {
    "floor": ("training-free floor: mean flow magnitude of the most moving patch", None),
    "comemory": ("co-memory: motion + appearance memory, 10 items each", {}),
    "no_motion_memory": ("without motion memory", {"model": {"motion_memory": 0}}),
    "memory_15": ("memory size 15 (both memories)",
                  {"model": {"appearance_memory": 15, "motion_memory": 15}}),
    "mnad": ("MNAD baseline: appearance only, 4 frames in, one memory of 10",
             {"model": {"architecture": "mnad"}}),
}
# Every row trains on all training frames, as when the table was measured (the presets
# hold back 10 % of them to set comemory detect's alert threshold, which AUC does not use).
ALL_TRAINING_FRAMES = {"train": {"holdout_fraction": 0.0}}
MAIN_SCORE = {"floor": "flow_floor", "mnad": "mnad"}  # others: "comemory"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--rows", nargs="+", choices=list(ROWS), default=list(ROWS))
    parser.add_argument("--runs", type=Path, default=PROJECT / "runs" / "bench",
                        help="run folders (checkpoints, losses, evaluation outputs)")
    parser.add_argument("--table", action="store_true", help="print the results table only")
    args = parser.parse_args()
    results_path = PROJECT / "benchmarks" / "results" / f"ped2-{args.preset}.json"
    if args.table:
        print(markdown_table(json.loads(results_path.read_text()), args.preset))
        return 0
    if not (args.data / "training").is_dir():
        print(f"skipped: UCSD Ped2 not found at {args.data} (see the README, Datasets)")
        return 0
    results = json.loads(results_path.read_text()) if results_path.exists() else {"rows": {}}
    for name in args.rows:
        print(f"== {name}: {ROWS[name][0]}", flush=True)
        results["rows"][name] = run_row(name, args.preset, args.data, args.runs)
        storage.write_text(results_path, json.dumps(results, indent=2))
        print(summary_line(name, results["rows"][name]), flush=True)
    print(markdown_table(results, args.preset))
    return 0


def run_row(name: str, preset_name: str, data: Path, runs: Path) -> dict:
    description, settings = ROWS[name]
    config = merge(preset(preset_name), ALL_TRAINING_FRAMES, source="benchmark")
    if settings is not None:
        config = merge(config, settings, source=f"benchmark row {name!r}")
    cache = runs / "cache"
    started = time.perf_counter()
    row = {"description": description, "config": config.to_dict(), "seed": config.train.seed,
           "git_commit": git_commit(), "data": str(data), "machine": machine()}
    if settings is None:
        metrics = evaluate_floor(config, data, runs / name / "eval", cache)
        row.update(train_seconds=0.0, epochs=0)
    else:
        checkpoint = train(config, data, runs / name, cache, resume=True)
        state = load_checkpoint(checkpoint)
        evaluation_started = time.perf_counter()
        metrics = evaluate(checkpoint, data, runs / name / "eval", cache)
        row.update(train_seconds=state.get("train_seconds"), epochs=state["epoch"],
                   eval_seconds=time.perf_counter() - evaluation_started)
    row.update(wall_seconds=time.perf_counter() - started, score=MAIN_SCORE.get(name, "comemory"),
               metrics=metrics, part_aucs=part_aucs(runs / name / "eval" / "scores.csv"))
    return row


def part_aucs(scores_csv: Path) -> dict:
    """Micro AUC of each score part alone (S_F, S_I, PSNR, feature distance), training-
    calibrated and per-video max: which part carries the score, and which drags it down."""
    with scores_csv.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    videos = sorted({r["video"] for r in rows})
    labels = [np.array([int(r["label"]) for r in rows if r["video"] == v]) for v in videos]
    result = {}
    for part, sign in (("flow_error", 1), ("frame_error", 1), ("psnr", -1), ("distance", 1)):
        if part not in rows[0]:
            continue
        values = [sign * np.array([float(r[part]) for r in rows if r["video"] == v])
                  for v in videos]
        metrics = all_metrics(values, labels)
        result[part] = {mode: metrics[mode]["micro_auc"] for mode in ("video_max", "none")}
    return result


def summary_line(name: str, row: dict) -> str:
    scores = row["metrics"]["scores"][row["score"]]
    return (f"{name}: micro AUC {scores['video_max']['micro_auc']:.3f} (per-video max), "
            f"{scores['none']['micro_auc']:.3f} (training-calibrated); "
            f"trained {row['train_seconds'] / 60:.1f} min")


def markdown_table(results: dict, preset_name: str) -> str:
    """One row per model: micro and macro AUC under each normalisation, pixel AUROC, and
    how far above the floor (same normalisation, micro) it lands."""
    rows = results["rows"]
    floor = rows.get("floor")
    header = ("| row | score | micro, video max | micro, video min-max | micro, training-"
              "calibrated | macro, training-calibrated | pixel AUROC | "
              "vs floor (micro: max / min-max / calibrated) | training |")
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for name in ROWS:
        if name not in rows:
            continue
        row = rows[name]
        scores = row["metrics"]["scores"][row["score"]]
        cells = [f"`{name}`", row["score"],
                 *(f"{scores[mode]['micro_auc']:.3f}" for mode in
                   ("video_max", "video_minmax", "none")),
                 _format(scores["none"]["macro_auc"]),
                 _format(row["metrics"].get("pixel_auroc"))]
        if floor is not None and name != "floor":
            floor_scores = floor["metrics"]["scores"]["flow_floor"]
            cells.append(" / ".join(
                f"{scores[m]['micro_auc'] - floor_scores[m]['micro_auc']:+.3f}"
                for m in ("video_max", "video_minmax", "none")))
        else:
            cells.append("")
        cells.append(f"{row['train_seconds'] / 60:.0f} min, {row['epochs']} ep"
                     if row["epochs"] else "none")
        lines.append("| " + " | ".join(cells) + " |")
    parts = ["", "Each score part alone, micro AUC (per-video max / training-calibrated):", "",
             "| row | flow_error S_F | frame_error S_I | PSNR | feature distance |",
             "|---|---|---|---|---|"]
    for name in ROWS:
        if name in rows and name != "floor":
            aucs = rows[name].get("part_aucs", {})
            cells = [" / ".join(f"{aucs[p][m]:.3f}" for m in ("video_max", "none"))
                     if p in aucs else "n/a"
                     for p in ("flow_error", "frame_error", "psnr", "distance")]
            parts.append(f"| `{name}` | " + " | ".join(cells) + " |")
    return f"Ped2, preset `{preset_name}`\n\n" + "\n".join(lines + parts)


def _format(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def git_commit() -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT, capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=PROJECT, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+uncommitted changes" if dirty else "")


if __name__ == "__main__":
    sys.exit(main())
