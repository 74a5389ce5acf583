"""The sampler's per-call UNet extras: what they see of each batched call and how their
keyword arguments reach the UNet."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from core.diffusion.conditioning import Conditioning, with_extra
from core.diffusion.sampling import SamplerSettings, UnetCall, merge_unet_kwargs, sample
from tests.sampling.harness import active, model_of, random_conditioning

SETTINGS = SamplerSettings("euler", "normal", steps=3, cfg=5.0, seed=1)


def residual_shapes(config, height: int, width: int) -> tuple[list[tuple], tuple]:
    """The shapes of a UNet's down-block outputs and of its middle block, per latent."""
    channels = list(config.block_out_channels)
    shapes = [(channels[0], height, width)]
    for level, width_of in enumerate(channels):
        shapes += [(width_of, height, width)] * int(config.layers_per_block)
        if level < len(channels) - 1:
            height, width = (height + 1) // 2, (width + 1) // 2
            shapes.append((width_of, height, width))
    return shapes, (channels[-1], height, width)


class _Recorder:
    """Adds a constant to the ControlNet residuals of its rows and records every call."""

    def __init__(self, config, value: float = 0.0) -> None:
        self.config = config
        self.value = value
        self.calls: list[UnetCall] = []

    def __call__(self, call: UnetCall) -> dict:
        self.calls.append(call)
        rows = call.rows(self)
        down, mid = residual_shapes(self.config, *call.x.shape[-2:])

        def filled(shape: tuple) -> torch.Tensor:
            out = torch.zeros(call.x.shape[0], *shape, dtype=call.x.dtype)
            out[rows] = self.value
            return out

        return {
            "down_block_additional_residuals": tuple(filled(s) for s in down),
            "mid_block_additional_residual": filled(mid),
        }


def _setup():
    pipeline = active()
    return pipeline, model_of(pipeline)


def _with(conditioning: Conditioning, extra) -> Conditioning:
    return Conditioning(tuple(with_extra(e, "test", extra) for e in conditioning))


def test_extra_on_positive_sees_each_call_and_only_its_rows():
    pipeline, model = _setup()
    positive, negative = random_conditioning(pipeline, 1), random_conditioning(pipeline, 2)
    latent = torch.zeros(2, 4, 8, 8)
    recorder = _Recorder(pipeline.unet.config, 0.0)
    plain = sample(model, positive, negative, latent, SETTINGS)
    extra = sample(model, _with(positive, recorder), negative, latent, SETTINGS)
    assert torch.equal(plain, extra)  # zero residuals change nothing
    assert len(recorder.calls) == 3  # one batched call per step
    call = recorder.calls[0]
    assert call.x.shape[0] == 4 and call.batch == 2
    assert call.rows(recorder).tolist() == [False, False, True, True]  # negative rows first
    assert call.latent_size == (8, 8) and call.box == (0, 0, 8, 8)
    sigmas = [c.sigma for c in recorder.calls]
    assert sigmas == sorted(sigmas, reverse=True) and sigmas[0] > 10


def test_extra_changes_only_its_side():
    pipeline, model = _setup()
    positive, negative = random_conditioning(pipeline, 1), random_conditioning(pipeline, 2)
    latent = torch.zeros(1, 4, 8, 8)
    settings = dataclasses.replace(SETTINGS, cfg=1.0)
    plain = sample(model, positive, negative, latent, settings)
    on_negative = sample(
        model, positive, _with(negative, _Recorder(pipeline.unet.config, 3.0)), latent, settings
    )
    assert torch.equal(plain, on_negative)  # cfg 1 evaluates only the positive side
    on_positive = sample(
        model, _with(positive, _Recorder(pipeline.unet.config, 3.0)), negative, latent, settings
    )
    assert not torch.allclose(plain, on_positive)


def test_model_extras_apply_to_every_row_and_notices_reach_the_caller():
    pipeline, model = _setup()
    positive, negative = random_conditioning(pipeline, 1), random_conditioning(pipeline, 2)

    def extra(call: UnetCall) -> dict:
        call.notify("seen")
        assert call.entries[0] is negative[0] and call.entries[1] is positive[0]
        return {}

    notices: list[str] = []
    patched = dataclasses.replace(model, unet_extras=(extra,))
    sample(patched, positive, negative, torch.zeros(1, 4, 8, 8), SETTINGS, notices=notices)
    assert notices == ["seen"]


def test_merging_adds_tensors_and_tuples_and_refuses_other_clashes():
    merged = merge_unet_kwargs(
        {"a": torch.ones(2), "b": (torch.ones(1), torch.ones(1)), "c": {"d": torch.ones(1)}},
        {"a": torch.ones(2), "b": (torch.ones(1), torch.ones(1)), "c": {"d": torch.ones(1)}},
    )
    assert merged["a"].tolist() == [2.0, 2.0]
    assert [float(t) for t in merged["b"]] == [2.0, 2.0]
    assert float(merged["c"]["d"]) == 2.0
    # diffusers pops T2I-Adapter features off their list, so a list stays a list.
    listed = merge_unet_kwargs({"f": [torch.ones(1)]}, {"f": (torch.ones(1),)})
    assert isinstance(listed["f"], list) and float(listed["f"][0]) == 2.0
    with pytest.raises(ValueError, match="both set the UNet's e"):
        merge_unet_kwargs({"e": 1}, {"e": 2})


def test_extras_see_each_entrys_side_and_the_runs_seed():
    pipeline, model = _setup()
    positive, negative = random_conditioning(pipeline, 1), random_conditioning(pipeline, 2)
    seen: list[tuple[tuple[int, ...], int]] = []

    def extra(call: UnetCall) -> dict:
        seen.append((call.sides, call.seed))
        return {}

    patched = dataclasses.replace(model, unet_extras=(extra,))
    settings = dataclasses.replace(SETTINGS, seed=77)
    sample(patched, positive, negative, torch.zeros(1, 4, 8, 8), settings)
    assert seen and all(found == ((0, 1), 77) for found in seen)
    seen.clear()
    sample(
        patched, positive, negative, torch.zeros(1, 4, 8, 8), dataclasses.replace(settings, cfg=1)
    )
    assert seen and all(found == ((1,), 77) for found in seen)
