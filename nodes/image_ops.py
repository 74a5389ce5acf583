"""IMAGE operations: scale and invert."""

from __future__ import annotations

from typing import Any

from core.graph import types as t
from core.graph.spec import NodeSpec, Output, SocketInput, WidgetInput

UPSCALE_METHODS = ("nearest-exact", "bilinear", "bicubic", "area")
CROP_MODES = ("disabled", "center")


def _image_scale(
    ctx: Any, image: Any, upscale_method: str, width: int, height: int, crop: str
) -> Any:
    from core.diffusion import images

    return images.scale(image, width, height, upscale_method, crop)


def _image_scale_by(ctx: Any, image: Any, upscale_method: str, scale_by: float) -> Any:
    from core.diffusion import images

    height = max(1, round(image.shape[1] * scale_by))
    width = max(1, round(image.shape[2] * scale_by))
    return images.scale(image, width, height, upscale_method, "disabled")


def _image_invert(ctx: Any, image: Any) -> Any:
    return 1.0 - image


SPECS = (
    NodeSpec(
        "ImageScale",
        "Upscale Image",
        "image",
        _image_scale,
        inputs=(
            SocketInput("image", t.IMAGE),
            WidgetInput("upscale_method", t.COMBO, "nearest-exact", choices=UPSCALE_METHODS),
            WidgetInput("width", t.INT, 512, min=0, max=16384, step=1),
            WidgetInput("height", t.INT, 512, min=0, max=16384, step=1),
            WidgetInput("crop", t.COMBO, "disabled", choices=CROP_MODES),
        ),
        outputs=(Output("IMAGE", t.IMAGE),),
        description="Resizes images (0 keeps the aspect ratio); center crop avoids stretching.",
    ),
    NodeSpec(
        "ImageScaleBy",
        "Upscale Image By",
        "image",
        _image_scale_by,
        inputs=(
            SocketInput("image", t.IMAGE),
            WidgetInput("upscale_method", t.COMBO, "nearest-exact", choices=UPSCALE_METHODS),
            WidgetInput("scale_by", t.FLOAT, 1.0, min=0.01, max=8.0, step=0.01),
        ),
        outputs=(Output("IMAGE", t.IMAGE),),
        description="Resizes images by a factor.",
    ),
    NodeSpec(
        "ImageInvert",
        "Invert Image",
        "image",
        _image_invert,
        inputs=(SocketInput("image", t.IMAGE),),
        outputs=(Output("IMAGE", t.IMAGE),),
        description="1 − each colour value.",
    ),
)
