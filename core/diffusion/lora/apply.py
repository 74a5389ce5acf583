"""Merge LoRA-family layers into MODEL and CLIP values without touching the base model.

``apply_loras`` sums the updates ΔW of every LoRA in the stack for each targeted layer and
returns new MODEL/CLIP values whose modules share every untouched tensor with the base model;
patched layers get new weight tensors W + Σ strength·ΔW. The base objects stay valid for the
cache. The file's module names are resolved against the loaded model here: kohya names (dots
as underscores), diffusers names and, for UNets, the LDM names kohya's SDXL files use.
"""

from __future__ import annotations

from core.diffusion import offline  # noqa: F401  (must precede diffusers/transformers)

# isort: split
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import torch

from core.diffusion.errors import ModelLoadError
from core.diffusion.keymap import unet_module_to_ldm
from core.diffusion.lora.files import LoraWeights
from core.diffusion.merging import copy_with_tensors
from core.diffusion.models import ClipModel, DiffusionModel

log = logging.getLogger(__name__)


def _underscored(name: str) -> str:
    return name.replace(".", "_")


def _module_index(model: torch.nn.Module, unet_config: Mapping | None) -> dict[str, str]:
    """Every way a LoRA may name a weight-bearing module → the module's real name."""
    index: dict[str, str] = {}
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.Linear | torch.nn.Conv2d):
            continue
        bare = name.removeprefix("text_model.")
        for alias in {name, bare, "text_model." + bare}:
            index[alias] = name
            index[_underscored(alias)] = name
        if unet_config is not None:
            try:
                ldm = unet_module_to_ldm(name, unet_config)
            except KeyError:
                continue
            index[ldm] = name
            index[_underscored(ldm)] = name
    return index


@dataclass(frozen=True)
class LoraUse:
    """One LoRA of a stack with its strengths for the UNet and the text encoder(s)."""

    weights: LoraWeights
    unet_strength: float = 1.0
    text_strength: float = 1.0


def apply_loras(
    model: DiffusionModel | None,
    clip: ClipModel | None,
    stack: Sequence[LoraUse],
    notices: list[str] | None = None,
) -> tuple[DiffusionModel | None, ClipModel | None]:
    """Return MODEL and CLIP with the stack merged in; the inputs are left untouched.

    Layers that match no layer of the given model are left out with a line in ``notices``
    (and the log); a LoRA none of whose layers match is refused.
    """
    targets: dict[str, torch.nn.Module] = {}
    configs: dict[str, Mapping | None] = {}
    if model is not None:
        targets["unet"], configs["unet"] = model.unet, model.unet.config
    if clip is not None:
        for number, encoder in enumerate(clip.encoders):
            targets[f"te{number + 1}"], configs[f"te{number + 1}"] = encoder.model, None
    indexes = {c: _module_index(m, configs[c]) for c, m in targets.items()}
    deltas: dict[str, dict[str, torch.Tensor]] = {c: {} for c in targets}
    for use in stack:
        matched = 0
        for (component, module), layer in use.weights.layers.items():
            strength = use.unet_strength if component == "unet" else use.text_strength
            name = indexes.get(component, {}).get(module)
            if name is None:
                continue
            matched += 1
            if strength == 0.0:
                continue
            weight = targets[component].get_submodule(name).weight
            try:
                delta = layer.delta(weight.shape) * strength
            except ValueError as exc:
                raise ModelLoadError(
                    use.weights.source,
                    f"does not fit the loaded model at layer {module!r}: {exc}.",
                    "It was probably trained for another model family (SD 1.x, SD 2.x or "
                    "SDXL) or size.",
                ) from None
            previous = deltas[component].get(name)
            deltas[component][name] = delta if previous is None else previous + delta
        if matched == 0 and use.weights.layers:
            raise ModelLoadError(
                use.weights.source,
                "matches no layer of the loaded model.",
                "It was probably trained for another model family (SD 1.x, SD 2.x or SDXL).",
            )
        skipped = len(use.weights.layers) - matched
        if skipped:
            notice = (
                f"{use.weights.source.name}: {skipped} of {len(use.weights.layers)} layers "
                "match no layer of the loaded model and were left out"
            )
            log.warning("%s", notice)
            if notices is not None:
                notices.append(notice)
    patched = {c: _patched_copy(targets[c], deltas[c]) for c in targets if deltas[c]}
    if model is not None and "unet" in patched:
        model = replace(model, unet=patched["unet"])
    if clip is not None:
        encoders = tuple(
            replace(e, model=patched[f"te{n + 1}"]) if f"te{n + 1}" in patched else e
            for n, e in enumerate(clip.encoders)
        )
        clip = replace(clip, encoders=encoders)
    return model, clip


def _patched_copy(base: torch.nn.Module, deltas: Mapping[str, torch.Tensor]) -> torch.nn.Module:
    """A structural copy of ``base`` sharing all tensors, with ``deltas`` added to weights."""
    merged = {}
    with torch.no_grad():
        for name, delta in deltas.items():
            weight = base.get_submodule(name).weight
            merged[f"{name}.weight"] = (weight.float() + delta.to(weight.device)).to(weight.dtype)
    return copy_with_tensors(base, merged)
