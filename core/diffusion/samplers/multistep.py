"""Multistep samplers: each step reuses the model's outputs at earlier steps.

That history lives inside one call, so a run split across nodes restarts it (the second part
begins at first order). λ = −log σ throughout; h = λ_next − λ is a step's length.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from core.diffusion.samplers.common import (
    Denoise,
    StepCallback,
    derivative,
    levels_of,
    noise_or_default,
    report,
)
from core.diffusion.samplers.noise import NoiseSampler


def _lagrange_basis(nodes: Sequence[float], j: int) -> np.polynomial.Polynomial:
    """ℓ_j: the polynomial that is 1 at ``nodes[j]`` and 0 at the other nodes."""
    basis = np.polynomial.Polynomial([1.0])
    for k, node in enumerate(nodes):
        if k != j:
            basis = basis * np.polynomial.Polynomial([-node, 1.0]) / (nodes[j] - node)
    return basis


def sample_lms(
    model: Denoise,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    extra_args: Mapping[str, Any] | None = None,
    callback: StepCallback | None = None,
    noise_sampler: NoiseSampler | None = None,
    order: int = 4,
) -> torch.Tensor:
    """Linear multistep (Adams–Bashforth on a non-uniform grid, Karras et al. 2022's "LMS"):
    the slope is the Lagrange polynomial through the last ``order`` slopes, integrated in σ."""
    extra = extra_args or {}
    s = levels_of(sigmas)
    slopes: list[torch.Tensor] = []
    for i in range(len(s) - 1):
        denoised = model(x, s[i], **extra)
        slopes = [derivative(x, denoised, s[i]), *slopes][:order]
        nodes = [s[i - k] for k in range(len(slopes))]
        for j, slope in enumerate(slopes):
            integral = _lagrange_basis(nodes, j).integ()
            x = x + float(integral(s[i + 1]) - integral(s[i])) * slope
        report(callback, i, x, s[i], denoised)
    return x


def sample_dpmpp_2m(
    model: Denoise,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    extra_args: Mapping[str, Any] | None = None,
    callback: StepCallback | None = None,
    noise_sampler: NoiseSampler | None = None,
) -> torch.Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022b, Alg. 2): the exponential integrator with D
    extrapolated linearly in λ from this step and the last; first order at the ends."""
    extra = extra_args or {}
    s = levels_of(sigmas)
    previous: torch.Tensor | None = None
    h_last = 0.0
    for i in range(len(s) - 1):
        denoised = model(x, s[i], **extra)
        ratio = s[i + 1] / s[i]
        if previous is None or s[i + 1] == 0:
            x = ratio * x + (1 - ratio) * denoised
        else:
            h = math.log(s[i] / s[i + 1])
            r = h_last / h
            corrected = (1 + 1 / (2 * r)) * denoised - (1 / (2 * r)) * previous  # Alg. 2, D_i
            x = ratio * x + (1 - ratio) * corrected
        if s[i + 1] > 0:
            h_last = math.log(s[i] / s[i + 1])
        previous = denoised
        report(callback, i, x, s[i], denoised)
    return x


def sample_dpmpp_2m_sde(
    model: Denoise,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    extra_args: Mapping[str, Any] | None = None,
    callback: StepCallback | None = None,
    noise_sampler: NoiseSampler | None = None,
    eta: float = 1.0,
    s_noise: float = 1.0,
    solver_type: str = "midpoint",
) -> torch.Tensor:
    """SDE-DPM-Solver++(2M) (Lu et al. 2022b, App. and Gonzalez et al. 2023's SEEDS form):
    the data-prediction SDE solved exactly for a linear D, with noise of std
    σ_next·√(1 − e^(−2ηh)); ``eta`` = 0 is DPM-Solver++(2M)."""
    if solver_type not in ("midpoint", "heun"):
        raise ValueError(f"solver_type must be 'midpoint' or 'heun', got {solver_type!r}")
    extra = extra_args or {}
    noise = noise_or_default(noise_sampler, x)
    s = levels_of(sigmas)
    previous: torch.Tensor | None = None
    h_last = 0.0
    for i in range(len(s) - 1):
        denoised = model(x, s[i], **extra)
        if s[i + 1] == 0:
            x = denoised
        else:
            h = math.log(s[i] / s[i + 1])
            eta_h = eta * h
            decay = -math.expm1(-h - eta_h)  # 1 − e^(−(1+η)h)
            x = (s[i + 1] / s[i]) * math.exp(-eta_h) * x + decay * denoised
            if previous is not None:
                r = h_last / h
                if solver_type == "heun":
                    x = x + (decay / (-h - eta_h) + 1) * (1 / r) * (denoised - previous)
                else:
                    x = x + 0.5 * decay * (1 / r) * (denoised - previous)
            if eta:
                std = s[i + 1] * math.sqrt(-math.expm1(-2 * eta_h)) * s_noise
                x = x + noise(s[i], s[i + 1]) * std
            h_last = h
        previous = denoised
        report(callback, i, x, s[i], denoised)
    return x


def sample_dpmpp_3m_sde(
    model: Denoise,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    extra_args: Mapping[str, Any] | None = None,
    callback: StepCallback | None = None,
    noise_sampler: NoiseSampler | None = None,
    eta: float = 1.0,
    s_noise: float = 1.0,
) -> torch.Tensor:
    """SDE-DPM-Solver++(3M): D extrapolated quadratically in λ from the last three steps
    (Lu et al. 2022b, third-order multistep, with φ₂ = (e^(−h)−1)/h + 1 and φ₃ = φ₂/h − ½
    at h·(1+η)); ``eta`` = 0 is DPM-Solver++(3M)."""
    extra = extra_args or {}
    noise = noise_or_default(noise_sampler, x)
    s = levels_of(sigmas)
    history: list[torch.Tensor] = []  # D at the last steps, newest first
    lengths: list[float] = []  # their step lengths h, newest first
    for i in range(len(s) - 1):
        denoised = model(x, s[i], **extra)
        if s[i + 1] == 0:
            x = denoised
        else:
            h = math.log(s[i] / s[i + 1])
            h_eta = h * (eta + 1)
            x = math.exp(-h_eta) * x + (-math.expm1(-h_eta)) * denoised
            phi_2 = math.expm1(-h_eta) / h_eta + 1
            if len(history) >= 2:
                r0, r1 = lengths[0] / h, lengths[1] / h
                d1_0 = (denoised - history[0]) / r0
                d1_1 = (history[0] - history[1]) / r1
                d1 = d1_0 + (d1_0 - d1_1) * r0 / (r0 + r1)
                d2 = (d1_0 - d1_1) / (r0 + r1)
                phi_3 = phi_2 / h_eta - 0.5
                x = x + phi_2 * d1 - phi_3 * d2
            elif history:
                x = x + phi_2 * (denoised - history[0]) / (lengths[0] / h)
            if eta:
                std = s[i + 1] * math.sqrt(-math.expm1(-2 * h * eta)) * s_noise
                x = x + noise(s[i], s[i + 1]) * std
            lengths = [h, *lengths][:2]
        history = [denoised, *history][:2]
        report(callback, i, x, s[i], denoised)
    return x


# Adams–Bashforth weights for equal steps, newest slope first (orders 1–4).
_ADAMS_BASHFORTH = (
    (1.0,),
    (3 / 2, -1 / 2),
    (23 / 12, -16 / 12, 5 / 12),
    (55 / 24, -59 / 24, 37 / 24, -9 / 24),
)


def sample_ipndm(
    model: Denoise,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    extra_args: Mapping[str, Any] | None = None,
    callback: StepCallback | None = None,
    noise_sampler: NoiseSampler | None = None,
    max_order: int = 4,
) -> torch.Tensor:
    """Improved PNDM (Zhang & Chen 2023, DEIS §5 "iPNDM"): Adams–Bashforth weights of up to
    fourth order on the ODE's slopes in σ, lower order while the history fills, and an Euler
    step to σ = 0."""
    extra = extra_args or {}
    s = levels_of(sigmas)
    slopes: list[torch.Tensor] = []
    for i in range(len(s) - 1):
        denoised = model(x, s[i], **extra)
        slopes = [derivative(x, denoised, s[i]), *slopes][:max_order]
        order = 1 if s[i + 1] == 0 else len(slopes)
        weights = _ADAMS_BASHFORTH[order - 1]
        slope = sum(w * d for w, d in zip(weights, slopes, strict=False))
        x = x + (s[i + 1] - s[i]) * slope
        report(callback, i, x, s[i], denoised)
    return x


def _integral_in_log_sigma(poly: np.polynomial.Polynomial, a: float, b: float) -> float:
    """∫_a^b p(log ρ) dρ, exactly: ρ·Σ_m (−1)^m p⁽ᵐ⁾(log ρ) is an antiderivative (it
    vanishes as ρ → 0)."""

    def antiderivative(rho: float) -> float:
        if rho == 0:
            return 0.0
        u, total, term, sign = math.log(rho), 0.0, poly, 1.0
        for _ in range(poly.degree() + 1):
            total += sign * term(u)
            term, sign = term.deriv(), -sign
        return rho * total

    return antiderivative(b) - antiderivative(a)


def lower_order_final(
    order: int,
    i: int,
    sigmas: list[float],
    below: float = 15,
    with_noise_left: bool = False,
) -> int:
    """The order of step ``i``: in a run of fewer than ``below`` steps that ends clean (σ = 0),
    the last steps drop to lower order, which keeps few-step runs stable (Lu et al. 2022b,
    §5). A run that stops with noise left keeps its order (unless ``with_noise_left``), so
    its steps are those of the whole run it is part of."""
    steps = len(sigmas) - 1
    if (sigmas[-1] == 0 or with_noise_left) and steps < below:
        return min(order, steps - i)
    return order


def sample_deis(
    model: Denoise,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    extra_args: Mapping[str, Any] | None = None,
    callback: StepCallback | None = None,
    noise_sampler: NoiseSampler | None = None,
    order: int = 3,
) -> torch.Tensor:
    """DEIS (Zhang & Chen 2023, ρAB-DEIS in log ρ): the noise ε = (x − D)/σ extrapolated by a
    Lagrange polynomial in log σ through the last ``order`` steps, integrated in σ."""
    extra = extra_args or {}
    s = levels_of(sigmas)
    steps = len(s) - 1
    noises: list[torch.Tensor] = []
    for i in range(steps):
        denoised = model(x, s[i], **extra)
        noises = [derivative(x, denoised, s[i]), *noises][:order]
        used = min(len(noises), lower_order_final(order, i, s))
        nodes = [math.log(s[i - k]) for k in range(used)]
        for j in range(used):
            weight = _integral_in_log_sigma(_lagrange_basis(nodes, j), s[i], s[i + 1])
            x = x + weight * noises[j]
        report(callback, i, x, s[i], denoised)
    return x


def sample_res_multistep(
    model: Denoise,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    extra_args: Mapping[str, Any] | None = None,
    callback: StepCallback | None = None,
    noise_sampler: NoiseSampler | None = None,
) -> torch.Tensor:
    """The second-order refined exponential solver, multistep form (Zhang et al. 2023, "RES",
    eq. 21): x' = e^(−h)·x + h·[φ₁(−h)·D + φ₂(−h)·(D − D_prev)/r] with r = h_prev/h,
    whose coefficients meet the order conditions that DPM-Solver++(2M)'s ½ only
    approximates."""
    extra = extra_args or {}
    s = levels_of(sigmas)
    previous: torch.Tensor | None = None
    h_last = 0.0
    for i in range(len(s) - 1):
        denoised = model(x, s[i], **extra)
        if previous is None or s[i + 1] == 0:
            x = x + derivative(x, denoised, s[i]) * (s[i + 1] - s[i])
        else:
            h = math.log(s[i] / s[i + 1])
            phi_1 = math.expm1(-h) / -h
            phi_2 = (phi_1 - 1) / -h
            r = h_last / h
            x = math.exp(-h) * x + h * (phi_1 * denoised + phi_2 / r * (denoised - previous))
        if s[i + 1] > 0:
            h_last = math.log(s[i] / s[i + 1])
        previous = denoised
        report(callback, i, x, s[i], denoised)
    return x
