"""The sampling loop: classifier-free guidance, conditioning areas and masks, start/end steps,
denoise strength, inpainting, seeded noise and the per-step callback, around any sampler of
``core.diffusion.samplers`` on any schedule.

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
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F

from core.diffusion import samplers
from core.diffusion.conditioning import Conditioning, ConditioningEntry, sdxl_time_ids
from core.diffusion.families import ModelFamily, PredictionType
from core.diffusion.models import DiffusionModel
from core.diffusion.samplers import NoiseLevels, StepInfo, UnknownSamplerError, step_seed

#: Pixels per latent cell along each axis for Stable Diffusion's VAE (f = 8, Rombach et al.
#: 2022, §3); used to place conditioning areas (given in pixels) and for SDXL's size ids.
LATENT_FACTOR = 8

__all__ = [
    "LATENT_FACTOR",
    "SamplerSettings",
    "SamplerStep",
    "UnetCall",
    "UnetExtra",
    "UnknownSamplerError",
    "denoise_window",
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


def predicted_x0(
    model_input: torch.Tensor, output: torch.Tensor, sigma: float, prediction: PredictionType
) -> torch.Tensor:
    """The denoised estimate x̂₀ (σ-space) from the VP model input x and the model output at
    noise level σ.

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
    entry: ConditioningEntry
    term: int = 0  # its place in the guidance chain (_Denoiser)
    #: Noise levels (σ_high, σ_low) between which it applies (its timestep range).
    levels: tuple[float, float] = (math.inf, 0.0)

    def applies_at(self, sigma: float) -> bool:
        return self.levels[1] <= sigma <= self.levels[0]


def _percent_sigma(levels: NoiseLevels, percent: float) -> float:
    """The noise level a fraction of the schedule stands for (0: above the highest level,
    1: 0), timesteps counted down from the last trained one (ComfyUI's percent_to_sigma)."""
    if percent <= 0.0:
        return math.inf
    if percent >= 1.0:
        return 0.0
    return levels.sigma((1.0 - percent) * (len(levels.sigmas) - 1))


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
    return _Context(embeds, pooled, time_ids, box, weight.to(device), side, entry)


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


@dataclass(frozen=True, eq=False)
class UnetCall:
    """One batched UNet evaluation, as per-call extras (``UnetExtra``) see it.

    The call evaluates ``len(entries)`` conditioning entries on ``batch`` latents each: rows
    ``i*batch`` to ``(i+1)*batch`` of ``x`` and ``encoder_hidden_states`` belong to
    ``entries[i]``. ``x`` is what the UNet receives (x/√(1+σ²), cropped to ``box``, inpainting
    channels included, in the UNet's dtype); ``box`` is (top, left, height, width) in latent
    cells of a latent ``latent_size`` (height, width) cells big, ``downscale`` pixels per cell.
    ``sides`` says per entry whether it is a positive (1) or negative (0) context, for extras
    that condition the two differently (an image prompt's empty image on the negative side);
    ``seed`` is the run's seed, for extras that draw noise of their own.
    """

    x: torch.Tensor
    sigma: float
    timestep: torch.Tensor
    encoder_hidden_states: torch.Tensor
    added_cond_kwargs: Mapping[str, torch.Tensor] | None
    entries: tuple[ConditioningEntry, ...]
    batch: int
    box: tuple[int, int, int, int]
    latent_size: tuple[int, int]
    downscale: int
    levels: NoiseLevels
    #: Tells the user something once per run (a hint resized to the picture…).
    notify: Callable[[str], None]
    sides: tuple[int, ...] = ()
    seed: int = 0

    def rows(self, extra: object) -> torch.Tensor:
        """A bool per row: whether its entry carries ``extra`` in one of its slots."""
        carries = [any(e is extra for e in entry.extras.values()) for entry in self.entries]
        return torch.tensor(carries, dtype=torch.bool).repeat_interleave(self.batch)


#: A per-call UNet extra: given the call, the keyword arguments to add to it (ControlNet's
#: ``down_block_additional_residuals``, an adapter's ``added_cond_kwargs`` entries…). Extras
#: come from the model (``DiffusionModel.unet_extras``, for every row) and from conditioning
#: entries (``ConditioningEntry.extras``; each distinct extra is called once per UNet call
#: and fills the rows ``UnetCall.rows`` gives it, leaving the others at zero). What several
#: extras return is merged by ``merge_unet_kwargs``.
UnetExtra = Callable[[UnetCall], Mapping[str, Any]]


def merge_unet_kwargs(into: dict[str, Any], more: Mapping[str, Any]) -> dict[str, Any]:
    """Add ``more`` to the UNet keyword arguments ``into`` (changed in place and returned):
    tensors under the same name add up, tuples and lists of tensors add element by element,
    mappings merge by the same rules; other clashes are an error."""
    for name, value in more.items():
        if name not in into:
            into[name] = value
        elif isinstance(value, Mapping) and isinstance(into[name], Mapping):
            into[name] = merge_unet_kwargs(dict(into[name]), value)
        elif isinstance(value, torch.Tensor) and isinstance(into[name], torch.Tensor):
            into[name] = into[name] + value
        elif isinstance(value, (tuple, list)) and isinstance(into[name], (tuple, list)):
            if len(value) != len(into[name]):
                raise ValueError(f"two model extras give {name} of different lengths")
            summed = [a + b for a, b in zip(into[name], value, strict=True)]
            # diffusers pops T2I-Adapter features off their list: a list stays a list.
            listed = isinstance(value, list) or isinstance(into[name], list)
            into[name] = summed if listed else tuple(summed)
        else:
            raise ValueError(f"two model extras both set the UNet's {name}")
    return into


class _Denoiser:
    """Runs the UNet for every context with guidance, batching contexts that share an area, and
    adds what the model's and the contexts' per-call extras give each call.

    Guidance is a chain of conditionings c₀…cₙ with scales s₁…sₙ: the prediction is
    p₀ + Σₖ sₖ·(pₖ − pₖ₋₁). Classifier-free guidance is (negative, positive) with scale cfg;
    a ``guider`` (``core.diffusion.custom_sampling.Guider``) gives any other chain.
    """

    def __init__(
        self,
        model: DiffusionModel,
        positive: Conditioning,
        negative: Conditioning,
        cfg: float,
        latent_shape: torch.Size,
        concat: torch.Tensor | None,
        downscale: int = LATENT_FACTOR,
        notices: list[str] | None = None,
        seed: int = 0,
        guider: Any = None,
    ) -> None:
        unet = model.unet
        parameter = next(unet.parameters())
        self.unet, self.device, self.dtype = unet, parameter.device, parameter.dtype
        self.cfg = float(cfg)
        self.concat = concat
        self.model_extras = tuple(model.unet_extras)
        self.levels = NoiseLevels.from_config(model.scheduler_config)
        self.downscale = downscale
        self.seed = seed
        self.notices = notices if notices is not None else []
        batch, _, height, width = latent_shape
        self.latent_size = (height, width)
        if guider is None:
            terms = [(negative, "negative"), (positive, "positive")]
            scales = [self.cfg]
        else:
            terms = list(zip(guider.conditionings, guider.names, strict=True))
            scales = list(guider.scales)
        # p₀ + 1·(p₁ − p₀) = p₁: a leading scale of 1 makes the term before it unneeded.
        while scales and scales[0] == 1.0:
            terms.pop(0)
            scales.pop(0)
        self.scales = scales
        contexts: list[_Context] = []
        for term, (conditioning, which) in enumerate(terms):
            if len(conditioning) == 0:
                raise ValueError(f"the {which} conditioning is empty: connect a prompt to it")
            side = 1 if term == len(scales) else 0
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
                    span = entry.options.timestep_range or (0.0, 1.0)
                    bounds = tuple(_percent_sigma(self.levels, p) for p in span)
                    contexts.append(replace(context, term=term, levels=bounds))
        self.groups: dict[tuple[int, int, int, int], list[_Context]] = {}
        for context in contexts:
            self.groups.setdefault(context.box, []).append(context)

    def _notify(self, message: str) -> None:
        if message not in self.notices:
            self.notices.append(message)

    def _extra_kwargs(
        self, contexts: list[_Context], call_x: torch.Tensor, **call: Any
    ) -> dict[str, Any]:
        """What the model's extras and the distinct extras of ``contexts`` add to one call."""
        entries = tuple(c.entry for c in contexts)
        extras: dict[int, Any] = {id(e): e for e in self.model_extras}
        for entry in entries:
            extras.update((id(e), e) for e in entry.extras.values())
        if not extras:
            return {}
        unet_call = UnetCall(
            x=call_x,
            entries=entries,
            latent_size=self.latent_size,
            downscale=self.downscale,
            levels=self.levels,
            notify=self._notify,
            sides=tuple(c.side for c in contexts),
            seed=self.seed,
            **call,
        )
        merged: dict[str, Any] = {}
        for extra in extras.values():
            merge_unet_kwargs(merged, extra(unet_call))
        return merged

    def __call__(
        self,
        model_input: torch.Tensor,
        timestep: torch.Tensor,
        guided: bool = True,
        sigma: float | None = None,
    ) -> torch.Tensor:
        """The guided model output for ``model_input`` (float32, shape of the latent) at noise
        level ``sigma`` (None: that of ``timestep``); without ``guided``, the positive
        prediction alone, at the cost of one pass instead of two."""
        if sigma is None:
            sigma = self.levels.sigma(float(timestep))
        guided = guided and bool(self.scales)
        last = len(self.scales)
        batch = model_input.shape[0]
        totals = [torch.zeros_like(model_input) for _ in range(last + 1)]
        counts = [torch.zeros_like(model_input[:, :1]) for _ in range(last + 1)]
        x = model_input if self.concat is None else torch.cat([model_input, self.concat], dim=1)
        for (top, left, box_h, box_w), everything in self.groups.items():
            contexts = [c for c in everything if (guided or c.term == last) and c.applies_at(sigma)]
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
            rows = crop.repeat(len(contexts), 1, 1, 1)
            extra = self._extra_kwargs(
                contexts,
                rows,
                sigma=float(sigma),
                timestep=timestep,
                encoder_hidden_states=embeds,
                added_cond_kwargs=kwargs.get("added_cond_kwargs"),
                batch=batch,
                box=(top, left, box_h, box_w),
            )
            output = self.unet(
                rows,
                timestep,
                encoder_hidden_states=embeds,
                return_dict=False,
                **merge_unet_kwargs(kwargs, extra),
            )[0].float()
            for number, context in enumerate(contexts):
                part = output[number * batch : (number + 1) * batch]
                region = (
                    slice(None),
                    slice(None),
                    slice(top, top + box_h),
                    slice(left, left + box_w),
                )
                totals[context.term][region] += part * context.weight
                counts[context.term][region] += context.weight
        # Overlapping contexts average, weighted by strength × mask (ComfyUI's calc_cond_batch);
        # where nothing applies the prediction is 0.
        if not guided:
            return totals[last] / counts[last].clamp_min(1e-37)
        predictions = [t / n.clamp_min(1e-37) for t, n in zip(totals, counts, strict=True)]
        # Classifier-free guidance (Ho & Salimans 2022, eq. 6), ε = ε_u + s·(ε_c − ε_u),
        # applied link by link along the chain.
        guided_output = predictions[0]
        for term, scale in enumerate(self.scales, start=1):
            guided_output = guided_output + scale * (predictions[term] - predictions[term - 1])
        return guided_output


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
    elif int(unet.config.in_channels) != channels:
        raise ValueError(
            f"the latent has {channels} channels but the model expects "
            f"{unet.config.in_channels}: use a latent made for this model's family"
        )
    denoiser = _Denoiser(
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
        model_input = x / math.sqrt(1.0 + sigma * sigma)
        timestep = torch.tensor(levels.timestep(sigma), device=device, dtype=torch.float32)
        output = denoiser(model_input, timestep, guided=model.guided_at(sigma), sigma=sigma)
        denoised = predicted_x0(model_input, output, sigma, model.prediction)
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
    with torch.inference_mode():
        x = info.function(denoise, x, run, callback=on_step, **options)
        x = known(x, float(run[-1]))
    return x.to("cpu", torch.float32)
