"""Noise schedules: the σ levels a sampler walks through, one function per schedule.

Every schedule is ``schedule(levels, steps) -> sigmas``: a float32 tensor of ``steps + 1``
decreasing noise levels ending in 0, for a model whose training noise levels are ``levels``
(``NoiseLevels``, built from the model's own scheduler config). The names and formulas are
ComfyUI's, so workflows made there ask for the same steps here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

# Stable Diffusion's noise schedule, for configs that leave a field out.
_DEFAULT_CONFIG: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
}
# Zero-terminal-SNR models have σ = ∞ at the last timestep; like diffusers, keep it finite by
# giving that timestep ᾱ = 2⁻²⁴ (σ ≈ 4096).
_ZERO_SNR_ALPHA_BAR = 2.0**-24


def _betas(config: Mapping[str, Any]) -> np.ndarray:
    count = int(config["num_train_timesteps"])
    if config.get("trained_betas") is not None:
        return np.asarray(config["trained_betas"], dtype=np.float64)
    start, end = float(config["beta_start"]), float(config["beta_end"])
    kind = config.get("beta_schedule", "scaled_linear")
    if kind == "linear":
        return np.linspace(start, end, count, dtype=np.float64)
    if kind == "scaled_linear":
        return np.linspace(start**0.5, end**0.5, count, dtype=np.float64) ** 2
    if kind == "squaredcos_cap_v2":
        # Nichol & Dhariwal 2021, eq. 17: ᾱ(t) = cos²((t/T + s)/(1 + s) · π/2), s = 0.008;
        # β_t = 1 − ᾱ(t+1)/ᾱ(t), capped at 0.999.
        def alpha_bar(t: float) -> float:
            return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

        return np.array(
            [
                min(1 - alpha_bar((i + 1) / count) / alpha_bar(i / count), 0.999)
                for i in range(count)
            ]
        )
    raise ValueError(
        f"the model's scheduler config has beta_schedule {kind!r}: LatentLoom knows linear, "
        "scaled_linear and squaredcos_cap_v2"
    )


def _rescale_zero_terminal_snr(alphas_bar: np.ndarray) -> np.ndarray:
    """Lin et al. 2024, Alg. 1: shift and scale √ᾱ so the last timestep is pure noise."""
    root = np.sqrt(alphas_bar)
    first, last = root[0], root[-1]
    root = (root - last) * first / (first - last)
    return root**2


#: How a model's UNet is told the noise level (``NoiseLevels.timing``).
DISCRETE, DISTILLED, CONTINUOUS = "discrete", "distilled", "continuous"
#: Levels of a continuous-time (EDM) model's table: log-spaced, as ComfyUI keeps them, so
#: the schedules that walk a table work on it too.
_CONTINUOUS_TABLE = 1000


@dataclass(frozen=True, eq=False)
class NoiseLevels:
    """The noise levels a discrete-time model was trained on: σ_t = √((1 − ᾱ_t)/ᾱ_t) for
    t = 0..T−1 (Karras et al. 2022, §2: a VP model's input x/√(1+σ²) at level σ), and the
    conversion between σ and the (fractional) timestep the UNet is given.

    ``timing`` says what the UNet gets for a level σ: ``discrete``, the fractional training
    timestep; ``distilled`` (LCM: the table keeps every ``stride``-th training level), the
    training timestep of the nearest kept level; ``continuous`` (EDM models, whose table is
    log-spaced between σ_min and σ_max), c_noise = ¼·ln σ (Karras et al. 2022, Table 1).
    """

    sigmas: torch.Tensor  # float32 [T], increasing with t
    timing: str = DISCRETE
    stride: int = 1

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None = None) -> NoiseLevels:
        """The levels of a model whose scheduler config is ``config`` (betas, their schedule,
        the number of training steps and zero-terminal-SNR rescaling; ``model_sampling``
        "lcm" with ``original_inference_steps``, or "edm" with ``sigma_min``/``sigma_max``)."""
        merged = dict(_DEFAULT_CONFIG)
        merged.update({k: v for k, v in (config or {}).items() if v is not None})
        kind = merged.get("model_sampling", "discrete")
        if kind == "edm":
            low, high = math.log(float(merged["sigma_min"])), math.log(float(merged["sigma_max"]))
            table = torch.linspace(low, high, _CONTINUOUS_TABLE, dtype=torch.float64).exp()
            return cls(table.float(), CONTINUOUS)
        alphas_bar = np.cumprod(1.0 - _betas(merged))
        if merged.get("rescale_betas_zero_snr"):
            alphas_bar = _rescale_zero_terminal_snr(alphas_bar)
            alphas_bar[-1] = _ZERO_SNR_ALPHA_BAR
        sigmas = torch.from_numpy(np.sqrt((1.0 - alphas_bar) / alphas_bar)).float()
        if kind == "lcm":
            # Consistency distillation (Luo et al. 2023, §4.2) trains on every k-th of the T
            # timesteps, k = T / original_inference_steps, ending at T − 1.
            stride = max(1, len(sigmas) // int(merged.get("original_inference_steps", 50)))
            return cls(sigmas[stride - 1 :: stride].clone(), DISTILLED, stride)
        return cls(sigmas)

    @property
    def sigma_min(self) -> float:
        return float(self.sigmas[0])

    @property
    def sigma_max(self) -> float:
        return float(self.sigmas[-1])

    def sigma(self, timestep: float) -> float:
        """σ at a fractional timestep: log σ interpolated linearly between whole timesteps."""
        log_sigmas = self.sigmas.double().log()
        t = min(max(float(timestep), 0.0), len(self.sigmas) - 1.0)
        low = math.floor(t)
        high = min(low + 1, len(self.sigmas) - 1)
        w = t - low
        return math.exp((1 - w) * float(log_sigmas[low]) + w * float(log_sigmas[high]))

    def timestep(self, sigma: float) -> float:
        """The fractional timestep whose σ is ``sigma`` (the inverse of ``sigma``, clamped to
        the trained range), as diffusers' and k-diffusion's samplers give the UNet."""
        log_sigmas = self.sigmas.double().log()
        target = math.log(max(float(sigma), 1e-30))
        if target <= float(log_sigmas[0]):
            return 0.0
        if target >= float(log_sigmas[-1]):
            return float(len(self.sigmas) - 1)
        high = int(torch.searchsorted(log_sigmas, torch.tensor(target, dtype=torch.float64)))
        low = high - 1
        w = (target - float(log_sigmas[low])) / float(log_sigmas[high] - log_sigmas[low])
        return low + w

    def unet_timestep(self, sigma: float) -> float:
        """What the UNet is given as its timestep at noise level ``sigma`` (see ``timing``)."""
        if self.timing == CONTINUOUS:
            return 0.25 * math.log(max(float(sigma), 1e-30))
        if self.timing == DISTILLED:
            target = math.log(max(float(sigma), 1e-30))
            nearest = int((self.sigmas.double().log() - target).abs().argmin())
            return float(nearest * self.stride + self.stride - 1)
        return self.timestep(sigma)


Schedule = Callable[[NoiseLevels, int], torch.Tensor]


def _with_zero(values: list[float] | np.ndarray) -> torch.Tensor:
    return torch.tensor([*[float(v) for v in values], 0.0], dtype=torch.float32)


def normal(levels: NoiseLevels, steps: int) -> torch.Tensor:
    """Timesteps evenly spaced from the last trained one to the first, both included."""
    last = len(levels.sigmas) - 1
    return _with_zero([levels.sigma(t) for t in np.linspace(last, 0, steps)])


def sgm_uniform(levels: NoiseLevels, steps: int) -> torch.Tensor:
    """Timesteps evenly spaced from the last trained one, the first left out (SGM's
    "trailing" spacing)."""
    last = len(levels.sigmas) - 1
    return _with_zero([levels.sigma(t) for t in np.linspace(last, 0, steps + 1)[:-1]])


def simple(levels: NoiseLevels, steps: int) -> torch.Tensor:
    """Whole timesteps every T/steps from the last one down: ComfyUI's default schedule."""
    count = len(levels.sigmas)
    stride = count / steps
    return _with_zero([float(levels.sigmas[-(1 + int(k * stride))]) for k in range(steps)])


def ddim_uniform(levels: NoiseLevels, steps: int) -> torch.Tensor:
    """Timesteps 1 + k·⌊T/steps⌋: the spacing of the DDIM paper as Stable Diffusion uses it."""
    count = len(levels.sigmas)
    stride = max(count // steps, 1)
    timesteps = [min(1 + k * stride, count - 1) for k in range(steps)]
    return _with_zero([float(levels.sigmas[t]) for t in reversed(timesteps)])


def karras(
    levels: NoiseLevels,
    steps: int,
    sigma_min: float | None = None,
    sigma_max: float | None = None,
    rho: float = 7.0,
) -> torch.Tensor:
    """Karras et al. 2022, eq. 5 (ρ = 7): σ_i = (σ_max^(1/ρ) + i/(N−1)·(σ_min^(1/ρ) −
    σ_max^(1/ρ)))^ρ, denser near σ_min."""
    low = levels.sigma_min if sigma_min is None else sigma_min
    high = levels.sigma_max if sigma_max is None else sigma_max
    ramp = np.linspace(0, 1, steps)
    inverse_rho_low, inverse_rho_high = low ** (1 / rho), high ** (1 / rho)
    return _with_zero((inverse_rho_high + ramp * (inverse_rho_low - inverse_rho_high)) ** rho)


def exponential(
    levels: NoiseLevels, steps: int, sigma_min: float | None = None, sigma_max: float | None = None
) -> torch.Tensor:
    """σ evenly spaced in log σ from σ_max to σ_min."""
    low = levels.sigma_min if sigma_min is None else sigma_min
    high = levels.sigma_max if sigma_max is None else sigma_max
    return _with_zero(np.exp(np.linspace(math.log(high), math.log(low), steps)))


def beta(levels: NoiseLevels, steps: int, alpha: float = 0.6, beta: float = 0.6) -> torch.Tensor:
    """Timesteps at the quantiles of a Beta(α, β) distribution (Lee et al. 2024, "Beta
    Sampling is All You Need", α = β = 0.6): dense at both ends of the schedule. A timestep
    that two quantiles round to is used once, so very long schedules may be shorter."""
    from scipy import stats

    last = len(levels.sigmas) - 1
    quantiles = 1 - np.linspace(0, 1, steps, endpoint=False)
    timesteps = np.rint(stats.beta.ppf(quantiles, alpha, beta) * last).astype(int)
    chosen: list[float] = []
    previous = -1
    for t in timesteps:
        if t != previous:
            chosen.append(float(levels.sigmas[t]))
        previous = t
    return _with_zero(chosen)


def linear_quadratic(
    levels: NoiseLevels, steps: int, threshold: float = 0.025, linear_steps: int | None = None
) -> torch.Tensor:
    """Genmo's Mochi schedule, in fractions s of σ_max (σ = (1 − s)·σ_max): s grows linearly
    to ``threshold`` over the first half of the steps, then quadratically to 1, with a
    continuous slope where the two meet."""
    if steps == 1:
        return _with_zero([levels.sigma_max])
    first = steps // 2 if linear_steps is None else linear_steps
    rest = steps - first
    slope = threshold / first
    curvature = (1 - threshold - slope * rest) / rest**2
    fractions = [slope * i for i in range(first)]
    fractions += [
        threshold + slope * (i - first) + curvature * (i - first) ** 2 for i in range(first, steps)
    ]
    return _with_zero([(1 - s) * levels.sigma_max for s in fractions])


def kl_optimal(levels: NoiseLevels, steps: int) -> torch.Tensor:
    """σ_i = tan((1 − i/(N−1))·atan σ_max + i/(N−1)·atan σ_min): the schedule that is optimal
    for the KL divergence of a Gaussian data distribution (Sabour et al. 2024, "Align Your
    Steps", Thm. 3.1)."""
    ramp = np.linspace(0, 1, steps) if steps > 1 else np.zeros(1)
    angle = ramp * math.atan(levels.sigma_min) + (1 - ramp) * math.atan(levels.sigma_max)
    return _with_zero(np.tan(angle))


#: Every schedule by its ComfyUI name, in ComfyUI's order.
SCHEDULES: dict[str, Schedule] = {
    "normal": normal,
    "karras": karras,
    "exponential": exponential,
    "sgm_uniform": sgm_uniform,
    "simple": simple,
    "ddim_uniform": ddim_uniform,
    "beta": beta,
    "linear_quadratic": linear_quadratic,
    "kl_optimal": kl_optimal,
}
