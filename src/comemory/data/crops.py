"""Objects as the network sees them with ``model.input: objects``: each frame's boxes
found from motion on the model grid (``comemory.data.objects``), grown by a margin, and
each box's crop of the frames and of the flow resized to ``crop_size`` x ``crop_size``.

A crop's flow is resized like its frames; with ``model.crop_flow: crop`` its vectors are
scaled with it (u by crop_size / box width, v by crop_size / box height), so that a
person far away, whose box is small, moves as many crop pixels as one near the camera
walking at the same pace; with ``grid`` they stay in grid pixels, as HF2-VAD crops its
flows, so that a box's size does not change how fast it seems. Boxes are rows (frame, x,
y, width, height) of int32 on the S x S grid; every frame also has the scene box, the
whole grid, so that a frame where nothing moves is scored too (as the quiet scene it is).
"""
from __future__ import annotations

import cv2
import numpy as np

from comemory.config import ObjectsConfig
from comemory.data.objects import Box, ObjectFinder


def video_boxes(frames: np.ndarray, config: ObjectsConfig) -> np.ndarray:
    """The boxes of every frame of a video, uint8 (T, S, S, C) on the model grid, from a
    fresh ObjectFinder that learns the scene as the video goes, as live detection does:
    int32 (N, 5) rows (frame, x, y, width, height), each box grown by ``config.margin``."""
    finder = ObjectFinder(config)
    rows = [(index, *box) for index, frame in enumerate(frames)
            for box in found_boxes(finder, frame, config.margin)]
    return np.array(rows, dtype=np.int32).reshape(-1, 5)


def found_boxes(finder: ObjectFinder, frame: np.ndarray, margin: float
                ) -> list[tuple[int, int, int, int]]:
    """The boxes ``finder`` finds in a grid frame (S, S, C), each grown by ``margin``:
    (x, y, width, height). The finder learns the frame: call it on every frame in order."""
    return [grown(box, margin, frame.shape[:2]) for box in finder.find(_plane(frame))]


def grown(box: Box, margin: float, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """``box`` grown by ``margin`` of its width and height on every side (at least one
    pixel) and clipped to a frame of ``size`` (height, width): (x, y, width, height)."""
    pad_x = max(1, round(box.width * margin)) if margin > 0 else 0
    pad_y = max(1, round(box.height * margin)) if margin > 0 else 0
    left, top = max(0, box.x - pad_x), max(0, box.y - pad_y)
    right = min(size[1], box.x + box.width + pad_x)
    bottom = min(size[0], box.y + box.height + pad_y)
    return left, top, right - left, bottom - top


def frame_boxes(boxes: np.ndarray, frame_count: int, size: int) -> list[np.ndarray]:
    """Each frame's boxes (n, 4) (x, y, width, height), the scene box (the whole S x S
    grid) first, from rows (frame, x, y, width, height)."""
    scene = np.array([[0, 0, size, size]], dtype=np.int32)
    order = np.argsort(boxes[:, 0], kind="stable")
    starts = np.searchsorted(boxes[order, 0], np.arange(frame_count + 1))
    return [np.concatenate([scene, boxes[order[starts[f]:starts[f + 1]], 1:]])
            for f in range(frame_count)]


def is_scene_box(boxes: np.ndarray, size: int) -> np.ndarray:
    """Which of ``boxes`` (..., 4) are the scene box, the whole S x S grid: bool (...)."""
    return (boxes[..., 2] == size) & (boxes[..., 3] == size)


def crop_window(frames: np.ndarray, flow: np.ndarray, box: np.ndarray, crop_size: int,
                flow_units: str) -> tuple[np.ndarray, np.ndarray]:
    """One sample's crops: frames uint8 (P + 1, S, S, C) -> (P + 1, K, K, C) and the flow
    F_t (S, S, 2) in grid pixels -> (2, K, K) float32 in ``flow_units`` (crop or grid
    pixels, ``model.crop_flow``), K = crop_size."""
    return (crop_frames(frames, box, crop_size),
            crop_flow(flow, box, crop_size, flow_units).transpose(2, 0, 1))


def crop_frames(frames: np.ndarray, box: np.ndarray, crop_size: int) -> np.ndarray:
    """uint8 (T, S, S, C) -> (T, crop, crop, C): the box (x, y, width, height) of each."""
    x, y, width, height = (int(v) for v in box)
    return np.stack([_resized(frame[y:y + height, x:x + width], crop_size)
                     for frame in frames])


def crop_flow(flow: np.ndarray, box: np.ndarray, crop_size: int, units: str) -> np.ndarray:
    """A flow (S, S, 2) in grid pixels -> the box's flow (crop, crop, 2), its vectors in
    crop pixels (``units`` "crop") or left in grid pixels ("grid", as HF2-VAD crops)."""
    x, y, width, height = (int(v) for v in box)
    region = np.asarray(flow[y:y + height, x:x + width], dtype=np.float32)
    resized = cv2.resize(region, (crop_size, crop_size), interpolation=cv2.INTER_LINEAR)
    if units == "grid":
        return resized
    return resized * np.array([crop_size / width, crop_size / height], dtype=np.float32)


def _resized(image: np.ndarray, crop_size: int) -> np.ndarray:
    resized = cv2.resize(np.ascontiguousarray(image), (crop_size, crop_size),
                         interpolation=cv2.INTER_LINEAR)
    return resized.reshape(crop_size, crop_size, image.shape[-1])


def _plane(frame: np.ndarray) -> np.ndarray:
    """A grid frame (S, S, C) as the finder takes it: grey (S, S) or BGR (S, S, 3)."""
    return frame[..., 0] if frame.shape[-1] == 1 else frame
