"""The classifier's networks: a CIFAR-style ResNet; Tanaka's adaptation network (imports torch)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from pixveil.evaluate.attacks._nets import BlockAdaptation

__all__ = ["AdaptationNet", "ResNet"]

#: Tanaka's block-wise adaptation network (shared with the reconstruction attack).
AdaptationNet = BlockAdaptation


class _BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity (or 1x1 strided) shortcut (He et al. 2016)."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class ResNet(nn.Module):
    """CIFAR-style ResNet: a 3x3 stem, ``stages`` stages of ``blocks`` basic blocks, pool, linear.

    Channels ``width``, ``2*width``, ``4*width``...; every stage after the first
    halves the side.  ``blocks=1, width=16`` (three stages) is a ResNet-8 (CPU
    default); ``blocks=3`` a ResNet-20; ``stages=4, blocks=2, width=64`` the
    CIFAR ResNet-18 (64-128-256-512 channels, 3x3 stem), the paper's network.
    """

    def __init__(
        self, n_classes: int, *, width: int = 16, blocks: int = 1, stages: int = 3
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()
        )
        layers: list[nn.Module] = []
        c_in = width
        for stage in range(stages):
            c_out = width * 2**stage
            for b in range(blocks):
                layers.append(_BasicBlock(c_in, c_out, 2 if stage > 0 and b == 0 else 1))
                c_in = c_out
        self.stages = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, n_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.stages(self.stem(x)))
