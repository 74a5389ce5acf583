"""Control-LoRA files (a ControlNet stored as low-rank changes to the SDXL UNet it runs with)
make the same ControlNet as the full file they abbreviate, steer the sampler exactly as it
does, and are refused with their name when damaged or used with another model."""

from __future__ import annotations

import functools

import pytest
import torch
from diffusers import ControlNetModel
from safetensors.torch import save_file

from core.diffusion.controlnet import apply_control, load_control_model
from core.diffusion.controlnet.control_lora import MARKER
from core.diffusion.errors import ModelLoadError
from core.diffusion.families import ModelFamily
from core.diffusion.sampling import SamplerSettings, sample
from tests.helpers.controlnets import make_control_lora
from tests.helpers.tiny_models import make_tiny_pipeline
from tests.sampling.harness import model_of, random_conditioning


@functools.cache
def _pipeline(family: ModelFamily = ModelFamily.SDXL):
    return make_tiny_pipeline(family, seed=3)


@functools.cache
def _full_and_file() -> tuple[ControlNetModel, dict[str, torch.Tensor]]:
    return make_control_lora(_pipeline().unet, seed=11)


def _write(tmp_path, tensors, name="control-lora-canny-rank2.safetensors"):
    path = tmp_path / name
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path))
    return path


def _residuals(controlnet, seed=0):
    unet = _pipeline().unet
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 4, 8, 8, generator=generator)
    context = torch.randn(2, 77, int(unet.config.cross_attention_dim), generator=generator)
    pooled = int(_pipeline().text_encoders[1].config.projection_dim)
    added = {
        "text_embeds": torch.randn(2, pooled, generator=generator),
        "time_ids": torch.tensor([[64.0, 64.0, 0.0, 0.0, 64.0, 64.0]] * 2),
    }
    hint = torch.rand(2, 3, 64, 64, generator=generator)
    with torch.no_grad():
        down, mid = controlnet(
            x,
            torch.tensor(500.0),
            encoder_hidden_states=context,
            controlnet_cond=hint,
            added_cond_kwargs=added,
            return_dict=False,
        )
    return [*down, mid]


def test_a_control_lora_makes_the_controlnet_it_abbreviates(tmp_path):
    full, tensors = _full_and_file()
    control = load_control_model(_write(tmp_path, tensors))
    assert control.is_control_lora and control.family is ModelFamily.SDXL
    assert control.cache_nbytes() == sum(t.nbytes for k, t in tensors.items() if k != MARKER)
    unet = _pipeline().unet
    built = control.module_for(unet)
    assert built is control.module_for(unet)  # built once per UNet
    ours, theirs = built.state_dict(), full.state_dict()
    assert ours.keys() == theirs.keys()
    for name, tensor in theirs.items():
        torch.testing.assert_close(ours[name], tensor, rtol=0, atol=1e-6, msg=name)
    # Layers the file leaves as they are share the UNet's memory instead of copying it.
    assert ours["down_blocks.0.resnets.0.norm1.weight"].data_ptr() == (
        unet.state_dict()["down_blocks.0.resnets.0.norm1.weight"].data_ptr()
    )
    for a, b in zip(_residuals(built), _residuals(full), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    # Without the low-rank changes the ControlNet differs: they were applied, not ignored.
    plain = {k: v for k, v in tensors.items() if not k.endswith((".up", ".down"))}
    unchanged = load_control_model(_write(tmp_path, plain, "plain.safetensors")).module_for(unet)
    assert not torch.allclose(_residuals(unchanged)[0], _residuals(full)[0], atol=1e-4)


def test_a_control_lora_steers_the_sampler_as_the_full_controlnet_does(tmp_path):
    from core.diffusion.controlnet import ControlModel

    full, tensors = _full_and_file()
    control = load_control_model(_write(tmp_path, tensors))
    reference = ControlModel(full, "controlnet", ModelFamily.SDXL, tmp_path / "full.safetensors")
    pipeline = _pipeline()
    positive, negative = random_conditioning(pipeline, 1), random_conditioning(pipeline, 2)
    hint = torch.rand(1, 64, 64, 3, generator=torch.Generator().manual_seed(5))
    settings = SamplerSettings("euler", "normal", 3, 5.0, 7)

    def run(with_control):
        steered = apply_control((positive, negative), with_control, hint, 0.8)
        return sample(model_of(pipeline), *steered, torch.zeros(1, 4, 8, 8), settings)

    ours, theirs = run(control), run(reference)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)
    # The ControlNet built for the run shares the UNet's tensors: it is let go after it.
    assert not control._built
    without = sample(model_of(pipeline), positive, negative, torch.zeros(1, 4, 8, 8), settings)
    assert not torch.allclose(ours, without, atol=1e-3)


def test_a_control_lora_for_another_model_is_refused_with_its_name(tmp_path):
    _, tensors = _full_and_file()
    control = load_control_model(_write(tmp_path, tensors))
    with pytest.raises(ModelLoadError, match=r"rank2\.safetensors: .*does not fit the model"):
        control.module_for(_pipeline(ModelFamily.SD1).unet)


def test_damaged_control_lora_files_name_what_is_wrong(tmp_path):
    _, tensors = _full_and_file()
    no_hint = {k: v for k, v in tensors.items() if not k.startswith("input_hint_block.")}
    with pytest.raises(ModelLoadError, match=r"no-hint\.safetensors: .*no hint encoder"):
        load_control_model(_write(tmp_path, no_hint, "no-hint.safetensors"))
    pair = next(k for k in tensors if k.endswith(".down"))
    half = {k: v for k, v in tensors.items() if k != pair}
    with pytest.raises(ModelLoadError, match=r"half\.safetensors: .*incomplete"):
        load_control_model(_write(tmp_path, half, "half.safetensors"))
    stray = {**tensors, "output_blocks.0.0.in_layers.2.weight": torch.zeros(1)}
    control = load_control_model(_write(tmp_path, stray, "stray.safetensors"))
    with pytest.raises(ModelLoadError, match=r"stray\.safetensors: .*output_blocks\.0\.0"):
        control.module_for(_pipeline().unet)
