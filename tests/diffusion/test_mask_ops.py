"""Mask feathering, thresholds, colour masks, growth and combination on tiny masks."""

from __future__ import annotations

import pytest
import torch

from core.diffusion import masks


def test_feather_ramps_linearly_from_each_chosen_border() -> None:
    out = masks.feather(torch.ones(1, 4, 6), left=3, top=0, right=2, bottom=1)
    cols = torch.tensor([1 / 3, 2 / 3, 1.0, 1.0, 1.0, 0.5])
    rows = torch.tensor([1.0, 1.0, 1.0, 1.0])  # bottom = 1: a one-pixel ramp ends at 1
    torch.testing.assert_close(out[0], rows[:, None] * cols[None, :])
    wide = masks.feather(torch.ones(4, 3), 10, 0, 0, 0)  # longer than the mask: clipped
    torch.testing.assert_close(wide[0, 0], torch.tensor([1 / 3, 2 / 3, 1.0]))


def test_threshold_and_colour_masks() -> None:
    mask = torch.tensor([[[0.2, 0.5, 0.51]]])
    assert masks.threshold(mask, 0.5).tolist() == [[[0.0, 0.0, 1.0]]]
    image = torch.zeros(1, 1, 3, 3)
    image[0, 0, 1] = torch.tensor([1.0, 128 / 255, 0.0])
    image[0, 0, 2] = torch.tensor([1.0, 129 / 255, 0.0])
    assert masks.from_color(image, 0xFF8000).tolist() == [[[0.0, 1.0, 0.0]]]


def test_grow_with_tapered_corners_makes_a_diamond_and_shrinks_back() -> None:
    point = torch.zeros(1, 7, 7)
    point[0, 3, 3] = 1.0
    diamond = masks.grow_mask(point, 2, tapered_corners=True)
    rows, cols = torch.meshgrid(torch.arange(7), torch.arange(7), indexing="ij")
    expected = ((rows - 3).abs() + (cols - 3).abs() <= 2).float()
    assert torch.equal(diamond[0], expected)
    assert float(masks.grow_mask(point, 2, tapered_corners=False).sum()) == 25
    block = torch.zeros(1, 7, 7)
    block[0, 1:6, 1:6] = 1.0
    shrunk = masks.grow_mask(block, -1, tapered_corners=False)
    assert torch.equal(shrunk[0, 2:5, 2:5], torch.ones(3, 3)) and float(shrunk.sum()) == 9


def test_composite_logic_counts_only_values_above_one_half() -> None:
    half = torch.full((1, 1, 2), 0.5)
    full = torch.ones(1, 1, 2)
    assert masks.composite(half, full, 0, 0, "and").tolist() == [[[0.0, 0.0]]]
    assert masks.composite(half, full, 1, 0, "multiply").tolist() == [[[0.5, 0.5]]]
    assert masks.COMPOSITE_OPS[0] == "multiply"


def test_image_to_mask_reads_alpha_only_when_there_is_one() -> None:
    rgba = torch.zeros(1, 2, 2, 4)
    rgba[..., 3] = 0.7
    torch.testing.assert_close(masks.from_image(rgba, "alpha"), torch.full((1, 2, 2), 0.7))
    with pytest.raises(ValueError, match="no alpha channel"):
        masks.from_image(torch.zeros(1, 2, 2, 3), "alpha")
