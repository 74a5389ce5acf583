"""Latent images and the VAE: empty latents, noise, encode/decode, resize, mix and batch."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.graph import types as t
from core.graph.spec import NodeSpec, Output, SocketInput, WidgetInput
from nodes.placement import place

#: Picture sizes become whole latent cells: a size that is not a multiple of 8 (Stable
#: Diffusion's cell) is refused rather than quietly rounded down to one.
_SIZE = {"min": 16, "max": 16384, "step": 8, "multiple_of": 8}
_BATCH = {"min": 1, "max": 4096, "step": 1}
#: ComfyUI's order (nearest-exact is the default); bislerp slerps between neighbouring cells.
UPSCALE_METHODS = ("nearest-exact", "bilinear", "area", "bicubic", "bislerp")
CROP_MODES = ("disabled", "center")


def _downscale(vae: Any) -> int:
    """Pixels per latent cell: the VAE's when one is linked, else Stable Diffusion's 8."""
    from core.diffusion import latents, vae_ops

    return latents.DEFAULT_DOWNSCALE if vae is None else vae_ops.latent_factor(vae)


def _whole_cells(factor: int, zero_allowed: bool = False, **sizes: int) -> None:
    """Refuses picture sizes (values that came by link; widgets are checked before the run)
    that are not a whole number of latent cells, instead of rounding them down."""
    from core.engine import NodeError

    rule = f"a multiple of {factor} (one latent cell of this VAE)"
    rule += ", or 0 to keep the aspect ratio" if zero_allowed else f", at least {factor}"
    for name, value in sizes.items():
        if value % factor or value < (0 if zero_allowed else factor):
            below = max(factor, value - value % factor)
            raise NodeError(
                f"{name} is {value} pixels, but it must be {rule}: use {below} or {below + factor}",
                field=name,
            )


def _cells(vae: Any, width: int, height: int) -> int:
    """Pixels per latent cell of ``vae``, once the picture size is found to be whole cells."""
    factor = _downscale(vae)
    _whole_cells(factor, width=width, height=height)
    return factor


def _empty_latent(
    ctx: Any, width: int, height: int, batch_size: int, vae: Any = None
) -> dict[str, Any]:
    from core.diffusion import latents

    return latents.empty(width, height, batch_size, _cells(vae, width, height))


def _empty_sd3_latent(ctx: Any, width: int, height: int, batch_size: int) -> dict[str, Any]:
    from core.diffusion import latents

    factor = latents.DEFAULT_DOWNSCALE
    _whole_cells(factor, width=width, height=height)
    return latents.empty(width, height, batch_size, factor, latents.FLOW_LATENT_CHANNELS)


def _latent_noise(
    ctx: Any, seed: int, width: int, height: int, batch_size: int, vae: Any = None
) -> Any:
    from core.diffusion import latents

    return latents.noise(seed, width, height, batch_size, _cells(vae, width, height))


def _vae_decode(ctx: Any, samples: Mapping[str, Any], vae: Any) -> Any:
    from core.diffusion import devices, vae_ops

    place(ctx, vae.vae)
    latent = samples["samples"]
    # The sampler's thread choice (core.diffusion.devices) holds for decoding the same latent.
    with devices.cpu_threads(latent.shape, next(vae.vae.parameters()).device):
        return vae_ops.decode(vae, latent)


def _tiles(tile_size: int, overlap: int, factor: int = 1) -> tuple[int, int]:
    """The tile size and overlap (given in pixels) in units of ``factor`` pixels (latent cells
    for decoding); an overlap that leaves a tile nothing of its own is refused."""
    from core.engine import NodeError

    tile, lap = max(1, tile_size // factor), overlap // factor
    if lap >= tile:
        raise NodeError(
            f"the overlap ({overlap} pixels) must be smaller than the tile size "
            f"({tile_size} pixels): lower the overlap or raise the tile size",
            field="overlap",
        )
    return tile, lap


def _vae_decode_tiled(
    ctx: Any, samples: Mapping[str, Any], vae: Any, tile_size: int, overlap: int
) -> Any:
    from core.diffusion import vae_ops

    tile, lap = _tiles(tile_size, overlap, vae_ops.latent_factor(vae))
    place(ctx, vae.vae)
    return vae_ops.decode(vae, samples["samples"], tile=tile, overlap=lap)


def _vae_encode(ctx: Any, pixels: Any, vae: Any) -> dict[str, Any]:
    from core.diffusion import vae_ops
    from core.engine import NodeError

    try:
        place(ctx, vae.vae)
        return {"samples": vae_ops.encode(vae, pixels), "downscale": vae_ops.latent_factor(vae)}
    except ValueError as exc:
        raise NodeError(str(exc), field="pixels") from None


def _vae_encode_tiled(
    ctx: Any, pixels: Any, vae: Any, tile_size: int, overlap: int
) -> dict[str, Any]:
    from core.diffusion import vae_ops
    from core.engine import NodeError

    _tiles(tile_size, overlap)
    place(ctx, vae.vae)
    try:
        samples = vae_ops.encode_in_tiles(vae, pixels, tile_size, overlap, ctx.progress)
    except ValueError as exc:
        raise NodeError(str(exc), field="pixels") from None
    return {"samples": samples, "downscale": vae_ops.latent_factor(vae)}


def _vae_encode_inpaint(
    ctx: Any, pixels: Any, vae: Any, mask: Any, grow_mask_by: int
) -> dict[str, Any]:
    from core.diffusion import vae_ops

    place(ctx, vae.vae)
    samples, grown = vae_ops.encode_for_inpaint(vae, pixels, mask, grow_mask_by)
    return {"samples": samples, "noise_mask": grown, "downscale": vae_ops.latent_factor(vae)}


def _set_noise_mask(ctx: Any, samples: Mapping[str, Any], mask: Any) -> dict[str, Any]:
    from core.diffusion import latents

    return latents.set_noise_mask(samples, mask)


def _upscale(
    ctx: Any, samples: Mapping[str, Any], upscale_method: str, width: int, height: int, crop: str
) -> dict[str, Any]:
    from core.diffusion import latents

    _whole_cells(latents.downscale_of(samples), zero_allowed=True, width=width, height=height)
    return latents.upscale(samples, width, height, upscale_method, crop)


def _upscale_by(
    ctx: Any, samples: Mapping[str, Any], upscale_method: str, scale_by: float
) -> dict[str, Any]:
    from core.diffusion import latents

    return latents.upscale_by(samples, scale_by, upscale_method)


def _interpolate(
    ctx: Any, samples1: Mapping[str, Any], samples2: Mapping[str, Any], ratio: float, method: str
) -> dict[str, Any]:
    from core.diffusion import latents
    from core.engine import NodeError

    try:  # ratio is samples1's share, as in ComfyUI
        return latents.interpolate(samples1, samples2, 1.0 - ratio, method)
    except ValueError as exc:
        raise NodeError(str(exc), field="samples2") from None


def _interpolate_upgrade(version: int, params: dict[str, Any]) -> dict[str, Any]:
    """Version 1 measured ratio towards samples2 and defaulted to spherical."""
    params = dict(params)
    if version < 2:
        params.setdefault("method", "spherical")
        if isinstance(params.get("ratio"), (int, float)):
            params["ratio"] = round(1.0 - params["ratio"], 12)
    return params


def _batch(ctx: Any, samples1: Mapping[str, Any], samples2: Mapping[str, Any]) -> Any:
    from core.diffusion import latents

    return latents.batch(samples1, samples2)


def _seed_behavior(ctx: Any, samples: Mapping[str, Any], seed_behavior: str) -> Any:
    from core.diffusion import latents

    return latents.batch_seed_behavior(samples, seed_behavior)


def _from_batch(ctx: Any, samples: Mapping[str, Any], batch_index: int, length: int) -> Any:
    from core.diffusion import latents

    return latents.from_batch(samples, batch_index, length)


def _repeat(ctx: Any, samples: Mapping[str, Any], amount: int) -> Any:
    from core.diffusion import latents

    return latents.repeat(samples, amount)


_LATENT_OUT = (Output("LATENT", t.LATENT),)
#: The picture a new latent is for: its size in pixels and how many in the batch.
_PICTURE_SIZE = (
    WidgetInput("width", t.INT, 512, **_SIZE, description="picture width in pixels"),
    WidgetInput("height", t.INT, 512, **_SIZE, description="picture height in pixels"),
    WidgetInput("batch_size", t.INT, 1, **_BATCH, description="how many pictures in one run"),
)
#: The tiled encoder's and decoder's sizes, in pixels.
_TILE_WIDGETS = (
    WidgetInput("tile_size", t.INT, 512, min=64, max=4096, step=64),
    WidgetInput("overlap", t.INT, 64, min=0, max=4096, step=32),
)

SPECS = (
    NodeSpec(
        "EmptyLatentImage",
        "Empty Latent Image",
        "latent",
        _empty_latent,
        inputs=(
            SocketInput(
                "vae",
                t.VAE,
                optional=True,
                description=(
                    "sizes are in pixels of this VAE; unlinked, the sampler fits the latent "
                    "to its own model's VAE"
                ),
            ),
            *_PICTURE_SIZE,
        ),
        outputs=_LATENT_OUT,
        description="A blank latent of the picture's size: the start of text-to-image.",
    ),
    NodeSpec(
        "EmptySD3LatentImage",
        "EmptySD3LatentImage",
        "latent",
        _empty_sd3_latent,
        inputs=(
            WidgetInput("width", t.INT, 1024, **_SIZE, description="picture width in pixels"),
            WidgetInput("height", t.INT, 1024, **_SIZE, description="picture height in pixels"),
            _PICTURE_SIZE[2],
        ),
        outputs=_LATENT_OUT,
        description="A blank 16-channel latent, one cell per 8×8 pixels: the start of "
        "text-to-image for the 16-channel autoencoders of SD3 and the flow-matching models "
        "after it (Z-Image, Qwen-Image). SD 1.x, SD 2.x and SDXL take Empty Latent Image's "
        "4 channels instead.",
    ),
    NodeSpec(
        "LatentNoise",
        "Latent Noise",
        "latent",
        _latent_noise,
        inputs=(
            SocketInput(
                "vae",
                t.VAE,
                optional=True,
                description="sizes are in pixels of this VAE (SD's 8 per latent cell if unlinked)",
            ),
            WidgetInput("seed", t.INT, 0, min=0, max=2**64 - 1, step=1, control_after_run=True),
            *_PICTURE_SIZE,
        ),
        outputs=_LATENT_OUT,
        description="Seeded Gaussian noise as a latent: feed a sampler's noise input, or "
        "interpolate two of them to morph between pictures.",
    ),
    NodeSpec(
        "VAEDecode",
        "VAE Decode",
        "latent",
        _vae_decode,
        inputs=(
            SocketInput("samples", t.LATENT, description="the latent to decode (a sampler's)"),
            SocketInput("vae", t.VAE, description="the autoencoder (Load Checkpoint's VAE)"),
        ),
        outputs=(Output("IMAGE", t.IMAGE, description="the picture: save or preview it"),),
        description="Latents to pictures; large ones are decoded in blended tiles so memory "
        "stays bounded.",
    ),
    NodeSpec(
        "VAEDecodeTiled",
        "VAE Decode (Tiled)",
        "latent",
        _vae_decode_tiled,
        inputs=(
            SocketInput("samples", t.LATENT),
            SocketInput("vae", t.VAE),
            *_TILE_WIDGETS,
        ),
        outputs=(Output("IMAGE", t.IMAGE),),
        description="Decodes tile by tile (sizes in pixels), blending the overlaps.",
    ),
    NodeSpec(
        "VAEEncode",
        "VAE Encode",
        "latent",
        _vae_encode,
        inputs=(
            SocketInput("pixels", t.IMAGE, description="the picture to encode (Load Image)"),
            SocketInput("vae", t.VAE, description="the autoencoder (Load Checkpoint's VAE)"),
        ),
        outputs=_LATENT_OUT,
        description="Pictures to latents (cropped to a multiple of 8 pixels): the start of "
        "image-to-image.",
    ),
    NodeSpec(
        "VAEEncodeTiled",
        "VAE Encode (Tiled)",
        "latent",
        _vae_encode_tiled,
        inputs=(
            SocketInput("pixels", t.IMAGE),
            SocketInput("vae", t.VAE),
            *_TILE_WIDGETS,
        ),
        outputs=_LATENT_OUT,
        description="Encodes a large picture tile by tile (sizes in pixels), blending the "
        "overlaps, so memory stays bounded: image-to-image or upscaling on big images. "
        "Cancel stops it between tiles.",
    ),
    NodeSpec(
        "VAEEncodeForInpaint",
        "VAE Encode (for Inpainting)",
        "latent",
        _vae_encode_inpaint,
        inputs=(
            SocketInput("pixels", t.IMAGE),
            SocketInput("vae", t.VAE),
            SocketInput("mask", t.MASK),
            WidgetInput("grow_mask_by", t.INT, 6, min=0, max=64, step=1),
        ),
        outputs=_LATENT_OUT,
        description="Encodes the picture with the masked area greyed out and attaches the "
        "grown mask as the noise mask: for inpainting models at denoise 1.",
    ),
    NodeSpec(
        "SetLatentNoiseMask",
        "Set Latent Noise Mask",
        "latent",
        _set_noise_mask,
        inputs=(SocketInput("samples", t.LATENT), SocketInput("mask", t.MASK)),
        outputs=_LATENT_OUT,
        description="Limits the sampler to the masked area; the rest is kept.",
    ),
    NodeSpec(
        "LatentUpscale",
        "Upscale Latent",
        "latent",
        _upscale,
        inputs=(
            SocketInput("samples", t.LATENT),
            WidgetInput("upscale_method", t.COMBO, "nearest-exact", choices=UPSCALE_METHODS),
            WidgetInput("width", t.INT, 512, min=0, max=16384, step=8, multiple_of=8),
            WidgetInput("height", t.INT, 512, min=0, max=16384, step=8, multiple_of=8),
            WidgetInput("crop", t.COMBO, "disabled", choices=CROP_MODES),
        ),
        outputs=_LATENT_OUT,
        description="Resizes a latent to a picture size (0 keeps the aspect ratio): for a "
        "high-resolution second pass.",
    ),
    NodeSpec(
        "LatentUpscaleBy",
        "Upscale Latent By",
        "latent",
        _upscale_by,
        inputs=(
            SocketInput("samples", t.LATENT),
            WidgetInput("upscale_method", t.COMBO, "nearest-exact", choices=UPSCALE_METHODS),
            WidgetInput("scale_by", t.FLOAT, 1.5, min=0.01, max=8.0, step=0.01),
        ),
        outputs=_LATENT_OUT,
        description="Resizes a latent by a factor.",
    ),
    NodeSpec(
        "LatentInterpolate",
        "Latent Interpolate",
        "latent",
        _interpolate,
        inputs=(
            SocketInput("samples1", t.LATENT),
            SocketInput("samples2", t.LATENT),
            WidgetInput(
                "ratio",
                t.FLOAT,
                0.5,
                min=0.0,
                max=1.0,
                step=0.01,
                description="share of samples1: 1 gives samples1, 0 gives samples2",
            ),
            WidgetInput(
                "method", t.COMBO, "normalized", choices=("normalized", "linear", "spherical")
            ),
        ),
        outputs=_LATENT_OUT,
        description="Blends two latents. normalized (ComfyUI's) mixes each cell's direction "
        "and length separately; spherical keeps noise at its natural magnitude, for morphing "
        "between two seeds' noise.",
        version=2,
        upgrade=_interpolate_upgrade,
    ),
    NodeSpec(
        "LatentBatch",
        "Latent Batch",
        "latent",
        _batch,
        inputs=(SocketInput("samples1", t.LATENT), SocketInput("samples2", t.LATENT)),
        outputs=_LATENT_OUT,
        description="Joins two latent batches into one.",
    ),
    NodeSpec(
        "LatentFromBatch",
        "Latent From Batch",
        "latent",
        _from_batch,
        inputs=(
            SocketInput("samples", t.LATENT),
            WidgetInput("batch_index", t.INT, 0, min=0, max=4095, step=1),
            WidgetInput("length", t.INT, 1, min=1, max=4096, step=1),
        ),
        outputs=_LATENT_OUT,
        description="Picks items out of a latent batch.",
    ),
    NodeSpec(
        "LatentBatchSeedBehavior",
        "Latent Batch Seed Behavior",
        "latent/batch",
        _seed_behavior,
        inputs=(
            SocketInput("samples", t.LATENT),
            WidgetInput("seed_behavior", t.COMBO, "fixed", choices=("random", "fixed")),
        ),
        outputs=_LATENT_OUT,
        description="fixed: every item of the batch is sampled from the same noise (variations "
        "then come only from the prompts or the input); random: each item from its own noise.",
    ),
    NodeSpec(
        "RepeatLatentBatch",
        "Repeat Latent Batch",
        "latent",
        _repeat,
        inputs=(
            SocketInput("samples", t.LATENT),
            WidgetInput("amount", t.INT, 1, min=1, max=64, step=1),
        ),
        outputs=_LATENT_OUT,
        description="Repeats a latent batch, e.g. to vary one image-to-image start.",
    ),
)
