"""The one definition of the model's input: a video as the model sees it (frames on the
model grid, flows between them), the value range the network takes, the precision flows
are kept at. Training, evaluation and live detection all go through these, so that a
frame scored live and the same frame scored offline are the same numbers."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from comemory.config import Config
from comemory.data.crops import video_boxes
from comemory.data.flow import GridFlow
from comemory.data.frames import resize_frame
from comemory.data.labels import MaskSource


@dataclass
class PreparedVideo:
    """frames: uint8 (T, S, S, C); flows: float16 (T-1, S, S, 2), flows[t] = frame t -> t+1;
    resolution: (height, width) on disk; labels: int64 (T,) for labelled test videos;
    masks: where its pixel masks are, if any; boxes: with ``model.input: objects``, the
    objects found on the grid frames, int32 (N, 5) rows (frame, x, y, width, height)
    (``comemory.data.crops``)."""

    name: str
    frames: np.ndarray
    flows: np.ndarray
    resolution: tuple[int, int]
    labels: np.ndarray | None = None
    masks: MaskSource | None = None
    boxes: np.ndarray | None = None

    def part(self, start: int, stop: int, name: str) -> PreparedVideo:
        """Frames ``start`` to ``stop`` (exclusive) as a video of their own: their flows,
        and their boxes renumbered from 0; no labels or masks (a training video's part)."""
        boxes = None
        if self.boxes is not None:
            inside = (self.boxes[:, 0] >= start) & (self.boxes[:, 0] < stop)
            boxes = np.array(self.boxes[inside])
            boxes[:, 0] -= start
        return PreparedVideo(name, self.frames[start:stop], self.flows[start:stop - 1],
                             self.resolution, boxes=boxes)


def to_model_range(frames: np.ndarray) -> torch.Tensor:
    """uint8 (..., H, W, C) -> (..., C, H, W) in [-1, 1], float32 (torch's default dtype)."""
    # np.array copies out of the read-only memmap
    tensor = torch.from_numpy(np.array(frames)).to(torch.get_default_dtype())
    tensor = tensor.div(127.5).sub(1.0)
    return tensor.movedim(-1, -3)


def as_cached_flow(flow: np.ndarray) -> np.ndarray:
    """A flow as the cache keeps it: float16, half the disk of float32. ``detect`` rounds
    its live flows the same way, so that live and offline scores come from the same
    numbers."""
    return flow.astype(np.float16)


def prepare_images(name: str, images: np.ndarray, config: Config,
                   labels: np.ndarray | None = None) -> PreparedVideo:
    """Frames already decoded, uint8 BGR (T, H, W, 3), through the same steps as a video
    on disk and a live frame in ``detect`` (model grid, flow where ``flow.at`` says); not
    cached. For pseudo-anomalies made in memory."""
    model = config.model
    grid = GridFlow(config.flow, model.image_size, model.channels, model.resize)
    frames = np.stack([resize_frame(image, model.image_size, model.channels, model.resize)
                       for image in images])
    inputs = np.stack([grid.input_frame(image, frame) for image, frame in
                       zip(images, frames, strict=True)])
    flows = as_cached_flow(grid.video_flows(inputs))
    boxes = video_boxes(frames, config.objects) if model.input == "objects" else None
    return PreparedVideo(name, frames, flows, images.shape[1:3], labels, boxes=boxes)
