"""Image operations on tiny tensors: make, pad, scale, crop, blend, filter, composite, alpha."""

from __future__ import annotations

import math

import pytest
import torch

from core.diffusion import images


def test_empty_image_is_one_colour() -> None:
    out = images.empty(3, 2, 2, 0xFF8000)
    assert out.shape == (2, 2, 3, 3)
    torch.testing.assert_close(out[1, 1, 2], torch.tensor([1.0, 128 / 255, 0.0]))


def test_pad_for_outpaint_greys_the_border_and_feathers_the_mask_quadratically() -> None:
    picture = torch.full((1, 6, 6, 3), 0.2)
    canvas, mask = images.pad_for_outpaint(picture, 2, 0, 0, 0, 2)
    assert canvas.shape == (1, 6, 8, 3) and mask.shape == (1, 6, 8)
    assert float(canvas[0, :, :2].min()) == float(canvas[0, :, :2].max()) == 0.5
    assert torch.equal(canvas[:, :, 2:], picture)
    # Left border 1; into the picture ((2 − d) / 2)² for d = 0, 1 pixels from the padded side.
    row = torch.tensor([1.0, 1.0, 1.0, 0.25, 0.0, 0.0, 0.0, 0.0])
    assert torch.equal(mask[0], row.expand(6, 8))
    _, unfeathered = images.pad_for_outpaint(picture, 0, 8, 0, 8, 3)  # 2·3 ≥ 6: no feathering
    assert float(unfeathered[0, 8:14].max()) == 0 and float(unfeathered[0, :8].min()) == 1


def test_scale_to_total_pixels_keeps_aspect_and_rounds_to_steps() -> None:
    image = torch.rand(1, 10, 40, 3)
    megapixels = 1600 / 1024**2  # four times the pixels: both sides double
    assert images.scale_to_total_pixels(image, "bilinear", megapixels).shape == (1, 20, 80, 3)
    assert images.total_pixels_size(40, 10, megapixels, 8) == (80, 16)
    lanczos = images.scale_to_total_pixels(torch.full((1, 10, 40, 3), 0.3), "lanczos", megapixels)
    torch.testing.assert_close(lanczos, torch.full((1, 20, 80, 3), 0.3))


def test_crop_flip_rotate_and_batch() -> None:
    image = torch.arange(12.0).reshape(1, 3, 4, 1).expand(1, 3, 4, 3).contiguous()
    assert torch.equal(
        images.crop(image, 2, 5, 1, 1)[0, :, :, 0], torch.tensor([[5.0, 6], [9, 10]])
    )
    assert images.crop(image, 9, 9, 10, 10).shape == (1, 1, 1, 3)  # the corner stays inside
    assert torch.equal(images.flip(image, "x-axis: vertically"), image.flip(1))
    assert torch.equal(images.flip(image, "y-axis: horizontally"), image.flip(2))
    turned = images.rotate(image, "90 degrees")[0, :, :, 0]
    assert turned.shape == (4, 3) and turned[0].tolist() == [8.0, 4.0, 0.0]  # clockwise
    joined = images.batch(torch.zeros(1, 4, 4, 3), torch.ones(2, 8, 6, 3))
    assert joined.shape == (3, 4, 4, 3) and float(joined[1:].min()) == 1


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("normal", 0.5),
        ("multiply", 0.125),
        ("screen", 0.625),
        ("overlay", 0.25),
        ("difference", 0.0),
    ],
)
def test_blend_modes(mode: str, expected: float) -> None:
    a, b = torch.full((1, 2, 2, 3), 0.25), torch.full((1, 2, 2, 3), 0.5)
    torch.testing.assert_close(images.blend(a, b, 1.0, mode), torch.full((1, 2, 2, 3), expected))
    half = images.blend(a, b, 0.5, "normal")
    torch.testing.assert_close(half, torch.full((1, 2, 2, 3), 0.375))


def test_blur_spreads_a_point_by_the_gaussian_and_sharpen_keeps_flat_areas() -> None:
    point = torch.zeros(1, 5, 5, 3)
    point[0, 2, 2] = 1.0
    blurred = images.blur(point, 1, 1.0)[0, 1:4, 1:4, 0]
    # Window coordinates run −1..1, so the weights are e^0, e^−½ and e^−1 (centre, side, corner).
    total = 1 + 4 * math.exp(-0.5) + 4 * math.exp(-1)
    assert float(blurred[1, 1]) == pytest.approx(1 / total)
    assert float(blurred[0, 1]) == pytest.approx(math.exp(-0.5) / total)
    assert float(blurred[0, 0]) == pytest.approx(math.exp(-1) / total)
    flat = torch.full((1, 6, 6, 3), 0.4)
    torch.testing.assert_close(images.blur(flat, 2, 0.5), flat)
    torch.testing.assert_close(images.sharpen(flat, 2, 1.0, 1.0), flat)
    edge = torch.zeros(1, 4, 6, 3)
    edge[:, :, 3:] = 0.6
    crisp = images.sharpen(edge, 1, 1.0, 0.5)
    assert float(crisp[0, 0, 2, 0]) == 0.0 and float(crisp[0, 0, 3, 0]) > 0.6  # overshoot


def test_quantize_limits_the_palette() -> None:
    image = torch.rand(1, 8, 8, 3, generator=torch.Generator().manual_seed(0))
    for dither in ("none", "floyd-steinberg", "bayer-4"):
        out = images.quantize(image, 2, dither)
        assert out.shape == image.shape
        assert len(torch.unique(out.reshape(-1, 3), dim=0)) <= 2


def test_composite_masked_pastes_through_the_mask() -> None:
    dest = torch.zeros(1, 4, 4, 3)
    source = torch.ones(1, 2, 2, 3)
    out = images.composite_masked(dest, source, 1, 2)
    assert float(out[0, 2:4, 1:3].min()) == 1 and float(out.sum()) == 4 * 3
    half = images.composite_masked(dest, source, 0, 0, False, torch.full((1, 2, 2), 0.5))
    assert float(half[0, 0, 0, 0]) == 0.5 and float(half[0, 3, 3, 0]) == 0
    rgba = images.composite_masked(torch.zeros(1, 2, 2, 4), source, 0, 0)
    assert rgba.shape == (1, 2, 2, 4) and float(rgba[0, 0, 0, 3]) == 1  # opaque alpha added


def test_split_and_join_alpha_round_trip() -> None:
    picture = torch.rand(1, 4, 4, 3)
    mask = torch.zeros(1, 2, 2)
    mask[0, 0, 0] = 1.0  # transparent corner, resized to the picture
    joined = images.join_alpha(picture, mask)
    assert joined.shape == (1, 4, 4, 4)
    assert float(joined[0, 0, 0, 3]) == 0.0 and float(joined[0, 3, 3, 3]) == 1.0
    colours, back = images.split_alpha(joined)
    assert torch.equal(colours, picture) and float(back[0, 0, 0]) == 1.0
    _, opaque = images.split_alpha(picture)
    assert float(opaque.abs().sum()) == 0
