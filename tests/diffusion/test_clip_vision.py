"""CLIP image encoders: both key layouts load to the same encoder, full-size layouts map onto
the shipped configs name for name and shape for shape, and pictures are prepared as CLIP's."""

from __future__ import annotations

import itertools
import json

import pytest
import torch
from safetensors.torch import save_file
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

from core.diffusion.clip_vision import (
    CLIP_MEAN,
    CLIP_STD,
    clip_vision_from_state_dict,
    encode_images,
    encode_pixels,
    load_clip_vision,
    openclip_visual_to_hf,
    preprocess,
    vision_config_from_weights,
)
from core.diffusion.errors import ModelLoadError
from core.diffusion.resources import CONFIGS
from tests.helpers.image_prompts import (
    clip_vision_tensors,
    openclip_visual_layout,
    tiny_clip_vision,
    write_clip_vision_file,
)


def _pixels(seed: int = 0) -> torch.Tensor:
    return torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(
    ("layout", "name"), [("hf", "model.safetensors"), ("openclip", "open_clip_pytorch_model.bin")]
)
def test_each_layout_loads_to_the_encoder_it_was_written_from(tmp_path, layout, name):
    original = tiny_clip_vision(seed=1)
    path = write_clip_vision_file(original, tmp_path / name, layout)
    loaded = load_clip_vision(path)
    assert loaded.image_size == 32 and loaded.embed_dim == 24
    for key, tensor in original.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], tensor), key
    pixels = _pixels()
    expected = original(pixel_values=pixels, output_hidden_states=True)
    ours = encode_pixels(loaded, pixels)
    assert torch.equal(ours.image_embeds, expected.image_embeds)
    assert torch.equal(ours.penultimate_hidden_states, expected.hidden_states[-2])
    assert torch.equal(ours.last_hidden_state, expected.last_hidden_state)
    held = itertools.chain(original.parameters(), original.buffers())
    assert loaded.cache_nbytes() == sum(t.nbytes for t in held)


def test_the_encoder_inside_a_stable_unclip_checkpoint_is_found_under_its_prefix(tmp_path):
    original = tiny_clip_vision(seed=2)
    tensors = clip_vision_tensors(original, "openclip", prefix="embedder.model.")
    tensors["model.diffusion_model.out.2.weight"] = torch.zeros(4, 32, 3, 3)
    loaded = clip_vision_from_state_dict(tensors, tmp_path / "sd21-unclip-h.ckpt")
    pixels = _pixels(1)
    assert torch.equal(
        encode_pixels(loaded, pixels).image_embeds, original(pixel_values=pixels).image_embeds
    )


@pytest.mark.parametrize(
    ("variant", "width", "layers", "mlp", "projection"),
    [
        ("vit_l_14", 1024, 24, 4096, 768),
        ("vit_h_14", 1280, 32, 5120, 1024),
        ("vit_bigg_14", 1664, 48, 8192, 1280),
    ],
)
def test_full_size_openclip_layouts_map_onto_the_shipped_configs(
    variant, width, layers, mlp, projection
):
    """The published OpenCLIP names and shapes of each encoder become exactly the transformers
    model of the shipped config (on the meta device: no memory)."""
    shapes = openclip_visual_layout(width, layers, mlp, projection)
    visual = {k.removeprefix("visual."): torch.empty(s, device="meta") for k, s in shapes.items()}
    converted = openclip_visual_to_hf(visual)
    values, found = vision_config_from_weights(converted)
    assert found == variant
    shipped = json.loads((CONFIGS / "clip_vision" / f"{variant}.json").read_text())
    for key in ("hidden_size", "intermediate_size", "num_hidden_layers", "projection_dim"):
        assert values[key] == shipped[key], key
    assert (values["image_size"], values["patch_size"]) == (224, 14)
    with torch.device("meta"):
        model = CLIPVisionModelWithProjection(CLIPVisionConfig(**values))
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in converted.items()} == expected


def test_center_crop_keeps_the_middle_and_none_squashes_the_whole_picture():
    """A wide picture, red on its outer quarters and blue between: cropped, CLIP sees blue
    only; squashed, red at both sides."""
    image = torch.zeros(1, 32, 64, 3)
    image[:, :, :16, 0] = image[:, :, 48:, 0] = 1.0
    image[:, :, 16:48, 2] = 1.0
    mean, std = torch.tensor(CLIP_MEAN), torch.tensor(CLIP_STD)
    cropped = preprocess(image, 32, "center") * std.view(1, 3, 1, 1) + mean.view(1, 3, 1, 1)
    squashed = preprocess(image, 32, "none") * std.view(1, 3, 1, 1) + mean.view(1, 3, 1, 1)
    assert cropped.shape == squashed.shape == (1, 3, 32, 32)
    assert float(cropped[0, 0].max()) < 0.02 and float(cropped[0, 2].min()) > 0.98
    assert float(squashed[0, 0, :, 0].min()) > 0.98 and float(squashed[0, 0, :, -1].min()) > 0.98
    assert float(squashed[0, 2, :, 16].min()) > 0.98


def test_pixels_are_rounded_to_8_bits_and_normalised_with_clips_statistics():
    grey = torch.full((1, 10, 10, 3), 0.6001)
    out = preprocess(grey, 8, "none")
    expected = (153 / 255 - torch.tensor(CLIP_MEAN)) / torch.tensor(CLIP_STD)
    assert torch.allclose(out[0, :, 3, 3], expected, atol=1e-6)


def test_encoding_pictures_batches_them_and_a_bad_crop_is_refused(tmp_path):
    encoder = load_clip_vision(write_clip_vision_file(tiny_clip_vision(), tmp_path / "m.pt"))
    pictures = torch.rand(3, 40, 48, 3, generator=torch.Generator().manual_seed(0))
    out = encode_images(encoder, pictures, "center")
    assert out.image_embeds.shape == (3, 24)
    assert out.penultimate_hidden_states.shape == (3, 17, 32)
    one = encode_images(encoder, pictures[1:2], "center")
    assert torch.allclose(one.image_embeds[0], out.image_embeds[1], atol=1e-5)
    with pytest.raises(ValueError, match="crop must be"):
        encode_images(encoder, pictures, "sideways")  # type: ignore[arg-type]


def test_a_file_without_an_image_encoder_is_refused_naming_it(tmp_path):
    path = tmp_path / "clip_vision" / "not_vision.safetensors"
    path.parent.mkdir()
    save_file({"text_model.embeddings.token_embedding.weight": torch.zeros(4, 4)}, path)
    with pytest.raises(ModelLoadError, match=r"not_vision\.safetensors.*no CLIP image encoder"):
        load_clip_vision(path)
    broken = tiny_clip_vision().state_dict()
    del broken["visual_projection.weight"]
    with pytest.raises(ModelLoadError, match="visual_projection"):
        clip_vision_from_state_dict(broken, tmp_path / "broken.safetensors")
