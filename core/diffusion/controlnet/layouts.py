"""Tensor names and architectures of ControlNet and T2I-Adapter files.

A ControlNet (Zhang et al. 2023) is a trainable copy of a UNet's input half (input blocks,
middle block, time and label embeddings) plus a small convolutional encoder of the hint
picture and one zero-initialised 1×1 convolution per skip connection. The original release
(lllyasviel's ``cldm``) stores it as ``control_model.input_blocks…``, ``input_hint_block``,
``zero_convs.N.0`` and ``middle_block_out.0``; diffusers' ``ControlNetModel`` names the same
tensors ``down_blocks…``, ``controlnet_cond_embedding``, ``controlnet_down_blocks.N`` and
``controlnet_mid_block``. A T2I-Adapter (Mou et al. 2023) is a separate small encoder whose
features add to the UNet's down-block outputs; TencentARC's files name its layers
``conv_in`` and ``body.N…``, diffusers' ``T2IAdapter`` ``adapter.conv_in`` and
``adapter.body.L.resnets.M…``. The functions here map diffusers names to the original ones
and read each architecture from tensor shapes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch

from core.diffusion.architecture import encoder_config
from core.diffusion.keymap import unet_module_to_ldm

#: Where the original files keep the ControlNet (full training checkpoints also hold the SD
#: model under other prefixes; ComfyUI's own saves have no prefix).
LDM_CONTROL_PREFIX = "control_model."
#: diffusers' name of the hint encoder, and of the zero convolutions.
HINT_ENCODER = "controlnet_cond_embedding."


def _hint_convs(ldm: Mapping[str, torch.Tensor]) -> list[int]:
    """Indices of the convolutions in ``input_hint_block`` (every other entry is a SiLU)."""
    found = {int(m.group(1)) for k in ldm if (m := re.match(r"input_hint_block\.(\d+)\.weight", k))}
    return sorted(found)


def controlnet_name_to_ldm(name: str, config: Mapping[str, Any]) -> str:
    """The original (``cldm``) name, without prefix, of a ``ControlNetModel`` tensor."""
    if name.startswith(HINT_ENCODER):
        rest = name[len(HINT_ENCODER) :]
        blocks = 2 * (len(config["conditioning_embedding_out_channels"]) - 1)
        if rest.startswith("conv_in."):
            return "input_hint_block.0." + rest[len("conv_in.") :]
        if rest.startswith("conv_out."):
            return f"input_hint_block.{2 * (blocks + 1)}." + rest[len("conv_out.") :]
        match = re.fullmatch(r"blocks\.(\d+)\.(.*)", rest)
        if match:
            return f"input_hint_block.{2 * (int(match.group(1)) + 1)}.{match.group(2)}"
        raise KeyError(f"no original name for ControlNet tensor {name}")
    match = re.fullmatch(r"controlnet_down_blocks\.(\d+)\.(.*)", name)
    if match:
        return f"zero_convs.{match.group(1)}.0.{match.group(2)}"
    if name.startswith("controlnet_mid_block."):
        return "middle_block_out.0." + name[len("controlnet_mid_block.") :]
    return unet_module_to_ldm(name, config)


def controlnet_config_from_ldm(
    ldm: Mapping[str, torch.Tensor], base: dict[str, Any]
) -> dict[str, Any]:
    """A ``ControlNetModel`` config from original tensors (prefix removed): the UNet half as
    ``architecture.encoder_config`` reads it, the hint encoder's widths from its convolutions."""
    config = encoder_config(ldm, base)
    config.pop("time_embedding_dim", None)  # ControlNetModel has no such option
    config.update(hint_encoder_options(ldm))
    return config


def hint_encoder_options(ldm: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """The ``ControlNetModel`` options of the hint encoder, read from its convolutions (a
    strided and an unstrided one per width, then the output convolution)."""
    convs = _hint_convs(ldm)
    if len(convs) < 2 or len(convs) % 2:
        raise ValueError(f"the hint encoder has {len(convs)} convolutions, not an even number")
    widths = [int(ldm[f"input_hint_block.{i}.weight"].shape[0]) for i in convs]
    return {
        "conditioning_channels": int(ldm["input_hint_block.0.weight"].shape[1]),
        "conditioning_embedding_out_channels": [widths[0], *widths[2:-1:2]],
    }


def diffusers_controlnet_as_ldm(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A diffusers-named ControlNet's tensors under their original names, so one reader of
    shapes serves both layouts."""
    layers = len(
        {m.group(1) for k in tensors if (m := re.match(r"down_blocks\.0\.resnets\.(\d+)\.", k))}
    )
    blocks = {
        int(m.group(1)) for k in tensors if (m := re.match(rf"{HINT_ENCODER}blocks\.(\d+)\.", k))
    }
    config = {
        "layers_per_block": layers,
        "up_block_types": [],
        "conditioning_embedding_out_channels": [0] * (len(blocks) // 2 + 1),
    }
    return {controlnet_name_to_ldm(k, config): v for k, v in tensors.items()}


# --- T2I-Adapter -------------------------------------------------------------------------


def adapter_name_to_original(name: str, config: Mapping[str, Any]) -> str:
    """TencentARC's name of a diffusers ``T2IAdapter`` tensor.

    Full adapters flatten the levels: resnet M of level L is ``body.{L·n+M}`` (n resnets a
    level) and a level's channel-changing 1×1 convolution sits on its first resnet. Light
    adapters keep levels: ``body.L.body.M``.
    """
    name = name.removeprefix("adapter.")
    per_level = int(config["num_res_blocks"])
    light = config["adapter_type"] == "light_adapter"
    match = re.fullmatch(r"body\.(\d+)\.resnets\.(\d+)\.(.*)", name)
    if match:
        level, resnet, rest = int(match.group(1)), int(match.group(2)), match.group(3)
        if light:
            return f"body.{level}.body.{resnet}.{rest}"
        return f"body.{level * per_level + resnet}.{rest}"
    match = re.fullmatch(r"body\.(\d+)\.in_conv\.(.*)", name)
    if match and not light:
        return f"body.{int(match.group(1)) * per_level}.in_conv.{match.group(2)}"
    return name


def adapter_config_from_original(
    tensors: Mapping[str, torch.Tensor], bases: Mapping[str, dict[str, Any]]
) -> dict[str, Any]:
    """A ``T2IAdapter`` config from TencentARC-named tensors; ``bases`` are the shipped
    configs by adapter type (``full_adapter``, ``light_adapter``, ``full_adapter_xl``)."""
    bodies = sorted({int(m.group(1)) for k in tensors if (m := re.match(r"body\.(\d+)\.", k))})
    if "body.0.out_conv.weight" in tensors:
        config = dict(bases["light_adapter"])
        inputs = int(tensors["body.0.in_conv.weight"].shape[1])
        resnets = {
            int(m.group(1)) for k in tensors if (m := re.match(r"body\.0\.body\.(\d+)\.", k))
        }
        widths = [int(tensors[f"body.{b}.out_conv.weight"].shape[0]) for b in bodies]
        config.update(channels=widths[:-1], num_res_blocks=len(resnets))
    else:
        inputs = int(tensors["conv_in.weight"].shape[1])
        # 16× pixel unshuffle of RGB (768) or grey (256) pictures: the SDXL adapter.
        config = dict(bases["full_adapter_xl" if inputs in (256, 768) else "full_adapter"])
        per_level = int(config["num_res_blocks"])
        if len(bodies) % per_level:
            raise ValueError(f"{len(bodies)} adapter blocks do not form levels of {per_level}")
        config["channels"] = [
            int(tensors[f"body.{b}.block1.weight"].shape[0]) for b in bodies[::per_level]
        ]
    downscale = int(config["downscale_factor"])
    if inputs % (downscale * downscale):
        raise ValueError(f"an input width of {inputs} is no picture unshuffled {downscale}×")
    config["in_channels"] = inputs // (downscale * downscale)
    return config


def diffusers_adapter_as_original(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A diffusers-named T2I-Adapter's tensors under TencentARC's names."""
    light = "adapter.body.0.out_conv.weight" in tensors
    resnets = {
        m.group(1) for k in tensors if (m := re.match(r"adapter\.body\.0\.resnets\.(\d+)\.", k))
    }
    config = {
        "num_res_blocks": len(resnets),
        "adapter_type": "light_adapter" if light else "full_adapter",
    }
    return {adapter_name_to_original(k, config): v for k, v in tensors.items()}
