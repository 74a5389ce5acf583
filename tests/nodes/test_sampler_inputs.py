"""What samplers take from their inputs beyond the pictures: batch indices choosing each item's
noise (Latent From Batch, Latent Batch Seed Behavior), and conditioning whose width does not fit
the model refused on its input."""

from __future__ import annotations

import pytest
import torch

from core.diffusion.families import ModelFamily
from core.diffusion.model_paths import ModelPaths
from core.engine import Executor
from core.graph.model import Graph
from nodes import build_registry
from tests.helpers.tiny_models import make_tiny_pipeline, write_single_file

BASE, REFINER, SD1 = "sd_xl_base.safetensors", "sd_xl_refiner.safetensors", "tiny.safetensors"


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models") / "checkpoints"
    write_single_file(make_tiny_pipeline(ModelFamily.SD1), folder / SD1)
    write_single_file(make_tiny_pipeline(ModelFamily.SDXL, seed=1), folder / BASE)
    write_single_file(make_tiny_pipeline(ModelFamily.SDXL, refiner=True, seed=2), folder / REFINER)
    return build_registry(ModelPaths.of(folder.parent))


def _txt2img(registry, batch: int) -> tuple[Graph, dict[str, int]]:
    g = Graph(registry)
    ids = {"load": g.add_node("LoadCheckpoint", params={"ckpt_name": SD1}).id}
    ids["pos"] = g.add_node("CLIPTextEncode", params={"text": "a red circle"}).id
    ids["neg"] = g.add_node("CLIPTextEncode", params={"text": ""}).id
    size = {"width": 16, "height": 16, "batch_size": batch}
    ids["empty"] = g.add_node("EmptyLatentImage", params=size).id
    for enc in ("pos", "neg"):
        g.connect(ids["load"], "CLIP", ids[enc], "clip")
    g.connect(ids["load"], "VAE", ids["empty"], "vae")  # the latent made for this model
    return g, ids


def _sampler(g: Graph, ids: dict[str, int], latent: tuple[int, str]) -> int:
    params = {"seed": 4, "steps": 2, "cfg": 5.0, "sampler_name": "euler"}
    node = g.add_node("KSampler", params=params).id
    g.connect(ids["load"], "MODEL", node, "model")
    g.connect(ids["pos"], "CONDITIONING", node, "positive")
    g.connect(ids["neg"], "CONDITIONING", node, "negative")
    g.connect(*latent, node, "latent_image")
    return node


def _latents(report, node: int) -> torch.Tensor:
    assert report.status == "ok", {e.label: e.message for e in report.entries.values()}
    return report.outputs[node][0]["samples"]


def test_an_item_picked_from_a_batch_is_sampled_from_its_own_noise(registry):
    g, ids = _txt2img(registry, batch=3)
    whole = _sampler(g, ids, (ids["empty"], "LATENT"))
    pick = g.add_node("LatentFromBatch", params={"batch_index": 2, "length": 1}).id
    g.connect(ids["empty"], "LATENT", pick, "samples")
    alone = _sampler(g, ids, (pick, "LATENT"))
    report = Executor(registry).run(g, outputs=[whole, alone], device="cpu")
    torch.testing.assert_close(_latents(report, alone), _latents(report, whole)[2:3])
    assert not torch.allclose(_latents(report, alone), _latents(report, whole)[0:1])


def test_seed_behavior_fixed_shares_noise_and_random_draws_the_batchs_own(registry):
    g, ids = _txt2img(registry, batch=3)
    pick = g.add_node("LatentFromBatch", params={"batch_index": 1, "length": 2}).id
    g.connect(ids["empty"], "LATENT", pick, "samples")
    runs = {}
    for behavior in ("fixed", "random"):
        node = g.add_node("LatentBatchSeedBehavior", params={"seed_behavior": behavior}).id
        g.connect(pick, "LATENT", node, "samples")
        runs[behavior] = _sampler(g, ids, (node, "LATENT"))
    whole = _sampler(g, ids, (ids["empty"], "LATENT"))
    report = Executor(registry).run(g, outputs=[*runs.values(), whole], device="cpu")
    fixed, random = _latents(report, runs["fixed"]), _latents(report, runs["random"])
    reference = _latents(report, whole)
    # fixed: both items take the first picked item's noise (item 1 of the batch)
    torch.testing.assert_close(fixed[0], reference[1])
    torch.testing.assert_close(fixed[1], reference[1])
    # random: the two items draw a fresh two-item batch from the seed, as items 0 and 1
    torch.testing.assert_close(random, reference[:2])


def test_sdxl_base_conditioning_on_the_refiner_is_refused_on_its_input(registry):
    g = Graph(registry)
    base = g.add_node("LoadCheckpoint", params={"ckpt_name": BASE}).id
    refiner = g.add_node("LoadCheckpoint", params={"ckpt_name": REFINER}).id
    prompt = g.add_node("CLIPTextEncodeSDXL", params={"text_g": "a cat", "text_l": "a cat"}).id
    g.connect(base, "CLIP", prompt, "clip")
    empty = g.add_node("EmptyLatentImage", params={"width": 64, "height": 64}).id
    sampler = g.add_node("KSampler", params={"steps": 1}).id
    g.connect(refiner, "MODEL", sampler, "model")
    g.connect(prompt, "CONDITIONING", sampler, "positive")
    g.connect(prompt, "CONDITIONING", sampler, "negative")
    g.connect(empty, "LATENT", sampler, "latent_image")
    report = Executor(registry).run(g, outputs=[sampler], device="cpu")
    entry = report.entries[sampler]
    assert entry.status == "failed" and entry.field == "positive"
    assert "96 features" in entry.message and "takes 64" in entry.message
    assert "\n" not in entry.message
