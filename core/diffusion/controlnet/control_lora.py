"""Stability AI's Control-LoRA files: an SDXL ControlNet stored as low-rank changes to the UNet.

A Control-LoRA (``control-lora-canny-rank128.safetensors``…) holds a ``lora_controlnet`` marker,
a pair ``<layer>.up`` / ``<layer>.down`` for each linear or convolution weight of the
ControlNet's copy of the UNet's input half, and the full tensors of everything else: the hint
encoder (``input_hint_block``), the zero convolutions (``zero_convs``, ``middle_block_out``) and
the norms and biases that were trained. All names are the original (``cldm``) ones, without a
prefix. The ControlNet is the UNet's own input half with each listed weight replaced by
``W + up·down`` (both flattened to matrices, no scale) and the file's full tensors in place of
the UNet's. It therefore exists only beside a UNet: it is built, on the UNet's device and in its
precision, from the model being sampled.
"""

from __future__ import annotations

from core.diffusion import offline  # noqa: F401  (must precede diffusers/transformers)

# isort: split
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from core.diffusion.errors import ModelLoadError

from . import layouts

#: The tensor that marks a Control-LoRA file.
MARKER = "lora_controlnet"
_UP, _DOWN = ".up", ".down"


def split_control_lora(path: Path, tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The file's tensors without the marker, checked for what every Control-LoRA has."""
    weights = {k: v for k, v in tensors.items() if k != MARKER}
    if "input_hint_block.0.weight" not in weights:
        raise ModelLoadError(
            path,
            "is marked as a Control-LoRA but has no hint encoder (input_hint_block.0.weight).",
            "The file is damaged; download it again.",
        )
    try:
        layouts.hint_encoder_options(weights)
    except (KeyError, ValueError) as exc:
        raise ModelLoadError(
            path,
            f"is a Control-LoRA whose hint encoder LatentLoom does not recognise ({exc}).",
            "The file is damaged or a variant LatentLoom does not support.",
        ) from exc
    unpaired = [
        k
        for k in weights
        if (k.endswith(_UP) and k[: -len(_UP)] + _DOWN not in weights)
        or (k.endswith(_DOWN) and k[: -len(_DOWN)] + _UP not in weights)
    ]
    if unpaired:
        raise ModelLoadError(
            path,
            f"is a Control-LoRA whose low-rank pair for {unpaired[0]} is incomplete.",
            "The file is damaged; download it again.",
        )
    return weights


def low_rank_delta(up: torch.Tensor, down: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """``up·down`` in float32, shaped like the weight it changes (a convolution's ``up`` is
    ``[out, rank, 1, 1]`` and its ``down`` ``[rank, in, k, k]``)."""
    return (up.float().flatten(1) @ down.float().flatten(1)).reshape(shape)


def build_control_lora(
    path: Path, weights: Mapping[str, torch.Tensor], unet: torch.nn.Module
) -> Any:
    """The ControlNet that ``weights`` (a Control-LoRA's tensors) make of ``unet``, on the
    UNet's device and in its dtype. Layers the file leaves alone share the UNet's tensors."""
    from diffusers import ControlNetModel

    from core.diffusion.module_build import _build

    reference = next(unet.parameters())
    device, dtype = reference.device, reference.dtype
    hint = layouts.hint_encoder_options(weights)

    def factory() -> Any:
        return ControlNetModel.from_unet(unet, load_weights_from_unet=False, **hint)

    with torch.device("meta"):
        shell = factory()
    names, config = list(shell.state_dict()), shell.config
    own = unet.state_dict()
    used: set[str] = set()
    tensors: dict[str, torch.Tensor] = {}
    missing = []
    for name in names:
        original = layouts.controlnet_name_to_ldm(name, config)
        if original in weights:
            tensor = weights[original]
            used.add(original)
        elif name in own:
            tensor = own[name]
        else:
            missing.append(original)
            continue
        stem = original.removesuffix(".weight")
        if stem != original and stem + _UP in weights:
            up, down = weights[stem + _UP], weights[stem + _DOWN]
            try:
                delta = low_rank_delta(up.to(device), down.to(device), tensor.shape)
            except RuntimeError as exc:
                raise _does_not_fit(path, f"{stem} is {tuple(tensor.shape)} in it") from exc
            tensor = tensor.to(device, torch.float32) + delta
            used.update((stem + _UP, stem + _DOWN))
        tensors[name] = tensor.to(device, dtype)
    left = [k for k in weights if k not in used]
    if missing or left:
        what = (
            f"the model has no {missing[0]}"
            if missing
            else f"the ControlNet made from the model has no {left[0]}"
        )
        raise _does_not_fit(path, what)
    try:
        return _build(factory, tensors, path, "Control-LoRA", dtype)
    except ModelLoadError as exc:
        raise _does_not_fit(path, exc.problem) from exc


def _does_not_fit(path: Path, detail: str) -> ModelLoadError:
    return ModelLoadError(
        path,
        f"is a Control-LoRA that does not fit the model being sampled ({detail}).",
        "Use it with the SDXL model it was made for (Stability's Control-LoRAs fit SDXL 1.0 "
        "base and models fine-tuned from it).",
    )
