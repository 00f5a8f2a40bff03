"""The learned motion model on UCSD Ped2 (development set): objects from motion, each
object's motion vector (8 direction bins / box height, optionally its position; or
the raw bins, or the raw bins / the speed of the object's band of rows, ``score
.perspective``'s row speeds measured on the training objects), a Gaussian mixture fitted
on the training videos' objects, a frame scored by its most unusual object.

    python benchmarks/ped2_motion_model.py      # about 3 minutes on 2 cores

Flow: DIS medium at the frames' own 360 x 240. Boxes: ``comemory.data.objects`` with the
config's defaults, its background models first shown every fifth training frame. The
mixture: 5 full-covariance components. Nothing is chosen on the test split: one setting
of each kind is measured, with and without position. Micro AUC over every test frame:
"calibrated" = the negative log-likelihood itself (a training statistic), causal over the
last 9 frames too; "per-video min-max" = each video scaled by its own range (MNAD's
protocol, offline). Diagnostics without the mixture: each frame's fastest object, by its
raw flow and per box height. Written to
benchmarks/results/ped2-motion-model.json. Skips where Ped2 is absent.
"""
from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from comemory import storage
from comemory.bench import machine
from comemory.config import FlowConfig, ObjectsConfig
from comemory.data.datasets import read_dataset
from comemory.data.flow import FlowEstimator
from comemory.data.objects import ObjectFinder
from comemory.progress import progress
from comemory.scoring.calibration import fit_row_speeds
from comemory.scoring.motion_model import MotionModel, motion_vector
from comemory.scoring.smoothing import causal_mean
from ped2_rows import (  # beside this script
    DEFAULT_DATA,
    LEARN_EVERY,
    PROJECT,
    normal_frames,
    object_benchmark_options,
    ped2_missing,
)
from rows import git_commit, write_results

RESULTS = PROJECT / "benchmarks" / "results" / "ped2-motion-model.json"
COMPONENTS = 5
ROW_BANDS = 15  # row speeds measured in 15 bands of rows: 16 px each at 240 rows
CAUSAL_WINDOW = 9  # one fixed smoothing, the longest validation offers elsewhere


def main() -> int:
    args, settings = object_benchmark_options(__doc__, RESULTS)
    if ped2_missing(DEFAULT_DATA, "training", "testing"):
        return 0
    write_results(args.results, measure(DEFAULT_DATA, "frames", "ped2", settings))
    return 0


def measure(data: Path, dataset: str, name: str, settings: ObjectsConfig) -> dict:
    """Every row and diagnostic on the set in ``data`` (read in the ``dataset`` layout);
    its object vectors are cached as runs/``name``-motion-vectors-<settings>.npz."""
    started = time.perf_counter()
    training = read_dataset(dataset, data, "training")
    test = read_dataset(dataset, data, "testing")
    train_objects, test_objects = _cached_objects(training, test, settings, name)
    labels = [video.labels.resolve(video.source.frame_count(), video.name) for video in test]
    result = {"components": COMPONENTS, "learned_from": f"every {LEARN_EVERY}th training frame",
              "objects": vars(settings), "rows": {}}
    speeds = _row_speeds(train_objects)
    for row, position, scale in (("motion", False, "height"),
                                 ("motion_position", True, "height"),
                                 ("motion_raw_flow", False, "raw"),
                                 ("motion_per_row_speed", False, speeds)):
        result["rows"][row] = _row(train_objects, test_objects, labels, position, scale)
        print(row, {k: round(v, 3) for k, v in result["rows"][row].items()
                    if isinstance(v, float)}, flush=True)
    result["diagnostics"] = _diagnostics(train_objects, test_objects, np.concatenate(labels),
                                         speeds)
    print(result["diagnostics"], flush=True)
    return {**result, "seconds": time.perf_counter() - started, "git_commit": git_commit(),
            "machine": machine()}


def _cached_objects(training, test, settings: ObjectsConfig, name: str) -> tuple[list, list]:
    """Every frame's object vectors, computed once per set and setting of the object
    finder into runs/``name``-motion-vectors-<settings>.npz."""
    key = hashlib.sha1(json.dumps(vars(settings), sort_keys=True).encode()).hexdigest()[:10]
    cache = PROJECT / "runs" / f"{name}-motion-vectors-{key}.npz"
    if not cache.exists():
        normal = normal_frames(training)
        vectors = {f"train/{v.name}": _objects(v.source.read_bgr(), normal, settings)
                   for v in progress(training, desc="training objects", unit="video")}
        vectors |= {f"test/{v.name}": _objects(v.source.read_bgr(), normal, settings)
                    for v in progress(test, desc="test objects", unit="video")}
        flat = {f"{key}/{t}": frame for key, frames in vectors.items()
                for t, frame in enumerate(frames)}
        cache.parent.mkdir(exist_ok=True)
        with storage.atomic_open(cache) as handle:  # a killed run leaves no half cache
            np.savez(handle, **flat)
    stored = np.load(cache)

    def frames_of(key: str, count: int) -> list[np.ndarray]:
        return [stored[f"{key}/{t}"] for t in range(count)]

    return ([frames_of(f"train/{v.name}", v.source.frame_count()) for v in training],
            [frames_of(f"test/{v.name}", v.source.frame_count()) for v in test])


def _objects(images: np.ndarray, normal: list[np.ndarray], settings: ObjectsConfig
             ) -> list[np.ndarray]:
    """Per frame, the motion vectors with position (k, 10) of its objects and their box
    heights (an 11th column, for diagnostics); the first frame, with no flow into it, has
    none."""
    finder, flow_of = ObjectFinder(settings), FlowEstimator(FlowConfig())
    finder.learn(normal)
    frames = []
    for t, image in enumerate(images):
        boxes = finder.find(image)
        if t == 0:
            frames.append(np.zeros((0, 11)))
            continue
        flow = flow_of(images[t - 1], image)
        frames.append(np.array([[*motion_vector(flow, box, image.shape[:2],
                                                finder.foreground_mask), box.height]
                                for box in boxes]).reshape(-1, 11))
    return frames


def _vectors(videos: list[list[np.ndarray]], position: bool,
             scale: str | np.ndarray = "height") -> tuple[np.ndarray, list[int]]:
    """The model's input: the bins per box height ("height"), the raw flow ("raw": times
    the height again) or the raw flow per its row's speed (``scale`` the row speeds, as
    ``_row_speeds``), with the position where asked."""
    frames = [np.hstack([_scaled_bins(frame, scale),
                         frame[:, 8:10] if position else frame[:, :0]])
              for video in videos for frame in video]
    return np.concatenate(frames), [len(frame) for frame in frames]


def _scaled_bins(frame: np.ndarray, scale: str | np.ndarray) -> np.ndarray:
    if isinstance(scale, str):
        return frame[:, :8] * (1 if scale == "height" else frame[:, 10:11])
    return frame[:, :8] * frame[:, 10:11] / scale[_row_bins(frame, len(scale))][:, None]


def _row_bins(frame: np.ndarray, bins: int) -> np.ndarray:
    """Each object's row band (of ``bins`` across the frame's height) by its centre."""
    return np.minimum((frame[:, 9] * bins).astype(int), bins - 1)


def _row_speeds(videos: list[list[np.ndarray]]) -> np.ndarray:
    """(ROW_BANDS,) the row speeds of ``score.perspective`` (comemory.scoring.calibration
    .fit_row_speeds) measured on the training objects instead of patches: each training
    frame's fastest object (raw mean flow magnitude) in each band of rows."""
    fastest = []
    for frame in (frame for video in videos for frame in video):
        by_band = np.zeros(ROW_BANDS)
        np.maximum.at(by_band, _row_bins(frame, ROW_BANDS), frame[:, :8].sum(1) * frame[:, 10])
        fastest.append(by_band)
    return fit_row_speeds(np.array(fastest))


def _row(train_objects, test_objects, labels, position: bool,
         scale: str | np.ndarray) -> dict:
    vectors, counts = _vectors(train_objects, position, scale)
    model = MotionModel(COMPONENTS).fit(vectors, counts)
    scores = []
    for video in test_objects:
        test_vectors, test_counts = _vectors([video], position, scale)
        scores.append(model.frame_scores(model.score(test_vectors), test_counts))
    truth = np.concatenate(labels)
    return {"training_objects": len(vectors), "quiet_score": model.quiet,
            "calibrated_raw": float(roc_auc_score(truth, np.concatenate(scores))),
            "calibrated_causal": float(roc_auc_score(truth, np.concatenate(
                [causal_mean(s, CAUSAL_WINDOW) for s in scores]))),
            "per_video_min_max": float(roc_auc_score(truth, np.concatenate(
                [s - s.min() for s in scores]) / np.concatenate(
                [np.full(len(s), max(np.ptp(s), 1e-9)) for s in scores])))}


def _diagnostics(train_objects: list[list[np.ndarray]], test_objects: list[list[np.ndarray]],
                 truth: np.ndarray, speeds: np.ndarray) -> dict:
    """No mixture: a frame scored by its fastest object, by the object's own flow
    magnitude (summed over the bins) with and without dividing by its box height, the
    latter over boxes at least 20 px tall, and divided by the height the training boxes
    have at its row (a straight line fitted to their heights by their centres' rows) or
    by its row's speed (``speeds``): where the learned model loses."""
    frames = [frame for video in test_objects for frame in video]
    boxes = np.concatenate([frame for video in train_objects for frame in video])
    row_height = np.polyfit(boxes[:, 9], boxes[:, 10], 1)

    def auc(speed, keep=lambda f: np.ones(len(f), bool)) -> float:
        scores = [speed(f[keep(f)]).max() if keep(f).any() else 0.0 for f in frames]
        return float(roc_auc_score(truth, scores))

    per_height = lambda f: f[:, :8].sum(1)  # noqa: E731
    return {"fastest_object_raw": auc(lambda f: per_height(f) * f[:, 10]),
            "fastest_object_per_height": auc(per_height),
            "fastest_object_per_height_20px": auc(per_height, lambda f: f[:, 10] >= 20),
            "fastest_object_per_row_height": auc(
                lambda f: per_height(f) * f[:, 10] / np.maximum(np.polyval(row_height,
                                                                           f[:, 9]), 5)),
            "fastest_object_per_row_speed": auc(
                lambda f: per_height(f) * f[:, 10] / speeds[_row_bins(f, len(speeds))])}


if __name__ == "__main__":
    sys.exit(main())
