"""Scoring whole prepared videos offline (evaluate, validate, calibration): the model over
every sample window in batches, MNAD's test-time memory update, and the training-free
floor. Live detection scores one frame at a time with ``FrameScorer`` instead and does not
import this module."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import replace

import numpy as np
import torch
from torch.utils.data import DataLoader

from comemory.config import ScoreConfig
from comemory.data.model_input import PreparedVideo
from comemory.data.windows import ObjectWindows, model_windows
from comemory.model import Memory, ModelOutput
from comemory.progress import progress
from comemory.scoring.errors import (
    LOG_FLOOR,
    VideoErrors,
    centred_patch_means,
    frame_errors,
    most_moving_patch,
)
from comemory.scoring.formulas import FloorScorer
from comemory.scoring.objects import frame_errors_of_objects


def video_errors(model: torch.nn.Module, videos: list[PreparedVideo], config: ScoreConfig,
                 batch_size: int = 16, desc: str = "scoring",
                 keep_maps: bool = False) -> list[VideoErrors]:
    """Run ``model`` (eval mode, memories frozen) over PreparedVideos -> VideoErrors each.

    Frame t+1 is scored from the ``model.past_frames`` frames up to I_t (and the flow F_t),
    so the first ``past_frames`` frames of a video have no score.
    """
    return video_errors_per_patch(model, videos, config, [config.patch_size], batch_size,
                                  desc, keep_maps)[config.patch_size]


@torch.no_grad()
def video_errors_per_patch(model: torch.nn.Module, videos: list[PreparedVideo],
                           config: ScoreConfig, patch_sizes: list[int], batch_size: int = 16,
                           desc: str = "scoring", keep_maps: bool = False
                           ) -> dict[int, list[VideoErrors]]:
    """``video_errors`` for several patch sizes from one pass of the model: {patch: errors}."""
    model.eval()
    device = next(model.parameters()).device
    samples = model_windows(videos, model)
    objects = isinstance(samples, ObjectWindows)
    parts: dict[int, dict[str, list]] = {patch: {} for patch in patch_sizes}
    updating = config.test_time_update > 0
    with memory_updates(model) if updating else nullcontext([]) as memories:
        for batch in progress(DataLoader(samples, batch_size=1 if updating else batch_size),
                              desc=desc, unit="frame" if updating else "batch", leave=False):
            out = model(batch["past"].to(device))
            if memories and point_score(out.frame, batch["target"].to(device)).item() < \
                    config.test_time_update:
                for memory in memories:
                    memory.update(memory.last_queries)
            _collect(parts, out, batch, config, keep_maps and not objects, device)
    if objects:
        size = videos[0].frames.shape[1]  # the grid the boxes are on
        return {patch: [frame_errors_of_objects(name, columns, size, keep_maps)
                        for name, columns in _columns_by_video(videos, parts[patch])]
                for patch in patch_sizes}
    return {patch: _split_by_video(videos, parts[patch]) for patch in patch_sizes}


def _collect(parts: dict[int, dict[str, list]], out: ModelOutput, batch: dict,
             config: ScoreConfig, keep_maps: bool, device: torch.device) -> None:
    """Append one batch's score parts, for every patch size in ``parts``, as numpy."""
    for patch, columns_so_far in parts.items():
        errors = frame_errors(out.flow, batch["flow"].to(device), out.frame,
                              batch["target"].to(device), replace(config, patch_size=patch))
        columns = {"video": batch["video"], "frames": batch["frame"], "psnr": errors.psnr,
                   "flow_error": errors.flow_error, "frame_error": errors.frame_error,
                   "distance": out.feature_distance, "motion": errors.motion,
                   "boxes": batch.get("box"), "motion_vectors": batch.get("box_motion"),
                   "motion_rows": errors.motion_rows,
                   "flow_error_rows": errors.flow_error_rows}
        if keep_maps:
            columns.update(flow_maps=errors.flow_map, frame_maps=errors.frame_map)
        for key, value in columns.items():
            if value is not None:  # bf16/fp16 tensors have no numpy type: widen them
                array = value.float() if value.is_floating_point() else value
                columns_so_far.setdefault(key, []).append(array.cpu().numpy())


def point_score(pred_frame: torch.Tensor, true_frame: torch.Tensor) -> torch.Tensor:
    """MNAD's point score, (B,) from frames (B, C, H, W) in [-1, 1]: the squared error of
    each pixel in [0, 1] units, averaged with weights 1 - exp(-error) (large errors count
    more). MNAD's test-time update absorbs a frame's queries when it is below 0.01."""
    error = ((pred_frame.float() - true_frame.float()) / 2).pow(2)
    weight = 1 - torch.exp(-error)
    return (weight * error).flatten(1).sum(1) / weight.flatten(1).sum(1).clamp_min(LOG_FLOOR)


@contextmanager
def memory_updates(model: torch.nn.Module) -> Iterator[list[Memory]]:
    """The model's memories, keeping each read's queries while inside (for MNAD's test-time
    update); on exit their items are what they were before, so a checkpoint's memory
    never drifts from one evaluation to the next."""
    memories = [module for module in model.modules() if isinstance(module, Memory)]
    saved = [memory.items.clone() for memory in memories]
    for memory in memories:
        memory.keep_queries = True
    try:
        yield memories
    finally:
        for memory, items in zip(memories, saved, strict=True):
            memory.items, memory.keep_queries, memory.last_queries = items, False, None


def flow_floor_errors(videos: list[PreparedVideo], config: ScoreConfig,
                      past_frames: int = FloorScorer.PAST_FRAMES,
                      keep_maps: bool = False) -> list[VideoErrors]:
    """The training-free floor: the mean flow magnitude of the most moving patch, no model.

    Frame t+1 gets the magnitude of the flow from I_t to I_{t+1}, the motion into it.
    Returned as VideoErrors whose flow_error is that magnitude (and flow_maps the patch-mean
    magnitude of each pixel), over the same frames a ``past_frames`` model scores.
    """
    parts: dict[str, list] = {}
    for index, video in enumerate(videos):
        flows = torch.from_numpy(np.asarray(video.flows[past_frames - 1:], dtype=np.float32))
        flows = flows.permute(0, 3, 1, 2)  # (n, 2, S, S)
        frames = np.arange(past_frames, len(video.frames))
        columns = {"video": np.full(len(frames), index), "frames": frames,
                   "flow_error": most_moving_patch(flows, config.patch_size,
                                                   config.patch_stride).numpy()}
        if keep_maps:
            magnitude = flows.norm(dim=1, keepdim=True)
            columns["flow_maps"] = centred_patch_means(magnitude, config.patch_size).numpy()
        for key, value in columns.items():
            parts.setdefault(key, []).append(value)
    return _split_by_video(videos, parts)


def _split_by_video(videos: list[PreparedVideo], parts: dict[str, list]) -> list[VideoErrors]:
    return [VideoErrors(name, **{k: (v.astype(np.float16) if k.endswith("_maps") else v)
                                 for k, v in columns.items()})
            for name, columns in _columns_by_video(videos, parts)]


def _columns_by_video(videos: list[PreparedVideo], parts: dict[str, list]
                      ) -> list[tuple[str, dict[str, np.ndarray]]]:
    """Batches' columns -> each video's name and rows."""
    columns = {k: np.concatenate(v) for k, v in parts.items()}
    video_index = columns.pop("video")
    order = np.argsort(video_index, kind="stable")
    starts = np.searchsorted(video_index[order], np.arange(len(videos) + 1))
    return [(video.name, {k: v[order[starts[i]:starts[i + 1]]] for k, v in columns.items()})
            for i, video in enumerate(videos)]
