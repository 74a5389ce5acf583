"""LATENT values and the operations on them.

A LATENT is a dict (ComfyUI's convention, so workflows and intuitions carry over):
``{"samples": [B, 4, h, w] float32 CPU, "noise_mask": optional MASK, "batch_index": optional
list of ints, "downscale": optional int, "empty_size": optional (width, height)}``. Samples are
the VAE's scaled latents. ``downscale`` is how many pixels one latent cell stands for along each
axis: 8 for Stable Diffusion's VAE (the default when absent), 4 for the shipped demo model; sizes
given in pixels (empty latents, upscales, conditioning areas) go through it. ``empty_size`` is
the picture size an Empty Latent Image was asked for, so a sampler whose model has another
factor can remake it at the right size (``fit_empty``). Functions return new dicts and never
modify their inputs, so cached values stay valid.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F

from core.diffusion.sampling import LATENT_FACTOR as DEFAULT_DOWNSCALE
from core.diffusion.sampling import seeded_noise

Latent = dict[str, Any]
UPSCALE_METHODS: tuple[str, ...] = ("nearest-exact", "bilinear", "area", "bicubic", "bislerp")
CROP_MODES: tuple[str, ...] = ("disabled", "center")
INTERPOLATIONS: tuple[str, ...] = ("normalized", "linear", "spherical")
LATENT_CHANNELS = 4
#: Latent channels of the 16-channel autoencoders of SD3 and the flow-matching families after
#: it (FLUX, Lumina 2, Z-Image); ComfyUI's EmptySD3LatentImage makes latents of this depth.
FLOW_LATENT_CHANNELS = 16


def downscale_of(latent: Mapping[str, Any]) -> int:
    """Pixels per latent cell along each axis (8 unless the latent says otherwise)."""
    return int(latent.get("downscale", DEFAULT_DOWNSCALE))


def _shape(
    width: int, height: int, batch_size: int, downscale: int, channels: int = LATENT_CHANNELS
) -> tuple[int, ...]:
    return (batch_size, channels, max(1, height // downscale), max(1, width // downscale))


def empty(
    width: int,
    height: int,
    batch_size: int = 1,
    downscale: int = DEFAULT_DOWNSCALE,
    channels: int = LATENT_CHANNELS,
) -> Latent:
    """Empty Latent Image: zeros for a ``width``×``height`` picture (the size is kept), with
    ``channels`` latent channels (4 for Stable Diffusion's autoencoders)."""
    shape = _shape(width, height, batch_size, downscale, channels)
    return {"samples": torch.zeros(shape), "downscale": downscale, "empty_size": (width, height)}


def fit_empty(latent: Mapping[str, Any], downscale: int) -> Latent:
    """``latent`` for a model with ``downscale`` pixels per cell: an untouched empty latent
    (zeros of the shape its recorded picture size gives) made for another factor is made
    again, so the picture has the size that was asked for; any other latent is returned as is.

    ComfyUI's Empty Latent Image assumes 8 pixels per cell; without this, a 64×64 latent for
    an f = 4 model would come out as a 32×32 picture.
    """
    size = latent.get("empty_size")
    samples = latent["samples"]
    if size is None or downscale_of(latent) == downscale:
        return dict(latent)
    width, height = size
    made = _shape(width, height, samples.shape[0], downscale_of(latent))
    if tuple(samples.shape) != made or bool(samples.any()):
        return dict(latent)  # cropped, resized or filled since: no longer the asked-for blank
    if width % downscale or height % downscale:
        raise ValueError(
            f"the empty latent is {width}×{height} pixels, but this model's latent cell is "
            f"{downscale} pixels: use a size that is a multiple of {downscale}"
        )
    out = dict(latent)
    out.update(empty(width, height, samples.shape[0], downscale))
    return out


def noise(
    seed: int, width: int, height: int, batch_size: int = 1, downscale: int = DEFAULT_DOWNSCALE
) -> Latent:
    """Latent Noise: standard Gaussian latents drawn on the CPU from ``seed`` (the sampler's
    own noise for the same seed and shape)."""
    shape = _shape(width, height, batch_size, downscale)
    return {"samples": seeded_noise(seed, shape), "downscale": downscale}


def with_samples(latent: Mapping[str, Any], samples: torch.Tensor) -> Latent:
    """A copy of ``latent`` with new samples (noise mask and batch indices kept; no longer
    an empty latent)."""
    out = dict(latent)
    out.pop("empty_size", None)
    out["samples"] = samples
    return out


def set_noise_mask(latent: Mapping[str, Any], mask: torch.Tensor) -> Latent:
    """Set Latent Noise Mask: only where ``mask`` is 1 will the sampler change the latent."""
    out = dict(latent)
    out["noise_mask"] = mask.float().reshape(-1, mask.shape[-2], mask.shape[-1])
    return out


def center_crop(samples: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """``[B, C, h, w]`` cut to the aspect ratio of ``width``×``height``, keeping the centre."""
    old_w, old_h = samples.shape[3], samples.shape[2]
    old_aspect, new_aspect = old_w / old_h, width / height
    if old_aspect > new_aspect:
        keep = round(old_w * new_aspect / old_aspect)
        x = (old_w - keep) // 2
        return samples[:, :, :, x : x + keep]
    if old_aspect < new_aspect:
        keep = round(old_h * old_aspect / new_aspect)
        y = (old_h - keep) // 2
        return samples[:, :, y : y + keep]
    return samples


def _slerp_cells(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Per cell, the channel vectors' directions slerped by ``t`` and their lengths lerped."""
    norm_a = torch.linalg.vector_norm(a, dim=1, keepdim=True)
    norm_b = torch.linalg.vector_norm(b, dim=1, keepdim=True)
    unit_a, unit_b = torch.nan_to_num(a / norm_a), torch.nan_to_num(b / norm_b)
    cosine = (unit_a * unit_b).sum(dim=1, keepdim=True).clamp(-1.0, 1.0)
    theta = torch.acos(cosine)
    sin_theta = torch.sin(theta)
    straight = sin_theta.abs() < 1e-6
    safe = torch.where(straight, torch.ones_like(sin_theta), sin_theta)
    wa = torch.where(straight, 1.0 - t, torch.sin((1.0 - t) * theta) / safe)
    wb = torch.where(straight, t, torch.sin(t * theta) / safe)
    return (wa * unit_a + wb * unit_b) * torch.lerp(norm_a, norm_b, t)


def _bislerp_axis(samples: torch.Tensor, size: int, axis: int) -> torch.Tensor:
    """``samples`` resampled to ``size`` along ``axis`` (2 or 3), slerping between the two
    nearest cells at pixel-centre positions (as bilinear does with straight lines)."""
    old = samples.shape[axis]
    position = ((torch.arange(size, dtype=torch.float32) + 0.5) * old / size - 0.5).clamp(
        0, old - 1
    )
    low = position.floor().long()
    high = (low + 1).clamp(max=old - 1)
    shape = [1, 1, 1, 1]
    shape[axis] = size
    t = (position - low).view(shape)
    a, b = samples.index_select(axis, low), samples.index_select(axis, high)
    return _slerp_cells(a, b, t.expand_as(a[:, :1]))


def bislerp(samples: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Bilinear resizing with spherical steps: each cell's channel vector turns from one
    neighbour's to the other's and its length is interpolated, so the mixed latents keep
    the magnitude the UNet expects (ComfyUI's "bislerp")."""
    return _bislerp_axis(_bislerp_axis(samples.float(), width, 3), height, 2)


def resize(samples: torch.Tensor, width: int, height: int, method: str, crop: str = "disabled"):
    """``[B, C, h, w]`` resized to ``height``×``width`` cells by ``method`` (torch's modes).

    ``crop="center"`` first crops to the target aspect ratio so nothing is stretched.
    """
    if method not in UPSCALE_METHODS:
        raise ValueError(f"unknown upscale method {method!r}: use {', '.join(UPSCALE_METHODS)}")
    if crop == "center":
        samples = center_crop(samples, width, height)
    if method == "bislerp":
        return bislerp(samples, width, height)
    kwargs = {"align_corners": False} if method in ("bilinear", "bicubic") else {}
    return F.interpolate(samples.float(), size=(height, width), mode=method, **kwargs)


def upscale(
    latent: Mapping[str, Any], width: int, height: int, method: str, crop: str = "disabled"
) -> Latent:
    """Latent Upscale to ``width``×``height`` pixels (0 keeps that side's aspect ratio)."""
    samples = latent["samples"]
    if width == 0 and height == 0:
        return dict(latent)
    factor = downscale_of(latent)
    cells_w, cells_h = width // factor, height // factor
    if cells_w == 0:
        cells_w = max(1, round(samples.shape[3] * cells_h / samples.shape[2]))
    if cells_h == 0:
        cells_h = max(1, round(samples.shape[2] * cells_w / samples.shape[3]))
    return with_samples(latent, resize(samples, cells_w, cells_h, method, crop))


def upscale_by(latent: Mapping[str, Any], scale: float, method: str) -> Latent:
    """Latent Upscale By: both sides × ``scale`` (rounded to whole cells)."""
    samples = latent["samples"]
    width = max(1, round(samples.shape[3] * scale))
    height = max(1, round(samples.shape[2] * scale))
    return with_samples(latent, resize(samples, width, height, method))


def slerp(a: torch.Tensor, b: torch.Tensor, ratio: float) -> torch.Tensor:
    """Spherical interpolation per batch item (Shoemake 1985), linear where a ∥ b.

    sin((1−t)θ)/sin θ · a + sin(tθ)/sin θ · b, with θ the angle between the flattened latents.
    Gaussian latents have nearly constant norm, so this keeps the result on the shell where
    the sampler expects noise to be (unlike linear interpolation, which shrinks it).
    """
    flat_a, flat_b = a.flatten(1), b.flatten(1)
    cosine = F.cosine_similarity(flat_a, flat_b, dim=1).clamp(-1.0, 1.0)
    theta = torch.acos(cosine)
    sin_theta = torch.sin(theta)
    parallel = sin_theta.abs() < 1e-6
    wa = torch.where(parallel, 1.0 - ratio, torch.sin((1.0 - ratio) * theta) / sin_theta)
    wb = torch.where(parallel, torch.full_like(theta, ratio), torch.sin(ratio * theta) / sin_theta)
    shape = (-1,) + (1,) * (a.ndim - 1)
    return wa.view(shape) * a + wb.view(shape) * b


def normalized_lerp(a: torch.Tensor, b: torch.Tensor, ratio: float) -> torch.Tensor:
    """Per latent cell, the directions of the channel vectors mixed and renormalised, scaled
    by the mixed lengths (ComfyUI's Latent Interpolate): colours blend without the dimming of
    a straight average where the two disagree."""
    norm_a = torch.linalg.vector_norm(a, dim=1, keepdim=True)
    norm_b = torch.linalg.vector_norm(b, dim=1, keepdim=True)
    mixed = torch.nan_to_num(a / norm_a) * (1.0 - ratio) + torch.nan_to_num(b / norm_b) * ratio
    direction = torch.nan_to_num(mixed / torch.linalg.vector_norm(mixed, dim=1, keepdim=True))
    return direction * (norm_a * (1.0 - ratio) + norm_b * ratio)


def interpolate(
    a: Mapping[str, Any], b: Mapping[str, Any], ratio: float, method: str = "linear"
) -> Latent:
    """Latent Interpolate: ``ratio`` = 0 gives ``a``, 1 gives ``b``, by one of
    ``INTERPOLATIONS``."""
    sa, sb = a["samples"].float(), b["samples"].float()
    if sa.shape[1:] != sb.shape[1:]:
        sb = resize(sb, sa.shape[3], sa.shape[2], "bilinear")
    if sb.shape[0] != sa.shape[0]:
        if sb.shape[0] != 1 and sa.shape[0] != 1:
            raise ValueError(f"cannot interpolate batches of {sa.shape[0]} and {sb.shape[0]}")
        size = max(sa.shape[0], sb.shape[0])
        sa, sb = sa.expand(size, -1, -1, -1), sb.expand(size, -1, -1, -1)
    if method == "normalized":
        mixed = normalized_lerp(sa, sb, ratio)
    elif method == "linear":
        mixed = torch.lerp(sa, sb, ratio)
    elif method == "spherical":
        mixed = slerp(sa, sb, ratio)
    else:
        raise ValueError(f"unknown interpolation {method!r}: use {', '.join(INTERPOLATIONS)}")
    return with_samples(a, mixed.contiguous())


def _indices(latent: Mapping[str, Any]) -> list[int]:
    count = latent["samples"].shape[0]
    return list(latent.get("batch_index", range(count)))


def _batched_mask(latent: Mapping[str, Any]) -> torch.Tensor | None:
    mask = latent.get("noise_mask")
    if mask is None:
        return None
    mask = mask.float().reshape(-1, mask.shape[-2], mask.shape[-1])
    count = latent["samples"].shape[0]
    if mask.shape[0] < count:
        mask = mask.repeat(math.ceil(count / mask.shape[0]), 1, 1)
    return mask[:count]


def batch(a: Mapping[str, Any], b: Mapping[str, Any]) -> Latent:
    """Latent Batch: ``a``'s items then ``b``'s (``b`` resized to ``a``'s size if needed)."""
    sa, sb = a["samples"], b["samples"]
    if sb.shape[2:] != sa.shape[2:]:
        sb = resize(sb, sa.shape[3], sa.shape[2], "bilinear", "center")
    out: Latent = {"samples": torch.cat([sa, sb])}
    if "downscale" in a:
        out["downscale"] = a["downscale"]
    first = _indices(a)
    out["batch_index"] = first + [max(first) + 1 + i for i in _indices(b)]
    ma, mb = _batched_mask(a), _batched_mask(b)
    if ma is not None or mb is not None:
        height, width = sa.shape[2] * downscale_of(a), sa.shape[3] * downscale_of(a)
        parts = []
        for mask, count in ((ma, sa.shape[0]), (mb, sb.shape[0])):
            if mask is None:
                parts.append(torch.ones(count, height, width))
            else:
                parts.append(
                    F.interpolate(mask[:, None], size=(height, width), mode="bilinear")[:, 0]
                )
        out["noise_mask"] = torch.cat(parts)
    return out


def from_batch(latent: Mapping[str, Any], index: int, length: int = 1) -> Latent:
    """Latent From Batch: items ``index`` … ``index + length − 1`` (clipped to the batch)."""
    samples = latent["samples"]
    index = min(max(index, 0), samples.shape[0] - 1)
    length = max(1, min(length, samples.shape[0] - index))
    out: Latent = {"samples": samples[index : index + length].clone()}
    if "downscale" in latent:
        out["downscale"] = latent["downscale"]
    out["batch_index"] = _indices(latent)[index : index + length]
    mask = _batched_mask(latent)
    if mask is not None:
        out["noise_mask"] = mask[index : index + length].clone()
    return out


def batch_seed_behavior(latent: Mapping[str, Any], behavior: str) -> Latent:
    """Latent Batch Seed Behavior: "random" forgets the batch indices, so each item gets its
    own noise from the sampler's seed; "fixed" gives every item the first item's index, so
    they all get the same noise (ComfyUI's rule)."""
    out = dict(latent)
    if behavior == "random":
        out.pop("batch_index", None)
    elif behavior == "fixed":
        out["batch_index"] = [_indices(latent)[0]] * latent["samples"].shape[0]
    else:
        raise ValueError(f"seed_behavior {behavior!r} is not 'random' or 'fixed'")
    return out


def repeat(latent: Mapping[str, Any], amount: int) -> Latent:
    """Repeat Latent Batch: the whole batch ``amount`` times."""
    samples = latent["samples"]
    out: Latent = {"samples": samples.repeat(amount, 1, 1, 1)}
    if "downscale" in latent:
        out["downscale"] = latent["downscale"]
    indices = _indices(latent)
    offset = max(indices) + 1
    out["batch_index"] = [i + k * offset for k in range(amount) for i in indices]
    mask = _batched_mask(latent)
    if mask is not None:
        out["noise_mask"] = mask.repeat(amount, 1, 1)
    return out


def repeat_to_batch(samples: torch.Tensor, size: int) -> torch.Tensor:
    """``samples`` with exactly ``size`` items: repeated in order, then cut."""
    if samples.shape[0] == size:
        return samples
    if samples.shape[0] < size:
        samples = samples.repeat(math.ceil(size / samples.shape[0]), *([1] * (samples.ndim - 1)))
    return samples[:size]


def match_shape(
    samples: torch.Tensor, like: torch.Tensor, method: str = "bilinear", batch: bool = True
) -> torch.Tensor:
    """``samples`` resized (centre-cropped to the aspect ratio) to ``like``'s size and, with
    ``batch``, repeated to its batch: how two latents of different shapes are made to combine."""
    if samples.shape[2:] != like.shape[2:]:
        samples = resize(samples, like.shape[3], like.shape[2], method, "center")
    return repeat_to_batch(samples, like.shape[0]) if batch else samples


def edge_ramp(
    height: int, width: int, feather: int, top: bool, bottom: bool, left: bool, right: bool
) -> torch.Tensor:
    """A ``[height, width]`` weight that rises linearly from 1/feather at each chosen edge to 1
    at ``feather`` cells in (the pasted part's blend in Latent Composite)."""
    weight = torch.ones(height, width)
    for t in range(feather):
        rate = (t + 1) / feather
        if top and t < height:
            weight[t] *= rate
        if bottom and t < height:
            weight[height - 1 - t] *= rate
        if left and t < width:
            weight[:, t] *= rate
        if right and t < width:
            weight[:, width - 1 - t] *= rate
    return weight


def composite(
    destination: Mapping[str, Any], source: Mapping[str, Any], x: int, y: int, feather: int = 0
) -> Latent:
    """Latent Composite: ``source`` pasted into ``destination`` with its corner at pixel (x, y).

    Positions and ``feather`` are in pixels and become whole latent cells (x // f, y // f). A
    feather blends each pasted edge that lies inside the destination over ``feather // f``
    cells; the destination's noise mask and batch indices are kept.
    """
    factor = downscale_of(destination)
    left, top, cells = x // factor, y // factor, feather // factor
    out = destination["samples"].clone()
    height, width = out.shape[2:]
    part = repeat_to_batch(source["samples"], out.shape[0])[:, :, : height - top, : width - left]
    if part.numel() == 0:
        return with_samples(destination, out)
    ph, pw = part.shape[2:]
    region = out[:, :, top : top + ph, left : left + pw]
    if cells > 0:
        weight = edge_ramp(ph, pw, cells, top > 0, top + ph < height, left > 0, left + pw < width)
        part = part * weight + region * (1.0 - weight)
    out[:, :, top : top + ph, left : left + pw] = part
    return with_samples(destination, out)


def paste(
    destination: torch.Tensor,
    source: torch.Tensor,
    x: int,
    y: int,
    mask: torch.Tensor | None = None,
    factor: int = 1,
    resize_source: bool = False,
) -> torch.Tensor:
    """``source`` ``[B, C, h, w]`` pasted into a copy of ``destination`` ``[B, C, H, W]`` with its
    corner at (x // factor, y // factor), blended through ``mask`` (1 = source) when given.

    The mask is resized to the source; the source (with ``resize_source``, first resized to the
    destination) is repeated to the destination's batch. Parts outside the destination drop.
    """
    out = destination.clone()
    if resize_source:
        source = resize(source, out.shape[3], out.shape[2], "bilinear")
    source = repeat_to_batch(source.to(out.dtype), out.shape[0])
    height, width = out.shape[2:]
    left, top = x // factor, y // factor
    x0, y0 = max(left, 0), max(top, 0)
    x1, y1 = min(left + source.shape[3], width), min(top + source.shape[2], height)
    if x1 <= x0 or y1 <= y0:
        return out
    part = source[:, :, y0 - top : y1 - top, x0 - left : x1 - left]
    if mask is not None:
        weight = mask.float().reshape(-1, 1, mask.shape[-2], mask.shape[-1])
        weight = F.interpolate(weight, size=source.shape[2:], mode="bilinear")
        weight = repeat_to_batch(weight, out.shape[0])[
            :, :, y0 - top : y1 - top, x0 - left : x1 - left
        ]
        part = part * weight + out[:, :, y0:y1, x0:x1] * (1.0 - weight)
    out[:, :, y0:y1, x0:x1] = part
    return out


def composite_masked(
    destination: Mapping[str, Any],
    source: Mapping[str, Any],
    x: int,
    y: int,
    resize_source: bool = False,
    mask: torch.Tensor | None = None,
) -> Latent:
    """Latent Composite Masked: ``source`` pasted at pixel (x, y) of ``destination`` where
    ``mask`` is 1 (everywhere without a mask); the destination's noise mask is kept."""
    samples = paste(
        destination["samples"],
        source["samples"],
        x,
        y,
        mask,
        downscale_of(destination),
        resize_source,
    )
    return with_samples(destination, samples)


def blend(a: Mapping[str, Any], b: Mapping[str, Any], blend_factor: float) -> Latent:
    """Latent Blend: ``a`` · factor + ``b`` · (1 − factor), ``b`` resized to ``a`` if needed."""
    sa = a["samples"].float()
    sb = match_shape(b["samples"].float(), sa, "bicubic")
    return with_samples(a, sa * blend_factor + sb * (1.0 - blend_factor))


def add(a: Mapping[str, Any], b: Mapping[str, Any]) -> Latent:
    """Latent Add: ``a`` + ``b`` (``b`` resized and repeated to ``a``'s shape if needed)."""
    sa = a["samples"].float()
    return with_samples(a, sa + match_shape(b["samples"].float(), sa))


def subtract(a: Mapping[str, Any], b: Mapping[str, Any]) -> Latent:
    """Latent Subtract: ``a`` − ``b`` (``b`` resized and repeated to ``a``'s shape if needed)."""
    sa = a["samples"].float()
    return with_samples(a, sa - match_shape(b["samples"].float(), sa))


def multiply(latent: Mapping[str, Any], multiplier: float) -> Latent:
    """Latent Multiply: every value × ``multiplier``."""
    return with_samples(latent, latent["samples"].float() * multiplier)


ROTATIONS: tuple[str, ...] = ("none", "90 degrees", "180 degrees", "270 degrees")
FLIPS: tuple[str, ...] = ("x-axis: vertically", "y-axis: horizontally")


def _transform_mask(latent: Mapping[str, Any], out: Latent, change: Any) -> Latent:
    mask = latent.get("noise_mask")
    if mask is not None:
        out["noise_mask"] = change(mask).contiguous()
    return out


def rotate(latent: Mapping[str, Any], rotation: str) -> Latent:
    """Rotate Latent clockwise by a quarter turn per 90 degrees (its noise mask too)."""
    if rotation not in ROTATIONS:
        raise ValueError(f"unknown rotation {rotation!r}: use {', '.join(ROTATIONS)}")
    turns = ROTATIONS.index(rotation)

    def turn(values: torch.Tensor) -> torch.Tensor:
        return torch.rot90(values, k=turns, dims=[values.ndim - 1, values.ndim - 2])

    return _transform_mask(latent, with_samples(latent, turn(latent["samples"])), turn)


def flip(latent: Mapping[str, Any], flip_method: str) -> Latent:
    """Flip Latent upside down ("x-axis") or left to right ("y-axis"), its noise mask too."""
    if flip_method not in FLIPS:
        raise ValueError(f"unknown flip {flip_method!r}: use {', '.join(FLIPS)}")
    axis = -2 if flip_method == FLIPS[0] else -1

    def mirror(values: torch.Tensor) -> torch.Tensor:
        return torch.flip(values, dims=[values.ndim + axis])

    return _transform_mask(latent, with_samples(latent, mirror(latent["samples"])), mirror)


#: Latent Crop keeps at least this many pixels of the source on each axis.
MIN_CROP_PIXELS = 64


def crop(latent: Mapping[str, Any], width: int, height: int, x: int, y: int) -> Latent:
    """Crop Latent: the ``width``×``height`` pixel rectangle at (x, y), in whole cells.

    The corner moves in so that at least 64 pixels of the latent remain on each axis (as
    ComfyUI does); a noise mask is cropped to the same part of the picture.
    """
    factor = downscale_of(latent)
    samples = latent["samples"]
    cells_h, cells_w = samples.shape[2:]
    keep = max(1, MIN_CROP_PIXELS // factor)
    left = max(0, min(x // factor, cells_w - keep))
    top = max(0, min(y // factor, cells_h - keep))
    right, bottom = left + width // factor, top + height // factor
    out = with_samples(latent, samples[:, :, top:bottom, left:right].clone())

    def cut(mask: torch.Tensor) -> torch.Tensor:
        sy, sx = mask.shape[-2] / cells_h, mask.shape[-1] / cells_w
        rows = slice(round(top * sy), round(bottom * sy))
        return mask[..., rows, round(left * sx) : round(right * sx)].clone()

    return _transform_mask(latent, out, cut)
