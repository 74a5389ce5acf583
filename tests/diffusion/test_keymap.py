"""LDM names of diffusers modules, checked against names found in the original checkpoints."""

from __future__ import annotations

import pytest

from core.diffusion.keymap import unet_module_to_ldm, vae_key_to_ldm
from core.diffusion.resources import load_component_config


@pytest.mark.parametrize(
    ("folder", "diffusers", "ldm"),
    [
        ("sd15", "down_blocks.0.resnets.1.norm1.weight", "input_blocks.2.0.in_layers.0.weight"),
        ("sd15", "down_blocks.2.downsamplers.0.conv.bias", "input_blocks.9.0.op.bias"),
        (
            "sd15",
            "down_blocks.3.resnets.1.time_emb_proj.weight",
            "input_blocks.11.0.emb_layers.1.weight",
        ),
        ("sd15", "mid_block.resnets.1.conv2.weight", "middle_block.2.out_layers.3.weight"),
        ("sd15", "mid_block.attentions.0.proj_in.weight", "middle_block.1.proj_in.weight"),
        ("sd15", "up_blocks.0.upsamplers.0.conv.weight", "output_blocks.2.1.conv.weight"),
        ("sd15", "up_blocks.1.upsamplers.0.conv.weight", "output_blocks.5.2.conv.weight"),
        ("sd15", "up_blocks.3.attentions.2.proj_out.bias", "output_blocks.11.1.proj_out.bias"),
        (
            "sd15",
            "up_blocks.3.resnets.0.conv_shortcut.weight",
            "output_blocks.9.0.skip_connection.weight",
        ),
        ("sd15", "conv_norm_out.weight", "out.0.weight"),
        ("sdxl_base", "add_embedding.linear_2.bias", "label_emb.0.2.bias"),
        (
            "sdxl_base",
            "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k",
            "input_blocks.4.1.transformer_blocks.0.attn2.to_k",
        ),
        ("sdxl_base", "up_blocks.1.upsamplers.0.conv.weight", "output_blocks.5.2.conv.weight"),
        ("sdxl_base", "down_blocks.1.downsamplers.0.conv.weight", "input_blocks.6.0.op.weight"),
    ],
)
def test_unet_names(folder, diffusers, ldm):
    assert unet_module_to_ldm(diffusers, load_component_config(folder, "unet")) == ldm


@pytest.mark.parametrize(
    ("diffusers", "ldm"),
    [
        ("decoder.up_blocks.0.resnets.2.conv1.weight", "decoder.up.3.block.2.conv1.weight"),
        ("decoder.up_blocks.3.upsamplers.0.conv.bias", "decoder.up.0.upsample.conv.bias"),
        (
            "encoder.down_blocks.1.resnets.0.conv_shortcut.weight",
            "encoder.down.1.block.0.nin_shortcut.weight",
        ),
        ("encoder.mid_block.attentions.0.to_out.0.weight", "encoder.mid.attn_1.proj_out.weight"),
        ("decoder.mid_block.resnets.1.norm2.bias", "decoder.mid.block_2.norm2.bias"),
        ("encoder.conv_norm_out.weight", "encoder.norm_out.weight"),
    ],
)
def test_vae_names(diffusers, ldm):
    assert vae_key_to_ldm(diffusers, load_component_config("sd15", "vae")) == ldm
