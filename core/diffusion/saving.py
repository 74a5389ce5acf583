"""Saving MODEL, CLIP and VAE as one checkpoint in the original LDM single-file layout.

The tensors are renamed with ``core.diffusion.keymap`` (the inverse of what the loader reads),
so a saved file opens in LatentLoom, ComfyUI, A1111 and every tool that reads SD checkpoints.
The file is written as safetensors (a little-endian u64 header length, a JSON header naming
each tensor's dtype, shape and byte range, then the raw bytes) one tensor at a time, so saving
needs no second copy of the model in memory.
"""

from __future__ import annotations

from core.diffusion import offline  # noqa: F401  (must precede diffusers/transformers)

# isort: split
import json
import struct
from collections.abc import Callable, Mapping
from typing import BinaryIO

import torch

from core.diffusion.architecture import V_PRED_MARKER
from core.diffusion.families import ClipLayout, ModelFamily, PredictionType, family_traits
from core.diffusion.keymap import clip_to_ldm, openclip_to_ldm, unet_to_ldm, vae_to_ldm
from core.diffusion.models import ClipModel, DiffusionModel, VaeModel

_SAFETENSORS_DTYPES = {
    torch.float64: "F64",
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.float8_e4m3fn: "F8_E4M3",
    torch.float8_e5m2: "F8_E5M2",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}
_VAE_PREFIX = "first_stage_model."


class CheckpointSaveError(ValueError):
    """MODEL, CLIP and VAE that do not make one checkpoint; ``field`` names the input at fault."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def checkpoint_tensors(
    model: DiffusionModel, clip: ClipModel, vae: VaeModel
) -> dict[str, torch.Tensor]:
    """Every tensor of the three under its LDM checkpoint name (no copies are made, except
    where the layout fuses tensors: OpenCLIP's q/k/v projections)."""
    # The SDXL refiner is the SDXL checkpoint with the OpenCLIP-bigG encoder alone.
    refiner = model.family is ModelFamily.SDXL and len(clip.encoders) == 1
    traits = family_traits(model.family, refiner)
    if clip.family is not model.family:
        raise CheckpointSaveError(
            f"the CLIP is an {clip.family} text encoder but the MODEL an {model.family} UNet: "
            "connect the CLIP that belongs to this model",
            "clip",
        )
    if len(clip.encoders) != len(traits.text_encoders):
        raise CheckpointSaveError(
            f"the CLIP has {len(clip.encoders)} text encoders where an {model.family} "
            f"checkpoint has {len(traits.text_encoders)}: this kind of model cannot be saved",
            "clip",
        )
    tensors = unet_to_ldm(model.unet.state_dict(), model.unet.config)
    tensors.update(vae_to_ldm(vae.vae.state_dict(), vae.vae.config, _VAE_PREFIX))
    for encoder, encoder_traits in zip(clip.encoders, traits.text_encoders, strict=True):
        state = encoder.model.state_dict()
        if encoder_traits.layout is ClipLayout.OPENCLIP:
            tensors.update(openclip_to_ldm(state, encoder_traits.ldm_prefix))
        else:
            tensors.update(clip_to_ldm(state, encoder_traits.ldm_prefix))
    if model.prediction is PredictionType.V_PREDICTION:
        tensors[V_PRED_MARKER] = torch.tensor([])  # how v-prediction checkpoints say so
    unsupported = {str(t.dtype) for t in tensors.values() if t.dtype not in _SAFETENSORS_DTYPES}
    if unsupported:
        raise CheckpointSaveError(
            f"the model holds tensors of type {', '.join(sorted(unsupported))}, which "
            "safetensors cannot store",
            "model",
        )
    return tensors


def write_safetensors(
    stream: BinaryIO,
    tensors: Mapping[str, torch.Tensor],
    metadata: Mapping[str, str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> None:
    """Write ``tensors`` to ``stream`` in the safetensors format, one tensor at a time.

    ``progress(done, total)`` is called after each tensor and may raise to stop.
    """
    names = sorted(tensors)
    header: dict[str, object] = {}
    if metadata:
        header["__metadata__"] = dict(metadata)
    offset = 0
    for name in names:
        tensor = tensors[name]
        size = tensor.numel() * tensor.element_size()
        header[name] = {
            "dtype": _SAFETENSORS_DTYPES[tensor.dtype],
            "shape": list(tensor.shape),
            "data_offsets": [offset, offset + size],
        }
        offset += size
    encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
    encoded += b" " * (-len(encoded) % 8)  # the tensor data starts 8-byte aligned
    stream.write(struct.pack("<Q", len(encoded)))
    stream.write(encoded)
    for done, name in enumerate(names, start=1):
        tensor = tensors[name].detach().to("cpu").contiguous()
        if tensor.numel():
            stream.write(tensor.reshape(-1).view(torch.uint8).numpy().data)
        if progress is not None:
            progress(done, len(names))
