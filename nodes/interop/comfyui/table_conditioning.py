"""ComfyUI's prompt and conditioning nodes, as LatentLoom maps them."""

from __future__ import annotations

from nodes.interop.comfyui.type_mapping import TypeMapping, entry

CONDITIONING_MAPPINGS: tuple[TypeMapping, ...] = (
    # conditioning
    entry("CLIPTextEncode", widgets=("text",), title="CLIP Text Encode (Prompt)"),
    entry("ConditioningCombine", title="Conditioning (Combine)"),
    entry(
        "ConditioningAverage",
        widgets=("conditioning_to_strength",),
        title="Conditioning (Average)",
    ),
    entry("ConditioningConcat", title="Conditioning (Concat)"),
    entry(
        "ConditioningSetArea",
        widgets=("width", "height", "x", "y", "strength"),
        title="Conditioning (Set Area)",
    ),
    entry(
        "ConditioningSetMask",
        widgets=("strength", "set_cond_area"),
        title="Conditioning (Set Mask)",
    ),
    entry("ConditioningZeroOut", title="ConditioningZeroOut"),
    entry(
        "ConditioningSetTimestepRange",
        widgets=("start", "end"),
        title="ConditioningSetTimestepRange",
    ),
    entry(
        "CLIPTextEncodeSDXL",
        widgets=(
            "width",
            "height",
            "crop_w",
            "crop_h",
            "target_width",
            "target_height",
            "text_g",
            "text_l",
        ),
        title="CLIPTextEncodeSDXL",
    ),
    entry(
        "CLIPTextEncodeSDXLRefiner",
        widgets=("ascore", "width", "height", "text"),
        title="CLIPTextEncodeSDXLRefiner",
    ),
)
