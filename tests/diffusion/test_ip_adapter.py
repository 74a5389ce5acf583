"""IP-Adapters: both file layouts load, the variant, width and token count come from the
shapes, the patched UNet matches diffusers' IP-Adapter attention on the same weights, and the
patch leaves the loaded model alone, honours its weight and window, and stacks."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from core.diffusion.clip_vision import ClipVisionModel, encode_pixels
from core.diffusion.errors import ModelLoadError
from core.diffusion.families import ModelFamily, PredictionType
from core.diffusion.ip_adapter import (
    ImagePromptAttention,
    apply_ip_adapter,
    cross_attention_layers,
    image_tokens,
    ip_adapter_from_state_dict,
    load_ip_adapter,
)
from core.diffusion.models import DiffusionModel
from core.diffusion.samplers import NoiseLevels
from tests.helpers.image_prompts import tiny_clip_vision
from tests.helpers.ip_adapters import ip_adapter_tensors, nested, write_ip_adapter
from tests.helpers.tiny_models import make_tiny_pipeline

EMBED, HIDDEN = 24, 32  # the tiny encoder's image embedding and hidden widths


@pytest.fixture(scope="module")
def pipelines():
    return {family: make_tiny_pipeline(family) for family in (ModelFamily.SD1, ModelFamily.SDXL)}


@pytest.fixture(scope="module")
def encoder():
    return ClipVisionModel(tiny_clip_vision(seed=3))


def _adapter(unet, variant, seed=0, name=None):
    clip_dim = EMBED if variant == "plain" else HIDDEN
    tokens = 4 if variant == "plain" else 6
    tensors = ip_adapter_tensors(unet, variant, clip_dim, tokens=tokens, seed=seed)
    path = Path(name or f"ip-adapter-{variant}.safetensors")
    return tensors, ip_adapter_from_state_dict(tensors, path)


def _psnr(ours: torch.Tensor, reference: torch.Tensor) -> float:
    mse = torch.mean((ours - reference) ** 2)
    peak = reference.max() - reference.min()
    return float(10 * torch.log10(peak**2 / mse))


def _unet_inputs(unet, family, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 4, 8, 8, generator=g)
    text = torch.randn(2, 7, int(unet.config.cross_attention_dim), generator=g)
    kwargs = {}
    if family is ModelFamily.SDXL:
        kwargs["added_cond_kwargs"] = {
            "text_embeds": torch.randn(2, 32, generator=g),
            "time_ids": torch.randn(2, 6, generator=g),
        }
    return x, torch.tensor(500), text, kwargs


# --- files ---------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["plain", "plus"])
def test_both_file_layouts_load_to_the_same_adapter(tmp_path, pipelines, variant):
    unet = pipelines[ModelFamily.SD1].unet
    tensors, _ = _adapter(unet, variant)
    flat = load_ip_adapter(write_ip_adapter(tensors, tmp_path / "a.safetensors"))
    legacy = load_ip_adapter(write_ip_adapter(tensors, tmp_path / "a.bin"))
    assert isinstance(torch.load(tmp_path / "a.bin", weights_only=True)["image_proj"], dict)
    for adapter in (flat, legacy):
        assert adapter.variant == variant
        assert adapter.cross_attention_dim == 32
        assert adapter.clip_dim == (EMBED if variant == "plain" else HIDDEN)
        assert adapter.tokens == (4 if variant == "plain" else 6)
        # The odd processor numbers: every cross-attention layer of the UNet.
        assert sorted(adapter.layers) == [n for n, _ in cross_attention_layers(unet)]
        assert sorted(adapter.layers)[:2] == [1, 3]
        projection = {"image_proj." + k: v for k, v in adapter.image_proj.state_dict().items()}
        assert projection.keys() == {k for k in tensors if k.startswith("image_proj.")}
        for key, tensor in projection.items():
            assert torch.equal(tensor, tensors[key]), key
        for number, layer in adapter.layers.items():
            assert torch.equal(layer.to_k_ip.weight, tensors[f"ip_adapter.{number}.to_k_ip.weight"])
            assert torch.equal(layer.to_v_ip.weight, tensors[f"ip_adapter.{number}.to_v_ip.weight"])


@pytest.mark.parametrize(("width", "family"), [(768, "SD 1.5"), (2048, "SDXL")])
def test_the_family_and_token_count_come_from_the_shapes(width, family):
    tensors = {
        "image_proj.proj.weight": torch.zeros(16 * width, 8),
        "image_proj.proj.bias": torch.zeros(16 * width),
        "image_proj.norm.weight": torch.ones(width),
        "image_proj.norm.bias": torch.zeros(width),
        "ip_adapter.1.to_k_ip.weight": torch.zeros(320, width),
        "ip_adapter.1.to_v_ip.weight": torch.zeros(320, width),
    }
    adapter = ip_adapter_from_state_dict(tensors, Path("a.safetensors"))
    assert (adapter.family, adapter.tokens, adapter.clip_dim) == (family, 16, 8)


def test_the_plus_resampler_shape_is_read_from_its_tensors(pipelines):
    tensors = ip_adapter_tensors(pipelines[ModelFamily.SD1].unet, "plus", HIDDEN, tokens=16)
    adapter = ip_adapter_from_state_dict(tensors, Path("plus.bin"))
    resampler = adapter.image_proj
    assert adapter.tokens == 16 and len(resampler.layers) == 4
    assert resampler.layers[0][0].heads == 2  # 128 query channels in 64-wide heads
    assert resampler(torch.randn(3, 17, HIDDEN)).shape == (3, 16, 32)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"image_proj.proj.3.weight": torch.zeros(8)}, "full-face"),
        ({"image_proj.perceiver_resampler.proj_in.weight": torch.zeros(8)}, "FaceID"),
    ],
)
def test_unsupported_variants_are_refused_by_name(pipelines, change, message):
    tensors, _ = _adapter(pipelines[ModelFamily.SD1].unet, "plain")
    with pytest.raises(ModelLoadError) as caught:
        ip_adapter_from_state_dict({**tensors, **change}, Path("ip-adapter-faceid.bin"))
    assert message in str(caught.value) and "ip-adapter-faceid.bin" in str(caught.value)


@pytest.mark.parametrize("missing", ["k", "v"])
def test_files_that_are_not_adapters_or_are_damaged_get_clear_errors(pipelines, missing):
    with pytest.raises(ModelLoadError, match="is not an IP-Adapter"):
        ip_adapter_from_state_dict({"model.weight": torch.zeros(2)}, Path("lora.safetensors"))
    tensors, _ = _adapter(pipelines[ModelFamily.SD1].unet, "plain")
    del tensors[f"ip_adapter.3.to_{missing}_ip.weight"]
    with pytest.raises(ModelLoadError, match=rf"broken.*ip_adapter\.3\.to_{missing}_ip\.weight"):
        ip_adapter_from_state_dict(tensors, Path("broken.safetensors"))


# --- against diffusers ---------------------------------------------------------------------


def _reference_embeds(variant, encoder, pixels):
    """What diffusers' pipelines give the UNet for (negative, positive) rows."""
    output = encode_pixels(encoder, pixels)
    if variant == "plain":
        return torch.stack([torch.zeros_like(output.image_embeds), output.image_embeds])
    blank = encode_pixels(encoder, torch.zeros_like(pixels)).penultimate_hidden_states
    return torch.stack([blank, output.penultimate_hidden_states])


@pytest.mark.parametrize("family", [ModelFamily.SD1, ModelFamily.SDXL])
@pytest.mark.parametrize("variant", ["plain", "plus"])
def test_the_patched_unet_matches_diffusers_ip_adapter_attention(
    pipelines, encoder, family, variant
):
    unet = pipelines[family].unet
    tensors, adapter = _adapter(unet, variant)
    pixels = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    positive, negative = image_tokens(adapter, encode_pixels(encoder, pixels), encoder)
    model = DiffusionModel(unet, family, PredictionType.EPSILON)
    patched = apply_ip_adapter(model, adapter, positive, negative, weight=0.7)
    extra = patched.unet_extras[-1]
    x, t, text, kwargs = _unet_inputs(unet, family)
    reference = copy.deepcopy(unet)
    reference._load_ip_adapter_weights([nested(tensors)], low_cpu_mem_usage=False)
    for processor in reference.attn_processors.values():
        if hasattr(processor, "scale"):
            processor.scale = [0.7]
    added = {**kwargs.get("added_cond_kwargs", {})}
    added["image_embeds"] = [_reference_embeds(variant, encoder, pixels)]
    with torch.no_grad():
        expected = reference(x, t, encoder_hidden_states=text, added_cond_kwargs=added).sample
        ours = patched.unet(
            x,
            t,
            encoder_hidden_states=text,
            cross_attention_kwargs=extra.rows([0, 1], 1, x.device, x.dtype),
            **kwargs,
        ).sample
        plain = unet(x, t, encoder_hidden_states=text, **kwargs).sample
    assert _psnr(ours, expected) >= 40.0
    # The picture changes the output far more than the two implementations differ.
    assert (ours - plain).abs().max() > 100 * (ours - expected).abs().max()


def test_two_stacked_adapters_match_diffusers_with_both_loaded(pipelines, encoder):
    unet = pipelines[ModelFamily.SD1].unet
    first_tensors, first = _adapter(unet, "plain", seed=1)
    second_tensors, second = _adapter(unet, "plus", seed=2)
    pixels = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(6))
    output = encode_pixels(encoder, pixels)
    model = DiffusionModel(unet, ModelFamily.SD1, PredictionType.EPSILON)
    once = apply_ip_adapter(model, first, *image_tokens(first, output, encoder), weight=0.5)
    twice = apply_ip_adapter(once, second, *image_tokens(second, output, encoder), weight=0.8)
    name = cross_attention_layers(unet)[0][1]
    assert set(twice.unet.get_submodule(name).processor.adapters) == {"ip0", "ip1"}
    x, t, text, _ = _unet_inputs(unet, ModelFamily.SD1)
    kwargs: dict = {"ip_hidden_states": {}}
    for extra in twice.unet_extras:
        kwargs["ip_hidden_states"].update(
            extra.rows([0, 1], 1, x.device, x.dtype)["ip_hidden_states"]
        )
    reference = copy.deepcopy(unet)
    reference._load_ip_adapter_weights(
        [nested(first_tensors), nested(second_tensors)], low_cpu_mem_usage=False
    )
    for processor in reference.attn_processors.values():
        if hasattr(processor, "scale"):
            processor.scale = [0.5, 0.8]
    embeds = [_reference_embeds(v, encoder, pixels) for v in ("plain", "plus")]
    with torch.no_grad():
        expected = reference(
            x, t, encoder_hidden_states=text, added_cond_kwargs={"image_embeds": embeds}
        ).sample
        ours = twice.unet(x, t, encoder_hidden_states=text, cross_attention_kwargs=kwargs).sample
        one = once.unet(
            x,
            t,
            encoder_hidden_states=text,
            cross_attention_kwargs=once.unet_extras[-1].rows([0, 1], 1, x.device, x.dtype),
        ).sample
    assert _psnr(ours, expected) >= 40.0
    assert (ours - one).abs().max() > 100 * (ours - expected).abs().max()


# --- the patch -----------------------------------------------------------------------------


def test_applying_leaves_the_loaded_model_untouched_and_shares_its_weights(pipelines, encoder):
    unet = pipelines[ModelFamily.SD1].unet
    _, adapter = _adapter(unet, "plain")
    tokens = image_tokens(adapter, encode_pixels(encoder, torch.zeros(1, 3, 32, 32)), encoder)
    model = DiffusionModel(unet, ModelFamily.SD1, PredictionType.EPSILON)
    patched = apply_ip_adapter(model, adapter, *tokens)
    assert patched.unet is not unet and model.unet_extras == ()
    for _, name in cross_attention_layers(unet):
        assert not isinstance(unet.get_submodule(name).processor, ImagePromptAttention)
        assert isinstance(patched.unet.get_submodule(name).processor, ImagePromptAttention)
    base = dict(unet.named_parameters())
    for key, tensor in patched.unet.named_parameters():
        if key in base:
            assert tensor.data_ptr() == base[key].data_ptr(), key
    # The patched model holds the adapter's key/value projections (shared, not copied) and the
    # tokens; the image projection stays with the IPADAPTER value.
    extra = patched.unet_extras[0]
    kv = sum(p.nbytes for layer in adapter.layers.values() for p in layer.parameters())
    tokens_bytes = extra.positive.nbytes + extra.negative.nbytes
    assert patched.cache_nbytes() == model.cache_nbytes() + kv + tokens_bytes


def test_weight_zero_and_steps_outside_the_window_give_the_plain_model(pipelines, encoder):
    unet = pipelines[ModelFamily.SD1].unet
    _, adapter = _adapter(unet, "plus")
    tokens = image_tokens(adapter, encode_pixels(encoder, torch.ones(1, 3, 32, 32)), encoder)
    model = DiffusionModel(unet, ModelFamily.SD1, PredictionType.EPSILON)
    levels = NoiseLevels.from_config(model.scheduler_config)
    high, middle, low = (float(levels.sigma(t)) for t in (999, 500, 10))
    windowed = apply_ip_adapter(model, adapter, *tokens, weight=1.0, start=0.3, end=0.7)
    extra = windowed.unet_extras[0]
    assert [extra.active_at(s, levels) for s in (high, middle, low)] == [False, True, False]
    muted = apply_ip_adapter(model, adapter, *tokens, weight=0.0).unet_extras[0]
    assert not muted.active_at(middle, levels)


def test_an_adapter_for_another_family_is_refused_naming_both(pipelines, encoder):
    _, sdxl_adapter = _adapter(pipelines[ModelFamily.SDXL].unet, "plain", name="xl.safetensors")
    model = DiffusionModel(pipelines[ModelFamily.SD1].unet, ModelFamily.SD1, PredictionType.EPSILON)
    tokens = (torch.zeros(1, 4, 96), torch.zeros(1, 4, 96))
    with pytest.raises(ValueError, match=r"xl\.safetensors .*96-wide.*32-wide"):
        apply_ip_adapter(model, sdxl_adapter, *tokens)


def test_an_encoder_of_the_wrong_width_is_refused(pipelines):
    _, adapter = _adapter(pipelines[ModelFamily.SD1].unet, "plain")
    other = ClipVisionModel(tiny_clip_vision(seed=1, projection_dim=16))
    output = encode_pixels(other, torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError, match=r"24-wide CLIP image embedding.*16-wide"):
        image_tokens(adapter, output, other)


@pytest.mark.parametrize(
    ("folder", "last", "first_block", "inner"),
    [("sd15", 31, 0, {320, 640, 1280}), ("sdxl_base", 139, 1, {640, 1280})],
)
def test_full_size_unets_number_their_cross_attention_layers_as_the_published_files(
    folder, last, first_block, inner
):
    """ip-adapter_sd15 holds ip_adapter.1 … ip_adapter.31 and the SDXL adapters
    ip_adapter.1 … ip_adapter.139: the odd numbers up to those, in the UNet's own order."""
    from diffusers import UNet2DConditionModel

    from core.diffusion.resources import load_component_config

    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(load_component_config(folder, "unet"))
    layers = cross_attention_layers(unet)
    assert [number for number, _ in layers] == list(range(1, last + 1, 2))
    first = f"down_blocks.{first_block}.attentions.0.transformer_blocks.0.attn2"
    assert layers[0][1] == first
    assert {unet.get_submodule(name).to_k.out_features for _, name in layers} == inner


@pytest.mark.parametrize("variant", ["plain", "plus"])
def test_several_pictures_become_one_longer_token_sequence(pipelines, encoder, variant):
    _, adapter = _adapter(pipelines[ModelFamily.SD1].unet, variant)
    pixels = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(8))
    both = image_tokens(adapter, encode_pixels(encoder, pixels), encoder)
    first = image_tokens(adapter, encode_pixels(encoder, pixels[:1]), encoder)
    second = image_tokens(adapter, encode_pixels(encoder, pixels[1:]), encoder)
    n = adapter.tokens
    assert both[0].shape == (1, 2 * n, 32) and both[1].shape == (1, 2 * n, 32)
    torch.testing.assert_close(both[0], torch.cat([first[0], second[0]], dim=1))
    torch.testing.assert_close(both[1], first[1].repeat(1, 2, 1))
    assert not torch.allclose(first[0], second[0])


@pytest.mark.slow
def test_full_size_sd15_adapters_match_diffusers():
    """Real widths (ViT-H features, 8 heads of 40-160 channels, a 12-head resampler with 16
    queries): the patched full-size SD 1.5 UNet agrees with diffusers' on random weights."""
    from diffusers import UNet2DConditionModel

    from core.diffusion.ip_adapter import project
    from core.diffusion.resources import load_component_config

    torch.manual_seed(0)
    unet = UNet2DConditionModel.from_config(load_component_config("sd15", "unet")).eval()
    model = DiffusionModel(unet, ModelFamily.SD1, PredictionType.EPSILON)
    g = torch.Generator().manual_seed(1)
    x, t = torch.randn(2, 4, 8, 8, generator=g), torch.tensor(600)
    text = torch.randn(2, 77, 768, generator=g)
    built = {
        "plain": ip_adapter_tensors(unet, "plain", 1024, tokens=4),
        "plus": ip_adapter_tensors(unet, "plus", 1280, tokens=16, resampler_width=768, heads=12),
    }
    features = {"plain": torch.randn(2, 1024, generator=g), "plus": torch.randn(2, 257, 1280)}
    results = {}
    with torch.no_grad():
        for variant, tensors in built.items():
            adapter = ip_adapter_from_state_dict(tensors, Path(f"{variant}.safetensors"))
            tokens = project(adapter, features[variant])  # rows: negative, positive
            patched = apply_ip_adapter(model, adapter, tokens[1:], tokens[:1], weight=0.8)
            kwargs = patched.unet_extras[-1].rows([0, 1], 1, x.device, x.dtype)
            results[variant] = patched.unet(
                x, t, encoder_hidden_states=text, cross_attention_kwargs=kwargs
            ).sample
        plain = unet(x, t, encoder_hidden_states=text).sample
        # diffusers patches the UNet it is given: the last use of this one.
        unet._load_ip_adapter_weights(
            [nested(built["plain"]), nested(built["plus"])], low_cpu_mem_usage=False
        )
        for variant, scales in (("plain", [0.8, 0.0]), ("plus", [0.0, 0.8])):
            for processor in unet.attn_processors.values():
                if hasattr(processor, "scale"):
                    processor.scale = scales
            embeds = [features["plain"][:, None], features["plus"][:, None]]
            expected = unet(
                x, t, encoder_hidden_states=text, added_cond_kwargs={"image_embeds": embeds}
            ).sample
            assert _psnr(results[variant], expected) >= 40.0, variant
            assert (results[variant] - plain).abs().max() > 100 * (
                results[variant] - expected
            ).abs().max()


def test_an_adapter_joins_a_half_precision_unet_in_its_precision(pipelines, encoder):
    unet = copy.deepcopy(pipelines[ModelFamily.SD1].unet).to(torch.bfloat16)
    _, adapter = _adapter(unet, "plus")  # float32, as loaded for another model
    tokens = image_tokens(adapter, encode_pixels(encoder, torch.ones(1, 3, 32, 32)), encoder)
    model = DiffusionModel(unet, ModelFamily.SD1, PredictionType.EPSILON)
    patched = apply_ip_adapter(model, adapter, *tokens)
    name = cross_attention_layers(unet)[0][1]
    layer = patched.unet.get_submodule(name).processor.adapters["ip0"]
    assert layer.to_k_ip.weight.dtype == torch.bfloat16
    x, t, text, _ = _unet_inputs(unet, ModelFamily.SD1)
    x, text = x.to(torch.bfloat16), text.to(torch.bfloat16)
    kwargs = patched.unet_extras[0].rows([0, 1], 1, x.device, x.dtype)
    with torch.no_grad():
        ours = patched.unet(x, t, encoder_hidden_states=text, cross_attention_kwargs=kwargs)
        plain = unet(x, t, encoder_hidden_states=text).sample
    assert ours.sample.dtype == torch.bfloat16 and not torch.equal(ours.sample, plain)


# --- attention masks -----------------------------------------------------------------------


def test_layer_sizes_follow_the_unets_rounded_up_halvings():
    from core.diffusion.ip_adapter import layer_size

    assert layer_size(8, 8, 64) == (8, 8)
    assert layer_size(8, 8, 16) == (4, 4)
    assert layer_size(5, 7, 12) == (3, 4)
    assert layer_size(5, 7, 4) == (2, 2)
    with pytest.raises(ValueError, match="5×7 input has 10 positions"):
        layer_size(5, 7, 10)


def test_a_mask_scales_the_image_attention_per_position(pipelines, encoder):
    from core.diffusion.ip_adapter import TokenRows

    unet = pipelines[ModelFamily.SD1].unet
    _, adapter = _adapter(unet, "plain")
    tokens = image_tokens(adapter, encode_pixels(encoder, torch.ones(1, 3, 32, 32)), encoder)[0]
    model = DiffusionModel(unet, ModelFamily.SD1, PredictionType.EPSILON)
    patched = apply_ip_adapter(model, adapter, tokens, tokens)
    attention = patched.unet.get_submodule(cross_attention_layers(unet)[0][1])
    processor = attention.processor
    g = torch.Generator().manual_seed(4)
    hidden = torch.randn(2, 16, int(attention.to_q.in_features), generator=g)
    text = torch.randn(2, 7, 32, generator=g)
    latent_mask = torch.rand(2, 8, 8, generator=g)  # the call's latent is 8×8: this level 4×4
    rows = tokens.expand(2, -1, -1)
    with torch.no_grad():
        base = processor.base(attention, hidden, encoder_hidden_states=text)
        full = processor(attention, hidden, text, ip_hidden_states={"ip0": TokenRows(rows, 0.7)})
        masked = processor(
            attention, hidden, text, ip_hidden_states={"ip0": TokenRows(rows, 0.7, latent_mask)}
        )
    per_position = torch.nn.functional.interpolate(latent_mask[:, None], (4, 4), mode="bilinear")
    expected = base + (full - base) * per_position.reshape(2, 16, 1)
    torch.testing.assert_close(masked, expected, atol=1e-6, rtol=1e-5)
    assert not torch.allclose(masked, full) and not torch.allclose(masked, base)


def test_a_full_mask_is_no_mask_and_an_empty_one_is_no_picture(pipelines, encoder):
    unet = pipelines[ModelFamily.SD1].unet
    _, adapter = _adapter(unet, "plus")
    tokens = image_tokens(adapter, encode_pixels(encoder, torch.ones(1, 3, 32, 32)), encoder)
    model = DiffusionModel(unet, ModelFamily.SD1, PredictionType.EPSILON)
    x, t, text, _ = _unet_inputs(unet, ModelFamily.SD1)
    outputs = {}
    for name, mask in (
        ("none", None),
        ("ones", torch.ones(64, 64)),
        ("zeros", torch.zeros(64, 64)),
    ):
        patched = apply_ip_adapter(model, adapter, *tokens, weight=0.9, mask=mask)
        kwargs = patched.unet_extras[0].rows([0, 1], 1, x.device, x.dtype, (8, 8))
        with torch.no_grad():
            outputs[name] = patched.unet(
                x, t, encoder_hidden_states=text, cross_attention_kwargs=kwargs
            ).sample
    with torch.no_grad():
        plain = unet(x, t, encoder_hidden_states=text).sample
    assert torch.equal(outputs["ones"], outputs["none"])
    assert torch.equal(outputs["zeros"], plain)
    assert not torch.equal(outputs["none"], plain)
