"""Image and mask tensors to and from files, in the field's conventions.

IMAGE is float32 ``[batch, height, width, 3]`` in 0..1; MASK is ``[batch, height, width]`` in
0..1 where 1 means "repaint". A loaded image's mask is 1 − alpha, so transparent pixels are the
ones to repaint, as in the editors users know.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")


class ImageFileError(ValueError):
    """An image file that cannot be read, with the file named in the message."""


def load_image(path: str | os.PathLike[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Reads an image file as (IMAGE [1, H, W, 3], MASK [1, H, W]); EXIF rotation applied."""
    path = Path(path)
    try:
        with Image.open(path) as opened:
            picture = ImageOps.exif_transpose(opened)
            picture.load()
    except FileNotFoundError:
        raise ImageFileError(f"{path}: no such image file") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise ImageFileError(f"{path}: not a readable image ({exc})") from None
    has_alpha = "A" in picture.getbands() or "transparency" in picture.info
    rgba = np.asarray(picture.convert("RGBA"), dtype=np.float32) / 255.0
    image = torch.from_numpy(np.ascontiguousarray(rgba[..., :3]))[None]
    if has_alpha:
        mask = 1.0 - torch.from_numpy(np.ascontiguousarray(rgba[..., 3]))[None]
    else:
        mask = torch.zeros(image.shape[:3])
    return image, mask


def to_pil(image: torch.Tensor) -> Image.Image:
    """One ``[H, W, 3]`` (or ``[H, W]`` mask) tensor in 0..1 as an 8-bit PIL image."""
    array = image.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8).cpu().numpy()
    return Image.fromarray(array)


def from_pil(picture: Image.Image) -> torch.Tensor:
    """A PIL image as IMAGE ``[1, H, W, 3]``."""
    array = np.asarray(picture.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(np.ascontiguousarray(array))[None]


def png_bytes(image: torch.Tensor, text: Mapping[str, str] | None = None) -> bytes:
    """One ``[H, W, 3]`` image encoded as PNG with UTF-8 text chunks (iTXt)."""
    info = PngImagePlugin.PngInfo()
    for key, value in (text or {}).items():
        info.add_itxt(key, value, zip=True)
    buffer = io.BytesIO()
    to_pil(image).save(buffer, format="PNG", pnginfo=info, compress_level=4)
    return buffer.getvalue()


def gradient(
    width: int,
    height: int,
    start: tuple[float, float, float],
    end: tuple[float, float, float],
    direction: str,
) -> torch.Tensor:
    """A linear gradient IMAGE ``[1, H, W, 3]`` from ``start`` to ``end`` colours (0..1)."""
    ys = torch.linspace(0, 1, height)[:, None].expand(height, width)
    xs = torch.linspace(0, 1, width)[None, :].expand(height, width)
    ramp = {"horizontal": xs, "vertical": ys, "diagonal": (xs + ys) / 2}[direction]
    a, b = torch.tensor(start), torch.tensor(end)
    return (a + (b - a) * ramp[..., None])[None].contiguous()


def parse_color(text: str) -> tuple[float, float, float]:
    """``#rrggbb`` or ``#rgb`` as an RGB triple in 0..1."""
    value = text.strip().lstrip("#")
    if len(value) == 3:
        value = "".join(ch * 2 for ch in value)
    if len(value) != 6 or any(ch not in "0123456789abcdefABCDEF" for ch in value):
        raise ValueError(f"{text!r} is not a colour like #ff8800")
    return tuple(int(value[i : i + 2], 16) / 255.0 for i in (0, 2, 4))  # type: ignore[return-value]


def scale(image: torch.Tensor, width: int, height: int, method: str, crop: str) -> torch.Tensor:
    """IMAGE resized to ``width``×``height`` (0 keeps that side's aspect ratio).

    ``method`` is a torch interpolation mode (nearest-exact, bilinear, bicubic, area);
    ``crop="center"`` first crops to the target aspect ratio. Values stay in 0..1.
    """
    from core.diffusion.latents import resize

    if width == 0 and height == 0:
        return image.clone()
    old_h, old_w = image.shape[1], image.shape[2]
    if width == 0:
        width = max(1, round(old_w * height / old_h))
    if height == 0:
        height = max(1, round(old_h * width / old_w))
    channels_first = image.permute(0, 3, 1, 2)
    resized = resize(channels_first, width, height, method, crop)
    return resized.clamp(0.0, 1.0).permute(0, 2, 3, 1).contiguous()
