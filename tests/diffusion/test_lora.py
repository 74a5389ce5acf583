"""LoRA application: every naming scheme, strengths, stacking, base model untouched."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from core.diffusion.errors import ModelLoadError
from core.diffusion.keymap import unet_module_to_ldm
from core.diffusion.loading import load_checkpoint
from core.diffusion.lora import LoraUse, apply_loras, load_lora

UNET_MODULE = "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k"
TEXT_MODULE = "encoder.layers.0.self_attn.q_proj"


@pytest.fixture(scope="module")
def sd1(tiny_files):
    return load_checkpoint(tiny_files[("sd1", "safetensors")])


@pytest.fixture(scope="module")
def sdxl(tiny_files):
    return load_checkpoint(tiny_files[("sdxl", "safetensors")])


def low_rank(weight: torch.Tensor, rank: int = 2, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    down = torch.randn(rank, *weight.shape[1:], generator=generator)
    up = torch.randn(weight.shape[0], rank, *([1] * (weight.ndim - 2)), generator=generator)
    return down, up


def expected_delta(down, up, alpha, strength):
    rank = down.shape[0]
    return (up.flatten(1) @ down.flatten(1)).reshape(-1, *down.shape[1:]) * alpha / rank * strength


def write(path: Path, tensors) -> Path:
    save_file({k: v.contiguous() for k, v in tensors.items()}, path)
    return path


def test_kohya_lora_on_unet_and_text_encoder(sd1, tmp_path):
    unet_w = sd1.model.unet.get_submodule(UNET_MODULE).weight
    text_w = sd1.clip.encoders[0].model.get_submodule(TEXT_MODULE).weight
    (ud, uu), (td, tu) = low_rank(unet_w), low_rank(text_w, seed=1)
    path = write(
        tmp_path / "kohya.safetensors",
        {
            f"lora_unet_{UNET_MODULE.replace('.', '_')}.lora_down.weight": ud,
            f"lora_unet_{UNET_MODULE.replace('.', '_')}.lora_up.weight": uu,
            f"lora_unet_{UNET_MODULE.replace('.', '_')}.alpha": torch.tensor(1.0),
            "lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": td,
            "lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight": tu,
        },
    )
    before_unet, before_text = unet_w.clone(), text_w.clone()
    model, clip = apply_loras(sd1.model, sd1.clip, [LoraUse(load_lora(path), 0.8, 0.5)])

    new_unet = model.unet.get_submodule(UNET_MODULE).weight
    new_text = clip.encoders[0].model.get_submodule(TEXT_MODULE).weight
    torch.testing.assert_close(new_unet, before_unet + expected_delta(ud, uu, 1.0, 0.8))
    torch.testing.assert_close(new_text, before_text + expected_delta(td, tu, 2.0, 0.5))
    # The base objects are unchanged and untouched layers share storage with them.
    assert torch.equal(sd1.model.unet.get_submodule(UNET_MODULE).weight, before_unet)
    assert torch.equal(sd1.clip.encoders[0].model.get_submodule(TEXT_MODULE).weight, before_text)
    shared = model.unet.conv_in.weight
    assert shared.data_ptr() == sd1.model.unet.conv_in.weight.data_ptr()
    assert model.unet is not sd1.model.unet and sd1.model.unet.training is False


def test_conv_lora_and_stacking_sum(sd1, tmp_path):
    name = "down_blocks.0.resnets.0.conv1"
    weight = sd1.model.unet.get_submodule(name).weight
    key = f"lora_unet_{name.replace('.', '_')}"
    files = []
    deltas = torch.zeros_like(weight)
    for seed, strength in ((0, 1.0), (1, -0.5)):
        down, up = low_rank(weight, rank=3, seed=seed)
        files.append(
            LoraUse(
                load_lora(
                    write(
                        tmp_path / f"conv{seed}.safetensors",
                        {f"{key}.lora_down.weight": down, f"{key}.lora_up.weight": up},
                    )
                ),
                unet_strength=strength,
            )
        )
        deltas += expected_delta(down, up, 3.0, strength)
    model, clip = apply_loras(sd1.model, sd1.clip, files)
    torch.testing.assert_close(model.unet.get_submodule(name).weight, weight + deltas)
    assert clip.encoders[0].model is sd1.clip.encoders[0].model


def test_sdxl_ldm_named_unet_and_te2(sdxl, tmp_path):
    unet = sdxl.model.unet
    ldm = unet_module_to_ldm(UNET_MODULE, unet.config).replace(".", "_")
    unet_w = unet.get_submodule(UNET_MODULE).weight
    te2 = sdxl.clip.encoders[1].model
    te2_name = "text_model.encoder.layers.1.mlp.fc1"
    te2_w = te2.get_submodule(te2_name).weight
    (ud, uu), (td, tu) = low_rank(unet_w), low_rank(te2_w, seed=2)
    path = write(
        tmp_path / "xl.safetensors",
        {
            f"lora_unet_{ldm}.lora_down.weight": ud,
            f"lora_unet_{ldm}.lora_up.weight": uu,
            "lora_te2_text_model_encoder_layers_1_mlp_fc1.lora_down.weight": td,
            "lora_te2_text_model_encoder_layers_1_mlp_fc1.lora_up.weight": tu,
        },
    )
    model, clip = apply_loras(sdxl.model, sdxl.clip, [LoraUse(load_lora(path))])
    assert ldm.startswith("input_blocks_3_1_")  # one resnet per level in the tiny model
    torch.testing.assert_close(
        model.unet.get_submodule(UNET_MODULE).weight, unet_w + expected_delta(ud, uu, 2.0, 1.0)
    )
    torch.testing.assert_close(
        clip.encoders[1].model.get_submodule(te2_name).weight,
        te2_w + expected_delta(td, tu, 2.0, 1.0),
    )
    assert clip.encoders[0].model is sdxl.clip.encoders[0].model


def test_diffusers_peft_and_processor_formats(sd1, tmp_path):
    unet_w = sd1.model.unet.get_submodule(UNET_MODULE).weight
    out_name = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_out.0"
    out_w = sd1.model.unet.get_submodule(out_name).weight
    text_w = sd1.clip.encoders[0].model.get_submodule(TEXT_MODULE).weight
    (ud, uu), (od, ou), (td, tu) = low_rank(unet_w), low_rank(out_w, seed=3), low_rank(text_w)
    path = write(
        tmp_path / "peft.safetensors",
        {
            f"unet.{UNET_MODULE}.lora_A.weight": ud,
            f"unet.{UNET_MODULE}.lora_B.weight": uu,
            f"unet.{UNET_MODULE}.alpha": torch.tensor(4.0),
            "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor"
            ".to_out_lora.down.weight": od,
            "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor"
            ".to_out_lora.up.weight": ou,
            f"text_encoder.text_model.{TEXT_MODULE}.lora_A.weight": td,
            f"text_encoder.text_model.{TEXT_MODULE}.lora_B.weight": tu,
        },
    )
    model, clip = apply_loras(sd1.model, sd1.clip, [LoraUse(load_lora(path), 1.0, 0.0)])
    torch.testing.assert_close(
        model.unet.get_submodule(UNET_MODULE).weight, unet_w + expected_delta(ud, uu, 4.0, 1.0)
    )
    torch.testing.assert_close(
        model.unet.get_submodule(out_name).weight, out_w + expected_delta(od, ou, 2.0, 1.0)
    )
    assert clip.encoders[0].model is sd1.clip.encoders[0].model  # text strength 0


def test_lora_errors(sd1, sdxl, tmp_path):
    not_lora = write(tmp_path / "x.safetensors", {"weight": torch.zeros(2)})
    with pytest.raises(ModelLoadError, match="holds no LoRA layers"):
        load_lora(not_lora)
    name = "lora_unet_nonexistent_block"
    foreign = write(
        tmp_path / "foreign.safetensors",
        {
            f"{name}.lora_down.weight": torch.zeros(2, 4),
            f"{name}.lora_up.weight": torch.zeros(4, 2),
        },
    )
    with pytest.raises(ModelLoadError, match="matches no layer") as info:
        apply_loras(sd1.model, sd1.clip, [LoraUse(load_lora(foreign))])
    assert "foreign.safetensors" in str(info.value)


def test_peft_adapter_of_a_bare_unet(sd1, tmp_path):
    """PEFT saves a UNet-only adapter from the UNet's root: ``base_model.model.<module>``."""
    unet_w = sd1.model.unet.get_submodule(UNET_MODULE).weight
    down, up = low_rank(unet_w, seed=5)
    path = write(
        tmp_path / "adapter_model.safetensors",
        {
            f"base_model.model.{UNET_MODULE}.lora_A.weight": down,
            f"base_model.model.{UNET_MODULE}.lora_B.weight": up,
        },
    )
    model, _ = apply_loras(sd1.model, sd1.clip, [LoraUse(load_lora(path), 0.5)])
    torch.testing.assert_close(
        model.unet.get_submodule(UNET_MODULE).weight,
        unet_w + expected_delta(down, up, 2.0, 0.5),
    )
