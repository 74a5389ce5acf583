"""What every sampler function shares: its signature, the step report and small helpers.

A sampler is ``sampler(model, x, sigmas, extra_args=None, callback=None, noise_sampler=None,
**options) -> x``, k-diffusion's shape: ``model(x, sigma, **extra_args)`` returns the denoised
estimate D(x; σ) of a latent x = x₀ + σ·ε ("σ-space"), ``sigmas`` are the levels to walk
(any schedule; a last 0 means "finish clean"), and ``callback`` hears each finished step.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from core.diffusion.samplers.noise import NoiseSampler, random_noise


@dataclass(frozen=True)
class StepInfo:
    """Step ``i`` is done: ``x`` is the latent at ``sigmas[i + 1]``, ``denoised`` the model's
    estimate of x₀ at ``sigma`` (= ``sigmas[i]``), the step's first model evaluation."""

    i: int
    x: torch.Tensor
    sigma: float
    denoised: torch.Tensor


Denoise = Callable[..., torch.Tensor]
StepCallback = Callable[[StepInfo], None]


class Sampler(Protocol):
    def __call__(
        self,
        model: Denoise,
        x: torch.Tensor,
        sigmas: torch.Tensor,
        extra_args: Mapping[str, Any] | None = None,
        callback: StepCallback | None = None,
        noise_sampler: NoiseSampler | None = None,
        **options: Any,
    ) -> torch.Tensor: ...


def levels_of(sigmas: torch.Tensor) -> list[float]:
    """The schedule as Python floats (scalar maths in float64, no device round trips)."""
    return [float(s) for s in sigmas]


def report(
    callback: StepCallback | None, i: int, x: torch.Tensor, sigma: float, denoised: torch.Tensor
) -> None:
    if callback is not None:
        callback(StepInfo(i, x, sigma, denoised))


def noise_or_default(noise_sampler: NoiseSampler | None, x: torch.Tensor) -> NoiseSampler:
    return random_noise(x) if noise_sampler is None else noise_sampler


def ancestral_step(sigma: float, sigma_next: float, eta: float = 1.0) -> tuple[float, float]:
    """(σ_down, σ_up) of an ancestral step from σ to σ_next: a deterministic step to σ_down,
    then fresh noise of std σ_up, so that σ_down² + σ_up² = σ_next² (Song et al. 2021's
    ancestral sampling in σ-space; ``eta`` = 0 is the deterministic step)."""
    if not eta or sigma_next == 0:
        return sigma_next, 0.0
    up = min(sigma_next, eta * math.sqrt(sigma_next**2 * (sigma**2 - sigma_next**2) / sigma**2))
    return math.sqrt(sigma_next**2 - up**2), up


def derivative(x: torch.Tensor, denoised: torch.Tensor, sigma: float) -> torch.Tensor:
    """dx/dσ of the probability-flow ODE: (x − D(x; σ))/σ (Karras et al. 2022, eq. 4 with
    σ(t) = t, s(t) = 1)."""
    return (x - denoised) / sigma
