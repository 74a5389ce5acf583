"""Widely used third-party ComfyUI node packs' node types that LatentLoom's own nodes cover, as
it maps them; each entry names its pack, so the editor can say where ComfyUI gets the type."""

from __future__ import annotations

from typing import Any

from nodes.interop.comfyui.type_mapping import TypeMapping, entry

ESSENTIALS = "ComfyUI_essentials"
WAS_SUITE = "was-node-suite-comfyui"
CONTROLNET_AUX = "comfyui_controlnet_aux"

#: Our Canny node's threshold range (nodes.controlnet).
_CANNY_RANGE = (0.01, 0.99)


def _from_8bit_threshold(value: Any) -> Any:
    """An OpenCV Canny threshold (gradient strength on 0..255 pixels) on our scale (the same
    gradient on 0..1 pixels), kept inside our widget's range; anything but a number is left
    for validation to report."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    low, high = _CANNY_RANGE
    return min(high, max(low, round(value / 255.0, 4)))


PACK_MAPPINGS: tuple[TypeMapping, ...] = (
    # nodes.image_effects. The pack's widgets and their values are ours one for one.
    entry(
        "ImageResize+",
        "ResizeImageToFit",
        ("width", "height", "interpolation", "method", "condition", "multiple_of"),
        title="🔧 Image Resize",
        pack=ESSENTIALS,
    ),
    entry(
        "Image Bloom Filter",
        "ImageBloom",
        ("radius", "intensity"),
        title="Image Bloom Filter",
        pack=WAS_SUITE,
    ),
    # The preprocessor runs OpenCV's Canny at a working resolution (the picture's shorter side
    # scaled to it), with thresholds on 0..255 pixels; our Canny does the same with a
    # resolution and thresholds on 0..1 pixels. Older versions of the pack had no resolution.
    entry(
        "CannyEdgePreprocessor",
        "Canny",
        ("low_threshold", "high_threshold", "resolution"),
        title="Canny Edge",
        pack=CONTROLNET_AUX,
        imports={
            "low_threshold": _from_8bit_threshold,
            "high_threshold": _from_8bit_threshold,
        },
    ),
)
