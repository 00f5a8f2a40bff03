"""Patch errors and inference: what the model gets wrong, where, for every frame.

For each frame: per-pixel squared errors of the predicted flow and frame, averaged over
``patch_size`` x ``patch_size`` patches (eq. 3.19); the patch P~ with the largest flow
error is taken for both terms, giving S_F(P~) and S_I(P~). ``video_errors`` runs a model
over prepared videos and returns these parts per frame; ``flow_floor_errors`` gives the
training-free floor's parts with no model. How the parts become one score is
``comemory.scoring.formulas``; the training statistics they use, ``.calibration``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from comemory.config import ScoreConfig

LOG_FLOOR = 1e-12  # a perfect flow prediction would otherwise score log(0)


@dataclass
class FrameErrors:
    """Score parts for a batch, each (B,): psnr of the predicted frame (images in [0, 1]);
    flow_error S_F(P~) and frame_error S_I(P~) (None without a flow prediction); motion:
    the mean flow magnitude of the most moving patch of the target flow (None without a
    flow prediction); flow_map, frame_map (B, H, W): each pixel's mean error over the
    patch centred on it, for localisation (flow_map None without a flow prediction);
    motion_rows, flow_error_rows (B, H): each image row's largest patch-centred flow
    magnitude and flow error, which ``score.perspective`` divides by the row's speed
    (None without a flow prediction)."""

    psnr: torch.Tensor
    flow_error: torch.Tensor | None
    frame_error: torch.Tensor | None
    flow_map: torch.Tensor | None
    frame_map: torch.Tensor
    motion: torch.Tensor | None = None
    motion_rows: torch.Tensor | None = None
    flow_error_rows: torch.Tensor | None = None


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
    at the border), so a heatmap lines up with the frame. A mean over rows, then over
    columns: the same numbers as one square pool, in 2k sums a pixel instead of k^2."""
    height, width = error_map.shape[-2:]
    half = patch_size // 2
    rows = F.avg_pool2d(error_map, (1, patch_size), 1, padding=(0, half),
                        count_include_pad=False)[..., :width]
    means = F.avg_pool2d(rows, (patch_size, 1), 1, padding=(half, 0), count_include_pad=False)
    return means[..., :height, :].squeeze(1)


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
    flow_pixels = centred_patch_means(flow_map, config.patch_size)
    magnitude = centred_patch_means(true_flow.float().norm(dim=1, keepdim=True),
                                    config.patch_size)
    return FrameErrors(psnr, flow_patches.gather(1, worst).squeeze(1),
                       frame_patches.gather(1, worst).squeeze(1), flow_pixels, frame_pixels,
                       most_moving_patch(true_flow, config.patch_size, config.patch_stride),
                       magnitude.amax(2), flow_pixels.amax(2))


class FrameScorer(torch.nn.Module):
    """The model and the patch errors of eq. 3.19 as one graph: what ``comemory detect``
    runs on each frame and what ``comemory export`` writes.

    forward(past (B, P, C, S, S), target (B, C, S, S), flow (B, 2, S, S)), frames in
    [-1, 1] and the flow F_t between the last two past frames, returns the tuple named by
    OUTPUTS: pred_frame (B, C, S, S) and pred_flow (B, 2, S, S); psnr, flow_error S_F(P~),
    frame_error S_I(P~), feature distance and motion (the most moving patch of F_t), each
    (B,); flow_map and frame_map (B, S, S), each pixel's patch-mean error; motion_rows and
    flow_error_rows (B, S), each row's largest patch-mean flow magnitude and flow error
    (``score.perspective``). Parts a model lacks (MNAD's flow, a missing memory's
    distance) are zeros, so that every model exports the same outputs.
    """

    OUTPUTS = ("pred_frame", "pred_flow", "psnr", "flow_error", "frame_error", "distance",
               "motion", "flow_map", "frame_map", "motion_rows", "flow_error_rows")

    def __init__(self, model: torch.nn.Module, config: ScoreConfig):
        super().__init__()
        self.model, self.config = model, config

    def forward(self, past: torch.Tensor, target: torch.Tensor,
                flow: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(past)
        errors = frame_errors(out.flow, flow, out.frame, target, self.config)
        zeros = torch.zeros_like(errors.psnr)
        zero_map = torch.zeros_like(errors.frame_map)
        zero_rows = zero_map[..., 0]

        def part(value: torch.Tensor | None, zero: torch.Tensor) -> torch.Tensor:
            return value if value is not None else zero

        return (out.frame, part(out.flow, torch.zeros_like(flow)), errors.psnr,
                part(errors.flow_error, zeros), part(errors.frame_error, zeros),
                part(out.feature_distance, zeros), part(errors.motion, zeros),
                part(errors.flow_map, zero_map), errors.frame_map,
                part(errors.motion_rows, zero_rows), part(errors.flow_error_rows, zero_rows))


@dataclass
class VideoErrors:
    """Score parts of one video's scored frames, each (n,); frames are frame indices.

    psnr: of the predicted frame (None for the flow floor); flow_error, frame_error:
    S_F(P~), S_I(P~) (None for MNAD); distance: MNAD's feature distance (None without
    appearance memory); motion: the most moving patch's mean flow magnitude in the measured
    flow F_t that S_F is scored against (co-memory only); flow_maps, frame_maps: float16
    (n, S, S) centred patch-error maps, kept only when asked for; motion_rows,
    flow_error_rows: (n, S) each row's largest patch-mean flow magnitude and flow error
    (co-memory on whole frames only: ``score.perspective``); motion_vectors (m, 8): each
    found object's mean flow magnitude per direction (``score.motion_model``; objects
    only, the scene box left out), in the order of their frames, and vector_frames (m,)
    the position in ``frames`` of each one's frame.
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
    motion_rows: np.ndarray | None = None
    flow_error_rows: np.ndarray | None = None
    motion_vectors: np.ndarray | None = None
    vector_frames: np.ndarray | None = None

    def objects_per_frame(self) -> np.ndarray:
        """(n,) how many of ``motion_vectors`` each scored frame holds."""
        if self.motion_vectors is None:
            raise ValueError(f"{self.name}: no object motion kept; score.motion_model needs "
                             "model.input objects")
        return np.bincount(self.vector_frames, minlength=len(self.frames))
