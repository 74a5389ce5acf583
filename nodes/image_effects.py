"""IMAGE nodes whose ComfyUI counterparts come from widely used node packs: Resize Image to Fit
(ComfyUI_essentials' Image Resize) and Bloom (the WAS node suite's Image Bloom Filter)."""

from __future__ import annotations

from typing import Any

from core.graph import types as t
from core.graph.spec import NodeSpec, Output, SocketInput, WidgetInput

#: Kept here as well as in core.diffusion.image_effects so building the registry imports no torch.
INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "area", "nearest-exact", "lanczos")
FIT_METHODS = ("stretch", "keep proportion", "fill / crop", "pad")
FIT_CONDITIONS = (
    "always",
    "downscale if bigger",
    "upscale if smaller",
    "if bigger area",
    "if smaller area",
)


def _fit(
    ctx: Any,
    image: Any,
    width: int,
    height: int,
    interpolation: str,
    method: str,
    condition: str,
    multiple_of: int,
) -> tuple[Any, int, int]:
    from core.diffusion import image_effects

    out = image_effects.fit(image, width, height, interpolation, method, condition, multiple_of)
    return out, int(out.shape[2]), int(out.shape[1])


def _bloom(ctx: Any, image: Any, radius: float, intensity: float) -> Any:
    from core.diffusion import image_effects

    return image_effects.bloom(image, radius, intensity)


SPECS = (
    NodeSpec(
        "ResizeImageToFit",
        "Resize Image to Fit",
        "image/upscaling",
        _fit,
        inputs=(
            SocketInput("image", t.IMAGE),
            WidgetInput(
                "width",
                t.INT,
                512,
                min=0,
                max=16384,
                step=1,
                description="the box's width in pixels; 0 leaves the width free",
            ),
            WidgetInput(
                "height",
                t.INT,
                512,
                min=0,
                max=16384,
                step=1,
                description="the box's height in pixels; 0 leaves the height free",
            ),
            WidgetInput("interpolation", t.COMBO, "nearest", choices=INTERPOLATIONS),
            WidgetInput(
                "method",
                t.COMBO,
                "stretch",
                choices=FIT_METHODS,
                description="stretch to the box; keep proportion (fit inside it); fill / crop "
                "(cover it, cutting the overflow off); pad (fit inside, black borders up to it)",
            ),
            WidgetInput(
                "condition",
                t.COMBO,
                "always",
                choices=FIT_CONDITIONS,
                description="resize only when the picture is bigger or smaller than the size "
                "it would get; otherwise it passes through unchanged",
            ),
            WidgetInput(
                "multiple_of",
                t.INT,
                0,
                min=0,
                max=512,
                step=1,
                description="above 1: trim each side down to a multiple of this, evenly from "
                "both edges (8 for a VAE, 64 for some ControlNets)",
            ),
        ),
        outputs=(Output("IMAGE", t.IMAGE), Output("width", t.INT), Output("height", t.INT)),
        description="Resizes pictures to meet a width × height box: stretched, fitted inside "
        "with their proportions kept, filling it with the overflow cropped, or fitted and "
        "padded; optionally only when bigger or smaller, and trimmed to a multiple of a size. "
        "Use it before VAE Encode to bring an input picture of any size to the model's size, "
        "and read its width and height outputs to size latents to match.",
    ),
    NodeSpec(
        "ImageBloom",
        "Bloom",
        "image/postprocessing",
        _bloom,
        inputs=(
            SocketInput("image", t.IMAGE),
            WidgetInput(
                "radius",
                t.FLOAT,
                10.0,
                min=0.0,
                max=1024.0,
                step=0.1,
                description="how far, in pixels, brightness is compared and the glow spreads",
            ),
            WidgetInput(
                "intensity",
                t.FLOAT,
                1.0,
                min=0.0,
                max=1.0,
                step=0.1,
                description="how strong the glow is; 0 leaves the picture unchanged",
            ),
        ),
        outputs=(Output("IMAGE", t.IMAGE),),
        description="Adds a soft glow around the parts of a picture that are brighter than "
        "their surroundings: those parts are blurred and screened back over it. Use it as a "
        "finishing touch on lights, highlights and night scenes after VAE Decode.",
    ),
)
