"""Loading single files and diffusers folders: exact tensors, detection, overrides, errors."""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from core.diffusion.errors import ModelLoadError
from core.diffusion.families import ModelFamily, PredictionType
from core.diffusion.loading import LoadOverrides, load_checkpoint, load_vae
from tests.diffusion.conftest import FORMATS, VARIANTS
from tests.helpers.tiny_models import ldm_state_dict, write_single_file


def assert_same_state(expected: torch.nn.Module, actual: torch.nn.Module) -> None:
    left, right = expected.state_dict(), actual.state_dict()
    assert left.keys() == right.keys()
    for key, tensor in left.items():
        assert torch.equal(tensor, right[key]), key


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_tensor_is_restored_exactly(variant, fmt, tiny_pipelines, tiny_files):
    pipeline = tiny_pipelines[variant]
    loaded = load_checkpoint(tiny_files[(variant, fmt)])

    assert loaded.family is pipeline.family
    assert loaded.model.prediction is pipeline.prediction
    assert loaded.model.is_inpainting == pipeline.inpainting
    assert_same_state(pipeline.unet, loaded.model.unet)
    assert_same_state(pipeline.vae, loaded.vae.vae)
    assert len(loaded.clip.encoders) == len(pipeline.text_encoders)
    for expected, encoder in zip(pipeline.text_encoders, loaded.clip.encoders, strict=True):
        assert_same_state(expected, encoder.model)
    assert loaded.model.scheduler_config["prediction_type"] == str(pipeline.prediction)


def test_unet_config_is_read_from_shapes(tiny_pipelines, tiny_files):
    for variant in VARIANTS:
        expected = tiny_pipelines[variant].unet.config
        actual = load_checkpoint(tiny_files[(variant, "safetensors")]).model.unet.config
        for field in (
            "in_channels",
            "block_out_channels",
            "layers_per_block",
            "cross_attention_dim",
            "down_block_types",
            "up_block_types",
            "use_linear_projection",
            "addition_embed_type",
            "addition_time_embed_dim",
        ):
            assert actual[field] == expected[field], (variant, field)


def test_sdxl_unet_and_text_encoders_run(tiny_files):
    loaded = load_checkpoint(tiny_files[("sdxl", "safetensors")])
    unet = loaded.model.unet
    context = sum(e.model.config.hidden_size for e in loaded.clip.encoders)
    pooled = loaded.clip.encoders[1].model.config.projection_dim
    output = unet(
        torch.randn(1, 4, 8, 8),
        10,
        torch.randn(1, 77, context),
        added_cond_kwargs={"text_embeds": torch.randn(1, pooled), "time_ids": torch.ones(1, 6)},
    ).sample
    assert output.shape == (1, 4, 8, 8)


def test_overrides_win_over_detection(tiny_files):
    path = tiny_files[("sd2", "safetensors")]
    assert load_checkpoint(path).model.prediction is PredictionType.EPSILON
    forced = load_checkpoint(path, LoadOverrides(prediction=PredictionType.V_PREDICTION))
    assert forced.model.prediction is PredictionType.V_PREDICTION
    assert forced.model.scheduler_config["prediction_type"] == "v_prediction"
    as_half = load_checkpoint(path, LoadOverrides(dtype=torch.bfloat16))
    assert next(as_half.model.unet.parameters()).dtype == torch.bfloat16


def test_sd2_v_prediction_heuristic_probe(tiny_pipelines, tmp_path):
    tensors = ldm_state_dict(tiny_pipelines["sd2"])
    probe = "model.diffusion_model.output_blocks.11.1.transformer_blocks.0.norm1.bias"
    from core.diffusion.architecture import detect_prediction

    tensors[probe] = torch.randn(320) * 0.2
    assert detect_prediction(tensors, ModelFamily.SD2) is PredictionType.V_PREDICTION
    tensors[probe] = torch.randn(320) * 0.01
    assert detect_prediction(tensors, ModelFamily.SD2) is PredictionType.EPSILON
    assert detect_prediction(tensors, ModelFamily.SD1) is PredictionType.EPSILON


def test_standalone_vae_file_loads(tiny_pipelines, tmp_path):
    pipeline = tiny_pipelines["sd1"]
    tensors = {
        k.removeprefix("first_stage_model."): v
        for k, v in ldm_state_dict(pipeline).items()
        if k.startswith("first_stage_model.")
    }
    save_file(tensors, tmp_path / "vae.safetensors")
    vae = load_vae(tmp_path / "vae.safetensors")
    assert_same_state(pipeline.vae, vae.vae)
    assert vae.scaling_factor == pytest.approx(0.18215)
    assert load_vae(tmp_path / "vae.safetensors", ModelFamily.SDXL).scaling_factor == 0.13025


class _RunsCode:
    """Unpickling this would create a marker file: the loader must refuse before that."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_ckpt_with_arbitrary_objects_is_refused_without_running_them(tmp_path):
    marker = tmp_path / "executed"
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "payload": _RunsCode(marker)}, path)
    with pytest.raises(ModelLoadError, match="Python objects other than tensors") as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)
    assert not marker.exists()


def test_plain_pickle_is_refused(tmp_path):
    marker = tmp_path / "executed"
    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps(_RunsCode(marker)))
    with pytest.raises(ModelLoadError):
        load_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize("suffix", [".safetensors", ".ckpt"])
def test_truncated_file_is_a_clear_error(tmp_path, tiny_files, suffix):
    source = tiny_files[("sd1", suffix.lstrip("."))]
    data = source.read_bytes()
    truncated = tmp_path / f"truncated{suffix}"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError, match="truncated, corrupt or not a model") as info:
        load_checkpoint(truncated)
    assert "truncated" in str(info.value)


@pytest.mark.parametrize("suffix", [".safetensors", ".ckpt"])
def test_non_model_file_is_a_clear_error(tmp_path, suffix):
    path = tmp_path / f"notes{suffix}"
    path.write_bytes(gzip.compress(b"shopping list"))
    with pytest.raises(ModelLoadError, match=r"notes"):
        load_checkpoint(path)


def test_unsupported_suffix(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"\0")
    with pytest.raises(ModelLoadError, match="not a model file type"):
        load_checkpoint(path)


def test_safetensors_without_model_tensors(tmp_path):
    path = tmp_path / "lora.safetensors"
    save_file({"lora_unet_x.lora_down.weight": torch.zeros(2, 2)}, path)
    with pytest.raises(ModelLoadError, match="is a LoRA, not a checkpoint"):
        load_checkpoint(path)
    save_file({"something.weight": torch.zeros(2)}, path)
    with pytest.raises(ModelLoadError, match="not a Stable Diffusion checkpoint"):
        load_checkpoint(path)


def test_unknown_architectures(tiny_pipelines, tmp_path):
    tensors = ldm_state_dict(tiny_pipelines["sdxl"])
    refiner = {
        k.replace("conditioner.embedders.1.", "conditioner.embedders.0."): v
        for k, v in tensors.items()
        if not k.startswith("conditioner.embedders.0.")
    }
    save_file(refiner, tmp_path / "refiner.safetensors")
    # Recognised as a refiner by its text encoder, but a base UNet cannot take five numbers.
    with pytest.raises(ModelLoadError, match=r"SDXL UNet that does not fit.*5 size numbers"):
        load_checkpoint(tmp_path / "refiner.safetensors")

    damaged = ldm_state_dict(tiny_pipelines["sd1"])
    del damaged["model.diffusion_model.out.2.bias"]
    save_file(damaged, tmp_path / "damaged.safetensors")
    with pytest.raises(ModelLoadError, match="UNet weights that do not match") as info:
        load_checkpoint(tmp_path / "damaged.safetensors")
    assert "damaged.safetensors" in str(info.value)

    no_text = {
        k: v for k, v in ldm_state_dict(tiny_pipelines["sd1"]).items() if "cond_stage" not in k
    }
    save_file(no_text, tmp_path / "unet_only.safetensors")
    with pytest.raises(ModelLoadError, match="no text encoder"):
        load_checkpoint(tmp_path / "unet_only.safetensors")


def test_fp16_file_loads_into_requested_dtype(tiny_pipelines, tmp_path):
    pipeline = tiny_pipelines["sd1"]
    path = write_single_file(pipeline, tmp_path / "half.safetensors", dtype=torch.float16)
    loaded = load_checkpoint(path)
    parameter = next(loaded.model.unet.parameters())
    assert parameter.dtype == torch.float32
    expected = next(pipeline.unet.parameters()).half().float()
    assert torch.equal(parameter, expected)


def test_diffusers_folder_errors(tmp_path, tiny_files):
    with pytest.raises(ModelLoadError, match=r"without model_index\.json"):
        load_checkpoint(tmp_path)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model_index.json").write_text('{"unet": ["diffusers", "UNet2DConditionModel"]}')
    with pytest.raises(ModelLoadError, match="no unet/ component"):
        load_checkpoint(broken)


def test_missing_tokenizer_is_a_clear_error(tmp_path):
    from core.diffusion.resources import load_clip_tokenizer

    with pytest.raises(ModelLoadError, match=r"vocab\.json, merges\.txt are missing"):
        load_clip_tokenizer(tmp_path)


def test_missing_config_is_a_clear_error():
    from core.diffusion.resources import load_component_config

    with pytest.raises(ModelLoadError, match="shipped unet config is missing"):
        load_component_config("no_such_family", "unet")


@pytest.mark.parametrize("data", [b"plain text, not a pickle", b"", b"\x80\x02}q\x00(X"])
def test_garbage_ckpt_is_unreadable_not_dangerous(tmp_path, data):
    path = tmp_path / "garbage.ckpt"
    path.write_bytes(data)
    with pytest.raises(ModelLoadError, match="not a readable PyTorch checkpoint"):
        load_checkpoint(path)
