"""Patch errors and inference: what the model gets wrong, where, for every frame.

For each frame: per-pixel squared errors of the predicted flow and frame, averaged over
``patch_size`` x ``patch_size`` patches (eq. 3.19); the patch P~ with the largest flow
error is taken for both terms, giving S_F(P~) and S_I(P~). ``video_errors`` runs a model
over prepared videos and returns these parts per frame; ``flow_floor_errors`` gives the
training-free floor's parts with no model. How the parts become one score is
``comemory.scoring.formulas``; the training statistics they use, ``.calibration``.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from comemory.config import ScoreConfig
from comemory.data.prepared import FrameWindows, PreparedVideo
from comemory.model import Memory, ModelOutput
from comemory.progress import progress

LOG_FLOOR = 1e-12  # a perfect flow prediction would otherwise score log(0)


@dataclass
class FrameErrors:
    """Score parts for a batch, each (B,): psnr of the predicted frame (images in [0, 1]);
    flow_error S_F(P~) and frame_error S_I(P~) (None without a flow prediction); motion:
    the mean flow magnitude of the most moving patch of the target flow (None without a
    flow prediction); flow_map, frame_map (B, H, W): each pixel's mean error over the
    patch centred on it, for localisation (flow_map None without a flow prediction)."""

    psnr: torch.Tensor
    flow_error: torch.Tensor | None
    frame_error: torch.Tensor | None
    flow_map: torch.Tensor | None
    frame_map: torch.Tensor
    motion: torch.Tensor | None = None


def patch_means(error_map: torch.Tensor, patch_size: int, stride: int) -> torch.Tensor:
    """(B, 1, H, W) per-pixel errors -> (B, h, w) mean error of each patch."""
    return F.avg_pool2d(error_map, patch_size, stride).squeeze(1)


def most_moving_patch(flow: torch.Tensor, patch_size: int, stride: int) -> torch.Tensor:
    """(B, 2, H, W) flow -> (B,): the mean flow magnitude of the patch that moves most (the
    training-free floor's score, and the ``zscore`` formula's motion term)."""
    magnitude = flow.float().norm(dim=1, keepdim=True)
    return patch_means(magnitude, patch_size, stride).flatten(1).amax(1)


def centred_patch_means(error_map: torch.Tensor, patch_size: int) -> torch.Tensor:
    """(B, 1, H, W) -> (B, H, W): each pixel's mean over the patch centred on it (clipped
    at the border), so a heatmap lines up with the frame."""
    height, width = error_map.shape[-2:]
    means = F.avg_pool2d(error_map, patch_size, 1, padding=patch_size // 2,
                         count_include_pad=False)
    return means[..., :height, :width].squeeze(1)


def frame_errors(pred_flow: torch.Tensor | None, true_flow: torch.Tensor,
                 pred_frame: torch.Tensor, true_frame: torch.Tensor,
                 config: ScoreConfig) -> FrameErrors:
    """Flows (B, 2, H, W) (``pred_flow`` None for MNAD), frames (B, C, H, W) in [-1, 1].

    The flow's per-pixel error is the squared end-point error; the frame's is the squared
    error averaged over colour channels, so grey and colour frames score alike.
    """
    frame_map = (pred_frame.float() - true_frame.float()).pow(2).mean(1, keepdim=True)
    mse_unit_range = frame_map.flatten(1).mean(1) / 4.0  # [-1, 1] -> [0, 1] divides errors by 4
    psnr = 10 * torch.log10(1.0 / mse_unit_range.clamp_min(LOG_FLOOR))
    frame_pixels = centred_patch_means(frame_map, config.patch_size)
    if pred_flow is None:
        return FrameErrors(psnr, None, None, None, frame_pixels)
    flow_map = (pred_flow.float() - true_flow.float()).pow(2).sum(1, keepdim=True)
    flow_patches = patch_means(flow_map, config.patch_size, config.patch_stride).flatten(1)
    frame_patches = patch_means(frame_map, config.patch_size, config.patch_stride).flatten(1)
    worst = flow_patches.argmax(dim=1, keepdim=True)  # P~ of each frame
    return FrameErrors(psnr, flow_patches.gather(1, worst).squeeze(1),
                       frame_patches.gather(1, worst).squeeze(1),
                       centred_patch_means(flow_map, config.patch_size), frame_pixels,
                       most_moving_patch(true_flow, config.patch_size, config.patch_stride))


class FrameScorer(torch.nn.Module):
    """The model and the patch errors of eq. 3.19 as one graph: what ``comemory detect``
    runs on each frame and what ``comemory export`` writes.

    forward(past (B, P, C, S, S), target (B, C, S, S), flow (B, 2, S, S)), frames in
    [-1, 1] and the flow F_t between the last two past frames, returns the tuple named by
    OUTPUTS: pred_frame (B, C, S, S) and pred_flow (B, 2, S, S); psnr, flow_error S_F(P~),
    frame_error S_I(P~), feature distance and motion (the most moving patch of F_t), each
    (B,); flow_map and frame_map (B, S, S), each pixel's patch-mean error. Parts a model
    lacks (MNAD's flow, a missing memory's distance) are zeros, so that every model
    exports the same outputs.
    """

    OUTPUTS = ("pred_frame", "pred_flow", "psnr", "flow_error", "frame_error", "distance",
               "motion", "flow_map", "frame_map")

    def __init__(self, model: torch.nn.Module, config: ScoreConfig):
        super().__init__()
        self.model, self.config = model, config

    def forward(self, past: torch.Tensor, target: torch.Tensor,
                flow: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(past)
        errors = frame_errors(out.flow, flow, out.frame, target, self.config)
        zeros = torch.zeros_like(errors.psnr)
        zero_map = torch.zeros_like(errors.frame_map)
        return (out.frame, out.flow if out.flow is not None else torch.zeros_like(flow),
                errors.psnr,
                errors.flow_error if errors.flow_error is not None else zeros,
                errors.frame_error if errors.frame_error is not None else zeros,
                out.feature_distance if out.feature_distance is not None else zeros,
                errors.motion if errors.motion is not None else zeros,
                errors.flow_map if errors.flow_map is not None else zero_map,
                errors.frame_map)


@dataclass
class VideoErrors:
    """Score parts of one video's scored frames, each (n,); frames are frame indices.

    psnr: of the predicted frame (None for the flow floor); flow_error, frame_error:
    S_F(P~), S_I(P~) (None for MNAD); distance: MNAD's feature distance (None without
    appearance memory); motion: the most moving patch's mean flow magnitude in the measured
    flow F_t that S_F is scored against (co-memory only); flow_maps, frame_maps: float16
    (n, S, S) centred patch-error maps, kept only when asked for.
    """

    name: str
    frames: np.ndarray
    psnr: np.ndarray | None = None
    flow_error: np.ndarray | None = None
    frame_error: np.ndarray | None = None
    distance: np.ndarray | None = None
    motion: np.ndarray | None = None
    flow_maps: np.ndarray | None = None
    frame_maps: np.ndarray | None = None


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
    samples = FrameWindows(videos, model.past_frames)
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
            _collect(parts, out, batch, config, keep_maps, device)
    return {patch: _split_by_video(videos, parts[patch]) for patch in patch_sizes}


def _collect(parts: dict[int, dict[str, list]], out: ModelOutput, batch: dict,
             config: ScoreConfig, keep_maps: bool, device: torch.device) -> None:
    """Append one batch's score parts, for every patch size in ``parts``, as numpy."""
    for patch, columns_so_far in parts.items():
        errors = frame_errors(out.flow, batch["flow"].to(device), out.frame,
                              batch["target"].to(device), replace(config, patch_size=patch))
        columns = {"video": batch["video"], "frames": batch["frame"], "psnr": errors.psnr,
                   "flow_error": errors.flow_error, "frame_error": errors.frame_error,
                   "distance": out.feature_distance, "motion": errors.motion}
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


def flow_floor_errors(videos: list[PreparedVideo], config: ScoreConfig, past_frames: int = 2,
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
    columns = {k: np.concatenate(v) for k, v in parts.items()}
    video_index = columns.pop("video")
    result = []
    for index, video in enumerate(videos):
        mine = video_index == index
        fields = {k: (v[mine].astype(np.float16) if k.endswith("_maps") else v[mine])
                  for k, v in columns.items()}
        result.append(VideoErrors(video.name, **fields))
    return result
