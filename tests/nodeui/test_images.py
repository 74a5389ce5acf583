"""Tensors to QImage: IMAGE batches for output nodes, latents for live previews."""

from __future__ import annotations

import numpy as np
import torch

from core.engine import Record
from nodeui.images import image_batch_to_qimages, images_from_records, latent_to_qimage


def test_image_batches_become_one_qimage_each_with_their_pixels():
    batch = torch.zeros(2, 4, 6, 3)
    batch[1, :, :, 0] = 1.0  # the second picture is red
    pictures = image_batch_to_qimages(batch)
    assert [(p.width(), p.height()) for p in pictures] == [(6, 4), (6, 4)]
    assert pictures[1].pixelColor(5, 3).getRgb()[:3] == (255, 0, 0)
    assert pictures[0].pixelColor(0, 0).getRgb()[:3] == (0, 0, 0)


def test_masks_and_records():
    mask = np.ones((1, 3, 5), dtype=np.float32)
    assert image_batch_to_qimages(mask)[0].pixelColor(0, 0).getRgb()[:3] == (255, 255, 255)
    records = [Record("file", "x.png"), Record("images", torch.rand(1, 8, 8, 3))]
    assert len(images_from_records(records)) == 1


def test_latent_previews_of_any_channel_count():
    assert latent_to_qimage(torch.randn(1, 4, 8, 12)).size().toTuple() == (12, 8)
    assert latent_to_qimage(torch.randn(1, 16, 8, 8)) is not None
    assert latent_to_qimage(torch.rand(1, 3, 8, 8)).width() == 8
    assert latent_to_qimage(torch.rand(1, 8, 10, 3)).width() == 10  # an RGB IMAGE payload
    assert latent_to_qimage(torch.zeros(5)) is None
