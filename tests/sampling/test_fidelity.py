"""LatentLoom's σ-space samplers reproduce diffusers' schedulers on the same weights and noise.

Text encoding is not compared (random embeddings stand in for prompts). Both sides start from
the same latent: the seed's noise scaled to LatentLoom's first level (diffusers' own starting
scale is divided out of the ``latents`` it is given). Step noise is re-seeded the way
LatentLoom seeds it (``harness.reseed_steps``). Where diffusers' schedule differs from the
ComfyUI schedule of the same name, LatentLoom is given diffusers' levels explicitly.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from core.diffusion import vae_ops
from core.diffusion.families import ModelFamily, PredictionType
from core.diffusion.samplers import NoiseLevels, StepNoise
from core.diffusion.sampling import (
    SamplerSettings,
    denoise_window,
    sample,
    schedule_sigmas,
    seeded_noise,
)
from tests.sampling.harness import (
    VP_SCHEDULERS,
    diffusers_pipeline,
    model_of,
    psnr,
    random_conditioning,
    reseed_steps,
    tiny,
    vae_of,
)

SEED = 1234
CFG = 5.0
LATENT = (1, 4, 16, 16)  # the tiny VAE has f = 2: 32×32 pixels
PIXELS = 32
MIN_PSNR = 40.0
LEVELS = NoiseLevels.from_config({})


def _channels_first(image: torch.Tensor) -> torch.Tensor:
    return image.permute(0, 3, 1, 2)


def _sigma(t: int) -> float:
    return float(LEVELS.sigmas[t])


def _table(*timesteps: int, last: float = 0.0) -> torch.Tensor:
    """Levels at whole training timesteps, then ``last``."""
    return torch.tensor([*(_sigma(t) for t in timesteps), last])


def _start_scale(first: float) -> float:
    """LatentLoom's starting scale of the noise at level ``first`` (see ``sample``)."""
    full = first >= LEVELS.sigma_max * (1 - 1e-5)
    return math.sqrt(1 + first * first) if full else first


def _txt2img(
    sampler: str,
    schedule: str,
    steps: int,
    *,
    family: ModelFamily = ModelFamily.SD1,
    prediction: PredictionType = PredictionType.EPSILON,
    sigmas: torch.Tensor | None = None,
    reference: str | None = None,
    reference_schedule: str | None = None,
    reference_options: dict[str, Any] | None = None,
    sampler_options: dict[str, Any] | None = None,
    calls_per_step: int = 1,
    timesteps: list[int] | None = None,
) -> float:
    """PSNR of LatentLoom's picture against diffusers' for one sampler and schedule."""
    pipeline = tiny(family, prediction=prediction)
    model, vae = model_of(pipeline), vae_of(pipeline)
    positive, negative = random_conditioning(pipeline, 1), random_conditioning(pipeline, 2)
    settings = SamplerSettings(sampler, schedule, steps, CFG, SEED)
    latent = sample(
        model,
        positive,
        negative,
        torch.zeros(LATENT),
        settings,
        sigmas=sigmas,
        sampler_options=sampler_options,
    )
    ours = _channels_first(vae_ops.decode(vae, latent))

    pipe = diffusers_pipeline(
        "txt2img",
        pipeline,
        reference or sampler,
        reference_schedule or schedule,
        **(reference_options or {}),
    )
    reseed_steps(pipe.scheduler, SEED, calls_per_step=calls_per_step)
    first = (
        float(sigmas[0])
        if sigmas is not None
        else float(schedule_sigmas(sampler, schedule, steps)[0])
    )
    # diffusers multiplies the latents by its init_noise_sigma (σ_max, or 1 in VP space).
    twin = type(pipe.scheduler).from_config(pipe.scheduler.config)
    if timesteps:
        twin.set_timesteps(timesteps=timesteps)
    else:
        twin.set_timesteps(steps)
    init = float(twin.init_noise_sigma)
    if type(pipe.scheduler).__name__ in VP_SCHEDULERS:
        init *= math.sqrt(1 + first * first)
    entry_pos, entry_neg = positive[0], negative[0]
    kwargs: dict[str, Any] = {"height": PIXELS, "width": PIXELS}
    if family is ModelFamily.SDXL:
        # SDXL's size ids are in pixels of f = 8 latents (LatentLoom's convention).
        kwargs = {
            "pooled_prompt_embeds": entry_pos.pooled,
            "negative_pooled_prompt_embeds": entry_neg.pooled,
            "height": LATENT[2] * 8,
            "width": LATENT[3] * 8,
        }
    if timesteps:
        kwargs["timesteps"] = timesteps
    else:
        kwargs["num_inference_steps"] = steps
    reference_image = pipe(
        prompt_embeds=entry_pos.embeds,
        negative_prompt_embeds=entry_neg.embeds,
        latents=seeded_noise(SEED, LATENT) * (_start_scale(first) / init),
        guidance_scale=CFG,
        generator=torch.Generator().manual_seed(0),
        output_type="pt",
        **kwargs,
    ).images
    return psnr(ours, reference_image)


# Samplers whose diffusers scheduler walks ComfyUI's own schedule: "normal" with 4 steps is
# timesteps 999, 666, 333, 0 in both.
SAME_SCHEDULE = ["euler", "euler_ancestral", "heun", "lms", "ddpm", "dpmpp_sde"]


@pytest.mark.parametrize("sampler", SAME_SCHEDULE)
def test_sd1_samplers_match_diffusers_on_the_normal_schedule(sampler: str) -> None:
    options = {"noise_sampler_seed": SEED} if sampler == "dpmpp_sde" else None
    assert _txt2img(sampler, "normal", 4, reference_options=options) >= MIN_PSNR


def test_euler_on_karras_matches_diffusers_euler_with_karras_sigmas() -> None:
    """The default workflow's sampler: Euler on Karras's schedule, 20 steps."""
    assert _txt2img("euler", "karras", 20) >= 60.0


@pytest.mark.parametrize(("sampler", "schedule"), [("dpmpp_2m", "karras"), ("heun", "exponential")])
def test_sd1_other_schedules_match_diffusers(sampler: str, schedule: str) -> None:
    assert _txt2img(sampler, schedule, 4) >= MIN_PSNR


@pytest.mark.parametrize("sampler", ["dpm_2", "dpm_2_ancestral"])
def test_dpm_2_on_diffusers_levels_matches_diffusers(sampler: str) -> None:
    """KSampler drops the second-to-last level for DPM-2 (ComfyUI); on diffusers' levels the
    steps are diffusers' (its second-order calls draw the ancestral noise)."""
    sigmas = _table(999, 666, 333, 0)
    assert _txt2img(sampler, "normal", 4, sigmas=sigmas, calls_per_step=2) >= MIN_PSNR


@pytest.mark.parametrize(
    ("sampler", "options", "last"),
    [
        ("dpmpp_2m", {}, 0.0),
        ("uni_pc_bh2", {}, 0.0),
        ("uni_pc", {}, _sigma(0)),  # diffusers' bh1 stops at σ_min (it divides by 0 at σ = 0)
        ("deis", {}, _sigma(0)),  # diffusers' DEIS stops at σ_min
    ],
)
def test_multistep_solvers_match_diffusers(sampler: str, options: dict, last: float) -> None:
    """diffusers' multistep solvers space N+1 timesteps and drop the last: with 3 steps that is
    999, 666, 333 (ComfyUI's sgm_uniform)."""
    sigmas = _table(999, 666, 333, last=last)
    assert _txt2img(sampler, "normal", 3, sigmas=sigmas, reference_options=options) >= MIN_PSNR


def test_dpmpp_2m_sde_matches_diffusers_with_the_same_step_noise() -> None:
    sigmas = _table(999, 666, 333)
    options = {"noise_sampler": StepNoise(SEED, sigmas, LATENT)}
    assert _txt2img("dpmpp_2m_sde", "normal", 3, sigmas=sigmas, sampler_options=options) >= MIN_PSNR


def test_dpmpp_3m_sde_without_noise_matches_diffusers_third_order_dpm_solver() -> None:
    sigmas = _table(999, 799, 599, 399, 199)
    assert (
        _txt2img(
            "dpmpp_3m_sde",
            "normal",
            5,
            sigmas=sigmas,
            sampler_options={"eta": 0.0},
            reference="dpmpp_2m",
            reference_options={"solver_order": 3, "lower_order_final": False},
            timesteps=[999, 799, 599, 399, 199],
        )
        >= MIN_PSNR
    )


def test_ddim_is_euler_in_sigma_space() -> None:
    """DDIM (η = 0) on Stable Diffusion's spacing (timesteps 751, 501, 251, 1, then ᾱ₀)."""
    sigmas = _table(751, 501, 251, 1, last=_sigma(0))
    assert _txt2img("ddim", "ddim_uniform", 4, sigmas=sigmas) >= MIN_PSNR


def test_lcm_matches_diffusers_lcm_scheduler() -> None:
    """LCMScheduler's boundary scalings are 1 and 0 to 10⁻⁶ at timesteps ≥ 100."""
    timesteps = [999, 666, 333, 100]
    sigmas = _table(*timesteps)
    assert _txt2img("lcm", "normal", 4, sigmas=sigmas, timesteps=timesteps) >= MIN_PSNR


@pytest.mark.parametrize("sampler", ["ddim", "euler", "euler_ancestral", "dpmpp_2m"])
def test_sd2_v_prediction_matches_diffusers(sampler: str) -> None:
    kwargs: dict[str, Any] = {"prediction": PredictionType.V_PREDICTION, "family": ModelFamily.SD2}
    if sampler == "ddim":
        kwargs["sigmas"] = _table(751, 501, 251, 1, last=_sigma(0))
        schedule = "ddim_uniform"
    elif sampler == "dpmpp_2m":
        kwargs["sigmas"] = _table(999, 666, 333)
        schedule = "normal"
    else:
        schedule = "normal"
    steps = len(kwargs["sigmas"]) - 1 if "sigmas" in kwargs else 4
    assert _txt2img(sampler, schedule, steps, **kwargs) >= MIN_PSNR


@pytest.mark.parametrize("sampler", ["euler", "dpmpp_2m_sde"])
def test_sdxl_text_to_image_matches_diffusers(sampler: str) -> None:
    if sampler == "euler":
        assert _txt2img(sampler, "karras", 4, family=ModelFamily.SDXL) >= MIN_PSNR
        return
    sigmas = _table(999, 666, 333)
    noise = StepNoise(SEED, sigmas, LATENT)
    psnr_value = _txt2img(
        sampler,
        "normal",
        3,
        family=ModelFamily.SDXL,
        sigmas=sigmas,
        sampler_options={"noise_sampler": noise},
    )
    assert psnr_value >= MIN_PSNR


def _start_image() -> torch.Tensor:
    return torch.linspace(0, 1, PIXELS * PIXELS * 3).reshape(1, PIXELS, PIXELS, 3)


@pytest.mark.parametrize("sampler", ["euler", "euler_ancestral", "heun"])
def test_sd1_image_to_image_matches_diffusers(sampler: str) -> None:
    """Denoise 0.5 of 8 steps: the last 4 steps of a 8-step schedule (diffusers' strength)."""
    pipeline = tiny()
    model, vae = model_of(pipeline), vae_of(pipeline)
    positive, negative = random_conditioning(pipeline, 1), random_conditioning(pipeline, 2)
    start_latent = vae_ops.encode(vae, _start_image())
    total, start = denoise_window(4, 0.5)
    settings = SamplerSettings(sampler, "normal", total, CFG, SEED, start_step=start)
    ours = _channels_first(
        vae_ops.decode(vae, sample(model, positive, negative, start_latent, settings))
    )
    pipe = diffusers_pipeline("img2img", pipeline, sampler, "normal")
    reseed_steps(pipe.scheduler, SEED, start, calls_per_step=1)
    reference = pipe(
        prompt_embeds=positive[0].embeds,
        negative_prompt_embeds=negative[0].embeds,
        image=start_latent,  # latents are not encoded again
        strength=start / total,
        num_inference_steps=total,
        guidance_scale=CFG,
        generator=torch.Generator().manual_seed(SEED),  # draws the same initial noise
        output_type="pt",
    ).images
    assert psnr(ours, reference) >= MIN_PSNR
