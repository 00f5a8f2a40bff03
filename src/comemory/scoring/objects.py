"""From objects to frames (``model.input: objects``): each object's crop has its score
parts (S_F(P~), S_I(P~) of its own worst patch, eq. 3.19, and the rest); a frame takes the
parts of its object with the largest flow error, as eq. 3.19 takes the patch with the
largest flow error for both terms (the co-memory network only: config refuses objects
for MNAD, which predicts no flow). Every frame has at least the scene box, so every
frame gets parts.

Maps for localisation are painted on the S x S grid: each pixel holds the largest flow
and frame errors of the object boxes that cover it, so that a pixel scores its box's
score; the scene box is not painted (it would give every pixel of a frame with one
unusual object that object's errors), so a pixel in no box scores 0.
"""
from __future__ import annotations

import numpy as np

from comemory.data.crops import is_scene_box
from comemory.scoring.errors import VideoErrors

PARTS = ("psnr", "flow_error", "frame_error", "distance", "motion")


def frame_errors_of_objects(name: str, rows: dict[str, np.ndarray], size: int,
                            keep_maps: bool = False) -> VideoErrors:
    """One video's object rows (each column (N,): frames, boxes (N, 4) and the score
    parts) -> VideoErrors of its scored frames, with (n, S, S) maps if ``keep_maps``."""
    frames = rows["frames"]
    order = np.lexsort((rows["flow_error"], frames))  # by frame, then flow error, ascending
    last_of_frame = np.r_[frames[order][1:] != frames[order][:-1], True]
    chosen = order[last_of_frame]
    parts = {key: rows[key][chosen] for key in PARTS if key in rows}
    scored = frames[chosen]
    if keep_maps:
        parts.update(_painted_maps(rows, scored, size))
    if "motion_vectors" in rows:
        found = order[~is_scene_box(rows["boxes"][order], size)]  # by frame
        parts["motion_vectors"] = rows["motion_vectors"][found]
        parts["vector_frames"] = np.searchsorted(scored, frames[found])
    return VideoErrors(name, scored, **parts)


def _painted_maps(rows: dict[str, np.ndarray], scored: np.ndarray, size: int
                  ) -> dict[str, np.ndarray]:
    """flow_maps and frame_maps (n, S, S) float16: each pixel the largest error of the
    object boxes over it (the scene box left out), on the frames ``scored``."""
    position = {frame: i for i, frame in enumerate(scored.tolist())}
    objects = ~is_scene_box(rows["boxes"], size)
    maps = {}
    for part, key in (("flow_error", "flow_maps"), ("frame_error", "frame_maps")):
        painted = np.zeros((len(scored), size, size), np.float32)
        for frame, (x, y, width, height), value in zip(rows["frames"][objects].tolist(),
                                                       rows["boxes"][objects].tolist(),
                                                       rows[part][objects], strict=True):
            region = painted[position[frame], y:y + height, x:x + width]
            np.maximum(region, value, out=region)
        maps[key] = painted.astype(np.float16)
    return maps
