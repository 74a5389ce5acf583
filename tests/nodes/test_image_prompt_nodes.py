"""Load CLIP Vision, CLIP Vision Encode, unCLIP Checkpoint Loader and unCLIP Conditioning,
run through the engine on tiny random models written in the published key layouts."""

from __future__ import annotations

import pytest
import torch

from core.diffusion.clip_vision import encode_images, load_clip_vision
from core.diffusion.families import ModelFamily
from core.engine import Executor
from core.engine.cache import MODEL_POOL
from core.graph.model import Graph
from tests.helpers.image_prompts import (
    make_tiny_unclip,
    tiny_clip_vision,
    write_clip_vision_file,
    write_unclip_checkpoint,
)
from tests.helpers.tiny_models import make_tiny_pipeline, write_single_file


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    models = tmp_path_factory.mktemp("image_prompts") / "models"
    write_clip_vision_file(tiny_clip_vision(seed=4), models / "clip_vision" / "vit-h.safetensors")
    write_unclip_checkpoint(make_tiny_unclip(seed=1), models / "checkpoints" / "sd21-unclip-h.ckpt")
    write_single_file(make_tiny_pipeline(ModelFamily.SD2), models / "checkpoints" / "v2-1.ckpt")
    return models


def _encode_graph(registry, crop: str):
    g = Graph(registry)
    picture = g.add_node("GradientImage", params={"width": 48, "height": 24}).id
    loader = g.add_node("CLIPVisionLoader", params={"clip_name": "vit-h.safetensors"}).id
    encode = g.add_node("CLIPVisionEncode", params={"crop": crop}).id
    g.connect(loader, "CLIP_VISION", encode, "clip_vision")
    g.connect(picture, "IMAGE", encode, "image")
    return g, picture, loader, encode


def test_clip_vision_encode_gives_the_encoders_embeddings_for_each_crop(registry, root):
    executor = Executor(registry)
    outputs = {}
    for crop in ("center", "none"):
        g, picture, loader, encode = _encode_graph(registry, crop)
        report = executor.run(g, outputs=[encode, picture, loader], device="cpu")
        assert report.status == "ok", report.to_dict()
        (output,) = report.outputs[encode]
        encoder = load_clip_vision(root / "clip_vision" / "vit-h.safetensors")
        expected = encode_images(encoder, report.outputs[picture][0], crop)  # type: ignore[arg-type]
        assert torch.allclose(output.image_embeds, expected.image_embeds, atol=1e-5)
        assert output.penultimate_hidden_states.shape == (1, 17, 32)
        outputs[crop] = output.image_embeds
        (model,) = report.outputs[loader]
        assert executor.cache.used_bytes(MODEL_POOL) >= model.cache_nbytes()
    assert not torch.equal(outputs["center"], outputs["none"])  # the crop reaches the encoder


def _unclip_graph(registry, strength: float, ckpt: str = "sd21-unclip-h.ckpt"):
    g = Graph(registry)
    loader = g.add_node("unCLIPCheckpointLoader", params={"ckpt_name": ckpt}).id
    picture = g.add_node("GradientImage", params={"width": 32, "height": 32}).id
    encode = g.add_node("CLIPVisionEncode", params={"crop": "center"}).id
    g.connect(loader, "CLIP_VISION", encode, "clip_vision")
    g.connect(picture, "IMAGE", encode, "image")
    positive = g.add_node("CLIPTextEncode", params={"text": ""}).id
    negative = g.add_node("CLIPTextEncode", params={"text": "blurry"}).id
    for node in (positive, negative):
        g.connect(loader, "CLIP", node, "clip")
    unclip = g.add_node(
        "unCLIPConditioning", params={"strength": strength, "noise_augmentation": 0.1}
    ).id
    g.connect(positive, "CONDITIONING", unclip, "conditioning")
    g.connect(encode, "CLIP_VISION_OUTPUT", unclip, "clip_vision_output")
    latent = g.add_node("EmptyLatentImage", params={"width": 16, "height": 16}).id
    g.connect(loader, "VAE", latent, "vae")
    sampler = g.add_node("KSampler", params={"steps": 2, "cfg": 3.0, "seed": 3}).id
    g.connect(loader, "MODEL", sampler, "model")
    g.connect(unclip, "CONDITIONING", sampler, "positive")
    g.connect(negative, "CONDITIONING", sampler, "negative")
    g.connect(latent, "LATENT", sampler, "latent_image")
    return g, sampler


def test_an_unclip_model_samples_variations_of_the_picture(registry):
    """The picture changes the result; strength 0 leaves the prompt alone, as no picture."""
    executor = Executor(registry)
    results = {}
    for strength in (1.0, 0.0):
        g, sampler = _unclip_graph(registry, strength)
        report = executor.run(g, outputs=[sampler], device="cpu")
        assert report.status == "ok", report.to_dict()
        results[strength] = report.outputs[sampler][0]["samples"]
    assert torch.isfinite(results[1.0]).all()
    assert not torch.allclose(results[1.0], results[0.0])


def test_a_checkpoint_without_the_image_input_is_refused_on_its_field(registry):
    g, sampler = _unclip_graph(registry, 1.0, ckpt="v2-1.ckpt")
    report = Executor(registry).run(g, outputs=[sampler], device="cpu")
    failed = [e for e in report.entries.values() if e.status == "failed"]
    assert len(failed) == 1
    assert "not an unCLIP checkpoint" in failed[0].message
    assert "v2-1.ckpt" in failed[0].message
