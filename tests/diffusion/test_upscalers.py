"""Upscale model files: recognised from their keys in every published layout, run at their
scale, tiled without seams, and refused with a message naming the file when unsupported."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from core.diffusion.errors import ModelLoadError
from core.diffusion.upscalers import load_upscale_model, tile_count, tile_spans, upscale_image
from tests.helpers.upscale_models import rrdbnet_weights, srvgg_weights, to_original_layout

#: (upsamples, pixel-unshuffle) → scale, as Real-ESRGAN and ESRGAN files have them.
RRDB_VARIANTS = {1: (2, 4), 2: (2, 2), 4: (2, 1), 8: (3, 1)}


def _save(tmp_path, name, weights):
    path = tmp_path / name
    if path.suffix == ".safetensors":
        save_file({k: v.contiguous() for k, v in weights.items()}, path)
    else:
        torch.save(weights, path)
    return path


def _picture(height, width, batch=1, seed=1):
    return torch.rand(batch, height, width, 3, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("scale", sorted(RRDB_VARIANTS))
@pytest.mark.parametrize("layout", ["basicsr", "original"])
def test_rrdbnet_files_load_at_their_scale_in_both_layouts(tmp_path, scale, layout):
    upsamples, unshuffle = RRDB_VARIANTS[scale]
    weights = rrdbnet_weights(upsamples=upsamples, unshuffle=unshuffle, blocks=2, features=8)
    if layout == "original":
        weights = to_original_layout(weights)
    model = load_upscale_model(_save(tmp_path, f"x{scale}.pth", weights))
    assert model.scale == scale
    assert model.multiple_of == unshuffle
    assert f"×{scale}" in model.architecture and "2 blocks, 8 features" in model.architecture
    out = upscale_image(model, _picture(12, 20))
    assert out.shape == (1, 12 * scale, 20 * scale, 3)
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def test_both_layouts_of_the_same_weights_give_the_same_pictures(tmp_path):
    weights = rrdbnet_weights(features=8, growth=4, blocks=2)
    new = load_upscale_model(_save(tmp_path, "new.safetensors", weights))
    old = load_upscale_model(_save(tmp_path, "old.safetensors", to_original_layout(weights)))
    picture = _picture(10, 14)
    torch.testing.assert_close(upscale_image(new, picture), upscale_image(old, picture))


def test_sizes_that_pixel_unshuffle_cannot_split_are_padded_and_cropped(tmp_path):
    model = load_upscale_model(_save(tmp_path, "x1.pth", rrdbnet_weights(upsamples=2, unshuffle=4)))
    out = upscale_image(model, _picture(13, 10, batch=2))
    assert out.shape == (2, 13, 10, 3)


def test_real_esrgan_params_ema_and_data_parallel_prefixes_are_taken_off(tmp_path):
    weights = rrdbnet_weights()
    wrapped = {
        "params_ema": {f"module.{k}": v for k, v in weights.items()},
        "params": {f"module.{k}": torch.zeros_like(v) for k, v in weights.items()},
    }
    model = load_upscale_model(_save(tmp_path, "RealESRGAN_x4plus.pth", wrapped))
    reference = load_upscale_model(_save(tmp_path, "plain.safetensors", weights))
    picture = _picture(8, 8)
    torch.testing.assert_close(upscale_image(model, picture), upscale_image(reference, picture))


@pytest.mark.parametrize("scale", [2, 4])
def test_srvgg_compact_files_load_with_their_scale_and_depth(tmp_path, scale):
    model = load_upscale_model(
        _save(tmp_path, "general.pth", srvgg_weights(scale=scale, convolutions=3))
    )
    assert model.scale == scale
    assert "SRVGGNetCompact" in model.architecture and "3 convolutions" in model.architecture
    assert upscale_image(model, _picture(9, 7)).shape == (1, 9 * scale, 7 * scale, 3)


def test_srvgg_adds_its_residual_to_the_nearest_neighbour_enlargement(tmp_path):
    weights = srvgg_weights(scale=4)
    last = max(int(key.split(".")[1]) for key in weights)
    weights[f"body.{last}.weight"] = torch.zeros_like(weights[f"body.{last}.weight"])
    weights[f"body.{last}.bias"] = torch.zeros_like(weights[f"body.{last}.bias"])
    model = load_upscale_model(_save(tmp_path, "zero.safetensors", weights))
    picture = _picture(6, 5)
    nearest = F.interpolate(picture.movedim(-1, 1), scale_factor=4, mode="nearest")
    torch.testing.assert_close(upscale_image(model, picture), nearest.movedim(1, -1))


def test_the_model_reports_the_storages_it_holds(tmp_path):
    model = load_upscale_model(_save(tmp_path, "x4.pth", rrdbnet_weights()))
    expected = sum(p.numel() * 4 for p in model.network.parameters())
    assert model.cache_nbytes() == expected
    assert len(model.cache_storages()) == len(list(model.network.parameters()))


@pytest.mark.parametrize(
    ("variant", "overlap"),
    [("x4", 24), ("x1-unshuffle4", 80), ("srvgg", 8)],
)
def test_tiled_output_equals_untiled_when_the_overlap_covers_the_receptive_field(
    tmp_path, variant, overlap
):
    weights = {
        "x4": rrdbnet_weights(),
        "x1-unshuffle4": rrdbnet_weights(upsamples=2, unshuffle=4),
        "srvgg": srvgg_weights(convolutions=3),
    }[variant]
    model = load_upscale_model(_save(tmp_path, "m.safetensors", weights))
    tile = 4 * overlap  # cores of twice the overlap
    picture = _picture(tile + 20, tile + 4, batch=2)
    whole = upscale_image(model, picture, tile=1024)
    steps: list[tuple[int, int]] = []
    tiled = upscale_image(
        model, picture, tile=tile, overlap=overlap, progress=lambda d, n: steps.append((d, n))
    )
    total = tile_count(model, picture, tile, overlap)
    assert total >= 2 * 3 * 3  # tiles meet inside the picture in both directions
    assert steps == [(done, total) for done in range(total + 1)]
    torch.testing.assert_close(tiled, whole, atol=1e-5, rtol=0)


@pytest.mark.parametrize(("length", "multiple_of"), [(1000, 1), (203, 1), (512, 4), (700, 2)])
def test_tile_cores_cover_each_pixel_once_in_windows_no_larger_than_the_tile(length, multiple_of):
    spans = tile_spans(length, 128, 32, multiple_of)
    covered = [pixel for _, start, end, _ in spans for pixel in range(start, end)]
    assert covered == list(range(length))
    for window_start, start, end, window_end in spans:
        assert window_end - window_start <= 128
        assert window_start == max(0, start - 32) and window_end == min(length, end + 32)
        assert start % multiple_of == 0 and window_start % multiple_of == 0
    assert tile_spans(100, 128, 32) == [(0, 0, 100, 100)]


def test_running_out_of_memory_halves_the_tile_and_starts_again(tmp_path):
    model = load_upscale_model(_save(tmp_path, "m.safetensors", srvgg_weights()))
    real_forward = model.network.forward
    sizes: list[int] = []

    def forward(x):
        sizes.append(max(x.shape[-2:]))
        if max(x.shape[-2:]) > 160:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real_forward(x)

    model.network.forward = forward
    picture = _picture(300, 200)
    out = upscale_image(model, picture, tile=512, overlap=16)
    # 512: the whole picture, too big; 256: a 240-pixel first window, too big; then 128.
    assert sizes[:2] == [300, 240] and max(sizes[2:]) <= 128
    model.network.forward = real_forward
    torch.testing.assert_close(out, upscale_image(model, picture, tile=1024), atol=1e-5, rtol=0)

    model.network.forward = lambda x: (_ for _ in ()).throw(torch.OutOfMemoryError("full"))
    with pytest.raises(torch.OutOfMemoryError):
        upscale_image(model, picture)


def test_unsupported_architectures_are_named_with_what_is_supported(tmp_path):
    hat = {
        "conv_first.weight": torch.zeros(8, 3, 3, 3),
        "relative_position_index_SA": torch.zeros(16, 16, dtype=torch.long),
        "layers.0.residual_group.blocks.0.attn.relative_position_bias_table": torch.zeros(4, 2),
    }
    path = _save(tmp_path, "HAT_SRx4_ImageNet-pretrain.pth", hat)
    with pytest.raises(ModelLoadError) as raised:
        load_upscale_model(path)
    message = str(raised.value)
    assert str(path) in message and "is a HAT upscale model" in message
    assert "RRDBNet" in message and "SRVGGNetCompact" in message and "SwinIR" in message

    swinir = {
        "conv_first.weight": torch.zeros(8, 3, 3, 3),
        "layers.0.residual_group.blocks.0.attn.relative_position_bias_table": torch.zeros(9, 2),
    }
    path = _save(tmp_path, "001_classicalSR_DF2K_s64w8_SwinIR-M_x4.pth", swinir)
    with pytest.raises(ModelLoadError, match=r"SwinIR-M_x4\.pth: .*has no layers\.0\."):
        load_upscale_model(path)

    sd = {"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(4, 4, 3, 3)}
    with pytest.raises(ModelLoadError, match="Load Checkpoint"):
        load_upscale_model(_save(tmp_path, "sd15.safetensors", sd))

    with pytest.raises(ModelLoadError, match="no upscale model LatentLoom recognises"):
        load_upscale_model(_save(tmp_path, "other.pth", {"encoder.weight": torch.zeros(2)}))


def test_weights_that_do_not_fit_the_network_are_refused_by_name(tmp_path):
    weights = rrdbnet_weights()
    weights["body.0.rdb1.conv1x1.weight"] = torch.zeros(4, 8, 1, 1)  # an ESRGAN+ style extra
    with pytest.raises(ModelLoadError, match=r"unexpected body\.0\.rdb1\.conv1x1\.weight"):
        load_upscale_model(_save(tmp_path, "plus.pth", weights))

    weights = rrdbnet_weights()
    weights["conv_hr.weight"] = torch.zeros(8, 6, 3, 3)
    with pytest.raises(ModelLoadError, match=r"misshapen conv_hr\.weight"):
        load_upscale_model(_save(tmp_path, "bad.pth", weights))


def test_grayscale_models_are_refused_as_not_rgb(tmp_path):
    with pytest.raises(ModelLoadError, match=r"1-channel pictures.*only RGB"):
        load_upscale_model(_save(tmp_path, "gray.pth", rrdbnet_weights(channels=1)))
