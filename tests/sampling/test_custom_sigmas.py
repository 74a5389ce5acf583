"""The maths of the custom-sampling values: schedules with explicit parameters, splitting and
flipping them, batch noise that follows batch indices, and the guider chain."""

from __future__ import annotations

import math

import pytest
import torch

from core.diffusion import custom_sampling as cs
from core.diffusion.conditioning import Conditioning, ConditioningEntry
from core.diffusion.samplers import NoiseLevels, UnknownSamplerError, make_sigmas
from core.diffusion.samplers.schedules import exponential, karras
from core.diffusion.sampling import seeded_noise

LEVELS = NoiseLevels.from_config(None)


def test_sd_turbo_walks_every_hundredth_timestep_from_the_top():
    one = cs.sd_turbo_sigmas(LEVELS, 1, 1.0)
    torch.testing.assert_close(one, torch.tensor([LEVELS.sigma_max, 0.0]))
    four = cs.sd_turbo_sigmas(LEVELS, 4, 1.0)
    expected = [LEVELS.sigma(t) for t in (999, 899, 799, 699)] + [0.0]
    torch.testing.assert_close(four, torch.tensor(expected))
    # denoise 0.5 starts five timesteps in: 499, then 399
    half = cs.sd_turbo_sigmas(LEVELS, 2, 0.5)
    torch.testing.assert_close(half, torch.tensor([LEVELS.sigma(499), LEVELS.sigma(399), 0.0]))


def test_karras_and_exponential_with_explicit_ranges_match_the_model_schedules():
    low, high = LEVELS.sigma_min, LEVELS.sigma_max
    torch.testing.assert_close(cs.karras_sigmas(7, low, high, 7.0), karras(LEVELS, 7))
    torch.testing.assert_close(cs.exponential_sigmas(7, low, high), exponential(LEVELS, 7))
    # rho = 1 is the exponential schedule; a larger rho drops faster, then lingers near σ_min
    torch.testing.assert_close(
        cs.polyexponential_sigmas(7, 0.1, 10.0, 1.0), cs.exponential_sigmas(7, 0.1, 10.0)
    )
    bent = cs.polyexponential_sigmas(7, 0.1, 10.0, 2.0)
    assert bent[0] == pytest.approx(10.0) and bent[-2] == pytest.approx(0.1)
    assert (bent[1:-2] < cs.exponential_sigmas(7, 0.1, 10.0)[1:-2]).all()


def test_vp_schedule_follows_the_sdes_noise_levels():
    sigmas = cs.vp_sigmas(5, 19.9, 0.1, 0.001)
    assert len(sigmas) == 6 and sigmas[-1] == 0
    assert float(sigmas[0]) == pytest.approx(math.sqrt(math.exp(19.9 / 2 + 0.1) - 1), rel=1e-6)
    edge = math.sqrt(math.expm1(19.9 * 1e-6 / 2 + 0.1 * 1e-3))
    assert float(sigmas[-2]) == pytest.approx(edge, rel=1e-5)
    assert (sigmas[:-1].diff() < 0).all()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: cs.karras_sigmas(5, 3.0, 2.0, 7.0), "below sigma_max"),
        (lambda: cs.karras_sigmas(5, 0.1, 2.0, 0.0), "rho"),
        (lambda: cs.exponential_sigmas(5, 0.0, 2.0), "above 0"),
        (lambda: cs.vp_sigmas(5, 0.0, 0.0, 0.001), "no noise"),
    ],
)
def test_impossible_schedules_say_why(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_basic_scheduler_keeps_the_last_steps_of_a_longer_schedule():
    torch.testing.assert_close(
        cs.basic_sigmas(LEVELS, "karras", 6, 1.0), make_sigmas("karras", LEVELS, 6)
    )
    half = cs.basic_sigmas(LEVELS, "normal", 4, 0.5)
    torch.testing.assert_close(half, make_sigmas("normal", LEVELS, 8)[-5:])
    assert cs.basic_sigmas(LEVELS, "normal", 4, 0.0).numel() == 0


def test_split_flip_and_split_by_denoise():
    sigmas = make_sigmas("normal", LEVELS, 4)
    high, low = cs.split_sigmas(sigmas, 1)
    assert torch.equal(high, sigmas[:2]) and torch.equal(low, sigmas[1:])
    high, low = cs.split_sigmas_denoise(sigmas, 0.5)
    assert torch.equal(high, sigmas[:3]) and torch.equal(low, sigmas[2:])
    flipped = cs.flip_sigmas(sigmas)
    assert float(flipped[0]) == pytest.approx(1e-4)
    assert torch.equal(flipped[1:], sigmas.flip(0)[1:]) and sigmas[-1] == 0  # input untouched
    assert cs.sigmas_problem(sigmas) is None
    assert "decrease" in cs.sigmas_problem(flipped)


def test_batch_noise_follows_batch_indices():
    shape = (3, 4, 4, 4)
    whole = seeded_noise(9, shape)
    assert torch.equal(cs.batch_noise(9, shape, None), whole)
    assert torch.equal(cs.batch_noise(9, shape, [0, 1, 2]), whole)
    # one item picked from the batch keeps its noise; equal indices share noise
    assert torch.equal(cs.batch_noise(9, (1, 4, 4, 4), [2]), whole[2:3])
    fixed = cs.batch_noise(9, shape, [1, 1, 1])
    assert torch.equal(fixed[0], whole[1]) and torch.equal(fixed[2], whole[1])
    with pytest.raises(ValueError, match="3 item"):
        cs.batch_noise(9, shape, [0, 1])


def test_noise_sources_and_add_noise():
    latent = {"samples": torch.ones(2, 4, 4, 4), "batch_index": [1, 0]}
    noise = cs.NoiseSource(4).generate(latent)
    whole = seeded_noise(4, (2, 4, 4, 4))
    assert torch.equal(noise, whole.flip(0))
    assert not cs.NoiseSource(4, enabled=False).generate(latent).any()
    sigmas = torch.tensor([5.0, 2.0, 1.0])
    torch.testing.assert_close(cs.add_noise(latent["samples"], noise, sigmas), 1 + 4 * noise)
    assert torch.equal(cs.add_noise(latent["samples"], noise, torch.zeros(0)), latent["samples"])


def test_sampler_choice_checks_its_name_and_keeps_its_options():
    choice = cs.SamplerChoice.of("euler_ancestral", s_noise=0.5, eta=0.2)
    assert choice.option_dict() == {"eta": 0.2, "s_noise": 0.5}
    assert choice == cs.SamplerChoice.of("euler_ancestral", eta=0.2, s_noise=0.5)
    with pytest.raises(UnknownSamplerError, match="unknown sampler 'sample_nope'"):
        cs.SamplerChoice.of("sample_nope")


def _cond(width: int) -> Conditioning:
    return Conditioning((ConditioningEntry(torch.zeros(1, 77, width)),))


def test_guider_chains():
    model = object()
    p, m, n = _cond(8), _cond(8), _cond(8)
    cfg = cs.Guider.cfg(model, p, n, 5.0)  # type: ignore[arg-type]
    assert cfg.conditionings == (n, p) and cfg.scales == (5.0,) and cfg.positive is p
    basic = cs.Guider.basic(model, p)  # type: ignore[arg-type]
    assert basic.conditionings == (p,) and basic.scales == () and basic.positive is p
    regular = cs.Guider.dual_cfg(model, p, m, n, 3.0, 2.0)  # type: ignore[arg-type]
    assert regular.conditionings == (n, m, p) and regular.scales == (2.0, 3.0)
    nested = cs.Guider.dual_cfg(model, p, m, n, 3.0, 2.0, nested=True)  # type: ignore[arg-type]
    assert nested.scales == (2.0, 6.0) and nested.positive is p


def test_width_problem_names_both_widths():
    class Config:
        cross_attention_dim = 1280

    class Model:
        unet = type("Unet", (), {"config": Config()})()

    assert cs.conditioning_width_problem(Model(), _cond(1280)) is None  # type: ignore[arg-type]
    problem = cs.conditioning_width_problem(Model(), _cond(2048))  # type: ignore[arg-type]
    assert "2048" in problem and "1280" in problem
    assert "SDXL base conditioning given to an SDXL refiner model" in problem
