"""The Appearance-Motion Co-memory Network (thesis figure 3.1, eq. 3.1-3.5)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from comemory.config import ModelConfig
from comemory.model.layers import Decoder, Encoder
from comemory.model.memory import Memory


@dataclass
class CoMemoryOutput:
    """flow: (B, 2, H, W) predicted F_t, in pixels of the model's input size.
    frame: (B, channels, H, W) predicted I_{t+1} in [-1, 1].
    memory_losses: scalar compactness / separateness of each memory that exists
        (keys app_compact, app_separate, motion_compact, motion_separate).
    """

    flow: torch.Tensor
    frame: torch.Tensor
    memory_losses: dict[str, torch.Tensor]


class MemoryBranchHead(nn.Module):
    """Reads a query map from a memory and concatenates: (B, C, h, w) -> (B, 2C, h, w).

    With no memory (size 0, the "w/o memory" ablation) the query passes alone: (B, C, h, w).
    """

    def __init__(self, num_items: int, dim: int, margin: float):
        super().__init__()
        self.memory = Memory(num_items, dim, margin) if num_items > 0 else None
        self.out_channels = 2 * dim if self.memory is not None else dim

    def forward(self, query: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if self.memory is None:
            return query, {}
        read = self.memory(query)
        features = torch.cat([query, read.features], dim=1)
        return features, {"compact": read.compactness, "separate": read.separateness}


class CoMemoryNet(nn.Module):
    """Motion branch predicts the flow F_t from (I_{t-1}, I_t); the appearance branch
    predicts I_{t+1} from I_t and the motion features.

    forward(previous, current): two (B, channels, H, W) frames in [-1, 1] -> CoMemoryOutput.
    H and W must be multiples of 8.
    """

    def __init__(self, config: ModelConfig, margin: float = 1.0):
        super().__init__()
        self.config = config
        channels, width = config.channels, config.width
        self.motion_encoder = Encoder(2 * channels, width)
        self.appearance_encoder = Encoder(channels, width)
        dim = self.motion_encoder.out_channels
        self.motion_head = MemoryBranchHead(config.motion_memory, dim, margin)
        self.appearance_head = MemoryBranchHead(config.appearance_memory, dim, margin)
        self.motion_decoder = Decoder(self.motion_head.out_channels, 2, width)
        fused = self.appearance_head.out_channels + self.motion_head.out_channels
        self.appearance_decoder = Decoder(fused, channels, width, activation=nn.Tanh())

    def forward(self, previous: torch.Tensor, current: torch.Tensor) -> CoMemoryOutput:
        motion_query, motion_skips = self.motion_encoder(torch.cat([previous, current], dim=1))
        motion_features, motion_losses = self.motion_head(motion_query)  # f_m, eq. 3.2
        flow = self.motion_decoder(motion_features, motion_skips)  # eq. 3.3

        appearance_query, appearance_skips = self.appearance_encoder(current)
        appearance_features, appearance_losses = self.appearance_head(appearance_query)  # f_a
        fused = torch.cat([appearance_features, motion_features], dim=1)  # eq. 3.5
        frame = self.appearance_decoder(fused, appearance_skips)

        losses = {f"motion_{k}": v for k, v in motion_losses.items()}
        losses.update({f"app_{k}": v for k, v in appearance_losses.items()})
        return CoMemoryOutput(flow=flow, frame=frame, memory_losses=losses)
