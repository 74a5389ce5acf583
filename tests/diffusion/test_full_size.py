"""A full-size random SD 1.5 checkpoint (fp16 LDM single file) loads exactly and quickly."""

from __future__ import annotations

import time

import pytest
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from safetensors.torch import save_file
from transformers import CLIPTextConfig, CLIPTextModel

from core.diffusion.families import ModelFamily, PredictionType
from core.diffusion.keymap import clip_to_ldm, unet_to_ldm, vae_to_ldm
from core.diffusion.loading import LoadOverrides, load_checkpoint
from core.diffusion.resources import load_component_config

SD15_UNET_PARAMETERS = 859_520_964  # published size of the SD 1.5 UNet


def random_like(shapes: dict[str, torch.Size], generator: torch.Generator) -> dict:
    return {
        key: torch.empty(shape, dtype=torch.float16).uniform_(-0.05, 0.05, generator=generator)
        for key, shape in shapes.items()
    }


def sd15_ldm_file(path) -> dict[str, torch.Tensor]:
    """Write random fp16 tensors with every name and shape of a real SD 1.5 checkpoint."""
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(load_component_config("sd15", "unet"))
        vae = AutoencoderKL.from_config(load_component_config("sd15", "vae"))
        text = CLIPTextModel(CLIPTextConfig(**load_component_config("sd15", "text_encoder")))
    shapes = {
        **unet_to_ldm({k: v.shape for k, v in unet.state_dict().items()}, unet.config),
        **clip_to_ldm(
            {k: v.shape for k, v in text.state_dict().items()}, "cond_stage_model.transformer."
        ),
    }
    generator = torch.Generator().manual_seed(0)
    tensors = random_like(shapes, generator)
    vae_tensors = random_like({k: v.shape for k, v in vae.state_dict().items()}, generator)
    tensors.update(vae_to_ldm(vae_tensors, vae.config, "first_stage_model."))
    save_file(tensors, path)
    return tensors


@pytest.mark.slow
def test_full_size_sd15_single_file(tmp_path):
    path = tmp_path / "sd15_random.safetensors"
    tensors = sd15_ldm_file(path)
    assert path.stat().st_size > 2_000_000_000

    start = time.perf_counter()
    loaded = load_checkpoint(path, LoadOverrides(dtype=torch.float16))
    seconds = time.perf_counter() - start

    assert loaded.family is ModelFamily.SD1
    assert loaded.model.prediction is PredictionType.EPSILON
    unet = loaded.model.unet
    assert sum(p.numel() for p in unet.parameters()) == SD15_UNET_PARAMETERS
    assert unet.config.block_out_channels == [320, 640, 1280, 1280]
    assert unet.config.cross_attention_dim == 768
    assert loaded.clip.encoders[0].model.config.num_hidden_layers == 12
    ldm_unet = unet_to_ldm(unet.state_dict(), unet.config)
    for key, tensor in ldm_unet.items():
        assert torch.equal(tensor, tensors[key]), key
    ldm_text = clip_to_ldm(
        loaded.clip.encoders[0].model.state_dict(), "cond_stage_model.transformer."
    )
    for key, tensor in ldm_text.items():
        assert torch.equal(tensor, tensors[key]), key
    ldm_vae = vae_to_ldm(loaded.vae.vae.state_dict(), loaded.vae.vae.config, "first_stage_model.")
    for key, tensor in ldm_vae.items():
        assert torch.equal(tensor, tensors[key]), key
    assert len(ldm_unet) + len(ldm_text) + len(ldm_vae) == len(tensors)
    assert seconds < 60, f"loading took {seconds:.1f} s"
