"""Tensors to QImage: IMAGE batches for output nodes, step previews, history pictures."""

from __future__ import annotations

import numpy as np
import torch

from core.diffusion.previews import StepPreview
from core.engine import Record
from nodeui.images import (
    history_from_records,
    history_picture,
    image_batch_to_qimages,
    images_from_records,
    preview_to_qimage,
)
from tests.nodeui.shell_fakes import fake_history


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


def test_step_previews_carry_their_step_and_latents_are_not_pictured_here():
    frame = preview_to_qimage(StepPreview(3, 20, torch.rand(2, 8, 12, 3)))
    assert frame is not None and frame.image.size().toTuple() == (12, 8)
    assert (frame.step, frame.total) == (3, 20)
    assert preview_to_qimage(torch.rand(1, 8, 10, 3)).image.width() == 10  # a bare IMAGE
    # Projection is core's job: a raw latent is no picture for the editor.
    assert preview_to_qimage(torch.randn(1, 4, 8, 12)) is None
    assert preview_to_qimage(StepPreview(1, 2, torch.randn(1, 4, 8, 8))) is None
    assert preview_to_qimage("step 1") is None


def test_history_pictures_and_records():
    history = fake_history(4)
    x_t, x0 = history_picture(history, 2, "latent"), history_picture(history, 2, "denoised")
    assert x_t.size().toTuple() == (8, 6) and x_t.pixelColor(0, 0) != x0.pixelColor(0, 0)
    assert history_picture(history, 9, "latent") is None
    records = [Record("images", torch.rand(1, 4, 4, 3)), Record("history", history)]
    assert history_from_records(records) is history
    assert history_from_records(records[:1]) is None
