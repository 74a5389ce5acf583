"""UNet-only files (ComfyUI's UNETLoader): a diffusion model without text encoder or VAE, as
distilled UNets (SDXL-Lightning, SDXL-Turbo fine-tunes) and ComfyUI's own "save UNet" ship.

Three layouts are read: LDM names with the checkpoint prefix (``model.diffusion_model.*``),
LDM names without it (ComfyUI's ``models/unet``), and diffusers' ``UNet2DConditionModel``
names. The family comes from the UNet's shape (``unet_family``), the rest of the architecture from
the tensors, as for checkpoints (``core.diffusion.loading``).
"""

from __future__ import annotations

from core.diffusion import offline  # noqa: F401  (must precede diffusers/transformers)

# isort: split
import re
from collections.abc import Mapping
from pathlib import Path

import torch
from diffusers import UNet2DConditionModel
from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint

from core.diffusion.architecture import UNET_PREFIX, strip_prefix, unet_config_from_ldm
from core.diffusion.checkpoint_io import CastingView, read_state_dict
from core.diffusion.errors import ModelLoadError
from core.diffusion.families import FAMILY_TRAITS, ModelFamily, PredictionType, config_folder
from core.diffusion.keymap import unet_module_to_ldm
from core.diffusion.models import DiffusionModel
from core.diffusion.module_build import _build
from core.diffusion.resources import load_component_config

#: Cross-attention widths of the released SD 1.x and 2.x models.
_SD2_CONTEXT = 1024
_FAMILY_BY_CONTEXT = {768: ModelFamily.SD1, _SD2_CONTEXT: ModelFamily.SD2}
_REFINER_CONTEXT = 1280
#: The width each SDXL size number is embedded to (``addition_time_embed_dim``).
SDXL_SIZE_EMBEDDING = 256
#: The prefix ComfyUI's own model saves put before LDM names.
_COMFY_PREFIX = "diffusion_model."
_REMEDY = (
    "Expected a UNet-only file (LDM names such as input_blocks.0.0.weight, or diffusers names "
    "such as conv_in.weight) of an SD 1.x, SD 2.x or SDXL model; full checkpoints go in the "
    "checkpoints folder."
)


def unet_ldm_tensors(tensors: Mapping[str, torch.Tensor], path: Path) -> dict[str, torch.Tensor]:
    """The UNet's tensors under LDM names without prefix, whichever layout the file uses."""
    for prefix in (UNET_PREFIX, _COMFY_PREFIX):
        if f"{prefix}input_blocks.0.0.weight" in tensors:
            return strip_prefix(tensors, prefix)
    if "input_blocks.0.0.weight" in tensors:
        return dict(tensors)
    if "conv_in.weight" in tensors and "time_embedding.linear_1.weight" in tensors:
        return _diffusers_as_ldm(tensors, path)
    if any(
        key.startswith("cond_stage_model.") or key.startswith("conditioner.") for key in tensors
    ):
        raise ModelLoadError(path, "is a full checkpoint, not a UNet-only file.", _REMEDY)
    raise ModelLoadError(path, "has no UNet tensors LatentLoom recognises.", _REMEDY)


def _diffusers_as_ldm(tensors: Mapping[str, torch.Tensor], path: Path) -> dict[str, torch.Tensor]:
    resnets = {
        int(m.group(1)) for k in tensors if (m := re.match(r"down_blocks\.0\.resnets\.(\d+)\.", k))
    }
    ups = sorted({int(m.group(1)) for k in tensors if (m := re.match(r"up_blocks\.(\d+)\.", k))})
    config = {
        "layers_per_block": max(resnets, default=0) + 1,
        "up_block_types": [
            "CrossAttnUpBlock2D"
            if any(k.startswith(f"up_blocks.{i}.attentions.") for k in tensors)
            else "UpBlock2D"
            for i in ups
        ],
    }
    try:
        return {unet_module_to_ldm(key, config): value for key, value in tensors.items()}
    except KeyError as exc:
        raise ModelLoadError(path, f"has a tensor of no UNet layer ({exc}).", _REMEDY) from None


def unet_family(unet: Mapping[str, torch.Tensor]) -> tuple[ModelFamily, bool]:
    """(family, whether it is the SDXL refiner) of LDM UNet tensors: an added (size and
    pooled text) embedding marks SDXL, unless the cross-attention is SD 2.x's 1024 (Stable
    unCLIP's image embedding); then the width of released models; then the projection into
    attention: linear for SD 2.x, a 1×1 convolution for SD 1.x."""
    context = next((int(v.shape[1]) for k, v in unet.items() if k.endswith("attn2.to_k.weight")), 0)
    if "label_emb.0.0.weight" in unet and context != _SD2_CONTEXT:
        return ModelFamily.SDXL, context == _REFINER_CONTEXT
    if context in _FAMILY_BY_CONTEXT:
        return _FAMILY_BY_CONTEXT[context], False
    proj_in = next(v for k, v in unet.items() if k.endswith(".proj_in.weight"))
    return (ModelFamily.SD2 if proj_in.ndim == 2 else ModelFamily.SD1), False


def load_unet_file(
    path: str | Path,
    dtype: torch.dtype = torch.float32,
    prediction: PredictionType | None = None,
) -> DiffusionModel:
    """The MODEL of a UNet-only file, in ``dtype``; its prediction type is the family's usual
    one unless ``prediction`` says otherwise (a UNet alone does not record it)."""
    path = Path(path)
    unet_tensors = unet_ldm_tensors(read_state_dict(path), path)
    family, refiner = unet_family(unet_tensors)
    prediction = prediction or FAMILY_TRAITS[family].default_prediction
    inpainting = int(unet_tensors["input_blocks.0.0.weight"].shape[1]) == 9
    folder = config_folder(family, prediction, inpainting, refiner)
    config = unet_config_from_ldm(unet_tensors, load_component_config(folder, "unet"), path)
    if config.get("addition_embed_type") == "text_time":
        # The pooled text width is not in the UNet; the size numbers' embedding width is the
        # same in every released SDXL model, and what is left of the input is the pooled text.
        pooled = int(config["projection_class_embeddings_input_dim"]) - (
            (5 if refiner else 6) * SDXL_SIZE_EMBEDDING
        )
        if pooled <= 0:
            raise ModelLoadError(
                path, "has an SDXL UNet whose added embedding is too narrow.", _REMEDY
            )
        config["addition_time_embed_dim"] = SDXL_SIZE_EMBEDDING
    # Renamed keys are no longer the file's, so conversion reads the tensors in memory.
    prefixed = {UNET_PREFIX + key: value for key, value in unet_tensors.items()}
    unet = _build(
        lambda: UNet2DConditionModel.from_config(config),
        convert_ldm_unet_checkpoint(CastingView(prefixed, dtype), config),
        path,
        "UNet",
        dtype,
    )
    scheduler = load_component_config(folder, "scheduler")
    scheduler["prediction_type"] = str(prediction)
    return DiffusionModel(unet, family, prediction, scheduler)
