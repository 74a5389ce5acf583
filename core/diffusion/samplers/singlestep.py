"""Samplers whose steps need nothing from earlier steps: a run may stop after any step and
another node continue it with the same result.

All follow ``common.Sampler``; their maths is in σ-space with λ = −log σ, where the exact
solution of the probability-flow ODE with a constant denoised estimate D from σ to σ' is
x' = (σ'/σ)·x + (1 − σ'/σ)·D (the first-order exponential integrator; DDIM).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from core.diffusion.samplers.common import (
    Denoise,
    StepCallback,
    ancestral_step,
    derivative,
    levels_of,
    noise_or_default,
    report,
)
from core.diffusion.samplers.noise import NoiseSampler


def sample_euler(
    model: Denoise,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    extra_args: Mapping[str, Any] | None = None,
    callback: StepCallback | None = None,
    noise_sampler: NoiseSampler | None = None,
) -> torch.Tensor:
    """Euler's method on the probability-flow ODE (Karras et al. 2022, Alg. 1 without the
    second-order correction). DDIM with η = 0 is this method (ibid., §3)."""
    extra = extra_args or {}
    s = levels_of(sigmas)
    for i in range(len(s) - 1):
        denoised = model(x, s[i], **extra)
        x = x + derivative(x, denoised, s[i]) * (s[i + 1] - s[i])
        report(callback, i, x, s[i], denoised)
    return x


def sample_euler_ancestral(
    model: Denoise,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    extra_args: Mapping[str, Any] | None = None,
    callback: StepCallback | None = None,
    noise_sampler: NoiseSampler | None = None,
    eta: float = 1.0,
    s_noise: float = 1.0,
) -> torch.Tensor:
    """An Euler step down to σ_down, then fresh noise up to σ_next (ancestral sampling)."""
    extra = extra_args or {}
    noise = noise_or_default(noise_sampler, x)
    s = levels_of(sigmas)
    for i in range(len(s) - 1):
        denoised = model(x, s[i], **extra)
        down, up = ancestral_step(s[i], s[i + 1], eta)
        x = x + derivative(x, denoised, s[i]) * (down - s[i])
        if up > 0:
            x = x + noise(s[i], s[i + 1]) * (s_noise * up)
        report(callback, i, x, s[i], denoised)
    return x


def sample_heun(
    model: Denoise,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    extra_args: Mapping[str, Any] | None = None,
    callback: StepCallback | None = None,
    noise_sampler: NoiseSampler | None = None,
) -> torch.Tensor:
    """Heun's second-order method (Karras et al. 2022, Alg. 1): an Euler step, then the mean
    of the slopes at both ends; Euler alone for the last step to σ = 0."""
    extra = extra_args or {}
    s = levels_of(sigmas)
    for i in range(len(s) - 1):
        denoised = model(x, s[i], **extra)
        d = derivative(x, denoised, s[i])
        dt = s[i + 1] - s[i]
        if s[i + 1] == 0:
            x = x + d * dt
        else:
            guess = x + d * dt
            d_next = derivative(guess, model(guess, s[i + 1], **extra), s[i + 1])
            x = x + (d + d_next) / 2 * dt  # Alg. 1, line 8
        report(callback, i, x, s[i], denoised)
    return x


def _dpm2_step(
    model: Denoise,
    x: torch.Tensor,
    denoised: torch.Tensor,
    sigma: float,
    target: float,
    extra: Mapping[str, Any],
) -> torch.Tensor:
    """DPM-Solver-2 in σ-space (Lu et al. 2022, Alg. 1 as k-diffusion writes it): the slope at
    the log-midpoint √(σ·σ') carries x from σ to σ'."""
    d = derivative(x, denoised, sigma)
    if target == 0:
        return x + d * (target - sigma)
    middle = math.sqrt(sigma * target)
    half = x + d * (middle - sigma)
    d_middle = derivative(half, model(half, middle, **extra), middle)
    return x + d_middle * (target - sigma)


def sample_dpm_2(
    model: Denoise,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    extra_args: Mapping[str, Any] | None = None,
    callback: StepCallback | None = None,
    noise_sampler: NoiseSampler | None = None,
) -> torch.Tensor:
    """DPM-Solver-2: a second-order step through the log-midpoint of each interval."""
    extra = extra_args or {}
    s = levels_of(sigmas)
    for i in range(len(s) - 1):
        denoised = model(x, s[i], **extra)
        x = _dpm2_step(model, x, denoised, s[i], s[i + 1], extra)
        report(callback, i, x, s[i], denoised)
    return x


def sample_dpm_2_ancestral(
    model: Denoise,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    extra_args: Mapping[str, Any] | None = None,
    callback: StepCallback | None = None,
    noise_sampler: NoiseSampler | None = None,
    eta: float = 1.0,
    s_noise: float = 1.0,
) -> torch.Tensor:
    """DPM-Solver-2 down to σ_down, then fresh noise up to σ_next."""
    extra = extra_args or {}
    noise = noise_or_default(noise_sampler, x)
    s = levels_of(sigmas)
    for i in range(len(s) - 1):
        denoised = model(x, s[i], **extra)
        down, up = ancestral_step(s[i], s[i + 1], eta)
        x = _dpm2_step(model, x, denoised, s[i], down, extra)
        if up > 0:
            x = x + noise(s[i], s[i + 1]) * (s_noise * up)
        report(callback, i, x, s[i], denoised)
    return x


def _exponential_step(
    x: torch.Tensor, denoised: torch.Tensor, sigma: float, target: float
) -> torch.Tensor:
    """x' = (σ'/σ)·x + (1 − σ'/σ)·D: the ODE solved exactly for a constant D (DPM-Solver++
    first order, Lu et al. 2022b, eq. 8 in σ-space)."""
    ratio = target / sigma
    return ratio * x + (1 - ratio) * denoised


def sample_dpmpp_2s_ancestral(
    model: Denoise,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    extra_args: Mapping[str, Any] | None = None,
    callback: StepCallback | None = None,
    noise_sampler: NoiseSampler | None = None,
    eta: float = 1.0,
    s_noise: float = 1.0,
) -> torch.Tensor:
    """DPM-Solver++(2S) (Lu et al. 2022b, Alg. 1, r = ½) down to σ_down, then fresh noise."""
    extra = extra_args or {}
    noise = noise_or_default(noise_sampler, x)
    s = levels_of(sigmas)
    for i in range(len(s) - 1):
        denoised = model(x, s[i], **extra)
        down, up = ancestral_step(s[i], s[i + 1], eta)
        if down == 0:
            x = x + derivative(x, denoised, s[i]) * (down - s[i])
        else:
            middle = math.sqrt(s[i] * down)  # λ + h/2
            half = _exponential_step(x, denoised, s[i], middle)
            x = _exponential_step(x, model(half, middle, **extra), s[i], down)
        if up > 0:
            x = x + noise(s[i], s[i + 1]) * (s_noise * up)
        report(callback, i, x, s[i], denoised)
    return x


def sample_dpmpp_sde(
    model: Denoise,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    extra_args: Mapping[str, Any] | None = None,
    callback: StepCallback | None = None,
    noise_sampler: NoiseSampler | None = None,
    eta: float = 1.0,
    s_noise: float = 1.0,
    r: float = 0.5,
) -> torch.Tensor:
    """DPM-Solver++ SDE: DPM-Solver++(2S) with ancestral noise at the intermediate point and
    at the end of each step. The two noises must be parts of one Brownian path
    (``noise.BrownianNoise``), which independent draws are not."""
    extra = extra_args or {}
    noise = noise_or_default(noise_sampler, x)
    s = levels_of(sigmas)
    for i in range(len(s) - 1):
        denoised = model(x, s[i], **extra)
        if s[i + 1] == 0:
            x = x + derivative(x, denoised, s[i]) * (s[i + 1] - s[i])
        else:
            h = math.log(s[i] / s[i + 1])
            middle = s[i] * math.exp(-r * h)  # λ_s = λ + r·h
            down, up = ancestral_step(s[i], middle, eta)
            half = _exponential_step(x, denoised, s[i], down)
            if up > 0:
                half = half + noise(s[i], middle) * (s_noise * up)
            denoised_half = model(half, middle, **extra)
            mix = 1 / (2 * r)
            combined = (1 - mix) * denoised + mix * denoised_half
            down, up = ancestral_step(s[i], s[i + 1], eta)
            x = _exponential_step(x, combined, s[i], down)
            if up > 0:
                x = x + noise(s[i], s[i + 1]) * (s_noise * up)
        report(callback, i, x, s[i], denoised)
    return x


def sample_ddpm(
    model: Denoise,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    extra_args: Mapping[str, Any] | None = None,
    callback: StepCallback | None = None,
    noise_sampler: NoiseSampler | None = None,
) -> torch.Tensor:
    """Ancestral sampling from the DDPM posterior q(x_{t−1} | x_t, x̂₀) with its variance β̃
    (Ho et al. 2020, eqs. 6–7, "fixed small"), between any two levels of the schedule."""
    extra = extra_args or {}
    noise = noise_or_default(noise_sampler, x)
    s = levels_of(sigmas)
    for i in range(len(s) - 1):
        denoised = model(x, s[i], **extra)
        alpha_bar, alpha_bar_next = 1 / (1 + s[i] ** 2), 1 / (1 + s[i + 1] ** 2)
        alpha = alpha_bar / alpha_bar_next
        vp = x * math.sqrt(alpha_bar)
        eps = derivative(x, denoised, s[i])
        mean = (vp - (1 - alpha) / math.sqrt(1 - alpha_bar) * eps) / math.sqrt(alpha)  # eq. 11
        if s[i + 1] > 0:
            std = math.sqrt((1 - alpha) * (1 - alpha_bar_next) / (1 - alpha_bar))  # β̃, eq. 7
            mean = mean + std * noise(s[i], s[i + 1])
        x = mean / math.sqrt(alpha_bar_next)
        report(callback, i, x, s[i], denoised)
    return x


def sample_lcm(
    model: Denoise,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    extra_args: Mapping[str, Any] | None = None,
    callback: StepCallback | None = None,
    noise_sampler: NoiseSampler | None = None,
) -> torch.Tensor:
    """Latent-consistency multistep sampling (Luo et al. 2023, Alg. 1): jump to the denoised
    estimate, then noise it afresh to the next level."""
    extra = extra_args or {}
    noise = noise_or_default(noise_sampler, x)
    s = levels_of(sigmas)
    for i in range(len(s) - 1):
        denoised = model(x, s[i], **extra)
        x = denoised
        if s[i + 1] > 0:
            x = x + s[i + 1] * noise(s[i], s[i + 1])
        report(callback, i, x, s[i], denoised)
    return x
