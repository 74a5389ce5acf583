"""How a model's output at noise level σ becomes the denoised estimate x̂₀, and how its input
is scaled: the "model sampling" of a MODEL (ComfyUI's ModelSamplingDiscrete and
ModelSamplingContinuousEDM).

Latents are in σ-space (x = x₀ + σ·ε). The UNet sees c_in·x with c_in = 1/√(σ² + σ_d²)
(σ_d = 1 for ε-, v- and x₀-prediction, 0.5 for EDM's own preconditioning; Karras et al.
2022, Table 1). The scheduler config says which model sampling applies: ``model_sampling``
"lcm" adds the consistency models' boundary condition to ε-prediction, "edm" makes the noise
levels continuous (``core.diffusion.samplers.NoiseLevels``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from core.diffusion.families import PredictionType
from core.diffusion.samplers import NoiseLevels

#: EDM's data standard deviation (Karras et al. 2022, §5), which its preconditioning assumes.
EDM_SIGMA_DATA = 0.5
#: LCM's boundary condition: σ_data and the factor its timesteps are scaled by (Luo et al.
#: 2023, Latent Consistency Models, §4.1 with the released models' settings).
LCM_SIGMA_DATA = 0.5
LCM_TIMESTEP_SCALING = 10.0


def sigma_data(prediction: PredictionType, config: Mapping[str, Any] | None = None) -> float:
    """σ_d of the model's preconditioning: the config's ``sigma_data`` if it sets one, else
    0.5 for EDM prediction and 1 for the others."""
    value = (config or {}).get("sigma_data")
    if value is not None:
        return float(value)
    return EDM_SIGMA_DATA if prediction is PredictionType.EDM else 1.0


def input_norm(sigma: float, prediction: PredictionType, config: Mapping[str, Any]) -> float:
    """1/c_in = √(σ² + σ_d²): the UNet sees ``x / input_norm`` at noise level ``sigma``."""
    data = sigma_data(prediction, config)
    return math.sqrt(sigma * sigma + data * data)


def predicted_x0(
    model_input: torch.Tensor, output: torch.Tensor, sigma: float, prediction: PredictionType
) -> torch.Tensor:
    """The denoised estimate x̂₀ (σ-space) from the VP model input x/√(1+σ²) and the model
    output at noise level σ.

    With ᾱ = 1/(1+σ²): ε-prediction x̂₀ = (x − √(1−ᾱ)ε)/√ᾱ (Ho et al. 2020, eq. 15);
    v-prediction x̂₀ = √ᾱ·x − √(1−ᾱ)·v (Salimans & Ho 2022, §4); an x₀-predicting model's
    output is x̂₀.
    """
    if prediction is PredictionType.SAMPLE:
        return output
    scale = math.sqrt(1.0 + sigma * sigma)
    if prediction is PredictionType.V_PREDICTION:
        return (model_input - sigma * output) / scale
    return model_input * scale - sigma * output


def denoised(
    x: torch.Tensor,
    model_input: torch.Tensor,
    output: torch.Tensor,
    sigma: float,
    prediction: PredictionType,
    config: Mapping[str, Any],
    levels: NoiseLevels,
) -> torch.Tensor:
    """x̂₀ from the σ-space latent ``x``, what the UNet saw (``model_input`` = c_in·x) and
    its ``output``, by the model's prediction type and model sampling."""
    if prediction is PredictionType.EDM:
        # Karras et al. 2022, eq. 7 and Table 1: D = c_skip·x + c_out·F.
        data = sigma_data(prediction, config)
        total = sigma * sigma + data * data
        return x * (data * data / total) + output * (sigma * data / math.sqrt(total))
    estimate = predicted_x0(model_input, output, sigma, prediction)
    if config.get("model_sampling") != "lcm":
        return estimate
    # A consistency model's output meets the boundary condition f(x, ε) = x (Song et al.
    # 2023, eq. 7; Luo et al. 2023, eq. 9): c_skip·x + c_out·x̂₀ on the scaled timestep.
    t = levels.unet_timestep(sigma) * LCM_TIMESTEP_SCALING
    data = LCM_SIGMA_DATA
    c_skip = data * data / (t * t + data * data)
    c_out = t / math.sqrt(t * t + data * data)
    return estimate * c_out + x * c_skip
