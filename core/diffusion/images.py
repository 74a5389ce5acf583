"""Image and mask tensors to and from files, in the field's conventions.

IMAGE is float32 ``[batch, height, width, 3]`` in 0..1; MASK is ``[batch, height, width]`` in
0..1 where 1 means "repaint". A loaded image's mask is 1 − alpha, so transparent pixels are the
ones to repaint, as in the editors users know.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
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


#: ComfyUI's image resize methods: torch's modes, and Lanczos through Pillow.
SCALE_METHODS: tuple[str, ...] = ("nearest-exact", "bilinear", "area", "bicubic", "lanczos")


def _lanczos(channels_first: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """``[B, C, H, W]`` resized with Pillow's Lanczos filter, channel by channel in float."""
    out = torch.empty(channels_first.shape[0], channels_first.shape[1], height, width)
    for b, picture in enumerate(channels_first.float().cpu()):
        for c, plane in enumerate(picture):
            resized = Image.fromarray(plane.numpy()).resize(
                (width, height), Image.Resampling.LANCZOS
            )
            out[b, c] = torch.from_numpy(np.asarray(resized, dtype=np.float32).copy())
    return out


def resize_channels_first(
    samples: torch.Tensor, width: int, height: int, method: str, crop: str = "disabled"
) -> torch.Tensor:
    """``[B, C, H, W]`` resized by one of ``SCALE_METHODS`` (``crop="center"`` keeps the centre
    at the target aspect ratio instead of stretching)."""
    from core.diffusion.latents import center_crop, resize

    if method != "lanczos":
        return resize(samples, width, height, method, crop)
    if crop == "center":
        samples = center_crop(samples, width, height)
    return _lanczos(samples, width, height)


def scale(image: torch.Tensor, width: int, height: int, method: str, crop: str) -> torch.Tensor:
    """IMAGE resized to ``width``×``height`` (0 keeps that side's aspect ratio).

    ``method`` is one of ``SCALE_METHODS``; ``crop="center"`` first crops to the target aspect
    ratio. Values stay in 0..1.
    """
    if width == 0 and height == 0:
        return image.clone()
    old_h, old_w = image.shape[1], image.shape[2]
    if width == 0:
        width = max(1, round(old_w * height / old_h))
    if height == 0:
        height = max(1, round(old_h * width / old_w))
    channels_first = image.permute(0, 3, 1, 2)
    resized = resize_channels_first(channels_first, width, height, method, crop)
    return resized.clamp(0.0, 1.0).permute(0, 2, 3, 1).contiguous()


def total_pixels_size(
    width: int, height: int, megapixels: float, resolution_steps: int = 1
) -> tuple[int, int]:
    """The (width, height) of about ``megapixels`` × 1024² pixels at the same aspect ratio, each
    rounded to a multiple of ``resolution_steps`` (at least one step)."""
    factor = math.sqrt(megapixels * 1024 * 1024 / (width * height))
    steps = max(1, resolution_steps)
    new_width = max(steps, round(width * factor / steps) * steps)
    new_height = max(steps, round(height * factor / steps) * steps)
    return new_width, new_height


def scale_to_total_pixels(
    image: torch.Tensor, method: str, megapixels: float, resolution_steps: int = 1
) -> torch.Tensor:
    """ImageScaleToTotalPixels: resized to about ``megapixels`` million (1024²) pixels."""
    width, height = total_pixels_size(image.shape[2], image.shape[1], megapixels, resolution_steps)
    return scale(image, width, height, method, "disabled")


def hex_color(color: int) -> tuple[float, float, float]:
    """A 0xRRGGBB integer as an RGB triple in 0..1."""
    return ((color >> 16) & 0xFF) / 255.0, ((color >> 8) & 0xFF) / 255.0, (color & 0xFF) / 255.0


def empty(width: int, height: int, batch_size: int = 1, color: int = 0) -> torch.Tensor:
    """EmptyImage: ``batch_size`` pictures of one colour (0xRRGGBB)."""
    return torch.tensor(hex_color(color)).expand(batch_size, height, width, 3).contiguous()


def match_channels(image: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``image`` with ``like``'s channel count: an alpha channel dropped, or an opaque one added."""
    if image.shape[-1] > like.shape[-1]:
        return image[..., : like.shape[-1]]
    if image.shape[-1] < like.shape[-1]:
        alpha = torch.ones(*image.shape[:-1], like.shape[-1] - image.shape[-1])
        return torch.cat([image, alpha], dim=-1)
    return image


def match_size(image: torch.Tensor, like: torch.Tensor, method: str) -> torch.Tensor:
    """``image`` resized (centre-cropped to the aspect ratio) to ``like``'s height and width."""
    image = match_channels(image, like)
    if image.shape[1:3] == like.shape[1:3]:
        return image
    resized = resize_channels_first(
        image.permute(0, 3, 1, 2), like.shape[2], like.shape[1], method, "center"
    )
    return resized.clamp(0.0, 1.0).permute(0, 2, 3, 1)


def batch(image1: torch.Tensor, image2: torch.Tensor) -> torch.Tensor:
    """ImageBatch: ``image1``'s pictures then ``image2``'s, resized to ``image1``'s size."""
    return torch.cat([image1, match_size(image2, image1, "bilinear")]).contiguous()


def from_batch(image: torch.Tensor, index: int, length: int = 1) -> torch.Tensor:
    """ImageFromBatch: pictures ``index`` … ``index + length − 1``, clipped to the batch."""
    index = min(max(index, 0), image.shape[0] - 1)
    return image[index : index + max(1, length)].clone()


def add_noise(image: torch.Tensor, seed: int, strength: float) -> torch.Tensor:
    """ImageAddNoise: Gaussian noise × ``strength`` drawn on the CPU from ``seed``, clamped."""
    from core.diffusion.sampling import seeded_noise

    noise = seeded_noise(seed, image.shape).to(image.dtype)
    return (image + strength * noise).clamp(0.0, 1.0)


def crop(image: torch.Tensor, width: int, height: int, x: int, y: int) -> torch.Tensor:
    """ImageCrop: the ``width``×``height`` rectangle at (x, y); the corner stays inside."""
    x, y = min(x, image.shape[2] - 1), min(y, image.shape[1] - 1)
    return image[:, y : y + height, x : x + width].clone()


def pad_for_outpaint(
    image: torch.Tensor, left: int, top: int, right: int, bottom: int, feathering: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """ImagePadForOutpaint: the picture on a larger mid-grey canvas, and the MASK to repaint.

    The mask is 1 over the new border. With ``feathering`` (less than half the picture's
    sides) it also reaches into the picture along each padded side: a pixel d < feathering
    pixels from such a side gets ((feathering − d) / feathering)², so the repaint blends in.
    """
    batch_size, height, width, channels = image.shape
    canvas = torch.full((batch_size, height + top + bottom, width + left + right, channels), 0.5)
    canvas[:, top : top + height, left : left + width] = image
    mask = torch.ones(1, height + top + bottom, width + left + right)
    inner = torch.zeros(height, width)
    if feathering > 0 and feathering * 2 < height and feathering * 2 < width:
        rows = torch.arange(height, dtype=torch.float32)[:, None].expand(height, width)
        cols = torch.arange(width, dtype=torch.float32)[None, :].expand(height, width)
        far = torch.full((height, width), float(max(height, width)))
        distance = torch.stack(
            [
                rows if top else far,
                height - rows if bottom else far,
                cols if left else far,
                width - cols if right else far,
            ]
        ).amin(dim=0)
        ramp = ((feathering - distance) / feathering).clamp(min=0.0)
        inner = torch.where(distance < feathering, ramp * ramp, inner)
    mask[0, top : top + height, left : left + width] = inner
    return canvas, mask


BLEND_MODES: tuple[str, ...] = (
    "normal",
    "multiply",
    "screen",
    "overlay",
    "soft_light",
    "difference",
)


def _blended(a: torch.Tensor, b: torch.Tensor, mode: str) -> torch.Tensor:
    if mode == "normal":
        return b
    if mode == "multiply":
        return a * b
    if mode == "screen":
        return 1 - (1 - a) * (1 - b)
    if mode == "overlay":
        return torch.where(a <= 0.5, 2 * a * b, 1 - 2 * (1 - a) * (1 - b))
    if mode == "soft_light":  # the W3C compositing formula
        lift = torch.where(a <= 0.25, ((16 * a - 12) * a + 4) * a, torch.sqrt(a))
        return torch.where(b <= 0.5, a - (1 - 2 * b) * a * (1 - a), a + (2 * b - 1) * (lift - a))
    if mode == "difference":
        return a - b
    raise ValueError(f"unknown blend mode {mode!r}: use {', '.join(BLEND_MODES)}")


def blend(image1: torch.Tensor, image2: torch.Tensor, factor: float, mode: str) -> torch.Tensor:
    """ImageBlend: ``image1`` mixed with ``mode(image1, image2)`` by ``factor`` (0 = image1),
    ``image2`` resized to ``image1`` first; clamped to 0..1."""
    a = image1.float()
    b = match_size(image2.float(), a, "bicubic")
    return (a * (1 - factor) + _blended(a, b, mode) * factor).clamp(0.0, 1.0)


def _kernel(radius: int, sigma: float) -> torch.Tensor:
    """A normalised 2-D Gaussian over a (2·radius + 1)² window whose coordinates run from −1 to
    1, so ``sigma`` is in units of the radius (ComfyUI's convention)."""
    axis = torch.linspace(-1, 1, 2 * radius + 1)
    squared = axis[:, None] ** 2 + axis[None, :] ** 2
    weights = torch.exp(-squared / (2.0 * sigma * sigma))
    return weights / weights.sum()


def _filter(image: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """IMAGE convolved per channel with ``kernel``, edges mirrored (replicated when tiny)."""
    radius = kernel.shape[0] // 2
    channels = image.shape[-1]
    planes = image.float().permute(0, 3, 1, 2)
    mode = "reflect" if radius < min(planes.shape[2:]) else "replicate"
    padded = F.pad(planes, (radius, radius, radius, radius), mode=mode)
    weights = kernel[None, None].repeat(channels, 1, 1, 1)
    return F.conv2d(padded, weights, groups=channels).permute(0, 2, 3, 1).contiguous()


def blur(image: torch.Tensor, radius: int, sigma: float) -> torch.Tensor:
    """ImageBlur: a Gaussian blur over a (2·radius + 1)² window."""
    return image.clone() if radius <= 0 else _filter(image, _kernel(radius, sigma))


def sharpen(image: torch.Tensor, radius: int, sigma: float, alpha: float) -> torch.Tensor:
    """ImageSharpen: unsharp masking, image + 10·alpha·(image − blurred), clamped to 0..1."""
    if radius <= 0:
        return image.clone()
    kernel = _kernel(radius, sigma) * -(alpha * 10)
    kernel[radius, radius] += 1.0 - kernel.sum()
    return _filter(image, kernel).clamp(0.0, 1.0)


DITHERS: tuple[str, ...] = ("none", "floyd-steinberg", "bayer-2", "bayer-4", "bayer-8", "bayer-16")


def _bayer(order: int) -> np.ndarray:
    """The ``order``×``order`` Bayer threshold matrix, centred on 0 in units of one level."""
    matrix = np.zeros((1, 1), dtype=np.float32)
    while matrix.shape[0] < order:
        matrix = np.block([[4 * matrix, 4 * matrix + 2], [4 * matrix + 3, 4 * matrix + 1]])
    return (matrix + 0.5) / matrix.size - 0.5


def quantize(image: torch.Tensor, colors: int, dither: str = "none") -> torch.Tensor:
    """ImageQuantize: each picture reduced to a palette of ``colors`` colours (Pillow's median
    cut), with no dithering, Floyd–Steinberg, or an ordered Bayer pattern."""
    if dither not in DITHERS:
        raise ValueError(f"unknown dither {dither!r}: use {', '.join(DITHERS)}")
    out = torch.empty(*image.shape[:3], 3)
    for index, picture in enumerate(image[..., :3]):
        rgb = to_pil(picture)
        palette = rgb.quantize(colors=colors)
        if dither.startswith("bayer"):
            order = int(dither.split("-")[1])
            levels = np.asarray(rgb, dtype=np.float32)
            spread = 2 * 256 / max(1, len(palette.getpalette() or []) // 3)
            offsets = np.tile(
                _bayer(order), (levels.shape[0] // order + 1, levels.shape[1] // order + 1)
            )
            levels = levels + spread * offsets[: levels.shape[0], : levels.shape[1], None] + 0.5
            rgb = Image.fromarray(np.clip(levels, 0, 255).astype(np.uint8))
        mode = Image.Dither.FLOYDSTEINBERG if dither == "floyd-steinberg" else Image.Dither.NONE
        out[index] = from_pil(rgb.quantize(palette=palette, dither=mode))[0]
    return out


FLIP_METHODS: tuple[str, ...] = ("x-axis: vertically", "y-axis: horizontally")
ROTATIONS: tuple[str, ...] = ("none", "90 degrees", "180 degrees", "270 degrees")


def flip(image: torch.Tensor, method: str) -> torch.Tensor:
    """ImageFlip: upside down ("x-axis: vertically") or mirrored ("y-axis: horizontally")."""
    if method not in FLIP_METHODS:
        raise ValueError(f"unknown flip {method!r}: use {', '.join(FLIP_METHODS)}")
    return torch.flip(image, dims=[1 if method == FLIP_METHODS[0] else 2]).contiguous()


def rotate(image: torch.Tensor, rotation: str) -> torch.Tensor:
    """ImageRotate: clockwise by quarter turns."""
    if rotation not in ROTATIONS:
        raise ValueError(f"unknown rotation {rotation!r}: use {', '.join(ROTATIONS)}")
    return torch.rot90(image, k=ROTATIONS.index(rotation), dims=[2, 1]).contiguous()


def composite_masked(
    destination: torch.Tensor,
    source: torch.Tensor,
    x: int,
    y: int,
    resize_source: bool = False,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """ImageCompositeMasked: ``source`` pasted with its corner at pixel (x, y), through ``mask``
    (1 = source) when given; an alpha channel is added to or dropped from the source to match."""
    from core.diffusion.latents import paste

    source = match_channels(source.float(), destination)
    out = paste(
        destination.float().permute(0, 3, 1, 2),
        source.permute(0, 3, 1, 2),
        x,
        y,
        mask,
        1,
        resize_source,
    )
    return out.permute(0, 2, 3, 1).contiguous()


def split_alpha(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """SplitImageWithAlpha: (the colours, MASK = 1 − alpha); an opaque image gives mask 0."""
    alpha = image[..., 3].float() if image.shape[-1] > 3 else torch.ones(image.shape[:3])
    return image[..., :3].clone(), 1.0 - alpha


def join_alpha(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """JoinImageWithAlpha: a 4-channel IMAGE whose alpha is 1 − mask (the mask resized to the
    picture; the shorter batch repeated)."""
    from core.diffusion.latents import repeat_to_batch

    mask = mask.float().reshape(-1, 1, mask.shape[-2], mask.shape[-1])
    size = max(image.shape[0], mask.shape[0])
    image = repeat_to_batch(image[..., :3].float(), size)
    mask = F.interpolate(repeat_to_batch(mask, size), size=image.shape[1:3], mode="bilinear")
    return torch.cat([image, 1.0 - mask[:, 0, ..., None]], dim=-1).contiguous()
