"""Resize to fit a box, bloom and a preprocessor's working resolution, on pictures small enough
to check by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from core.diffusion import image_effects
from core.diffusion.image_effects import bloom, fit, gaussian_blur, screen, to_working_resolution


def ramp(width: int, height: int) -> torch.Tensor:
    """[1, height, width, 3]: pixel (y, x) holds (y·width + x) / 100 in every channel."""
    values = torch.arange(width * height, dtype=torch.float32).view(1, height, width, 1) / 100
    return values.expand(1, height, width, 3).contiguous()


def column_values(image: torch.Tensor) -> list[list[float]]:
    return [[round(float(v), 4) for v in row] for row in image[0, :, :, 0]]


def test_keep_proportion_scales_by_the_factor_that_fits_both_sides():
    # 4×2 into a 2×2 box: factor min(2/4, 2/2) = 0.5 gives 2×1; nearest takes columns 0 and 2.
    out = fit(ramp(4, 2), 2, 2, "nearest", "keep proportion")
    assert column_values(out) == [[0.0, 0.02]]


def test_a_zero_side_is_left_free():
    assert fit(ramp(4, 2), 0, 4, "nearest", "keep proportion").shape == (1, 4, 8, 3)
    assert fit(ramp(4, 2), 0, 6, "nearest", "stretch").shape == (1, 6, 4, 3)
    assert fit(ramp(4, 2), 0, 0, "nearest", "keep proportion").shape == (1, 2, 4, 3)


def test_stretch_meets_the_box_exactly():
    out = fit(ramp(4, 2), 2, 1, "nearest", "stretch")
    assert column_values(out) == [[0.0, 0.02]]


def test_pad_fits_then_adds_black_borders_split_evenly():
    # 4×2 into 4×4: factor 1, one black row above and one below.
    out = fit(ramp(4, 2), 4, 4, "nearest", "pad")
    assert column_values(out) == [
        [0.0, 0.0, 0.0, 0.0],
        [0.0, 0.01, 0.02, 0.03],
        [0.04, 0.05, 0.06, 0.07],
        [0.0, 0.0, 0.0, 0.0],
    ]


def test_fill_covers_the_box_and_crops_the_overflow_from_both_sides():
    # 4×2 into 2×2: factor max(2/4, 2/2) = 1 keeps 4×2; columns 1 and 2 are the middle.
    out = fit(ramp(4, 2), 2, 2, "nearest", "fill / crop")
    assert column_values(out) == [[0.01, 0.02], [0.05, 0.06]]


def test_conditions_leave_pictures_that_do_not_qualify_untouched():
    small, large = ramp(2, 2), ramp(4, 4)
    assert fit(small, 4, 4, "nearest", "stretch", "downscale if bigger").shape == (1, 2, 2, 3)
    assert fit(large, 2, 2, "nearest", "stretch", "downscale if bigger").shape == (1, 2, 2, 3)
    assert fit(large, 2, 2, "nearest", "stretch", "upscale if smaller").shape == (1, 4, 4, 3)
    assert fit(small, 4, 4, "nearest", "stretch", "upscale if smaller").shape == (1, 4, 4, 3)
    # 4×2 (8 pixels) against 3×3 (9 pixels).
    assert fit(ramp(4, 2), 3, 3, "nearest", "stretch", "if bigger area").shape == (1, 2, 4, 3)
    assert fit(ramp(4, 2), 3, 3, "nearest", "stretch", "if smaller area").shape == (1, 3, 3, 3)
    # Untouched means unpadded too.
    assert fit(small, 4, 4, "nearest", "pad", "downscale if bigger").shape == (1, 2, 2, 3)


def test_multiple_of_trims_the_surplus_evenly_from_both_edges():
    # 6×5 to multiples of 4: 2 columns over (one each side), 1 row over (taken at the bottom).
    out = fit(ramp(6, 5), 0, 0, "nearest", "stretch", "always", 4)
    assert out.shape == (1, 4, 4, 3)
    assert column_values(out)[0] == [0.01, 0.02, 0.03, 0.04]
    assert column_values(out)[3] == [0.19, 0.2, 0.21, 0.22]
    assert fit(ramp(6, 5), 0, 0, "nearest", "stretch", "always", 1).shape == (1, 5, 6, 3)


def test_every_interpolation_runs_and_stays_in_range():
    for interpolation in image_effects.INTERPOLATIONS:
        out = fit(torch.rand(1, 5, 7, 3), 9, 4, interpolation, "stretch")
        assert out.shape == (1, 4, 9, 3), interpolation
        assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0, interpolation


def test_unknown_choices_are_named():
    with pytest.raises(ValueError, match=r"unknown method 'fill'.*fill / crop"):
        fit(ramp(2, 2), 2, 2, "nearest", "fill")
    with pytest.raises(ValueError, match="unknown interpolation 'cubic'"):
        fit(ramp(2, 2), 2, 2, "cubic")


def test_screen_brightens_and_black_leaves_the_picture_as_is():
    a = torch.tensor([0.5, 0.0, 1.0, 0.2])
    assert screen(a, torch.tensor([0.5, 0.3, 0.4, 0.0])).tolist() == pytest.approx(
        [0.75, 0.3, 1.0, 0.2]
    )


def test_gaussian_blur_matches_a_reference_filter():
    picture = torch.rand(1, 9, 11, 3)
    reference = ndimage.gaussian_filter(
        picture.numpy(), sigma=(0, 2, 2, 0), mode="nearest", truncate=3.0
    )
    assert np.allclose(gaussian_blur(picture, 2.0).numpy(), reference, atol=1e-5)


def test_bloom_is_the_blurred_positive_high_pass_doubled_and_screened():
    picture = torch.full((1, 16, 16, 3), 0.2)
    picture[0, 7:9, 7:9] = 0.9
    out = bloom(picture, 1.0, 0.5)
    # The same steps with an independent filter.
    p = picture.numpy()

    def blur(x, sigma):
        return ndimage.gaussian_filter(x, (0, sigma, sigma, 0), mode="nearest", truncate=3.0)

    bright = np.clip(p - blur(p, 1.0), 0.0, None)
    glow = np.clip(blur(bright, 2.0) * 2.0, 0.0, 1.0) * 0.5
    expected = 1.0 - (1.0 - p) * (1.0 - glow)
    assert np.allclose(out.numpy(), expected, atol=1e-5)
    # A glow around the spot, nothing far from it, nothing darker anywhere.
    assert float(out[0, 6, 8, 0]) > 0.2 + 1e-3
    assert float(out[0, 0, 0, 0]) == pytest.approx(0.2, abs=1e-6)
    assert bool((out >= picture - 1e-6).all())


def test_bloom_leaves_flat_pictures_and_zero_settings_unchanged():
    flat = torch.full((1, 6, 6, 3), 0.4)
    assert torch.allclose(bloom(flat, 3.0, 1.0), flat)
    spot = torch.zeros(1, 6, 6, 3)
    spot[0, 3, 3] = 1.0
    assert torch.equal(bloom(spot, 0.0, 1.0), spot)
    assert torch.equal(bloom(spot, 2.0, 0.0), spot)
    assert float(bloom(spot, 2.0, 1.0)[0, 3, 4, 0]) > float(bloom(spot, 2.0, 0.5)[0, 3, 4, 0])


def test_working_resolution_scales_the_shorter_side():
    picture = ramp(4, 2)
    assert to_working_resolution(picture, 0) is picture
    assert to_working_resolution(picture, 4).shape == (1, 4, 8, 3)  # ×2, bicubic
    assert to_working_resolution(ramp(8, 4), 2).shape == (1, 2, 4, 3)  # ×0.5, area
    # Area averaging of 2×2 blocks: the top-left block holds 0, 0.01, 0.08, 0.09.
    assert float(to_working_resolution(ramp(8, 4), 2)[0, 0, 0, 0]) == pytest.approx(0.045)
