"""Putting models on the run's device just before a node uses them.

Loaders keep weights in host memory; the sampler, the VAE nodes and the text encoder ask the
device's residency for room right before they compute, so on a GPU the least recently used
models move off it when another needs the space (on a CPU nothing moves).
"""

from __future__ import annotations

from typing import Any


def compute_device(ctx: Any) -> Any:
    """The torch device of this run: the CLI's or the settings' choice, else the best one."""
    from core.diffusion import devices

    return devices.pick_device(None if ctx is None or ctx.device == "auto" else ctx.device)


def place(ctx: Any, module: Any) -> Any:
    """Moves ``module`` onto the run's device, making room by offloading idle models."""
    from core.diffusion.cache import residency_for

    return residency_for(compute_device(ctx)).use(module)
