"""Stable unCLIP: SD 2.1 UNets conditioned on a CLIP image embedding, the DALL·E 2 decoder
idea (Ramesh et al. 2022) — variations of a picture, with or without text.

The UNet's class-embedding input (LDM's ``label_emb``, ``adm``) takes the picture's CLIP image
embedding after noise augmentation, next to the sinusoidal embedding of the augmentation's
noise level. As in diffusers' StableUnCLIPImg2ImgPipeline: the embedding is normalised with
the encoder's statistics, noised to level t of a cosine DDPM schedule
(√ᾱ_t·x + √(1−ᾱ_t)·ε), unnormalised, and concatenated with the level's embedding. Several
pictures mix as ComfyUI mixes them: each one's input, scaled by its strength, summed, then
noised once more at a small level. Contexts without a picture, the negative prompt usually,
get zeros.

On an SDXL base model the same pictures are "revision" image prompts: the noised, weighted
embedding (ViT-bigG's, as wide as SDXL's pooled text embedding) replaces the pooled text
embedding in the UNet's added embedding (``UnclipPrompts.pooled_embedding``).
"""

from __future__ import annotations

from core.diffusion import offline  # noqa: F401  (must precede diffusers/transformers)

# isort: split
import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from core.diffusion.checkpoint_io import read_state_dict
from core.diffusion.clip_vision import ClipVisionModel, clip_vision_from_state_dict
from core.diffusion.errors import ModelLoadError
from core.diffusion.loading import LoadOverrides, load_checkpoint_state_dict
from core.diffusion.models import HoldsTensors, LoadedCheckpoint, StorageKey
from core.diffusion.resources import load_component_config

#: The conditioning entry slot (``ConditioningEntry.extras``) holding an entry's pictures.
SLOT = "unclip"
NOISER_PREFIX = "noise_augmentor."
#: Noise level at which the sum of several pictures' inputs is noised again (ComfyUI's
#: ``unclip_noise_augment_merge``).
MERGE_AUGMENTATION = 0.05


def cosine_alphas_cumprod(steps: int = 1000, s: float = 0.008) -> torch.Tensor:
    """ᾱ_t of the cosine schedule (Nichol & Dhariwal 2021, eq. 17), betas capped at 0.999."""

    def alpha_bar(t: float) -> float:
        return math.cos((t + s) / (1 + s) * math.pi / 2) ** 2

    betas = [
        min(1 - alpha_bar((i + 1) / steps) / alpha_bar(i / steps), 0.999) for i in range(steps)
    ]
    return torch.cumprod(1 - torch.tensor(betas, dtype=torch.float64), 0).float()


def level_embedding(level: int, dim: int) -> torch.Tensor:
    """The sinusoidal embedding of noise level ``level`` ([1, dim]; cosines first, frequencies
    10000^(−i/half): diffusers' ``flip_sin_to_cos=True, downscale_freq_shift=0``)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
    args = float(level) * freqs
    return torch.cat([torch.cos(args), torch.sin(args)])[None]


@dataclass(frozen=True, eq=False)
class ImageEmbedNoiser(HoldsTensors):
    """Stable unCLIP's noise augmentation of image embeddings: statistics and schedule."""

    mean: torch.Tensor  # [1, dim]
    std: torch.Tensor  # [1, dim]
    alphas_cumprod: torch.Tensor  # [levels]

    def cache_storages(self) -> dict[StorageKey, int]:
        found = {}
        for tensor in (self.mean, self.std, self.alphas_cumprod):
            storage = tensor.untyped_storage()
            found[(str(tensor.device), storage.data_ptr())] = storage.nbytes()
        return found

    @property
    def dim(self) -> int:
        return int(self.mean.shape[-1])

    @property
    def max_level(self) -> int:
        return int(self.alphas_cumprod.shape[0])

    def level(self, noise_augmentation: float) -> int:
        """ComfyUI's level for an augmentation amount in 0..1."""
        return round((self.max_level - 1) * min(max(noise_augmentation, 0.0), 1.0))

    def augment(self, embeds: torch.Tensor, level: int, noise: torch.Tensor) -> torch.Tensor:
        """``embeds`` [B, dim] noised to ``level`` with ``noise``, then its level's embedding
        beside it: the UNet's class-embedding input [B, 2·dim]."""
        a = self.alphas_cumprod[level]
        scaled = (embeds.float() - self.mean) / self.std
        noised = a.sqrt() * scaled + (1 - a).sqrt() * noise.float()
        unscaled = noised * self.std + self.mean
        return torch.cat([unscaled, level_embedding(level, self.dim).expand(len(embeds), -1)], 1)


@dataclass(frozen=True)
class UnclipImage:
    """One picture of an unCLIP conditioning: its CLIP image embedding [dim] and weights."""

    embeds: torch.Tensor
    strength: float
    noise_augmentation: float


@dataclass(frozen=True, eq=False)
class UnclipPrompts:
    """The pictures an entry carries in its ``unclip`` slot. The unCLIP model's own extra
    (``UnclipInput``) reads them; alone they add nothing to a UNet call, so a model without
    the image input ignores them, as ComfyUI does."""

    images: tuple[UnclipImage, ...]

    def __call__(self, call: Any) -> Mapping[str, Any]:
        return {}

    def pooled_embedding(self, width: int, seed: int) -> torch.Tensor:
        """SDXL "revision": the pooled vector [1, width] that takes the pooled text
        embedding's place in the UNet's added embedding. Each picture is noised at its level
        and weighted by its strength; several are summed (and noised at level 0, as ComfyUI
        does for SDXL). Only the embedding part is kept, not the level's embedding."""
        for image in self.images:
            if image.embeds.shape[-1] != width:
                raise ValueError(
                    f"the image embedding is {image.embeds.shape[-1]} wide but this SDXL "
                    f"model's pooled prompt is {width} wide: encode the picture with the "
                    "ViT-bigG CLIP vision model (clip_vision_g) for SDXL revision"
                )
        noiser = revision_noiser(width)
        return class_input(noiser, self.images, seed, merge_augmentation=0.0)[:, :width]


def add_images(
    entry_extras: Mapping[str, Any], embeds: torch.Tensor, strength: float, augmentation: float
) -> UnclipPrompts:
    """An entry's pictures with those of ``embeds`` ([B, dim], one per picture) appended."""
    old = entry_extras.get(SLOT)
    images = old.images if isinstance(old, UnclipPrompts) else ()
    new = tuple(UnclipImage(e.detach().float().cpu(), strength, augmentation) for e in embeds)
    return UnclipPrompts(images + new)


def class_input(
    noiser: ImageEmbedNoiser,
    images: tuple[UnclipImage, ...],
    seed: int,
    merge_augmentation: float = MERGE_AUGMENTATION,
) -> torch.Tensor:
    """The UNet's class-embedding input [1, 2·dim] for one context's pictures (zeros for
    none): each picture noised at its level and weighted by its strength; several are summed
    and the sum noised again at ``merge_augmentation``. The noise is drawn from ``seed``."""
    if not images:
        return torch.zeros(1, 2 * noiser.dim)

    def noise() -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed % 2**64)
        return torch.randn(1, noiser.dim, generator=generator)

    inputs = []
    for image in images:
        if image.embeds.shape[-1] != noiser.dim:
            raise ValueError(
                f"the image embedding is {image.embeds.shape[-1]} wide but this unCLIP model "
                f"takes {noiser.dim}: encode the picture with the CLIP vision model that came "
                "with the checkpoint"
            )
        level = noiser.level(image.noise_augmentation)
        inputs.append(noiser.augment(image.embeds[None], level, noise()) * image.strength)
    if len(inputs) == 1:
        return inputs[0]
    total = torch.stack(inputs).sum(0)
    return noiser.augment(total[:, : noiser.dim], noiser.level(merge_augmentation), noise())


@functools.cache
def revision_noiser(dim: int) -> ImageEmbedNoiser:
    """SDXL's augmentation of image prompts: no statistics (mean 0, std 1) and the cosine
    schedule of 1000 levels, as the SDXL base model's noise augmentor is configured."""
    return ImageEmbedNoiser(torch.zeros(1, dim), torch.ones(1, dim), cosine_alphas_cumprod(1000))


@dataclass(frozen=True, eq=False)
class UnclipInput(HoldsTensors):
    """The unCLIP model's per-call extra: ``class_labels`` for every row, from its entry's
    pictures (zeros without any). The augmentation noise comes from the run's seed."""

    noiser: ImageEmbedNoiser

    def cache_storages(self) -> dict[StorageKey, int]:
        return self.noiser.cache_storages()

    def __call__(self, call: Any) -> Mapping[str, Any]:
        rows = []
        for entry in call.entries:
            prompts = entry.extras.get(SLOT)
            images = prompts.images if isinstance(prompts, UnclipPrompts) else ()
            rows.append(class_input(self.noiser, images, call.seed).expand(call.batch, -1))
        labels = torch.cat(rows).to(call.x.device, call.x.dtype)
        return {"class_labels": labels}


def noiser_from_state_dict(
    state_dict: Mapping[str, torch.Tensor], dim: int, path: Path
) -> ImageEmbedNoiser:
    """The checkpoint's augmentation statistics and schedule (``noise_augmentor.*``).

    Files that do not carry the statistics (they were kept apart from the released weights)
    normalise with mean 0 and std 1, as ComfyUI does; a missing schedule is the cosine one the
    models were trained with (``resources/configs/sd21_unclip_*/image_noising.json``).
    """
    mean = state_dict.get(NOISER_PREFIX + "data_mean")
    std = state_dict.get(NOISER_PREFIX + "data_std")
    alphas = state_dict.get(NOISER_PREFIX + "alphas_cumprod")
    mean = torch.zeros(1, dim) if mean is None else mean.float().reshape(1, -1)
    std = torch.ones(1, dim) if std is None else std.float().reshape(1, -1)
    if mean.shape[-1] != dim or std.shape[-1] != dim:
        raise ModelLoadError(
            path,
            f"has image-embedding statistics {mean.shape[-1]} wide for a UNet that takes "
            f"{dim}-wide embeddings.",
            "The file is damaged or mixes parts of different unCLIP models.",
        )
    if alphas is None:
        folder = "sd21_unclip_h" if dim == 1024 else "sd21_unclip_l"
        steps = int(load_component_config(folder, "image_noising")["num_train_timesteps"])
        alphas = cosine_alphas_cumprod(steps)
    return ImageEmbedNoiser(mean.clone(), std.clone(), alphas.float().clone())


@dataclass(frozen=True, eq=False)
class UnclipCheckpoint(HoldsTensors):
    """What ``unCLIPCheckpointLoader`` gives: the checkpoint's parts and its image encoder."""

    checkpoint: LoadedCheckpoint
    clip_vision: ClipVisionModel

    def cache_storages(self) -> dict[StorageKey, int]:
        return {**self.checkpoint.cache_storages(), **self.clip_vision.cache_storages()}


def load_unclip_checkpoint(
    path: str | Path, overrides: LoadOverrides | None = None, progress: Any = None
) -> UnclipCheckpoint:
    """Load an SD 2.1 unCLIP checkpoint (sd21-unclip-h/l): MODEL with the image input, CLIP,
    VAE and the CLIP image encoder stored in it (``embedder.*``)."""
    path = Path(path)
    state_dict = read_state_dict(path)
    if "model.diffusion_model.label_emb.0.0.weight" not in state_dict:
        raise ModelLoadError(
            path,
            "is not an unCLIP checkpoint (its UNet has no image-embedding input, "
            "model.diffusion_model.label_emb.*).",
            "Load it with Load Checkpoint, or choose an unCLIP model such as sd21-unclip-h.",
        )
    options = {} if progress is None else {"progress": progress}
    loaded = load_checkpoint_state_dict(state_dict, path, overrides or LoadOverrides(), **options)
    unet = loaded.model.unet
    if unet.config.get("class_embed_type") != "projection":
        raise ModelLoadError(
            path,
            "has an image-embedding input only SD 2.x unCLIP UNets have, on a UNet of "
            f"another family ({loaded.family}).",
            "Choose an SD 2.1 unCLIP checkpoint.",
        )
    dim = int(unet.config.projection_class_embeddings_input_dim) // 2
    noiser = noiser_from_state_dict(state_dict, dim, path)
    encoder = clip_vision_from_state_dict(state_dict, path)
    if encoder.embed_dim != dim:
        raise ModelLoadError(
            path,
            f"holds an image encoder of {encoder.embed_dim}-wide embeddings for a UNet that "
            f"takes {dim}.",
            "The file is damaged or mixes parts of different unCLIP models.",
        )
    model = replace(loaded.model, unet_extras=(*loaded.model.unet_extras, UnclipInput(noiser)))
    return UnclipCheckpoint(replace(loaded, model=model), encoder)
