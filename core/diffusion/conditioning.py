"""The CONDITIONING value and the pure operations that combine it.

A ``Conditioning`` is a list of entries, each one context the sampler attends to: token
embeddings ``[batch, tokens, features]``, an optional pooled embedding (SDXL), and options that
restrict where and how strongly it applies. Operations return new values and never modify their
inputs, so cached results stay valid. Their semantics follow ComfyUI's nodes of the same names,
except that areas are kept in pixels (independent of the latent's downsampling factor).
"""

from __future__ import annotations

from core.diffusion import offline  # noqa: F401  (must precede diffusers/transformers)

# isort: split
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import torch

MaskMode = Literal["default", "mask_bounds"]


@dataclass(frozen=True)
class Area:
    """A rectangle in pixels of the output image: left, top, width, height."""

    x: int
    y: int
    width: int
    height: int

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0 or self.x < 0 or self.y < 0:
            raise ValueError(f"area {self} must have a positive size and a non-negative origin")


@dataclass(frozen=True)
class SizeConditioning:
    """SDXL's micro-conditioning (Podell et al., 2023, §2.2), sizes as (height, width).

    A size left None is the size of the image being sampled. ``aesthetic_score`` is set only
    for the SDXL refiner, which is conditioned on (original size, crop, aesthetic score)
    instead of (original size, crop, target size) (Podell et al., 2023, §2.5).
    """

    original_size: tuple[int, int] | None = None
    crop_top_left: tuple[int, int] = (0, 0)
    target_size: tuple[int, int] | None = None
    aesthetic_score: float | None = None


@dataclass(frozen=True)
class ConditioningOptions:
    """Where and how strongly one context applies.

    ``strength`` scales this context's contribution; ``area`` limits it to a rectangle;
    ``mask`` (``[H, W]`` or ``[batch, H, W]`` in 0..1) weights it per pixel with
    ``mask_strength``, and ``mask_mode`` "mask_bounds" also restricts it to the mask's bounding
    box (ComfyUI's ``set_cond_area``). ``timestep_range`` (start, end), fractions of the
    model's noise schedule from 0 (pure noise) to 1 (clean), limits it to the steps in between.
    ``concat_latent`` is the unscaled VAE latent ``[batch, 4, h, w]`` of a picture an
    instruction-editing UNet (InstructPix2Pix, 8 input channels) takes beside the noisy latent.
    """

    strength: float = 1.0
    area: Area | None = None
    mask: torch.Tensor | None = None
    mask_strength: float = 1.0
    mask_mode: MaskMode = "default"
    size: SizeConditioning | None = None
    timestep_range: tuple[float, float] | None = None
    concat_latent: torch.Tensor | None = None


@dataclass(frozen=True, eq=False)
class ConditioningEntry:
    """One context: token embeddings, pooled embedding (SDXL) and options.

    ``extras`` maps a slot name ("control": the ControlNet chain…) to a per-call UNet extra
    (``core.diffusion.sampling.UnetExtra``) that the sampler runs for the rows of this entry at
    every UNet evaluation. The mapping is never modified: ``with_extra`` makes a new entry.
    """

    embeds: torch.Tensor
    pooled: torch.Tensor | None = None
    options: ConditioningOptions = ConditioningOptions()
    extras: Mapping[str, Any] = field(default_factory=dict)


def with_extra(entry: ConditioningEntry, slot: str, extra: Any | None) -> ConditioningEntry:
    """``entry`` with ``extra`` in ``slot`` (None: the slot emptied); the input is unchanged."""
    extras = {name: value for name, value in entry.extras.items() if name != slot}
    if extra is not None:
        extras[slot] = extra
    return replace(entry, extras=extras)


@dataclass(frozen=True, eq=False)
class Conditioning:
    """An ordered list of contexts, all applied together by the sampler."""

    entries: tuple[ConditioningEntry, ...]

    def __iter__(self):
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int) -> ConditioningEntry:
        return self.entries[index]


def _map_options(conditioning: Conditioning, **changes: object) -> Conditioning:
    return Conditioning(
        tuple(replace(e, options=replace(e.options, **changes)) for e in conditioning.entries)
    )


def combine(*conditionings: Conditioning) -> Conditioning:
    """Conditioning Combine: all contexts of all inputs, in order (the sampler mixes them)."""
    return Conditioning(tuple(e for c in conditionings for e in c.entries))


def _fit_tokens(embeds: torch.Tensor, length: int) -> torch.Tensor:
    """Truncate or zero-pad along the token axis to ``length`` (ComfyUI ConditioningAverage)."""
    if embeds.shape[1] >= length:
        return embeds[:, :length]
    padding = embeds.new_zeros(embeds.shape[0], length - embeds.shape[1], embeds.shape[2])
    return torch.cat([embeds, padding], dim=1)


def average(to: Conditioning, source: Conditioning, to_strength: float) -> Conditioning:
    """Conditioning Average: ``to·w + source·(1−w)`` for every entry of ``to``.

    Only ``source``'s first entry is used, as in ComfyUI. Its tokens are truncated or
    zero-padded to each target entry's length; pooled embeddings are blended when both exist,
    otherwise the target's is kept. Options come from ``to``.
    """
    if not source.entries:
        return to
    first = source.entries[0]
    entries = []
    for entry in to.entries:
        other = _fit_tokens(first.embeds.to(entry.embeds), entry.embeds.shape[1])
        embeds = entry.embeds * to_strength + other * (1.0 - to_strength)
        pooled = entry.pooled
        if pooled is not None and first.pooled is not None:
            pooled = pooled * to_strength + first.pooled.to(pooled) * (1.0 - to_strength)
        entries.append(replace(entry, embeds=embeds, pooled=pooled))
    return Conditioning(tuple(entries))


def concat(to: Conditioning, source: Conditioning) -> Conditioning:
    """Conditioning Concat: append ``source``'s first entry's tokens to every entry of ``to``.

    The UNet then attends to both prompts' tokens at once; pooled and options come from ``to``.
    """
    if not source.entries:
        return to
    extra = source.entries[0].embeds
    return Conditioning(
        tuple(
            replace(e, embeds=torch.cat([e.embeds, extra.to(e.embeds)], dim=1)) for e in to.entries
        )
    )


def set_area(conditioning: Conditioning, area: Area, strength: float = 1.0) -> Conditioning:
    """Conditioning Set Area: apply every entry only inside ``area`` with ``strength``."""
    return _map_options(conditioning, area=area, strength=strength)


def set_mask(
    conditioning: Conditioning,
    mask: torch.Tensor,
    strength: float = 1.0,
    mode: MaskMode = "default",
) -> Conditioning:
    """Conditioning Set Mask: weight every entry per pixel by ``mask`` (0..1) times ``strength``."""
    if mask.ndim not in (2, 3):
        raise ValueError(f"a mask is [H, W] or [batch, H, W], got shape {tuple(mask.shape)}")
    return _map_options(conditioning, mask=mask, mask_strength=strength, mask_mode=mode)


def set_size(conditioning: Conditioning, size: SizeConditioning) -> Conditioning:
    """Attach SDXL size/crop conditioning to every entry.

    An entry made for the refiner keeps its aesthetic score when ``size`` has none, so that
    sizing refiner conditioning never turns it into base conditioning.
    """
    entries = []
    for entry in conditioning.entries:
        old = entry.options.size
        new = size
        if size.aesthetic_score is None and old is not None and old.aesthetic_score is not None:
            new = replace(size, aesthetic_score=old.aesthetic_score)
        entries.append(replace(entry, options=replace(entry.options, size=new)))
    return Conditioning(tuple(entries))


def set_timestep_range(conditioning: Conditioning, start: float, end: float) -> Conditioning:
    """Conditioning Set Timestep Range: every entry applies only while sampling is between
    ``start`` and ``end`` (fractions of the schedule, 0 = pure noise, 1 = clean), so one
    prompt can lay out the picture and another finish its details."""
    if not 0.0 <= start <= end <= 1.0:
        raise ValueError(
            f"the range {start:g}..{end:g} is not within 0..1 with start at or before end"
        )
    return _map_options(conditioning, timestep_range=(float(start), float(end)))


def set_concat_latent(conditioning: Conditioning, latent: torch.Tensor) -> Conditioning:
    """Every entry with ``latent`` (unscaled VAE latents) as the picture an
    InstructPix2Pix-style UNet edits (ComfyUI's ``concat_latent_image``)."""
    return _map_options(conditioning, concat_latent=latent)


def zero_out(conditioning: Conditioning) -> Conditioning:
    """Conditioning Zero Out: same shapes, all zeros (SDXL's usual negative for some models)."""
    return Conditioning(
        tuple(
            replace(
                e,
                embeds=torch.zeros_like(e.embeds),
                pooled=None if e.pooled is None else torch.zeros_like(e.pooled),
            )
            for e in conditioning.entries
        )
    )


def sdxl_time_ids(
    size: SizeConditioning | None, height: int, width: int, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """SDXL's ``add_time_ids``: (orig_h, orig_w, crop_top, crop_left, target_h, target_w).

    The order is that of generative-models' concatenated embedders and diffusers'
    ``StableDiffusionXLPipeline._get_add_time_ids``. Sizes left unset are the image size
    (``height``, ``width`` in pixels). Refiner conditioning (with an aesthetic score) gives
    the refiner's five numbers instead: (orig_h, orig_w, crop_top, crop_left, score).
    """
    size = size or SizeConditioning()
    original = size.original_size or (height, width)
    if size.aesthetic_score is not None:
        values: tuple[float, ...] = (*original, *size.crop_top_left, size.aesthetic_score)
    else:
        values = (*original, *size.crop_top_left, *(size.target_size or (height, width)))
    return torch.tensor([values], dtype=dtype)
