"""UNETLoader: UNet-only files in the three layouts in use (LDM names with and without the
checkpoint prefix, diffusers names), SD 1.x, SD 2.x and SDXL, load with the same weights and
predictions as the UNet they were written from, and run through the engine."""

from __future__ import annotations

import pytest
import torch
from diffusers import UNet2DConditionModel
from safetensors.torch import save_file

from core.diffusion.architecture import UNET_PREFIX
from core.diffusion.errors import ModelLoadError
from core.diffusion.families import ModelFamily
from core.diffusion.keymap import unet_to_ldm
from core.diffusion.model_paths import ModelPaths
from core.diffusion.unet_files import load_unet_file
from core.engine import Executor
from core.graph.model import Graph
from nodes import build_registry
from tests.helpers.tiny_models import (
    _randomise,
    ldm_state_dict,
    make_tiny_pipeline,
    tiny_unet_config,
    write_single_file,
)


def tiny_unet(family: ModelFamily, seed: int = 0) -> UNet2DConditionModel:
    """A tiny random UNet of ``family``; SDXL's embeds each size number 256 wide, as every
    released SDXL UNet does (the loader relies on it, a UNet alone not naming its pooled
    text width)."""
    context = 96 if family is ModelFamily.SDXL else 32
    config = tiny_unet_config(family, context, inpainting=False)
    if family is ModelFamily.SDXL:
        config.update(
            addition_time_embed_dim=256, projection_class_embeddings_input_dim=32 + 6 * 256
        )
    unet = UNet2DConditionModel.from_config(config)
    _randomise(unet, torch.Generator().manual_seed(seed))
    return unet.eval()


def _write(unet: UNet2DConditionModel, layout: str, path) -> None:
    ldm = unet_to_ldm(unet.state_dict(), unet.config)
    tensors = {
        "ldm": ldm,
        "comfy": {k.removeprefix(UNET_PREFIX): v for k, v in ldm.items()},
        "diffusers": dict(unet.state_dict()),
    }[layout]
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".safetensors":
        save_file(tensors, path)
    else:
        torch.save(tensors, path)


@pytest.mark.parametrize("family", [ModelFamily.SD1, ModelFamily.SD2, ModelFamily.SDXL])
@pytest.mark.parametrize(
    ("layout", "name"),
    [("ldm", "a.safetensors"), ("comfy", "b.pth"), ("diffusers", "c.safetensors")],
)
def test_every_layout_loads_the_same_unet(family, layout, name, tmp_path):
    unet = tiny_unet(family)
    _write(unet, layout, tmp_path / name)
    model = load_unet_file(tmp_path / name)
    assert model.family is family
    assert model.prediction is model.prediction.EPSILON
    loaded = model.unet.state_dict()
    assert loaded.keys() == unet.state_dict().keys()
    assert all(torch.equal(loaded[k], v) for k, v in unet.state_dict().items())
    x = torch.randn(1, 4, 8, 8)
    context = torch.randn(1, 5, int(unet.config.cross_attention_dim))
    kwargs = {}
    if family is ModelFamily.SDXL:
        kwargs["added_cond_kwargs"] = {
            "text_embeds": torch.randn(1, 32),
            "time_ids": torch.ones(1, 6),
        }
    with torch.no_grad():
        torch.testing.assert_close(
            model.unet(x, 10, context, **kwargs).sample, unet(x, 10, context, **kwargs).sample
        )


def test_a_full_checkpoint_is_refused_with_where_it_belongs(tmp_path):
    path = tmp_path / "full.safetensors"
    tensors = ldm_state_dict(make_tiny_pipeline(ModelFamily.SD1))
    save_file({k: v for k, v in tensors.items() if not k.startswith(UNET_PREFIX)}, path)
    with pytest.raises(ModelLoadError, match="full checkpoint"):
        load_unet_file(path)


def test_the_node_loads_a_unet_that_samples_with_a_checkpoints_text_encoder(tmp_path):
    pipeline = make_tiny_pipeline(ModelFamily.SD1, seed=1)
    _write(pipeline.unet, "comfy", tmp_path / "diffusion_models" / "lightning_unet.safetensors")
    write_single_file(pipeline, tmp_path / "checkpoints" / "base.safetensors")
    registry = build_registry(ModelPaths.of(tmp_path))
    assert [i.name for i in registry.get("UNETLoader").inputs] == ["unet_name", "weight_dtype"]
    g = Graph(registry)
    unet = g.add_node(
        "UNETLoader",
        params={"unet_name": "lightning_unet.safetensors", "weight_dtype": "fp8_e4m3fn"},
    ).id
    ckpt = g.add_node("LoadCheckpoint", params={"ckpt_name": "base.safetensors"}).id
    prompt = g.add_node("CLIPTextEncode", params={"text": "a cube"}).id
    latent = g.add_node("EmptyLatentImage", params={"width": 32, "height": 32}).id
    sampler = g.add_node("KSampler", params={"steps": 2}).id
    g.connect(ckpt, "CLIP", prompt, "clip")
    g.connect(unet, "MODEL", sampler, "model")
    g.connect(prompt, "CONDITIONING", sampler, "positive")
    g.connect(prompt, "CONDITIONING", sampler, "negative")
    g.connect(latent, "LATENT", sampler, "latent_image")
    report = Executor(registry).run(g, outputs=[unet, ckpt, sampler], device="cpu")
    assert report.status == "ok", report.to_dict()
    (model,) = report.outputs[unet]
    assert model.family is ModelFamily.SD1
    reference = report.outputs[ckpt][0].unet.state_dict()
    assert all(torch.equal(model.unet.state_dict()[k], v) for k, v in reference.items())
    notices = [r.value for r in report.entries[unet].records if r.kind == "notice"]
    assert any("fp8_e4m3fn" in n for n in notices)
    assert torch.isfinite(report.outputs[sampler][0]["samples"]).all()
