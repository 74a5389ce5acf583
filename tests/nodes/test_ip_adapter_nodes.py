"""IPAdapter Model Loader and IPAdapter Apply, run through the engine: a tiny SD 1.5 checkpoint,
a tiny CLIP image encoder and tiny adapters written in the published key layouts."""

from __future__ import annotations

import pytest
import torch

from core.diffusion.families import ModelFamily
from core.engine.errors import ValidationError
from core.graph.model import Graph
from tests.helpers.image_prompts import tiny_clip_vision, write_clip_vision_file
from tests.helpers.ip_adapters import ip_adapter_tensors, write_ip_adapter
from tests.helpers.tiny_models import make_tiny_pipeline, write_single_file


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    models = tmp_path_factory.mktemp("ip_adapter") / "models"
    sd15 = make_tiny_pipeline(ModelFamily.SD1, seed=2)
    write_single_file(sd15, models / "checkpoints" / "sd15.safetensors")
    write_clip_vision_file(tiny_clip_vision(seed=4), models / "clip_vision" / "vit-h.safetensors")
    folder = models / "ipadapter"
    write_ip_adapter(
        ip_adapter_tensors(sd15.unet, "plain", 24, seed=1), folder / "plain.safetensors"
    )
    plus = ip_adapter_tensors(sd15.unet, "plus", 32, tokens=8, seed=2)
    write_ip_adapter(plus, folder / "plus.bin")
    xl = make_tiny_pipeline(ModelFamily.SDXL)
    write_single_file(xl, models / "checkpoints" / "sdxl.safetensors")
    write_ip_adapter(ip_adapter_tensors(xl.unet, "plain", 24), folder / "sdxl.safetensors")
    xl_plus = ip_adapter_tensors(xl.unet, "plus", 32, tokens=8, seed=3)
    write_ip_adapter(xl_plus, folder / "sdxl-plus.safetensors")
    return models


def _graph(registry, adapters=(), *, seed=3, ckpt="sd15.safetensors"):
    """Checkpoint → (IPAdapter Apply per ``adapters`` entry) → KSampler."""
    g = Graph(registry)
    checkpoint = g.add_node("LoadCheckpoint", params={"ckpt_name": ckpt}).id
    vision = g.add_node("CLIPVisionLoader", params={"clip_name": "vit-h.safetensors"}).id
    model_from, model_output = checkpoint, "MODEL"
    applies = []
    for index, (file, params) in enumerate(adapters):
        loader = g.add_node("IPAdapterModelLoader", params={"ipadapter_file": file}).id
        picture = g.add_node("GradientImage", params={"width": 40, "height": 32 + 8 * index}).id
        apply = g.add_node("IPAdapterApply", params=params).id
        g.connect(model_from, model_output, apply, "model")
        g.connect(loader, "IPADAPTER", apply, "ipadapter")
        g.connect(vision, "CLIP_VISION", apply, "clip_vision")
        g.connect(picture, "IMAGE", apply, "image")
        model_from, model_output = apply, "MODEL"
        applies.append(apply)
    positive = g.add_node("CLIPTextEncode", params={"text": "a red circle"}).id
    negative = g.add_node("CLIPTextEncode", params={"text": ""}).id
    for node in (positive, negative):
        g.connect(checkpoint, "CLIP", node, "clip")
    latent = g.add_node("EmptyLatentImage", params={"width": 32, "height": 32}).id
    g.connect(checkpoint, "VAE", latent, "vae")
    sampler = g.add_node(
        "KSampler", params={"steps": 4, "cfg": 4.0, "seed": seed, "sampler_name": "euler"}
    ).id
    g.connect(model_from, model_output, sampler, "model")
    g.connect(positive, "CONDITIONING", sampler, "positive")
    g.connect(negative, "CONDITIONING", sampler, "negative")
    g.connect(latent, "LATENT", sampler, "latent_image")
    return g, sampler, applies


def _sample(executor, adapters=(), ckpt="sd15.safetensors"):
    g, sampler, _ = _graph(executor.registry, adapters, ckpt=ckpt)
    report = executor.run(g, outputs=[sampler], device="cpu")
    assert report.status == "ok", report.to_dict()
    return report.outputs[sampler][0]["samples"]


@pytest.fixture(scope="module")
def plain_result(executor):
    return _sample(executor)


@pytest.mark.parametrize("file", ["plain.safetensors", "plus.bin"])
def test_a_picture_prompt_changes_the_result_and_weight_zero_does_not(executor, plain_result, file):
    full = _sample(executor, [(file, {"weight": 1.0})])
    muted = _sample(executor, [(file, {"weight": 0.0})])
    assert torch.isfinite(full).all()
    assert (full - plain_result).abs().max() > 1e-3
    assert torch.equal(muted, plain_result)


def test_the_start_end_window_is_honoured(executor, plain_result):
    full = _sample(executor, [("plain.safetensors", {"weight": 1.0})])
    never = _sample(executor, [("plain.safetensors", {"start_at": 1.0, "end_at": 1.0})])
    late = _sample(executor, [("plain.safetensors", {"start_at": 0.5, "end_at": 1.0})])
    assert torch.equal(never, plain_result)  # no step lies in the window
    assert not torch.allclose(late, plain_result, atol=1e-5)
    assert not torch.allclose(late, full, atol=1e-5)


def test_two_adapters_stack(executor):
    plain = ("plain.safetensors", {"weight": 0.8})
    plus = ("plus.bin", {"weight": 0.6})
    both = _sample(executor, [plain, plus])
    assert not torch.allclose(both, _sample(executor, [plain]), atol=1e-5)
    assert not torch.allclose(both, _sample(executor, [plus]), atol=1e-5)


def test_an_adapter_for_another_family_fails_on_its_input(executor, registry):
    g, sampler, _ = _graph(registry, [("sdxl.safetensors", {"weight": 1.0})])
    report = executor.run(g, outputs=[sampler], device="cpu")
    failed = [e for e in report.entries.values() if e.status == "failed"]
    assert len(failed) == 1
    assert "sdxl.safetensors" in failed[0].message and "96-wide" in failed[0].message
    assert failed[0].field == "ipadapter"


def test_start_after_end_is_reported_before_running(executor, registry):
    g, sampler, _ = _graph(registry, [("plain.safetensors", {"start_at": 0.8, "end_at": 0.2})])
    with pytest.raises(ValidationError) as caught:
        executor.run(g, outputs=[sampler], device="cpu")
    (problem,) = caught.value.problems
    assert "start_at (0.8) is after end_at (0.2)" in problem.message


def test_comfyui_ipadapter_pack_nodes_import_as_ipadapter_apply(registry):
    from nodes.interop.comfyui import import_api

    prompt = {
        "1": {"class_type": "IPAdapterModelLoader", "inputs": {"ipadapter_file": "plus.bin"}},
        "2": {"class_type": "CLIPVisionLoader", "inputs": {"clip_name": "vit-h.safetensors"}},
        "3": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd15.safetensors"}},
        "4": {
            "class_type": "EmptyImage",
            "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0},
        },
        "5": {
            "class_type": "IPAdapterAdvanced",
            "inputs": {
                "model": ["3", 0],
                "ipadapter": ["1", 0],
                "image": ["4", 0],
                "clip_vision": ["2", 0],
                "weight": 0.7,
                "weight_type": "linear",
                "combine_embeds": "concat",
                "start_at": 0.1,
                "end_at": 0.9,
                "embeds_scaling": "V only",
            },
        },
    }
    workflow, report = import_api(prompt, registry)
    graph = workflow.graph
    apply = graph.node(5)
    assert report.unknown == ()
    assert apply.type_id == "IPAdapterApply"
    assert {k: apply.params[k] for k in ("weight", "start_at", "end_at", "weight_type")} == {
        "weight": 0.7,
        "start_at": 0.1,
        "end_at": 0.9,
        "weight_type": "linear",
    }
    assert {(link.src, link.dst_input) for link in graph.links_of(5)} == {
        (3, "model"),
        (1, "ipadapter"),
        (4, "image"),
        (2, "clip_vision"),
    }
    assert graph.node(1).params["ipadapter_file"] == "plus.bin"


def _encoded_graph(registry, file, link_encoder):
    """The first adapter of ``_graph`` fed by CLIP Vision Encode through the encoded route."""
    g, sampler, (apply,) = _graph(registry, [(file, {"weight": 0.9})])
    links = {link.dst_input: link for link in g.links_of(apply) if link.dst == apply}
    encoded = g.add_node("IPAdapterApplyEncoded", params={"weight": 0.9}).id
    encode = g.add_node("CLIPVisionEncode", params={"crop": "center"}).id
    vision, picture = links["clip_vision"], links["image"]
    g.connect(vision.src, vision.src_output, encode, "clip_vision")
    g.connect(picture.src, picture.src_output, encode, "image")
    g.connect(encode, "CLIP_VISION_OUTPUT", encoded, "clip_vision_output")
    if link_encoder:
        g.connect(vision.src, vision.src_output, encoded, "clip_vision")
    for name in ("model", "ipadapter"):
        g.connect(links[name].src, links[name].src_output, encoded, name)
    g.remove_node(apply)
    g.connect(encoded, "MODEL", sampler, "model")
    return g, sampler


@pytest.mark.parametrize("file", ["plain.safetensors", "plus.bin"])
def test_the_encoded_route_gives_what_the_picture_route_gives(executor, registry, file):
    g, sampler = _encoded_graph(registry, file, link_encoder=True)
    report = executor.run(g, outputs=[sampler], device="cpu")
    assert report.status == "ok", report.to_dict()
    expected = _sample(executor, [(file, {"weight": 0.9})])
    assert torch.equal(report.outputs[sampler][0]["samples"], expected)


def test_a_plus_adapter_on_the_encoded_route_asks_for_its_encoder(executor, registry):
    g, sampler = _encoded_graph(registry, "plus.bin", link_encoder=False)
    report = executor.run(g, outputs=[sampler], device="cpu")
    (failed,) = [e for e in report.entries.values() if e.status == "failed"]
    assert failed.field == "clip_vision" and "plus.bin is a plus adapter" in failed.message


@pytest.mark.parametrize("cache_first", [True, False])
def test_the_picture_survives_a_feature_cache_before_or_after_it(executor, registry, cache_first):
    """With one full pass every step the Feature Cache wrapper changes nothing, so the result
    is exactly the adapter's alone, whichever of the two wraps the other."""
    adapter = ("plus.bin", {"weight": 0.9})
    g, sampler, (apply,) = _graph(registry, [adapter])
    cache = g.add_node("FeatureCache", params={"cache_interval": 1}).id
    (feed,) = [lk for lk in g.links_of(apply) if lk.dst == apply and lk.dst_input == "model"]
    if cache_first:
        g.disconnect(apply, "model")
        g.connect(feed.src, feed.src_output, cache, "model")
        g.connect(cache, "MODEL", apply, "model")
    else:
        g.disconnect(sampler, "model")
        g.connect(apply, "MODEL", cache, "model")
        g.connect(cache, "MODEL", sampler, "model")
    report = executor.run(g, outputs=[sampler], device="cpu")
    assert report.status == "ok", report.to_dict()
    assert torch.equal(report.outputs[sampler][0]["samples"], _sample(executor, [adapter]))


@pytest.mark.parametrize("file", ["sdxl.safetensors", "sdxl-plus.safetensors"])
def test_sdxl_adapters_steer_an_sdxl_model(executor, file):
    """The image tokens travel beside SDXL's pooled text and size conditioning."""
    plain = _sample(executor, ckpt="sdxl.safetensors")
    full = _sample(executor, [(file, {"weight": 1.0})], ckpt="sdxl.safetensors")
    muted = _sample(executor, [(file, {"weight": 0.0})], ckpt="sdxl.safetensors")
    assert torch.isfinite(full).all() and (full - plain).abs().max() > 1e-3
    assert torch.equal(muted, plain)


def test_the_original_weight_type_of_older_workflows_is_the_linear_one(executor):
    from nodes.interop.comfyui import import_api

    linear = _sample(executor, [("plain.safetensors", {"weight": 0.7})])
    original = _sample(
        executor, [("plain.safetensors", {"weight": 0.7, "weight_type": "original"})]
    )
    assert torch.equal(original, linear)
    v1 = {
        "1": {
            "class_type": "IPAdapterApply",
            "inputs": {
                "weight": 0.7,
                "noise": 0.0,
                "weight_type": "original",
                "start_at": 0.0,
                "end_at": 1.0,
                "unfold_batch": False,
            },
        }
    }
    workflow, report = import_api(v1, executor.registry)
    assert report.unknown == ()
    assert workflow.graph.node(1).params["weight_type"] == "original"


def _masked(executor, mask_node, params):
    """The plain adapter at weight 1 through ``mask_node`` (type, params) as its mask."""
    g, sampler, (apply,) = _graph(executor.registry, [("plain.safetensors", {"weight": 1.0})])
    mask = g.add_node(mask_node, params=params).id
    if mask_node == "ImageToMask":
        picture = g.add_node(
            "GradientImage",
            params={"width": 32, "height": 32, "direction": "horizontal"},
        ).id
        g.connect(picture, "IMAGE", mask, "image")
    g.connect(mask, "MASK", apply, "attn_mask")
    report = executor.run(g, outputs=[sampler], device="cpu")
    assert report.status == "ok", report.to_dict()
    return report.outputs[sampler][0]["samples"]


def test_an_attention_mask_keeps_the_picture_to_its_region(executor, plain_result):
    full = _sample(executor, [("plain.safetensors", {"weight": 1.0})])
    everywhere = _masked(executor, "SolidMask", {"value": 1.0, "width": 32, "height": 32})
    nowhere = _masked(executor, "SolidMask", {"value": 0.0, "width": 32, "height": 32})
    gradient = _masked(executor, "ImageToMask", {"channel": "red"})
    assert torch.equal(everywhere, full)
    assert torch.equal(nowhere, plain_result)
    assert not torch.allclose(gradient, full, atol=1e-5)
    assert not torch.allclose(gradient, plain_result, atol=1e-5)


def test_the_ipadapter_packs_attention_mask_link_imports(executor):
    from nodes.interop.comfyui import import_api

    prompt = {
        "1": {"class_type": "SolidMask", "inputs": {"value": 1.0, "width": 64, "height": 64}},
        "2": {
            "class_type": "IPAdapter",
            "inputs": {
                "attn_mask": ["1", 0],
                "weight": 0.5,
                "start_at": 0.0,
                "end_at": 0.8,
                "weight_type": "linear",
            },
        },
    }
    workflow, report = import_api(prompt, executor.registry)
    assert report.unknown == ()
    (link,) = workflow.graph.links_of(2)
    assert (link.src, link.dst_input) == (1, "attn_mask")
    assert workflow.graph.node(2).params["end_at"] == 0.8
