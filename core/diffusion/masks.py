"""MASK operations: ``[B, H, W]`` float tensors in 0..1 where 1 means "repaint".

Every function returns a new tensor and leaves its inputs alone, so cached values stay valid.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F

CompositeOp = Literal["multiply", "add", "subtract", "and", "or", "xor"]
#: ComfyUI's order: the first, multiply, is the default.
COMPOSITE_OPS: tuple[str, ...] = ("multiply", "add", "subtract", "and", "or", "xor")
CHANNELS: tuple[str, ...] = ("red", "green", "blue", "alpha")


def as_batch(mask: torch.Tensor) -> torch.Tensor:
    """A mask as ``[B, H, W]`` float32 (a single ``[H, W]`` mask gains a batch axis)."""
    mask = mask.float()
    if mask.ndim == 2:
        return mask[None]
    if mask.ndim == 4 and mask.shape[1] == 1:
        return mask[:, 0]
    if mask.ndim != 3:
        raise ValueError(f"a mask is [batch, height, width], got shape {tuple(mask.shape)}")
    return mask


def solid(value: float, width: int, height: int) -> torch.Tensor:
    """A ``[1, H, W]`` mask filled with ``value``."""
    return torch.full((1, height, width), float(value))


def invert(mask: torch.Tensor) -> torch.Tensor:
    """1 − mask."""
    return 1.0 - as_batch(mask)


def _disk(radius: int, tapered: bool) -> torch.Tensor:
    size = 2 * radius + 1
    if tapered:  # a "plus" footprint: diagonals grow slower, corners stay rounded
        kernel = torch.zeros(size, size)
        kernel[radius, :] = 1
        kernel[:, radius] = 1
        return kernel
    return torch.ones(size, size)


def grow_mask(
    mask: torch.Tensor, pixels: int, feather: float = 0.0, tapered_corners: bool = False
) -> torch.Tensor:
    """Grow (``pixels`` > 0) or shrink (< 0) a mask, then feather its edge by ``feather`` pixels.

    Growing is a grey-scale dilation (a running maximum over a square, or a plus shape with
    ``tapered_corners``, applied one pixel at a time); shrinking is the dilation of the inverse.
    Feathering is a Gaussian blur with σ = feather/2, so the edge fades over about ``feather``
    pixels on each side.
    """
    out = as_batch(mask)[:, None]
    shrink = pixels < 0
    if shrink:
        out = 1.0 - out
    kernel = _disk(1, tapered_corners)
    for _ in range(abs(int(pixels))):
        if tapered_corners:
            padded = F.pad(out, (1, 1, 1, 1), mode="replicate")
            shifted = [
                padded[:, :, 1 + dy : 1 + dy + out.shape[2], 1 + dx : 1 + dx + out.shape[3]]
                for dy, dx in ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))
                if kernel[1 + dy, 1 + dx] > 0
            ]
            out = torch.stack(shifted).amax(dim=0)
        else:
            out = F.max_pool2d(F.pad(out, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    if shrink:
        out = 1.0 - out
    if feather > 0:
        out = _gaussian_blur(out, feather / 2.0)
    return out[:, 0].clamp(0.0, 1.0)


def _gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``[B, C, H, W]`` with edge replication."""
    radius = max(1, math.ceil(3 * sigma))
    positions = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (positions / sigma) ** 2)
    kernel = kernel / kernel.sum()
    channels = images.shape[1]
    horizontal = kernel.view(1, 1, 1, -1).repeat(channels, 1, 1, 1)
    vertical = kernel.view(1, 1, -1, 1).repeat(channels, 1, 1, 1)
    out = F.conv2d(
        F.pad(images, (radius, radius, 0, 0), mode="replicate"), horizontal, groups=channels
    )
    return F.conv2d(F.pad(out, (0, 0, radius, radius), mode="replicate"), vertical, groups=channels)


def composite(
    destination: torch.Tensor, source: torch.Tensor, x: int, y: int, operation: str
) -> torch.Tensor:
    """Combine ``source`` into ``destination`` with its top-left corner at (x, y).

    add/subtract/multiply are arithmetic; and/or/xor treat values above 0.5 as set. The result
    is clamped to 0..1 and keeps the destination's size; parts of the source outside it are
    dropped.
    """
    if operation not in COMPOSITE_OPS:
        raise ValueError(f"unknown mask operation {operation!r}: use {', '.join(COMPOSITE_OPS)}")
    out = as_batch(destination).clone()
    src = as_batch(source)
    if src.shape[0] != out.shape[0]:
        if src.shape[0] == 1:
            src = src.expand(out.shape[0], -1, -1)
        elif out.shape[0] == 1:
            out = out.expand(src.shape[0], -1, -1).clone()
        else:
            raise ValueError(f"cannot combine a batch of {src.shape[0]} masks with {out.shape[0]}")
    height, width = out.shape[1:]
    top, left = max(y, 0), max(x, 0)
    bottom, right = min(y + src.shape[1], height), min(x + src.shape[2], width)
    if bottom <= top or right <= left:
        return out
    region = out[:, top:bottom, left:right]
    part = src[:, top - y : bottom - y, left - x : right - x]
    if operation == "add":
        combined = region + part
    elif operation == "subtract":
        combined = region - part
    elif operation == "multiply":
        combined = region * part
    else:
        a, b = region > 0.5, part > 0.5
        logic = {"and": a & b, "or": a | b, "xor": a ^ b}[operation]
        combined = logic.float()
    out[:, top:bottom, left:right] = combined.clamp(0.0, 1.0)
    return out


def from_image(image: torch.Tensor, channel: str) -> torch.Tensor:
    """One channel of IMAGE ``[B, H, W, 3 or 4]`` as a mask; "alpha" needs a 4-channel image
    (one from Join Image with Alpha) and is taken as it is, like the colours."""
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}: use {', '.join(CHANNELS)}")
    index = CHANNELS.index(channel)
    if index >= image.shape[-1]:
        raise ValueError(
            "the image has no alpha channel: choose red, green or blue, or give it one with "
            "Join Image with Alpha"
        )
    return image[..., index].float().clone()


def from_color(image: torch.Tensor, color: int) -> torch.Tensor:
    """1 where an IMAGE's 8-bit colour is exactly ``color`` (0xRRGGBB), else 0."""
    levels = (image[..., :3].float().clamp(0, 1) * 255).round().to(torch.int64)
    packed = (levels[..., 0] << 16) + (levels[..., 1] << 8) + levels[..., 2]
    return (packed == int(color)).float()


def threshold(mask: torch.Tensor, value: float) -> torch.Tensor:
    """1 where the mask is above ``value``, else 0."""
    return (as_batch(mask) > value).float()


def feather(mask: torch.Tensor, left: int, top: int, right: int, bottom: int) -> torch.Tensor:
    """Fades a mask out towards its borders: over ``left`` pixels at the left edge the mask is
    multiplied by 1/left, 2/left, … 1 going inwards, and likewise at the other edges (corners
    get both factors)."""
    out = as_batch(mask).clone()
    height, width = out.shape[1:]

    def ramp(size: int, length: int) -> torch.Tensor:
        length = min(length, size)
        weight = torch.ones(size)
        if length > 0:
            weight[:length] = torch.arange(1, length + 1, dtype=torch.float32) / length
        return weight

    rows = ramp(height, top) * ramp(height, bottom).flip(0)
    cols = ramp(width, left) * ramp(width, right).flip(0)
    return out * rows[:, None] * cols[None, :]


def to_image(mask: torch.Tensor) -> torch.Tensor:
    """A mask as a grey IMAGE ``[B, H, W, 3]``."""
    return as_batch(mask)[..., None].repeat(1, 1, 1, 3)


def crop(mask: torch.Tensor, x: int, y: int, width: int, height: int) -> torch.Tensor:
    """The ``width``×``height`` rectangle at (x, y), clipped to the mask."""
    out = as_batch(mask)
    x, y = min(max(x, 0), out.shape[2] - 1), min(max(y, 0), out.shape[1] - 1)
    return out[:, y : y + height, x : x + width].clone()


def load_mask(path: str, channel: str) -> torch.Tensor:
    """A mask from one channel of an image file; "alpha" gives 1 − alpha (transparent = 1)."""
    import numpy as np
    from PIL import Image, ImageOps

    from core.diffusion.images import ImageFileError

    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}: use {', '.join(CHANNELS)}")
    try:
        with Image.open(path) as opened:
            picture = ImageOps.exif_transpose(opened).convert("RGBA")
    except FileNotFoundError:
        raise ImageFileError(f"{path}: no such image file") from None
    except OSError as exc:
        raise ImageFileError(f"{path}: not a readable image ({exc})") from None
    values = np.asarray(picture, dtype=np.float32)[..., CHANNELS.index(channel)] / 255.0
    mask = torch.from_numpy(np.ascontiguousarray(values))[None]
    return 1.0 - mask if channel == "alpha" else mask
