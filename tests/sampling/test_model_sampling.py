"""Model sampling beyond ε/v/x₀: the LCM mode of ModelSamplingDiscrete (50 distilled levels,
the consistency boundary condition) and ModelSamplingContinuousEDM (continuous levels,
¼·ln σ timesteps, EDM preconditioning), checked against diffusers' LCMScheduler and
EDMEulerScheduler formulas and against what the UNet is actually given."""

from __future__ import annotations

import math

import pytest
import torch
from diffusers import EDMEulerScheduler, LCMScheduler

from core.diffusion.families import PredictionType
from core.diffusion.model_sampling import denoised, input_norm
from core.diffusion.samplers.schedules import NoiseLevels
from core.diffusion.sampling import SamplerSettings, sample, schedule_sigmas
from tests.sampling.harness import model_of, random_conditioning, tiny

LATENT = (1, 4, 8, 8)
LCM = {"model_sampling": "lcm", "original_inference_steps": 50}
EDM = {"model_sampling": "edm", "sigma_min": 0.002, "sigma_max": 120.0}


@pytest.fixture(scope="module")
def setup():
    pipeline = tiny()
    return model_of(pipeline), random_conditioning(pipeline, 1), random_conditioning(pipeline, 2)


def _timesteps_seen(model, positive, negative, settings) -> list[float]:
    seen: list[float] = []

    def record(module, args, kwargs):
        seen.append(float(torch.as_tensor(args[1]).flatten()[0]))

    handle = model.unet.register_forward_pre_hook(record, with_kwargs=True)
    try:
        sample(model, positive, negative, torch.zeros(LATENT), settings)
    finally:
        handle.remove()
    return seen


def test_lcm_levels_are_every_twentieth_training_level_with_their_timesteps():
    full = NoiseLevels.from_config({})
    lcm = NoiseLevels.from_config(LCM)
    assert len(lcm.sigmas) == 50
    assert torch.equal(lcm.sigmas, full.sigmas[19::20])
    assert lcm.unet_timestep(lcm.sigma_max) == 999.0
    assert lcm.unet_timestep(float(full.sigmas[500])) == 499.0  # the nearest kept level
    assert lcm.unet_timestep(lcm.sigma_min) == 19.0


def test_lcm_denoised_meets_the_boundary_condition_of_diffusers_lcm_scheduler():
    scheduler = LCMScheduler()
    levels = NoiseLevels.from_config(LCM)
    x, out = torch.randn(LATENT), torch.randn(LATENT)
    for index in (49, 30, 3, 0):
        sigma = float(levels.sigmas[index])
        timestep = index * 20 + 19
        c_skip, c_out = scheduler.get_scalings_for_boundary_condition_discrete(timestep)
        model_input = x / math.sqrt(1 + sigma * sigma)
        x0 = x - sigma * out  # ε-prediction in σ-space
        expected = c_out * x0 + c_skip * x
        got = denoised(x, model_input, out, sigma, PredictionType.EPSILON, LCM, levels)
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    # Near the clean end the boundary condition hands back the input almost unchanged.
    sigma = float(levels.sigmas[0])
    plain = denoised(x, x, out, sigma, PredictionType.EPSILON, {}, levels)
    assert not torch.allclose(
        plain,
        denoised(x, x / math.sqrt(1 + sigma**2), out, sigma, PredictionType.EPSILON, LCM, levels),
    )


def test_an_lcm_model_is_given_the_distilled_timesteps(setup):
    model, positive, negative = setup
    lcm = model.with_model_sampling(PredictionType.EPSILON, False, **LCM)
    settings = SamplerSettings("lcm", "sgm_uniform", 4, 1.0, 5)
    seen = _timesteps_seen(lcm, positive, negative, settings)
    assert seen == [999.0, 759.0, 499.0, 259.0] or seen == [999.0, 759.0, 519.0, 259.0]
    plain = _timesteps_seen(model, positive, negative, settings)
    assert plain[0] == 999.0 and plain[1] not in (759.0, 739.0)
    result = sample(lcm, positive, negative, torch.zeros(LATENT), settings)
    assert torch.isfinite(result).all()
    assert not torch.allclose(
        result, sample(model, positive, negative, torch.zeros(LATENT), settings)
    )
    # Going back to plain ε sampling drops the LCM settings.
    again = lcm.with_model_sampling(PredictionType.EPSILON, False)
    assert "model_sampling" not in again.scheduler_config


def test_edm_levels_are_continuous_and_the_unet_gets_a_quarter_log_sigma(setup):
    levels = NoiseLevels.from_config(EDM)
    assert levels.sigma_min == pytest.approx(0.002) and levels.sigma_max == pytest.approx(120.0)
    assert levels.unet_timestep(1.0) == 0.0
    reference = EDMEulerScheduler(sigma_min=0.002, sigma_max=120.0)
    for sigma in (0.01, 0.5, 7.0, 100.0):
        assert levels.unet_timestep(sigma) == pytest.approx(
            float(reference.precondition_noise(sigma))
        )
    model, positive, negative = setup
    edm = model.with_model_sampling(PredictionType.V_PREDICTION, **EDM)
    settings = SamplerSettings("euler", "karras", 3, 1.0, 2)
    sigmas = schedule_sigmas("euler", "karras", 3, edm.scheduler_config)
    assert float(sigmas[0]) == pytest.approx(120.0, rel=1e-4)
    seen = _timesteps_seen(edm, positive, negative, settings)
    expected = [0.25 * math.log(float(s)) for s in sigmas[:-1]]
    assert seen == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(
    ("prediction", "sigma_data", "diffusers_type"),
    [(PredictionType.EDM, 0.5, "epsilon"), (PredictionType.V_PREDICTION, 1.0, "v_prediction")],
)
def test_edm_preconditioning_matches_diffusers(prediction, sigma_data, diffusers_type):
    """diffusers' EDM "epsilon" is EDM's F with σ_d = 0.5; its v_prediction with σ_d = 1 is
    the usual v-prediction, which continuous v models (CosXL) use."""
    reference = EDMEulerScheduler(sigma_data=sigma_data, prediction_type=diffusers_type)
    levels = NoiseLevels.from_config(EDM)
    x, out = torch.randn(LATENT), torch.randn(LATENT)
    for sigma in (0.05, 1.3, 60.0):
        norm = input_norm(sigma, prediction, EDM)
        c_in = float(reference.precondition_inputs(torch.ones(()), sigma))
        assert 1 / norm == pytest.approx(c_in)
        got = denoised(x, x / norm, out, sigma, prediction, EDM, levels)
        expected = reference.precondition_outputs(x, out, sigma)
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
