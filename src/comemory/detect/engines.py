"""What runs on each batch of frames in ``detect`` and ``serve``: an engine takes the
past frames, the frame and a flow, and returns ``FrameScorer.OUTPUTS`` by name.

    torch_engine   a network's FrameScorer in PyTorch (fp32 or bf16 autocast)
    floor_engine   the floor (no network): the flow into the frame, its most moving patch
    comemory.export.onnx_engine   an exported network in ONNX Runtime
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from comemory.config import Config, ScoreConfig
from comemory.scoring import FrameScorer
from comemory.scoring.errors import centred_patch_means, most_moving_patch

# engine(past (B, P, C, S, S), target (B, C, S, S), flow (B, 2, S, S)) float32 arrays
# -> FrameScorer.OUTPUTS as numpy arrays (the floor's: the three it has)
Engine = Callable[[np.ndarray, np.ndarray, np.ndarray], dict[str, np.ndarray]]


def torch_engine(scorer: FrameScorer, bf16: bool = False, channels_last: bool = False) -> Engine:
    """Run a FrameScorer in PyTorch without gradients: fp32, or the network under bf16
    autocast (errors and scores stay fp32); ``channels_last`` runs convolutions NHWC."""
    scorer.eval()
    if channels_last:
        scorer.to(memory_format=torch.channels_last)

    @torch.no_grad()
    def run(past: np.ndarray, target: np.ndarray, flow: np.ndarray) -> dict[str, np.ndarray]:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            outputs = scorer(torch.from_numpy(past), torch.from_numpy(target),
                             torch.from_numpy(flow))
        return {name: value.float().numpy() for name, value in
                zip(FrameScorer.OUTPUTS, outputs, strict=True)}

    return run


def floor_engine(score: ScoreConfig) -> Engine:
    """The floor, which needs no network: from the flow into each frame (B, 2, S, S) its
    most moving patch ("flow_error", as the offline floor names it) and each pixel's
    patch-mean magnitude ("flow_map", float16 as the offline floor keeps it, so that live
    and offline scores agree); "frame_map" zeros. The frames are not read."""

    def run(past: np.ndarray, target: np.ndarray, flow: np.ndarray) -> dict[str, np.ndarray]:
        flows = torch.from_numpy(flow)
        magnitude = flows.norm(dim=1, keepdim=True)
        maps = centred_patch_means(magnitude, score.patch_size).numpy().astype(np.float16)
        return {"flow_error": most_moving_patch(flows, score.patch_size,
                                                score.patch_stride).numpy(),
                "flow_map": maps, "frame_map": np.zeros_like(maps)}

    return run


def score_parts(config: Config) -> list[str]:
    """The score parts this model has, in the order of scores.csv."""
    if config.model.architecture == "flow_floor":
        return ["flow_error"]  # the most moving patch's flow magnitude
    if config.model.architecture == "mnad":
        return ["psnr", "distance"]
    parts = ["psnr", "flow_error", "frame_error"]
    return parts + (["distance"] if config.model.appearance_memory > 0 else []) + ["motion"]
