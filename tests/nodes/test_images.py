from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from core.diffusion import images
from core.graph import png


def test_load_image_gives_image_and_inverted_alpha_mask(tmp_path):
    rgba = np.zeros((4, 6, 4), dtype=np.uint8)
    rgba[..., 0] = 255  # red
    rgba[:, :3, 3] = 255  # left half opaque, right half transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    image, mask = images.load_image(tmp_path / "a.png")
    assert image.shape == (1, 4, 6, 3) and image.dtype == torch.float32
    assert torch.allclose(image[0, 0, 0], torch.tensor([1.0, 0.0, 0.0]))
    assert mask.shape == (1, 4, 6)
    assert mask[0, :, :3].eq(0).all() and mask[0, :, 3:].eq(1).all()  # transparent = repaint


def test_opaque_image_has_empty_mask(tmp_path):
    Image.new("RGB", (5, 3), (0, 255, 0)).save(tmp_path / "g.jpg")
    image, mask = images.load_image(tmp_path / "g.jpg")
    assert image.shape == (1, 3, 5, 3) and mask.shape == (1, 3, 5) and mask.eq(0).all()


def test_bad_image_files_name_the_file(tmp_path):
    (tmp_path / "x.png").write_text("not an image")
    with pytest.raises(images.ImageFileError, match=r"x\.png: not a readable image"):
        images.load_image(tmp_path / "x.png")
    with pytest.raises(images.ImageFileError, match="no such image file"):
        images.load_image(tmp_path / "missing.png")


def test_png_round_trip_keeps_pixels_and_text():
    picture = torch.rand(7, 9, 3)
    data = images.png_bytes(picture, {"latentloom": '{"é": 1}'})
    assert png.read_text_chunks(data)["latentloom"] == '{"é": 1}'
    import io

    back = images.from_pil(Image.open(io.BytesIO(data)))[0]
    assert (back - picture).abs().max() <= 0.5 / 255 + 1e-6


def test_gradient_and_colours():
    grad = images.gradient(4, 2, (0, 0, 0), (1, 1, 1), "horizontal")
    assert grad.shape == (1, 2, 4, 3)
    assert grad[0, 0, 0].eq(0).all() and grad[0, 1, -1].eq(1).all()
    assert images.parse_color("#f80") == pytest.approx((1.0, 0x88 / 255, 0.0))
    with pytest.raises(ValueError, match="not a colour"):
        images.parse_color("orange")
