"""The sampling loop's own promises: determinism, seeds, split runs, callbacks, cancellation,
CFG batching, conditioning areas, and the noise and denoise conventions."""

from __future__ import annotations

import pytest
import torch

from core.diffusion.conditioning import Area, Conditioning, ConditioningEntry, set_area
from core.diffusion.families import PredictionType
from core.diffusion.models import DiffusionModel
from core.diffusion.samplers import SAMPLERS
from core.diffusion.samplers.schedules import NoiseLevels
from core.diffusion.sampling import (
    SamplerSettings,
    SamplerStep,
    denoise_window,
    predicted_x0,
    sample,
    seeded_noise,
    step_seed,
)
from core.diffusion.schedulers import schedule_problem
from tests.sampling.harness import model_of, psnr, random_conditioning, tiny

LATENT = (1, 4, 16, 16)


@pytest.fixture(scope="module")
def setup():
    pipeline = tiny()
    return model_of(pipeline), random_conditioning(pipeline, 1), random_conditioning(pipeline, 2)


def _run(setup, settings, latent=None, **kwargs):
    model, positive, negative = setup
    latent = torch.zeros(LATENT) if latent is None else latent
    return sample(model, positive, negative, latent, settings, **kwargs)


@pytest.mark.parametrize("sampler", ["euler_ancestral", "dpmpp_2m_sde", "dpm_2"])
def test_same_seed_is_bit_identical_and_other_seeds_differ(setup, sampler: str) -> None:
    first = _run(setup, SamplerSettings(sampler, "normal", 4, 6.0, 7))
    again = _run(setup, SamplerSettings(sampler, "normal", 4, 6.0, 7))
    other = _run(setup, SamplerSettings(sampler, "normal", 4, 6.0, 8))
    assert torch.equal(first, again)
    assert not torch.allclose(first, other)
    assert first.device.type == "cpu" and first.dtype == torch.float32


def test_step_seeds_are_distinct_across_seeds_and_steps() -> None:
    seeds = {step_seed(s, i) for s in range(50) for i in range(50)}
    assert len(seeds) == 2500
    assert step_seed(5, 1) != step_seed(6, 0)


def test_initial_noise_is_the_seeds_cpu_noise(setup) -> None:
    """An explicit noise input equal to the seed's noise changes nothing."""
    settings = SamplerSettings("euler", "normal", 3, 5.0, 11)
    assert torch.equal(_run(setup, settings), _run(setup, settings, noise=seeded_noise(11, LATENT)))
    assert not torch.equal(
        _run(setup, settings), _run(setup, settings, noise=seeded_noise(12, LATENT))
    )


SINGLE_STEP = [s for s, d in SAMPLERS.items() if not d.multistep]
MULTISTEP = [s for s, d in SAMPLERS.items() if d.multistep]


def _split(setup, sampler: str, steps: int, k: int):
    common = {"sampler": sampler, "schedule": "normal", "steps": steps, "cfg": 5.0, "seed": 3}
    whole_steps: list[SamplerStep] = []
    whole = _run(setup, SamplerSettings(**common), callback=whole_steps.append)
    half = _run(setup, SamplerSettings(**common, end_step=k, leftover_noise=True))
    rest = _run(setup, SamplerSettings(**common, start_step=k, add_noise=False), latent=half)
    return whole, whole_steps, half, rest


@pytest.mark.parametrize("sampler", SINGLE_STEP)
def test_split_sampling_equals_one_run(setup, sampler: str) -> None:
    whole, _, _, rest = _split(setup, sampler, 5, 2)
    torch.testing.assert_close(rest, whole, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("sampler", MULTISTEP)
def test_split_multistep_keeps_the_first_part_and_restarts_the_history(setup, sampler: str) -> None:
    """A multistep solver's history (earlier model outputs) cannot cross a node boundary: the
    second node restarts at first order. The latent handed over is exactly the one-run latent
    at that step; the end result differs only by the lower-order restart."""
    whole, steps, half, rest = _split(setup, sampler, 5, 2)
    torch.testing.assert_close(half, steps[1].latent.cpu(), rtol=1e-5, atol=1e-5)
    assert not torch.equal(rest, whole)
    scale = float(whole.abs().max())
    assert psnr(rest / (2 * scale), whole / (2 * scale)) > 20


def test_ddim_is_euler_and_hands_over_to_any_sampler(setup) -> None:
    """DDIM (η = 0) is Euler's method in σ-space (Karras et al. 2022, §3), and a half-run
    latent in σ-space continues with another sampler close to a one-sampler run."""
    common = {"schedule": "sgm_uniform", "steps": 6, "cfg": 5.0, "seed": 4}
    euler_half = _run(setup, SamplerSettings("euler", **common, end_step=3, leftover_noise=True))
    ddim_half = _run(setup, SamplerSettings("ddim", **common, end_step=3, leftover_noise=True))
    assert torch.equal(euler_half, ddim_half)
    rest = SamplerSettings("dpmpp_2m", **common, start_step=3, add_noise=False)
    mixed = _run(setup, rest, latent=euler_half)
    whole = _run(setup, SamplerSettings("dpmpp_2m", **common))
    assert float((mixed - whole).norm() / whole.norm()) < 0.05


def test_stopping_early_without_leftover_noise_returns_the_denoised_estimate(setup) -> None:
    settings = SamplerSettings("euler", "normal", 6, 5.0, 2, end_step=3)
    steps: list[SamplerStep] = []
    result = _run(setup, settings, callback=steps.append)
    torch.testing.assert_close(result, steps[-1].denoised.cpu())


def test_callback_reports_each_step_and_cancel_stops(setup) -> None:
    seen: list[tuple[int, int]] = []
    _run(
        setup,
        SamplerSettings("heun", "normal", 4, 5.0, 1),
        callback=lambda s: seen.append((s.step, s.total)),
    )
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]

    calls = []

    def cancel() -> None:
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _run(setup, SamplerSettings("euler", "normal", 10, 5.0, 1), check_cancel=cancel)
    assert len(calls) == 3


class _CountingUNet(torch.nn.Module):
    """Wraps a UNet and records each call's batch size."""

    def __init__(self, unet: torch.nn.Module) -> None:
        super().__init__()
        self.inner = unet
        self.config = unet.config
        self.batches: list[int] = []

    def forward(self, x, t, **kwargs):
        self.batches.append(x.shape[0])
        return self.inner(x, t, **kwargs)


def test_cfg_is_one_batched_call_and_a_single_pass_at_scale_one(setup) -> None:
    model, positive, negative = setup
    counting = _CountingUNet(model.unet)
    wrapped = type(model)(counting, model.family, model.prediction, model.scheduler_config)
    sample(
        wrapped, positive, negative, torch.zeros(LATENT), SamplerSettings("euler", steps=3, cfg=7.5)
    )
    assert counting.batches == [2, 2, 2]
    counting.batches.clear()
    sample(
        wrapped, positive, negative, torch.zeros(LATENT), SamplerSettings("euler", steps=3, cfg=1.0)
    )
    assert counting.batches == [1, 1, 1]


def _sigmas_of(setup, settings, monkeypatch):
    """The noise level σ each model call of a run sees, as the sampler asks the model."""
    model, positive, negative = setup
    seen: list[float] = []
    asked = DiffusionModel.guided_at
    monkeypatch.setattr(DiffusionModel, "guided_at", lambda m, s: seen.append(s) or asked(m, s))
    sample(model, positive, negative, torch.zeros(LATENT), settings)
    monkeypatch.undo()
    return seen


@pytest.mark.parametrize("sampler", ["ddim", "euler"])
def test_guidance_interval_guides_only_inside_it_and_skips_the_negative_pass(
    setup, sampler: str, monkeypatch
) -> None:
    model, positive, negative = setup
    settings = SamplerSettings(sampler, "normal", 6, 7.5, seed=3)
    sigmas = _sigmas_of(setup, settings, monkeypatch)
    assert sigmas == sorted(sigmas, reverse=True) and len(sigmas) == 6
    low = (sigmas[2] + sigmas[3]) / 2  # the first three calls guided, the last three not
    counting = _CountingUNet(model.unet)
    wrapped = type(model)(counting, model.family, model.prediction, model.scheduler_config)
    limited = sample(
        wrapped.with_guidance_interval(low, 1000.0),
        positive,
        negative,
        torch.zeros(LATENT),
        settings,
    )
    assert counting.batches == [2, 2, 2, 1, 1, 1]
    # Guidance everywhere and nowhere are different pictures; the interval is neither.
    everywhere = _run(setup, settings)
    nowhere = _run(setup, SamplerSettings(sampler, "normal", 6, 1.0, seed=3))
    assert not torch.equal(limited, everywhere) and not torch.equal(limited, nowhere)
    # An interval that holds every step is plain guidance, bit for bit; one that holds none
    # is the positive prompt alone.
    whole = sample(
        model.with_guidance_interval(0.0, 1000.0), positive, negative, torch.zeros(LATENT), settings
    )
    assert torch.equal(whole, everywhere)
    empty = sample(
        model.with_guidance_interval(500.0, 1000.0),
        positive,
        negative,
        torch.zeros(LATENT),
        settings,
    )
    assert torch.equal(empty, nowhere)


def test_guidance_interval_is_half_open_and_rejects_empty_ones(setup) -> None:
    model = setup[0]
    assert model.guided_at(0.1)  # no interval: guidance everywhere
    limited = model.with_guidance_interval(1.0, 5.0)
    assert [limited.guided_at(s) for s in (0.5, 1.0, 1.01, 5.0, 5.01)] == [
        False,
        False,
        True,
        True,
        False,
    ]
    assert limited.unet is model.unet and model.guidance_interval is None
    for low, high in ((2.0, 2.0), (3.0, 1.0), (-1.0, 1.0)):
        with pytest.raises(ValueError, match="guidance interval"):
            model.with_guidance_interval(low, high)


def test_repeated_tokens_do_not_change_attention(setup) -> None:
    """A 154-token context repeating a 77-token one attends identically, so contexts of
    different lengths may share a batch (they are repeated to a common length)."""
    model, positive, negative = setup
    long = Conditioning((ConditioningEntry(positive[0].embeds.repeat(1, 2, 1)),))
    settings = SamplerSettings("euler", steps=3, cfg=5.0, seed=9)
    a = sample(model, positive, negative, torch.zeros(LATENT), settings)
    b = sample(model, long, negative, torch.zeros(LATENT), settings)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_area_conditioning_only_acts_inside_its_area(setup) -> None:
    """Two prompts, one limited to the left half (pixels, f = 8): the right half follows only
    the unrestricted prompt, the left half is the average of both."""
    model, positive, negative = setup
    other = random_conditioning(tiny(), 5)
    left = set_area(other, Area(0, 0, 64, 128))  # 8 of 16 latent columns
    mixed = Conditioning(positive.entries + left.entries)
    settings = SamplerSettings("euler", steps=1, cfg=1.0, seed=9, end_step=1)
    only = sample(model, positive, negative, torch.zeros(LATENT), settings)
    both = sample(model, mixed, negative, torch.zeros(LATENT), settings)
    assert torch.equal(both[..., 8:], only[..., 8:])
    assert float((both[..., :8] - only[..., :8]).abs().max()) > 1e-5


def test_area_follows_the_latents_downscale(setup) -> None:
    """With 4 pixels per cell (the demo model's VAE), the same 64-pixel-wide area covers 16
    latent columns — the whole width — instead of SD's 8."""
    model, positive, negative = setup
    left = set_area(random_conditioning(tiny(), 5), Area(0, 0, 64, 128))
    mixed = Conditioning(positive.entries + left.entries)
    settings = SamplerSettings("euler", steps=1, cfg=1.0, seed=9, end_step=1)
    only = sample(model, positive, negative, torch.zeros(LATENT), settings, downscale=4)
    both = sample(model, mixed, negative, torch.zeros(LATENT), settings, downscale=4)
    assert float((both[..., 8:] - only[..., 8:]).abs().max()) > 1e-5


def test_denoise_window_follows_comfyui() -> None:
    assert denoise_window(10, 1.0) == (10, 0)
    assert denoise_window(10, 0.5) == (20, 10)
    assert denoise_window(4, 0.3) == (13, 9)
    assert denoise_window(10, 0.0) is None


def test_start_at_or_after_end_returns_the_input(setup) -> None:
    latent = torch.randn(LATENT)
    out = _run(setup, SamplerSettings("euler", steps=4, start_step=4), latent=latent)
    assert torch.equal(out, latent)


def test_every_known_pair_is_supported_and_unknown_names_are_reported() -> None:
    assert schedule_problem("euler_ancestral", "karras") is None
    assert schedule_problem("ddim", "beta") is None
    assert "unknown sampler" in schedule_problem("nope", "normal")
    assert "unknown scheduler" in schedule_problem("euler", "nope")


def test_v_prediction_reaches_the_denoised_estimate(setup) -> None:
    """The same UNet read as v-prediction gives another picture (x̂₀ = √ᾱ·x − √(1−ᾱ)·v)."""
    model, positive, negative = setup
    v_model = type(model)(model.unet, model.family, PredictionType.V_PREDICTION, {})
    settings = SamplerSettings("euler", "normal", 3, 5.0, 1)
    eps = sample(model, positive, negative, torch.zeros(LATENT), settings)
    v = sample(v_model, positive, negative, torch.zeros(LATENT), settings)
    assert not torch.allclose(eps, v)


def test_model_sampling_reads_the_same_unet_as_another_prediction(setup) -> None:
    model, positive, negative = setup
    settings = SamplerSettings("euler", "normal", 3, 5.0, 1)
    config = dict(model.scheduler_config)
    v_model = model.with_model_sampling(PredictionType.V_PREDICTION, False)
    assert v_model.unet is model.unet and v_model.prediction is PredictionType.V_PREDICTION
    assert model.prediction is PredictionType.EPSILON and dict(model.scheduler_config) == config
    loaded_v = type(model)(
        model.unet,
        model.family,
        PredictionType.V_PREDICTION,
        {**config, "prediction_type": "v_prediction"},
    )
    eps = sample(model, positive, negative, torch.zeros(LATENT), settings)
    v = sample(v_model, positive, negative, torch.zeros(LATENT), settings)
    assert not torch.allclose(eps, v)
    assert torch.equal(v, sample(loaded_v, positive, negative, torch.zeros(LATENT), settings))
    # An x0-predicting model's output is the denoised estimate itself.
    x0 = model.with_model_sampling(PredictionType.SAMPLE, False)
    assert not torch.allclose(sample(x0, positive, negative, torch.zeros(LATENT), settings), eps)
    out = torch.randn(LATENT)
    assert torch.equal(predicted_x0(torch.randn(LATENT), out, 3.0, PredictionType.SAMPLE), out)


def test_model_sampling_zsnr_ends_the_noise_levels_at_pure_noise(setup) -> None:
    model, _, _ = setup
    plain = NoiseLevels.from_config(model.scheduler_config)
    zsnr = model.with_model_sampling(PredictionType.EPSILON, True)
    levels = NoiseLevels.from_config(zsnr.scheduler_config)
    assert plain.sigma_max < 20 and levels.sigma_max > 4000
    assert (
        "rescale_betas_zero_snr" not in model.scheduler_config
        or not model.scheduler_config["rescale_betas_zero_snr"]
    )
    assert torch.equal(NoiseLevels.from_config(model.scheduler_config).sigmas, plain.sigmas)
