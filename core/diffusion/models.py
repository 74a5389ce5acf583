"""The loaded-model values that flow between nodes: MODEL, CLIP and VAE.

They are frozen wrappers around torch modules plus the facts about them that the rest of the
pipeline needs (family, prediction type, text-encoder conventions). Identity matters, not
equality: the model cache and LoRA patching hand out new wrappers and never mutate shared ones.

Each wrapper reports the memory it holds through ``cache_storages()``: the distinct tensor
storages behind its modules' parameters and buffers, keyed by device and address, so a storage
shared by two values (a LoRA-patched copy and its base, a MODEL and the VAE it previews with) has
the same key in both and the engine's cache can charge it once.
"""

from __future__ import annotations

from core.diffusion import offline  # noqa: F401  (must precede diffusers/transformers)

# isort: split
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from core.diffusion.families import ModelFamily, PredictionType
from core.diffusion.guidance_interval import guidance_interval_problem
from core.diffusion.previews import FAMILY_LATENT_RGB, LatentRgb

#: Scheduler-config entries that ``DiffusionModel.with_model_sampling`` sets or replaces.
MODEL_SAMPLING_KEYS = frozenset(
    {"model_sampling", "original_inference_steps", "sigma_min", "sigma_max", "sigma_data"}
)
#: A tensor storage's identity while it lives: its device and its address there.
StorageKey = tuple[str, int]


def module_storages(*modules: torch.nn.Module) -> dict[StorageKey, int]:
    """The distinct storages behind the modules' parameters and buffers, with their bytes.

    Tensors that share a storage (tied weights, views, the untouched layers of a LoRA-patched
    copy) count once; the storage's size is what memory holds even when a tensor views part.
    """
    found: dict[StorageKey, int] = {}
    for module in modules:
        for tensor in itertools.chain(module.parameters(), module.buffers()):
            if tensor.device.type == "meta":
                continue  # no memory behind it
            storage = tensor.untyped_storage()
            found[(str(tensor.device), storage.data_ptr())] = storage.nbytes()
    return found


class HoldsTensors:
    """A value whose size is that of the tensor storages it holds (see ``cache_storages``)."""

    def cache_storages(self) -> dict[StorageKey, int]:
        """The distinct storages this value keeps alive, with their bytes."""
        raise NotImplementedError

    def cache_nbytes(self) -> int:
        """Bytes of parameters and buffers this value holds, shared storages counted once."""
        return sum(self.cache_storages().values())


@dataclass(frozen=True, eq=False)
class TextEncoder(HoldsTensors):
    """One CLIP text transformer with its tokenizer and the family's conventions for it.

    ``missing_last_layers`` counts blocks a stored encoder lacks compared with the encoder the
    family was trained with (diffusers keeps only 23 of OpenCLIP-H's 24 blocks for SD 2.x), so
    layer numbers always refer to the complete encoder.
    """

    model: Any  # transformers CLIPTextModel or CLIPTextModelWithProjection
    tokenizer: Any  # transformers CLIPTokenizer
    pad_token_id: int
    default_layer: int
    normalize_hidden: bool
    with_projection: bool = False
    missing_last_layers: int = 0

    def cache_storages(self) -> dict[StorageKey, int]:
        return module_storages(self.model)

    @property
    def num_layers(self) -> int:
        """Depth of the complete encoder this one stands for."""
        return int(self.model.config.num_hidden_layers) + self.missing_last_layers

    @property
    def max_length(self) -> int:
        """Tokens per forward pass, start and end tokens included (77 for every SD encoder)."""
        return int(self.model.config.max_position_embeddings)


@dataclass(frozen=True, eq=False)
class ClipModel(HoldsTensors):
    """The CLIP socket value: a family's text encoder(s) and the chosen last layer.

    ``layer`` is None for the family default (SD 1.x: -1, SD 2.x and SDXL: -2), or a negative
    layer index counted from the end of the complete encoder ("CLIP Set Last Layer").
    """

    family: ModelFamily
    encoders: tuple[TextEncoder, ...]
    layer: int | None = None

    def cache_storages(self) -> dict[StorageKey, int]:
        return module_storages(*(encoder.model for encoder in self.encoders))

    def with_last_layer(self, layer: int | None) -> ClipModel:
        """Return a CLIP that stops at ``layer`` (-1 = last, -2 = penultimate…), sharing weights."""
        if layer is not None and not -self.encoders[0].num_layers <= layer <= -1:
            raise ValueError(
                f"CLIP layer {layer} is out of range: use -1 (last) down to "
                f"-{self.encoders[0].num_layers}."
            )
        return replace(self, layer=layer)


@dataclass(frozen=True, eq=False)
class DiffusionModel(HoldsTensors):
    """The MODEL socket value: a UNet and how to interpret its output."""

    unet: Any  # diffusers UNet2DConditionModel
    family: ModelFamily
    prediction: PredictionType
    scheduler_config: Mapping[str, Any] = field(default_factory=dict)
    #: The model's own latent→RGB preview factors (a folder's latent_rgb.json), if it has any.
    latent_rgb: LatentRgb | None = None
    #: The VAE that came with this UNet's checkpoint: samplers decode x̂₀ with it for the
    #: optional full-quality live preview (``NodeContext.preview_vae_every``).
    preview_vae: VaeModel | None = None
    #: Noise levels (σ_low, σ_high] where classifier-free guidance applies; outside them the
    #: samplers use the positive prediction alone. None: guidance at every step.
    guidance_interval: tuple[float, float] | None = None
    #: Per-call UNet extras (``core.diffusion.sampling.UnetExtra``) the sampler runs for every
    #: row of every UNet evaluation: model patches that add keyword arguments to the UNet call.
    unet_extras: tuple[Any, ...] = ()

    def cache_storages(self) -> dict[StorageKey, int]:
        """The storages of the UNet, the preview VAE and the extras, which this value keeps
        alive."""
        found = module_storages(self.unet)
        if self.preview_vae is not None:
            found.update(self.preview_vae.cache_storages())
        for extra in self.unet_extras:
            if isinstance(extra, HoldsTensors):
                found.update(extra.cache_storages())
        return found

    def guided_at(self, sigma: float) -> bool:
        """Whether a step whose input has noise level ``sigma`` gets guidance."""
        if self.guidance_interval is None:
            return True
        low, high = self.guidance_interval
        return low < sigma <= high

    def with_guidance_interval(self, low: float, high: float) -> DiffusionModel:
        """This model with guidance only where ``low < σ <= high`` (Kynkäänniemi et al.
        2024, "Applying guidance in a limited interval improves sample and distribution
        quality in diffusion models"); the UNet is shared, not copied."""
        problem = guidance_interval_problem(low, high)
        if problem is not None:
            raise ValueError(problem)
        return replace(self, guidance_interval=(float(low), float(high)))

    def with_model_sampling(
        self, prediction: PredictionType, zero_snr: bool = False, **sampling: Any
    ) -> DiffusionModel:
        """This model read as predicting ``prediction``, on the zero-terminal-SNR noise levels
        when ``zero_snr`` (Lin et al. 2024); the UNet is shared, not copied. ``sampling``
        replaces the model sampling of an earlier call: ``model_sampling`` "lcm" (with
        ``original_inference_steps``) or "edm" (with ``sigma_min``, ``sigma_max`` and
        optionally ``sigma_data``), read by ``core.diffusion.model_sampling``."""
        config = {
            key: value
            for key, value in self.scheduler_config.items()
            if key not in MODEL_SAMPLING_KEYS
        }
        config.update(
            prediction_type=str(prediction), rescale_betas_zero_snr=bool(zero_snr), **sampling
        )
        return replace(self, prediction=prediction, scheduler_config=config)

    @property
    def preview(self) -> LatentRgb:
        """The projection live previews use: the model's own factors, else its family's."""
        return self.latent_rgb or FAMILY_LATENT_RGB[self.family]

    @property
    def is_inpainting(self) -> bool:
        """9-channel UNets take the masked image latent and the mask next to the noisy latent."""
        return int(self.unet.config.in_channels) == 9


@dataclass(frozen=True, eq=False)
class VaeModel(HoldsTensors):
    """The VAE socket value: an AutoencoderKL and its latent scale factor."""

    vae: Any  # diffusers AutoencoderKL
    scaling_factor: float

    def cache_storages(self) -> dict[StorageKey, int]:
        return module_storages(self.vae)


@dataclass(frozen=True, eq=False)
class LoadedCheckpoint(HoldsTensors):
    """Everything one checkpoint provides."""

    source: Path
    family: ModelFamily
    model: DiffusionModel
    clip: ClipModel
    vae: VaeModel

    def cache_storages(self) -> dict[StorageKey, int]:
        return {
            **self.model.cache_storages(),
            **self.clip.cache_storages(),
            **self.vae.cache_storages(),
        }


def module_dtype(module: torch.nn.Module) -> torch.dtype:
    """The floating dtype of a module's first parameter."""
    return next(module.parameters()).dtype


def module_device(module: torch.nn.Module) -> torch.device:
    """The device of a module's first parameter."""
    return next(module.parameters()).device
