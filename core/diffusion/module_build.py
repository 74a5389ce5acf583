"""Build modules from weights without allocating random ones, and fit text-encoder key names.

Shared by every loader: a module is instantiated on the ``meta`` device and the file's tensors are
assigned strictly, so a missing or unexpected tensor is an error naming the file, never a silently
random weight.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from transformers import CLIPTextModel

from core.diffusion.errors import ModelLoadError


def _fit_clip_keys(converted: Mapping[str, torch.Tensor], model_class: type) -> dict:
    """Adapt converted names to this transformers version's module tree.

    transformers ≥ 5.6 keeps CLIPTextModel's modules at the top level (no ``text_model.``), and
    ``position_ids`` is a non-persistent buffer that old checkpoints still carry.
    """
    flat = model_class is CLIPTextModel
    fitted = {}
    for key, tensor in converted.items():
        name = key.removeprefix("text_model.") if flat else key
        if name.endswith("position_ids") or (flat and name.startswith("text_projection")):
            continue
        fitted[name] = tensor
    return fitted


def _build(
    factory: Callable[[], torch.nn.Module],
    state_dict: Mapping[str, torch.Tensor],
    path: Path,
    what: str,
    dtype: torch.dtype,
) -> torch.nn.Module:
    """Instantiate without allocating random weights, then assign the file's tensors strictly
    (``state_dict`` already holds them in ``dtype``, so assigning copies nothing)."""
    with torch.device("meta"):
        module = factory()
    try:
        module.load_state_dict(dict(state_dict), strict=True, assign=True)
    except RuntimeError as exc:
        raise ModelLoadError(
            path,
            f"has {what} weights that do not match the architecture read from the file "
            f"({_summarise_mismatch(exc)}).",
            "The file is damaged or a variant LatentLoom does not support; pass family= or "
            "prediction= if detection guessed wrong.",
        ) from exc
    _materialise_position_ids(module)
    # torch's own ``to``: diffusers' override only adds a warning about fp32-pinned modules,
    # which these classes do not have.
    torch.nn.Module.to(module, dtype=dtype)
    module.eval().requires_grad_(False)
    return module


def _summarise_mismatch(exc: RuntimeError) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) < 400 else text[:400] + "…"


def _materialise_position_ids(module: torch.nn.Module) -> None:
    """Recreate non-persistent buffers left on ``meta`` (CLIP's ``position_ids`` = 0..n-1)."""
    for name, buffer in list(module.named_buffers()):
        if not buffer.is_meta:
            continue
        owner_name, _, leaf = name.rpartition(".")
        owner = module.get_submodule(owner_name)
        if leaf != "position_ids":
            raise RuntimeError(f"buffer {name} has no stored value")
        values = torch.arange(buffer.shape[-1]).expand(buffer.shape).clone()
        owner.register_buffer(leaf, values, persistent=False)
