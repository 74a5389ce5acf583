"""LoRA-family files (LoRA, LoCon, LoHa, LoKr) applied to MODEL and CLIP values.

``files`` reads a file's keys into layers, ``layers`` computes each layer's update ΔW, and
``apply`` merges a stack of them into copies of the model that share every untouched tensor
with the loaded one.
"""

from __future__ import annotations

from core.diffusion.lora.apply import LoraUse, _patched_copy, apply_loras
from core.diffusion.lora.files import LoraWeights, ignored_notice, load_lora, parse_lora
from core.diffusion.lora.layers import Layer, LohaLayer, LokrLayer, LoraLayer

__all__ = [
    "Layer",
    "LohaLayer",
    "LokrLayer",
    "LoraLayer",
    "LoraUse",
    "LoraWeights",
    "_patched_copy",
    "apply_loras",
    "ignored_notice",
    "load_lora",
    "parse_lora",
]
