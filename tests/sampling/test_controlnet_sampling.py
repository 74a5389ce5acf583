"""ControlNets and T2I-Adapters in the sampler: the residuals reach the UNet only inside the
start/end window, inside the CFG batch and per conditioning entry, and match diffusers' own
ControlNet and adapter pipelines on the same weights and noise."""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Iterator
from typing import Any

import diffusers
import torch

from core.diffusion.conditioning import Area, combine, set_area
from core.diffusion.controlnet import ControlModel, apply_control
from core.diffusion.controlnet.apply import percent_to_sigma
from core.diffusion.samplers import NoiseLevels
from core.diffusion.sampling import SamplerSettings, sample, schedule_sigmas, seeded_noise
from tests.helpers.controlnets import make_tiny_adapter, make_tiny_controlnet
from tests.sampling.harness import (
    active,
    diffusers_pipeline,
    latent_psnr,
    model_of,
    random_conditioning,
)

SEED = 77
CFG = 5.0
LATENT = (1, 4, 8, 8)
PIXELS = LATENT[2] * 8  # hints are made at f = 8 pixels, the ControlNet's own factor
EULER = SamplerSettings("euler", "normal", 6, CFG, SEED)


@functools.cache
def _controls() -> tuple[ControlModel, ControlModel, ControlModel]:
    unet = active().unet
    first = ControlModel(
        make_tiny_controlnet(unet, seed=1, scale=0.1), "controlnet", None, _path("a")
    )
    second = ControlModel(
        make_tiny_controlnet(unet, seed=2, scale=0.1), "controlnet", None, _path("b")
    )
    adapter = ControlModel(make_tiny_adapter(unet, seed=3), "t2i_adapter", None, _path("c"))
    return first, second, adapter


def _path(name: str) -> Any:
    from pathlib import Path

    return Path(f"{name}.safetensors")


def _hint(seed: int = 5, size: int = PIXELS) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(1, size, size, 3, generator=generator)


@contextlib.contextmanager
def _recording(unet: torch.nn.Module) -> Iterator[list[dict[str, Any]]]:
    """Every UNet call's keyword arguments and output while the block runs."""
    calls: list[dict[str, Any]] = []

    def before(module, args, kwargs):
        calls.append({"args": args, **kwargs})

    def after(module, args, kwargs, output):
        calls[-1]["output"] = output[0].clone()

    handles = [
        unet.register_forward_pre_hook(before, with_kwargs=True),
        unet.register_forward_hook(after, with_kwargs=True),
    ]
    try:
        yield calls
    finally:
        for handle in handles:
            handle.remove()


def _run(positive, negative, settings=EULER, **options) -> torch.Tensor:
    return sample(model_of(active()), positive, negative, torch.zeros(LATENT), settings, **options)


def _prompts():
    pipeline = active()
    return random_conditioning(pipeline, 1), random_conditioning(pipeline, 2)


def _diffusers_latent(pipeline_class, pipeline, prompts, hint, control, scale):
    """What the diffusers pipeline ``pipeline_class`` makes of the same prompts, seed and Euler
    schedule with the hint, given its control model (``control``) and strength (``scale``)."""
    positive, negative = prompts
    base = diffusers_pipeline("txt2img", pipeline, "euler", "normal")
    pipe = pipeline_class(
        **{k: v for k, v in base.components.items() if k != "image_encoder"},
        **control,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    first = float(schedule_sigmas("euler", "normal", EULER.steps)[0])
    return pipe(
        prompt_embeds=positive[0].embeds,
        negative_prompt_embeds=negative[0].embeds,
        image=hint.permute(0, 3, 1, 2),
        height=PIXELS,
        width=PIXELS,
        num_inference_steps=EULER.steps,
        latents=seeded_noise(SEED, LATENT) * math.sqrt(1 + first * first) / first,
        guidance_scale=CFG,
        output_type="latent",
        **scale,
    ).images


def test_controlnet_matches_diffusers_controlnet_pipeline():
    pipeline = active()
    controlnet, *_ = _controls()
    positive, negative = _prompts()
    hint = _hint()
    pos, neg = apply_control((positive, negative), controlnet, hint, 0.8)
    ours = _run(pos, neg)
    plain = _run(positive, negative)
    reference = _diffusers_latent(
        diffusers.StableDiffusionControlNetPipeline,
        pipeline,
        (positive, negative),
        hint,
        {"controlnet": controlnet.module},
        {"controlnet_conditioning_scale": 0.8},
    )
    assert latent_psnr(ours, reference) >= 40.0
    assert latent_psnr(plain, reference) < 35.0  # the control matters at this bar


def test_t2i_adapter_matches_diffusers_adapter_pipeline():
    pipeline = active()
    *_, adapter = _controls()
    positive, negative = _prompts()
    hint = _hint(6)
    pos, neg = apply_control((positive, negative), adapter, hint, 0.7)
    ours = _run(pos, neg)
    reference = _diffusers_latent(
        diffusers.StableDiffusionAdapterPipeline,
        pipeline,
        (positive, negative),
        hint,
        {"adapter": adapter.module},
        {"adapter_conditioning_scale": 0.7},
    )
    assert latent_psnr(ours, reference) >= 40.0
    assert latent_psnr(_run(positive, negative), reference) < 35.0


def test_residuals_reach_the_unet_only_inside_the_start_end_window():
    controlnet, *_ = _controls()
    positive, negative = _prompts()
    settings = SamplerSettings("euler", "normal", 10, CFG, SEED)
    pos, neg = apply_control((positive, negative), controlnet, _hint(), 1.0, 0.3, 0.7)
    with _recording(active().unet) as calls:
        controlled = _run(pos, neg, settings)
    levels = NoiseLevels.from_config({})
    high, low = percent_to_sigma(0.3, levels), percent_to_sigma(0.7, levels)
    sigmas = [float(s) for s in schedule_sigmas("euler", "normal", 10)[:-1]]
    expected = [low <= s <= high for s in sigmas]
    got = ["down_block_additional_residuals" in call for call in calls]
    assert got == expected
    assert 0 < sum(got) < len(got)
    assert not torch.equal(controlled, _run(positive, negative, settings))


def test_strength_zero_is_exactly_no_controlnet():
    controlnet, *_ = _controls()
    positive, negative = _prompts()
    pos, neg = apply_control((positive, negative), controlnet, _hint(), 0.0)
    assert pos is positive and neg is negative
    assert torch.equal(_run(pos, neg), _run(positive, negative))


def test_two_stacked_controlnets_give_the_sum_of_their_residuals():
    first, second, _ = _controls()
    positive, negative = _prompts()

    def residuals(*controls: ControlModel) -> list[torch.Tensor]:
        pos, neg = positive, negative
        for control in controls:
            hint = _hint(10 if control is first else 11)
            pos, neg = apply_control((pos, neg), control, hint, 0.9)
        with _recording(active().unet) as calls:
            _run(pos, neg, SamplerSettings("euler", "normal", 1, CFG, SEED))
        kwargs = calls[0]
        return [*kwargs["down_block_additional_residuals"], kwargs["mid_block_additional_residual"]]

    both = residuals(first, second)
    alone = [a + b for a, b in zip(residuals(first), residuals(second), strict=True)]
    assert all(torch.allclose(s, t, atol=1e-6) for s, t in zip(both, alone, strict=True))
    assert not torch.allclose(both[-1], residuals(first)[-1])


def test_control_on_the_positive_prompt_leaves_the_negative_branch_unchanged():
    controlnet, *_ = _controls()
    positive, negative = _prompts()
    (pos,) = apply_control((positive,), controlnet, _hint(), 1.0)
    settings = SamplerSettings("euler", "normal", 1, CFG, SEED)
    with _recording(active().unet) as controlled:
        _run(pos, negative, settings)
    with _recording(active().unet) as plain:
        _run(positive, negative, settings)
    rows = LATENT[0]  # negative rows come first in the CFG batch
    assert torch.equal(controlled[0]["output"][:rows], plain[0]["output"][:rows])
    assert not torch.allclose(controlled[0]["output"][rows:], plain[0]["output"][rows:])
    residual = controlled[0]["mid_block_additional_residual"]
    assert torch.count_nonzero(residual[:rows]) == 0 and torch.count_nonzero(residual[rows:]) > 0


def test_area_conditioning_gets_the_hint_of_its_area():
    controlnet, *_ = _controls()
    positive, negative = _prompts()
    area = set_area(positive, Area(x=0, y=0, width=PIXELS // 2, height=PIXELS))
    (pos,) = apply_control((area,), controlnet, _hint(), 1.0)
    seen: list[torch.Tensor] = []
    module = controlnet.module

    def before(_, args, kwargs):
        seen.append(kwargs["controlnet_cond"])

    handle = module.register_forward_pre_hook(before, with_kwargs=True)
    try:
        with _recording(active().unet) as calls:
            _run(pos, negative, SamplerSettings("euler", "normal", 1, CFG, SEED))
    finally:
        handle.remove()
    crop = _hint().permute(0, 3, 1, 2)[:, :, :, : PIXELS // 2]
    assert len(seen) == 1 and torch.equal(seen[0], crop)
    narrow = [c for c in calls if c["args"][0].shape[-1] == LATENT[3] // 2]
    assert len(narrow) == 1 and "down_block_additional_residuals" in narrow[0]


def test_a_hint_of_another_size_is_resized_with_a_notice():
    controlnet, *_ = _controls()
    positive, negative = _prompts()
    pos, neg = apply_control((positive, negative), controlnet, _hint(size=40), 1.0)
    notices: list[str] = []
    _run(pos, neg, notices=notices)
    assert notices == [
        f"The hint for a.safetensors is 40×40 pixels; it was resized to the picture's "
        f"{PIXELS}×{PIXELS}."
    ]


def test_an_adapter_runs_once_per_area_not_once_per_step():
    *_, adapter = _controls()
    positive, negative = _prompts()
    area = set_area(positive, Area(x=0, y=0, width=PIXELS // 2, height=PIXELS))
    (pos,) = apply_control((combine(positive, area),), adapter, _hint(), 1.0)
    runs: list[tuple[int, ...]] = []
    handle = adapter.module.register_forward_pre_hook(lambda _, args: runs.append(args[0].shape))
    try:
        _run(pos, negative)
    finally:
        handle.remove()
    assert sorted(shape[-1] for shape in runs) == [PIXELS // 2, PIXELS]  # 6 steps, two areas
