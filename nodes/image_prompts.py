"""Image prompts: CLIP image encoders, Stable unCLIP and T2I-Adapter style models, with
ComfyUI's node names and widgets (CLIPVisionLoader, CLIPVisionEncode, unCLIPCheckpointLoader,
unCLIPConditioning, StyleModelLoader, StyleModelApply), so its workflows import and run.
"""

from __future__ import annotations

from typing import Any

from core.diffusion.model_paths import ModelKind, ModelPaths
from core.graph import types as t
from core.graph.spec import NodeSpec, Output, SocketInput, WidgetInput
from nodes.models import _dtype, _Loaders, _node_error, _stop_if_cancelled
from nodes.placement import compute_device, place

CROPS = ("center", "none")
STRENGTH_TYPES = ("multiply", "attn_bias")


class _ImagePromptLoaders(_Loaders):
    """The image-encoder and unCLIP loaders, bound to one set of model folders."""

    def load_clip_vision(self, ctx: Any, clip_name: str) -> Any:
        from core.diffusion import devices
        from core.diffusion.clip_vision import load_clip_vision
        from core.diffusion.errors import ModelLoadError

        path = self._resolve(ModelKind.CLIP_VISION, clip_name, "clip_name")
        dtype = devices.pick_aux_dtype(compute_device(ctx))
        try:
            return load_clip_vision(path, dtype)
        except ModelLoadError as exc:
            raise _node_error(exc, "clip_name") from None

    def load_unclip_checkpoint(self, ctx: Any, ckpt_name: str) -> tuple[Any, Any, Any, Any]:
        import torch

        from core.diffusion import devices
        from core.diffusion.errors import ModelLoadError
        from core.diffusion.loading import LoadOverrides
        from core.diffusion.unclip import load_unclip_checkpoint

        path = self._resolve(ModelKind.CHECKPOINTS, ckpt_name, "ckpt_name")
        device = compute_device(ctx)
        aux = devices.pick_aux_dtype(device, _dtype("auto"))
        overrides = LoadOverrides(dtype=devices.pick_dtype(device), text_dtype=aux, vae_dtype=aux)
        try:
            loaded = load_unclip_checkpoint(path, overrides, _stop_if_cancelled(ctx))
        except ModelLoadError as exc:
            raise _node_error(exc, "ckpt_name") from None
        torch.nn.Module.to(loaded.clip_vision.model, dtype=aux)
        parts = loaded.checkpoint
        return parts.model, parts.clip, parts.vae, loaded.clip_vision

    def load_style_model(self, ctx: Any, style_model_name: str) -> Any:
        from core.diffusion import devices
        from core.diffusion.errors import ModelLoadError
        from core.diffusion.style_model import load_style_model

        path = self._resolve(ModelKind.STYLE_MODELS, style_model_name, "style_model_name")
        try:
            return load_style_model(path, devices.pick_aux_dtype(compute_device(ctx)))
        except ModelLoadError as exc:
            raise _node_error(exc, "style_model_name") from None


def _encode(ctx: Any, clip_vision: Any, image: Any, crop: str = "center") -> Any:
    from core.diffusion.clip_vision import encode_images

    place(ctx, clip_vision.model)
    try:
        return encode_images(clip_vision, image, crop)  # type: ignore[arg-type]
    except ValueError as exc:
        raise _node_error(exc, "image") from None


def _unclip_conditioning(
    ctx: Any,
    conditioning: Any,
    clip_vision_output: Any,
    strength: float,
    noise_augmentation: float,
) -> Any:
    from core.diffusion.conditioning import Conditioning, with_extra
    from core.diffusion.unclip import SLOT, add_images

    if strength == 0:
        return conditioning
    embeds = clip_vision_output.image_embeds
    return Conditioning(
        tuple(
            with_extra(e, SLOT, add_images(e.extras, embeds, strength, noise_augmentation))
            for e in conditioning
        )
    )


def _style_model_apply(
    ctx: Any,
    conditioning: Any,
    style_model: Any,
    clip_vision_output: Any,
    strength: float = 1.0,
    strength_type: str = "multiply",
) -> Any:
    from core.diffusion.style_model import apply_style, style_tokens

    place(ctx, style_model.adapter)
    try:
        tokens = style_tokens(style_model, clip_vision_output.last_hidden_state)
    except ValueError as exc:
        raise _node_error(exc, "clip_vision_output") from None
    try:
        return apply_style(conditioning, tokens, strength, strength_type)  # type: ignore[arg-type]
    except ValueError as exc:
        field = "strength_type" if "attn_bias" in str(exc) else "conditioning"
        raise _node_error(exc, field) from None


def specs(paths: ModelPaths) -> tuple[NodeSpec, ...]:
    """The image-prompt specs, bound to ``paths``."""
    loaders = _ImagePromptLoaders(paths)
    vision, ckpt, style = ModelKind.CLIP_VISION, ModelKind.CHECKPOINTS, ModelKind.STYLE_MODELS
    return (
        NodeSpec(
            "CLIPVisionLoader",
            "Load CLIP Vision",
            "loaders",
            loaders.load_clip_vision,
            inputs=(
                WidgetInput(
                    "clip_name",
                    t.COMBO,
                    "",
                    choices_from=vision.value,
                    description="a CLIP image encoder file in clip_vision (ViT-L/14, ViT-H/14 "
                    "or ViT-bigG/14)",
                ),
            ),
            outputs=(Output("CLIP_VISION", t.CLIP_VISION),),
            description="Loads a CLIP image encoder (ViT-L/14, ViT-H/14 or ViT-bigG/14, in "
            "transformers' or OpenCLIP's layout) for CLIP Vision Encode. IP-Adapter and "
            "unCLIP models each need the encoder they were trained with: ViT-H for the SD 1.5 "
            "IP-Adapters and SD 2.1 unCLIP-H, ViT-bigG for SDXL's.",
            fingerprint=loaders.fingerprint(vision, "clip_name"),
            check=loaders.problems(vision, "clip_name"),
        ),
        NodeSpec(
            "CLIPVisionEncode",
            "CLIP Vision Encode",
            "conditioning",
            _encode,
            inputs=(
                SocketInput("clip_vision", t.CLIP_VISION),
                SocketInput("image", t.IMAGE),
                WidgetInput(
                    "crop",
                    t.COMBO,
                    "center",
                    choices=CROPS,
                    description="center: cut the middle square as CLIP does; none: squash the "
                    "whole picture to a square",
                ),
            ),
            outputs=(Output("CLIP_VISION_OUTPUT", t.CLIP_VISION_OUTPUT),),
            description="Encodes pictures with a CLIP image encoder, for unCLIP Conditioning "
            "or an IP-Adapter: the picture becomes a prompt. CLIP sees a 224-pixel square; "
            "use crop none when the subject is near an edge of a wide picture.",
        ),
        NodeSpec(
            "unCLIPCheckpointLoader",
            "unCLIP Checkpoint Loader",
            "loaders",
            loaders.load_unclip_checkpoint,
            inputs=(
                WidgetInput(
                    "ckpt_name",
                    t.COMBO,
                    "",
                    choices_from=ckpt.value,
                    description="an SD 2.1 unCLIP checkpoint (sd21-unclip-h or -l)",
                ),
            ),
            outputs=(
                Output("MODEL", t.MODEL),
                Output("CLIP", t.CLIP),
                Output("VAE", t.VAE),
                Output("CLIP_VISION", t.CLIP_VISION),
            ),
            description="Loads a Stable Diffusion 2.1 unCLIP checkpoint: a model that takes a "
            "picture's CLIP image embedding as well as a prompt and makes variations of the "
            "picture, with the image encoder stored in the checkpoint.",
            fingerprint=loaders.fingerprint(ckpt, "ckpt_name"),
            check=loaders.problems(ckpt, "ckpt_name"),
        ),
        NodeSpec(
            "unCLIPConditioning",
            "unCLIP Conditioning",
            "conditioning",
            _unclip_conditioning,
            inputs=(
                SocketInput("conditioning", t.CONDITIONING),
                SocketInput("clip_vision_output", t.CLIP_VISION_OUTPUT),
                WidgetInput("strength", t.FLOAT, 1.0, min=-10.0, max=10.0, step=0.01),
                WidgetInput(
                    "noise_augmentation",
                    t.FLOAT,
                    0.0,
                    min=0.0,
                    max=1.0,
                    step=0.01,
                    description="noise added to the picture's embedding: higher follows the "
                    "picture more loosely and the prompt more",
                ),
            ),
            outputs=(Output("CONDITIONING", t.CONDITIONING),),
            description="Adds a picture to a prompt for an unCLIP model: the result varies "
            "the picture (with an empty prompt) or mixes it with the prompt. Chain several to "
            "mix pictures, each with its own strength. On an SDXL base model this is "
            '"revision": the picture\'s embedding (encode it with the ViT-bigG CLIP vision '
            "model) takes the place of the prompt's pooled embedding, while the prompt's "
            "tokens still steer the details. Other models without the image input ignore it.",
        ),
        NodeSpec(
            "StyleModelLoader",
            "Load Style Model",
            "loaders",
            loaders.load_style_model,
            inputs=(
                WidgetInput(
                    "style_model_name",
                    t.COMBO,
                    "",
                    choices_from=style.value,
                    description="a T2I-Adapter style model in style_models "
                    "(t2iadapter_style_sd14v1, coadapter-style-sd15v1)",
                ),
            ),
            outputs=(Output("STYLE_MODEL", t.STYLE_MODEL),),
            description="Loads a T2I-Adapter style model for Apply Style Model: it turns a "
            "picture's CLIP ViT-L/14 features into extra prompt tokens, for SD 1.x models.",
            fingerprint=loaders.fingerprint(style, "style_model_name"),
            check=loaders.problems(style, "style_model_name"),
        ),
        NodeSpec(
            "StyleModelApply",
            "Apply Style Model",
            "conditioning/style_model",
            _style_model_apply,
            inputs=(
                SocketInput("conditioning", t.CONDITIONING),
                SocketInput("style_model", t.STYLE_MODEL),
                SocketInput(
                    "clip_vision_output",
                    t.CLIP_VISION_OUTPUT,
                    description="the style picture through CLIP Vision Encode (ViT-L/14)",
                ),
                WidgetInput(
                    "strength",
                    t.FLOAT,
                    1.0,
                    min=0.0,
                    max=1000.0,
                    step=0.001,
                    description="how strongly the style tokens speak",
                ),
                WidgetInput(
                    "strength_type",
                    t.COMBO,
                    "multiply",
                    choices=STRENGTH_TYPES,
                    description="multiply: scale the style tokens by the strength; attn_bias: "
                    "only at strength 1 here",
                ),
            ),
            outputs=(Output("CONDITIONING", t.CONDITIONING),),
            description="Adds a picture's style to a prompt: the style model makes a few "
            "tokens from the picture's CLIP features and appends them to the prompt's, so the "
            "picture's colours and textures carry over while the prompt sets the subject. Use "
            "it on the positive prompt; several pictures mix.",
        ),
    )
