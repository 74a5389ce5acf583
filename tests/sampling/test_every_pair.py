"""Every sampler runs on every schedule: finite, reproducible from the seed, one report per
step; and the schedules and noise keep their promises."""

from __future__ import annotations

import math

import pytest
import torch

from core.diffusion.samplers import (
    SAMPLER_NAMES,
    SAMPLERS,
    SCHEDULE_NAMES,
    BrownianNoise,
    NoiseLevels,
    StepNoise,
    UnknownSamplerError,
    make_sigmas,
)
from core.diffusion.samplers.schedules import karras
from core.diffusion.sampling import SamplerSettings, SamplerStep, sample, schedule_sigmas
from tests.sampling.harness import model_of, random_conditioning, tiny

LATENT = (1, 4, 8, 8)
STEPS = 3
LEVELS = NoiseLevels.from_config({})
LATENT_ZERO = torch.zeros(LATENT)


@pytest.fixture(scope="module")
def setup():
    pipeline = tiny()
    return model_of(pipeline), random_conditioning(pipeline, 1), random_conditioning(pipeline, 2)


def _run(setup, sampler: str, schedule: str, seed: int, callback=None) -> torch.Tensor:
    model, positive, negative = setup
    settings = SamplerSettings(sampler, schedule, STEPS, 1.0, seed)  # one UNet pass a call
    return sample(model, positive, negative, torch.zeros(LATENT), settings, callback=callback)


# The _gpu names are the same functions (``test_gpu_names_are_aliases``).
OWN_SAMPLERS = [name for name in SAMPLER_NAMES if SAMPLERS[name].alias_of is None]


@pytest.mark.parametrize("schedule", SCHEDULE_NAMES)
@pytest.mark.parametrize("sampler", OWN_SAMPLERS)
def test_every_sampler_runs_on_every_schedule(setup, sampler: str, schedule: str) -> None:
    steps: list[SamplerStep] = []
    first = _run(setup, sampler, schedule, 5, callback=steps.append)
    assert bool(torch.isfinite(first).all())
    assert [(s.step, s.total) for s in steps] == [(k, STEPS) for k in range(1, STEPS + 1)]
    assert all(s.latent.shape == LATENT and s.denoised.shape == LATENT for s in steps)
    # The last step lands on the result.
    torch.testing.assert_close(steps[-1].latent.cpu(), first)
    assert torch.equal(_run(setup, sampler, schedule, 5), first)
    if SAMPLERS[sampler].stochastic:
        assert not torch.allclose(_run(setup, sampler, schedule, 6), first)


@pytest.mark.parametrize("schedule", SCHEDULE_NAMES)
@pytest.mark.parametrize("steps", [1, 2, 7, 20])
def test_schedules_decrease_to_zero_with_one_level_per_step(schedule: str, steps: int) -> None:
    sigmas = make_sigmas(schedule, LEVELS, steps)
    assert sigmas.dtype == torch.float32 and len(sigmas) == steps + 1
    assert float(sigmas[-1]) == 0.0 and bool((sigmas[:-1] > sigmas[1:]).all())
    assert float(sigmas[0]) <= LEVELS.sigma_max * (1 + 1e-6)


def test_schedules_follow_comfyuis_formulas() -> None:
    sigma = LEVELS.sigmas
    assert torch.allclose(make_sigmas("simple", LEVELS, 4)[:-1], sigma[[999, 749, 499, 249]])
    assert torch.allclose(make_sigmas("ddim_uniform", LEVELS, 4)[:-1], sigma[[751, 501, 251, 1]])
    assert torch.allclose(make_sigmas("normal", LEVELS, 4)[:-1], sigma[[999, 666, 333, 0]])
    assert torch.allclose(make_sigmas("sgm_uniform", LEVELS, 3)[:-1], sigma[[999, 666, 333]])
    karras = make_sigmas("karras", LEVELS, 5)
    # Karras et al. 2022, eq. 5: the ρ-th roots are evenly spaced.
    roots = karras[:-1].double() ** (1 / 7)
    assert torch.allclose(roots.diff(), roots.diff()[:1].expand(4), rtol=1e-4)
    exponential = make_sigmas("exponential", LEVELS, 5)[:-1].double().log()
    assert torch.allclose(exponential.diff(), exponential.diff()[:1].expand(4), rtol=1e-4)
    kl = make_sigmas("kl_optimal", LEVELS, 5)[:-1].double().atan()
    assert torch.allclose(kl.diff(), kl.diff()[:1].expand(4), rtol=1e-4)
    # Mochi's linear-quadratic schedule: the first half within 2.5 % of σ_max.
    lq = make_sigmas("linear_quadratic", LEVELS, 10)
    assert float(lq[4]) >= 0.975 * LEVELS.sigma_max > float(lq[6])
    # Beta(0.6, 0.6) quantiles are dense at both ends: the middle steps are the longest.
    beta = make_sigmas("beta", LEVELS, 10)
    timesteps = torch.tensor([LEVELS.timestep(float(s)) for s in beta[:-1]])
    gaps = -timesteps.diff()
    assert float(gaps[4]) > float(gaps[0]) and float(gaps[4]) > float(gaps[-1])


def test_sigma_and_timestep_are_inverse_and_interpolate_log_sigma() -> None:
    for t in (0.0, 10.5, 500.25, 999.0):
        assert LEVELS.timestep(LEVELS.sigma(t)) == pytest.approx(t, abs=1e-6)
    middle = LEVELS.sigma(500.5)
    assert math.log(middle) == pytest.approx(
        (math.log(LEVELS.sigma(500)) + math.log(LEVELS.sigma(501))) / 2
    )
    assert LEVELS.sigma_max == pytest.approx(14.6146, abs=1e-4)  # SD's scaled-linear betas


def test_zero_terminal_snr_and_v_configs_change_the_levels() -> None:
    zsnr = NoiseLevels.from_config({"rescale_betas_zero_snr": True})
    assert zsnr.sigma_max > 4000 and math.isfinite(zsnr.sigma_max)
    cosine = NoiseLevels.from_config({"beta_schedule": "squaredcos_cap_v2"})
    assert cosine.sigma_max > 100 > LEVELS.sigma_max
    with pytest.raises(ValueError, match="beta_schedule"):
        NoiseLevels.from_config({"beta_schedule": "wiggly"})


def test_ksampler_drops_the_penultimate_level_for_dpm_2_and_uni_pc() -> None:
    longer = make_sigmas("karras", LEVELS, 5)
    dropped = schedule_sigmas("dpm_2", "karras", 4)
    assert torch.equal(dropped, torch.cat([longer[:-2], longer[-1:]]))
    assert torch.equal(schedule_sigmas("euler", "karras", 4), make_sigmas("karras", LEVELS, 4))


def test_gpu_names_are_aliases(setup) -> None:
    for name in ("dpmpp_sde_gpu", "dpmpp_2m_sde_gpu", "dpmpp_3m_sde_gpu"):
        info = SAMPLERS[name]
        assert info.alias_of == name.removesuffix("_gpu")
        assert info.function is SAMPLERS[info.alias_of].function
        assert torch.equal(_run(setup, name, "karras", 3), _run(setup, info.alias_of, "karras", 3))


def test_unknown_names_say_which_input_and_what_to_choose(setup) -> None:
    model, positive, negative = setup
    for settings, field in (
        (SamplerSettings("nope", "normal", 3), "sampler_name"),
        (SamplerSettings("euler", "nope", 3), "scheduler"),
    ):
        with pytest.raises(UnknownSamplerError, match="choose one of") as caught:
            sample(model, positive, negative, torch.zeros(LATENT), settings)
        assert caught.value.field == field


def test_explicit_sigmas_drive_the_run_and_bad_ones_are_refused(setup) -> None:
    model, positive, negative = setup
    settings = SamplerSettings("euler", "normal", 99, 4.0, 2)
    sigmas = make_sigmas("karras", LEVELS, 3)
    explicit = sample(model, positive, negative, torch.zeros(LATENT), settings, sigmas=sigmas)
    by_name = SamplerSettings("euler", "karras", 3, 4.0, 2)
    named = sample(model, positive, negative, torch.zeros(LATENT), by_name)
    assert torch.equal(explicit, named)
    for bad in ([1.0], [1.0, 2.0], [3.0, 0.0, 0.0], [float("nan"), 0.0]):
        with pytest.raises(ValueError, match="sigmas"):
            sample(model, positive, negative, LATENT_ZERO, settings, sigmas=torch.tensor(bad))


def test_step_noise_is_keyed_on_the_level_and_brownian_noise_on_the_seed() -> None:
    schedule = make_sigmas("normal", LEVELS, 4)
    a, b = StepNoise(1, schedule, (2, 3)), StepNoise(1, schedule, (2, 3))
    assert torch.equal(a(float(schedule[2]), float(schedule[3])), b(float(schedule[2]), 0.0))
    assert not torch.equal(a(float(schedule[1]), 0.0), a(float(schedule[2]), 0.0))
    low, high = float(schedule[-2]), float(schedule[0])
    path, again = BrownianNoise(7, low, high, (4096,)), BrownianNoise(7, low, high, (4096,))
    whole = path(high, low)
    assert torch.equal(whole, again(high, low))
    assert abs(float(whole.std()) - 1) < 0.05
    # Increments of one path add up: W(a→c) = W(a→b) + W(b→c), up to their normalisation.
    middle = float(schedule[2])
    parts = path(high, middle) * math.sqrt(high - middle) + path(middle, low) * math.sqrt(
        middle - low
    )
    torch.testing.assert_close(parts, whole * math.sqrt(high - low), rtol=1e-4, atol=1e-4)
    assert not torch.equal(whole, BrownianNoise(8, low, high, (4096,))(high, low))


def _gaussian_denoiser(mean: float, std: float):
    """The exact denoiser of N(mean, std²) data: D(x; σ) = mean + std²/(std²+σ²)·(x − mean)."""
    return lambda x, sigma: mean + std**2 / (std**2 + sigma**2) * (x - mean)


DETERMINISTIC = {
    "euler": 1,
    "heun": 2,
    "dpm_2": 2,
    "lms": 2,
    "dpmpp_2m": 2,
    "res_multistep": 2,
    "ipndm": 2,
    "deis": 2,
    "uni_pc": 2,
    "uni_pc_bh2": 2,
    "dpmpp_2s_ancestral": 2,
    "dpmpp_sde": 2,
    "dpmpp_2m_sde": 2,
    "dpmpp_3m_sde": 2,
}


@pytest.mark.parametrize(("sampler", "order"), DETERMINISTIC.items())
def test_samplers_converge_on_gaussian_data_at_their_order(sampler: str, order: int) -> None:
    """On N(0.3, 0.5²) data the probability-flow ODE has the closed form
    x(σ) = m + √(s²+σ²)/√(s²+σ₀²)·(x₀ − m); halving the step (Karras levels between σ_max
    and 0.1, no final jump to 0) shrinks the error at least as the method's order says."""
    denoiser = _gaussian_denoiser(0.3, 0.5)
    start = torch.randn(256, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    options = {"eta": 0.0} if SAMPLERS[sampler].stochastic else {}
    errors = []
    for steps in (16, 32):
        sigmas = karras(LEVELS, steps, sigma_min=0.1)[:-1].double()
        x = start * float(sigmas[0])
        exact = 0.3 + math.sqrt(0.25 + float(sigmas[-1]) ** 2) / math.sqrt(
            0.25 + float(sigmas[0]) ** 2
        ) * (x - 0.3)
        out = SAMPLERS[sampler].function(denoiser, x, sigmas, **options)
        errors.append(float((out - exact).abs().max()))
    assert errors[1] < errors[0] / (2**order * 0.7), errors
