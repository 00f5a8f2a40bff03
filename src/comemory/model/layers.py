"""U-Net building blocks shared by both branches (thesis section 3.2, after MNAD)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def stage_widths(width: float) -> list[int]:
    """Channels of the four U-Net stages: 64-128-256-512 scaled by ``width`` (at least 4)."""
    return [max(4, int(round(base * width))) for base in (64, 128, 256, 512)]


class ConvBlock(nn.Sequential):
    """Two 3x3 convolutions, each with BN + ReLU: (B, in, H, W) -> (B, out, H, W).

    With ``plain_output`` the second convolution has no BN/ReLU, as at the end of the
    encoder, so the query keeps negative values (section 3.2).
    """

    def __init__(self, in_channels: int, out_channels: int, plain_output: bool = False):
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, out_channels, 3, padding=1),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1),
        ]
        if not plain_output:
            layers += [nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True)]
        super().__init__(*layers)


class UpBlock(nn.Sequential):
    """Transposed 3x3 convolution, stride 2, + BN + ReLU: (B, in, H, W) -> (B, out, 2H, 2W)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(
            nn.ConvTranspose2d(in_channels, out_channels, 3, stride=2, padding=1, output_padding=1),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class Encoder(nn.Module):
    """U-Net encoder: (B, in, H, W) -> query (B, C, H/8, W/8), unit L2 norm over C, + 3 skips.

    Skips have 64w, 128w, 256w channels at H, H/2, H/4; C = 512w.
    """

    def __init__(self, in_channels: int, width: float):
        super().__init__()
        c1, c2, c3, c4 = stage_widths(width)
        self.stage1 = ConvBlock(in_channels, c1)
        self.stage2 = ConvBlock(c1, c2)
        self.stage3 = ConvBlock(c2, c3)
        self.stage4 = ConvBlock(c3, c4, plain_output=True)
        self.out_channels = c4

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        skip1 = self.stage1(x)
        skip2 = self.stage2(F.max_pool2d(skip1, 2))
        skip3 = self.stage3(F.max_pool2d(skip2, 2))
        query = self.stage4(F.max_pool2d(skip3, 2))
        return F.normalize(query, dim=1), [skip1, skip2, skip3]


class Decoder(nn.Module):
    """U-Net decoder: features (B, in, H/8, W/8) + encoder skips -> (B, out, H, W).

    ``activation`` is applied to the output: tanh for frames in [-1, 1], none for flow.
    ``skips`` (0-3): how many encoder skips it uses, the deepest first; 3 is the U-Net,
    0 decodes from the features alone.
    """

    def __init__(self, in_channels: int, out_channels: int, width: float,
                 activation: nn.Module | None = None, skips: int = 3):
        super().__init__()
        c1, c2, c3, c4 = stage_widths(width)
        self.skips = skips
        self.bottleneck = ConvBlock(in_channels, c4)
        self.up3, self.fuse3 = UpBlock(c4, c3), ConvBlock(c3 * (2 if skips >= 1 else 1), c3)
        self.up2, self.fuse2 = UpBlock(c3, c2), ConvBlock(c2 * (2 if skips >= 2 else 1), c2)
        self.up1, self.fuse1 = UpBlock(c2, c1), ConvBlock(c1 * (2 if skips >= 3 else 1), c1)
        self.head = nn.Conv2d(c1, out_channels, 3, padding=1)
        self.activation = activation or nn.Identity()

    def forward(self, features: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
        """skips: the encoder's [skip1 (H), skip2 (H/2), skip3 (H/4)]."""
        skip1, skip2, skip3 = skips
        x = self.bottleneck(features)
        x = self.fuse3(self._join(skip3, self.up3(x), self.skips >= 1))
        x = self.fuse2(self._join(skip2, self.up2(x), self.skips >= 2))
        x = self.fuse1(self._join(skip1, self.up1(x), self.skips >= 3))
        return self.activation(self.head(x))

    @staticmethod
    def _join(skip: torch.Tensor, x: torch.Tensor, use: bool) -> torch.Tensor:
        return torch.cat([skip, x], dim=1) if use else x
