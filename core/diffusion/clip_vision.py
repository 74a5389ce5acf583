"""CLIP image encoders (ViT-L/14, ViT-H/14, ViT-bigG/14): loading single files and encoding
pictures, as ComfyUI's CLIPVisionLoader and CLIPVisionEncode do.

Two key layouts are read: transformers' (``vision_model.*`` + ``visual_projection.weight``, as
in ComfyUI's clip_vision_g.safetensors and LAION's model.safetensors) and OpenCLIP's / OpenAI
CLIP's (``visual.*``, also inside Stable unCLIP checkpoints as ``embedder.model.visual.*``).
Both become a transformers ``CLIPVisionModelWithProjection`` built from the shipped config of
the same width, with every size read from the tensors.
"""

from __future__ import annotations

from core.diffusion import offline  # noqa: F401  (must precede diffusers/transformers)

# isort: split
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

from core.diffusion.checkpoint_io import read_state_dict
from core.diffusion.errors import ModelLoadError
from core.diffusion.models import HoldsTensors, StorageKey, module_storages
from core.diffusion.resources import load_component_config

#: CLIP's pixel normalisation (Radford et al. 2021; the same for the LAION models).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
#: Shipped configs by hidden width (``resources/configs/clip_vision``).
CONFIG_BY_WIDTH = {1024: "vit_l_14", 1280: "vit_h_14", 1664: "vit_bigg_14"}
HF_PREFIX, OPENCLIP_PREFIX = "vision_model.", "visual."

Crop = Literal["center", "none"]


@dataclass(frozen=True, eq=False)
class ClipVisionModel(HoldsTensors):
    """The CLIP_VISION socket value: a transformers ``CLIPVisionModelWithProjection``."""

    model: Any
    #: The config it was built from ("vit_h_14"…, or "custom" for other widths).
    variant: str = "custom"

    def cache_storages(self) -> dict[StorageKey, int]:
        return module_storages(self.model)

    @property
    def image_size(self) -> int:
        return int(self.model.config.image_size)

    @property
    def embed_dim(self) -> int:
        return int(self.model.config.projection_dim)


@dataclass(frozen=True, eq=False)
class ClipVisionOutput:
    """The CLIP_VISION_OUTPUT value: per picture, the projected image embedding, the last
    layer's hidden states and the penultimate layer's (IP-Adapter "plus" reads those)."""

    image_embeds: torch.Tensor  # [B, projection_dim]
    last_hidden_state: torch.Tensor  # [B, tokens, width]
    penultimate_hidden_states: torch.Tensor  # [B, tokens, width]


# --- key layouts ---------------------------------------------------------------------------


def find_vision_tensors(state_dict: Mapping[str, torch.Tensor]) -> tuple[str, str] | None:
    """(layout, prefix) of the image encoder inside ``state_dict``: ``"hf"`` for
    ``<prefix>vision_model.*``, ``"openclip"`` for ``<prefix>visual.*``; None when there is none.
    """
    for key in state_dict:
        if key.endswith(HF_PREFIX + "embeddings.class_embedding"):
            return "hf", key[: -len(HF_PREFIX + "embeddings.class_embedding")]
        if key.endswith(OPENCLIP_PREFIX + "class_embedding"):
            return "openclip", key[: -len(OPENCLIP_PREFIX + "class_embedding")]
    return None


_OPENCLIP_BLOCK = re.compile(r"transformer\.resblocks\.(\d+)\.(.+)")
_OPENCLIP_BLOCK_NAMES = {
    "ln_1": "layer_norm1",
    "ln_2": "layer_norm2",
    "attn.out_proj": "self_attn.out_proj",
    "mlp.c_fc": "mlp.fc1",
    "mlp.c_proj": "mlp.fc2",
}
_OPENCLIP_NAMES = {
    "class_embedding": "embeddings.class_embedding",
    "positional_embedding": "embeddings.position_embedding.weight",
    "conv1.weight": "embeddings.patch_embedding.weight",
    "ln_pre.weight": "pre_layrnorm.weight",
    "ln_pre.bias": "pre_layrnorm.bias",
    "ln_post.weight": "post_layernorm.weight",
    "ln_post.bias": "post_layernorm.bias",
}


def openclip_visual_to_hf(visual: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """OpenCLIP / OpenAI CLIP ``visual.*`` tensors (prefix removed) under transformers' names.

    The fused ``in_proj`` splits into q, k, v; ``proj`` (applied as ``x @ proj``) becomes the
    transposed ``visual_projection.weight``.
    """
    out: dict[str, torch.Tensor] = {}
    for key, tensor in visual.items():
        if key == "proj":
            out["visual_projection.weight"] = tensor.t().contiguous()
            continue
        if key in _OPENCLIP_NAMES:
            out[HF_PREFIX + _OPENCLIP_NAMES[key]] = tensor
            continue
        match = _OPENCLIP_BLOCK.fullmatch(key)
        if match is None:
            raise KeyError(key)
        layer, rest = match.groups()
        stem = f"{HF_PREFIX}encoder.layers.{layer}."
        if rest.startswith("attn.in_proj_"):
            kind = rest.removeprefix("attn.in_proj_")  # weight or bias
            for name, part in zip("qkv", tensor.chunk(3, dim=0), strict=True):
                out[f"{stem}self_attn.{name}_proj.{kind}"] = part.contiguous()
            continue
        module, _, kind = rest.rpartition(".")
        if module not in _OPENCLIP_BLOCK_NAMES:
            raise KeyError(key)
        out[f"{stem}{_OPENCLIP_BLOCK_NAMES[module]}.{kind}"] = tensor
    return out


def vision_config_from_weights(tensors: Mapping[str, torch.Tensor]) -> tuple[dict, str]:
    """The ``CLIPVisionConfig`` of transformers-named ``tensors`` and the name of the shipped
    config it starts from: widths, depth, patch, picture size and projection come from the
    tensors; heads and activation from the config of the same width (ViT-H's for others)."""
    width = int(tensors[HF_PREFIX + "embeddings.class_embedding"].shape[0])
    variant = CONFIG_BY_WIDTH.get(width, "custom")
    config = load_component_config("clip_vision", CONFIG_BY_WIDTH.get(width, "vit_h_14"))
    patch = tensors[HF_PREFIX + "embeddings.patch_embedding.weight"]
    positions = int(tensors[HF_PREFIX + "embeddings.position_embedding.weight"].shape[0])
    side = round((positions - 1) ** 0.5)
    if side * side != positions - 1:
        raise ValueError(f"{positions} position embeddings are not a square of patches + 1")
    layers = {int(m.group(1)) for k in tensors if (m := re.match(r".*layers\.(\d+)\.", k))}
    config.update(
        hidden_size=width,
        intermediate_size=int(tensors[HF_PREFIX + "encoder.layers.0.mlp.fc1.weight"].shape[0]),
        num_hidden_layers=len(layers),
        patch_size=int(patch.shape[-1]),
        num_channels=int(patch.shape[1]),
        image_size=side * int(patch.shape[-1]),
        projection_dim=int(tensors["visual_projection.weight"].shape[0]),
    )
    if variant == "custom":
        config["num_attention_heads"] = width // 64 if width % 64 == 0 else 8
    return config, variant


def clip_vision_from_state_dict(
    state_dict: Mapping[str, torch.Tensor], path: Path, dtype: torch.dtype = torch.float32
) -> ClipVisionModel:
    """The image encoder inside ``state_dict`` (a standalone file or a checkpoint holding one)."""
    found = find_vision_tensors(state_dict)
    if found is None:
        raise ModelLoadError(
            path,
            "holds no CLIP image encoder (no vision_model.* or visual.* tensors).",
            "Choose a CLIP vision file such as CLIP-ViT-H-14-laion2B-s32B-b79K or "
            "clip_vision_g in the clip_vision folder.",
        )
    layout, prefix = found
    try:
        if layout == "hf":
            tensors = {
                k[len(prefix) :]: v
                for k, v in state_dict.items()
                if k.startswith(prefix + HF_PREFIX) or k == prefix + "visual_projection.weight"
            }
        else:
            start = prefix + OPENCLIP_PREFIX
            visual = {k[len(start) :]: v for k, v in state_dict.items() if k.startswith(start)}
            tensors = openclip_visual_to_hf(visual)
        tensors = {k: v for k, v in tensors.items() if not k.endswith("position_ids")}
        if "visual_projection.weight" not in tensors:
            raise KeyError("visual_projection.weight (the image projection)")
        values, variant = vision_config_from_weights(tensors)
    except (KeyError, ValueError, IndexError) as exc:
        raise ModelLoadError(
            path,
            f"has a CLIP image encoder whose layout LatentLoom does not recognise ({exc}).",
            "Expected CLIP ViT-L/14, ViT-H/14 or ViT-bigG/14 weights in transformers' or "
            "OpenCLIP's layout.",
        ) from exc
    config = CLIPVisionConfig(**values)
    with torch.device("meta"):
        model = CLIPVisionModelWithProjection(config)
    try:
        model.load_state_dict(tensors, strict=True, assign=True)
    except RuntimeError as exc:
        text = " ".join(str(exc).split())[:400]
        raise ModelLoadError(
            path,
            f"has CLIP image encoder weights that do not fit together ({text}).",
            "The file is damaged or a variant LatentLoom does not support.",
        ) from exc
    for name, buffer in list(model.named_buffers()):
        if buffer.is_meta:  # position_ids: not stored, 0..n-1
            owner_name, _, leaf = name.rpartition(".")
            values_ = torch.arange(buffer.shape[-1]).expand(buffer.shape).clone()
            model.get_submodule(owner_name).register_buffer(leaf, values_, persistent=False)
    torch.nn.Module.to(model, dtype=dtype)
    return ClipVisionModel(model.eval().requires_grad_(False), variant)


def load_clip_vision(path: str | Path, dtype: torch.dtype = torch.float32) -> ClipVisionModel:
    """Load a CLIP image encoder from a single file (``.safetensors`` or a pickled file)."""
    path = Path(path)
    return clip_vision_from_state_dict(read_state_dict(path), path, dtype)


# --- encoding ------------------------------------------------------------------------------


def preprocess(image: torch.Tensor, size: int, crop: Crop = "center") -> torch.Tensor:
    """IMAGE ``[B, H, W, 3]`` in 0..1 as CLIP's input ``[B, 3, size, size]``.

    ``center``: the short side is resized to ``size`` and the middle cut out (CLIP's own
    preprocessing); ``none``: the whole picture is squashed to a square. Resizing is bicubic
    with antialiasing, the result rounded to 8 bits as CLIP's image processor works, then
    normalised with CLIP's mean and standard deviation.
    """
    if image.ndim != 4 or image.shape[-1] < 3:
        raise ValueError(f"expected pictures [batch, height, width, 3], got {tuple(image.shape)}")
    pixels = image[..., :3].permute(0, 3, 1, 2).float()
    height, width = pixels.shape[-2:]
    if crop == "center":
        scale = size / min(height, width)
        target = (round(height * scale), round(width * scale))
        pixels = F.interpolate(pixels, size=target, mode="bicubic", antialias=True)
        top, left = (target[0] - size) // 2, (target[1] - size) // 2
        pixels = pixels[:, :, top : top + size, left : left + size]
    elif crop == "none":
        pixels = F.interpolate(pixels, size=(size, size), mode="bicubic", antialias=True)
    else:
        raise ValueError(f"crop must be 'center' or 'none', not {crop!r}")
    pixels = torch.clamp(pixels * 255.0, 0, 255).round() / 255.0
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    return (pixels - mean) / std


def encode_pixels(encoder: ClipVisionModel, pixels: torch.Tensor) -> ClipVisionOutput:
    """Run the encoder on preprocessed ``pixels`` ``[B, 3, s, s]``; outputs are float32 on the
    CPU, so they are cheap to cache and move to any device."""
    model = encoder.model
    parameter = next(model.parameters())
    with torch.inference_mode():
        out = model(
            pixel_values=pixels.to(parameter.device, parameter.dtype), output_hidden_states=True
        )
    return ClipVisionOutput(
        image_embeds=out.image_embeds.float().cpu(),
        last_hidden_state=out.last_hidden_state.float().cpu(),
        penultimate_hidden_states=out.hidden_states[-2].float().cpu(),
    )


def encode_images(
    encoder: ClipVisionModel, image: torch.Tensor, crop: Crop = "center"
) -> ClipVisionOutput:
    """CLIP Vision Encode: pictures ``[B, H, W, 3]`` in 0..1 through the image encoder."""
    return encode_pixels(encoder, preprocess(image, encoder.image_size, crop))
