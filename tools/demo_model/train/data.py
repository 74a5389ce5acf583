"""The training data as the stages read it: drawn scenes as tensors, which scenes are held back,
where the objects are (per pixel and per latent cell, for the loss weights) and captions as
token ids.

The scenes themselves are drawn by ``tools.demo_model.scenes`` (``training_scenes``,
``render_batch``); nothing here draws or changes one.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from transformers import CLIPTokenizer

from tools.demo_model import components
from tools.demo_model.scenes import COLOURS


def to_model_range(images: np.ndarray) -> torch.Tensor:
    """uint8 ``[N, H, W, 3]`` images as float ``[N, 3, H, W]`` in -1..1, the VAE's range."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def held_back(count: int) -> int:
    """How many of ``count`` scenes (the last ones) the autoencoder never trains on and is
    measured on: 512, or a quarter of a small set."""
    return min(512, count // 4)


def object_mask(images: np.ndarray, backgrounds: list[str]) -> torch.Tensor:
    """``[N, 1, H, W]`` 1 where a pixel differs from its scene's background colour, else 0."""
    colours = np.array([COLOURS[name] for name in backgrounds], dtype=np.float32)[:, None, None]
    distance = np.linalg.norm(images.astype(np.float32) - colours, axis=-1)
    return torch.from_numpy(distance > 30).float().unsqueeze(1)


def object_weights(
    images: np.ndarray, backgrounds: list[str], index: np.ndarray, object_weight: float
) -> torch.Tensor:
    """Per-pixel loss weights for the scenes ``index``: ``object_weight`` on objects, 1 on the
    background (objects cover a few percent of a scene and would otherwise count for little)."""
    mask = object_mask(images[index], [backgrounds[i] for i in index])
    return 1 + (object_weight - 1) * mask


def latent_object_weights(
    images: np.ndarray,
    backgrounds: list[str],
    latent_size: int,
    object_weight: float,
    outline_weight: float = 1.0,
) -> torch.Tensor:
    """``[N, 1, latent_size, latent_size]`` loss weights for the UNet: ``object_weight`` on
    every latent cell that any object pixel falls in (max-pooled, so outlines and corners count
    fully), 1 elsewhere; ``outline_weight`` (where larger) on the cells within one cell of an
    object's outline, inside or out: the cells a circle and a square of the same box differ
    in, which the whole object's cells are mostly not. Computed in chunks to keep the float
    masks small."""
    chunks = []
    for start in range(0, len(images), 1024):
        mask = object_mask(images[start : start + 1024], backgrounds[start : start + 1024])
        touched = F.adaptive_max_pool2d(mask, latent_size)
        weights = 1 + (object_weight - 1) * touched
        if outline_weight != 1.0:
            covered = -F.adaptive_max_pool2d(-mask, latent_size)  # every pixel of the cell
            near = F.max_pool2d(touched, 3, stride=1, padding=1)
            inside = -F.max_pool2d(-covered, 3, stride=1, padding=1)
            outline = near * (1 - inside)
            weights = torch.maximum(weights, 1 + (outline_weight - 1) * outline)
        chunks.append(weights)
    return torch.cat(chunks)


class TokenCache:
    """Tokenizes captions once each; the grammar repeats, so a cache saves most of the work."""

    def __init__(self, tokenizer: CLIPTokenizer) -> None:
        self.tokenizer = tokenizer
        self.cache: dict[str, torch.Tensor] = {}

    def __call__(self, captions: list[str]) -> torch.Tensor:
        missing = [c for c in dict.fromkeys(captions) if c not in self.cache]
        if missing:
            ids = self.tokenizer(
                missing,
                padding="max_length",
                max_length=components.MAX_TOKENS,
                truncation=True,
                return_tensors="pt",
            ).input_ids
            self.cache.update(zip(missing, ids, strict=True))
        return torch.stack([self.cache[c] for c in captions])
