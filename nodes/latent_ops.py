"""Latent arithmetic and geometry: composite, blend, add, subtract, multiply, rotate, flip, crop.

Positions and sizes are in pixels, as in ComfyUI, and become whole latent cells (8 pixels for
Stable Diffusion's VAE) by rounding down.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.graph import types as t
from core.graph.spec import NodeSpec, Output, SocketInput, WidgetInput

_POS = {"min": 0, "max": 16384, "step": 8}
_LATENT_OUT = (Output("LATENT", t.LATENT),)
ROTATIONS = ("none", "90 degrees", "180 degrees", "270 degrees")
FLIPS = ("x-axis: vertically", "y-axis: horizontally")


def _composite(
    ctx: Any,
    samples_to: Mapping[str, Any],
    samples_from: Mapping[str, Any],
    x: int,
    y: int,
    feather: int,
) -> dict[str, Any]:
    from core.diffusion import latents

    return latents.composite(samples_to, samples_from, x, y, feather)


def _composite_masked(
    ctx: Any,
    destination: Mapping[str, Any],
    source: Mapping[str, Any],
    x: int,
    y: int,
    resize_source: bool,
    mask: Any = None,
) -> dict[str, Any]:
    from core.diffusion import latents

    return latents.composite_masked(destination, source, x, y, resize_source, mask)


def _blend(
    ctx: Any, samples1: Mapping[str, Any], samples2: Mapping[str, Any], blend_factor: float
) -> dict[str, Any]:
    from core.diffusion import latents

    return latents.blend(samples1, samples2, blend_factor)


def _add(ctx: Any, samples1: Mapping[str, Any], samples2: Mapping[str, Any]) -> dict[str, Any]:
    from core.diffusion import latents

    return latents.add(samples1, samples2)


def _subtract(ctx: Any, samples1: Mapping[str, Any], samples2: Mapping[str, Any]) -> dict[str, Any]:
    from core.diffusion import latents

    return latents.subtract(samples1, samples2)


def _multiply(ctx: Any, samples: Mapping[str, Any], multiplier: float) -> dict[str, Any]:
    from core.diffusion import latents

    return latents.multiply(samples, multiplier)


def _rotate(ctx: Any, samples: Mapping[str, Any], rotation: str) -> dict[str, Any]:
    from core.diffusion import latents

    return latents.rotate(samples, rotation)


def _flip(ctx: Any, samples: Mapping[str, Any], flip_method: str) -> dict[str, Any]:
    from core.diffusion import latents

    return latents.flip(samples, flip_method)


def _crop(
    ctx: Any, samples: Mapping[str, Any], width: int, height: int, x: int, y: int
) -> dict[str, Any]:
    from core.diffusion import latents
    from core.engine import NodeError

    factor = latents.downscale_of(samples)
    for name, value in (("width", width), ("height", height)):
        if value < factor:
            raise NodeError(
                f"{name} is {value} pixels, less than one latent cell ({factor}): use at least "
                f"{factor}",
                field=name,
            )
    return latents.crop(samples, width, height, x, y)


SPECS = (
    NodeSpec(
        "LatentComposite",
        "Latent Composite",
        "latent",
        _composite,
        inputs=(
            SocketInput("samples_to", t.LATENT),
            SocketInput("samples_from", t.LATENT),
            WidgetInput("x", t.INT, 0, **_POS),
            WidgetInput("y", t.INT, 0, **_POS),
            WidgetInput("feather", t.INT, 0, **_POS),
        ),
        outputs=_LATENT_OUT,
        description="Pastes one latent into another at (x, y) pixels, rounded down to whole "
        "latent cells; feather fades the pasted edges in over that many pixels. Use it to "
        "place a separately sampled subject before a final pass.",
    ),
    NodeSpec(
        "LatentCompositeMasked",
        "Latent Composite Masked",
        "latent",
        _composite_masked,
        inputs=(
            SocketInput("destination", t.LATENT),
            SocketInput("source", t.LATENT),
            WidgetInput("x", t.INT, 0, **_POS),
            WidgetInput("y", t.INT, 0, **_POS),
            WidgetInput("resize_source", t.BOOLEAN, False),
            SocketInput(
                "mask",
                t.MASK,
                optional=True,
                description="where the source shows (1); everywhere if unlinked",
            ),
        ),
        outputs=_LATENT_OUT,
        description="Pastes the source latent at (x, y) pixels of the destination through a "
        "mask, optionally resizing the source to the destination first: for mixing two "
        "generations region by region.",
    ),
    NodeSpec(
        "LatentBlend",
        "Latent Blend",
        "latent",
        _blend,
        inputs=(
            SocketInput("samples1", t.LATENT),
            SocketInput("samples2", t.LATENT),
            WidgetInput("blend_factor", t.FLOAT, 0.5, min=0.0, max=1.0, step=0.01),
        ),
        outputs=_LATENT_OUT,
        description="samples1 × blend_factor + samples2 × (1 − blend_factor); samples2 is "
        "resized to samples1 if they differ. A straight mix of two latents.",
    ),
    NodeSpec(
        "LatentAdd",
        "Latent Add",
        "latent/advanced",
        _add,
        inputs=(SocketInput("samples1", t.LATENT), SocketInput("samples2", t.LATENT)),
        outputs=_LATENT_OUT,
        description="samples1 + samples2, value by value (samples2 resized and repeated to "
        "samples1's shape): for latent arithmetic such as adding a difference back.",
    ),
    NodeSpec(
        "LatentSubtract",
        "Latent Subtract",
        "latent/advanced",
        _subtract,
        inputs=(SocketInput("samples1", t.LATENT), SocketInput("samples2", t.LATENT)),
        outputs=_LATENT_OUT,
        description="samples1 − samples2, value by value (samples2 resized and repeated to "
        "samples1's shape): for taking the difference two edits made.",
    ),
    NodeSpec(
        "LatentMultiply",
        "Latent Multiply",
        "latent/advanced",
        _multiply,
        inputs=(
            SocketInput("samples", t.LATENT),
            WidgetInput("multiplier", t.FLOAT, 1.0, min=-10.0, max=10.0, step=0.01),
        ),
        outputs=_LATENT_OUT,
        description="Scales every latent value: below 1 flattens, above 1 strengthens what the "
        "latent holds.",
    ),
    NodeSpec(
        "LatentRotate",
        "Rotate Latent",
        "latent/transform",
        _rotate,
        inputs=(
            SocketInput("samples", t.LATENT),
            WidgetInput("rotation", t.COMBO, "none", choices=ROTATIONS),
        ),
        outputs=_LATENT_OUT,
        description="Turns a latent clockwise by quarter turns (its noise mask too), e.g. to "
        "sample a portrait with a landscape composition.",
    ),
    NodeSpec(
        "LatentFlip",
        "Flip Latent",
        "latent/transform",
        _flip,
        inputs=(
            SocketInput("samples", t.LATENT),
            WidgetInput("flip_method", t.COMBO, FLIPS[0], choices=FLIPS),
        ),
        outputs=_LATENT_OUT,
        description="Mirrors a latent (and its noise mask): x-axis turns it upside down, "
        "y-axis swaps left and right.",
    ),
    NodeSpec(
        "LatentCrop",
        "Crop Latent",
        "latent/transform",
        _crop,
        inputs=(
            SocketInput("samples", t.LATENT),
            WidgetInput("width", t.INT, 512, min=64, max=16384, step=8),
            WidgetInput("height", t.INT, 512, min=64, max=16384, step=8),
            WidgetInput("x", t.INT, 0, **_POS),
            WidgetInput("y", t.INT, 0, **_POS),
        ),
        outputs=_LATENT_OUT,
        description="Keeps a width × height pixel rectangle of a latent, its corner at (x, y) "
        "(rounded down to whole cells, moved in so at least 64 pixels remain); a noise mask is "
        "cropped alike.",
    ),
)
