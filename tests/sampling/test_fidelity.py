"""LatentLoom's graph pieces reproduce diffusers' pipelines on the same weights and noise.

Text encoding is not compared (random embeddings stand in for prompts); initial noise is given
to the pipelines as ``latents`` (or drawn by them from a generator seeded alike), and their
step noise is re-seeded the way LatentLoom seeds it (``harness.reseed_steps``).
"""

from __future__ import annotations

import pytest
import torch

from core.diffusion import vae_ops
from core.diffusion.families import ModelFamily, PredictionType
from core.diffusion.sampling import SamplerSettings, denoise_window, sample, seeded_noise
from core.diffusion.schedulers import SAMPLER_NAMES
from tests.sampling.harness import (
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


def _channels_first(image: torch.Tensor) -> torch.Tensor:
    return image.permute(0, 3, 1, 2)


def _embeds(conditioning):
    entry = conditioning[0]
    return entry.embeds, entry.pooled


def _txt2img(family, prediction, sampler, schedule, steps=4):
    pipeline = tiny(family, prediction=prediction)
    model, vae = model_of(pipeline), vae_of(pipeline)
    positive, negative = random_conditioning(pipeline, 1), random_conditioning(pipeline, 2)
    settings = SamplerSettings(sampler, schedule, steps, CFG, SEED)
    latent = sample(model, positive, negative, torch.zeros(LATENT), settings)
    ours = _channels_first(vae_ops.decode(vae, latent))

    pipe = reseed_steps_of(diffusers_pipeline("txt2img", pipeline, sampler, schedule), SEED)
    (pos, pos_pooled), (neg, neg_pooled) = _embeds(positive), _embeds(negative)
    kwargs = {}
    if family is ModelFamily.SDXL:
        # SDXL's size ids are in pixels of f = 8 latents (LatentLoom's convention).
        kwargs = {
            "pooled_prompt_embeds": pos_pooled,
            "negative_pooled_prompt_embeds": neg_pooled,
            "height": LATENT[2] * 8,
            "width": LATENT[3] * 8,
        }
    else:
        kwargs = {"height": PIXELS, "width": PIXELS}
    reference = pipe(
        prompt_embeds=pos,
        negative_prompt_embeds=neg,
        latents=seeded_noise(SEED, LATENT),
        num_inference_steps=steps,
        guidance_scale=CFG,
        generator=torch.Generator().manual_seed(0),
        output_type="pt",
        **kwargs,
    ).images
    return psnr(ours, reference)


def reseed_steps_of(pipe, seed, first=0):
    reseed_steps(pipe.scheduler, seed, first)
    return pipe


@pytest.mark.parametrize("sampler", SAMPLER_NAMES)
def test_sd1_text_to_image_matches_diffusers(sampler: str) -> None:
    assert _txt2img(ModelFamily.SD1, PredictionType.EPSILON, sampler, "normal") >= MIN_PSNR


@pytest.mark.parametrize(
    ("sampler", "schedule"),
    [
        ("euler", "karras"),
        ("dpmpp_2m", "karras"),
        ("heun", "exponential"),
        ("dpmpp_2m_sde", "sgm_uniform"),
        ("ddim", "ddim_uniform"),
    ],
)
def test_sd1_schedules_match_diffusers(sampler: str, schedule: str) -> None:
    assert _txt2img(ModelFamily.SD1, PredictionType.EPSILON, sampler, schedule) >= MIN_PSNR


@pytest.mark.parametrize("sampler", ["ddim", "euler", "euler_ancestral", "dpmpp_2m", "uni_pc"])
def test_sd2_v_prediction_matches_diffusers(sampler: str) -> None:
    assert _txt2img(ModelFamily.SD2, PredictionType.V_PREDICTION, sampler, "normal") >= MIN_PSNR


@pytest.mark.parametrize("sampler", ["euler", "dpmpp_2m_sde", "ddim"])
def test_sdxl_text_to_image_matches_diffusers(sampler: str) -> None:
    assert (
        _txt2img(
            ModelFamily.SDXL,
            PredictionType.EPSILON,
            sampler,
            "karras" if sampler == "euler" else "normal",
        )
        >= MIN_PSNR
    )


def _start_image() -> torch.Tensor:
    return torch.linspace(0, 1, PIXELS * PIXELS * 3).reshape(1, PIXELS, PIXELS, 3)


@pytest.mark.parametrize(
    "sampler", ["ddim", "euler", "euler_ancestral", "heun", "dpm_2", "dpmpp_2m"]
)
def test_sd1_image_to_image_matches_diffusers(sampler: str) -> None:
    pipeline = tiny()
    model, vae = model_of(pipeline), vae_of(pipeline)
    positive, negative = random_conditioning(pipeline, 1), random_conditioning(pipeline, 2)
    image = _start_image()
    start_latent = vae_ops.encode(vae, image)
    total, start = denoise_window(3, 0.5)  # 3 of 6 steps: diffusers' strength 0.5
    settings = SamplerSettings(sampler, "normal", total, CFG, SEED, start_step=start)
    ours = _channels_first(
        vae_ops.decode(vae, sample(model, positive, negative, start_latent, settings))
    )

    pipe = reseed_steps_of(
        diffusers_pipeline("img2img", pipeline, sampler, "normal"),
        SEED,
        start * pipe_order(sampler),
    )
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


def encode_with_posterior_mean(pipe, scaling_factor: float) -> None:
    """LatentLoom encodes with the posterior's mean (deterministic, so cacheable); diffusers'
    inpainting pipeline samples the posterior. Make the pipeline use the mean too."""

    def encode(image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return pipe.vae.encode(image).latent_dist.mode() * scaling_factor

    pipe._encode_vae_image = encode


def pipe_order(sampler: str) -> int:
    return 2 if sampler in ("heun", "dpm_2", "dpm_2_ancestral") else 1


def _block_mask() -> torch.Tensor:
    """A mask aligned with the latent grid, so nearest and bilinear resizing agree."""
    mask = torch.zeros(1, PIXELS, PIXELS)
    mask[:, 8:24, 4:20] = 1.0
    return mask


@pytest.mark.parametrize(
    ("sampler", "denoise"),
    [("euler", 1.0), ("ddim", 1.0), ("euler_ancestral", 1.0), ("dpmpp_2m", 0.5)],
)
def test_sd1_inpaint_with_noise_mask_matches_diffusers(sampler: str, denoise: float) -> None:
    pipeline = tiny()
    model, vae = model_of(pipeline), vae_of(pipeline)
    positive, negative = random_conditioning(pipeline, 1), random_conditioning(pipeline, 2)
    image, mask = _start_image(), _block_mask()
    latent = vae_ops.encode(vae, image)
    total, start = denoise_window(4, denoise)
    settings = SamplerSettings(sampler, "normal", total, CFG, SEED, start_step=start)
    result = sample(model, positive, negative, latent, settings, noise_mask=mask)
    ours = _channels_first(vae_ops.decode(vae, result))

    pipe = reseed_steps_of(diffusers_pipeline("inpaint", pipeline, sampler, "normal"), SEED, start)
    encode_with_posterior_mean(pipe, vae.scaling_factor)
    noise = {"latents": seeded_noise(SEED, LATENT)} if start == 0 else {}
    reference = pipe(
        prompt_embeds=positive[0].embeds,
        negative_prompt_embeds=negative[0].embeds,
        image=image.permute(0, 3, 1, 2),
        mask_image=mask[:, None],
        strength=1.0 if start == 0 else 4 / total,
        num_inference_steps=total,
        guidance_scale=CFG,
        height=PIXELS,
        width=PIXELS,
        generator=torch.Generator().manual_seed(SEED),
        output_type="pt",
        **noise,
    ).images
    assert psnr(ours, reference) >= MIN_PSNR
    # Outside the (latent-grown) mask the input survives exactly.
    keep = torch.ones(1, 4, 16, 16, dtype=torch.bool)
    keep[:, :, 4:12, 2:10] = False
    assert torch.allclose(result[keep], latent[keep], atol=1e-5)


@pytest.mark.parametrize("sampler", ["euler", "ddim"])
def test_sd1_inpainting_model_matches_diffusers(sampler: str) -> None:
    """9-channel UNets get [mask, masked-image latent] as extra channels, as in diffusers.

    LatentLoom also puts the unmasked area back every step for these models (ComfyUI's
    behaviour; diffusers does it only for 4-channel UNets), so the reference pipeline does the
    same through its step-end callback.
    """
    pipeline = tiny(inpainting=True)
    model, vae = model_of(pipeline), vae_of(pipeline)
    positive, negative = random_conditioning(pipeline, 1), random_conditioning(pipeline, 2)
    image, mask = _start_image(), _block_mask()
    masked_latent, grown = vae_ops.encode_for_inpaint(vae, image, mask, grow_by=0)
    settings = SamplerSettings(sampler, "normal", 4, CFG, SEED)
    result = sample(model, positive, negative, masked_latent, settings, noise_mask=grown)
    ours = _channels_first(vae_ops.decode(vae, result))

    pipe = diffusers_pipeline("inpaint", pipeline, sampler, "normal")
    encode_with_posterior_mean(pipe, vae.scaling_factor)
    noise = seeded_noise(SEED, LATENT)
    latent_mask = torch.nn.functional.interpolate(mask[:, None], size=LATENT[2:])

    def put_back(pipe, index, timestep, tensors):
        timesteps = pipe.scheduler.timesteps
        known = masked_latent
        if index + 1 < len(timesteps):
            known = pipe.scheduler.add_noise(masked_latent, noise, timesteps[index + 1 : index + 2])
        return {"latents": (1 - latent_mask) * known + latent_mask * tensors["latents"]}

    reference = pipe(
        prompt_embeds=positive[0].embeds,
        negative_prompt_embeds=negative[0].embeds,
        image=image.permute(0, 3, 1, 2),
        mask_image=mask[:, None],
        masked_image_latents=masked_latent,
        latents=noise,
        num_inference_steps=4,
        guidance_scale=CFG,
        height=PIXELS,
        width=PIXELS,
        generator=torch.Generator().manual_seed(0),
        output_type="pt",
        callback_on_step_end=put_back,
    ).images
    assert psnr(ours, reference) >= MIN_PSNR
