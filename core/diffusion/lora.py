"""Apply LoRA files (kohya/A1111 and diffusers formats) without touching the base model.

Each LoRA layer stores a low-rank update ΔW = (α / r) · up · down (Hu et al., 2021, eq. 3).
``apply_loras`` sums the updates of every LoRA in the stack for each targeted layer and returns
new MODEL/CLIP values whose modules share every untouched tensor with the base model; patched
layers get new weight tensors W + Σ strength·ΔW. The base objects stay valid for the cache.

Recognised key names:

* kohya / A1111: ``lora_unet_<module>``, ``lora_te_<module>`` (SD 1.x/2.x), ``lora_te1_`` and
  ``lora_te2_`` (SDXL), each with ``.lora_down.weight``, ``.lora_up.weight`` and ``.alpha``;
  UNet modules named either the diffusers way or the LDM way (kohya's SDXL LoRAs), with dots
  written as underscores;
* diffusers / PEFT: ``unet.<module>``, ``text_encoder.<module>``, ``text_encoder_2.<module>``
  with ``.lora_A.weight``/``.lora_B.weight``, ``.lora.down.weight``/``.lora.up.weight`` or the
  older attention-processor names (``.processor.to_q_lora.down.weight``); α defaults to r.
"""

from __future__ import annotations

from core.diffusion import offline  # noqa: F401  (must precede diffusers/transformers)

# isort: split
import copy
import itertools
import logging
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from core.diffusion.checkpoint_io import read_state_dict
from core.diffusion.errors import ModelLoadError
from core.diffusion.keymap import unet_module_to_ldm
from core.diffusion.models import ClipModel, DiffusionModel

log = logging.getLogger(__name__)

_KOHYA = re.compile(r"^(lora_unet|lora_te1|lora_te2|lora_te)_(.+?)\.(lora_down|lora_up|alpha)")
_PROCESSOR = re.compile(r"\.processor\.(to_q|to_k|to_v|to_out)_lora$")
_DIFFUSERS_PARTS = {
    ".lora_A.weight": "down",
    ".lora_B.weight": "up",
    ".lora.down.weight": "down",
    ".lora.up.weight": "up",
    ".lora_down.weight": "down",
    ".lora_up.weight": "up",
    ".down.weight": "down",
    ".up.weight": "up",
    ".alpha": "alpha",
}
_COMPONENTS = {"lora_unet": "unet", "lora_te": "te1", "lora_te1": "te1", "lora_te2": "te2"}
_DIFFUSERS_COMPONENTS = {"unet.": "unet", "text_encoder.": "te1", "text_encoder_2.": "te2"}


@dataclass(frozen=True, eq=False)
class LoraLayer:
    """One low-rank update: ``down`` [r, in, …], ``up`` [out, r, …] and its α."""

    down: torch.Tensor
    up: torch.Tensor
    alpha: float

    def delta(self, shape: torch.Size) -> torch.Tensor:
        """ΔW = (α / r) · up · down, reshaped to the target weight's shape (float32)."""
        rank = self.down.shape[0]
        product = self.up.flatten(1).float() @ self.down.flatten(1).float()
        return (product * (self.alpha / rank)).reshape(shape)


@dataclass(frozen=True, eq=False)
class LoraWeights:
    """A parsed LoRA file: layers by (component, module name as written in the file)."""

    source: Path
    layers: Mapping[tuple[str, str], LoraLayer]


def load_lora(path: str | Path) -> LoraWeights:
    """Read and parse a LoRA file (``.safetensors`` or a weights-only pickle)."""
    path = Path(path)
    return parse_lora(read_state_dict(path), path)


def parse_lora(state_dict: Mapping[str, torch.Tensor], path: Path) -> LoraWeights:
    """Group a LoRA state dict into layers; raise if nothing in it is a LoRA layer."""
    parts: dict[tuple[str, str], dict[str, torch.Tensor]] = defaultdict(dict)
    for key, tensor in state_dict.items():
        match = _KOHYA.match(key)
        if match:
            prefix, module, part = match.groups()
            parts[(_COMPONENTS[prefix], module)][part.removeprefix("lora_")] = tensor
            continue
        parsed = _parse_diffusers_key(key.removeprefix("base_model.model."))
        if parsed:
            component, module, part = parsed
            parts[(component, module)][part] = tensor
    layers = {}
    for target, found in parts.items():
        if "down" not in found or "up" not in found:
            continue
        rank = found["down"].shape[0]
        alpha = float(found["alpha"]) if "alpha" in found else float(rank)
        layers[target] = LoraLayer(found["down"], found["up"], alpha)
    if not layers:
        raise ModelLoadError(
            path,
            "holds no LoRA layers (expected lora_unet_*/lora_te_* with lora_down/lora_up, or "
            "diffusers unet.*/text_encoder.* with lora_A/lora_B).",
            "Check that this file is a LoRA; LyCORIS variants (LoHa, LoKr) are not supported.",
        )
    return LoraWeights(path, layers)


def _parse_diffusers_key(key: str) -> tuple[str, str, str] | None:
    component = next((c for p, c in _DIFFUSERS_COMPONENTS.items() if key.startswith(p)), None)
    if component is None:
        return None
    rest = key.split(".", 1)[1]
    for suffix, part in _DIFFUSERS_PARTS.items():
        if rest.endswith(suffix):
            module = rest[: -len(suffix)]
            module = _PROCESSOR.sub(
                lambda m: "." + (m.group(1) + ".0" if m.group(1) == "to_out" else m.group(1)),
                module,
            )
            return component, module, part
    return None


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
    model: DiffusionModel | None, clip: ClipModel | None, stack: Sequence[LoraUse]
) -> tuple[DiffusionModel | None, ClipModel | None]:
    """Return MODEL and CLIP with the stack merged in; the inputs are left untouched."""
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
            delta = layer.delta(weight.shape) * strength
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
            log.warning("%s: %d LoRA layers match no model layer", use.weights.source, skipped)
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


@torch.no_grad()
def _patched_copy(base: torch.nn.Module, deltas: Mapping[str, torch.Tensor]) -> torch.nn.Module:
    """A structural copy of ``base`` sharing all tensors, with ``deltas`` added to weights."""
    memo = {id(t): t for t in itertools.chain(base.parameters(), base.buffers())}
    patched = copy.deepcopy(base, memo)
    for name, delta in deltas.items():
        module = patched.get_submodule(name)
        weight = module.weight
        merged = (weight.float() + delta.to(weight.device)).to(weight.dtype)
        module.weight = torch.nn.Parameter(merged, requires_grad=False)
    return patched
