"""UniPC (Zhao et al. 2023): a multistep predictor (UniP) and a corrector (UniC) that reuses
the model evaluation of the next step, so the correction costs no extra model call.

Data-prediction form in σ-space, λ = −log σ, h = λ_next − λ. With D_k the model's estimates
and r_k = (λ_{i−k} − λ_i)/h, a step of order p is

    x' = (σ'/σ)·x + (1 − e^(−h))·D_i − B(h)·Σ_k ρ_k·(D_{i−k} − D_i)/r_k,

where B(h) = −h ("bh1") or e^(−h) − 1 ("bh2") and the ρ solve the order conditions
Σ_k ρ_k·r_k^(j−1) = j!·(−h)·φ_{j+1}(−h)/B(h) (ibid., Thm. 3.1; φ₁(z) = (e^z − 1)/z,
φ_{k+1}(z) = (φ_k(z) − 1/k!)/z).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from core.diffusion.samplers.common import Denoise, StepCallback, levels_of, report
from core.diffusion.samplers.multistep import lower_order_final
from core.diffusion.samplers.noise import NoiseSampler


def _order_conditions(h: float, order: int, variant: str) -> tuple[float, torch.Tensor]:
    """B(h) and the right-hand sides j!·(−h)·φ_{j+1}(−h)/B(h) for j = 1..order."""
    z = -h
    b_h = z if variant == "bh1" else math.expm1(z)
    phi = math.expm1(z) / z  # φ₁
    rhs, factorial = [], 1.0
    for j in range(1, order + 1):
        phi = (phi - 1 / factorial) / z  # φ_{j+1}
        rhs.append(factorial * z * phi / b_h)
        factorial *= j + 1
    return b_h, torch.tensor(rhs, dtype=torch.float64)


def _unipc_update(
    x: torch.Tensor,
    sigma: float,
    target: float,
    outputs: list[torch.Tensor],
    levels: list[float],
    order: int,
    variant: str,
    new_output: torch.Tensor | None = None,
) -> torch.Tensor:
    """One UniP step from ``sigma`` to ``target`` (``new_output`` None) or the UniC correction
    of the step that reached ``target`` with the model's estimate ``new_output`` there.

    ``outputs`` and ``levels`` are the estimates D and their σ, newest (at ``sigma``) first.
    """
    ratio = target / sigma
    base = ratio * x + (1 - ratio) * outputs[0]  # the first-order (DDIM) part
    past = order - 1
    if target == 0 or (past == 0 and new_output is None):
        return base
    h = math.log(sigma / target)
    ratios = [(math.log(sigma) - math.log(levels[k])) / h for k in range(1, past + 1)]
    differences = [(outputs[k] - outputs[0]) / ratios[k - 1] for k in range(1, past + 1)]
    b_h, rhs = _order_conditions(h, order, variant)
    if new_output is None:
        if order == 2:
            rho = [0.5]  # the paper's choice for UniP-2 (ibid., App. C)
        else:
            system = [[r**j for r in ratios] for j in range(past)]
            rho = torch.linalg.solve(torch.tensor(system, dtype=torch.float64), rhs[:past])
        return base - b_h * sum(float(p) * d for p, d in zip(rho, differences, strict=True))
    if order == 1:
        rho = [0.5]
    else:
        system = [[r**j for r in [*ratios, 1.0]] for j in range(order)]
        rho = torch.linalg.solve(torch.tensor(system, dtype=torch.float64), rhs)
    correction = float(rho[-1]) * (new_output - outputs[0])
    for p, d in zip(rho[:-1], differences, strict=True):
        correction = correction + float(p) * d
    return base - b_h * correction


def sample_uni_pc(
    model: Denoise,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    extra_args: Mapping[str, Any] | None = None,
    callback: StepCallback | None = None,
    noise_sampler: NoiseSampler | None = None,
    order: int = 2,
    variant: str = "bh1",
    use_corrector: bool = True,
    lower_order_with_noise_left: bool = False,
) -> torch.Tensor:
    """UniPC-``order`` (2: the paper's choice for guided sampling) with B(h) of ``variant``;
    the order drops while the history fills and over the last steps of a run that ends clean
    (or of every run, with ``lower_order_with_noise_left``: diffusers' rule)."""
    if variant not in ("bh1", "bh2"):
        raise ValueError(f"variant must be 'bh1' or 'bh2', got {variant!r}")
    extra = extra_args or {}
    s = levels_of(sigmas)
    steps = len(s) - 1
    outputs: list[torch.Tensor] = []
    levels: list[float] = []
    previous_x: torch.Tensor | None = None
    previous_order = 1
    for i in range(steps):
        denoised = model(x, s[i], **extra)
        if use_corrector and previous_x is not None:
            x = _unipc_update(
                previous_x, s[i - 1], s[i], outputs, levels, previous_order, variant, denoised
            )
        outputs = [denoised, *outputs][:order]
        levels = [s[i], *levels][:order]
        final = lower_order_final(order, i, s, math.inf, lower_order_with_noise_left)
        this_order = min(final, len(outputs))
        previous_x, previous_order = x, this_order
        x = _unipc_update(x, s[i], s[i + 1], outputs, levels, this_order, variant)
        report(callback, i, x, s[i], denoised)
    return x


def sample_uni_pc_bh2(
    model: Denoise,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    extra_args: Mapping[str, Any] | None = None,
    callback: StepCallback | None = None,
    noise_sampler: NoiseSampler | None = None,
    order: int = 2,
    use_corrector: bool = True,
    lower_order_with_noise_left: bool = False,
) -> torch.Tensor:
    """UniPC with B(h) = e^(−h) − 1."""
    return sample_uni_pc(
        model,
        x,
        sigmas,
        extra_args,
        callback,
        noise_sampler,
        order,
        "bh2",
        use_corrector,
        lower_order_with_noise_left,
    )
