"""Tiny CLIP image encoders in the key layouts of published files, for image-prompt tests.

``tiny_clip_vision`` builds a random ``CLIPVisionModelWithProjection`` (32 wide, 2 layers,
32-pixel pictures in 8-pixel patches); ``write_clip_vision_file`` stores it as transformers
names it (``vision_model.*``, as ComfyUI's clip_vision_g and LAION's model.safetensors) or as
OpenCLIP does (``visual.*`` with fused q/k/v and a ``proj`` matrix, as in open_clip files and
inside Stable unCLIP checkpoints). ``openclip_visual_layout`` lists the OpenCLIP names and
shapes of a full-size encoder, written from the published architecture. ``make_tiny_unclip``
and ``write_unclip_checkpoint`` make SD 2.1 unCLIP single files.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from diffusers import UNet2DConditionModel
from safetensors.torch import save_file
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

from core.diffusion.families import ModelFamily, PredictionType
from tests.helpers.tiny_models import (
    TinyPipeline,
    _randomise,
    ldm_state_dict,
    make_tiny_pipeline,
)

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


# --- Stable unCLIP ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class TinyUnclip:
    """A tiny SD 2.x unCLIP model: the pipeline (its UNet takes the image input), the image
    encoder stored with it and the augmentation statistics."""

    pipeline: TinyPipeline
    vision: CLIPVisionModelWithProjection
    mean: torch.Tensor
    std: torch.Tensor

    @property
    def embed_dim(self) -> int:
        return int(self.vision.config.projection_dim)


def make_tiny_unclip(
    seed: int = 0, prediction: PredictionType = PredictionType.V_PREDICTION, output_scale: float = 1
) -> TinyUnclip:
    """A random tiny unCLIP model; ``output_scale`` multiplies the UNet's output layer (30 gives
    unit-scale predictions, as ``tests.sampling.harness.active``)."""
    base = make_tiny_pipeline(ModelFamily.SD2, prediction=prediction, seed=seed)
    vision = tiny_clip_vision(seed + 1)
    dim = int(vision.config.projection_dim)
    config = dict(base.unet.config)
    config.pop("_use_default_values", None)  # else from_config resets what is updated here
    config.update(class_embed_type="projection", projection_class_embeddings_input_dim=2 * dim)
    unet = UNet2DConditionModel.from_config(config)
    generator = torch.Generator().manual_seed(seed + 2)
    _randomise(unet, generator)
    with torch.no_grad():
        unet.conv_out.weight.mul_(output_scale)
        unet.conv_out.bias.mul_(output_scale)
        # Embedding weights of a trained model's size, so the picture matters.
        unet.class_embedding.linear_1.weight.mul_(10)
        unet.class_embedding.linear_2.weight.mul_(30)
    mean = torch.randn(1, dim, generator=generator) * 0.1
    std = torch.rand(1, dim, generator=generator) + 0.5
    pipeline = dataclasses.replace(base, unet=unet.eval())
    return TinyUnclip(pipeline, vision, mean, std)


def write_unclip_checkpoint(model: TinyUnclip, path: Path, schedule: bool = True) -> Path:
    """An SD 2.1 unCLIP single file: the LDM checkpoint, ``embedder.model.visual.*`` and
    ``noise_augmentor.*`` (statistics, and with ``schedule`` the cosine ᾱ table)."""
    from diffusers import DDPMScheduler

    tensors = ldm_state_dict(model.pipeline)
    tensors.update(clip_vision_tensors(model.vision, "openclip", prefix="embedder.model."))
    tensors["noise_augmentor.data_mean"] = model.mean
    tensors["noise_augmentor.data_std"] = model.std
    if schedule:
        ddpm = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2")
        tensors["noise_augmentor.alphas_cumprod"] = ddpm.alphas_cumprod.float()
        tensors["noise_augmentor.betas"] = ddpm.betas.float()
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".safetensors":
        save_file(tensors, path)
    else:
        torch.save({"state_dict": tensors}, path)
    return path
