"""The values of custom sampling and the maths behind its nodes: a sampler with options
(SAMPLER), a noise schedule (SIGMAS, a 1-D float tensor of decreasing σ levels), a seedable
noise source (NOISE) and a model with the conditionings that steer it (GUIDER).

They split KSampler's widgets into parts that can be swapped one at a time, as in ComfyUI's
custom-sampling nodes, whose names and value semantics these follow: a schedule from one node
(Karras with your own σ range, SDXL Turbo's timesteps…) with a sampler from another, and the
whole run in ``core.diffusion.sampling.sample`` with ``sigmas=``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from core.diffusion import samplers
from core.diffusion.conditioning import Conditioning
from core.diffusion.models import DiffusionModel
from core.diffusion.samplers import NoiseLevels

# --- SAMPLER -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SamplerChoice:
    """A sampler by its ComfyUI name and the options its function gets (``eta``, ``order``…),
    kept as sorted (name, value) pairs so the value is hashable and compares by content."""

    name: str
    options: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def of(cls, name: str, **options: Any) -> SamplerChoice:
        """The sampler ``name`` with ``options``; a clear error for an unknown name."""
        samplers.sampler_info(name)
        return cls(name, tuple(sorted(options.items())))

    @property
    def info(self) -> samplers.SamplerInfo:
        return samplers.sampler_info(self.name)

    def option_dict(self) -> dict[str, Any]:
        return dict(self.options)


# --- NOISE ---------------------------------------------------------------------------------


def batch_noise(seed: int, shape: Sequence[int], batch_index: Sequence[int] | None) -> torch.Tensor:
    """Initial noise for a latent batch of ``shape``, drawn on the CPU from ``seed``.

    Without ``batch_index`` the whole batch is one draw. With it, item k of the batch gets the
    noise that item ``batch_index[k]`` of a batch drawn from ``seed`` got: single-item draws
    are taken from one generator in turn up to the largest index (ComfyUI's rule), so an item
    picked out of a batch (Latent From Batch) is sampled from the noise it had in the batch,
    and items with the same index (Latent Batch Seed Behavior "fixed") share their noise.
    """
    generator = torch.Generator("cpu").manual_seed(seed % 2**64)
    shape = tuple(shape)
    if batch_index is None:
        return torch.randn(shape, generator=generator, dtype=torch.float32)
    indices = [int(i) for i in batch_index]
    if len(indices) != shape[0]:
        raise ValueError(
            f"the latent has {shape[0]} item(s) but batch_index names {len(indices)}: "
            "rebuild the batch with the latent batch nodes"
        )
    if any(i < 0 for i in indices):
        raise ValueError(f"batch_index holds a negative index ({min(indices)})")
    wanted = set(indices)
    drawn: dict[int, torch.Tensor] = {}
    for index in range(max(indices) + 1):
        item = torch.randn((1, *shape[1:]), generator=generator, dtype=torch.float32)
        if index in wanted:
            drawn[index] = item
    return torch.cat([drawn[i] for i in indices])


@dataclass(frozen=True)
class NoiseSource:
    """Where a custom sampler's initial noise comes from: drawn from ``seed`` (RandomNoise),
    or none at all (DisableNoise: the latent is taken to be noisy already). ``seed`` also
    seeds the noise that ancestral and SDE samplers draw at every step."""

    seed: int = 0
    enabled: bool = True

    def generate(self, latent: Mapping[str, Any]) -> torch.Tensor:
        """Noise shaped like ``latent["samples"]`` (float32, CPU), following its
        ``batch_index`` when it has one."""
        shape = tuple(latent["samples"].shape)
        if not self.enabled:
            return torch.zeros(shape, dtype=torch.float32)
        return batch_noise(self.seed, shape, latent.get("batch_index"))


# --- GUIDER --------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Guider:
    """A model and the conditionings that steer it, as a chain of guidance.

    The prediction is p₀ + Σₖ scales[k−1]·(pₖ − pₖ₋₁) over the predictions pₖ for
    ``conditionings[k]``: each conditioning guides away from the one before it. Classifier-free
    guidance is the chain (negative, positive) with scale cfg (Ho & Salimans 2022, eq. 6); a
    basic guider is the positive alone. ``names`` are the inputs the conditionings came from,
    for error messages.
    """

    model: DiffusionModel
    conditionings: tuple[Conditioning, ...]
    scales: tuple[float, ...]
    names: tuple[str, ...]

    def __post_init__(self) -> None:
        count = len(self.conditionings)
        if count < 1 or len(self.scales) != count - 1 or len(self.names) != count:
            raise ValueError("a guider needs one scale fewer than conditionings, and their names")

    @classmethod
    def basic(cls, model: DiffusionModel, conditioning: Conditioning) -> Guider:
        return cls(model, (conditioning,), (), ("conditioning",))

    @classmethod
    def cfg(
        cls, model: DiffusionModel, positive: Conditioning, negative: Conditioning, cfg: float
    ) -> Guider:
        return cls(model, (negative, positive), (float(cfg),), ("negative", "positive"))

    @classmethod
    def dual_cfg(
        cls,
        model: DiffusionModel,
        cond1: Conditioning,
        cond2: Conditioning,
        negative: Conditioning,
        cfg_conds: float,
        cfg_cond2_negative: float,
        nested: bool = False,
    ) -> Guider:
        """ComfyUI's Dual CFG Guider. Regular: n + c₂·(m − n) + c₁·(p − m); nested:
        n + c₂·((m + c₁·(p − m)) − n), with p = cond1, m = cond2, n = negative,
        c₁ = cfg_conds and c₂ = cfg_cond2_negative."""
        second = cfg_conds * cfg_cond2_negative if nested else cfg_conds
        return cls(
            model,
            (negative, cond2, cond1),
            (float(cfg_cond2_negative), float(second)),
            ("negative", "cond2", "cond1"),
        )

    @property
    def positive(self) -> Conditioning:
        """The conditioning at the end of the chain, which unguided steps use alone."""
        return self.conditionings[-1]


def conditioning_width_problem(model: DiffusionModel, conditioning: Conditioning) -> str | None:
    """Why ``conditioning`` cannot steer ``model``'s UNet, or None when it can: its token
    embeddings must have as many features as the UNet's cross-attention takes (768 for SD 1.x,
    1024 for SD 2.x, 2048 for SDXL, 1280 for the SDXL refiner)."""
    width = int(getattr(model.unet.config, "cross_attention_dim", 0) or 0)
    if not width:
        return None
    for entry in conditioning:
        have = int(entry.embeds.shape[-1])
        if have != width:
            return (
                f"the conditioning has {have} features per token but this model's "
                f"cross-attention takes {width} ({_width_hint(have, width)}): encode the "
                "prompt with the CLIP of the same checkpoint as the model"
            )
    return None


_WIDTH_NAMES = {768: "SD 1.x", 1024: "SD 2.x", 2048: "SDXL base", 1280: "SDXL refiner"}


def _width_hint(have: int, want: int) -> str:
    if have in _WIDTH_NAMES and want in _WIDTH_NAMES:
        return f"{_WIDTH_NAMES[have]} conditioning given to an {_WIDTH_NAMES[want]} model"
    return "made for another model family"


# --- SIGMAS --------------------------------------------------------------------------------


def _with_zero(values: np.ndarray | list[float]) -> torch.Tensor:
    return torch.tensor([*[float(v) for v in values], 0.0], dtype=torch.float32)


def _check_range(sigma_min: float, sigma_max: float, *, positive_min: bool) -> None:
    if positive_min and sigma_min <= 0:
        raise ValueError(f"sigma_min must be above 0 for this schedule, got {sigma_min:g}")
    if not sigma_min < sigma_max:
        raise ValueError(
            f"sigma_min ({sigma_min:g}) must be below sigma_max ({sigma_max:g}): swap them"
        )


def karras_sigmas(steps: int, sigma_min: float, sigma_max: float, rho: float) -> torch.Tensor:
    """Karras et al. 2022, eq. 5: σᵢ = (σ_max^(1/ρ) + i/(n−1)·(σ_min^(1/ρ) − σ_max^(1/ρ)))^ρ,
    then 0."""
    _check_range(sigma_min, sigma_max, positive_min=False)
    if rho <= 0:
        raise ValueError(f"rho must be above 0, got {rho:g}")
    ramp = np.linspace(0, 1, steps)
    low, high = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return _with_zero((high + ramp * (low - high)) ** rho)


def exponential_sigmas(steps: int, sigma_min: float, sigma_max: float) -> torch.Tensor:
    """σ evenly spaced in log σ from σ_max down to σ_min, then 0."""
    _check_range(sigma_min, sigma_max, positive_min=True)
    return _with_zero(np.exp(np.linspace(math.log(sigma_max), math.log(sigma_min), steps)))


def polyexponential_sigmas(
    steps: int, sigma_min: float, sigma_max: float, rho: float
) -> torch.Tensor:
    """log σ from log σ_max to log σ_min along a ramp r^ρ (r from 1 to 0), then 0; ρ = 1 is
    the exponential schedule, a larger ρ leaves high noise sooner and lingers near σ_min."""
    _check_range(sigma_min, sigma_max, positive_min=True)
    ramp = np.linspace(1, 0, steps) ** rho
    low, high = math.log(sigma_min), math.log(sigma_max)
    return _with_zero(np.exp(ramp * (high - low) + low))


def vp_sigmas(steps: int, beta_d: float, beta_min: float, eps_s: float) -> torch.Tensor:
    """The continuous variance-preserving SDE's levels (Song et al. 2021, eq. 33):
    σ(t) = √(exp(β_d·t²/2 + β_min·t) − 1) for t from 1 down to ``eps_s``, then 0."""
    if not 0 < eps_s < 1:
        raise ValueError(f"eps_s must lie between 0 and 1, got {eps_s:g}")
    t = np.linspace(1, eps_s, steps)
    values = np.sqrt(np.expm1(beta_d * t**2 / 2 + beta_min * t))
    if not (values > 0).all():
        raise ValueError("beta_d and beta_min give no noise: raise them above 0")
    return _with_zero(values)


def basic_sigmas(levels: NoiseLevels, scheduler: str, steps: int, denoise: float) -> torch.Tensor:
    """BasicScheduler: the last ``steps + 1`` levels of a ``steps/denoise``-step schedule
    (KSampler's denoise rule); empty when ``denoise`` is 0 (nothing to sample)."""
    total = steps
    if denoise < 1.0:
        if denoise <= 0.0:
            return torch.zeros(0, dtype=torch.float32)
        total = int(steps / denoise)
    return samplers.make_sigmas(scheduler, levels, total)[-(steps + 1) :]


#: SDXL Turbo's ten training timesteps for few-step sampling, highest first.
TURBO_TIMESTEPS = tuple(range(999, 0, -100))


def sd_turbo_sigmas(levels: NoiseLevels, steps: int, denoise: float) -> torch.Tensor:
    """SDTurboScheduler: ``steps`` of the timesteps 999, 899, … 99, starting 10·(1 − denoise)
    of them in, then 0 (the few-step schedule adversarial diffusion distillation trained;
    Sauer et al. 2023)."""
    start = 10 - int(10 * denoise)
    chosen = TURBO_TIMESTEPS[start : start + steps]
    return _with_zero([levels.sigma(t) for t in chosen])


def split_sigmas(sigmas: torch.Tensor, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """SplitSigmas: levels 0..step and step..end, sharing level ``step``, so sampling the
    first then the second continues where the first stopped."""
    return sigmas[: step + 1], sigmas[step:]


def split_sigmas_denoise(sigmas: torch.Tensor, denoise: float) -> tuple[torch.Tensor, torch.Tensor]:
    """SplitSigmasDenoise: the last round(steps·denoise) steps, and the ones before them."""
    steps = max(sigmas.shape[-1] - 1, 0)
    total = round(steps * denoise)
    return sigmas[:-total], sigmas[-(total + 1) :]


def flip_sigmas(sigmas: torch.Tensor) -> torch.Tensor:
    """FlipSigmas: the levels in reverse order, a first 0 raised to 0.0001 (for running a
    sampler from a clean latent towards noise)."""
    if len(sigmas) == 0:
        return sigmas
    flipped = sigmas.flip(0).clone()
    if float(flipped[0]) == 0:
        flipped[0] = 0.0001
    return flipped


def add_noise(latent: torch.Tensor, noise: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    """AddNoise: ``latent`` plus ``noise`` scaled by the schedule's span |σ₀ − σ_last| (σ₀ for
    a single level), in σ-space, so a sampler given ``sigmas`` without noise of its own
    starts from it."""
    if len(sigmas) == 0:
        return latent
    scale = abs(float(sigmas[0]) - float(sigmas[-1])) if len(sigmas) > 1 else float(sigmas[0])
    return torch.nan_to_num(latent.float() + noise.float() * scale, nan=0.0, posinf=0.0, neginf=0.0)


def sigmas_problem(sigmas: torch.Tensor) -> str | None:
    """Why a sampler cannot walk ``sigmas``, or None when it can: finite levels, decreasing
    step by step, 0 only as the last."""
    if not bool(torch.isfinite(sigmas).all()) or bool((sigmas < 0).any()):
        return "the sigmas must be finite and not negative"
    if bool((sigmas[:-1] <= sigmas[1:]).any()) or bool((sigmas[:-1] == 0).any()):
        return (
            "the sigmas must decrease step by step, with 0 only as the last level "
            "(flipped sigmas cannot be sampled)"
        )
    return None


def as_sigmas(value: Any) -> torch.Tensor:
    """A SIGMAS value as a 1-D float32 CPU tensor, or a clear error."""
    sigmas = torch.as_tensor(value).detach().to("cpu", torch.float32)
    if sigmas.ndim != 1:
        raise ValueError(f"sigmas must be a list of levels, got shape {tuple(sigmas.shape)}")
    return sigmas


__all__ = [
    "TURBO_TIMESTEPS",
    "Guider",
    "NoiseSource",
    "SamplerChoice",
    "add_noise",
    "as_sigmas",
    "basic_sigmas",
    "batch_noise",
    "conditioning_width_problem",
    "exponential_sigmas",
    "flip_sigmas",
    "karras_sigmas",
    "polyexponential_sigmas",
    "sd_turbo_sigmas",
    "sigmas_problem",
    "split_sigmas",
    "split_sigmas_denoise",
    "vp_sigmas",
]
