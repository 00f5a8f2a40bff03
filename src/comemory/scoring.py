"""Abnormality score (thesis eq. 3.18-3.20) and the PSNR score of MNAD / future-frame prediction.

For each frame: per-pixel squared errors of the predicted flow and frame, averaged over
``patch_size`` x ``patch_size`` patches (eq. 3.19); the patch P~ with the largest flow
error is taken for both terms; then

    S = log(w_F * S_F(P~)) + lambda_S * w_I * S_I(P~)        (eq. 3.18)

with w_F, w_I the inverse means of S_F(P~), S_I(P~) over the training frames (eq. 3.20).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm import tqdm

from comemory.config import ScoreConfig
from comemory.data.prepared import FrameTriplets, PreparedVideo

LOG_FLOOR = 1e-12  # a perfect flow prediction would otherwise score log(0)


@dataclass
class FrameErrors:
    """Per-frame score parts for a batch, each (B,): flow_error S_F(P~), frame_error S_I(P~),
    psnr of the predicted frame (images taken in [0, 1]); heatmap (B, h, w) flow patch errors."""

    flow_error: torch.Tensor
    frame_error: torch.Tensor
    psnr: torch.Tensor
    heatmap: torch.Tensor


@dataclass
class Calibration:
    """w_F and w_I of eq. 3.20, from training frames, stored in the checkpoint."""

    flow_weight: float
    frame_weight: float

    def to_dict(self) -> dict[str, float]:
        return {"flow_weight": self.flow_weight, "frame_weight": self.frame_weight}


def patch_means(error_map: torch.Tensor, patch_size: int, stride: int) -> torch.Tensor:
    """(B, 1, H, W) per-pixel errors -> (B, h, w) mean error of each patch."""
    return F.avg_pool2d(error_map, patch_size, stride).squeeze(1)


def frame_errors(pred_flow: torch.Tensor, true_flow: torch.Tensor, pred_frame: torch.Tensor,
                 true_frame: torch.Tensor, config: ScoreConfig) -> FrameErrors:
    """Flows (B, 2, H, W), frames (B, C, H, W) in [-1, 1] -> FrameErrors.

    The flow's per-pixel error is the squared end-point error; the frame's is the squared
    error averaged over colour channels, so grey and colour frames score alike.
    """
    flow_map = (pred_flow.float() - true_flow.float()).pow(2).sum(1, keepdim=True)
    frame_map = (pred_frame.float() - true_frame.float()).pow(2).mean(1, keepdim=True)
    flow_patches = patch_means(flow_map, config.patch_size, config.patch_stride)
    frame_patches = patch_means(frame_map, config.patch_size, config.patch_stride)
    worst = flow_patches.flatten(1).argmax(dim=1, keepdim=True)  # P~ of each frame
    flow_error = flow_patches.flatten(1).gather(1, worst).squeeze(1)
    frame_error = frame_patches.flatten(1).gather(1, worst).squeeze(1)
    mse_unit_range = frame_map.flatten(1).mean(1) / 4.0  # [-1, 1] -> [0, 1] divides errors by 4
    psnr = 10 * torch.log10(1.0 / mse_unit_range.clamp_min(LOG_FLOOR))
    return FrameErrors(flow_error, frame_error, psnr, flow_patches)


def calibrate(flow_errors: np.ndarray, frame_errors_: np.ndarray) -> Calibration:
    """Eq. 3.20 from the training frames' S_F(P~) and S_I(P~)."""
    flow_mean, frame_mean = float(np.mean(flow_errors)), float(np.mean(frame_errors_))
    if not (flow_mean > 0 and frame_mean > 0):
        raise ValueError("training errors are all zero: cannot calibrate w_F, w_I")
    return Calibration(1.0 / flow_mean, 1.0 / frame_mean)


def abnormality(flow_error: np.ndarray, frame_error: np.ndarray, calibration: Calibration,
                lambda_s: float) -> np.ndarray:
    """Eq. 3.18 from S_F(P~), S_I(P~) arrays (any shape)."""
    flow_term = np.log(np.maximum(calibration.flow_weight * flow_error, LOG_FLOOR))
    return flow_term + lambda_s * calibration.frame_weight * frame_error


@dataclass
class VideoErrors:
    """Score parts of one video's scored frames, each (n,); frames are frame indices."""

    name: str
    frames: np.ndarray
    flow_error: np.ndarray
    frame_error: np.ndarray
    psnr: np.ndarray


@torch.no_grad()
def video_errors(model: torch.nn.Module, videos: list[PreparedVideo], config: ScoreConfig,
                 batch_size: int = 16, desc: str = "scoring") -> list[VideoErrors]:
    """Run ``model`` (eval mode, memories frozen) over PreparedVideos -> VideoErrors each.

    Frame t+1 is scored from (I_{t-1}, I_t): its prediction and the flow F_t.
    The first two frames of a video have no score.
    """
    model.eval()
    samples = FrameTriplets(videos)
    parts: dict[str, list] = {k: [] for k in ("video", "frame", "flow", "image", "psnr")}
    for batch in tqdm(DataLoader(samples, batch_size=batch_size), desc=desc, unit="batch",
                      leave=False):
        out = model(batch["previous"], batch["current"])
        errors = frame_errors(out.flow, batch["flow"], out.frame, batch["target"], config)
        for key, value in (("video", batch["video"]), ("frame", batch["frame"]),
                           ("flow", errors.flow_error), ("image", errors.frame_error),
                           ("psnr", errors.psnr)):
            parts[key].append(value.numpy())
    columns = {k: np.concatenate(v) for k, v in parts.items()}
    result = []
    for index, video in enumerate(videos):
        mine = columns["video"] == index
        result.append(VideoErrors(video.name, columns["frame"][mine], columns["flow"][mine],
                                  columns["image"][mine], columns["psnr"][mine]))
    return result
