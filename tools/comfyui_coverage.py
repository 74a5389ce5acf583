"""Which of ComfyUI's SD-era core nodes LatentLoom has, maps to a node of its own, or lacks.

    python tools/comfyui_coverage.py > docs/comfyui.md

The list below is ComfyUI's core catalogue for Stable Diffusion 1.x, 2.x and SDXL (``nodes.py``
and the ``comfy_extras`` modules users of those models meet), by the module that defines each
node. A node is *had* when LatentLoom's registry has a node of that type; *mapped* when the
importer turns it into a LatentLoom node of another name; *lacking* otherwise, and a workflow
using it opens with a placeholder. A test keeps the shipped page current.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

COMFY_CORE: dict[str, tuple[str, ...]] = {
    "nodes.py": (
        "CheckpointLoaderSimple", "CheckpointLoader", "DiffusersLoader", "unCLIPCheckpointLoader",
        "VAELoader", "LoraLoader", "LoraLoaderModelOnly", "CLIPLoader", "DualCLIPLoader",
        "UNETLoader", "CLIPVisionLoader", "ControlNetLoader", "DiffControlNetLoader",
        "StyleModelLoader", "GLIGENLoader",
        "CLIPSetLastLayer", "CLIPTextEncode", "CLIPVisionEncode", "unCLIPConditioning",
        "StyleModelApply", "ControlNetApply", "ControlNetApplyAdvanced", "GLIGENTextBoxApply",
        "ConditioningAverage", "ConditioningCombine", "ConditioningConcat",
        "ConditioningSetArea", "ConditioningSetAreaPercentage", "ConditioningSetAreaStrength",
        "ConditioningSetMask", "ConditioningSetTimestepRange", "ConditioningZeroOut",
        "InpaintModelConditioning", "KSampler", "KSamplerAdvanced", "EmptyLatentImage",
        "LatentUpscale", "LatentUpscaleBy", "LatentFromBatch", "RepeatLatentBatch",
        "LatentComposite", "LatentBlend", "LatentRotate", "LatentFlip", "LatentCrop",
        "SetLatentNoiseMask", "VAEDecode", "VAEDecodeTiled", "VAEEncode", "VAEEncodeTiled",
        "VAEEncodeForInpaint", "LoadLatent", "SaveLatent", "SaveImage", "PreviewImage",
        "LoadImage", "LoadImageMask", "ImageScale", "ImageScaleBy", "ImageInvert", "ImageBatch",
        "ImagePadForOutpaint", "EmptyImage",
    ),
    "nodes_custom_sampler": (
        "SamplerCustom", "SamplerCustomAdvanced", "KSamplerSelect", "BasicScheduler",
        "KarrasScheduler", "ExponentialScheduler", "PolyexponentialScheduler", "VPScheduler",
        "SDTurboScheduler", "BetaSamplingScheduler", "SplitSigmas", "SplitSigmasDenoise",
        "FlipSigmas", "SamplerEulerAncestral", "SamplerDPMPP_2S_Ancestral", "SamplerLMS",
        "SamplerDPMPP_2M_SDE", "SamplerDPMPP_3M_SDE", "SamplerDPMPP_SDE", "RandomNoise",
        "DisableNoise", "AddNoise", "BasicGuider", "CFGGuider", "DualCFGGuider",
    ),
    "nodes_clip_sdxl": ("CLIPTextEncodeSDXL", "CLIPTextEncodeSDXLRefiner"),
    "nodes_model_merging": (
        "ModelMergeSimple", "ModelMergeBlocks", "ModelMergeSubtract", "ModelMergeAdd",
        "CLIPMergeSimple", "CLIPMergeSubtract", "CLIPMergeAdd", "CheckpointSave", "ModelSave",
        "CLIPSave", "VAESave", "ModelMergeSD1", "ModelMergeSD2", "ModelMergeSDXL",
    ),
    "nodes_mask": (
        "LatentCompositeMasked", "ImageCompositeMasked", "MaskToImage", "ImageToMask",
        "ImageColorToMask", "SolidMask", "InvertMask", "CropMask", "MaskComposite",
        "FeatherMask", "GrowMask", "ThresholdMask",
    ),
    "nodes_latent": (
        "LatentAdd", "LatentSubtract", "LatentMultiply", "LatentInterpolate", "LatentBatch",
        "LatentBatchSeedBehavior",
    ),
    "nodes_images": (
        "ImageCrop", "RepeatImageBatch", "ImageFromBatch", "ImageAddNoise", "SaveAnimatedWEBP",
        "SaveAnimatedPNG", "GetImageSize", "ImageRotate", "ImageFlip", "ImageStitch",
    ),
    "nodes_post_processing": (
        "ImageBlend", "ImageBlur", "ImageQuantize", "ImageSharpen", "ImageScaleToTotalPixels",
    ),
    "nodes_compositing": (
        "PorterDuffImageComposite", "SplitImageWithAlpha", "JoinImageWithAlpha",
    ),
    "nodes_upscale_model": ("UpscaleModelLoader", "ImageUpscaleWithModel"),
    "nodes_canny": ("Canny",),
    "nodes_morphology": ("Morphology",),
    "nodes_model_advanced": (
        "ModelSamplingDiscrete", "ModelSamplingContinuousEDM", "RescaleCFG",
    ),
    "nodes_freelunch": ("FreeU", "FreeU_V2"),
    "nodes_sag": ("SelfAttentionGuidance",),
    "nodes_perpneg": ("PerpNeg",),
    "nodes_tomesd": ("TomePatchModel",),
    "nodes_rebatch": ("RebatchLatents", "RebatchImages"),
    "nodes_ip2p": ("InstructPixToPixConditioning",),
    "nodes_differential_diffusion": ("DifferentialDiffusion",),
    "nodes_pag": ("PerturbedAttentionGuidance",),
    "nodes_hypernetwork": ("HypernetworkLoader",),
    "nodes_primitive": (
        "PrimitiveInt", "PrimitiveFloat", "PrimitiveString", "PrimitiveStringMultiline",
        "PrimitiveBoolean",
    ),
    "frontend": ("Note", "MarkdownNote", "PrimitiveNode", "Reroute"),
}  # fmt: skip

#: Nodes the importer turns into something other than a node of the same name.
FRONTEND_ITEMS = {
    "Note": "a note",
    "MarkdownNote": "a note",
    "PrimitiveNode": "the widget it feeds",
    "Reroute": "a reroute",
}


def coverage() -> dict[str, list[tuple[str, str, str]]]:
    """Per ComfyUI module: (node type, "has" | "maps" | "lacks", what it becomes)."""
    from nodes import build_registry
    from nodes.interop.comfyui.mapping import mapping_for

    registry = build_registry(entry_points=())
    table: dict[str, list[tuple[str, str, str]]] = {}
    for module, names in COMFY_CORE.items():
        rows = table.setdefault(module, [])
        for name in dict.fromkeys(names):
            mapping = mapping_for(name, registry)
            if name in FRONTEND_ITEMS:
                rows.append((name, "maps", FRONTEND_ITEMS[name]))
            elif mapping is None:
                rows.append((name, "lacks", ""))
            elif mapping.our_type == name:
                rows.append((name, "has", ""))
            else:
                rows.append((name, "maps", f"`{mapping.our_type}`"))
    return table


def pack_coverage() -> list[tuple[str, str, str]]:
    """The third-party node packs' types the importer maps: (pack, node type, our type)."""
    from nodes import build_registry
    from nodes.interop.comfyui.mapping import active_mappings

    registry = build_registry(entry_points=())
    return sorted((m.pack, m.comfy_type, m.our_type) for m in active_mappings(registry) if m.pack)


def markdown(
    table: dict[str, list[tuple[str, str, str]]],
    packs: list[tuple[str, str, str]] | None = None,
) -> str:
    counts = {"has": 0, "maps": 0, "lacks": 0}
    for rows in table.values():
        for _, state, _ in rows:
            counts[state] += 1
    total = sum(counts.values())
    lines = [
        "# ComfyUI core nodes in LatentLoom",
        "",
        "ComfyUI's core nodes for Stable Diffusion 1.x, 2.x and SDXL, by the module that defines "
        "them: whether LatentLoom **has** a node of the same name (same inputs and widget order, "
        "so workflows import and export), **maps** it to one of its own, or **lacks** it (a "
        "workflow using it opens with a placeholder you can replace). Generated by "
        "`python tools/comfyui_coverage.py`.",
        "",
        f"Of {total}: {counts['has']} had, {counts['maps']} mapped, {counts['lacks']} lacking.",
        "",
        "| ComfyUI module | node | in LatentLoom |",
        "|---|---|---|",
    ]
    for module, rows in table.items():
        for name, state, target in rows:
            shown = {"has": "has", "maps": f"maps to {target}", "lacks": "**lacks**"}[state]
            lines.append(f"| {module} | `{name}` | {shown} |")
    lines += [
        "",
        "## Node types from third-party node packs",
        "",
        "Node types that ComfyUI gets from node packs (installed into its `custom_nodes`) and "
        "that open as LatentLoom nodes of its own (**has**: of the same name), with no pack needed "
        "here.",
        "",
        "| node pack | node | in LatentLoom |",
        "|---|---|---|",
    ]
    for pack, name, ours in pack_coverage() if packs is None else packs:
        shown = "has" if ours == name else f"maps to `{ours}`"
        lines.append(f"| {pack} | `{name}` | {shown} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(coverage()), end="")
