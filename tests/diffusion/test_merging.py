"""Model and CLIP merges on tiny real-layout models: every tensor follows the formula, the
inputs stay as they were, unchanged tensors are shared, mismatched models are refused."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from core.diffusion.families import ModelFamily
from core.diffusion.keymap import unet_module_to_ldm
from core.diffusion.loading import load_checkpoint
from core.diffusion.lora import _patched_copy
from core.diffusion.merging import (
    MergeError,
    add,
    difference,
    merge_clips,
    merge_models,
    unet_block_ratios,
    weighted_sum,
)
from tests.helpers.tiny_models import make_tiny_pipeline, write_single_file


@pytest.fixture(scope="module")
def models(tiny_files, tmp_path_factory):
    other = tmp_path_factory.mktemp("other") / "other.safetensors"
    write_single_file(make_tiny_pipeline(ModelFamily.SD1, seed=7), other)
    return {
        "a": load_checkpoint(tiny_files[("sd1", "safetensors")]),
        "b": load_checkpoint(other),
        "sd2": load_checkpoint(tiny_files[("sd2", "safetensors")]),
        "inpaint": load_checkpoint(tiny_files[("sd1_inpaint", "safetensors")]),
        "sdxl": load_checkpoint(tiny_files[("sdxl", "safetensors")]),
    }


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items()}


def assert_merged(merged, first, second, coefficients):
    mine, theirs = dict(first.named_parameters()), dict(second.named_parameters())
    for name, tensor in merged.named_parameters():
        c1, c2 = coefficients(name)
        torch.testing.assert_close(tensor, c1 * mine[name] + c2 * theirs[name])


def test_weighted_sum_add_and_difference_leave_the_inputs_as_they_were(models):
    a, b = models["a"].model, models["b"].model
    before_a, before_b = snapshot(a.unet), snapshot(b.unet)
    for coefficients in (weighted_sum(0.3), add(), difference(0.5)):
        merged = merge_models(a, b, coefficients)
        assert merged.unet is not a.unet and merged.family is a.family
        assert merged.preview_vae is a.preview_vae
        assert_merged(merged.unet, a.unet, b.unet, coefficients)
    c1, c2 = weighted_sum(0.3)("conv_in.weight")
    assert (c1, c2) == pytest.approx((0.3, 0.7))  # ComfyUI: ratio·model1 + (1 − ratio)·model2
    assert difference(0.5)("x") == (0.5, -0.5)
    for name, tensor in a.unet.state_dict().items():
        assert torch.equal(tensor, before_a[name])
    for name, tensor in b.unet.state_dict().items():
        assert torch.equal(tensor, before_b[name])
    assert merge_models(a, b, weighted_sum(1.0)) is a  # ratio 1: model1 itself, no copy


def test_a_merge_with_a_lora_copy_computes_only_the_patched_tensor(models):
    a = models["a"].model
    patched_unet = _patched_copy(a.unet, {"conv_in": torch.ones_like(a.unet.conv_in.weight)})
    merged = merge_models(a, type(a)(patched_unet, a.family, a.prediction), weighted_sum(0.25))
    new = set(merged.cache_storages()) - set(a.cache_storages())
    weight = merged.unet.conv_in.weight
    assert new == {(str(weight.device), weight.untyped_storage().data_ptr())}
    torch.testing.assert_close(weight, a.unet.conv_in.weight + 0.75)
    assert merged.unet.conv_out.weight is a.unet.conv_out.weight
    both = {**a.cache_storages(), **merged.cache_storages()}  # what a cache holding both charges
    assert sum(both.values()) - a.cache_nbytes() == weight.numel() * weight.element_size()


def test_block_ratios_follow_the_ldm_block_names(models):
    a, b = models["a"].model, models["b"].model
    ratios = {"input": 0.2, "middle": 0.5, "out": 0.9}
    coefficients = unet_block_ratios(ratios, a.unet.config)
    merged = merge_models(a, b, coefficients).unet
    expected = {
        "conv_in.weight": 0.2,  # input_blocks.0.0
        "time_embedding.linear_1.weight": 0.2,  # no block: the first ratio
        "down_blocks.1.resnets.0.conv1.weight": 0.2,
        "mid_block.resnets.1.conv2.weight": 0.5,  # middle_block.2
        "up_blocks.2.attentions.0.proj_out.weight": 0.9,  # output_blocks
        "conv_out.weight": 0.9,  # out.2
    }
    for name, ratio in expected.items():
        ldm = unet_module_to_ldm(name.removesuffix(".weight"), a.unet.config)
        assert coefficients(name) == pytest.approx((ratio, 1 - ratio)), ldm
        mine, theirs = a.unet.get_parameter(name), b.unet.get_parameter(name)
        torch.testing.assert_close(merged.get_parameter(name), ratio * mine + (1 - ratio) * theirs)


def test_models_of_another_architecture_are_refused_by_input(models):
    a = models["a"].model
    with pytest.raises(MergeError, match="cannot merge: model1 is an sd1 UNet and model2 an sd2"):
        merge_models(a, models["sd2"].model, weighted_sum(0.5))
    shapes = r"cannot merge: 'conv_in\.weight' has shape \[32, 4, 3, 3\] in model1 but \[32, 9,"
    with pytest.raises(MergeError, match=shapes):
        merge_models(a, models["inpaint"].model, add())  # the 9-channel model second
    with pytest.raises(MergeError, match="clip1 is an sd1 text encoder and clip2 an sdxl one"):
        merge_clips(models["a"].clip, models["sdxl"].clip, weighted_sum(0.5))
    base = models["sdxl"].clip
    refiner_like = replace(base, encoders=base.encoders[1:])  # the refiner's bigG alone
    with pytest.raises(MergeError, match="clip1 has 2 text encoders and clip2 1"):
        merge_clips(base, refiner_like, weighted_sum(0.5))


def test_an_inpainting_model_adds_a_difference_on_its_first_input_channels(models):
    inpaint, a, b = models["inpaint"].model, models["a"].model, models["b"].model
    diff = merge_models(b, a, difference(1.0))
    merged = merge_models(inpaint, diff, add())
    wide, narrow = inpaint.unet.conv_in.weight, diff.unet.conv_in.weight
    result = merged.unet.conv_in.weight
    torch.testing.assert_close(result[:, :4], wide[:, :4] + narrow)
    torch.testing.assert_close(result[:, 4:], wide[:, 4:])
    torch.testing.assert_close(
        merged.unet.conv_out.weight, inpaint.unet.conv_out.weight + diff.unet.conv_out.weight
    )


def test_clip_merge_blends_each_encoder_and_keeps_clip1s_settings(models):
    first = models["a"].clip.with_last_layer(-2)
    second = models["b"].clip
    merged = merge_clips(first, second, weighted_sum(0.6))
    assert merged.layer == -2 and merged.family is first.family
    assert_merged(
        merged.encoders[0].model,
        first.encoders[0].model,
        second.encoders[0].model,
        weighted_sum(0.6),
    )
    buffers = dict(merged.encoders[0].model.named_buffers())
    for name, buffer in first.encoders[0].model.named_buffers():
        if not buffer.is_floating_point():  # position ids are indices, never blended
            assert buffers[name] is buffer
