"""ComfyUI's latent, image, mask and primitive nodes, as LatentLoom maps them."""

from __future__ import annotations

from nodes.interop.comfyui.type_mapping import UPLOAD_SKIPPED, TypeMapping, entry

IMAGE_MAPPINGS: tuple[TypeMapping, ...] = (
    # latents
    entry(
        "EmptyLatentImage", widgets=("width", "height", "batch_size"), title="Empty Latent Image"
    ),
    entry("VAEDecode", title="VAE Decode"),
    entry(
        "VAEDecodeTiled",
        widgets=("tile_size", "overlap", "temporal_size", "temporal_overlap"),
        rename={"temporal_size": None, "temporal_overlap": None},
        title="VAE Decode (Tiled)",
    ),
    entry("VAEEncode", title="VAE Encode"),
    entry("VAEEncodeForInpaint", widgets=("grow_mask_by",), title="VAE Encode (for Inpainting)"),
    entry("SetLatentNoiseMask", title="Set Latent Noise Mask"),
    entry(
        "LatentUpscale",
        widgets=("upscale_method", "width", "height", "crop"),
        title="Upscale Latent",
    ),
    entry("LatentUpscaleBy", widgets=("upscale_method", "scale_by"), title="Upscale Latent By"),
    entry("LatentBatch", title="Latent Batch"),
    entry("LatentFromBatch", widgets=("batch_index", "length"), title="Latent From Batch"),
    entry(
        "LatentBatchSeedBehavior",
        widgets=("seed_behavior",),
        title="LatentBatchSeedBehavior",
    ),
    entry("RepeatLatentBatch", widgets=("amount",), title="Repeat Latent Batch"),
    entry("LatentInterpolate", widgets=("ratio",), title="LatentInterpolate"),
    # images
    entry("LoadImage", widgets=("image", "upload"), rename=UPLOAD_SKIPPED, title="Load Image"),
    entry("SaveImage", widgets=("filename_prefix",), title="Save Image"),
    entry("PreviewImage", title="Preview Image"),
    entry(
        "ImageScale",
        widgets=("upscale_method", "width", "height", "crop"),
        title="Upscale Image",
    ),
    entry("ImageScaleBy", widgets=("upscale_method", "scale_by"), title="Upscale Image By"),
    entry("UpscaleModelLoader", widgets=("model_name",), title="Load Upscale Model"),
    entry("ImageUpscaleWithModel", title="Upscale Image (using Model)"),
    entry("ImageInvert", title="Invert Image"),
    # masks
    entry(
        "LoadImageMask",
        widgets=("image", "channel", "upload"),
        rename=UPLOAD_SKIPPED,
        title="Load Image (as Mask)",
    ),
    entry("SolidMask", widgets=("value", "width", "height"), title="SolidMask"),
    entry("InvertMask", title="InvertMask"),
    entry("GrowMask", widgets=("expand", "tapered_corners"), title="GrowMask"),
    entry("MaskComposite", widgets=("x", "y", "operation"), title="MaskComposite"),
    entry("ImageToMask", widgets=("channel",), title="Convert Image to Mask"),
    entry("MaskToImage", title="Convert Mask to Image"),
    entry("CropMask", widgets=("x", "y", "width", "height"), title="CropMask"),
    # primitives and text
    entry(
        "StringConcatenate",
        "TextJoin",
        ("string_a", "string_b", "delimiter"),
        rename={"string_a": "a", "string_b": "b", "delimiter": "separator"},
        title="Concatenate",
    ),
    entry("PrimitiveInt", "Int", ("value",), seeds=("value",), title="Int"),
    entry("PrimitiveFloat", "Float", ("value",), title="Float"),
    entry("PrimitiveString", "String", ("value",), title="String"),
    entry(
        "PrimitiveStringMultiline",
        "String",
        ("value",),
        title="String (Multiline)",
        export=False,
    ),
    entry("PrimitiveBoolean", "Boolean", ("value",), title="Boolean"),
    # ComfyUI core nodes that map by name once this install has a node of that name (with
    # these widgets): the lookup in ``mapping`` skips an entry whose type the registry lacks.
    entry("LatentComposite", widgets=("x", "y", "feather"), title="Latent Composite"),
    entry(
        "LatentCompositeMasked", widgets=("x", "y", "resize_source"), title="LatentCompositeMasked"
    ),
    entry("LatentFlip", widgets=("flip_method",), title="Flip Latent"),
    entry("LatentRotate", widgets=("rotation",), title="Rotate Latent"),
    entry("LatentCrop", widgets=("width", "height", "x", "y"), title="Crop Latent"),
    entry("EmptyImage", widgets=("width", "height", "batch_size", "color"), title="EmptyImage"),
    entry("ImageBatch", title="Batch Images"),
    entry("ImageCrop", widgets=("width", "height", "x", "y"), title="Image Crop"),
    entry(
        "ImagePadForOutpaint",
        widgets=("left", "top", "right", "bottom", "feathering"),
        title="Pad Image for Outpainting",
    ),
    entry("ImageBlend", widgets=("blend_factor", "blend_mode"), title="Image Blend"),
    entry("ImageBlur", widgets=("blur_radius", "sigma"), title="Image Blur"),
    entry("ImageSharpen", widgets=("sharpen_radius", "sigma", "alpha"), title="Image Sharpen"),
    entry("FeatherMask", widgets=("left", "top", "right", "bottom"), title="FeatherMask"),
    entry("ThresholdMask", widgets=("value",), title="ThresholdMask"),
)
