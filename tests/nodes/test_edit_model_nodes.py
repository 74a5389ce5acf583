"""InstructPixToPixConditioning and 8-channel (instruction-editing) UNets: the picture's latent
rides with each conditioning and reaches the UNet beside the noisy latent, zeros for a
context without one; CosXL-style (EDM) models get it scaled. A tiny random SD 1.x
InstructPix2Pix model is written as an LDM single file and run through the engine."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from diffusers import UNet2DConditionModel

from core.diffusion import vae_ops
from core.diffusion.conditioning import Conditioning, set_concat_latent
from core.diffusion.families import ModelFamily, PredictionType
from core.diffusion.model_paths import ModelPaths
from core.diffusion.sampling import SamplerSettings, sample
from core.engine import Executor
from core.graph.model import Graph
from nodes import build_registry
from tests.helpers.tiny_models import (
    _randomise,
    make_tiny_pipeline,
    tiny_unet_config,
    write_single_file,
)
from tests.sampling.harness import model_of, random_conditioning, vae_of

LATENT = (1, 4, 8, 8)


@pytest.fixture(scope="module")
def pipeline():
    base = make_tiny_pipeline(ModelFamily.SD1, seed=2)
    config = tiny_unet_config(ModelFamily.SD1, 32, inpainting=False)
    unet = UNet2DConditionModel.from_config({**config, "in_channels": 8})
    _randomise(unet, torch.Generator().manual_seed(5))
    return dataclasses.replace(base, unet=unet.eval())


def _unet_inputs(model, positive, negative, cfg: float = 3.0) -> list[torch.Tensor]:
    seen: list[torch.Tensor] = []
    handle = model.unet.register_forward_pre_hook(lambda m, args: seen.append(args[0].clone()))
    try:
        sample(
            model,
            positive,
            negative,
            torch.zeros(LATENT),
            SamplerSettings("euler", steps=2, cfg=cfg),
        )
    finally:
        handle.remove()
    return seen


def test_each_context_brings_its_picture_and_one_without_gets_zeros(pipeline):
    model = model_of(pipeline)
    picture = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    positive = set_concat_latent(random_conditioning(pipeline, 1), picture)
    negative = random_conditioning(pipeline, 2)
    (first, *_) = _unet_inputs(model, positive, negative)
    # CFG batches the negative (row 0) and the positive (row 1) into one call.
    assert first.shape == (2, 8, 8, 8)
    assert torch.equal(first[0, 4:], torch.zeros(4, 8, 8))
    torch.testing.assert_close(first[1, 4:], picture[0])
    # A continuous-time (EDM) edit model, such as CosXL Edit, takes the scaled latent.
    edm = model.with_model_sampling(
        PredictionType.V_PREDICTION, model_sampling="edm", sigma_min=0.002, sigma_max=120.0
    )
    (first, *_) = _unet_inputs(edm, positive, negative)
    torch.testing.assert_close(first[1, 4:], picture[0] * 0.18215)


def test_a_picture_of_another_size_is_resized_to_the_latent(pipeline):
    model = model_of(pipeline)
    picture = torch.ones(1, 4, 16, 16)
    positive = set_concat_latent(random_conditioning(pipeline, 1), picture)
    (first, *_) = _unet_inputs(model, positive, positive, cfg=1.0)
    torch.testing.assert_close(first[0, 4:], torch.ones(4, 8, 8))
    wrong = set_concat_latent(positive, torch.ones(1, 3, 8, 8))
    with pytest.raises(ValueError, match="4-channel picture latent"):
        _unet_inputs(model, wrong, wrong)


def test_the_node_encodes_the_picture_into_both_prompts_and_the_sampler_runs(pipeline, tmp_path):
    write_single_file(pipeline, tmp_path / "checkpoints" / "ip2p.safetensors")
    registry = build_registry(ModelPaths.of(tmp_path))
    g = Graph(registry)
    ckpt = g.add_node("LoadCheckpoint", params={"ckpt_name": "ip2p.safetensors"}).id
    prompt = g.add_node("CLIPTextEncode", params={"text": "make it winter"}).id
    negative = g.add_node("CLIPTextEncode", params={"text": ""}).id
    picture = g.add_node("GradientImage", params={"width": 32, "height": 16}).id
    edit = g.add_node("InstructPixToPixConditioning").id
    sampler = g.add_node("KSampler", params={"steps": 2, "cfg": 2.0}).id
    for source, out, target, inp in (
        (ckpt, "CLIP", prompt, "clip"),
        (ckpt, "CLIP", negative, "clip"),
        (prompt, "CONDITIONING", edit, "positive"),
        (negative, "CONDITIONING", edit, "negative"),
        (ckpt, "VAE", edit, "vae"),
        (picture, "IMAGE", edit, "pixels"),
        (ckpt, "MODEL", sampler, "model"),
        (edit, "positive", sampler, "positive"),
        (edit, "negative", sampler, "negative"),
        (edit, "latent", sampler, "latent_image"),
    ):
        g.connect(source, out, target, inp)
    report = Executor(registry).run(g, outputs=[edit, picture, sampler], device="cpu")
    assert report.status == "ok", report.to_dict()
    positive, negative_out, latent = report.outputs[edit]
    expected = vae_ops.encode(vae_of(pipeline), report.outputs[picture][0]) / 0.18215
    for conditioning in (positive, negative_out):
        assert isinstance(conditioning, Conditioning)
        torch.testing.assert_close(
            conditioning[0].options.concat_latent, expected, atol=1e-3, rtol=1e-3
        )
    assert latent["samples"].shape == (1, 4, 8, 16) and not latent["samples"].any()
    samples = report.outputs[sampler][0]["samples"]
    assert samples.shape == (1, 4, 8, 16) and torch.isfinite(samples).all()
