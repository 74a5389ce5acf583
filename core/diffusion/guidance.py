"""The guided model call a sampler sees: every conditioning entry prepared for the latent
(its area or mask, its strength, its timestep range, SDXL's pooled embedding and size ids),
entries that share an area batched into one UNet evaluation with the per-call extras
(ControlNet, adapters…) added, overlapping entries averaged, and the guidance chain
(classifier-free guidance or a custom guider) applied to the result.

``core.diffusion.sampling`` wraps this in the sampling loop; it knows no sampler.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F

from core.diffusion.conditioning import Conditioning, ConditioningEntry, sdxl_time_ids
from core.diffusion.families import FAMILY_TRAITS, ModelFamily
from core.diffusion.models import DiffusionModel
from core.diffusion.samplers import NoiseLevels

#: Pixels per latent cell along each axis for Stable Diffusion's VAE (f = 8, Rombach et al.
#: 2022, §3); used to place conditioning areas (given in pixels) and for SDXL's size ids.
LATENT_FACTOR = 8

__all__ = ["LATENT_FACTOR", "GuidedDenoiser", "UnetCall", "UnetExtra", "merge_unet_kwargs"]


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
    term: int = 0  # its place in the guidance chain (GuidedDenoiser)
    #: Noise levels (σ_high, σ_low) between which it applies (its timestep range).
    levels: tuple[float, float] = (math.inf, 0.0)
    #: The picture an InstructPix2Pix-style UNet takes beside the latent, [B, C, h, w] at the
    #: latent's size in the UNet's dtype (None: the UNet takes no such input).
    concat: torch.Tensor | None = None

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
    seed: int = 0,
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
        pooled = entry.pooled
        if pooled is None:
            raise ValueError(
                "SDXL conditioning has no pooled text embedding: encode the prompt with an "
                "SDXL CLIP (Load Checkpoint of an SDXL model)"
            )
        revision = [e for e in entry.extras.values() if hasattr(e, "pooled_embedding")]
        if revision:
            # SDXL revision: image prompts take the pooled text embedding's place.
            pooled = revision[0].pooled_embedding(int(pooled.shape[-1]), seed)
        pooled = pooled.to(device, dtype)
        pooled = pooled.expand(batch, -1) if pooled.shape[0] == 1 else pooled[:batch]
        ids = sdxl_time_ids(options.size, box_h * downscale, box_w * downscale, dtype=torch.float32)
        time_ids = ids.to(device, dtype).expand(batch, -1)
    return _Context(embeds, pooled, time_ids, box, weight.to(device), side, entry)


def _edit_image(
    entry: ConditioningEntry,
    channels: int,
    scale: float,
    batch: int,
    height: int,
    width: int,
    device: torch.device,
    dtype: torch.dtype,
) -> torch.Tensor:
    """The picture an instruction-editing UNet sees beside the latent for ``entry``: its
    ``concat_latent`` times ``scale``, resized to the latent and repeated to its batch, or
    zeros when it has none (an unconditional context, as ComfyUI gives it)."""
    latent = entry.options.concat_latent
    if latent is None:
        return torch.zeros(batch, channels, height, width, device=device, dtype=dtype)
    latent = latent.float()
    if latent.shape[1] != channels:
        raise ValueError(
            f"the model takes a {channels}-channel picture latent beside the noise but the "
            f"conditioning carries {latent.shape[1]} channels: encode the picture with this "
            "model's VAE"
        )
    if tuple(latent.shape[-2:]) != (height, width):
        latent = F.interpolate(latent, size=(height, width), mode="bilinear")
    if latent.shape[0] < batch:
        latent = latent.repeat(math.ceil(batch / latent.shape[0]), 1, 1, 1)
    return (latent[:batch] * scale).to(device, dtype)


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
    #: The UNet being called, for extras built from its weights (a Control-LoRA).
    unet: Any = None

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


class GuidedDenoiser:
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
        batch, channels, height, width = latent_shape
        self.latent_size = (height, width)
        # A UNet with input channels beyond the latent's (and no model-wide extra input, as
        # inpainting UNets have) is an instruction-editing one: each context brings its picture.
        self.edit_channels = 0 if concat is not None else int(unet.config.in_channels) - channels
        # InstructPix2Pix reads the unscaled VAE latent; CosXL Edit, a continuous-time
        # (EDM) model, the scaled one (ComfyUI's rule).
        edit_scale = (
            FAMILY_TRAITS[model.family].vae_scaling_factor
            if model.scheduler_config.get("model_sampling") == "edm"
            else 1.0
        )
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
                    seed,
                )
                if context is not None:
                    span = entry.options.timestep_range or (0.0, 1.0)
                    bounds = tuple(_percent_sigma(self.levels, p) for p in span)
                    edit = None
                    if self.edit_channels > 0:
                        edit = _edit_image(
                            entry,
                            self.edit_channels,
                            edit_scale,
                            batch,
                            height,
                            width,
                            self.device,
                            self.dtype,
                        )
                    contexts.append(replace(context, term=term, levels=bounds, concat=edit))
        # Extras that need layers the UNet lacks (GLIGEN's gated attention) give the run a
        # copy of it with those layers; the loaded UNet stays as it is.
        patches = {
            id(extra): extra
            for context in contexts
            for extra in context.entry.extras.values()
            if hasattr(extra, "patch_unet")
        }
        for extra in patches.values():
            self.unet = extra.patch_unet(self.unet)
        self.groups: dict[tuple[int, int, int, int], list[_Context]] = {}
        for context in contexts:
            self.groups.setdefault(context.box, []).append(context)

    def end_run(self) -> None:
        """Tell the run's extras that it is over, so those that built something from the UNet
        for it (a Control-LoRA's ControlNet, which shares the UNet's tensors) let it go."""
        extras = {id(e): e for e in self.model_extras}
        for contexts in self.groups.values():
            extras.update((id(e), e) for c in contexts for e in c.entry.extras.values())
        for extra in extras.values():
            if hasattr(extra, "end_run"):
                extra.end_run()

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
            unet=self.unet,
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
            if self.edit_channels > 0:
                region = (
                    slice(None),
                    slice(None),
                    slice(top, top + box_h),
                    slice(left, left + box_w),
                )
                rows = torch.cat([torch.cat([crop, c.concat[region]], dim=1) for c in contexts])  # type: ignore[index]
            else:
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
