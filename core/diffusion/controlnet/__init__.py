"""ControlNets and T2I-Adapters: loading their files and steering the sampler with them."""

from __future__ import annotations

from core.diffusion.controlnet.apply import CONTROL_SLOT, ControlLink, apply_control
from core.diffusion.controlnet.loading import ControlModel, load_control_model

__all__ = ["CONTROL_SLOT", "ControlLink", "ControlModel", "apply_control", "load_control_model"]
