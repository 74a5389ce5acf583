"""Tiny CLIP image encoders in the key layouts of published files, for image-prompt tests.

``tiny_clip_vision`` builds a random ``CLIPVisionModelWithProjection`` (32 wide, 2 layers,
32-pixel pictures in 8-pixel patches); ``write_clip_vision_file`` stores it as transformers
names it (``vision_model.*``, as ComfyUI's clip_vision_g and LAION's model.safetensors) or as
OpenCLIP does (``visual.*`` with fused q/k/v and a ``proj`` matrix, as in open_clip files and
inside Stable unCLIP checkpoints). ``openclip_visual_layout`` lists the OpenCLIP names and
shapes of a full-size encoder, written from the published architecture.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

from tests.helpers.tiny_models import _randomise

TINY_VISION = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 8,  # the loader's rule for widths it has no config of
    "image_size": 32,
    "patch_size": 8,
    "projection_dim": 24,
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-5,
}


def tiny_clip_vision(seed: int = 0, **changes: int) -> CLIPVisionModelWithProjection:
    """A random tiny CLIP image encoder (``changes`` override ``TINY_VISION``)."""
    model = CLIPVisionModelWithProjection(CLIPVisionConfig(**{**TINY_VISION, **changes}))
    _randomise(model, torch.Generator().manual_seed(seed))
    return model.eval()


def hf_to_openclip(state: dict[str, torch.Tensor], layers: int) -> dict[str, torch.Tensor]:
    """transformers' vision tensors under OpenCLIP's ``visual.*`` names."""
    v = "vision_model."
    out = {
        "visual.class_embedding": state[v + "embeddings.class_embedding"],
        "visual.positional_embedding": state[v + "embeddings.position_embedding.weight"],
        "visual.conv1.weight": state[v + "embeddings.patch_embedding.weight"],
        "visual.ln_pre.weight": state[v + "pre_layrnorm.weight"],
        "visual.ln_pre.bias": state[v + "pre_layrnorm.bias"],
        "visual.ln_post.weight": state[v + "post_layernorm.weight"],
        "visual.ln_post.bias": state[v + "post_layernorm.bias"],
        "visual.proj": state["visual_projection.weight"].t().contiguous(),
    }
    for i in range(layers):
        hf, oc = f"{v}encoder.layers.{i}.", f"visual.transformer.resblocks.{i}."
        for kind in ("weight", "bias"):
            out[f"{oc}attn.in_proj_{kind}"] = torch.cat(
                [state[f"{hf}self_attn.{n}_proj.{kind}"] for n in "qkv"]
            )
            for ours, theirs in (
                ("ln_1", "layer_norm1"),
                ("ln_2", "layer_norm2"),
                ("attn.out_proj", "self_attn.out_proj"),
                ("mlp.c_fc", "mlp.fc1"),
                ("mlp.c_proj", "mlp.fc2"),
            ):
                out[f"{oc}{ours}.{kind}"] = state[f"{hf}{theirs}.{kind}"]
    return out


def clip_vision_tensors(
    model: CLIPVisionModelWithProjection, layout: str = "hf", prefix: str = ""
) -> dict[str, torch.Tensor]:
    """The encoder's tensors in ``layout`` ("hf" or "openclip"), each key after ``prefix``."""
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    if layout == "openclip":
        state = hf_to_openclip(state, int(model.config.num_hidden_layers))
    return {prefix + k: v for k, v in state.items()}


def write_clip_vision_file(
    model: CLIPVisionModelWithProjection, path: Path, layout: str = "hf"
) -> Path:
    """The encoder as a ``.safetensors`` file, or a pickled state dict for other suffixes."""
    tensors = clip_vision_tensors(model, layout)
    if layout == "hf":  # files written by transformers 4 carry the position ids
        positions = (model.config.image_size // model.config.patch_size) ** 2 + 1
        tensors["vision_model.embeddings.position_ids"] = torch.arange(positions)[None]
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".safetensors":
        save_file(tensors, path)
    else:
        torch.save(tensors, path)
    return path


def openclip_visual_layout(
    width: int, layers: int, mlp: int, projection: int, patch: int = 14, image: int = 224
) -> dict[str, tuple[int, ...]]:
    """Names and shapes of a full-size OpenCLIP ViT's ``visual.*`` tensors (open_clip's
    VisionTransformer: conv1 without bias, class and positional embeddings, ln_pre, residual
    attention blocks with fused in_proj, ln_post, proj)."""
    tokens = (image // patch) ** 2 + 1
    shapes: dict[str, tuple[int, ...]] = {
        "visual.class_embedding": (width,),
        "visual.positional_embedding": (tokens, width),
        "visual.conv1.weight": (width, 3, patch, patch),
        "visual.ln_pre.weight": (width,),
        "visual.ln_pre.bias": (width,),
        "visual.ln_post.weight": (width,),
        "visual.ln_post.bias": (width,),
        "visual.proj": (width, projection),
    }
    for i in range(layers):
        b = f"visual.transformer.resblocks.{i}."
        shapes.update(
            {
                b + "ln_1.weight": (width,),
                b + "ln_1.bias": (width,),
                b + "attn.in_proj_weight": (3 * width, width),
                b + "attn.in_proj_bias": (3 * width,),
                b + "attn.out_proj.weight": (width, width),
                b + "attn.out_proj.bias": (width,),
                b + "ln_2.weight": (width,),
                b + "ln_2.bias": (width,),
                b + "mlp.c_fc.weight": (mlp, width),
                b + "mlp.c_fc.bias": (mlp,),
                b + "mlp.c_proj.weight": (width, mlp),
                b + "mlp.c_proj.bias": (width,),
            }
        )
    return shapes
