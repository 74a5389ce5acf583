"""Applying ControlNets and T2I-Adapters to conditioning, and running them in the sampler.

As in ComfyUI, a control rides on the CONDITIONING: every entry carries, in its "control"
slot, the last ``ControlLink`` applied to it, and each link remembers the one applied before,
so positive and negative prompts can carry different controls and several stack (their
residuals add up). The sampler calls the link once per UNet evaluation (a per-call UNet
extra, ``core.diffusion.sampling.UnetExtra``) for the rows of the entries that carry it.
"""

from __future__ import annotations

from core.diffusion import offline  # noqa: F401  (must precede diffusers/transformers)

# isort: split
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from core.diffusion.conditioning import Conditioning, with_extra

from .loading import ControlModel

if TYPE_CHECKING:
    from core.diffusion.sampling import UnetCall

#: The conditioning slot that holds an entry's control chain (ComfyUI's "control" key).
CONTROL_SLOT = "control"
#: How ComfyUI resizes hints to the picture: the nearest pixel, after a centred crop to the
#: picture's aspect ratio.
HINT_RESIZE = "nearest-exact"
#: Prepared hints and adapter features a link keeps: one per area of a run is plenty.
_KEEP = 8


def percent_to_sigma(percent: float, levels: Any) -> float:
    """The noise level at ``percent`` of the model's timesteps (0: above the highest, 1: 0),
    ComfyUI's rule for start/end percent."""
    if percent <= 0.0:
        return float("inf")
    if percent >= 1.0:
        return 0.0
    return levels.sigma((1.0 - percent) * (len(levels.sigmas) - 1))


@dataclass(frozen=True, eq=False)
class ControlLink:
    """One ControlNet or T2I-Adapter applied with a hint picture, a strength and a window of
    the sampling run (start and end as fractions of the model's timesteps), and the link
    applied before it on the same conditioning."""

    control: ControlModel
    hint: torch.Tensor  # IMAGE [batch, height, width, channels] in 0..1
    strength: float
    start_percent: float = 0.0
    end_percent: float = 1.0
    previous: ControlLink | None = None
    #: Hints (and adapter features) prepared for the areas of the last calls, kept for the
    #: next steps.
    _prepared: dict = field(default_factory=dict, repr=False)

    def chain(self) -> Iterator[ControlLink]:
        """This link and every one applied before it."""
        link: ControlLink | None = self
        while link is not None:
            yield link
            link = link.previous

    def active_at(self, sigma: float, levels: Any) -> bool:
        """Whether the step at noise level ``sigma`` lies in this link's window."""
        high = percent_to_sigma(self.start_percent, levels)
        low = percent_to_sigma(self.end_percent, levels)
        return low <= sigma <= high

    def __call__(self, call: UnetCall) -> dict[str, Any]:
        """The residuals of this chain for the rows that carry it (zero in the others)."""
        rows = torch.nonzero(call.rows(self)).flatten().to(call.x.device)
        result: dict[str, Any] = {}
        for link in self.chain():
            if link.strength != 0.0 and link.active_at(call.sigma, call.levels):
                from core.diffusion.sampling import merge_unet_kwargs

                merge_unet_kwargs(result, link._residuals(call, rows))
        return result

    def end_run(self) -> None:
        """At the end of a sampling run: Control-LoRAs in the chain drop the ControlNet they
        built from the run's UNet (it holds the UNet's tensors, which must be free to move)."""
        for link in self.chain():
            link.control.forget_built()

    # --- one link ------------------------------------------------------------------------

    def _hint_rows(self, call: UnetCall, rows: torch.Tensor, channels: int) -> torch.Tensor:
        """The hint for ``rows``: resized to the picture, cut to the call's area, the
        picture's batch cycled over the latent batch, in ``channels`` colour channels."""
        key = ("hint", call.latent_size, call.box, call.downscale, call.batch, channels)
        hint = self._remember(key, lambda: self._hint(call, channels))
        index = (rows.cpu() % call.batch) % hint.shape[0]
        return hint[index]

    def _remember(self, key: tuple, make: Any) -> Any:
        """``make()``, kept under ``key`` for later calls (the last few keys only)."""
        if key not in self._prepared:
            if len(self._prepared) >= _KEEP:
                self._prepared.pop(next(iter(self._prepared)))
            self._prepared[key] = make()
        return self._prepared[key]

    def _hint(self, call: UnetCall, channels: int) -> torch.Tensor:
        from core.diffusion.images import resize_channels_first

        height, width = (side * call.downscale for side in call.latent_size)
        picture = self.hint.float().movedim(-1, 1)[: call.batch]
        if picture.ndim != 4:
            raise ValueError(f"the hint for {self.control.name} is not a picture")
        if tuple(picture.shape[-2:]) != (height, width):
            call.notify(
                f"The hint for {self.control.name} is {picture.shape[-1]}×{picture.shape[-2]} "
                f"pixels; it was resized to the picture's {width}×{height}."
            )
            picture = resize_channels_first(picture, width, height, HINT_RESIZE, "center")
        if channels == 1 and picture.shape[1] > 1:
            picture = picture[:, :3].mean(dim=1, keepdim=True)
        elif picture.shape[1] == 1:
            picture = picture.expand(-1, channels, -1, -1)
        else:
            picture = picture[:, :channels]
        top, left, box_h, box_w = (side * call.downscale for side in call.box)
        return picture[:, :, top : top + box_h, left : left + box_w].contiguous()

    def _residuals(self, call: UnetCall, rows: torch.Tensor) -> dict[str, Any]:
        from core.diffusion.cache import residency_for

        self._check_fits(call)
        if self.control.is_control_lora:
            if call.unet is None:
                raise ValueError(
                    f"{self.control.name} is a Control-LoRA, which is built from the model "
                    "being sampled, and this sampler does not say which UNet it runs"
                )
            # Built on the UNet's device from the UNet's own tensors: no residency of its own.
            module = self.control.module_for(call.unet)
        else:
            module = residency_for(call.x.device).use(self.control.module)
        dtype = next(module.parameters()).dtype
        if self.control.is_adapter:
            return self._adapter_residuals(call, rows, module, dtype)
        config = module.config
        hint = self._hint_rows(call, rows, int(config.conditioning_channels))
        extra = {}
        if call.added_cond_kwargs is not None and config.addition_embed_type == "text_time":
            extra["added_cond_kwargs"] = {
                k: v[rows].to(dtype) for k, v in call.added_cond_kwargs.items()
            }
            _fit_size_embedding(module, call.added_cond_kwargs)
        down, mid = module(
            call.x[rows][:, : int(config.in_channels)].to(dtype),
            call.timestep,
            encoder_hidden_states=call.encoder_hidden_states[rows].to(dtype),
            controlnet_cond=hint.to(call.x.device, dtype),
            conditioning_scale=float(self.strength),
            return_dict=False,
            **extra,
        )
        return {
            "down_block_additional_residuals": tuple(_scatter(r, rows, call.x) for r in down),
            "mid_block_additional_residual": _scatter(mid, rows, call.x),
        }

    def _adapter_residuals(
        self, call: UnetCall, rows: torch.Tensor, module: Any, dtype: torch.dtype
    ) -> dict[str, Any]:
        # The adapter sees only the hint, so its features serve every step of the run.
        key = ("features", call.latent_size, call.box, call.batch, tuple(rows.tolist()), dtype)

        def features() -> list[torch.Tensor]:
            hint = self._hint_rows(call, rows, int(module.config.in_channels))
            # Kept in host memory, so a cached conditioning holds no device memory.
            return [(f * float(self.strength)).cpu() for f in module(hint.to(call.x.device, dtype))]

        computed = self._remember(key, features)
        return {
            "down_intrablock_additional_residuals": [_scatter(f, rows, call.x) for f in computed]
        }

    def _check_fits(self, call: UnetCall) -> None:
        """A clear error when the control was made for another kind of model."""
        control, module = self.control, self.control.module
        sdxl_model = call.added_cond_kwargs is not None
        if control.is_control_lora:
            # Built from the model itself; a file for another architecture fails the build.
            return
        if control.is_adapter:
            fits = (control.family is not None and control.family.value == "sdxl") == sdxl_model
            width = None
        else:
            width = int(module.config.cross_attention_dim)
            fits = width == int(call.encoder_hidden_states.shape[-1])
            fits = fits and (module.config.addition_embed_type == "text_time") == sdxl_model
        if not fits:
            made_for = control.family.value.upper() if control.family else "SD 1.x/2.x"
            detail = f", prompts {width} wide" if width else ""
            raise ValueError(
                f"{control.name} was made for {made_for} models{detail}; the model being "
                f"sampled (prompts {call.encoder_hidden_states.shape[-1]} wide) is another "
                "kind: use a ControlNet or T2I-Adapter made for this model"
            )


def _fit_size_embedding(module: Any, added: Any) -> None:
    """Size SDXL's embedding of the size numbers from the model's own pooled width: a file
    shows only their sum (2816 = 1280 + 6 × 256 for SDXL), so the share of each number is
    read off the first call."""
    total = int(module.add_embedding.linear_1.in_features)
    pooled, numbers = int(added["text_embeds"].shape[-1]), int(added["time_ids"].shape[-1])
    width, rest = divmod(total - pooled, numbers)
    if width > 0 and not rest and module.add_time_proj.num_channels != width:
        module.add_time_proj.num_channels = width


def _scatter(part: torch.Tensor, rows: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``part`` (one per row in ``rows``) in a zero tensor with one row per row of ``like``."""
    full = torch.zeros((like.shape[0], *part.shape[1:]), device=like.device, dtype=like.dtype)
    full[rows] = part.to(like.device, like.dtype)
    return full


def apply_control(
    conditionings: tuple[Conditioning, ...],
    control: ControlModel,
    hint: torch.Tensor,
    strength: float,
    start_percent: float = 0.0,
    end_percent: float = 1.0,
) -> tuple[Conditioning, ...]:
    """Every conditioning with ``control`` applied on top of the controls it already carries
    (ComfyUI's Apply ControlNet). Entries that carried the same control before share one new
    link, so positive and negative rows run through the ControlNet in one batch. Strength 0
    returns the inputs unchanged."""
    if strength == 0.0:
        return conditionings
    if not 0.0 <= start_percent <= end_percent <= 1.0:
        raise ValueError(
            f"start_percent {start_percent:g} and end_percent {end_percent:g} must satisfy "
            "0 ≤ start ≤ end ≤ 1"
        )
    if hint.ndim != 4:
        raise ValueError(
            f"the hint must be an IMAGE [batch, height, width, channels], got {tuple(hint.shape)}"
        )
    links: dict[int, ControlLink] = {}
    out = []
    for conditioning in conditionings:
        entries = []
        for entry in conditioning:
            previous = entry.extras.get(CONTROL_SLOT)
            link = links.get(id(previous))
            if link is None:
                link = ControlLink(
                    control, hint, float(strength), start_percent, end_percent, previous
                )
                links[id(previous)] = link
            entries.append(with_extra(entry, CONTROL_SLOT, link))
        out.append(Conditioning(tuple(entries)))
    return tuple(out)
