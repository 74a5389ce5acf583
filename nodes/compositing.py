"""Compositing pictures: paste through a mask, pad for outpainting, split and join alpha."""

from __future__ import annotations

from typing import Any

from core.graph import types as t
from core.graph.spec import NodeSpec, Output, SocketInput, WidgetInput

_POS = {"min": 0, "max": 16384, "step": 1}
_PAD = {"min": 0, "max": 16384, "step": 8}


def _composite_masked(
    ctx: Any,
    destination: Any,
    source: Any,
    x: int,
    y: int,
    resize_source: bool,
    mask: Any = None,
) -> Any:
    from core.diffusion import images

    return images.composite_masked(destination, source, x, y, resize_source, mask)


def _pad_for_outpaint(
    ctx: Any, image: Any, left: int, top: int, right: int, bottom: int, feathering: int
) -> tuple[Any, Any]:
    from core.diffusion import images

    return images.pad_for_outpaint(image, left, top, right, bottom, feathering)


def _split_alpha(ctx: Any, image: Any) -> tuple[Any, Any]:
    from core.diffusion import images

    return images.split_alpha(image)


def _join_alpha(ctx: Any, image: Any, alpha: Any) -> Any:
    from core.diffusion import images

    return images.join_alpha(image, alpha)


SPECS = (
    NodeSpec(
        "ImageCompositeMasked",
        "Image Composite Masked",
        "image",
        _composite_masked,
        inputs=(
            SocketInput("destination", t.IMAGE),
            SocketInput("source", t.IMAGE),
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
        outputs=(Output("IMAGE", t.IMAGE),),
        description="Pastes the source picture with its top-left corner at (x, y) of the "
        "destination, through a mask when one is linked: put an inpainted region back into "
        "the original, or assemble a collage.",
    ),
    NodeSpec(
        "ImagePadForOutpaint",
        "Pad Image for Outpainting",
        "image",
        _pad_for_outpaint,
        inputs=(
            SocketInput("image", t.IMAGE),
            WidgetInput("left", t.INT, 0, **_PAD),
            WidgetInput("top", t.INT, 0, **_PAD),
            WidgetInput("right", t.INT, 0, **_PAD),
            WidgetInput("bottom", t.INT, 0, **_PAD),
            WidgetInput("feathering", t.INT, 40, min=0, max=16384, step=1),
        ),
        outputs=(Output("IMAGE", t.IMAGE), Output("MASK", t.MASK)),
        description="Extends the picture by grey borders and gives the mask of what to paint "
        "there, fading feathering pixels into the picture along the padded sides: feed both "
        "to VAE Encode (for Inpainting) to outpaint.",
    ),
    NodeSpec(
        "SplitImageWithAlpha",
        "Split Image with Alpha",
        "mask/compositing",
        _split_alpha,
        inputs=(SocketInput("image", t.IMAGE),),
        outputs=(Output("IMAGE", t.IMAGE), Output("MASK", t.MASK)),
        description="Separates a picture's colours from its transparency; the MASK is 1 where "
        "it is transparent (0 everywhere for an opaque picture).",
    ),
    NodeSpec(
        "JoinImageWithAlpha",
        "Join Image with Alpha",
        "mask/compositing",
        _join_alpha,
        inputs=(SocketInput("image", t.IMAGE), SocketInput("alpha", t.MASK)),
        outputs=(Output("IMAGE", t.IMAGE),),
        description="Gives a picture transparency from a mask (1 = transparent), e.g. to cut "
        "out a subject; the result has four channels.",
    ),
)
