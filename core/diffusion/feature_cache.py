"""Reusing a UNet's deep features between sampler steps (DeepCache, Ma et al. 2023).

Between neighbouring steps the deep, low-resolution features of a diffusion UNet change
little, while the shallow, full-resolution ones carry the step's detail. So on most steps only
the outer blocks need to run: on a *full* step the whole UNet runs and the input of its
outermost ``depth`` up blocks is kept; on a *cached* step only the first ``depth`` down blocks
run, and their skip connections meet the kept feature in the same ``depth`` up blocks
(DeepCache's "shallow branch"). One full step in every ``interval`` noise levels, only between
``start`` and ``end`` of the schedule (0 = pure noise, 1 = clean); every other step is full.

``FeatureCachedUnet`` wraps a diffusers ``UNet2DConditionModel`` and is used in its place: it
hands every attribute (config, parameters, submodules) through to the UNet it shares, so
placement, LoRAs and the model cache see the same weights. It keeps what it needs between the
calls of one sampling run: calls at the same timestep belong to one model evaluation (the
batches of CFG and of area conditionings, told apart by their order), a lower timestep starts
the next evaluation, and a higher one starts a new run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

#: UNet keyword arguments the shallow branch knows how to pass on. Calls with anything else
#: (T2I adapters' intrablock residuals, attention masks…) run the whole UNet.
_SHALLOW_KWARGS = frozenset(
    {
        "encoder_hidden_states",
        "added_cond_kwargs",
        "cross_attention_kwargs",
        "down_block_additional_residuals",
        "mid_block_additional_residual",
        "return_dict",
    }
)


@dataclass(frozen=True)
class FeatureCacheSettings:
    """When to reuse deep features: one full step in ``interval`` noise levels, reusing the
    input of the outermost ``depth`` up blocks, between ``start`` and ``end`` (fractions of the
    schedule, 0 = pure noise)."""

    # Measured on the demo model (docs/performance.md, "Feature Cache"): depth 3 kept its prompt
    # adherence at interval 3, depths 1 and 2 lost shapes at every interval tried.
    interval: int = 3
    depth: int = 3
    start: float = 0.0
    end: float = 1.0

    def problem(self, levels: int | None = None) -> str | None:
        """Why these settings cannot work (on a UNet with ``levels`` down blocks), or None."""
        if self.interval < 1:
            return f"the cache interval must be at least 1, not {self.interval}"
        if self.depth < 1 or (levels is not None and self.depth >= levels):
            most = "the UNet's levels minus one" if levels is None else str(levels - 1)
            return f"the cache depth must be from 1 to {most}, not {self.depth}"
        if not 0.0 <= self.start <= self.end <= 1.0:
            return f"start ({self.start:g}) and end ({self.end:g}) must satisfy 0 ≤ start ≤ end ≤ 1"
        return None


@dataclass
class _RunState:
    """What one sampling run has seen: the current evaluation and the kept features."""

    timestep: float | None = None
    evaluation: int = -1  # evaluations inside the start/end window so far, minus one
    call: int = 0  # UNet calls so far within the current evaluation
    full: bool = True  # whether the current evaluation runs the whole UNet
    features: dict[int, torch.Tensor] = field(default_factory=dict)
    full_calls: int = 0
    cached_calls: int = 0


class FeatureCachedUnet:
    """A UNet that reuses its deep features on some steps; see the module docstring."""

    def __init__(self, unet: Any, settings: FeatureCacheSettings) -> None:
        problem = settings.problem(len(unet.down_blocks))
        if problem is not None:
            raise ValueError(problem)
        self.__dict__["unet"] = unet
        self.__dict__["settings"] = settings
        self.__dict__["state"] = _RunState()
        self.__dict__["_kept"] = None
        self.__dict__["_hook"] = unet.up_blocks[len(unet.up_blocks) - settings.depth - 1]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["unet"], name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.unet, name, value)

    def __deepcopy__(self, memo: dict[int, Any]) -> FeatureCachedUnet:
        """A copy around a copy of the UNet (how LoRAs patch a model), with a fresh state."""
        import copy

        return FeatureCachedUnet(copy.deepcopy(self.unet, memo), self.settings)

    def __call__(self, sample: torch.Tensor, timestep: Any, **kwargs: Any) -> Any:
        state = self.state
        now = float(torch.as_tensor(timestep).flatten()[0])
        if state.timestep is None or now > state.timestep:
            self.__dict__["state"] = state = _RunState()
        if now != state.timestep:
            state.timestep, state.call = now, 0
            inside = self._inside(now)
            if inside:
                state.evaluation += 1
            state.full = not inside or state.evaluation % self.settings.interval == 0
        call, state.call = state.call, state.call + 1
        kept = state.features.get(call)
        usable = (
            not state.full
            and kept is not None
            and kept.shape[0] == sample.shape[0]
            and set(kwargs) <= _SHALLOW_KWARGS
            and self.unet.config.get("addition_embed_type") != "image_hint"
        )
        if usable:
            state.cached_calls += 1
            return self._shallow(sample, timestep, kept, **kwargs)
        state.full_calls += 1
        handle = self._hook.register_forward_hook(self._keep)
        try:
            output = self.unet(sample, timestep, **kwargs)
        finally:
            handle.remove()
        state.features[call] = self.__dict__["_kept"]
        return output

    def _inside(self, timestep: float) -> bool:
        """Whether a model evaluation at ``timestep`` lies in the start/end window."""
        steps = int(self.unet.config.get("num_train_timesteps", 1000) or 1000)
        done = 1.0 - timestep / max(steps - 1, 1)  # 0 at pure noise, 1 when clean
        return self.settings.start <= done <= self.settings.end

    def _keep(self, module: torch.nn.Module, inputs: Any, output: torch.Tensor) -> None:
        self.__dict__["_kept"] = output

    @torch.no_grad()
    def _shallow(
        self,
        sample: torch.Tensor,
        timestep: Any,
        kept: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        added_cond_kwargs: dict[str, torch.Tensor] | None = None,
        cross_attention_kwargs: dict[str, Any] | None = None,
        down_block_additional_residuals: tuple[torch.Tensor, ...] | None = None,
        mid_block_additional_residual: torch.Tensor | None = None,
        return_dict: bool = True,
    ) -> Any:
        """The outer blocks only: diffusers' ``UNet2DConditionModel.forward`` restricted to
        ``conv_in``, the first ``depth`` down blocks, the last ``depth`` up blocks and the
        output layers, with ``kept`` standing in for everything deeper."""
        unet, depth = self.unet, self.settings.depth
        emb = unet.time_embedding(unet.get_time_embed(sample=sample, timestep=timestep), None)
        aug = unet.get_aug_embed(
            emb=emb,
            encoder_hidden_states=encoder_hidden_states,
            added_cond_kwargs=added_cond_kwargs,
        )
        emb = emb + aug if aug is not None else emb
        if unet.time_embed_act is not None:
            emb = unet.time_embed_act(emb)
        context = unet.process_encoder_hidden_states(
            encoder_hidden_states=encoder_hidden_states, added_cond_kwargs=added_cond_kwargs
        )
        hidden = unet.conv_in(sample)
        skips: tuple[torch.Tensor, ...] = (hidden,)
        for block in unet.down_blocks[:depth]:
            if getattr(block, "has_cross_attention", False):
                hidden, found = block(
                    hidden_states=hidden,
                    temb=emb,
                    encoder_hidden_states=context,
                    cross_attention_kwargs=cross_attention_kwargs,
                )
            else:
                hidden, found = block(hidden_states=hidden, temb=emb)
            skips += found
        ups = unet.up_blocks[len(unet.up_blocks) - depth :]
        skips = skips[: sum(len(block.resnets) for block in ups)]
        if down_block_additional_residuals is not None:
            # A ControlNet's residuals for the skips that still exist (the deep ones and the
            # middle block's went into the kept feature on the last full step).
            extra = down_block_additional_residuals
            skips = tuple(s + r for s, r in zip(skips, extra, strict=False))
        hidden = kept
        factor = 2**unet.num_upsamplers
        forward_size = any(size % factor for size in sample.shape[-2:])
        for number, block in enumerate(ups):
            found, skips = skips[-len(block.resnets) :], skips[: -len(block.resnets)]
            last = number == len(ups) - 1
            upsample_size = skips[-1].shape[2:] if forward_size and not last else None
            if getattr(block, "has_cross_attention", False):
                hidden = block(
                    hidden_states=hidden,
                    temb=emb,
                    res_hidden_states_tuple=found,
                    encoder_hidden_states=context,
                    cross_attention_kwargs=cross_attention_kwargs,
                    upsample_size=upsample_size,
                )
            else:
                hidden = block(
                    hidden_states=hidden,
                    temb=emb,
                    res_hidden_states_tuple=found,
                    upsample_size=upsample_size,
                )
        if unet.conv_norm_out is not None:
            hidden = unet.conv_act(unet.conv_norm_out(hidden))
        hidden = unet.conv_out(hidden)
        if not return_dict:
            return (hidden,)
        from diffusers.models.unets.unet_2d_condition import UNet2DConditionOutput

        return UNet2DConditionOutput(sample=hidden)
