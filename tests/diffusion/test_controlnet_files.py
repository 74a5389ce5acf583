"""ControlNet and T2I-Adapter files in the layouts users have load back exactly, and files
that are something else are refused with a message naming them."""

from __future__ import annotations

import functools

import pytest
import torch
from safetensors.torch import load_file, save_file

from core.diffusion.controlnet import load_control_model
from core.diffusion.controlnet.layouts import LDM_CONTROL_PREFIX
from core.diffusion.errors import ModelLoadError
from core.diffusion.families import ModelFamily
from tests.helpers.controlnets import (
    controlnet_ldm_tensors,
    make_tiny_adapter,
    make_tiny_controlnet,
    write_adapter,
    write_controlnet,
)
from tests.helpers.tiny_models import ldm_state_dict, make_tiny_pipeline
from tests.sampling.harness import model_of


@functools.cache
def _pipeline(family: ModelFamily):
    return make_tiny_pipeline(family, seed=4)


@functools.cache
def _controlnet(family: ModelFamily):
    return make_tiny_controlnet(_pipeline(family).unet, seed=9)


def _same(module: torch.nn.Module, reference: torch.nn.Module) -> bool:
    ours, theirs = module.state_dict(), reference.state_dict()
    return ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in theirs)


@pytest.mark.parametrize("family", list(ModelFamily))
@pytest.mark.parametrize(
    ("layout", "name"),
    [
        ("ldm", "control_v11p_sd15_canny.safetensors"),
        ("ldm", "control_sd15_canny.pth"),
        ("diffusers", "controlnet-canny.safetensors"),
        ("folder", "controlnet-canny-diffusers"),
    ],
)
def test_controlnet_files_load_back_exactly(tmp_path, family, layout, name):
    controlnet = _controlnet(family)
    path = write_controlnet(controlnet, tmp_path / name, layout)
    loaded = load_control_model(path)
    assert loaded.kind == "controlnet" and loaded.family is family
    assert _same(loaded.module, controlnet)
    assert loaded.cache_nbytes() == sum(t.nbytes for t in controlnet.state_dict().values())


def test_unprefixed_files_and_whole_training_checkpoints_load_the_control_model(tmp_path):
    controlnet = _controlnet(ModelFamily.SD1)
    bare = write_controlnet(controlnet, tmp_path / "bare.safetensors", prefix="")
    assert _same(load_control_model(bare).module, controlnet)
    # control_sd15_*.pth as trained: the SD model beside the ControlNet.
    whole = {**ldm_state_dict(_pipeline(ModelFamily.SD1)), **controlnet_ldm_tensors(controlnet)}
    torch.save(whole, tmp_path / "control_sd15_scribble.pth")
    loaded = load_control_model(tmp_path / "control_sd15_scribble.pth")
    assert _same(loaded.module, controlnet)


def test_a_difference_controlnet_adds_the_model_it_was_made_from(tmp_path):
    pipeline = _pipeline(ModelFamily.SD1)
    controlnet = _controlnet(ModelFamily.SD1)
    unet = pipeline.unet.state_dict()
    difference = {
        name: tensor - unet[name] if name in unet else tensor
        for name, tensor in controlnet.state_dict().items()
    }
    shifted = make_tiny_controlnet(pipeline.unet)
    shifted.load_state_dict(difference)
    tensors = controlnet_ldm_tensors(shifted)
    tensors["difference"] = torch.tensor([])
    save_file(tensors, str(tmp_path / "diff_control_sd15_depth_fp16.safetensors"))
    path = tmp_path / "diff_control_sd15_depth_fp16.safetensors"
    loaded = load_control_model(path, model_of(pipeline))
    assert all(
        torch.allclose(loaded.module.state_dict()[k], v, atol=1e-6)
        for k, v in controlnet.state_dict().items()
    )
    assert any(name in unet for name in controlnet.state_dict())  # the UNet half was added
    with pytest.raises(ModelLoadError, match=r"diff_control_sd15_depth_fp16\.safetensors.*diff"):
        load_control_model(path)


@pytest.mark.parametrize(
    ("family", "kind", "channels"),
    [
        (ModelFamily.SD1, "full_adapter", 3),
        (ModelFamily.SD1, "full_adapter", 1),
        (ModelFamily.SD1, "light_adapter", 3),
        (ModelFamily.SDXL, "full_adapter_xl", 3),
    ],
)
@pytest.mark.parametrize("layout", ["original", "diffusers"])
def test_t2i_adapters_load_back_exactly(tmp_path, family, kind, channels, layout):
    adapter = make_tiny_adapter(_pipeline(family).unet, kind, channels, seed=2)
    path = write_adapter(adapter, tmp_path / "t2iadapter_canny_sd15v2.pth", layout)
    loaded = load_control_model(path)
    assert loaded.kind == "t2i_adapter"
    assert loaded.module.config.adapter_type == kind
    assert loaded.module.config.in_channels == channels
    assert loaded.family is (ModelFamily.SDXL if kind == "full_adapter_xl" else None)
    assert _same(loaded.module, adapter)


def test_other_files_are_refused_with_their_name(tmp_path):
    pipeline = _pipeline(ModelFamily.SD1)
    checkpoint = tmp_path / "v1-5-pruned-emaonly.safetensors"
    save_file(ldm_state_dict(pipeline), str(checkpoint))
    with pytest.raises(ModelLoadError, match=r"v1-5-pruned-emaonly\.safetensors: is a Stable Diff"):
        load_control_model(checkpoint)
    lora = tmp_path / "style.safetensors"
    save_file({"lora_unet_down.lora_up.weight": torch.zeros(2, 2)}, str(lora))
    with pytest.raises(ModelLoadError, match=r"style\.safetensors: is a LoRA"):
        load_control_model(lora)


def test_damaged_and_unsupported_files_name_what_is_wrong(tmp_path):
    tensors = controlnet_ldm_tensors(_controlnet(ModelFamily.SD1))
    del tensors[LDM_CONTROL_PREFIX + "zero_convs.3.0.weight"]
    save_file(tensors, str(tmp_path / "cut.safetensors"))
    with pytest.raises(ModelLoadError, match=r"cut.safetensors: .*lacks zero_convs\.3\.0\.weight"):
        load_control_model(tmp_path / "cut.safetensors")
    adapter = make_tiny_adapter(_pipeline(ModelFamily.SD1).unet)
    path = write_adapter(adapter, tmp_path / "t2iadapter_keypose.safetensors")
    tensors = load_file(str(path))
    tensors["body.2.down_opt.op.weight"] = torch.zeros(1)
    save_file(tensors, str(path))
    with pytest.raises(ModelLoadError, match=r"keypose\.safetensors: is a T2I-Adapter with conv"):
        load_control_model(path)
