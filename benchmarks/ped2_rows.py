"""The Ped2 rows (what each trains and how it is scored) and Ped2's data as the rows read
it: a library for ped2.py and the ped2_* scripts, which import it, never each other.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from comemory import storage
from comemory.config import Config, ObjectsConfig, apply_overrides
from comemory.data.datasets import Video, read_dataset
from comemory.detect.video_writer import write_video
from rows import (  # beside this module
    CHOSEN,
    FULL_EPOCHS,
    HELD_OUT_VIDEOS,
    MNAD_AS_ITS_CODE,
    MOTION_PRIOR,
    PROJECT,
    SHARED_DATA,
    build_row_config,
    dataset_missing,
    run_row,
)

DEFAULT_DATA = SHARED_DATA / "ped2"
RESULTS = PROJECT / "benchmarks" / "results" / "ped2.json"
ALERTS = PROJECT / "benchmarks" / "results" / "ped2-alerts.json"

# CHOSEN (native flow), FULL_EPOCHS (3) and HELD_OUT_VIDEOS: rows.py says why.
# The flow on the model's 128 x 128 frames, as the cpu preset had it before the choice
# above (the preset has since taken native flow, so the rows that measure the old way say so)
SQUASHED_FLOW = "flow.at=model"
SHORT_EPOCHS = 3
# The paper's size (preset "paper": 256 x 256, C = 512, colour input, batch 4, Adam 1e-4) on
# a GPU (benchmarks/ped2_device.py), with the CPU rows' choices: native flow, whole videos
# held out, and bf16 autocast with NHWC convolutions (as the cpu preset, for speed);
# checkpoints at epoch ends only (a 430 MB write every 100 steps would cost more than the
# steps). Its epochs are the thesis's 60 unless --epochs says how many fit the GPU time.
PAPER_ON_GPU = ["train.precision=auto", "train.channels_last=true", "train.checkpoint_every=0"]
PAPER_EPOCHS = 60

# name -> (what it is, settings over the cpu preset, epochs; None: training-free)
ROWS: dict[str, tuple[str, list[str], int | None]] = {
    "floor_squash": ("floor: flow magnitude, flow on the squashed 128 x 128 frames",
                     [SQUASHED_FLOW], None),
    "floor_native": ("floor: flow magnitude, flow at 360 x 240 resized to the grid",
                     ["flow.at=native"], None),
    "floor_native_letterbox": ("floor: flow at 360 x 240, frames letterboxed (aspect kept)",
                               ["flow.at=native", "model.resize=letterbox"], None),
    "floor_native_videos": ("floor: flow at 360 x 240, settings chosen on whole held-out "
                            "training videos", ["flow.at=native", *HELD_OUT_VIDEOS], None),
    "floor_native_soft_videos": ("floor: flow at 360 x 240, whole held-out training videos, "
                                 "settings chosen on validation whose pasted objects fade "
                                 "in at their edges", ["flow.at=native", *HELD_OUT_VIDEOS],
                                 None),
    "floor_perspective_videos": ("floor: flow at 360 x 240, each pixel's magnitude divided "
                                 "by the speed training frames show at its row "
                                 "(score.perspective), whole held-out training videos",
                                 ["flow.at=native", *HELD_OUT_VIDEOS,
                                  "score.perspective=true"], None),
    # the same as a detector: `comemory train` writes a checkpoint without a network that
    # evaluate, detect (ped2_alerts.py) and calibrate read; the epochs are not used
    "floor_perspective_checkpoint_videos": ("floor per row speed as a detector "
                                            "(model.architecture flow_floor): its checkpoint "
                                            "scored by evaluate and detect",
                                            ["flow.at=native", *HELD_OUT_VIDEOS,
                                             "score.perspective=true",
                                             "model.architecture=flow_floor"], FULL_EPOCHS),
    "comemory": ("co-memory, the chosen settings", CHOSEN, FULL_EPOCHS),
    "comemory_videos": ("co-memory, whole training videos held out for validation and the "
                        "threshold", [*CHOSEN, *HELD_OUT_VIDEOS], FULL_EPOCHS),
    "no_motion_memory": ("without motion memory", [*CHOSEN, "model.motion_memory=0"],
                         FULL_EPOCHS),
    "memory_15": ("memory size 15 (both memories)",
                  [*CHOSEN, "model.appearance_memory=15", "model.motion_memory=15"],
                  FULL_EPOCHS),
    "comemory_motion_videos": ("co-memory + the flow magnitude as a motion prior "
                               "(zscore formula, motion weight 1; comemory_videos's "
                               "checkpoints)",
                               [*CHOSEN, *HELD_OUT_VIDEOS, *MOTION_PRIOR], FULL_EPOCHS),
    "comemory_soft_videos": ("co-memory (comemory_videos's checkpoints), score settings "
                             "chosen again on validation whose pasted objects fade in at "
                             "their edges", [*CHOSEN, *HELD_OUT_VIDEOS], FULL_EPOCHS),
    "comemory_motion_soft_videos": ("co-memory + the motion prior (comemory_videos's "
                                    "checkpoints), chosen on validation whose pasted objects "
                                    "fade in at their edges",
                                    [*CHOSEN, *HELD_OUT_VIDEOS, *MOTION_PRIOR], FULL_EPOCHS),
    "comemory_location_videos": ("co-memory (comemory_videos's checkpoints), score settings "
                                 "chosen again on validation with the per-pixel location "
                                 "formula among the candidates",
                                 [*CHOSEN, *HELD_OUT_VIDEOS, "score.offer_location=true"],
                                 FULL_EPOCHS),
    # the network's flow error (and motion prior) counted against each row's speed, as the
    # floor per row speed counts its flow magnitude (issue 26: does the learning add to it?)
    "comemory_perspective_videos": ("co-memory (comemory_videos's checkpoints), S_F "
                                    "divided by the square of its row's speed "
                                    "(score.perspective), settings chosen again on "
                                    "validation", [*CHOSEN, *HELD_OUT_VIDEOS,
                                                   "score.perspective=true"], FULL_EPOCHS),
    "comemory_motion_perspective_videos": ("co-memory + the motion prior, both per row speed "
                                           "(score.perspective; zscore, motion weight 1; "
                                           "comemory_videos's checkpoints)",
                                           [*CHOSEN, *HELD_OUT_VIDEOS, *MOTION_PRIOR,
                                            "score.perspective=true"], FULL_EPOCHS),
    "comemory_paper_videos": ("co-memory at the paper's size (256 x 256, C = 512) on a GPU, "
                              "whole training videos held out",
                              [*CHOSEN, *HELD_OUT_VIDEOS, *PAPER_ON_GPU], PAPER_EPOCHS),
    "comemory_paper_motion_videos": ("co-memory at the paper's size + the motion prior "
                                     "(comemory_paper_videos's checkpoint)",
                                     [*CHOSEN, *HELD_OUT_VIDEOS, *PAPER_ON_GPU,
                                      *MOTION_PRIOR], PAPER_EPOCHS),
    # the thesis's ablations and MNAD under the current protocol (whole videos held out,
    # faded pseudo-anomalies, one-standard-error rule), one seed each, beside comemory_videos
    "floor_squash_videos": ("floor: flow magnitude, flow on the squashed 128 x 128 frames, "
                            "whole training videos held out",
                            [SQUASHED_FLOW, *HELD_OUT_VIDEOS], None),
    "no_motion_memory_videos": ("without motion memory, whole training videos held out",
                                [*CHOSEN, *HELD_OUT_VIDEOS, "model.motion_memory=0"],
                                FULL_EPOCHS),
    "memory_15_videos": ("memory size 15 (both memories), whole training videos held out",
                         [*CHOSEN, *HELD_OUT_VIDEOS, "model.appearance_memory=15",
                          "model.motion_memory=15"], FULL_EPOCHS),
    "mnad_videos": ("MNAD as its code trains it, whole training videos held out",
                    [*MNAD_AS_ITS_CODE, *HELD_OUT_VIDEOS], FULL_EPOCHS),
    "mnad": ("MNAD as its code trains it: 4 frames, one memory, detached reads, MSE "
             "compactness, uniform memory init, cosine schedule", MNAD_AS_ITS_CODE,
             FULL_EPOCHS),
    "mnad_update": ("MNAD as its code trains it, with its test-time memory update (the "
                    "mnad row's checkpoint)", [*MNAD_AS_ITS_CODE, "score.test_time_update=0.01"],
                    FULL_EPOCHS),
    "comemory_videos_mp4": ("co-memory, whole training videos held out, trained and scored "
                            "on Ped2 re-encoded as MP4 files (mp4v, as a camera's footage)",
                            [*CHOSEN, *HELD_OUT_VIDEOS], FULL_EPOCHS),
    # the co-memory network on objects' crops (issue 26): preset "objects"
    "objects_videos": ("co-memory on object crops: boxes from motion on a 256 x 256 grid, "
                       "32 x 32 crops, each crop's flow scaled to crop pixels, a frame "
                       "scored by its object with the largest flow error; whole training "
                       "videos held out",
                       [*CHOSEN, *HELD_OUT_VIDEOS, "model.crop_flow=crop"], FULL_EPOCHS),
    "objects_grid_flow_videos": ("co-memory on object crops, each crop's flow left in grid "
                                 "pixels (HF2-VAD; the preset's since) instead of scaled to "
                                 "crop pixels",
                                 [*CHOSEN, *HELD_OUT_VIDEOS, "model.crop_flow=grid"],
                                 FULL_EPOCHS),
    "objects_no_motion_memory_videos": ("co-memory on object crops (the objects preset) "
                                        "without motion memory",
                                        [*CHOSEN, *HELD_OUT_VIDEOS, "model.crop_flow=grid",
                                         "model.motion_memory=0"], FULL_EPOCHS),
    "objects_memory_15_videos": ("co-memory on object crops (the objects preset), memories "
                                 "of 15 items",
                                 [*CHOSEN, *HELD_OUT_VIDEOS, "model.crop_flow=grid",
                                  "model.appearance_memory=15", "model.motion_memory=15"],
                                 FULL_EPOCHS),
    # the learned motion model (issue 26) on the objects preset's boxes, the checkpoints of
    # objects_grid_flow_videos: alone, added to the network's zscore score, and offered
    "objects_motion_model_videos": ("the motion model alone: a Gaussian mixture of the "
                                    "training objects' flow per direction, a frame scored "
                                    "by its least likely object (score.motion_model alone; "
                                    "objects_grid_flow_videos's boxes)",
                                    [*CHOSEN, *HELD_OUT_VIDEOS, "model.crop_flow=grid",
                                     "score.motion_model=alone"], FULL_EPOCHS),
    "objects_motion_model_added_videos": ("co-memory on object crops + the motion model, "
                                          "each z-scored on training frames (zscore, "
                                          "score.motion_model added; objects_grid_flow_"
                                          "videos's checkpoints)",
                                          [*CHOSEN, *HELD_OUT_VIDEOS, "model.crop_flow=grid",
                                           "score.formula=zscore", "score.motion_model=added"],
                                          FULL_EPOCHS),
    "objects_motion_model_offered_videos": ("co-memory on object crops, validation offered "
                                            "the motion model alone or added "
                                            "(choose.offer_motion_model; objects_grid_flow_"
                                            "videos's checkpoints)",
                                            [*CHOSEN, *HELD_OUT_VIDEOS, "model.crop_flow=grid",
                                             "choose.offer_motion_model=true"], FULL_EPOCHS),
    # short runs, one difference each, compared on validation
    "short_squash_flow": ("short: flow on the squashed frames (the old default)",
                          [SQUASHED_FLOW], SHORT_EPOCHS),
    "short_native": ("short: flow at the frames' own resolution", ["flow.at=native"],
                     SHORT_EPOCHS),
    "short_mnad_memory": ("short: native flow + MNAD's memory details and cosine schedule",
                          ["flow.at=native", "model.read=detached", "model.compactness=mse",
                           "model.memory_init=uniform", "train.lr_schedule=cosine"],
                          SHORT_EPOCHS),
    "short_no_motion_skips": ("short: native flow, motion decoder without skips",
                              ["flow.at=native", "model.motion_skips=0"], SHORT_EPOCHS),
    "short_letterbox": ("short: native flow, letterboxed frames",
                        ["flow.at=native", "model.resize=letterbox"], SHORT_EPOCHS),
    "short_holdout_videos": ("short: native flow, whole training videos held out (a fifth "
                             "of them) instead of each video's tail",
                             [*CHOSEN, *HELD_OUT_VIDEOS], SHORT_EPOCHS),
}
# rows that differ from another only in how frames are scored: that row's checkpoint is
# copied, its score settings and threshold chosen again on validation, then the test scored
SAME_TRAINING = {"mnad_update": "mnad", "comemory_motion_videos": "comemory_videos",
                 "comemory_soft_videos": "comemory_videos",
                 "comemory_location_videos": "comemory_videos",
                 "comemory_motion_soft_videos": "comemory_videos",
                 "comemory_perspective_videos": "comemory_videos",
                 "comemory_motion_perspective_videos": "comemory_videos",
                 "comemory_paper_motion_videos": "comemory_paper_videos",
                 "objects_motion_model_videos": "objects_grid_flow_videos",
                 "objects_motion_model_added_videos": "objects_grid_flow_videos",
                 "objects_motion_model_offered_videos": "objects_grid_flow_videos"}
# rows built on another preset than "cpu"
PRESETS = {"comemory_paper_videos": "paper", "comemory_paper_motion_videos": "paper",
           "objects_videos": "objects", "objects_grid_flow_videos": "objects",
           "objects_no_motion_memory_videos": "objects", "objects_memory_15_videos": "objects",
           "objects_motion_model_videos": "objects",
           "objects_motion_model_added_videos": "objects",
           "objects_motion_model_offered_videos": "objects"}
# rows that read Ped2 re-encoded as MP4 files (``mp4_dataset``) instead of its frames: a
# user's footage is compressed in training as in detection
MP4_ROWS = {"comemory_videos_mp4"}

# The README's table: the current protocol (whole videos held out, faded pseudo-anomalies,
# the one-standard-error rule), each configuration with its seeds
README_ROWS = {
    "floor: flow magnitude, flow at 360 x 240": ["floor_native_soft_videos"],
    "floor: flow magnitude per row speed (`score.perspective`; alerts: as a detector)": [
        "floor_perspective_checkpoint_videos"],
    "co-memory, `cpu` preset, the default": [
        "comemory_soft_videos", "comemory_soft_videos_seed1", "comemory_soft_videos_seed2"],
    "co-memory + motion prior (not chosen by validation)": [
        "comemory_motion_soft_videos", "comemory_motion_soft_videos_seed1",
        "comemory_motion_soft_videos_seed2"],
    "co-memory, `location` offered to validation": [
        "comemory_location_videos", "comemory_location_videos_seed1",
        "comemory_location_videos_seed2"],
    "without motion memory": ["no_motion_memory_videos"],
    "memories of 15 items": ["memory_15_videos"],
    "MNAD as its code trains it": ["mnad_videos"],
    "co-memory on objects' crops, `objects` preset (flows in grid pixels; alerts: seed 0)": [
        "objects_grid_flow_videos", "objects_grid_flow_videos_seed1",
        "objects_grid_flow_videos_seed2"],
    "objects without motion memory": ["objects_no_motion_memory_videos"],
    "objects, memories of 15 items": ["objects_memory_15_videos"],
    "the motion model alone (`score.motion_model`; seed 0's boxes)": [
        "objects_motion_model_videos"],
    "objects + the motion model, z-scored and added (seed 0)": [
        "objects_motion_model_added_videos"],
    "objects, the motion model offered to validation (not chosen; seed 0)": [
        "objects_motion_model_offered_videos"],
    "co-memory, S_F per row speed (`score.perspective`; one retrained seed)": [
        "comemory_perspective_videos"],
    "co-memory + motion prior, both per row speed (one retrained seed)": [
        "comemory_motion_perspective_videos"],
}


def ped2_missing(data: Path, *splits: str) -> bool:
    """True, after saying so, when ``data`` holds none of ``splits``."""
    return dataset_missing(data, "UCSD Ped2", *splits)


# The object benchmarks first show the finder's background models every fifth training frame
LEARN_EVERY = 5


def object_benchmark_options(doc: str, results: Path, results_help: str = "JSON file"
                             ) -> tuple[argparse.Namespace, ObjectsConfig]:
    """The options of the object benchmarks (ped2_objects.py, ped2_motion_model.py),
    parsed: ``--set objects.KEY=VALUE`` (an experiment, never a default) and
    ``--results``; with the object-finder settings they make, checked."""
    parser = argparse.ArgumentParser(description=doc)
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="objects.KEY=VALUE", help="another object-finder setting "
                        "(repeatable): an experiment, never a default")
    parser.add_argument("--results", type=Path, default=results, help=results_help)
    args = parser.parse_args()
    return args, apply_overrides(Config(), args.overrides).check().objects


def normal_frames(training: list[Video]) -> list[np.ndarray]:
    """Every ``LEARN_EVERY``-th frame of the training videos, BGR: what the object
    finder's background models are shown before a video is read."""
    return [image for video in training for image in video.source.read_bgr()[::LEARN_EVERY]]


def row_config(name: str, seed: int, threads: int = 0, epochs: int | None = None) -> Config:
    """Row ``name``'s configuration; ``epochs`` overrides a trained row's (a GPU lease)."""
    _, settings, row_epochs = ROWS[name]
    return build_row_config(settings, None if row_epochs is None else epochs or row_epochs,
                            seed, threads, PRESETS.get(name, "cpu"))


def ped2_row(name: str, seed: int, data: Path, folder: Path, cache: Path,
             threads: int = 0, validate_only: bool = False, epochs: int | None = None) -> dict:
    """``rows.run_row`` for row ``name``: its config, its layout (MP4 files for
    ``MP4_ROWS``), and the run it re-scores (``SAME_TRAINING``)."""
    config = row_config(name, seed, threads, epochs)
    runs = folder.parent
    dataset, frames_data = "frames", data
    if name in MP4_ROWS:
        data, dataset = mp4_dataset(data, runs / "ped2-mp4-dataset"), "videos"
    rescore_from = (runs / (SAME_TRAINING[name] + (f"_seed{seed}" if seed else ""))
                    if name in SAME_TRAINING else None)
    row = run_row(ROWS[name][0], config, ROWS[name][2] is not None, data, folder, cache,
                  dataset, rescore_from, validate_only)
    if name in MP4_ROWS:
        row["data"] = f"{frames_data} as MP4 ({data})"
    return row

def mp4_dataset(data: Path, root: Path) -> Path:
    """Ped2 as a camera's user has footage: every video an MP4 (as ``ped2_alerts.py``
    writes its test videos), in the ``videos`` layout with a labels.csv. Written once;
    returns ``root``."""
    for split in ("training", "testing"):
        videos = write_mp4s(data, root / split, split)
    rows = ["video,start_frame,end_frame"]
    for name, (_, labels) in videos.items():  # the test videos' anomalous spans
        edges = np.flatnonzero(np.diff(np.concatenate([[0], labels, [0]])))
        rows += [f"{name},{start},{end - 1}" for start, end in zip(edges[::2], edges[1::2])]
    storage.write_text(root / "labels.csv", "\n".join(rows) + "\n")
    return root


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
