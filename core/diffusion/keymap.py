"""Names of diffusers/transformers tensors in the original LDM single-file layout.

diffusers converts LDM checkpoints to its own names (``convert_ldm_*_checkpoint``); this module
goes the other way. LatentLoom uses it to resolve LoRA files that name UNet layers the LDM way
(kohya's SDXL LoRAs do), and the tests use it to write small models in the real LDM layout.
The layout is that of CompVis/stable-diffusion's ``openaimodel.UNetModel`` and
``autoencoder.AutoencoderKL``, and of open_clip's ``TextTransformer``.
"""

from __future__ import annotations

from core.diffusion import offline  # noqa: F401  (must precede diffusers/transformers)

# isort: split
import re
from collections.abc import Mapping
from typing import Any

import torch

_UNET_FIXED = {
    "time_embedding.linear_1": "time_embed.0",
    "time_embedding.linear_2": "time_embed.2",
    "add_embedding.linear_1": "label_emb.0.0",
    "add_embedding.linear_2": "label_emb.0.2",
    # Stable unCLIP keeps its image-embedding input where SDXL keeps its added embedding.
    "class_embedding.linear_1": "label_emb.0.0",
    "class_embedding.linear_2": "label_emb.0.2",
    "conv_in": "input_blocks.0.0",
    "conv_norm_out": "out.0",
    "conv_out": "out.2",
}
# diffusers ResnetBlock2D → ldm ResBlock (in_layers = [norm, SiLU, conv], out_layers = [norm,
# SiLU, dropout, conv], emb_layers = [SiLU, linear]).
_UNET_RESNET = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "time_emb_proj": "emb_layers.1",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "conv_shortcut": "skip_connection",
}


def unet_module_to_ldm(name: str, config: Mapping[str, Any]) -> str:
    """Return the LDM name of a diffusers UNet module or parameter path (without prefix)."""
    per_level = int(config["layers_per_block"]) + 1
    head, _, rest = name.partition(".")
    for diffusers_name, ldm_name in _UNET_FIXED.items():
        if name == diffusers_name or name.startswith(diffusers_name + "."):
            return ldm_name + name[len(diffusers_name) :]
    match = re.match(r"(down|up)_blocks\.(\d+)\.(resnets|attentions)\.(\d+)(.*)", name)
    if match:
        side, block, kind, layer, tail = match.groups()
        index = int(block) * per_level + int(layer) + (1 if side == "down" else 0)
        prefix = "input_blocks" if side == "down" else "output_blocks"
        if kind == "resnets":
            return f"{prefix}.{index}.0{_resnet_tail(tail)}"
        return f"{prefix}.{index}.1{tail}"
    match = re.match(r"down_blocks\.(\d+)\.downsamplers\.0\.conv(.*)", name)
    if match:
        block, tail = match.groups()
        return f"input_blocks.{(int(block) + 1) * per_level}.0.op{tail}"
    match = re.match(r"up_blocks\.(\d+)\.upsamplers\.0\.conv(.*)", name)
    if match:
        block, tail = match.groups()
        has_attention = "CrossAttn" in config["up_block_types"][int(block)]
        index = int(block) * per_level + per_level - 1
        return f"output_blocks.{index}.{2 if has_attention else 1}.conv{tail}"
    match = re.match(r"mid_block\.(resnets|attentions)\.(\d+)(.*)", name)
    if match:
        kind, layer, tail = match.groups()
        if kind == "resnets":
            return f"middle_block.{2 * int(layer)}{_resnet_tail(tail)}"
        return f"middle_block.1{tail}"
    raise KeyError(f"no LDM name for UNet tensor {head}.{rest}")


def _resnet_tail(tail: str) -> str:
    """Rename the first component of a resnet-relative path (``.norm1.weight`` …)."""
    if not tail:
        return tail
    first, _, remainder = tail[1:].partition(".")
    renamed = _UNET_RESNET.get(first, first)
    return f".{renamed}.{remainder}" if remainder else f".{renamed}"


def unet_to_ldm(state_dict: Mapping[str, torch.Tensor], config: Mapping[str, Any]) -> dict:
    """Convert a diffusers UNet state dict to LDM names (prefix ``model.diffusion_model.``)."""
    return {
        "model.diffusion_model." + unet_module_to_ldm(key, config): tensor
        for key, tensor in state_dict.items()
    }


_VAE_ATTENTION = {
    "group_norm": "norm",
    "to_q": "q",
    "to_k": "k",
    "to_v": "v",
    "to_out.0": "proj_out",
}


def vae_key_to_ldm(key: str, config: Mapping[str, Any]) -> str:
    """Return the LDM name of a diffusers AutoencoderKL tensor (without prefix)."""
    levels = len(config["block_out_channels"])
    key = key.replace("conv_norm_out", "norm_out")
    match = re.match(r"encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", key)
    if match:
        block, layer, tail = match.groups()
        return f"encoder.down.{block}.block.{layer}.{_vae_resnet_tail(tail)}"
    match = re.match(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.*)", key)
    if match:
        return f"encoder.down.{match.group(1)}.downsample.conv.{match.group(2)}"
    match = re.match(r"decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", key)
    if match:
        block, layer, tail = match.groups()
        level = levels - 1 - int(block)
        return f"decoder.up.{level}.block.{layer}.{_vae_resnet_tail(tail)}"
    match = re.match(r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.*)", key)
    if match:
        return f"decoder.up.{levels - 1 - int(match.group(1))}.upsample.conv.{match.group(2)}"
    match = re.match(r"(encoder|decoder)\.mid_block\.resnets\.(\d+)\.(.*)", key)
    if match:
        side, layer, tail = match.groups()
        return f"{side}.mid.block_{int(layer) + 1}.{_vae_resnet_tail(tail)}"
    match = re.match(r"(encoder|decoder)\.mid_block\.attentions\.0\.(.*)", key)
    if match:
        side, tail = match.groups()
        for diffusers_name, ldm_name in _VAE_ATTENTION.items():
            if tail.startswith(diffusers_name + "."):
                tail = ldm_name + tail[len(diffusers_name) :]
                break
        return f"{side}.mid.attn_1.{tail}"
    return key


def _vae_resnet_tail(tail: str) -> str:
    return tail.replace("conv_shortcut", "nin_shortcut")


def vae_to_ldm(
    state_dict: Mapping[str, torch.Tensor], config: Mapping[str, Any], prefix: str = ""
) -> dict:
    """Convert a diffusers VAE state dict to LDM names; attention projections become 1×1 convs."""
    converted = {}
    for key, tensor in state_dict.items():
        ldm_key = vae_key_to_ldm(key, config)
        if ".mid.attn_1." in ldm_key and ldm_key.endswith(".weight") and tensor.ndim == 2:
            tensor = tensor[:, :, None, None]
        converted[prefix + ldm_key] = tensor
    return converted


def clip_to_ldm(state_dict: Mapping[str, torch.Tensor], prefix: str) -> dict:
    """Store a transformers CLIP text model under ``prefix`` + ``text_model.`` names."""
    converted = {}
    for key, tensor in state_dict.items():
        name = key.removeprefix("text_model.")
        if name.startswith("text_projection"):
            converted[prefix + name] = tensor
        else:
            converted[prefix + "text_model." + name] = tensor
    return converted


_OPENCLIP_RENAMES = (
    ("encoder.layers.", "transformer.resblocks."),
    (".self_attn.out_proj.", ".attn.out_proj."),
    (".layer_norm1.", ".ln_1."),
    (".layer_norm2.", ".ln_2."),
    (".mlp.fc1.", ".mlp.c_fc."),
    (".mlp.fc2.", ".mlp.c_proj."),
)


_Q_PROJ = re.compile(r"encoder\.layers\.(\d+)\.self_attn\.q_proj\.(\w+)")


def openclip_to_ldm(state_dict: Mapping[str, torch.Tensor], prefix: str) -> dict:
    """Convert a transformers CLIP text model to open_clip names with fused q/k/v projections."""
    flat = {key.removeprefix("text_model."): tensor for key, tensor in state_dict.items()}
    converted: dict[str, torch.Tensor] = {}
    fixed = {
        "embeddings.token_embedding.weight": "token_embedding.weight",
        "embeddings.position_embedding.weight": "positional_embedding",
        "final_layer_norm.weight": "ln_final.weight",
        "final_layer_norm.bias": "ln_final.bias",
    }
    for key, tensor in flat.items():
        if key in fixed:
            converted[prefix + fixed[key]] = tensor
        elif key == "text_projection.weight":
            converted[prefix + "text_projection"] = tensor.T.contiguous()
        elif ".self_attn.q_proj." in key:
            layer, param = _Q_PROJ.match(key).groups()
            parts = [flat[f"encoder.layers.{layer}.self_attn.{p}_proj.{param}"] for p in "qkv"]
            name = f"transformer.resblocks.{layer}.attn.in_proj_{param}"
            converted[prefix + name] = torch.cat(parts, dim=0)
        elif ".self_attn.k_proj." in key or ".self_attn.v_proj." in key:
            continue
        else:
            name = key
            for old, new in _OPENCLIP_RENAMES:
                name = name.replace(old, new)
            converted[prefix + name] = tensor
    return converted
