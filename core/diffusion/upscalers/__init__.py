"""Pixel upscale models: ESRGAN's RRDBNet (both key layouts), Real-ESRGAN's compact
SRVGGNetCompact and SwinIR, recognised from their weights and run tile by tile."""

from __future__ import annotations

from core.diffusion.upscalers.loading import SUPPORTED, UpscaleModel, load_upscale_model
from core.diffusion.upscalers.tiling import (
    DEFAULT_OVERLAP,
    DEFAULT_TILE,
    MIN_TILE,
    tile_count,
    tile_spans,
    upscale_image,
)

__all__ = [
    "DEFAULT_OVERLAP",
    "DEFAULT_TILE",
    "MIN_TILE",
    "SUPPORTED",
    "UpscaleModel",
    "load_upscale_model",
    "tile_count",
    "tile_spans",
    "upscale_image",
]
