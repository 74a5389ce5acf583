"""Picture sizes that are not whole latent cells are refused, never rounded down."""

from __future__ import annotations

import pytest

from core.engine import Executor, validate
from core.graph.model import Graph
from nodes import build_registry


@pytest.fixture(scope="module")
def registry():
    return build_registry()


@pytest.mark.parametrize("type_id", ["EmptyLatentImage", "LatentNoise", "LatentUpscale"])
def test_sizes_off_the_latent_grid_are_problems_pinned_to_their_field(registry, type_id):
    graph = Graph(registry)
    node = graph.add_node(type_id, params={"width": 17, "height": 23}).id
    problems = {(p.node_id, p.field): p.message for p in validate(graph, outputs=[node])}
    assert "17 is not a multiple of 8 (use 16 or 24)" in problems[(node, "width")]
    assert "23 is not a multiple of 8 (use 16 or 24)" in problems[(node, "height")]


def test_sizes_on_the_grid_and_zero_for_upscale_are_accepted(registry):
    graph = Graph(registry)
    empty = graph.add_node("EmptyLatentImage", params={"width": 64, "height": 24}).id
    up = graph.add_node("LatentUpscale", params={"width": 0, "height": 128}).id
    graph.connect(empty, "LATENT", up, "samples")
    assert validate(graph, outputs=[up]) == []


def test_a_linked_size_off_the_grid_fails_the_node_naming_the_field(registry):
    graph = Graph(registry)
    size = graph.add_node("Int", params={"value": 13}).id
    empty = graph.add_node("EmptyLatentImage").id
    graph.connect(size, "INT", empty, "width")
    entry = Executor(registry).run(graph, outputs=[empty]).entries[empty]
    assert (entry.status, entry.field) == ("failed", "width")
    assert "width is 13 pixels, but it must be a multiple of 8" in entry.message
    assert "use 8 or 16" in entry.message


def test_conditioning_areas_off_the_8_pixel_grid_are_refused(registry):
    graph = Graph(registry)
    area = graph.add_node("ConditioningSetArea", params={"width": 13, "x": 12}).id
    problems = {p.field: p.message for p in validate(graph, outputs=[area])}
    assert "13 is not a multiple of 8 (use 8 or 16)" in problems["width"]
    assert "12 is not a multiple of 8 (use 8 or 16)" in problems["x"]


def test_a_linked_area_size_off_the_grid_fails_the_node_on_its_field(registry):
    from core.engine import NodeError

    set_area = registry.get("ConditioningSetArea").function
    with pytest.raises(NodeError) as info:
        set_area(None, conditioning=[], width=64, height=20, x=0, y=0, strength=1.0)
    assert info.value.field == "height" and "multiple of 8" in str(info.value)


def test_an_untouched_empty_latent_is_remade_for_another_factor_keeping_its_mask():
    import torch

    from core.diffusion import latents

    empty = latents.set_noise_mask(latents.empty(64, 32, 2, downscale=8), torch.ones(1, 8, 8))
    fitted = latents.fit_empty(empty, 4)
    assert tuple(fitted["samples"].shape) == (2, 4, 8, 16)
    assert fitted["downscale"] == 4 and fitted["noise_mask"] is empty["noise_mask"]


def test_an_empty_latent_that_was_changed_since_is_left_as_it_is():
    import torch

    from core.diffusion import latents

    empty = latents.empty(64, 64, downscale=8)
    filled = latents.with_samples(empty, torch.ones(1, 4, 8, 8))
    cropped = {**empty, "samples": empty["samples"][:, :, :4]}
    for latent in (filled, cropped):
        assert latents.fit_empty(latent, 4)["samples"].shape == latent["samples"].shape


def test_a_size_off_the_models_cell_is_refused_naming_the_cell():
    from core.diffusion import latents

    with pytest.raises(ValueError, match="multiple of 16"):
        latents.fit_empty(latents.empty(72, 64, downscale=8), 16)


def test_the_demo_model_gives_the_asked_size_from_comfyuis_plain_empty_latent(registry):
    """The f = 4 demo model, wired as in ComfyUI (Empty Latent Image without a VAE link)."""
    graph = Graph(registry)
    add = graph.add_node
    ckpt = add("LoadCheckpoint", params={"ckpt_name": "latentloom-shapes"}).id
    prompt = add("CLIPTextEncode", params={"text": "a red circle"}).id
    empty = add("EmptyLatentImage", params={"width": 64, "height": 48}).id
    sampler = add("KSampler", params={"steps": 1}).id
    still = add("KSampler", params={"steps": 1, "denoise": 0.0}).id
    decodes = [add("VAEDecode").id, add("VAEDecode").id]
    graph.connect(ckpt, "CLIP", prompt, "clip")
    for node, decode in zip((sampler, still), decodes, strict=True):
        graph.connect(ckpt, "MODEL", node, "model")
        graph.connect(prompt, "CONDITIONING", node, "positive")
        graph.connect(prompt, "CONDITIONING", node, "negative")
        graph.connect(empty, "LATENT", node, "latent_image")
        graph.connect(node, "LATENT", decode, "samples")
        graph.connect(ckpt, "VAE", decode, "vae")
    report = Executor(registry).run(graph, outputs=decodes)
    assert report.status == "ok", [e.message for e in report.entries.values() if e.message]
    assert [tuple(report.outputs[d][0].shape) for d in decodes] == [(1, 48, 64, 3)] * 2


def test_new_latents_and_noise_describe_their_picture_size_alike(registry):
    def size_widgets(type_id):
        spec = registry.get(type_id)
        return [(i.name, i.description) for i in spec.inputs if i.name != "seed"][1:]

    noise = size_widgets("LatentNoise")
    assert noise == size_widgets("EmptyLatentImage")
    assert [name for name, _ in noise] == ["width", "height", "batch_size"]
    assert all(description for _, description in noise)
