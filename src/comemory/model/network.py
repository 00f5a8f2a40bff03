"""The Appearance-Motion Co-memory Network (thesis figure 3.1, eq. 3.1-3.5), and the MNAD
baseline it extends (Park et al., CVPR 2020), built from the same layers and memory.

Both models take a window of past frames and predict the next one:
``model(past)`` with past (B, P, C, H, W) in [-1, 1] -> ModelOutput; ``model.past_frames``
is P (2 for co-memory, 4 for MNAD). ``build_model`` picks one by ``model.architecture``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from comemory.config import ModelConfig
from comemory.errors import ConfigError
from comemory.model.layers import Decoder, Encoder
from comemory.model.memory import Memory


@dataclass
class ModelOutput:
    """frame: (B, channels, H, W) predicted I_{t+1} in [-1, 1].
    flow: (B, 2, H, W) predicted F_t in pixels of the model's input size (None for MNAD).
    memory_losses: scalar compactness / separateness of each memory that exists
        (keys app_compact, app_separate, motion_compact, motion_separate).
    feature_distance: (B,) mean distance of the appearance queries to their nearest
        memory item (MNAD's second score term), or None without appearance memory.
    """

    frame: torch.Tensor
    flow: torch.Tensor | None
    memory_losses: dict[str, torch.Tensor]
    feature_distance: torch.Tensor | None = None


class MemoryBranchHead(nn.Module):
    """Reads a query map from a memory and concatenates: (B, C, h, w) -> (B, 2C, h, w).

    With no memory (size 0, the "w/o memory" ablation) the query passes alone: (B, C, h, w).
    Also returns the memory losses and the per-sample feature distance (B,) (empty without
    a memory).
    """

    def __init__(self, num_items: int, dim: int, margin: float, config: ModelConfig):
        super().__init__()
        self.memory = (Memory(num_items, dim, margin, config.read, config.compactness,
                              config.memory_init) if num_items > 0 else None)
        self.out_channels = 2 * dim if self.memory is not None else dim

    def forward(self, query: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if self.memory is None:
            return query, {}
        read = self.memory(query)
        features = torch.cat([query, read.features], dim=1)
        return features, {"compact": read.compactness, "separate": read.separateness,
                          "distance": read.distance.flatten(1).mean(1)}


class CoMemoryNet(nn.Module):
    """Motion branch predicts the flow F_t from (I_{t-1}, I_t); the appearance branch
    predicts I_{t+1} from I_t and the motion features.

    ``config.motion_skips`` < 3 drops the motion decoder's shallowest skip connections, so
    that more of the flow must pass through the motion memory instead of around it.

    forward(past): (B, 2, channels, H, W) frames (I_{t-1}, I_t) in [-1, 1] -> ModelOutput.
    H and W must be multiples of 8.
    """

    past_frames = 2

    def __init__(self, config: ModelConfig, margin: float = 1.0):
        super().__init__()
        self.config = config
        channels, width = config.channels, config.width
        self.motion_encoder = Encoder(2 * channels, width)
        self.appearance_encoder = Encoder(channels, width)
        dim = self.motion_encoder.out_channels
        self.motion_head = MemoryBranchHead(config.motion_memory, dim, margin, config)
        self.appearance_head = MemoryBranchHead(config.appearance_memory, dim, margin, config)
        self.motion_decoder = Decoder(self.motion_head.out_channels, 2, width,
                                      skips=config.motion_skips)
        fused = self.appearance_head.out_channels + self.motion_head.out_channels
        self.appearance_decoder = Decoder(fused, channels, width, activation=nn.Tanh())

    def forward(self, past: torch.Tensor) -> ModelOutput:
        motion_query, motion_skips = self.motion_encoder(past.flatten(1, 2))  # (I_{t-1}, I_t)
        motion_features, motion_parts = self.motion_head(motion_query)  # f_m, eq. 3.2
        flow = self.motion_decoder(motion_features, motion_skips)  # eq. 3.3

        appearance_query, appearance_skips = self.appearance_encoder(past[:, -1])  # I_t
        appearance_features, appearance_parts = self.appearance_head(appearance_query)  # f_a
        fused = torch.cat([appearance_features, motion_features], dim=1)  # eq. 3.5
        frame = self.appearance_decoder(fused, appearance_skips)
        return ModelOutput(frame, flow, _memory_losses(motion=motion_parts, app=appearance_parts),
                           appearance_parts.get("distance"))


class MNADNet(nn.Module):
    """MNAD's prediction model: one U-Net with one memory, four past frames in, next frame out.

    forward(past): (B, 4, channels, H, W) in [-1, 1] -> ModelOutput with flow None.
    The memory has ``appearance_memory`` items and uses this project's update rule
    (eq. 3.9, each item's own queries); MNAD's test-time memory update is an option of
    the scoring (``score.test_time_update``).
    """

    past_frames = 4

    def __init__(self, config: ModelConfig, margin: float = 1.0):
        super().__init__()
        self.config = config
        self.encoder = Encoder(self.past_frames * config.channels, config.width)
        self.head = MemoryBranchHead(config.appearance_memory, self.encoder.out_channels, margin,
                                     config)
        self.decoder = Decoder(self.head.out_channels, config.channels, config.width,
                               activation=nn.Tanh())

    def forward(self, past: torch.Tensor) -> ModelOutput:
        query, skips = self.encoder(past.flatten(1, 2))
        features, parts = self.head(query)
        frame = self.decoder(features, skips)
        return ModelOutput(frame, None, _memory_losses(app=parts), parts.get("distance"))


NETWORKS = {"comemory": CoMemoryNet, "mnad": MNADNet}  # config.ARCHITECTURES


def build_model(config: ModelConfig, margin: float = 1.0) -> CoMemoryNet | MNADNet:
    """The network named by ``config.architecture``, freshly initialised."""
    if config.architecture not in NETWORKS:
        raise ConfigError(f"model.architecture must be one of {sorted(NETWORKS)}, "
                          f"got {config.architecture!r}")
    return NETWORKS[config.architecture](config, margin=margin)


def _memory_losses(**branches: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """{"motion": {"compact": x, ...}} -> {"motion_compact": x, ...}, losses only."""
    return {f"{branch}_{name}": value for branch, parts in branches.items()
            for name, value in parts.items() if name in ("compact", "separate")}
