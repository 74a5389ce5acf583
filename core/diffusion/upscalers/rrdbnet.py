"""ESRGAN's generator, RRDBNet, read from either key layout its published weights use.

The network is that of Wang et al. 2018, "ESRGAN: Enhanced Super-Resolution Generative
Adversarial Networks" (§3.1): a first convolution, a trunk of Residual-in-Residual Dense Blocks
(three dense blocks of five convolutions each, residual scaling β = 0.2), a trunk convolution
added back to the first features, then ×2 nearest-neighbour upsampling steps each followed by a
convolution, and two final convolutions. Real-ESRGAN (Wang et al. 2021, §4.1) keeps it and, for
×2 and ×1 models, first folds the input's pixels into channels (pixel-unshuffle by 2 or 4) so
the same ×4 trunk runs on a smaller grid.

Two key layouts are in circulation. The original ESRGAN code, and most community models
("4x-UltraSharp", "4x_foolhardy_Remacri"…), store one flat ``model.N`` sequence::

    model.0                          first convolution
    model.1.sub.{i}.RDB{k}.conv{j}.0 dense block k of block i, convolution j
    model.1.sub.{blocks}             trunk convolution
    model.{3, 6, 9…}                 one convolution per ×2 upsampling step
    then two more                    high-resolution convolution and the last one

BasicSR and Real-ESRGAN name the same tensors ``conv_first``, ``body.{i}.rdb{k}.conv{j}``,
``conv_body``, ``conv_up{n}``, ``conv_hr`` and ``conv_last``. ``RRDBNet`` uses the second
naming; ``from_old_layout`` renames the first. Sizes (features, growth channels, block count,
upsampling steps, pixel-unshuffle factor) are read from the tensors' names and shapes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

#: Residual scaling of every dense block and every RRDB (ESRGAN §3.2, β = 0.2).
RESIDUAL_SCALE = 0.2
#: Slope of the leaky ReLUs throughout the network.
LEAKY_SLOPE = 0.2


def _conv(channels_in: int, channels_out: int) -> nn.Conv2d:
    return nn.Conv2d(channels_in, channels_out, 3, padding=1)


class DenseBlock(nn.Module):
    """Five convolutions, each seeing the block's input and every earlier output."""

    def __init__(self, features: int, growth: int) -> None:
        super().__init__()
        for j in range(1, 5):
            self.add_module(f"conv{j}", _conv(features + (j - 1) * growth, growth))
        self.conv5 = _conv(features + 4 * growth, features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seen = [x]
        for j in range(1, 5):
            conv = getattr(self, f"conv{j}")
            seen.append(F.leaky_relu(conv(torch.cat(seen, 1)), LEAKY_SLOPE))
        return self.conv5(torch.cat(seen, 1)) * RESIDUAL_SCALE + x


class ResidualInResidualDenseBlock(nn.Module):
    """Three dense blocks in a row with a scaled residual around them (ESRGAN Fig. 4)."""

    def __init__(self, features: int, growth: int) -> None:
        super().__init__()
        self.rdb1 = DenseBlock(features, growth)
        self.rdb2 = DenseBlock(features, growth)
        self.rdb3 = DenseBlock(features, growth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rdb3(self.rdb2(self.rdb1(x))) * RESIDUAL_SCALE + x


@dataclass(frozen=True)
class RRDBShape:
    """The sizes of an RRDBNet, as read from its weights."""

    in_channels: int
    out_channels: int
    features: int
    growth: int
    blocks: int
    upsamples: int
    #: The pixel-unshuffle factor applied to the input (1: none; 2 for ×2, 4 for ×1 models).
    unshuffle: int

    @property
    def scale(self) -> int:
        """How many times larger the output is than the input, per side."""
        return 2**self.upsamples // self.unshuffle


class RRDBNet(nn.Module):
    """ESRGAN / Real-ESRGAN generator with BasicSR's parameter names."""

    def __init__(self, shape: RRDBShape) -> None:
        super().__init__()
        self.shape = shape
        nf = shape.features
        self.conv_first = _conv(shape.in_channels * shape.unshuffle**2, nf)
        self.body = nn.Sequential(
            *(ResidualInResidualDenseBlock(nf, shape.growth) for _ in range(shape.blocks))
        )
        self.conv_body = _conv(nf, nf)
        for n in range(1, shape.upsamples + 1):
            self.add_module(f"conv_up{n}", _conv(nf, nf))
        self.conv_hr = _conv(nf, nf)
        self.conv_last = _conv(nf, shape.out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.shape.unshuffle > 1:
            x = F.pixel_unshuffle(x, self.shape.unshuffle)
        features = self.conv_first(x)
        features = features + self.conv_body(self.body(features))
        for n in range(1, self.shape.upsamples + 1):
            upsampled = F.interpolate(features, scale_factor=2, mode="nearest")
            features = F.leaky_relu(getattr(self, f"conv_up{n}")(upsampled), LEAKY_SLOPE)
        return self.conv_last(F.leaky_relu(self.conv_hr(features), LEAKY_SLOPE))


def is_new_layout(state_dict: dict[str, torch.Tensor]) -> bool:
    """Whether the keys are BasicSR's (``conv_first``, ``body.0.rdb1.conv1``…)."""
    return "conv_first.weight" in state_dict and "body.0.rdb1.conv1.weight" in state_dict


def is_old_layout(state_dict: dict[str, torch.Tensor]) -> bool:
    """Whether the keys are the original ESRGAN's (``model.0``, ``model.1.sub.0.RDB1``…)."""
    return "model.0.weight" in state_dict and "model.1.sub.0.RDB1.conv1.0.weight" in state_dict


_OLD_DENSE = re.compile(r"model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.(weight|bias)")
_OLD_FLAT = re.compile(r"model\.(\d+)\.(weight|bias)")
_OLD_TRUNK = re.compile(r"model\.1\.sub\.(\d+)\.(weight|bias)")


def from_old_layout(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The same tensors under BasicSR's names; keys of neither pattern are kept as they are
    (so loading reports them as unexpected)."""
    renamed: dict[str, torch.Tensor] = {}
    blocks = 1 + max(
        (int(m.group(1)) for m in map(_OLD_DENSE.fullmatch, state_dict) if m), default=-1
    )
    flat = sorted({int(m.group(1)) for m in map(_OLD_FLAT.fullmatch, state_dict) if m} - {0})
    # After model.0 (first conv) and model.1 (the trunk), every stored convolution is an
    # upsampling step's, except the last two: the high-resolution and the last convolution.
    names = {index: f"conv_up{n}" for n, index in enumerate(flat[:-2], start=1)}
    if len(flat) >= 2:
        names[flat[-2]], names[flat[-1]] = "conv_hr", "conv_last"
    names[0] = "conv_first"
    for key, tensor in state_dict.items():
        renamed[_new_name(key, blocks, names)] = tensor
    return renamed


def _new_name(key: str, blocks: int, flat_names: dict[int, str]) -> str:
    """BasicSR's name for one original ESRGAN key (the key itself when it is neither's)."""
    if dense := _OLD_DENSE.fullmatch(key):
        block, rdb, conv, kind = dense.groups()
        return f"body.{block}.rdb{rdb}.conv{conv}.{kind}"
    trunk = _OLD_TRUNK.fullmatch(key)
    if trunk and int(trunk.group(1)) == blocks:
        return f"conv_body.{trunk.group(2)}"
    flat = _OLD_FLAT.fullmatch(key)
    if flat and int(flat.group(1)) in flat_names:
        return f"{flat_names[int(flat.group(1))]}.{flat.group(2)}"
    return key


def read_shape(state_dict: dict[str, torch.Tensor]) -> RRDBShape:
    """The network's sizes from BasicSR-named weights; raises ``ValueError`` naming what is
    missing or inconsistent."""
    for key in ("conv_first.weight", "conv_last.weight", "body.0.rdb1.conv1.weight"):
        if key not in state_dict:
            raise ValueError(f"it has no '{key}'")
    features, stored_in = state_dict["conv_first.weight"].shape[:2]
    out_channels = int(state_dict["conv_last.weight"].shape[0])
    growth = int(state_dict["body.0.rdb1.conv1.weight"].shape[0])
    blocks = 0
    while f"body.{blocks}.rdb1.conv1.weight" in state_dict:
        blocks += 1
    upsamples = 0
    while f"conv_up{upsamples + 1}.weight" in state_dict:
        upsamples += 1
    # Real-ESRGAN's ×2 and ×1 models fold 2×2 or 4×4 pixels into the input's channels.
    unshuffle = 1
    for factor in (4, 2):
        if stored_in == out_channels * factor**2:
            unshuffle = factor
            break
    if 2**upsamples % unshuffle:
        raise ValueError(
            f"{upsamples} upsampling steps after a pixel-unshuffle by {unshuffle} make no "
            "whole scale"
        )
    return RRDBShape(
        in_channels=int(stored_in) // unshuffle**2,
        out_channels=out_channels,
        features=int(features),
        growth=growth,
        blocks=blocks,
        upsamples=upsamples,
        unshuffle=unshuffle,
    )
