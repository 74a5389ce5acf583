"""LatentLoom's σ-space samplers reproduce diffusers' schedulers on the same weights and noise.

The final latents are compared (PSNR with the reference's range as peak), from a tiny UNet
whose predictions have unit scale (``harness.active``), where Euler and Heun differ at about
36 dB. Text encoding is not compared (random embeddings stand in for prompts). Both sides start from
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
    active,
    diffusers_pipeline,
    latent_psnr,
    model_of,
    random_conditioning,
    reseed_steps,
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
    """PSNR of LatentLoom's latent against diffusers' for one sampler and schedule."""
    pipeline = active(family, prediction=prediction)
    model = model_of(pipeline)
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
    last = float(sigmas[-1]) if sigmas is not None else 0.0
    vp = type(pipe.scheduler).__name__ in VP_SCHEDULERS
    if vp:
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
    reference = pipe(
        prompt_embeds=entry_pos.embeds,
        negative_prompt_embeds=entry_neg.embeds,
        latents=seeded_noise(SEED, LATENT) * (_start_scale(first) / init),
        guidance_scale=CFG,
        generator=torch.Generator().manual_seed(0),
        output_type="latent",
        **kwargs,
    ).images
    if vp:  # back to σ-space from a variance-preserving sample at the last level
        reference = reference * math.sqrt(1 + last * last)
    return latent_psnr(latent, reference)


def test_the_comparison_tells_samplers_apart() -> None:
    """Euler and Heun on the same noise are far below the 40 dB the references must reach."""
    pipeline = active()
    model = model_of(pipeline)
    positive, negative = random_conditioning(pipeline, 1), random_conditioning(pipeline, 2)
    euler, heun = (
        sample(model, positive, negative, torch.zeros(LATENT), SamplerSettings(s, "normal", 4))
        for s in ("euler", "heun")
    )
    assert latent_psnr(heun, euler) < 38.0


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
        # diffusers' bh1 stops at σ_min (it divides by 0 at σ = 0) and drops the order there.
        ("uni_pc", {"lower_order_with_noise_left": True}, _sigma(0)),
        ("deis", {}, _sigma(0)),  # diffusers' DEIS stops at σ_min
    ],
)
def test_multistep_solvers_match_diffusers(sampler: str, options: dict, last: float) -> None:
    """diffusers' multistep solvers space N+1 timesteps and drop the last: with 3 steps that is
    999, 666, 333 (ComfyUI's sgm_uniform)."""
    sigmas = _table(999, 666, 333, last=last)
    assert _txt2img(sampler, "normal", 3, sigmas=sigmas, sampler_options=options) >= MIN_PSNR


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
    pipeline = active()
    model, vae = model_of(pipeline), vae_of(pipeline)
    positive, negative = random_conditioning(pipeline, 1), random_conditioning(pipeline, 2)
    start_latent = vae_ops.encode(vae, _start_image())
    total, start = denoise_window(4, 0.5)
    settings = SamplerSettings(sampler, "normal", total, CFG, SEED, start_step=start)
    ours = sample(model, positive, negative, start_latent, settings)
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
        output_type="latent",
    ).images
    assert latent_psnr(ours, reference) >= MIN_PSNR


def encode_with_posterior_mean(pipe, scaling_factor: float) -> None:
    """LatentLoom encodes with the posterior's mean (deterministic, so cacheable); diffusers'
    inpainting pipeline samples the posterior. Make the pipeline use the mean too."""

    def encode(image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return pipe.vae.encode(image).latent_dist.mode() * scaling_factor

    pipe._encode_vae_image = encode


def _block_mask() -> torch.Tensor:
    """A mask aligned with the latent grid, so nearest and bilinear resizing agree."""
    mask = torch.zeros(1, PIXELS, PIXELS)
    mask[:, 8:24, 4:20] = 1.0
    return mask


def _keep_area() -> torch.Tensor:
    keep = torch.ones(1, 4, 16, 16, dtype=torch.bool)
    keep[:, :, 4:12, 2:10] = False
    return keep


def _inpaint_reference(pipeline, sampler: str, latent, mask, noise, positive, negative):
    """diffusers' text-to-image loop with the unmasked area put back at every model call, as
    LatentLoom does: the start is blended, and after each step the known area is set to the
    input at the next level (the next call would see exactly that)."""
    pipe = diffusers_pipeline("txt2img", pipeline, sampler, "normal")
    reseed_steps(pipe.scheduler, SEED)
    latent_mask = torch.nn.functional.interpolate(mask[:, None], size=LATENT[2:])
    first = float(schedule_sigmas(sampler, "normal", 4)[0])
    start = latent + noise * _start_scale(first)
    start = latent_mask * start + (1 - latent_mask) * (latent + first * noise)
    twin = type(pipe.scheduler).from_config(pipe.scheduler.config)
    twin.set_timesteps(4)

    def put_back(pipe, index, timestep, tensors):
        sigmas = pipe.scheduler.sigmas
        level = float(sigmas[min(pipe.scheduler.step_index, len(sigmas) - 1)])
        known = latent + level * noise
        return {"latents": (1 - latent_mask) * known + latent_mask * tensors["latents"]}

    if pipeline.inpainting:
        pipe = diffusers_pipeline("inpaint", pipeline, sampler, "normal")
        reseed_steps(pipe.scheduler, SEED)
        encode_with_posterior_mean(pipe, 1.0)
        extra = {
            "image": torch.zeros(1, 3, PIXELS, PIXELS),
            "mask_image": mask[:, None],
            "masked_image_latents": latent,
        }
    else:
        extra = {}
    return pipe(
        prompt_embeds=positive[0].embeds,
        negative_prompt_embeds=negative[0].embeds,
        latents=start / float(twin.init_noise_sigma),
        num_inference_steps=4,
        guidance_scale=CFG,
        height=PIXELS,
        width=PIXELS,
        generator=torch.Generator().manual_seed(0),
        output_type="latent",
        callback_on_step_end=put_back,
        **extra,
    ).images


@pytest.mark.parametrize(
    ("sampler", "inpainting"),
    [("euler", False), ("euler_ancestral", False), ("heun", False), ("euler", True)],
)
def test_sd1_inpainting_matches_diffusers_with_the_known_area_put_back(
    sampler: str, inpainting: bool
) -> None:
    """A noise mask on a 4-channel UNet, or a 9-channel inpainting UNet that also gets
    [mask, masked-image latent] as extra channels (diffusers' layout)."""
    pipeline = active(inpainting=inpainting)
    model, vae = model_of(pipeline), vae_of(pipeline)
    positive, negative = random_conditioning(pipeline, 1), random_conditioning(pipeline, 2)
    image, mask = _start_image(), _block_mask()
    if inpainting:
        latent, grown = vae_ops.encode_for_inpaint(vae, image, mask, grow_by=0)
    else:
        latent, grown = vae_ops.encode(vae, image), mask
    settings = SamplerSettings(sampler, "normal", 4, CFG, SEED)
    ours = sample(model, positive, negative, latent, settings, noise_mask=grown)
    noise = seeded_noise(SEED, LATENT)
    reference = _inpaint_reference(pipeline, sampler, latent, mask, noise, positive, negative)
    assert latent_psnr(ours, reference) >= MIN_PSNR
    keep = _keep_area()  # outside the (latent-grown) mask the input survives exactly
    assert torch.allclose(ours[keep], latent[keep], atol=1e-5)


@pytest.mark.parametrize("sampler", ["euler", "euler_ancestral"])
def test_sd1_inpaint_at_half_denoise_matches_diffusers_inpainting(sampler: str) -> None:
    """Below full denoise diffusers' own inpainting pipeline does the same: its first call
    already sees the input noised to the first level."""
    pipeline = active()
    model, vae = model_of(pipeline), vae_of(pipeline)
    positive, negative = random_conditioning(pipeline, 1), random_conditioning(pipeline, 2)
    image, mask = _start_image(), _block_mask()
    latent = vae_ops.encode(vae, image)
    total, start = denoise_window(4, 0.5)
    settings = SamplerSettings(sampler, "normal", total, CFG, SEED, start_step=start)
    result = sample(model, positive, negative, latent, settings, noise_mask=mask)
    pipe = diffusers_pipeline("inpaint", pipeline, sampler, "normal")
    reseed_steps(pipe.scheduler, SEED, start)
    encode_with_posterior_mean(pipe, vae.scaling_factor)
    reference = pipe(
        prompt_embeds=positive[0].embeds,
        negative_prompt_embeds=negative[0].embeds,
        image=image.permute(0, 3, 1, 2),
        mask_image=mask[:, None],
        strength=4 / total,
        num_inference_steps=total,
        guidance_scale=CFG,
        height=PIXELS,
        width=PIXELS,
        generator=torch.Generator().manual_seed(SEED),
        output_type="latent",
    ).images
    assert latent_psnr(result, reference) >= MIN_PSNR


@pytest.mark.parametrize("sampler", SAME_SCHEDULE[:3])
def test_every_step_of_an_inpainting_run_keeps_the_known_area_at_its_level(sampler: str) -> None:
    """Each reported latent holds the input plus the run's noise at that step's level outside
    the mask, and the input itself at the end."""
    pipeline = active()
    model = model_of(pipeline)
    positive, negative = random_conditioning(pipeline, 1), random_conditioning(pipeline, 2)
    latent = torch.randn(LATENT, generator=torch.Generator().manual_seed(3))
    settings = SamplerSettings(sampler, "karras", 4, CFG, SEED)
    steps = []
    mask = _block_mask()
    sample(model, positive, negative, latent, settings, noise_mask=mask, callback=steps.append)
    sigmas = schedule_sigmas(sampler, "karras", 4)
    noise = seeded_noise(SEED, LATENT)
    keep = _keep_area()
    for step in steps:
        expected = latent + float(sigmas[step.step]) * noise
        torch.testing.assert_close(step.latent[keep], expected[keep], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(steps[-1].latent[keep], latent[keep])
