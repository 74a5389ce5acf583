"""The demo ControlNet's data and training at toy scale: silhouettes drawn from the scenes' own
geometry, an honest hold-out of places, a ControlNet that starts as the unchanged UNet and learns
from the hint, and the one command exporting a folder LatentLoom's loader reads."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from diffusers import UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

from tools.demo_model import components, silhouettes, train_controlnet
from tools.demo_model.judge import judge
from tools.demo_model.scenes import COLOURS, POSITION_WORDS, Scene, render
from tools.demo_model.train.data import TokenCache
from tools.demo_model.train.shape_codes import shape_code_maps, write_shape_codes

TINY_UNET = {
    "sample_size": 16,
    "in_channels": 4,
    "out_channels": 4,
    "down_block_types": ["CrossAttnDownBlock2D"] * 2,
    "up_block_types": ["CrossAttnUpBlock2D"] * 2,
    "block_out_channels": [16, 32],
    "only_cross_attention": [True, False],
    "layers_per_block": 1,
    "cross_attention_dim": 32,
    "attention_head_dim": 4,
    "norm_num_groups": 8,
    "addition_embed_type": "text",
    "addition_embed_type_num_heads": 2,
}
TINY_TEXT = {
    **components.TEXT_ENCODER_CONFIG,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "projection_dim": 32,
}


def _scene(shape: str, size: str, centre: tuple[int, int]) -> Scene:
    obj = silhouettes.placed_object(shape, "red", size, centre)
    return Scene(background="blue", objects=(obj,))


@pytest.mark.parametrize("shape", ["circle", "square", "triangle"])
def test_a_silhouette_is_the_scenes_object_in_white_on_black(shape) -> None:
    scene = _scene(shape, "big", (22, 41))
    hint = silhouettes.silhouette(scene)
    assert hint.shape == (64, 64) and hint.dtype == np.uint8
    assert hint.min() == 0 and hint.max() == 255
    # Exactly the pixels the scene's object covers, anti-aliased edges included.
    drawn = render(scene).astype(float)
    covered = np.linalg.norm(drawn - COLOURS["blue"], axis=2) > 1
    assert np.array_equal(hint > 0, covered)
    # The judge reads the silhouette as the scene's shape, where the scene has it.
    in_hint = judge(np.repeat(hint[..., None], 3, axis=2))
    in_scene = judge(render(scene))
    assert in_hint.shape == in_scene.shape == shape
    assert np.allclose(in_hint.centroid, in_scene.centroid, atol=0.5)


def test_objects_are_placed_by_their_box_centre_and_refused_where_they_do_not_fit() -> None:
    obj = silhouettes.placed_object("circle", "red", "small", (12, 40))
    assert silhouettes.centre_of(obj) == (12, 40)
    assert obj.position == "left"  # the nearest named place carries the offset
    centroid = judge(silhouettes.silhouette(Scene("black", (obj,)))[..., None].repeat(3, 2))
    assert np.allclose(centroid.centroid, (12, 40), atol=0.6)  # the box centre
    with pytest.raises(ValueError, match=r"big circle centred on \(10, 32\) does not fit"):
        silhouettes.placed_object("circle", "red", "big", (10, 32))


def test_held_out_places_never_appear_in_training_scenes() -> None:
    train = silhouettes.control_scenes(400, seed=3)
    held = silhouettes.control_scenes(100, seed=3, held_out=True)
    train_centres = {silhouettes.centre_of(s.objects[0]) for s in train}
    held_centres = {silhouettes.centre_of(s.objects[0]) for s in held}
    assert not any(silhouettes.held_out_place(c) for c in train_centres)
    assert all(silhouettes.held_out_place(c) for c in held_centres)
    # Spread over the picture, not one corner: held-out places in every quadrant.
    quadrants = {(x >= 32, y >= 32) for x, y in held_centres}
    assert len(quadrants) == 4
    # Places between the five named ones: far more distinct centres than five.
    assert len(train_centres) > 100
    assert silhouettes.control_scenes(50, seed=3) == train[:50]


def test_prompts_leave_the_place_to_the_silhouette_and_captions_name_it_sometimes() -> None:
    scene = _scene("square", "small", (50, 14))
    prompt = silhouettes.control_prompt(scene)
    assert prompt == "a red square, blue background"
    place_words = {w for words in POSITION_WORDS.values() for w in words}
    rng = random.Random(0)
    captions = [silhouettes.control_caption(scene, rng) for _ in range(200)]
    named = [c for c in captions if any(w in c for w in POSITION_WORDS[scene.objects[0].position])]
    assert 0.3 < len(named) / len(captions) < 0.7
    assert all(("square" in c or "box" in c) and "red" in c for c in captions)
    assert not any(w in prompt for w in place_words)


def _tiny_models() -> tuple[UNet2DConditionModel, CLIPTextModel]:
    torch.manual_seed(0)
    unet = UNet2DConditionModel(**TINY_UNET).eval().requires_grad_(False)
    text = CLIPTextModel(CLIPTextConfig(**TINY_TEXT)).eval().requires_grad_(False)
    return unet, text


def test_the_controlnet_copies_the_unet_encoder_and_starts_as_no_change() -> None:
    unet, _ = _tiny_models()
    controlnet = train_controlnet.controlnet_from_unet(unet)
    assert controlnet.config.addition_embed_type_num_heads == 2  # the UNet's, not diffusers' 64
    assert controlnet.config.norm_num_groups == 8
    assert controlnet.config.conditioning_channels == 1
    for name, tensor in unet.down_blocks.state_dict().items():
        assert torch.equal(controlnet.down_blocks.state_dict()[name], tensor)
    x, context = torch.randn(2, 4, 16, 16), torch.randn(2, 77, 32)
    hint = torch.rand(2, 1, 64, 64)
    t = torch.tensor([10, 900])
    with torch.no_grad():
        down, mid = controlnet(x, t, context, controlnet_cond=hint, return_dict=False)
        steered = unet(
            x, t, context, down_block_additional_residuals=down, mid_block_additional_residual=mid
        ).sample
        plain = unet(x, t, context).sample
    assert torch.equal(steered, plain)


def test_training_steps_teach_the_controlnet_to_use_the_hint() -> None:
    unet, text = _tiny_models()
    vae = components.new_vae().eval()
    scenes = silhouettes.control_scenes(8, seed=0)
    data = train_controlnet.prepare_data(scenes, vae, torch.tensor([0.0, 1, 0, 0]), 2.5, 3.0)
    assert data.means.shape == (8, 4, 16, 16) and data.hints.shape == (8, 1, 64, 64)
    # The demo model's shape codes are written in, as its UNet learned them.
    assert torch.allclose(data.means[:, 1:2], 2.5 * shape_code_maps(scenes, 16, 64))
    controlnet = train_controlnet.controlnet_from_unet(unet).train()
    optimizer = torch.optim.AdamW(controlnet.parameters(), lr=1e-3)
    config = train_controlnet.ControlConfig(batch=4)
    tokens = TokenCache(components.load_tokenizer())
    alphas = components.new_scheduler().alphas_cumprod.float()
    generator, rng = torch.Generator().manual_seed(0), random.Random(0)
    for _ in range(3):
        index = torch.arange(4)
        loss = train_controlnet.step_loss(
            controlnet, unet, text, tokens, data, index, 0.5, alphas, config, generator, rng
        )
        assert torch.isfinite(loss)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert all(p.grad is None for p in unet.parameters())
    assert controlnet.controlnet_mid_block.weight.abs().sum() > 0
    x, context = torch.randn(1, 4, 16, 16), torch.randn(1, 77, 32)
    with torch.no_grad():
        outputs = [
            controlnet(x, torch.tensor([500]), context, controlnet_cond=h, return_dict=False)[1]
            for h in (data.hints[:1], data.hints[1:2])
        ]
    assert not torch.allclose(outputs[0], outputs[1])


def test_learning_rate_warms_up_then_follows_a_cosine_over_the_budget() -> None:
    config = train_controlnet.ControlConfig(lr=1e-3, warmup_steps=10, final_lr_fraction=0.1)
    lr = train_controlnet.learning_rate
    assert lr(0, 0.0, config) == pytest.approx(1e-4)
    assert lr(9, 0.0, config) == pytest.approx(1e-3)
    assert lr(50, 0.5, config) == pytest.approx(0.55e-3)
    assert lr(500, 1.0, config) == pytest.approx(1e-4)
    assert lr(500, 1.5, config) == pytest.approx(1e-4)


def test_one_command_trains_and_exports_a_controlnet_the_loader_reads(tmp_path) -> None:
    from safetensors import safe_open

    from core.diffusion.controlnet import load_control_model

    model, out = tmp_path / "model", tmp_path / "controlnet"
    unet, text = _tiny_models()
    unet.save_pretrained(model / "unet")
    text.save_pretrained(model / "text_encoder")
    components.new_vae().save_pretrained(model / "vae")
    write_shape_codes(model, torch.tensor([0.0, 1, 0, 0]), 2.5)
    args = ["--model", str(model), "--out", str(out), "--scenes", "8", "--batch", "2"]
    summary = train_controlnet.main([*args, "--steps", "2", "--precision", "fp32"])
    assert summary["steps"] == 2
    assert json.loads((out / "train_log.json").read_text())["steps"] == 2
    loaded = load_control_model(out / "diffusion_pytorch_model.safetensors")
    assert loaded.kind == "controlnet"
    assert loaded.module.config.addition_embed_type == "text"
    with safe_open(out / "diffusion_pytorch_model.safetensors", framework="pt") as handle:
        assert {handle.get_slice(k).get_dtype() for k in handle.keys()} == {"F16"}  # noqa: SIM118
