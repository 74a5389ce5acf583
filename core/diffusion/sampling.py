"""The sampling loop: start/end steps, denoise strength, inpainting, seeded noise and the
per-step callback, around any sampler of ``core.diffusion.samplers`` on any schedule, with the
guided model call of ``core.diffusion.guidance`` (classifier-free guidance, conditioning areas
and masks, per-call extras).

Latents are in σ-space (k-diffusion's x = x₀ + σ·ε, the space ComfyUI keeps them in) before,
during and after sampling, so a half-denoised latent can continue with any sampler. The model
sees x/√(1+σ²) at the timestep whose training σ is σ (log σ interpolated over the model's own
table), which is how a DDPM-trained UNet reads a VE latent (Karras et al. 2022, Table 1).

Noise conventions, chosen so results do not depend on the device:

- the initial noise is drawn on the CPU from ``seed`` for the whole batch shape;
- ancestral samplers draw the noise of the step starting at level k of the schedule from
  ``step_seed(seed, k)``, and SDE samplers follow one Brownian path seeded by ``seed`` over
  the whole schedule, so a run split across nodes draws the noise of the whole run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from core.diffusion import samplers
from core.diffusion.conditioning import Conditioning

# The guided model call lives in core.diffusion.guidance; its public names stay importable
# from here, where samplers' callers have always found them.
from core.diffusion.guidance import (
    LATENT_FACTOR,
    GuidedDenoiser,
    UnetCall,
    UnetExtra,
    merge_unet_kwargs,
)
from core.diffusion.model_sampling import denoised as model_denoised
from core.diffusion.model_sampling import input_norm, predicted_x0
from core.diffusion.models import DiffusionModel
from core.diffusion.samplers import NoiseLevels, StepInfo, UnknownSamplerError, step_seed

__all__ = [
    "LATENT_FACTOR",
    "SamplerSettings",
    "SamplerStep",
    "UnetCall",
    "UnetExtra",
    "UnknownSamplerError",
    "denoise_window",
    "merge_unet_kwargs",
    "predicted_x0",
    "sample",
    "schedule_sigmas",
    "seeded_noise",
    "step_seed",
]


@dataclass(frozen=True)
class SamplerSettings:
    """What a KSampler node's widgets say, in one value.

    The schedule has ``steps`` steps; the run covers steps ``start_step`` to ``end_step``
    (None: to the end). ``add_noise`` noises the input latent to the level of ``start_step``
    (pure noise when that is the model's highest level); without it the input is taken to be
    at that level already. ``leftover_noise`` returns the latent at the level of
    ``end_step``; otherwise a run that stops early makes its last step go to σ = 0.
    """

    sampler: str = "euler"
    schedule: str = "normal"
    steps: int = 20
    cfg: float = 7.0
    seed: int = 0
    start_step: int = 0
    end_step: int | None = None
    add_noise: bool = True
    leftover_noise: bool = False


def denoise_window(steps: int, denoise: float) -> tuple[int, int] | None:
    """KSampler's ``denoise`` as (schedule length, first step): the last ``steps`` steps of a
    ``steps/denoise``-step schedule, or None when ``denoise`` is 0 (nothing to do).

    This is ComfyUI's rule; it equals diffusers' img2img with ``num_inference_steps`` = the
    schedule length and ``strength = steps/length``.
    """
    if denoise <= 0:
        return None
    total = steps if denoise >= 0.9999 else int(steps / denoise)
    return total, total - steps


@dataclass(frozen=True)
class SamplerStep:
    """What each step reports: steps done of ``total``, the latent x_t (sigma space) and the
    denoised estimate x̂₀ of that step's model evaluation, both on the sampler's device."""

    step: int
    total: int
    latent: torch.Tensor
    denoised: torch.Tensor


StepCallback = Callable[[SamplerStep], None]


def seeded_noise(seed: int, shape: Sequence[int]) -> torch.Tensor:
    """Standard normal noise of ``shape`` drawn on the CPU in float32 from ``seed``."""
    generator = torch.Generator("cpu").manual_seed(seed % 2**64)
    return torch.randn(tuple(shape), generator=generator, dtype=torch.float32)


def schedule_sigmas(
    sampler: str, schedule: str, steps: int, model_config: Mapping[str, Any] | None = None
) -> torch.Tensor:
    """The ``steps + 1`` levels KSampler walks for ``sampler`` on ``schedule``: the schedule
    itself, or for the samplers that ask for it (``SamplerInfo.discard_penultimate_sigma``)
    one more level with the second-to-last dropped, as ComfyUI does."""
    info = samplers.sampler_info(sampler)
    levels = NoiseLevels.from_config(model_config)
    if info.discard_penultimate_sigma:
        sigmas = samplers.make_sigmas(schedule, levels, steps + 1)
        return torch.cat([sigmas[:-2], sigmas[-1:]])
    return samplers.make_sigmas(schedule, levels, steps)


def _resize_mask(mask: torch.Tensor, batch: int, height: int, width: int) -> torch.Tensor:
    """A noise mask ([H, W], [B, H, W] or [B, 1, H, W], any size) as [batch, 1, h, w]."""
    mask = mask.float()
    if mask.ndim == 2:
        mask = mask[None, None]
    elif mask.ndim == 3:
        mask = mask[:, None]
    mask = F.interpolate(mask, size=(height, width), mode="bilinear").clamp(0, 1)
    if mask.shape[0] < batch:
        mask = mask.repeat(math.ceil(batch / mask.shape[0]), 1, 1, 1)
    return mask[:batch]


def _validated_sigmas(sigmas: torch.Tensor) -> torch.Tensor:
    """An explicit schedule as float32 on the CPU, or a clear error about what is wrong."""
    sigmas = torch.as_tensor(sigmas).detach().to("cpu", torch.float32).flatten()
    if sigmas.numel() < 2:
        raise ValueError(
            f"sigmas has {sigmas.numel()} level(s): a schedule needs at least 2 (start and end)"
        )
    if not bool(torch.isfinite(sigmas).all()) or bool((sigmas < 0).any()):
        raise ValueError("sigmas must be finite and not negative")
    if bool((sigmas[:-1] <= sigmas[1:]).any()) or bool((sigmas[:-1] == 0).any()):
        raise ValueError("sigmas must decrease step by step, with 0 only as the last level")
    return sigmas


def _noise_sampler(
    info: samplers.SamplerInfo,
    seed: int,
    schedule: torch.Tensor,
    shape: torch.Size,
    device: torch.device,
) -> samplers.noise.NoiseSampler | None:
    if info.noise == "none":
        return None
    positive = schedule[schedule > 0]
    if info.noise == "brownian" and positive.numel() > 1:
        low, high = float(positive.min()), float(positive.max())
        return samplers.BrownianNoise(seed, low, high, shape, device)
    return samplers.StepNoise(seed, schedule, shape, device)


def sample(
    model: DiffusionModel,
    positive: Conditioning,
    negative: Conditioning,
    latent: torch.Tensor,
    settings: SamplerSettings,
    *,
    noise_mask: torch.Tensor | None = None,
    noise: torch.Tensor | None = None,
    callback: StepCallback | None = None,
    check_cancel: Callable[[], None] | None = None,
    downscale: int = LATENT_FACTOR,
    sigmas: torch.Tensor | None = None,
    sampler_options: Mapping[str, Any] | None = None,
    notices: list[str] | None = None,
    guider: Any = None,
) -> torch.Tensor:
    """Denoise ``latent`` ([B, 4, h, w], scaled VAE latents) and return it on the CPU (float32).

    The sampler is ``settings.sampler`` on ``settings.schedule`` with ``settings.steps``
    steps, or on the explicit levels ``sigmas`` (then ``steps`` and ``schedule`` are not
    used; start and end steps index into ``sigmas``). ``sampler_options`` go to the sampler
    function (``eta``, ``s_noise``, ``noise_sampler``…). A ``guider``
    (``core.diffusion.custom_sampling.Guider``) replaces ``positive``, ``negative`` and
    ``settings.cfg`` with its chain of conditionings and scales.

    ``noise_mask`` (1 = repaint) limits denoising: before every model evaluation the unmasked
    area is put back at that evaluation's noise level, and the result keeps the input there
    (ComfyUI's way, which works for every sampler, sub-steps included). 9-channel inpainting
    UNets also get the mask and ``latent`` (the masked image's latent) as extra input
    channels. ``noise`` replaces the seeded initial noise. ``callback`` hears every finished
    step; ``check_cancel`` is called before each UNet evaluation and stops the run by raising.
    ``downscale`` (pixels per latent cell) places conditioning areas, which are given in
    pixels, and sizes SDXL's size conditioning. What the run wants the user told (a ControlNet
    hint resized to the picture…) is appended to ``notices``, each message once.
    """
    info = samplers.sampler_info(settings.sampler)
    if sigmas is None:
        if settings.steps < 1:
            raise ValueError(f"steps must be at least 1, got {settings.steps}")
        schedule = schedule_sigmas(
            settings.sampler, settings.schedule, settings.steps, model.scheduler_config
        )
    else:
        schedule = _validated_sigmas(sigmas)
    steps = len(schedule) - 1
    end_step = steps if settings.end_step is None else min(settings.end_step, steps)
    if settings.start_step >= end_step:
        return latent.detach().to("cpu", torch.float32).clone()
    run = schedule[settings.start_step : end_step + 1].clone()
    if end_step < steps and not settings.leftover_noise:
        run[-1] = 0.0  # stop early, but clean: the last step goes to σ = 0

    unet = model.unet
    device = next(unet.parameters()).device
    latent = latent.detach().to(device, torch.float32)
    batch, channels, height, width = latent.shape
    if noise is None:
        noise = seeded_noise(settings.seed, latent.shape)
    elif tuple(noise.shape) != tuple(latent.shape):
        raise ValueError(
            f"the noise has shape {tuple(noise.shape)} but the latent {tuple(latent.shape)}: "
            "make the noise with the latent's size and batch"
        )
    noise = noise.to(device, torch.float32)

    mask = None if noise_mask is None else _resize_mask(noise_mask, batch, height, width).to(device)
    concat = None
    if model.is_inpainting:
        # Channels 5–9 of an inpainting UNet: the mask, then the masked image's latent
        # (diffusers' StableDiffusionInpaintPipeline; Rombach et al.'s sd-v1-5-inpainting).
        inpaint_mask = mask if mask is not None else torch.ones_like(latent[:, :1])
        concat = torch.cat([inpaint_mask, latent], dim=1)
    elif int(unet.config.in_channels) not in (channels, 2 * channels):
        # 2 × channels: an instruction-editing UNet, whose picture comes with the
        # conditioning (InstructPixToPixConditioning).
        raise ValueError(
            f"the latent has {channels} channels but the model expects "
            f"{unet.config.in_channels}: use a latent made for this model's family"
        )
    denoiser = GuidedDenoiser(
        model,
        positive,
        negative,
        settings.cfg,
        latent.shape,
        concat,
        downscale,
        notices,
        seed=settings.seed,
        guider=guider,
    )
    levels = NoiseLevels.from_config(model.scheduler_config)

    def known(x: torch.Tensor, sigma: float) -> torch.Tensor:
        """``x`` with the unmasked area put back at noise level ``sigma``."""
        if mask is None:
            return x
        return mask * x + (1 - mask) * (latent + sigma * noise)

    def denoise(x: torch.Tensor, sigma: float) -> torch.Tensor:
        if check_cancel is not None:
            check_cancel()
        x = known(x, sigma)
        model_input = x / input_norm(sigma, model.prediction, model.scheduler_config)
        timestep = torch.tensor(levels.unet_timestep(sigma), device=device, dtype=torch.float32)
        output = denoiser(model_input, timestep, guided=model.guided_at(sigma), sigma=sigma)
        denoised = model_denoised(
            x, model_input, output, sigma, model.prediction, model.scheduler_config, levels
        )
        return denoised if mask is None else mask * denoised + (1 - mask) * latent

    first = float(run[0])
    if settings.add_noise:
        # From the model's highest level the latent's own variance counts too: x = x₀ + σε
        # has std √(1+σ²) for unit-variance x₀ (ComfyUI's "max denoise"; diffusers' DDIM).
        full = first >= levels.sigma_max * (1 - 1e-5)
        x = latent + noise * (math.sqrt(1.0 + first * first) if full else first)
    else:
        x = latent.clone()

    total = end_step - settings.start_step

    def on_step(step: StepInfo) -> None:
        if callback is not None:
            latent_now = known(step.x, float(run[step.i + 1]))
            callback(SamplerStep(step.i + 1, total, latent_now, step.denoised))

    options = dict(sampler_options or {})
    if "noise_sampler" not in options:
        options["noise_sampler"] = _noise_sampler(
            info, settings.seed, schedule, latent.shape, device
        )
    try:
        with torch.inference_mode():
            x = info.function(denoise, x, run, callback=on_step, **options)
            x = known(x, float(run[-1]))
    finally:
        denoiser.end_run()
    return x.to("cpu", torch.float32)
