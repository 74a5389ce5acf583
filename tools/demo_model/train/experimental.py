"""The code of the recipe's switches that were tried and not shipped.

Each is off in ``TrainConfig`` (the shipped recipe) and kept so that its experiment can be rerun
from the command line; ``tools/demo_model/EXPERIMENTS.md`` says what each gave. The smaller
switches (``text_freeze_steps``, ``text_grad_from``, ``unet_object_weight``) are a line or two
in ``unet.py`` and ``data.py`` and need no code of their own here.

- Multi-resolution ("pyramid") noise (``--pyramid-noise``): the layout stays hidden in x_t down
  to lower t, but a model trained with it draws blotches from the white noise every sampler
  starts from (2026-11-22).
- Corner weights (``--unet-corner-weight``, ``--polish-corner-weight``): the ε-loss of the cells
  where a square and a circle of one box differ most weighs more; in the polish, within noise
  and with no dose response (2026-12-05, again on shape codes 2026-12-06).
- A pixel-space loss on the decoded x0 estimate (``--unet-pixel-weight``,
  ``--polish-pixel-weight``): in the polish, no better shape at 1.5 times its cost (2026-12-05).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL

from tools.demo_model.scenes import Scene, bounding_box
from tools.demo_model.train.autoencoder import reconstruction_loss
from tools.demo_model.train.data import object_weights, to_model_range


def with_pyramid_noise(
    noise: torch.Tensor, generator: torch.Generator, discount: float
) -> torch.Tensor:
    """``noise`` plus coarser white noise at every halving of its size down to 2×2, weighted
    ``discount``**level and bilinearly upsampled, the whole rescaled to unit variance per
    sample (multi-resolution noise)."""
    batch, channels, height, width = noise.shape
    level, size = 1, min(height, width) // 2
    while size >= 2:
        coarse = torch.randn((batch, channels, size, size), generator=generator)
        noise = noise + discount**level * F.interpolate(
            coarse, size=(height, width), mode="bilinear", align_corners=False
        )
        level, size = level + 1, size // 2
    return noise / noise.std(dim=(1, 2, 3), keepdim=True)


def latent_corner_weights(
    scenes: list[Scene], size: int, image_size: int, corner_weight: float
) -> torch.Tensor:
    """``[N, 1, size, size]`` loss weights: ``corner_weight`` on every latent cell that
    overlaps a corner region of an object's box (a square a quarter of the box's side, at
    each of its four corners), 1 elsewhere. Those are the cells a square fills, a circle
    leaves empty and a triangle fills at the bottom only; an ε-loss spread over all 256
    cells weighs them little."""
    cell = image_size / size
    weights = torch.ones(len(scenes), 1, size, size)
    for row, scene in enumerate(scenes):
        for obj in scene.objects:
            x0, y0, x1, y1 = bounding_box(obj)
            side = (x1 - x0) / 4
            for cx, cy in ((x0, y0), (x1 - side, y0), (x0, y1 - side), (x1 - side, y1 - side)):
                first_x, first_y = max(0, int(cx // cell)), max(0, int(cy // cell))
                last_x = min(size - 1, math.ceil((cx + side) / cell) - 1)
                last_y = min(size - 1, math.ceil((cy + side) / cell) - 1)
                weights[row, 0, first_y : last_y + 1, first_x : last_x + 1] = corner_weight
    return weights


@dataclass(frozen=True)
class PixelTargets:
    """What the pixel-space loss (``TrainConfig.unet_pixel_weight``) compares the UNet's decoded
    x0 estimates with: the frozen autoencoder and the drawn scenes its latents came from."""

    vae: AutoencoderKL
    images: np.ndarray  # uint8 [N, H, W, 3], row i the scene of latent i
    backgrounds: list[str]


def decoded_estimate_loss(
    prediction: torch.Tensor,
    noisy: torch.Tensor,
    alphas_cumprod: torch.Tensor,
    scale: float,
    targets: PixelTargets,
    index: torch.Tensor,
    object_weight: float,
) -> torch.Tensor:
    """The pixel-space loss of one batch's rows: the x0 that the ε ``prediction`` implies for
    ``noisy`` (x0 = (x_t - sqrt(1 - ᾱ) ε) / sqrt(ᾱ), DDPM eq. 4 solved for x0), unscaled and
    decoded by ``targets.vae``, against the drawn scenes ``index`` in -1..1; L1 + L2 per pixel,
    object pixels weighed ``object_weight`` times (``reconstruction_loss``). Gradients reach
    the prediction only: the autoencoder's weights stay as they are."""
    a = alphas_cumprod.view(-1, 1, 1, 1)
    estimate = (noisy - (1 - a).sqrt() * prediction) / a.sqrt()
    decoded = targets.vae.decode(estimate / scale).sample.float()
    rows = index.numpy()
    target = to_model_range(targets.images[rows])
    weight = object_weights(targets.images, targets.backgrounds, rows, object_weight)
    return reconstruction_loss(decoded, target, weight)
