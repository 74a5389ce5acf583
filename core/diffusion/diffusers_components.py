"""Read the parts of a diffusers pipeline folder: which components it has, their configs, and
their weights (``.safetensors`` through the libraries' loaders, pickled ``.bin`` files only through
``read_state_dict``'s restricted unpickler)."""

from __future__ import annotations

from core.diffusion import offline  # noqa: F401  (must precede diffusers/transformers)

# isort: split
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTextModelWithProjection

from core.diffusion.checkpoint_io import read_state_dict
from core.diffusion.errors import ModelLoadError
from core.diffusion.families import ModelFamily
from core.diffusion.module_build import _build, _fit_clip_keys, _summarise_mismatch
from core.diffusion.previews import LATENT_RGB_FILE, LatentRgb


def _has_component(folder: Path, index: Mapping[str, Any], name: str) -> bool:
    """Whether a pipeline folder's index names ``name`` (not as null) and its folder exists."""
    entry = index.get(name)
    named = isinstance(entry, list) and any(part is not None for part in entry)
    return named and (folder / name).is_dir()


def _read_latent_rgb(folder: Path) -> LatentRgb | None:
    """A folder's own preview factors (``latent_rgb.json``), if it ships them."""
    path = folder / LATENT_RGB_FILE
    if not path.is_file():
        return None
    try:
        return LatentRgb.load(path)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelLoadError(
            path, f"has unreadable preview factors ({exc}).", "Delete or fix the file."
        ) from exc


def _family_of_unet(config: Mapping[str, Any]) -> ModelFamily:
    """SDXL adds size/crop embeddings; SD 2.x uses linear projections around its attention
    (``use_linear_in_transformer`` in v2-inference.yaml) where SD 1.x uses 1×1 convolutions."""
    if config.get("addition_embed_type") == "text_time":
        return ModelFamily.SDXL
    if config.get("use_linear_projection") or config.get("cross_attention_dim") == 1024:
        return ModelFamily.SD2
    return ModelFamily.SD1


def _read_scheduler_config(folder: Path) -> dict[str, Any]:
    path = folder / "scheduler" / "scheduler_config.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(path, f"is not valid JSON ({exc}).") from exc


def _from_pretrained(model_class: Any, component: Path, folder: Path, dtype: torch.dtype) -> Any:
    """``from_pretrained`` on a local folder only; any failure names the folder.

    Only ``.safetensors`` weights go through the libraries' own loaders (``use_safetensors``
    keeps them from falling back to a pickle); a component stored as pickled ``.bin`` files is
    read by ``read_state_dict``, so a hostile one gets the same refusal as a single file.
    """
    pickled = _pickled_weights(component)
    if pickled:
        return _from_pickled_weights(model_class, component, pickled, folder, dtype)
    if model_class in (AutoencoderKL, UNet2DConditionModel):
        options = {"torch_dtype": dtype, "low_cpu_mem_usage": False}
    else:
        options = {"dtype": dtype}
    try:
        model = model_class.from_pretrained(
            str(component), local_files_only=True, use_safetensors=True, **options
        )
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise ModelLoadError(
            component,
            f"could not be loaded as {model_class.__name__} ({_summarise_mismatch(exc)}).",
            f"Check that {folder} is a complete diffusers folder with config and weights.",
        ) from exc
    return model.eval().requires_grad_(False)


#: The pickled weight files ``from_pretrained`` would read: whole or sharded, no variants.
_PICKLED_WEIGHTS = re.compile(r"(diffusion_)?pytorch_model(-\d+-of-\d+)?\.bin")


def _pickled_weights(component: Path) -> list[Path]:
    """A component's pickled weight files, when it has no ``.safetensors`` weights to prefer."""
    if not component.is_dir() or any(component.glob("*.safetensors")):
        return []
    return sorted(p for p in component.iterdir() if _PICKLED_WEIGHTS.fullmatch(p.name))


def _from_pickled_weights(
    model_class: Any, component: Path, files: list[Path], folder: Path, dtype: torch.dtype
) -> Any:
    """Build ``model_class`` from the component's config and assign its ``.bin`` tensors."""
    try:
        if model_class in (AutoencoderKL, UNet2DConditionModel):
            config = model_class.load_config(str(component))
            factory = lambda: model_class.from_config(config)  # noqa: E731
        else:
            text_config = model_class.config_class.from_pretrained(str(component))
            factory = lambda: model_class(text_config)  # noqa: E731
    except (OSError, ValueError, KeyError) as exc:
        raise ModelLoadError(
            component,
            f"has no readable config for {model_class.__name__} ({_summarise_mismatch(exc)}).",
            f"Check that {folder} is a complete diffusers folder with config and weights.",
        ) from exc
    state_dict: dict[str, torch.Tensor] = {}
    for file in files:
        state_dict.update(read_state_dict(file))
    if model_class in (CLIPTextModel, CLIPTextModelWithProjection):
        state_dict = _fit_clip_keys(state_dict, model_class)
    return _build(factory, state_dict, component, model_class.__name__, dtype)
