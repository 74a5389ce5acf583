"""ComfyUI's loaders, image prompts, ControlNets and model merges, as LatentLoom maps them."""

from __future__ import annotations

from nodes.interop.comfyui.type_mapping import TypeMapping, entry

#: The node pack ComfyUI gets its IP-Adapter nodes from.
IPADAPTER_PLUS = "ComfyUI_IPAdapter_plus"

MODEL_MAPPINGS: tuple[TypeMapping, ...] = (
    # loaders
    entry("CheckpointLoaderSimple", "LoadCheckpoint", ("ckpt_name",), title="Load Checkpoint"),
    entry(
        "CheckpointLoader",
        "LoadCheckpoint",
        ("config_name", "ckpt_name"),
        rename={"config_name": None},
        title="Load Checkpoint With Config (DEPRECATED)",
        export=False,
    ),
    entry("VAELoader", "LoadVAE", ("vae_name",), title="Load VAE"),
    entry(
        "LoraLoader",
        "LoadLoRA",
        ("lora_name", "strength_model", "strength_clip"),
        title="Load LoRA",
    ),
    entry(
        "LoraLoaderModelOnly",
        widgets=("lora_name", "strength_model"),
        title="LoraLoaderModelOnly",
    ),
    entry("CLIPSetLastLayer", widgets=("stop_at_clip_layer",), title="CLIP Set Last Layer"),
    # image prompts
    entry("CLIPVisionLoader", widgets=("clip_name",), title="Load CLIP Vision"),
    entry("CLIPVisionEncode", widgets=("crop",), title="CLIP Vision Encode"),
    entry("unCLIPCheckpointLoader", widgets=("ckpt_name",), title="unCLIPCheckpointLoader"),
    entry(
        "unCLIPConditioning",
        widgets=("strength", "noise_augmentation"),
        title="unCLIPConditioning",
    ),
    # IP-Adapters (nodes.ip_adapter), from ComfyUI's IPAdapter node pack. LatentLoom's weight
    # multiplies the image attention in every layer: the pack's "linear" with "V only" scaling,
    # its first version's "original". Its other options (v1's noise and unfold_batch, v2's
    # combine_embeds, embeds_scaling and negative image) have no counterpart and are left out.
    entry(
        "IPAdapterModelLoader",
        widgets=("ipadapter_file",),
        title="IPAdapter Model Loader",
        pack=IPADAPTER_PLUS,
    ),
    entry(
        "IPAdapterApply",
        widgets=("weight", "noise", "weight_type", "start_at", "end_at", "unfold_batch"),
        rename={"noise": None, "unfold_batch": None},
        title="Apply IPAdapter",
        pack=IPADAPTER_PLUS,
    ),
    entry(
        "IPAdapterAdvanced",
        "IPAdapterApply",
        ("weight", "weight_type", "combine_embeds", "start_at", "end_at", "embeds_scaling"),
        rename={
            "combine_embeds": None,
            "embeds_scaling": None,
            "image_negative": None,
        },
        title="IPAdapter Advanced",
        pack=IPADAPTER_PLUS,
        export=False,
    ),
    entry(
        "IPAdapter",
        "IPAdapterApply",
        ("weight", "start_at", "end_at", "weight_type"),
        title="IPAdapter",
        pack=IPADAPTER_PLUS,
        export=False,
    ),
    # ControlNets and T2I-Adapters (nodes.controlnet)
    entry("ControlNetLoader", widgets=("control_net_name",), title="Load ControlNet Model"),
    entry(
        "DiffControlNetLoader", widgets=("control_net_name",), title="Load ControlNet Model (diff)"
    ),
    entry("T2IAdapterLoader", widgets=("t2i_adapter_name",), title="Load T2I-Adapter Model"),
    entry("ControlNetApply", widgets=("strength",), title="Apply ControlNet"),
    entry(
        "ControlNetApplyAdvanced",
        widgets=("strength", "start_percent", "end_percent"),
        title="Apply ControlNet (Advanced)",
    ),
    entry("Canny", widgets=("low_threshold", "high_threshold"), title="Canny"),
    # merging (nodes.merging)
    entry("ModelMergeSimple", widgets=("ratio",), title="ModelMergeSimple"),
    entry("CLIPMergeSimple", widgets=("ratio",), title="CLIPMergeSimple"),
)
