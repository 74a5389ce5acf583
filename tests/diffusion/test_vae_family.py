"""Standalone VAEs get their family's latent scale from what the file says about itself."""

from __future__ import annotations

import pytest
from safetensors.torch import save_file

from core.diffusion.families import ModelFamily
from core.diffusion.loading import load_vae
from tests.helpers.tiny_models import ldm_state_dict, write_single_file

SD1_SCALE, SDXL_SCALE = 0.18215, 0.13025


@pytest.fixture(scope="module")
def vae_tensors(tiny_pipelines):
    return {
        k.removeprefix("first_stage_model."): v
        for k, v in ldm_state_dict(tiny_pipelines["sdxl"]).items()
        if k.startswith("first_stage_model.")
    }


@pytest.mark.parametrize(
    ("name", "scale"),
    [
        ("sdxl_vae.safetensors", SDXL_SCALE),
        ("sdxl-vae-fp16-fix.safetensors", SDXL_SCALE),
        ("juggernautXL_vae.safetensors", SDXL_SCALE),
        ("xlVAEC_f1.safetensors", SDXL_SCALE),
        ("vae-ft-mse-840000-ema-pruned.safetensors", SD1_SCALE),
        ("axle.safetensors", SD1_SCALE),
    ],
)
def test_file_name_marks_sdxl_vaes(vae_tensors, tmp_path, name, scale):
    save_file(vae_tensors, tmp_path / name)
    assert load_vae(tmp_path / name).scaling_factor == scale


def test_metadata_wins_over_the_name(vae_tensors, tmp_path):
    path = tmp_path / "my-vae.safetensors"
    save_file(vae_tensors, path, metadata={"modelspec.architecture": "stable-diffusion-xl-v1-base"})
    notices: list[str] = []
    assert load_vae(path, notices=notices).scaling_factor == SDXL_SCALE
    assert notices == [
        f"{path.name}: a sdxl VAE by its metadata (modelspec.architecture "
        "stable-diffusion-xl-v1-base), latent scale 0.13025."
    ]
    path = tmp_path / "xl-named.safetensors"
    save_file(vae_tensors, path, metadata={"modelspec.architecture": "stable-diffusion-v1"})
    assert load_vae(path).scaling_factor == SD1_SCALE


def test_a_whole_checkpoint_says_its_family(tiny_pipelines, tmp_path):
    path = write_single_file(tiny_pipelines["sdxl"], tmp_path / "model.safetensors")
    assert load_vae(path).scaling_factor == SDXL_SCALE


def test_undetermined_vae_falls_back_to_sd1_with_a_notice(vae_tensors, tmp_path):
    path = tmp_path / "anime.safetensors"
    save_file(vae_tensors, path)
    notices: list[str] = []
    assert load_vae(path, notices=notices).scaling_factor == SD1_SCALE
    [notice] = notices
    assert "anime.safetensors" in notice and "set family to sdxl" in notice
    assert load_vae(path, ModelFamily.SDXL).scaling_factor == SDXL_SCALE
