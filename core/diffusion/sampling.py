"""The sampling loop: classifier-free guidance, conditioning areas and masks, start/end steps,
denoise strength, inpainting, seeded noise and the per-step callback.

The loop is the one diffusers' Stable Diffusion pipelines run (scale the input, predict, guide,
``scheduler.step``), so with the same scheduler, weights and noise it gives the same latents;
the scheduler maths is diffusers' own (see ``schedulers``).

Noise conventions, chosen so results do not depend on the device:

- the initial noise is drawn on the CPU from ``seed`` for the whole batch shape;
- the per-step noise of ancestral/SDE samplers is drawn from a CPU generator re-seeded at every
  scheduler call with ``step_seed(seed, i)`` (``i`` = the call's index in the full schedule), so
  step *i* gets the same noise whether the run was split across nodes or not.

Latents between nodes are in "sigma space" (k-diffusion's x = x₀ + σ·ε, the space ComfyUI
keeps them in); schedulers that work in the variance-preserving space (DDIM, DPM-Solver, UniPC)
are converted on the way in and out, so a half-denoised latent can continue with any sampler.
"""

from __future__ import annotations

from core.diffusion import offline  # noqa: F401  (must precede diffusers/transformers)

# isort: split
import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from core.diffusion.conditioning import Conditioning, ConditioningEntry, sdxl_time_ids
from core.diffusion.families import ModelFamily, PredictionType
from core.diffusion.models import DiffusionModel
from core.diffusion.schedulers import SamplerDef, make_scheduler

#: Pixels per latent cell along each axis for Stable Diffusion's VAE (f = 8, Rombach et al.
#: 2022, §3); used to place conditioning areas (given in pixels) and for SDXL's size ids.
LATENT_FACTOR = 8


@dataclass(frozen=True)
class SamplerSettings:
    """What a KSampler node's widgets say, in one value.

    The schedule has ``steps`` steps; the run covers steps ``start_step`` to ``end_step``
    (None: to the end). ``add_noise`` noises the input latent to the level of ``start_step``
    (pure noise when ``start_step`` is 0); without it the input is taken to be at that level
    already. ``leftover_noise`` returns the latent at the level of ``end_step``; otherwise a
    run that stops early finishes with a jump to σ = 0 (the first-order, Euler/DDIM step).
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


def step_seed(seed: int, index: int) -> int:
    """A well-mixed 63-bit seed for the noise of scheduler call ``index`` of a run seeded ``seed``.

    SeedSequence hashing keeps the streams of neighbouring seeds and steps unrelated (seed s,
    step 1 shares nothing with seed s+1, step 0).
    """
    state = np.random.SeedSequence([seed % 2**64, index]).generate_state(2, np.uint32)
    return (int(state[0]) << 31 | int(state[1]) >> 1) & (2**63 - 1)


def seeded_noise(seed: int, shape: Sequence[int]) -> torch.Tensor:
    """Standard normal noise of ``shape`` drawn on the CPU in float32 from ``seed``."""
    generator = torch.Generator("cpu").manual_seed(seed % 2**64)
    return torch.randn(tuple(shape), generator=generator, dtype=torch.float32)


def sigma_from_alpha_bar(alpha_bar: torch.Tensor | float) -> float:
    """σ = √((1 − ᾱ)/ᾱ): the noise level of a VP sample as a VE one (Karras et al. 2022, §2)."""
    alpha_bar = float(alpha_bar)
    return math.sqrt((1.0 - alpha_bar) / alpha_bar)


def input_sigma(scheduler: object, definition: SamplerDef, index: int, timestep: object) -> float:
    """σ of the sample the model is about to see at call ``index`` (after ``scale_model_input``)."""
    source = definition.sigma_source
    if source == "alphas_cumprod":
        return sigma_from_alpha_bar(scheduler.alphas_cumprod[int(timestep)])  # type: ignore[attr-defined]
    if source == "position":
        return float(scheduler.sigmas[index])  # type: ignore[attr-defined]
    step_index = scheduler.step_index  # type: ignore[attr-defined]
    if source == "kdpm2" and not scheduler.state_in_first_order:  # type: ignore[attr-defined]
        return float(scheduler.sigmas_interpol[step_index])  # type: ignore[attr-defined]
    return float(scheduler.sigmas[step_index])  # type: ignore[attr-defined]


def boundary_sigma(scheduler: object, definition: SamplerDef, index: int) -> float:
    """σ of a VP scheduler's sample before call ``index`` (after calls 0..index−1)."""
    timesteps = scheduler.timesteps  # type: ignore[attr-defined]
    if index >= len(timesteps):
        return 0.0
    if definition.sigma_source == "alphas_cumprod":
        return sigma_from_alpha_bar(scheduler.alphas_cumprod[int(timesteps[index])])  # type: ignore[attr-defined]
    return float(scheduler.sigmas[index])  # type: ignore[attr-defined]


def predicted_x0(
    model_input: torch.Tensor, output: torch.Tensor, sigma: float, prediction: PredictionType
) -> torch.Tensor:
    """x̂₀ from the (VP-scaled) model input x and the model output at noise level σ.

    With ᾱ = 1/(1+σ²): ε-prediction x̂₀ = (x − √(1−ᾱ)ε)/√ᾱ (Ho et al. 2020, eq. 15);
    v-prediction x̂₀ = √ᾱ·x − √(1−ᾱ)·v (Salimans & Ho 2022, §4).
    """
    scale = math.sqrt(1.0 + sigma * sigma)
    if prediction is PredictionType.V_PREDICTION:
        return (model_input - sigma * output) / scale
    return model_input * scale - sigma * output


# --- conditioning --------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Context:
    """One conditioning entry prepared for a latent of a given size."""

    embeds: torch.Tensor  # [B, T, D]
    pooled: torch.Tensor | None
    time_ids: torch.Tensor | None  # [B, 6] (SDXL)
    box: tuple[int, int, int, int]  # top, left, height, width in latent cells
    weight: torch.Tensor  # [B, 1, box_h, box_w]: strength × mask
    side: int  # 0 = negative (unconditional), 1 = positive


def _entry_box(
    entry: ConditioningEntry, height: int, width: int, downscale: int
) -> tuple[int, int, int, int]:
    area = entry.options.area
    if area is None:
        return 0, 0, height, width
    top = min(area.y // downscale, height - 1)
    left = min(area.x // downscale, width - 1)
    box_h = max(1, min(math.ceil(area.height / downscale), height - top))
    box_w = max(1, min(math.ceil(area.width / downscale), width - left))
    return top, left, box_h, box_w


def _mask_bounds(mask: torch.Tensor) -> tuple[int, int, int, int] | None:
    rows = torch.nonzero(mask.amax(dim=(0, 2)) > 0).flatten()
    cols = torch.nonzero(mask.amax(dim=(0, 1)) > 0).flatten()
    if rows.numel() == 0:
        return None
    top, bottom = int(rows[0]), int(rows[-1]) + 1
    left, right = int(cols[0]), int(cols[-1]) + 1
    return top, left, bottom - top, right - left


def _prepare_context(
    entry: ConditioningEntry,
    side: int,
    family: ModelFamily,
    batch: int,
    height: int,
    width: int,
    device: torch.device,
    dtype: torch.dtype,
    downscale: int,
) -> _Context | None:
    options = entry.options
    weight = torch.full((batch, 1, height, width), float(options.strength))
    box = _entry_box(entry, height, width, downscale)
    if options.mask is not None:
        mask = options.mask.float()
        mask = mask[None] if mask.ndim == 2 else mask
        mask = F.interpolate(mask[:, None], size=(height, width), mode="bilinear")
        mask = mask.expand(batch, 1, height, width) if mask.shape[0] == 1 else mask[:batch]
        weight = weight * mask * float(options.mask_strength)
        if options.mask_mode == "mask_bounds":
            bounds = _mask_bounds(mask[:, 0])
            if bounds is None:
                return None  # an empty mask: this context applies nowhere
            box = bounds
    top, left, box_h, box_w = box
    weight = weight[:, :, top : top + box_h, left : left + box_w]
    embeds = entry.embeds.to(device, dtype)
    embeds = embeds.expand(batch, -1, -1) if embeds.shape[0] == 1 else embeds[:batch]
    pooled = time_ids = None
    if family is ModelFamily.SDXL:
        if entry.pooled is None:
            raise ValueError(
                "SDXL conditioning has no pooled text embedding: encode the prompt with an "
                "SDXL CLIP (Load Checkpoint of an SDXL model)"
            )
        pooled = entry.pooled.to(device, dtype)
        pooled = pooled.expand(batch, -1) if pooled.shape[0] == 1 else pooled[:batch]
        ids = sdxl_time_ids(options.size, box_h * downscale, box_w * downscale, dtype=torch.float32)
        time_ids = ids.to(device, dtype).expand(batch, -1)
    return _Context(embeds, pooled, time_ids, box, weight.to(device), side)


def _fit_tokens(embeds: list[torch.Tensor]) -> list[torch.Tensor]:
    """Repeat token sequences to a common length (their least common multiple).

    Repeating every key/value token k times leaves softmax attention unchanged, so contexts
    with 77 and 154 tokens can share one batched UNet call (ComfyUI does the same).
    """
    lengths = {e.shape[1] for e in embeds}
    if len(lengths) == 1:
        return embeds
    target = math.lcm(*lengths)
    return [e.repeat(1, target // e.shape[1], 1) for e in embeds]


class _Denoiser:
    """Runs the UNet for every context with CFG, batching contexts that share an area."""

    def __init__(
        self,
        model: DiffusionModel,
        positive: Conditioning,
        negative: Conditioning,
        cfg: float,
        latent_shape: torch.Size,
        concat: torch.Tensor | None,
        downscale: int = LATENT_FACTOR,
    ) -> None:
        unet = model.unet
        parameter = next(unet.parameters())
        self.unet, self.device, self.dtype = unet, parameter.device, parameter.dtype
        self.cfg = float(cfg)
        self.concat = concat
        batch, _, height, width = latent_shape
        sides = [(1, positive)] if self.cfg == 1.0 else [(0, negative), (1, positive)]
        contexts: list[_Context] = []
        for side, conditioning in sides:
            if len(conditioning) == 0:
                which = "positive" if side else "negative"
                raise ValueError(f"the {which} conditioning is empty: connect a prompt to it")
            for entry in conditioning:
                context = _prepare_context(
                    entry,
                    side,
                    model.family,
                    batch,
                    height,
                    width,
                    self.device,
                    self.dtype,
                    downscale,
                )
                if context is not None:
                    contexts.append(context)
        self.groups: dict[tuple[int, int, int, int], list[_Context]] = {}
        for context in contexts:
            self.groups.setdefault(context.box, []).append(context)

    def __call__(
        self, model_input: torch.Tensor, timestep: torch.Tensor, guided: bool = True
    ) -> torch.Tensor:
        """The guided model output for ``model_input`` (float32, shape of the latent);
        without ``guided``, the positive prediction alone, at the cost of one pass instead of
        two."""
        guided = guided and self.cfg != 1.0
        batch = model_input.shape[0]
        totals = [torch.zeros_like(model_input) for _ in range(2)]
        counts = [torch.zeros_like(model_input[:, :1]) for _ in range(2)]
        x = model_input if self.concat is None else torch.cat([model_input, self.concat], dim=1)
        for (top, left, box_h, box_w), everything in self.groups.items():
            contexts = everything if guided else [c for c in everything if c.side == 1]
            if not contexts:
                continue
            crop = x[:, :, top : top + box_h, left : left + box_w].to(self.dtype)
            kwargs = {}
            if contexts[0].pooled is not None:
                kwargs["added_cond_kwargs"] = {
                    "text_embeds": torch.cat([c.pooled for c in contexts]),  # type: ignore[misc]
                    "time_ids": torch.cat([c.time_ids for c in contexts]),  # type: ignore[misc]
                }
            embeds = torch.cat(_fit_tokens([c.embeds for c in contexts]))
            output = self.unet(
                crop.repeat(len(contexts), 1, 1, 1),
                timestep,
                encoder_hidden_states=embeds,
                return_dict=False,
                **kwargs,
            )[0].float()
            for number, context in enumerate(contexts):
                part = output[number * batch : (number + 1) * batch]
                region = (
                    slice(None),
                    slice(None),
                    slice(top, top + box_h),
                    slice(left, left + box_w),
                )
                totals[context.side][region] += part * context.weight
                counts[context.side][region] += context.weight
        # Overlapping contexts average, weighted by strength × mask (ComfyUI's calc_cond_batch);
        # where nothing applies the prediction is 0.
        cond = totals[1] / counts[1].clamp_min(1e-37)
        if not guided:
            return cond
        uncond = totals[0] / counts[0].clamp_min(1e-37)
        # Classifier-free guidance (Ho & Salimans 2022, eq. 6): ε = ε_u + s·(ε_c − ε_u).
        return uncond + self.cfg * (cond - uncond)


# --- the loop ------------------------------------------------------------------------------


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


def _step_kwargs(scheduler: object) -> bool:
    return "generator" in inspect.signature(scheduler.step).parameters  # type: ignore[attr-defined]


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
) -> torch.Tensor:
    """Denoise ``latent`` ([B, 4, h, w], scaled VAE latents) and return it on the CPU (float32).

    ``noise_mask`` (1 = repaint) limits denoising: after every step the unmasked area is put
    back at the current noise level (as diffusers' inpainting pipeline and ComfyUI do).
    9-channel inpainting UNets also get the mask and ``latent`` (the masked image's latent)
    as extra input channels. ``noise`` replaces the seeded initial noise. ``callback`` hears
    every finished step; ``check_cancel`` is called before each UNet evaluation and stops the
    run by raising. ``downscale`` (pixels per latent cell) places conditioning areas, which are
    given in pixels, and sizes SDXL's size conditioning.
    """
    definition, scheduler = make_scheduler(
        settings.sampler, settings.schedule, model.scheduler_config
    )
    if settings.steps < 1:
        raise ValueError(f"steps must be at least 1, got {settings.steps}")
    end_step = (
        settings.steps if settings.end_step is None else min(settings.end_step, settings.steps)
    )
    if settings.start_step >= end_step:
        return latent.detach().to("cpu", torch.float32).clone()

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

    scheduler.set_timesteps(settings.steps, device=device)
    timesteps = scheduler.timesteps
    order = int(scheduler.order)
    first = settings.start_step * order
    last = min(end_step * order, len(timesteps))
    if hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(first)

    mask = None if noise_mask is None else _resize_mask(noise_mask, batch, height, width).to(device)
    concat = None
    if model.is_inpainting:
        # Channels 5–9 of an inpainting UNet: the mask, then the masked image's latent
        # (diffusers' StableDiffusionInpaintPipeline; Rombach et al.'s sd-v1-5-inpainting).
        inpaint_mask = mask if mask is not None else torch.ones_like(latent[:, :1])
        concat = torch.cat([inpaint_mask, latent], dim=1)
    elif int(unet.config.in_channels) != channels:
        raise ValueError(
            f"the latent has {channels} channels but the model expects "
            f"{unet.config.in_channels}: use a latent made for this model's family"
        )
    denoiser = _Denoiser(model, positive, negative, settings.cfg, latent.shape, concat, downscale)

    # The starting sample, in the scheduler's own space.
    if settings.add_noise and first == 0:
        x = noise * scheduler.init_noise_sigma  # pure noise, as diffusers' text-to-image
    elif settings.add_noise:
        x = scheduler.add_noise(latent, noise, timesteps[first : first + 1])  # q(x_t | x_0)
    elif definition.space == "alpha":
        x = latent / math.sqrt(1.0 + boundary_sigma(scheduler, definition, first) ** 2)
    else:
        x = latent.clone()

    def to_sigma_space(sample: torch.Tensor, index: int) -> torch.Tensor:
        if definition.space == "sigma":
            return sample
        return sample * math.sqrt(1.0 + boundary_sigma(scheduler, definition, index) ** 2)

    stochastic = definition.stochastic and _step_kwargs(scheduler)
    generator = torch.Generator("cpu")
    total = end_step - settings.start_step
    denoised = latent
    with torch.inference_mode():
        for index in range(first, last):
            if check_cancel is not None:
                check_cancel()
            timestep = timesteps[index]
            model_input = scheduler.scale_model_input(x, timestep)
            sigma = input_sigma(scheduler, definition, index, timestep)
            output = denoiser(model_input, timestep, guided=model.guided_at(sigma))
            denoised = predicted_x0(model_input, output, sigma, model.prediction)
            kwargs = {}
            if stochastic:
                kwargs["generator"] = generator.manual_seed(step_seed(settings.seed, index))
            x = scheduler.step(output, timestep, x, return_dict=False, **kwargs)[0]
            if mask is not None:
                # Inpainting: the unmasked area returns to the input at the next noise level.
                if index + 1 < len(timesteps):
                    known = scheduler.add_noise(latent, noise, timesteps[index + 1 : index + 2])
                else:
                    known = latent
                x = (1 - mask) * known + mask * x
            if callback is not None and ((index + 1) % order == 0 or index + 1 == last):
                done = min(-(-(index + 1) // order), end_step) - settings.start_step
                callback(SamplerStep(done, total, to_sigma_space(x, index + 1), denoised))
    if last < len(timesteps) and not settings.leftover_noise:
        # Stopped early without leftover noise: finish with the first-order jump to σ = 0,
        # which lands on the last denoised estimate (Karras et al. 2022, Alg. 1, last step).
        x = denoised if mask is None else (1 - mask) * latent + mask * denoised
    else:
        x = to_sigma_space(x, last)
    return x.to("cpu", torch.float32)
