"""Real-ESRGAN's compact network, SRVGGNetCompact ("realesr-general-x4v3",
"realesr-animevideov3", and community models trained with it).

A plain VGG-style stack at the input's resolution: a convolution and a PReLU, ``convolutions``
more of each, and a last convolution with ``channels · scale²`` outputs that a pixel shuffle
turns into the upscaled picture; the nearest-neighbour upscaled input is added to it, so the
network only learns the residual. Its weights are the flat sequence ``body.{n}``: convolutions
at the even indices (4-D weights), PReLU slopes at the odd ones (one per feature channel).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class SRVGGShape:
    """The sizes of an SRVGGNetCompact, as read from its weights."""

    channels: int
    features: int
    convolutions: int
    scale: int


class SRVGGNetCompact(nn.Module):
    """Real-ESRGAN's compact upscaler with its published parameter names (``body.{n}``)."""

    def __init__(self, shape: SRVGGShape) -> None:
        super().__init__()
        self.shape = shape
        nf = shape.features
        layers: list[nn.Module] = [nn.Conv2d(shape.channels, nf, 3, padding=1), nn.PReLU(nf)]
        for _ in range(shape.convolutions):
            layers += [nn.Conv2d(nf, nf, 3, padding=1), nn.PReLU(nf)]
        layers.append(nn.Conv2d(nf, shape.channels * shape.scale**2, 3, padding=1))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = F.pixel_shuffle(self.body(x), self.shape.scale)
        return residual + F.interpolate(x, scale_factor=self.shape.scale, mode="nearest")


def is_srvgg(state_dict: dict[str, torch.Tensor]) -> bool:
    """Whether the keys are SRVGGNetCompact's: ``body.0`` a convolution, ``body.1`` a PReLU."""
    first, slope = state_dict.get("body.0.weight"), state_dict.get("body.1.weight")
    return first is not None and slope is not None and first.ndim == 4 and slope.ndim == 1


def read_shape(state_dict: dict[str, torch.Tensor]) -> SRVGGShape:
    """The network's sizes; raises ``ValueError`` when the weights do not fit together."""
    features, channels = (int(n) for n in state_dict["body.0.weight"].shape[:2])
    last = 0
    while f"body.{last + 2}.weight" in state_dict:
        last += 2
    if last < 2:
        raise ValueError("it has no last convolution ('body.2.weight')")
    outputs = int(state_dict[f"body.{last}.weight"].shape[0])
    scale = math.isqrt(outputs // channels)
    if scale < 1 or channels * scale**2 != outputs:
        raise ValueError(
            f"its last convolution has {outputs} outputs, which is no {channels}-channel "
            "picture pixel-shuffled by a whole scale"
        )
    return SRVGGShape(channels, features, convolutions=(last - 2) // 2, scale=scale)
