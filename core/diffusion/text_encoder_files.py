"""Standalone text-encoder files (ComfyUI's ``text_encoders`` folder, CLIPLoader's ``type``):
what architecture a file holds, read from its tensor names and shapes alone.

LatentLoom's text encoders are the CLIP ones of SD 1.x, SD 2.x and SDXL; of standalone files
it reads SD 1.x's CLIP ViT-L/14 (``clip_l.safetensors``, type ``stable_diffusion``). The files
CLIPLoader reads are mostly the language models of newer, flow-matching families (Qwen3 for
Z-Image, Qwen2.5-VL for Qwen-Image, T5 for SD3, Wan and others). Loading one must say plainly
which file holds what, for which family, and that LatentLoom does not run it, instead of
building a text encoder that would encode prompts into nothing the model knows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from core.diffusion.errors import ModelLoadError
from core.diffusion.model_paths import SAFETENSORS_SUFFIXES

#: ComfyUI's CLIPLoader ``type`` choices, in its order, with the model family each is for.
CLIP_TYPE_FAMILIES: dict[str, str] = {
    "stable_diffusion": "Stable Diffusion",
    "stable_cascade": "Stable Cascade",
    "sd3": "Stable Diffusion 3",
    "stable_audio": "Stable Audio",
    "mochi": "Mochi",
    "ltxv": "LTX-Video",
    "pixart": "PixArt",
    "cosmos": "Cosmos",
    "lumina2": "Lumina 2 / Z-Image",
    "wan": "Wan",
    "hidream": "HiDream",
    "chroma": "Chroma",
    "ace": "ACE-Step",
    "omnigen2": "OmniGen 2",
    "qwen_image": "Qwen-Image",
    "hunyuan_image": "HunyuanImage",
    "flux2": "FLUX.2",
    "ovis": "Ovis-Image",
    "longcat_image": "LongCat-Image",
    "cogvideox": "CogVideoX",
    "lens": "Lens",
    "pixeldit": "PixelDiT",
}
CLIP_TYPES: tuple[str, ...] = tuple(CLIP_TYPE_FAMILIES)

_LLM_LAYER = re.compile(r"^(?:model\.)?(?:language_model\.)?(?:model\.)?layers\.(\d+)\.")
_CLIP_LAYER = re.compile(r"^(?:text_model\.encoder\.layers|transformer\.resblocks)\.(\d+)\.")
_T5_BLOCK = re.compile(r"^encoder\.block\.(\d+)\.")
#: In transformers' names, SD 1.x's CLIP ViT-L/14 has no projection (SDXL's OpenCLIP-bigG
#: has one) and is not 1024 wide (SD 2.x's OpenCLIP-H is).
_HF_CLIP_EMBEDDING = "text_model.embeddings.token_embedding.weight"
_HF_CLIP_PROJECTION = "text_projection.weight"
_OPENCLIP_H_WIDTH = 1024


def architecture(shapes: Mapping[str, tuple[int, ...]]) -> str:
    """What a text-encoder file holds, in words ("a Qwen3 language model, 36 layers"), from
    its tensor names and shapes; "no text encoder LatentLoom recognises" when nothing fits."""
    names = list(shapes)
    llm = {int(m.group(1)) for k in names if (m := _LLM_LAYER.match(k))}
    if llm and any(".self_attn.q_proj." in k for k in names):
        if any(k.startswith(("visual.", "model.visual.")) for k in names):
            kind = "Qwen2.5-VL language model (with its vision tower)"
        elif any(".self_attn.q_norm." in k for k in names):
            kind = "Qwen3 language model"
        elif any(".pre_feedforward_layernorm." in k for k in names):
            kind = "Gemma 2 language model"
        elif any(k.endswith(".self_attn.q_proj.bias") for k in names):
            kind = "Qwen2 language model"
        else:
            kind = "Llama-style language model"
        return f"a {kind}, {len(llm)} layers"
    t5 = {int(m.group(1)) for k in names if (m := _T5_BLOCK.match(k))}
    if t5 and any(".SelfAttention." in k for k in names):
        return f"a T5 encoder, {len(t5)} blocks"
    clip = {int(m.group(1)) for k in names if (m := _CLIP_LAYER.match(k))}
    if clip:
        width = next(
            (s[-1] for k, s in shapes.items() if k.endswith("token_embedding.weight")), None
        )
        size = f", width {width}" if width else ""
        return f"a CLIP text encoder, {len(clip)} layers{size}"
    return "no text encoder LatentLoom recognises"


def tensor_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Every tensor's name and shape; a .safetensors file is read from its header only."""
    if path.suffix.lower() in SAFETENSORS_SUFFIXES and path.is_file():
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118
        except (SafetensorError, OSError, ValueError) as exc:
            raise ModelLoadError(
                path,
                f"is not a readable .safetensors file ({exc}).",
                "It is truncated, corrupt or not a model; download or copy it again.",
            ) from exc
    from core.diffusion.checkpoint_io import read_state_dict

    return {k: tuple(v.shape) for k, v in read_state_dict(path).items()}


def load_text_encoder_file(path: Path, clip_type: str, dtype: Any = None) -> Any:
    """The CLIP socket value for a standalone text encoder of ``clip_type``: SD 1.x's CLIP
    ViT-L/14 for ``stable_diffusion``. Any other file or type raises ``ModelLoadError`` naming
    the file, what it holds and the family it is for."""
    family = CLIP_TYPE_FAMILIES.get(clip_type)
    if family is None:
        raise ModelLoadError(
            path,
            f"type '{clip_type}' is not one of ComfyUI's CLIP types.",
            f"Choose one of: {', '.join(CLIP_TYPES)}.",
        )
    shapes = tensor_shapes(path)
    held = architecture(shapes)
    if clip_type == "stable_diffusion":
        embedding = shapes.get(_HF_CLIP_EMBEDDING)
        projected = _HF_CLIP_PROJECTION in shapes
        if embedding is not None and not projected and embedding[-1] != _OPENCLIP_H_WIDTH:
            import torch

            from core.diffusion.loading import load_sd1_text_encoder

            return load_sd1_text_encoder(path, dtype or torch.float32)
        problem = (
            f"holds {held}. Of standalone Stable Diffusion text encoders LatentLoom reads SD "
            f"1.x's CLIP ViT-L/14 (transformers' names); SD 2.x's and SDXL's come from their "
            f"checkpoints."
        )
        remedy = "Use the CLIP output of Load Checkpoint with the checkpoint this file came from."
    else:
        problem = (
            f"holds {held}, for {family} models (type '{clip_type}'). LatentLoom does not "
            f"support the {family} family: it runs SD 1.x, SD 2.x and SDXL models."
        )
        remedy = "Run this workflow in ComfyUI, or rebuild it around a Stable Diffusion checkpoint."
    raise ModelLoadError(path, problem, remedy)
