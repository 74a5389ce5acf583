"""AUTOMATIC1111 hypernetworks: small residual MLPs on the keys' and values' inputs of the
UNet's attention layers (ComfyUI's HypernetworkLoader).

A hypernetwork file (``.pt``, read without running code) maps a feature width to a pair of
modules, one for the keys and one for the values; each is a stack of linear layers
(``linear.N.weight``/``.bias``), optionally with layer norms between them, and changes an
attention layer's context c (the prompt tokens in cross-attention, the features themselves in
self-attention) to c + strength·mlp(c) before the key or value projection, in every layer
whose context has that width. The file's settings say which activation follows each linear
layer and whether the last one has it too.
"""

from __future__ import annotations

from core.diffusion import offline  # noqa: F401  (must precede diffusers/transformers)

# isort: split
import copy
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from core.diffusion.checkpoint_io import read_pickled_object
from core.diffusion.errors import ModelLoadError
from core.diffusion.merging import copy_with_tensors
from core.diffusion.models import (
    DiffusionModel,
    HoldsTensors,
    StorageKey,
    module_dtype,
    module_storages,
)

#: The activations A1111 offers, by the name its files store.
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "linear": nn.Identity,
    "relu": nn.ReLU,
    "leakyrelu": nn.LeakyReLU,
    "elu": nn.ELU,
    "swish": nn.Hardswish,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "softsign": nn.Softsign,
    "mish": nn.Mish,
}
_REMEDY = "Expected an AUTOMATIC1111 hypernetwork (.pt) in the hypernetworks folder."


def _mlp(weights: Mapping[str, torch.Tensor], settings: Mapping[str, Any]) -> nn.Sequential:
    """One key or value network from its tensors, in the order the file stores them (dropout
    is left out: it only acts in training)."""
    names = [key.removesuffix(".weight") for key in weights if key.endswith(".weight")]
    layer_norm = bool(settings.get("is_layer_norm", False))
    activation = ACTIVATIONS[str(settings.get("activation_func", "linear"))]
    activate_output = bool(settings.get("activate_output", False))
    linears = names[::2] if layer_norm else names
    norms = names[1::2] if layer_norm else []
    layers: list[nn.Module] = []
    for number, name in enumerate(linears):
        weight, bias = weights[f"{name}.weight"], weights[f"{name}.bias"]
        linear = nn.Linear(weight.shape[1], weight.shape[0])
        linear.load_state_dict({"weight": weight.float(), "bias": bias.float()})
        layers.append(linear)
        if number < len(linears) - 1 or activate_output:
            layers.append(activation())
        if layer_norm:
            norm_weight = weights[f"{norms[number]}.weight"]
            norm = nn.LayerNorm(norm_weight.shape[0])
            norm.load_state_dict(
                {"weight": norm_weight.float(), "bias": weights[f"{norms[number]}.bias"].float()}
            )
            layers.append(norm)
    return nn.Sequential(*layers).eval().requires_grad_(False)


@dataclass(frozen=True, eq=False)
class Hypernetwork(HoldsTensors):
    """A loaded hypernetwork: per context width, its key and value networks."""

    networks: nn.ModuleDict  # str(width) → ModuleList([key network, value network])
    source: Path

    def cache_storages(self) -> dict[StorageKey, int]:
        return module_storages(self.networks)

    @property
    def widths(self) -> list[int]:
        return sorted(int(width) for width in self.networks)


def hypernetwork_from_object(loaded: object, path: Path) -> Hypernetwork:
    """A hypernetwork from what an A1111 file holds (width → (key, value) state dicts, plus
    its settings)."""
    if not isinstance(loaded, dict):
        raise ModelLoadError(path, f"holds a {type(loaded).__name__}, not a hypernetwork.", _REMEDY)
    activation = str(loaded.get("activation_func", "linear"))
    if activation not in ACTIVATIONS:
        raise ModelLoadError(
            path,
            f"uses the activation {activation!r}, which is none of {', '.join(ACTIVATIONS)}.",
            _REMEDY,
        )
    networks = {}
    for width, pair in loaded.items():
        if not isinstance(width, int):
            continue
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
            raise ModelLoadError(path, f"has no key and value networks for width {width}.", _REMEDY)
        try:
            networks[str(width)] = nn.ModuleList([_mlp(part, loaded) for part in pair])
        except (KeyError, IndexError, RuntimeError, AttributeError) as exc:
            raise ModelLoadError(
                path, f"has a damaged network for width {width} ({exc}).", _REMEDY
            ) from None
    if not networks:
        raise ModelLoadError(path, "has no networks (no width → layers entries).", _REMEDY)
    return Hypernetwork(nn.ModuleDict(networks), path)


def load_hypernetwork(path: str | Path) -> Hypernetwork:
    """Read an A1111 hypernetwork file."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(path, "no such file.", "Check the name and the model folders.")
    return hypernetwork_from_object(read_pickled_object(path), path)


class _ChangedContext:
    """An attention module as its processor sees it, with the key and value projections
    reading the hypernetwork-changed context; everything else is the module's own."""

    def __init__(self, attn: Any, key: nn.Module, value: nn.Module, strength: float) -> None:
        self._attn, self._key, self._value, self._strength = attn, key, value, strength

    def to_k(self, context: torch.Tensor) -> torch.Tensor:
        return self._attn.to_k(context + self._key(context) * self._strength)

    def to_v(self, context: torch.Tensor) -> torch.Tensor:
        return self._attn.to_v(context + self._value(context) * self._strength)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._attn, name)


class HypernetworkAttention(nn.Module):
    """An attention processor that runs the layer's own processor (``base``) with the
    hypernetwork applied to its context's width, if the hypernetwork has one."""

    def __init__(self, base: Any, networks: nn.ModuleDict, strength: float) -> None:
        super().__init__()
        self.base = base
        self.networks = networks
        self.strength = float(strength)

    def __call__(  # diffusers passes only the arguments this signature names
        self,
        attn: Any,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
    ) -> torch.Tensor:
        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        width = str(context.shape[-1])
        target = attn
        if width in self.networks:
            key, value = self.networks[width]
            target = _ChangedContext(attn, key, value, self.strength)
        extra = {} if temb is None else {"temb": temb}
        return self.base(
            target,
            hidden_states,
            encoder_hidden_states=encoder_hidden_states,
            attention_mask=attention_mask,
            **extra,
        )


def apply_hypernetwork(
    model: DiffusionModel, hypernetwork: Hypernetwork, strength: float
) -> DiffusionModel:
    """``model`` with ``hypernetwork`` in every attention layer, at ``strength``; ``model``
    itself is left as it was and the weights are shared."""
    from core.diffusion.ip_adapter import ImagePromptAttention

    unet = copy_with_tensors(model.unet, {})
    networks = hypernetwork.networks
    if module_dtype(networks) != module_dtype(unet):
        networks = copy.deepcopy(networks).to(module_dtype(unet))
    # Listed first: setting a processor that is a module adds it to the UNet's modules.
    attentions = [m for m in unet.modules() if hasattr(m, "set_processor")]
    for module in attentions:
        processor = module.processor
        if isinstance(processor, ImagePromptAttention):
            # The image attention keeps its own keys; the text's go through the hypernetwork.
            changed = ImagePromptAttention(
                HypernetworkAttention(processor.base, networks, strength), processor.adapters
            )
        else:
            changed = HypernetworkAttention(processor, networks, strength)
        module.set_processor(changed)
    # The processors are modules of the copied UNet, so its size and device moves include them.
    return replace(model, unet=unet)
