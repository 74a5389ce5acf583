"""SwinIR upscalers: files in the authors' key layout (``params_ema``/``params``, stored masks
and position indices included) load with every hyperparameter read from their tensors, run at
their scale, and the window machinery agrees with small cases worked by hand and with a
pixel-by-pixel reference of one shifted Swin layer."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from core.diffusion.errors import ModelLoadError
from core.diffusion.upscalers import load_upscale_model, upscale_image
from core.diffusion.upscalers.swinir import (
    SwinIRShape,
    SwinTransformerBlock,
    relative_position_index,
    shifted_window_mask,
    window_partition,
    window_reverse,
)
from tests.helpers.upscale_models import swinir_weights


def _save(tmp_path, weights, name="001_classicalSR_DF2K_s64w8_SwinIR-M_x2.pth"):
    path = tmp_path / name
    torch.save(weights, path)
    return path


def _picture(height, width, seed=1):
    return torch.rand(1, height, width, 3, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(
    ("upsampler", "scale", "resi"),
    [
        ("pixelshuffle", 2, "1conv"),
        ("pixelshuffle", 4, "1conv"),
        ("pixelshuffle", 3, "3conv"),
        ("pixelshuffledirect", 2, "1conv"),
        ("nearest+conv", 4, "3conv"),
        ("nearest+conv", 2, "1conv"),
        ("", 1, "1conv"),
    ],
)
def test_every_hyperparameter_is_read_from_the_tensors(tmp_path, upsampler, scale, resi):
    options = dict(
        embed_dim=16,
        depths=(2, 1, 3),
        heads=(2, 4, 1),
        window=4,
        mlp_ratio=1.5,
        upsampler=upsampler,
        scale=scale,
        features=8,
        resi=resi,
    )
    model = load_upscale_model(_save(tmp_path, swinir_weights(**options)))
    assert model.network.shape == SwinIRShape(
        in_channels=3,
        out_channels=3,
        embed_dim=16,
        depths=(2, 1, 3),
        num_heads=(2, 4, 1),
        window_size=4,
        mlp_ratio=1.5,
        upsampler=upsampler,
        scale=scale,
        features=8 if upsampler in ("pixelshuffle", "nearest+conv") else 64,
        resi_connection=resi,
    )
    assert model.scale == scale and model.architecture.startswith(f"SwinIR ×{scale}")
    picture = _picture(13, 10)  # not whole windows: padded, then cropped
    first = upscale_image(model, picture)
    assert first.shape == (1, 13 * scale, 10 * scale, 3)
    assert torch.isfinite(first).all()
    torch.testing.assert_close(upscale_image(model, picture), first, rtol=0, atol=0)


@pytest.mark.parametrize("wrapper", ["params", ""])
def test_params_and_bare_files_load_the_same_network(tmp_path, wrapper):
    ema = load_upscale_model(_save(tmp_path, swinir_weights(), "a.pth"))
    other = load_upscale_model(_save(tmp_path, swinir_weights(wrapper=wrapper), "b.pth"))
    picture = _picture(8, 8)
    torch.testing.assert_close(upscale_image(other, picture), upscale_image(ema, picture))


def test_tiles_smaller_than_the_picture_give_its_size_and_stay_close(tmp_path):
    model = load_upscale_model(_save(tmp_path, swinir_weights(scale=2)))
    picture = _picture(40, 36)
    whole = upscale_image(model, picture, tile=1024)
    tiled = upscale_image(model, picture, tile=24, overlap=8)
    assert tiled.shape == whole.shape == (1, 80, 72, 3)
    # Attention reaches past any overlap, so tiles differ slightly, never wildly.
    assert (tiled - whole).abs().mean() < 0.05


def test_window_partition_and_reverse_on_a_four_by_four_picture():
    x = torch.arange(16.0).view(1, 4, 4, 1)
    windows = window_partition(x, 2)
    expected = [[[0, 1], [4, 5]], [[2, 3], [6, 7]], [[8, 9], [12, 13]], [[10, 11], [14, 15]]]
    assert windows[..., 0].tolist() == expected
    torch.testing.assert_close(window_reverse(windows, 2, 4, 4), x)
    two = torch.randn(2, 6, 9, 5)
    torch.testing.assert_close(window_reverse(window_partition(two, 3), 3, 6, 9), two)


def test_relative_position_index_of_a_two_by_two_window():
    # Positions (0,0) (0,1) (1,0) (1,1); row (Δy+1)·3 + (Δx+1) of a 3×3 table.
    assert relative_position_index(2).tolist() == [
        [4, 3, 1, 0],
        [5, 4, 2, 1],
        [7, 6, 4, 3],
        [8, 7, 5, 4],
    ]


def test_the_shifted_window_mask_separates_regions_that_were_not_neighbours():
    mask = shifted_window_mask(4, 4, 2, 1)
    assert mask.shape == (4, 4, 4)
    assert (mask[0] == 0).all()  # the top-left window lies in one region
    # The bottom-right window holds four regions: only each pixel with itself attends.
    assert torch.equal(mask[3] == 0, torch.eye(4, dtype=torch.bool))
    # The top-right window: columns 2 and 3 come from different regions, rows do not.
    same = torch.tensor([[1, 0, 1, 0], [0, 1, 0, 1], [1, 0, 1, 0], [0, 1, 0, 1]]).bool()
    assert torch.equal(mask[1] == 0, same)
    assert set(mask.unique().tolist()) == {0.0, -100.0}


def _reference_block(block: SwinTransformerBlock, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """One Swin layer pixel by pixel: each pixel attends to the pixels of its (shifted) window
    that lay in the same region before the cyclic shift, with the table's bias by offset."""
    window, shift = block.window, block.shift
    attn = block.attn
    heads, dim = attn.heads, x.shape[-1]
    y = block.norm1(x[0])
    q, k, v = attn.qkv(y).view(h * w, 3, heads, dim // heads).unbind(1)
    table = attn.relative_position_bias_table

    def band(i: int, side: int) -> int:
        return 0 if i < side - window else 1 if i < side - shift else 2

    out = torch.zeros(h * w, heads, dim // heads)
    for si in range(h):
        for sj in range(w):
            pi, pj = (si + shift) % h, (sj + shift) % w  # the pixel at shifted place (si, sj)
            scores, values = [], []
            for ti in range(si // window * window, si // window * window + window):
                for tj in range(sj // window * window, sj // window * window + window):
                    qi, qj = (ti + shift) % h, (tj + shift) % w
                    other = qi * w + qj
                    row = (si - ti + window - 1) * (2 * window - 1) + (sj - tj + window - 1)
                    score = (q[pi * w + pj] * k[other]).sum(-1) * attn.scale + table[row]
                    if shift and (band(si, h), band(sj, w)) != (band(ti, h), band(tj, w)):
                        score = score - 100.0
                    scores.append(score)
                    values.append(v[other])
            weights = torch.stack(scores).softmax(0)  # [window², heads]
            out[pi * w + pj] = (weights[..., None] * torch.stack(values)).sum(0)
    z = x[0] + attn.proj(out.reshape(h * w, dim))
    return (z + block.mlp(block.norm2(z)))[None]


@pytest.mark.parametrize("shift", [0, 2])
def test_a_swin_layer_agrees_with_a_pixel_by_pixel_reference(shift):
    torch.manual_seed(3)
    shape = SwinIRShape(3, 3, 8, (2,), (2,), 4, 2.0, "", 1)
    block = SwinTransformerBlock(shape, heads=2, shift=shift)
    with torch.no_grad():
        for parameter in block.parameters():
            parameter.copy_(torch.randn(parameter.shape) * 0.3)
        x = torch.randn(1, 8 * 12, 8)
        torch.testing.assert_close(block(x, (8, 12)), _reference_block(block, x, 8, 12))


def test_variants_not_run_are_refused_with_the_file_name(tmp_path):
    weights = swinir_weights(wrapper="")
    weights["absolute_pos_embed"] = torch.zeros(1, 64, 12)
    with pytest.raises(ModelLoadError, match=r"ape\.pth: .*absolute position embedding"):
        load_upscale_model(_save(tmp_path, weights, "ape.pth"))
    swin2sr = swinir_weights(wrapper="")
    swin2sr["layers.0.residual_group.blocks.0.attn.cpb_mlp.0.weight"] = torch.zeros(4, 2)
    with pytest.raises(ModelLoadError, match=r"Swin2SR_x4\.pth: is a Swin2SR upscale model"):
        load_upscale_model(_save(tmp_path, swin2sr, "Swin2SR_x4.pth"))
    broken = swinir_weights(wrapper="")
    broken["layers.0.residual_group.blocks.0.attn.qkv.weight"] = torch.zeros(5, 12)
    with pytest.raises(ModelLoadError, match=r"broken\.pth: .*misshapen layers\.0\.residual"):
        load_upscale_model(_save(tmp_path, broken, "broken.pth"))


def test_the_padding_reflects_like_the_authors(tmp_path):
    model = load_upscale_model(_save(tmp_path, swinir_weights(upsampler="", scale=1)))
    picture = _picture(6, 5).movedim(-1, 1)
    padded = F.pad(picture, (0, 3, 0, 2), mode="reflect")
    with torch.no_grad():
        whole = model.network(padded)[:, :, :6, :5]
        torch.testing.assert_close(model.network(picture), whole)
