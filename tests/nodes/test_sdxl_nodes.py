"""SDXL as real workflows build it: the SDXL text encoders and a base → refiner split."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from core.diffusion.conditioning import sdxl_time_ids
from core.diffusion.families import ModelFamily
from core.diffusion.loading import load_checkpoint
from core.diffusion.model_paths import ModelPaths
from core.diffusion.text_encoding import encode_with
from core.engine import Executor
from core.graph.model import Graph
from nodes import build_registry
from tests.helpers.tiny_models import ldm_state_dict, make_tiny_pipeline, write_single_file

BASE, REFINER = "sd_xl_base.safetensors", "sd_xl_refiner.safetensors"


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    folder = root / "checkpoints"
    write_single_file(make_tiny_pipeline(ModelFamily.SDXL, seed=1), folder / BASE)
    write_single_file(make_tiny_pipeline(ModelFamily.SDXL, refiner=True, seed=2), folder / REFINER)
    vae = {
        k.removeprefix("first_stage_model."): v
        for k, v in ldm_state_dict(make_tiny_pipeline(ModelFamily.SDXL, seed=3)).items()
        if k.startswith("first_stage_model.")
    }
    (root / "vae").mkdir()
    save_file(vae, root / "vae" / "sdxl_vae.safetensors")
    save_file(vae, root / "vae" / "finetuned.safetensors")
    return root


@pytest.fixture(scope="module")
def registry(root):
    return build_registry(ModelPaths.of(root))


def _run(registry, graph, node):
    return Executor(registry).run(graph, outputs=[node], device="cpu").outputs[node]


def test_widgets_are_in_comfyui_order(registry):
    names = [i.name for i in registry.get("CLIPTextEncodeSDXL").inputs]
    assert names == [
        "clip",
        "width",
        "height",
        "crop_w",
        "crop_h",
        "target_width",
        "target_height",
        "text_g",
        "text_l",
    ]
    names = [i.name for i in registry.get("CLIPTextEncodeSDXLRefiner").inputs]
    assert names == ["clip", "ascore", "width", "height", "text"]


def _sdxl_encode(registry, ckpt, **params):
    g = Graph(registry)
    # float32 text encoders: compared exactly with the library's float32 load.
    load_params = {"ckpt_name": ckpt, "vae_clip_dtype": "float32"}
    load = g.add_node("LoadCheckpoint", params=load_params).id
    enc = g.add_node("CLIPTextEncodeSDXL", params=params).id
    g.connect(load, "CLIP", enc, "clip")
    return g, enc


def test_text_g_and_text_l_go_to_their_encoders_with_size_ids(registry, root):
    params = dict(
        width=2048,
        height=1536,
        crop_w=16,
        crop_h=8,
        target_width=1152,
        target_height=896,
        text_g="a castle on a hill",
        text_l="oil painting",
    )
    g, enc = _sdxl_encode(registry, BASE, **params)
    [entry] = _run(registry, g, enc)[0]
    clip_l, clip_g = load_checkpoint(root / "checkpoints" / BASE).clip.encoders
    states_l, _ = encode_with(clip_l, "oil painting")
    states_g, pooled_g = encode_with(clip_g, "a castle on a hill")
    torch.testing.assert_close(entry.embeds, torch.cat([states_l, states_g], dim=-1))
    torch.testing.assert_close(entry.pooled, pooled_g)
    ids = sdxl_time_ids(entry.options.size, 64, 64)
    assert ids.tolist() == [[1536, 2048, 8, 16, 896, 1152]]


def test_shorter_text_is_padded_with_empty_prompt_chunks(registry, root):
    g, enc = _sdxl_encode(registry, BASE, text_g="cat", text_l="dog " * 100)
    [entry] = _run(registry, g, enc)[0]
    assert entry.embeds.shape[1] == 154
    clip_g = load_checkpoint(root / "checkpoints" / BASE).clip.encoders[1]
    empty, _ = encode_with(clip_g, "")
    torch.testing.assert_close(entry.embeds[:, 77:, 32:], empty)


def test_sdxl_base_node_refuses_the_refiner_clip(registry):
    g, enc = _sdxl_encode(registry, REFINER, text_g="cat", text_l="cat")
    report = Executor(registry).run(g, outputs=[enc], device="cpu")
    entry = report.entries[enc]
    assert report.status == "failed" and entry.field == "clip"
    assert "CLIP Text Encode SDXL Refiner" in entry.message


def _refiner_encode(g, clip_source, ascore, text):
    enc = g.add_node(
        "CLIPTextEncodeSDXLRefiner",
        params={"ascore": ascore, "width": 1024, "height": 768, "text": text},
    ).id
    g.connect(clip_source, "CLIP", enc, "clip")
    return enc


def test_refiner_prompt_carries_aesthetic_score(registry):
    g = Graph(registry)
    load = g.add_node("LoadCheckpoint", params={"ckpt_name": REFINER}).id
    enc = _refiner_encode(g, load, 2.5, "blurry")
    [entry] = _run(registry, g, enc)[0]
    assert entry.embeds.shape[-1] == 64 and entry.pooled is not None
    assert sdxl_time_ids(entry.options.size, 64, 64).tolist() == [[768, 1024, 0, 0, 2.5]]
    # A plain prompt for the refiner gets the usual score of 6.
    plain = g.add_node("CLIPTextEncode", params={"text": "a castle"}).id
    g.connect(load, "CLIP", plain, "clip")
    [entry] = _run(registry, g, plain)[0]
    assert sdxl_time_ids(entry.options.size, 64, 64).tolist() == [[64, 64, 0, 0, 6.0]]


def _split_graph(registry, refiner_ascore=6.0):
    """ComfyUI's base → refiner workflow: 4 steps, the base runs 0→3, the refiner 3→end."""
    g = Graph(registry)
    base = g.add_node("LoadCheckpoint", params={"ckpt_name": BASE}).id
    refiner = g.add_node("LoadCheckpoint", params={"ckpt_name": REFINER}).id
    conds = {}
    for side, text in (("positive", "a castle"), ("negative", "blurry")):
        node = g.add_node(
            "CLIPTextEncodeSDXL", params={"text_g": text, "text_l": text, "width": 64}
        ).id
        g.connect(base, "CLIP", node, "clip")
        conds[("base", side)] = node
        score = refiner_ascore if side == "positive" else 2.5
        conds[("refiner", side)] = _refiner_encode(g, refiner, score, text)
    # 16×16 pixels: an 8×8 latent on the tiny models' f = 2 VAE.
    latent = g.add_node("EmptyLatentImage", params={"width": 16, "height": 16}).id
    common = {"steps": 4, "cfg": 5.0, "sampler_name": "euler", "scheduler": "normal"}
    first = g.add_node(
        "KSamplerAdvanced",
        params={
            **common,
            "add_noise": True,
            "noise_seed": 7,
            "start_at_step": 0,
            "end_at_step": 3,
            "return_with_leftover_noise": True,
        },
    ).id
    second = g.add_node(
        "KSamplerAdvanced",
        params={
            **common,
            "add_noise": False,
            "noise_seed": 0,
            "start_at_step": 3,
            "end_at_step": 10000,
            "return_with_leftover_noise": False,
        },
    ).id
    for sampler, stage, model in ((first, "base", base), (second, "refiner", refiner)):
        g.connect(model, "MODEL", sampler, "model")
        g.connect(conds[(stage, "positive")], "CONDITIONING", sampler, "positive")
        g.connect(conds[(stage, "negative")], "CONDITIONING", sampler, "negative")
    g.connect(latent, "LATENT", first, "latent_image")
    g.connect(first, "LATENT", second, "latent_image")
    return g, first, second


def test_base_then_refiner_split_runs_end_to_end(registry):
    g, first, second = _split_graph(registry)
    report = Executor(registry).run(g, outputs=[first, second], device="cpu")
    half = report.outputs[first][0]["samples"]
    final = report.outputs[second][0]["samples"]
    assert final.shape == half.shape == (1, 4, 8, 8)
    assert torch.isfinite(final).all() and not torch.equal(final, half)
    # The refiner's aesthetic score reaches its UNet.
    g2, _, second2 = _split_graph(registry, refiner_ascore=9.0)
    other = Executor(registry).run(g2, outputs=[second2], device="cpu").outputs[second2][0]
    assert not torch.allclose(other["samples"], final)


@pytest.mark.parametrize(
    ("name", "family", "scale"),
    [
        ("sdxl_vae.safetensors", "auto", 0.13025),
        ("finetuned.safetensors", "auto", 0.18215),
        ("finetuned.safetensors", "sdxl", 0.13025),
    ],
)
def test_load_vae_auto_reads_the_family_from_the_file(registry, name, family, scale):
    g = Graph(registry)
    node = g.add_node("LoadVAE", params={"vae_name": name, "family": family}).id
    report = Executor(registry).run(g, outputs=[node], device="cpu")
    assert report.outputs[node][0].scaling_factor == scale
    notices = [r.value for r in report.entries[node].records if r.kind == "notice"]
    assert len(notices) == (1 if family == "auto" else 0)
