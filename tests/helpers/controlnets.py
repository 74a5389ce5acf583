"""Tiny random ControlNets and T2I-Adapters written in the key layouts of real files.

A ControlNet is made from a tiny UNet's config (diffusers' ``ControlNetModel.from_unet``), so
it fits that UNet; its tensors are then random (the zero convolutions too, or its residuals
would be zero) and written under the original ``control_model.*`` names, diffusers' names, or
as a diffusers folder. T2I-Adapters are written under TencentARC's or diffusers' names.
``make_control_lora`` gives a ControlNet trained (changed at random) from a UNet and the
Control-LoRA tensors that describe it.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers import ControlNetModel, T2IAdapter
from safetensors.torch import save_file

from core.diffusion.controlnet.layouts import (
    LDM_CONTROL_PREFIX,
    adapter_name_to_original,
    controlnet_name_to_ldm,
)


def _randomise(module: torch.nn.Module, seed: int, scale: float) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * scale)


def make_tiny_controlnet(
    unet: torch.nn.Module, seed: int = 0, scale: float = 0.05
) -> ControlNetModel:
    """A random ControlNet shaped after ``unet`` (its input half and a full-size hint encoder)."""
    controlnet = ControlNetModel.from_unet(unet, load_weights_from_unet=False)
    _randomise(controlnet, seed, scale)
    return controlnet.eval()


#: Parts a UNet lacks: a Control-LoRA stores them whole.
_OWN_PARTS = ("controlnet_cond_embedding.", "controlnet_down_blocks.", "controlnet_mid_block.")


def make_control_lora(
    unet: torch.nn.Module, seed: int = 0, rank: int = 2
) -> tuple[ControlNetModel, dict[str, torch.Tensor]]:
    """A ControlNet made from ``unet`` and changed as training would, and the Control-LoRA
    tensors that describe it: a rank-``rank`` pair (``.up``/``.down``, original names) for
    every matrix or kernel of the UNet half, the whole tensor for the parts a UNet lacks and
    for one trained bias, and the ``lora_controlnet`` marker."""
    controlnet = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(4, 8, 8, 16))
    generator = torch.Generator().manual_seed(seed)
    tensors: dict[str, torch.Tensor] = {"lora_controlnet": torch.tensor([])}
    with torch.no_grad():
        for name, parameter in controlnet.named_parameters():
            original = controlnet_name_to_ldm(name, controlnet.config)
            if name.startswith(_OWN_PARTS) or name == "down_blocks.0.resnets.0.conv1.bias":
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.1)
                tensors[original] = parameter.detach().clone()
            elif parameter.ndim >= 2:
                up = torch.randn(parameter.shape[0], rank, generator=generator) * 0.05
                down = torch.randn(rank, parameter[0].numel(), generator=generator) * 0.05
                parameter.add_((up @ down).reshape(parameter.shape))
                stem = original.removesuffix(".weight")
                extra = (1, 1) if parameter.ndim == 4 else ()
                tensors[stem + ".up"] = up.reshape(parameter.shape[0], rank, *extra)
                tensors[stem + ".down"] = down.reshape(rank, *parameter.shape[1:])
    return controlnet.eval(), tensors


def controlnet_ldm_tensors(controlnet: ControlNetModel, prefix: str = LDM_CONTROL_PREFIX) -> dict:
    """The ControlNet's tensors under the original release's names."""
    return {
        prefix + controlnet_name_to_ldm(name, controlnet.config): tensor.contiguous()
        for name, tensor in controlnet.state_dict().items()
    }


def write_controlnet(
    controlnet: ControlNetModel, path: Path, layout: str = "ldm", prefix: str = LDM_CONTROL_PREFIX
) -> Path:
    """Write ``controlnet`` as ``layout``: "ldm" (original names), "diffusers" (one file with
    diffusers' names) or "folder" (``path`` is a folder: config.json and the weights file,
    whose path is returned)."""
    if layout == "folder":
        path.mkdir(parents=True, exist_ok=True)
        config = dict(controlnet.config)
        config["_class_name"] = "ControlNetModel"
        (path / "config.json").write_text(json.dumps(config, default=list))
        path = path / "diffusion_pytorch_model.safetensors"
        tensors = {k: v.contiguous() for k, v in controlnet.state_dict().items()}
    elif layout == "diffusers":
        tensors = {k: v.contiguous() for k, v in controlnet.state_dict().items()}
    else:
        tensors = controlnet_ldm_tensors(controlnet, prefix)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".safetensors":
        save_file(tensors, str(path))
    else:
        torch.save(tensors, path)
    return path


def make_tiny_adapter(
    unet: torch.nn.Module, kind: str = "full_adapter", in_channels: int = 3, seed: int = 0
) -> T2IAdapter:
    """A random T2I-Adapter whose features fit ``unet``'s down blocks."""
    widths = list(unet.config.block_out_channels)
    if kind == "full_adapter_xl":
        channels = [widths[0], widths[1], widths[2], widths[2]]
    elif kind == "light_adapter":
        channels = widths[:-1]  # a light adapter adds one more level of the last width
    else:
        channels = widths
    adapter = T2IAdapter(
        in_channels=in_channels,
        channels=channels,
        num_res_blocks=4 if kind == "light_adapter" else 2,
        downscale_factor=16 if kind == "full_adapter_xl" else 8,
        adapter_type=kind,
    )
    _randomise(adapter, seed, 0.05)
    return adapter.eval()


def write_adapter(adapter: T2IAdapter, path: Path, layout: str = "original") -> Path:
    """Write ``adapter`` under TencentARC's names ("original") or diffusers' ("diffusers")."""
    tensors = {k: v.contiguous() for k, v in adapter.state_dict().items()}
    if layout == "original":
        tensors = {adapter_name_to_original(k, adapter.config): v for k, v in tensors.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".safetensors":
        save_file(tensors, str(path))
    else:
        torch.save(tensors, path)
    return path


def write_control_files(names: list[str], folder: Path, unet: torch.nn.Module) -> None:
    """The ControlNet files a workflow names, in ``folder``, fitting ``unet``: T2I-Adapters
    for names with "t2iadapter", difference files against ``unet`` for "diff_" names,
    original-layout ControlNets for the rest, each with its own weights."""
    for seed, name in enumerate(sorted(set(names))):
        path = folder / name
        lower = name.lower()
        if "t2iadapter" in lower or "t2i-adapter" in lower:
            write_adapter(make_tiny_adapter(unet, seed=seed), path)
            continue
        controlnet = make_tiny_controlnet(unet, seed=seed, scale=0.2)
        if not lower.startswith("diff_"):
            write_controlnet(controlnet, path)
            continue
        base = unet.state_dict()
        tensors = {
            name: tensor - base[name] if name in base else tensor
            for name, tensor in controlnet.state_dict().items()
        }
        controlnet.load_state_dict(tensors)
        stored = {**controlnet_ldm_tensors(controlnet), "difference": torch.tensor([])}
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".safetensors":
            save_file(stored, str(path))
        else:
            torch.save(stored, path)
