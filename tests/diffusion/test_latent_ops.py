"""Latent composite, blend, arithmetic, rotate, flip and crop on tiny tensors."""

from __future__ import annotations

import json

import pytest
import torch

from core.diffusion import latents


def _latent(samples: torch.Tensor, **extra) -> dict:
    return {"samples": samples, **extra}


def test_composite_pastes_at_whole_cells_and_clips_at_the_edge() -> None:
    dest = _latent(torch.zeros(1, 4, 4, 4), noise_mask=torch.ones(1, 32, 32))
    out = latents.composite(dest, _latent(torch.ones(1, 4, 2, 2)), x=9, y=16)
    expected = torch.zeros(4, 4)
    expected[2:4, 1:3] = 1  # x 9 px → cell 1, y 16 px → cell 2
    assert torch.equal(out["samples"][0, 0], expected)
    assert out["noise_mask"] is dest["noise_mask"]  # the destination's mask is kept
    edge = latents.composite(dest, _latent(torch.ones(1, 4, 2, 2)), x=24, y=0)
    assert (
        float(edge["samples"][0, 0].sum()) == 2 and float(edge["samples"][0, 0, :2, 3].min()) == 1
    )
    assert float(dest["samples"].abs().sum()) == 0  # inputs untouched


def test_composite_feathers_only_the_edges_inside_the_destination() -> None:
    dest = _latent(torch.zeros(1, 1, 8, 8))
    inside = latents.composite(dest, _latent(torch.ones(1, 1, 4, 4)), x=16, y=16, feather=16)
    ramp = torch.tensor([0.5, 1.0, 1.0, 0.5])  # feather 16 px = 2 cells: 1/2, then 2/2
    torch.testing.assert_close(inside["samples"][0, 0, 2:6, 2:6], ramp[:, None] * ramp[None, :])
    corner = latents.composite(dest, _latent(torch.ones(1, 1, 4, 4)), x=0, y=0, feather=16)
    open_edge = torch.tensor([1.0, 1.0, 1.0, 0.5])  # top and left lie on the border: no fade
    torch.testing.assert_close(corner["samples"][0, 0, :4, :4], open_edge[:, None] * open_edge)


def test_composite_masked_blends_through_the_mask_and_can_resize_the_source() -> None:
    dest = _latent(torch.zeros(2, 1, 4, 4))
    source = _latent(torch.full((1, 1, 2, 2), 3.0))
    mask = torch.tensor([[1.0, 0.0], [0.5, 1.0]])
    out = latents.composite_masked(dest, source, 8, 8, False, mask)["samples"]
    assert out.shape == (2, 1, 4, 4)  # the source is repeated to the destination's batch
    torch.testing.assert_close(out[1, 0, 1:3, 1:3], torch.tensor([[3.0, 0.0], [1.5, 3.0]]))
    assert float(out[:, :, 0].abs().sum()) == 0
    whole = latents.composite_masked(dest, source, 0, 0, True)["samples"]
    torch.testing.assert_close(whole, torch.full((2, 1, 4, 4), 3.0))


def test_blend_add_subtract_multiply() -> None:
    a, b = _latent(torch.full((1, 4, 2, 2), 2.0)), _latent(torch.full((1, 4, 4, 4), 4.0))
    torch.testing.assert_close(latents.blend(a, b, 0.25)["samples"], torch.full((1, 4, 2, 2), 3.5))
    torch.testing.assert_close(latents.add(a, b)["samples"], torch.full((1, 4, 2, 2), 6.0))
    torch.testing.assert_close(latents.subtract(a, b)["samples"], torch.full((1, 4, 2, 2), -2.0))
    torch.testing.assert_close(latents.multiply(a, -1.5)["samples"], torch.full((1, 4, 2, 2), -3.0))
    batch = latents.add(_latent(torch.zeros(3, 4, 2, 2)), _latent(torch.ones(1, 4, 2, 2)))
    assert batch["samples"].shape == (3, 4, 2, 2) and float(batch["samples"].min()) == 1


def test_rotate_turns_clockwise_with_its_mask_and_flip_mirrors() -> None:
    grid = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    latent = _latent(grid[None, None].clone(), noise_mask=grid[None].clone())
    turned = latents.rotate(latent, "90 degrees")
    clockwise = torch.tensor([[4.0, 1.0], [5.0, 2.0], [6.0, 3.0]])
    assert torch.equal(turned["samples"][0, 0], clockwise)
    assert torch.equal(turned["noise_mask"][0], clockwise)
    assert torch.equal(latents.rotate(latent, "180 degrees")["samples"][0, 0], grid.flip(0).flip(1))
    assert torch.equal(latents.rotate(latent, "none")["samples"], latent["samples"])
    upside_down = latents.flip(latent, "x-axis: vertically")
    assert torch.equal(upside_down["samples"][0, 0], grid.flip(0))
    assert torch.equal(upside_down["noise_mask"][0], grid.flip(0))
    mirrored = latents.flip(latent, "y-axis: horizontally")["samples"][0, 0]
    assert torch.equal(mirrored, grid.flip(1))
    with pytest.raises(ValueError, match="unknown rotation"):
        latents.rotate(latent, "45 degrees")


def test_crop_keeps_at_least_64_pixels_and_crops_the_noise_mask_alike() -> None:
    samples = torch.arange(16.0).repeat(16, 1)[None, None]  # column index in every row
    mask = torch.arange(128.0).repeat(128, 1)[None]
    latent = _latent(samples, noise_mask=mask)
    out = latents.crop(latent, 64, 32, 96, 8)  # x 96 px = cell 12, moved in to 16 − 8 = 8
    assert out["samples"].shape == (1, 1, 4, 8)
    assert out["samples"][0, 0, 0].tolist() == list(range(8, 16))
    assert out["noise_mask"].shape == (1, 32, 64) and float(out["noise_mask"][0, 0, 0]) == 64
    small = latents.crop({**latent, "downscale": 4}, 16, 16, 0, 0)  # the demo model's f = 4
    assert small["samples"].shape == (1, 1, 4, 4)


def test_interpolate_node_takes_ratio_as_samples1s_share_with_normalized_cells() -> None:
    from nodes import build_registry

    function = build_registry().get("LatentInterpolate").function
    a = torch.zeros(1, 4, 1, 1)
    a[0, 0] = 2.0
    b = torch.zeros(1, 4, 1, 1)
    b[0, 1] = 4.0
    one, zero = (function(None, _latent(a), _latent(b), r, "linear") for r in (1.0, 0.0))
    assert torch.equal(one["samples"], a) and torch.equal(zero["samples"], b)
    # Directions (1,0) and (0,1) mixed 1:3 and renormalised, times the mixed length 3.5.
    out = function(None, _latent(a), _latent(b), 0.25, "normalized")["samples"][0, :2, 0, 0]
    direction = torch.tensor([0.25, 0.75]) / torch.tensor([0.25, 0.75]).norm()
    torch.testing.assert_close(out, direction * 3.5)


def test_a_version_1_latent_interpolate_keeps_its_mix_when_opened() -> None:
    """Version 1 measured ratio towards samples2 and defaulted to spherical."""
    from core.graph.model import Graph
    from core.graph.workflow import dumps, loads
    from nodes import build_registry

    registry = build_registry()
    graph = Graph(registry)
    graph.add_node("LatentInterpolate", 1, {"ratio": 0.3})
    data = json.loads(dumps(graph))
    data["nodes"][0]["type_version"] = 1
    del data["nodes"][0]["params"]["method"]  # a version-1 file that kept the default
    params = loads(json.dumps(data), registry).graph.node(1).params
    assert params["ratio"] == pytest.approx(0.7) and params["method"] == "spherical"


def test_bislerp_turns_between_cells_and_keeps_their_length() -> None:
    samples = torch.zeros(1, 4, 1, 2)
    samples[0, 0, 0, 0], samples[0, 1, 0, 1] = 2.0, 2.0  # two orthogonal cells of length 2
    out = latents.resize(samples, 4, 1, "bislerp")[0, :, 0]
    # Pixel centres at 0, 0.25, 0.75 and 1 of the way: a quarter turn split in the same steps.
    angles = torch.tensor([0.0, 0.25, 0.75, 1.0]) * torch.pi / 2
    torch.testing.assert_close(out[0], 2 * torch.cos(angles))
    torch.testing.assert_close(out[1], 2 * torch.sin(angles))
    assert float(out[2:].abs().max()) == 0
    flat = torch.full((1, 4, 3, 3), 0.5)
    upscaled = latents.upscale_by({"samples": flat}, 2.0, "bislerp")["samples"]
    torch.testing.assert_close(upscaled, torch.full((1, 4, 6, 6), 0.5))
