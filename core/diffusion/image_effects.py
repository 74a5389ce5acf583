"""IMAGE operations that ComfyUI users know from widely used node packs: resizing to fit a box
(ComfyUI_essentials' Image Resize), a bloom glow (the WAS node suite's Image Bloom Filter), and
scaling a picture to a preprocessor's working resolution (comfyui_controlnet_aux). IMAGEs are
``[batch, height, width, channels]`` in 0..1."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

#: Resampling filters, as the resize node names them: torch's modes, and Lanczos via Pillow.
INTERPOLATIONS: tuple[str, ...] = (
    "nearest",
    "bilinear",
    "bicubic",
    "area",
    "nearest-exact",
    "lanczos",
)
#: How the picture meets the width × height box.
FIT_METHODS: tuple[str, ...] = ("stretch", "keep proportion", "fill / crop", "pad")
#: When to resize at all, comparing the picture with the size it would be resized to.
FIT_CONDITIONS: tuple[str, ...] = (
    "always",
    "downscale if bigger",
    "upscale if smaller",
    "if bigger area",
    "if smaller area",
)


def _resized(image: torch.Tensor, width: int, height: int, interpolation: str) -> torch.Tensor:
    from core.diffusion.images import resize_channels_first

    planes = image.float().permute(0, 3, 1, 2)
    if interpolation == "nearest":
        out = F.interpolate(planes, size=(height, width), mode="nearest")
    else:
        out = resize_channels_first(planes, width, height, interpolation)
    return out.clamp(0.0, 1.0).permute(0, 2, 3, 1).contiguous()


def _wanted(condition: str, old: tuple[int, int], new: tuple[int, int]) -> bool:
    (old_w, old_h), (new_w, new_h) = old, new
    if condition == "always":
        return True
    if condition == "downscale if bigger":
        return old_w > new_w or old_h > new_h
    if condition == "upscale if smaller":
        return old_w < new_w or old_h < new_h
    if condition == "if bigger area":
        return old_w * old_h > new_w * new_h
    return old_w * old_h < new_w * new_h


def fit(
    image: torch.Tensor,
    width: int,
    height: int,
    interpolation: str = "nearest",
    method: str = "stretch",
    condition: str = "always",
    multiple_of: int = 0,
) -> torch.Tensor:
    """``image`` resized to meet a ``width`` × ``height`` box (0 leaves that side free).

    ``stretch`` resizes to the box exactly; ``keep proportion`` scales by the one factor that
    fits the whole picture inside the box; ``fill / crop`` scales by the factor that covers the
    box and cuts the overflow off both sides equally; ``pad`` fits like keep proportion and adds
    black borders, split evenly, up to the box. ``condition`` compares the picture with the
    scaled size and leaves it untouched when it says no. Last, ``multiple_of`` (above 1) trims
    each side down to a multiple of it, taking the surplus evenly from both edges.
    """
    for name, value, allowed in (
        ("interpolation", interpolation, INTERPOLATIONS),
        ("method", method, FIT_METHODS),
        ("condition", condition, FIT_CONDITIONS),
    ):
        if value not in allowed:
            raise ValueError(f"unknown {name} {value!r}: use one of {', '.join(allowed)}")
    if width < 0 or height < 0 or multiple_of < 0:
        raise ValueError("width, height and multiple_of must not be negative")
    old_h, old_w = image.shape[1], image.shape[2]
    box_w, box_h = width, height
    if method in ("keep proportion", "pad"):
        factors = [side / old for side, old in ((width, old_w), (height, old_h)) if side > 0]
        factor = min(factors) if factors else 1.0
        new_w, new_h = max(1, round(old_w * factor)), max(1, round(old_h * factor))
    elif method == "fill / crop":
        box_w, box_h = width or old_w, height or old_h
        factor = max(box_w / old_w, box_h / old_h)
        new_w, new_h = max(1, round(old_w * factor)), max(1, round(old_h * factor))
    else:
        new_w, new_h = width or old_w, height or old_h
    out = image
    if _wanted(condition, (old_w, old_h), (new_w, new_h)):
        out = _resized(image, new_w, new_h, interpolation)
        if method == "pad":
            pad_w, pad_h = max(0, box_w - new_w), max(0, box_h - new_h)
            left, top = pad_w // 2, pad_h // 2
            padded = F.pad(out.permute(0, 3, 1, 2), (left, pad_w - left, top, pad_h - top))
            out = padded.permute(0, 2, 3, 1).contiguous()
        elif method == "fill / crop":
            x, y = max(0, (new_w - box_w) // 2), max(0, (new_h - box_h) // 2)
            out = out[:, y : y + box_h, x : x + box_w, :]
    if multiple_of > 1:
        h, w = out.shape[1], out.shape[2]
        x, y = (w % multiple_of) // 2, (h % multiple_of) // 2
        out = out[:, y : y + h - h % multiple_of, x : x + w - w % multiple_of, :]
    return out.contiguous()


def gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """IMAGE blurred by a Gaussian of standard deviation ``sigma`` pixels (cut at 3σ), the
    edge pixels repeated outwards; ``sigma`` 0 returns a copy."""
    if sigma <= 0:
        return image.clone()
    reach = max(1, math.ceil(3 * sigma))
    x = torch.arange(-reach, reach + 1, dtype=torch.float32)
    kernel = torch.exp(-(x**2) / (2 * sigma * sigma))
    kernel = kernel / kernel.sum()
    channels = image.shape[-1]
    planes = image.float().permute(0, 3, 1, 2)
    planes = F.pad(planes, (reach, reach, reach, reach), mode="replicate")
    across = kernel.view(1, 1, 1, -1).repeat(channels, 1, 1, 1)
    down = kernel.view(1, 1, -1, 1).repeat(channels, 1, 1, 1)
    planes = F.conv2d(F.conv2d(planes, across, groups=channels), down, groups=channels)
    return planes.permute(0, 2, 3, 1).contiguous()


def screen(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The screen blend, 1 − (1 − a)(1 − b): brightens, never darkens, black leaves it as is."""
    return 1.0 - (1.0 - a) * (1.0 - b)


def bloom(image: torch.Tensor, radius: float, intensity: float) -> torch.Tensor:
    """A glow around what is brighter than its surroundings, as the WAS suite's bloom does.

    The parts brighter than a blur of ``radius`` pixels (the positive high-pass, image − blur)
    are blurred twice as wide, doubled, weighted by ``intensity`` and screened over the
    picture. A flat picture, radius 0 or intensity 0 leave it unchanged.
    """
    if radius < 0 or intensity < 0:
        raise ValueError("radius and intensity must not be negative")
    rgb = image.float()
    bright = (rgb - gaussian_blur(rgb, radius)).clamp(min=0.0)
    glow = (gaussian_blur(bright, 2 * radius) * 2.0).clamp(0.0, 1.0) * intensity
    return screen(rgb, glow.clamp(0.0, 1.0)).clamp(0.0, 1.0)


def to_working_resolution(image: torch.Tensor, resolution: int) -> torch.Tensor:
    """IMAGE scaled so that its shorter side is ``resolution`` pixels (aspect ratio kept;
    bicubic when enlarging, area averaging when shrinking), the size comfyui_controlnet_aux's
    preprocessors work and answer at; 0 returns it as it is."""
    if resolution <= 0:
        return image
    old_h, old_w = image.shape[1], image.shape[2]
    factor = resolution / min(old_h, old_w)
    if factor == 1.0:
        return image
    new_w, new_h = max(1, round(old_w * factor)), max(1, round(old_h * factor))
    return _resized(image, new_w, new_h, "bicubic" if factor > 1 else "area")
