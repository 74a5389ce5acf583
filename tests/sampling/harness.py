"""Shared pieces of the sampling tests: tiny models wrapped as node values, the diffusers
pipelines built from the same modules, and the image comparison."""

from __future__ import annotations

import copy
import dataclasses
import functools
import inspect
import itertools
import math
from typing import Any

import torch

from core.diffusion.conditioning import Conditioning, ConditioningEntry
from core.diffusion.families import FAMILY_TRAITS, ModelFamily, PredictionType
from core.diffusion.models import DiffusionModel, VaeModel
from core.diffusion.resources import CLIP_TOKENIZER
from core.diffusion.sampling import step_seed
from core.diffusion.schedulers import scheduler_config
from tests.helpers.tiny_models import TinyPipeline, make_tiny_pipeline


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Peak signal-to-noise ratio of two images in 0..1, in dB (inf when identical)."""
    mse = float(((a.float() - b.float()) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


@functools.cache
def tiny(
    family: ModelFamily = ModelFamily.SD1,
    inpainting: bool = False,
    prediction: PredictionType = PredictionType.EPSILON,
) -> TinyPipeline:
    return make_tiny_pipeline(family, inpainting=inpainting, prediction=prediction, seed=3)


def latent_psnr(ours: torch.Tensor, reference: torch.Tensor) -> float:
    """PSNR of two latents in dB, the reference's range as the peak (inf when identical)."""
    mse = float(((ours.float() - reference.float()) ** 2).mean())
    peak = float(reference.max() - reference.min())
    return math.inf if mse == 0 else 10 * math.log10(peak * peak / mse)


@functools.cache
def active(
    family: ModelFamily = ModelFamily.SD1,
    inpainting: bool = False,
    prediction: PredictionType = PredictionType.EPSILON,
) -> TinyPipeline:
    """``tiny()`` with its UNet's output layer scaled ×30, so its predictions have unit scale
    like a trained model's: samplers then differ visibly (Euler against Heun, 4 steps: about
    36 dB), which the tiny model's near-zero outputs hide (about 71 dB)."""
    pipeline = tiny(family, inpainting, prediction)
    unet = copy.deepcopy(pipeline.unet)
    with torch.no_grad():
        unet.conv_out.weight.mul_(30.0)
        unet.conv_out.bias.mul_(30.0)
    return dataclasses.replace(pipeline, unet=unet)


def model_of(pipeline: TinyPipeline) -> DiffusionModel:
    config = {"prediction_type": str(pipeline.prediction)}
    return DiffusionModel(pipeline.unet, pipeline.family, pipeline.prediction, config)


def vae_of(pipeline: TinyPipeline) -> VaeModel:
    return VaeModel(pipeline.vae, FAMILY_TRAITS[pipeline.family].vae_scaling_factor)


def context_width(pipeline: TinyPipeline) -> int:
    return int(pipeline.unet.config.cross_attention_dim)


def random_conditioning(pipeline: TinyPipeline, seed: int, tokens: int = 77) -> Conditioning:
    """A one-entry CONDITIONING of random embeddings (text encoding is tested elsewhere)."""
    generator = torch.Generator().manual_seed(seed)
    embeds = torch.randn(1, tokens, context_width(pipeline), generator=generator)
    pooled = None
    if pipeline.family is ModelFamily.SDXL:
        pooled = torch.randn(
            1, int(pipeline.text_encoders[1].config.projection_dim), generator=generator
        )
    return Conditioning((ConditioningEntry(embeds, pooled),))


def reseed_steps(scheduler: Any, seed: int, first: int = 0, calls_per_step: int = 1) -> Any:
    """Make a diffusers scheduler draw each step's noise as LatentLoom's samplers do.

    LatentLoom draws the noise of the step that starts at level k of the schedule from
    ``step_seed(seed, k)``; wrapping ``step`` re-seeds the generator the pipeline passes in
    before call c, which belongs to step ``first + c // calls_per_step``.
    """
    original = scheduler.step
    if "generator" not in inspect.signature(original).parameters:
        return scheduler
    calls = itertools.count(0)

    def step(model_output, timestep, sample, generator=None, return_dict=True, **kwargs):
        call = next(calls)
        if generator is not None:
            generator.manual_seed(step_seed(seed, first + call // calls_per_step))
        return original(
            model_output, timestep, sample, generator=generator, return_dict=return_dict, **kwargs
        )

    step.__signature__ = inspect.signature(original)  # type: ignore[attr-defined]
    scheduler.step = step
    return scheduler


#: diffusers schedulers whose samples are variance preserving: x_vp = x/√(1+σ²).
VP_SCHEDULERS = {
    "DDIMScheduler",
    "DDPMScheduler",
    "DPMSolverMultistepScheduler",
    "UniPCMultistepScheduler",
    "DEISMultistepScheduler",
    "LCMScheduler",
}


def diffusers_pipeline(
    kind: str,
    pipeline: TinyPipeline,
    sampler: str,
    schedule: str,
    **options: Any,
) -> Any:
    """A diffusers pipeline of ``kind`` over ``pipeline``'s modules with the reference
    scheduler of ``sampler`` (``options`` override its config)."""
    import diffusers
    from transformers import CLIPTokenizer

    reference, config = scheduler_config(
        sampler, schedule, {"prediction_type": str(pipeline.prediction)}
    )
    scheduler = getattr(diffusers, reference.class_name).from_config({**config, **options})
    tokenizer = CLIPTokenizer.from_pretrained(str(CLIP_TOKENIZER))
    if pipeline.family is ModelFamily.SDXL:
        cls = {
            "txt2img": diffusers.StableDiffusionXLPipeline,
            "img2img": diffusers.StableDiffusionXLImg2ImgPipeline,
            "inpaint": diffusers.StableDiffusionXLInpaintPipeline,
        }[kind]
        pipe = cls(
            vae=pipeline.vae,
            text_encoder=pipeline.text_encoders[0],
            text_encoder_2=pipeline.text_encoders[1],
            tokenizer=tokenizer,
            tokenizer_2=tokenizer,
            unet=pipeline.unet,
            scheduler=scheduler,
        )
    else:
        cls = {
            "txt2img": diffusers.StableDiffusionPipeline,
            "img2img": diffusers.StableDiffusionImg2ImgPipeline,
            "inpaint": diffusers.StableDiffusionInpaintPipeline,
        }[kind]
        pipe = cls(
            vae=pipeline.vae,
            text_encoder=pipeline.text_encoders[0],
            tokenizer=tokenizer,
            unet=pipeline.unet,
            scheduler=scheduler,
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
    pipe.set_progress_bar_config(disable=True)
    return pipe
