"""MASK nodes: load, make, invert, grow, combine, convert and crop masks (1 = repaint)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from core.graph import types as t
from core.graph.spec import NodeSpec, Output, SocketInput, WidgetInput

CHANNELS = ("alpha", "red", "green", "blue")
#: ComfyUI's order: multiply, the first, is the default.
COMPOSITE_OPS = ("multiply", "add", "subtract", "and", "or", "xor")
IMAGE_CHANNELS = ("red", "green", "blue", "alpha")
_SIZE = {"min": 1, "max": 16384, "step": 1}
_POS = {"min": 0, "max": 16384, "step": 1}
_MASK_OUT = (Output("MASK", t.MASK),)


def _load_mask(ctx: Any, image: str, channel: str) -> Any:
    from core.diffusion import masks
    from core.diffusion.images import ImageFileError
    from core.engine import NodeError

    try:
        return masks.load_mask(str(Path(image).expanduser()), channel)
    except ImageFileError as exc:
        raise NodeError(str(exc), field="image") from None


def _file_problems(params: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    if "image" not in params:
        return  # the path arrives by a link
    value = str(params["image"])
    if not value.strip():
        yield "image", "no image file chosen: set 'image' to the path of a picture"
    elif not Path(value).expanduser().is_file():
        yield "image", f"image file {Path(value).expanduser()} does not exist"


def _file_digest(params: Mapping[str, Any]) -> str:
    try:
        return hashlib.sha256(
            Path(str(params.get("image", ""))).expanduser().read_bytes()
        ).hexdigest()
    except OSError:
        return "unreadable"


def _solid(ctx: Any, value: float, width: int, height: int) -> Any:
    from core.diffusion import masks

    return masks.solid(value, width, height)


def _invert(ctx: Any, mask: Any) -> Any:
    from core.diffusion import masks

    return masks.invert(mask)


def _grow(ctx: Any, mask: Any, expand: int, tapered_corners: bool, feather: float) -> Any:
    from core.diffusion import masks

    return masks.grow_mask(mask, expand, feather, tapered_corners)


def _composite(ctx: Any, destination: Any, source: Any, x: int, y: int, operation: str) -> Any:
    from core.diffusion import masks
    from core.engine import NodeError

    try:
        return masks.composite(destination, source, x, y, operation)
    except ValueError as exc:
        raise NodeError(str(exc), field="source") from None


def _image_to_mask(ctx: Any, image: Any, channel: str) -> Any:
    from core.diffusion import masks
    from core.engine import NodeError

    try:
        return masks.from_image(image, channel)
    except ValueError as exc:
        raise NodeError(str(exc), field="channel") from None


def _color_to_mask(ctx: Any, image: Any, color: int) -> Any:
    from core.diffusion import masks

    return masks.from_color(image, color)


def _threshold(ctx: Any, mask: Any, value: float) -> Any:
    from core.diffusion import masks

    return masks.threshold(mask, value)


def _feather(ctx: Any, mask: Any, left: int, top: int, right: int, bottom: int) -> Any:
    from core.diffusion import masks

    return masks.feather(mask, left, top, right, bottom)


def _mask_to_image(ctx: Any, mask: Any) -> Any:
    from core.diffusion import masks

    return masks.to_image(mask)


def _preview(ctx: Any, mask: Any) -> tuple[()]:
    from core.diffusion import masks

    ctx.record("images", masks.to_image(mask))
    return ()


def _crop(ctx: Any, mask: Any, x: int, y: int, width: int, height: int) -> Any:
    from core.diffusion import masks

    return masks.crop(mask, x, y, width, height)


SPECS = (
    NodeSpec(
        "LoadImageMask",
        "Load Mask",
        "mask",
        _load_mask,
        inputs=(
            WidgetInput("image", t.STRING, "", description="path of the image file"),
            WidgetInput("channel", t.COMBO, "alpha", choices=CHANNELS),
        ),
        outputs=_MASK_OUT,
        description="One channel of a picture as a mask; alpha is inverted (transparent = "
        "repaint).",
        fingerprint=_file_digest,
        check=_file_problems,
    ),
    NodeSpec(
        "SolidMask",
        "Solid Mask",
        "mask",
        _solid,
        inputs=(
            WidgetInput("value", t.FLOAT, 1.0, min=0.0, max=1.0, step=0.01),
            WidgetInput("width", t.INT, 512, **_SIZE),
            WidgetInput("height", t.INT, 512, **_SIZE),
        ),
        outputs=_MASK_OUT,
        description="A mask of one value everywhere.",
    ),
    NodeSpec(
        "InvertMask",
        "Invert Mask",
        "mask",
        _invert,
        inputs=(SocketInput("mask", t.MASK),),
        outputs=_MASK_OUT,
        description="Swaps what is repainted and what is kept.",
    ),
    NodeSpec(
        "GrowMask",
        "Grow Mask",
        "mask",
        _grow,
        inputs=(
            SocketInput("mask", t.MASK),
            WidgetInput("expand", t.INT, 0, min=-1024, max=1024, step=1),
            WidgetInput("tapered_corners", t.BOOLEAN, True),
            WidgetInput(
                "feather",
                t.FLOAT,
                0.0,
                min=0.0,
                max=256.0,
                step=0.5,
                description="then blur the edge over this many pixels (0: a hard edge)",
            ),
        ),
        outputs=_MASK_OUT,
        description="Grows (or with a negative amount shrinks) a mask by pixels, one pixel per "
        "step, with rounded corners when tapered; optionally softens its edge after.",
    ),
    NodeSpec(
        "MaskComposite",
        "Mask Composite",
        "mask",
        _composite,
        inputs=(
            SocketInput("destination", t.MASK),
            SocketInput("source", t.MASK),
            WidgetInput("x", t.INT, 0, **_POS),
            WidgetInput("y", t.INT, 0, **_POS),
            WidgetInput("operation", t.COMBO, "multiply", choices=COMPOSITE_OPS),
        ),
        outputs=_MASK_OUT,
        description="Combines two masks, the source placed at (x, y).",
    ),
    NodeSpec(
        "ImageToMask",
        "Convert Image to Mask",
        "mask",
        _image_to_mask,
        inputs=(
            SocketInput("image", t.IMAGE),
            WidgetInput("channel", t.COMBO, "red", choices=IMAGE_CHANNELS),
        ),
        outputs=_MASK_OUT,
        description="One channel of an image as a mask (alpha only for images with "
        "transparency, e.g. from Join Image with Alpha).",
    ),
    NodeSpec(
        "MaskToImage",
        "Convert Mask to Image",
        "mask",
        _mask_to_image,
        inputs=(SocketInput("mask", t.MASK),),
        outputs=(Output("IMAGE", t.IMAGE),),
        description="A mask as a grey image, to preview or save it.",
    ),
    NodeSpec(
        "CropMask",
        "Crop Mask",
        "mask",
        _crop,
        inputs=(
            SocketInput("mask", t.MASK),
            WidgetInput("x", t.INT, 0, **_POS),
            WidgetInput("y", t.INT, 0, **_POS),
            WidgetInput("width", t.INT, 512, **_SIZE),
            WidgetInput("height", t.INT, 512, **_SIZE),
        ),
        outputs=_MASK_OUT,
        description="A rectangle of a mask.",
    ),
    NodeSpec(
        "ImageColorToMask",
        "Image Color to Mask",
        "mask",
        _color_to_mask,
        inputs=(
            SocketInput("image", t.IMAGE),
            WidgetInput(
                "color", t.INT, 0, min=0, max=0xFFFFFF, step=1, description="colour as 0xRRGGBB"
            ),
        ),
        outputs=_MASK_OUT,
        description="A mask of the pixels that have exactly this 8-bit colour: turns a flat "
        "colour-coded sketch into region masks.",
    ),
    NodeSpec(
        "ThresholdMask",
        "Threshold Mask",
        "mask",
        _threshold,
        inputs=(
            SocketInput("mask", t.MASK),
            WidgetInput("value", t.FLOAT, 0.5, min=0.0, max=1.0, step=0.01),
        ),
        outputs=_MASK_OUT,
        description="1 where the mask is above the value, else 0: makes a soft mask hard.",
    ),
    NodeSpec(
        "FeatherMask",
        "Feather Mask",
        "mask",
        _feather,
        inputs=(
            SocketInput("mask", t.MASK),
            WidgetInput("left", t.INT, 0, **_POS),
            WidgetInput("top", t.INT, 0, **_POS),
            WidgetInput("right", t.INT, 0, **_POS),
            WidgetInput("bottom", t.INT, 0, **_POS),
        ),
        outputs=_MASK_OUT,
        description="Fades the mask to nothing over this many pixels at each border of the "
        "picture (a linear ramp), so a repaint touching the edge blends in.",
    ),
    NodeSpec(
        "MaskPreview",
        "Preview Mask",
        "mask",
        _preview,
        inputs=(SocketInput("mask", t.MASK),),
        output_node=True,
        description="Shows a mask as a grey picture (white = repaint) without saving it.",
    ),
)
