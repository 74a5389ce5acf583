"""SDXL refiner checkpoints: recognised from their keys, loaded exactly, conditioned on a score."""

from __future__ import annotations

import pytest
import torch

from core.diffusion import conditioning as cond
from core.diffusion.architecture import detect_family, is_sdxl_refiner
from core.diffusion.conditioning import SizeConditioning, sdxl_time_ids
from core.diffusion.families import ModelFamily
from core.diffusion.loading import load_checkpoint
from core.diffusion.text_encoding import encode_prompt, encode_sdxl
from tests.helpers.tiny_models import (
    ldm_state_dict,
    make_tiny_pipeline,
    write_diffusers_folder,
    write_single_file,
)


@pytest.fixture(scope="module")
def refiner():
    return make_tiny_pipeline(ModelFamily.SDXL, refiner=True, seed=5)


@pytest.fixture(scope="module")
def files(refiner, tmp_path_factory):
    root = tmp_path_factory.mktemp("refiner")
    return {
        "safetensors": write_single_file(refiner, root / "refiner.safetensors"),
        "ckpt": write_single_file(refiner, root / "refiner.ckpt"),
        "diffusers": write_diffusers_folder(refiner, root / "refiner_diffusers"),
    }


def test_refiner_is_recognised_from_its_single_encoder(refiner, tiny_pipelines, tmp_path):
    tensors = ldm_state_dict(refiner)
    assert any(k.startswith("conditioner.embedders.0.model.") for k in tensors)
    assert not any(k.startswith("conditioner.embedders.1.") for k in tensors)
    assert is_sdxl_refiner(tensors) and detect_family(tensors, tmp_path) is ModelFamily.SDXL
    assert not is_sdxl_refiner(ldm_state_dict(tiny_pipelines["sdxl"]))


@pytest.mark.parametrize("kind", ["safetensors", "ckpt", "diffusers"])
def test_refiner_loads_exactly(refiner, files, kind):
    loaded = load_checkpoint(files[kind])
    assert loaded.family is ModelFamily.SDXL and len(loaded.clip.encoders) == 1
    config = loaded.model.unet.config
    assert config.addition_time_embed_dim == 8 and config.cross_attention_dim == 64
    assert list(config.block_out_channels) == [32, 64, 64, 64]
    expected = refiner.unet.state_dict()
    for name, tensor in loaded.model.unet.state_dict().items():
        torch.testing.assert_close(tensor, expected[name], rtol=0, atol=0, msg=name)
    encoder = loaded.clip.encoders[0]
    assert encoder.with_projection and encoder.pad_token_id == 0 and encoder.default_layer == -2
    original = refiner.text_encoders[0].state_dict()
    for name, tensor in encoder.model.state_dict().items():
        if name in original:
            torch.testing.assert_close(tensor, original[name], rtol=0, atol=0, msg=name)


def test_refiner_unet_takes_five_numbers(files):
    loaded = load_checkpoint(files["safetensors"])
    [entry] = encode_prompt(loaded.clip, "a castle")
    ids = sdxl_time_ids(entry.options.size, 64, 64)
    assert ids.tolist() == [[64, 64, 0, 0, 6.0]]
    unet = loaded.model.unet
    out = unet(
        torch.zeros(1, 4, 8, 8),
        torch.tensor([500]),
        encoder_hidden_states=entry.embeds,
        added_cond_kwargs={"text_embeds": entry.pooled, "time_ids": ids},
    ).sample
    assert out.shape == (1, 4, 8, 8)
    # The score changes the UNet's prediction: it reaches the additional embedding.
    low = ids.clone()
    low[0, 4] = 2.5
    other = unet(
        torch.zeros(1, 4, 8, 8),
        torch.tensor([500]),
        encoder_hidden_states=entry.embeds,
        added_cond_kwargs={"text_embeds": entry.pooled, "time_ids": low},
    ).sample
    assert not torch.allclose(out, other)


def test_sizing_refiner_conditioning_keeps_its_score(files):
    clip = load_checkpoint(files["safetensors"]).clip
    scored = encode_prompt(clip, "cat", SizeConditioning((768, 1024), aesthetic_score=2.5))
    sized = cond.set_size(scored, SizeConditioning((1024, 1024), (0, 8), (512, 512)))
    assert sdxl_time_ids(sized[0].options.size, 64, 64).tolist() == [[1024, 1024, 0, 8, 2.5]]
    with pytest.raises(ValueError, match="SDXL base model's CLIP"):
        encode_sdxl(clip, "cat", "cat")


def test_full_size_refiner_architecture_is_read_back_from_its_keys(tmp_path):
    """The shipped refiner config, built at full size on the meta device and named the LDM
    way, is what the loader reads back from the names and shapes alone."""
    from diffusers import UNet2DConditionModel

    from core.diffusion.architecture import (
        UNET_PREFIX,
        sdxl_time_embed_dim,
        strip_prefix,
        unet_config_from_ldm,
    )
    from core.diffusion.keymap import unet_to_ldm
    from core.diffusion.resources import load_component_config

    shipped = load_component_config("sdxl_refiner", "unet")
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(shipped)
    ldm = strip_prefix(unet_to_ldm(unet.state_dict(), unet.config), UNET_PREFIX)
    read = unet_config_from_ldm(ldm, load_component_config("sdxl_refiner", "unet"), tmp_path)
    for key in (
        "block_out_channels",
        "down_block_types",
        "up_block_types",
        "cross_attention_dim",
        "attention_head_dim",
        "transformer_layers_per_block",
        "projection_class_embeddings_input_dim",
        "layers_per_block",
    ):
        assert read[key] == shipped[key], key
    assert sdxl_time_embed_dim(read, 1280, numbers=5) == 256
    assert ldm["label_emb.0.0.weight"].shape == (1536, 2560)
