"""Tensors and arrays to ``QImage``: IMAGE batches for output nodes, latents for live previews.

Conversions accept torch tensors or numpy arrays (anything with ``numpy()`` or the array
protocol) and always return images that own their pixels, so they may be made on the worker
thread and shown on the GUI thread.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtGui import QImage

#: An approximate latent→RGB projection for 4-channel SD-style latents (rows: channels).
#: Good enough to see composition while sampling; the exact per-family one belongs to
#: core.diffusion and replaces this when a node sends RGB previews.
_LATENT_RGB = np.array(
    [
        [0.298, 0.207, 0.208],
        [0.187, 0.286, 0.173],
        [-0.158, 0.189, 0.264],
        [-0.184, -0.271, -0.473],
    ],
    dtype=np.float32,
)


def _to_numpy(value: Any) -> np.ndarray:
    detach = getattr(value, "detach", None)
    if callable(detach):
        value = detach().float().cpu().numpy()
    return np.asarray(value, dtype=np.float32)


def rgb_to_qimage(rgb: np.ndarray) -> QImage:
    """One ``[H, W, 3]`` (or ``[H, W]`` grey) float array in 0..1 as an RGB888 QImage."""
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[..., None], 3, axis=2)
    pixels = np.ascontiguousarray((np.clip(rgb[..., :3], 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8))
    height, width = pixels.shape[:2]
    image = QImage(pixels.data, width, height, 3 * width, QImage.Format.Format_RGB888)
    return image.copy()  # own the pixels: the numpy buffer dies with this frame


def image_batch_to_qimages(images: Any) -> list[QImage]:
    """An IMAGE ``[B, H, W, 3]`` (or MASK ``[B, H, W]``, or one ``[H, W, 3]``) as QImages."""
    array = _to_numpy(images)
    if array.ndim == 2 or (array.ndim == 3 and array.shape[-1] in (3, 4)):
        array = array[None]
    return [rgb_to_qimage(picture) for picture in array]


def latent_to_qimage(latent: Any) -> QImage | None:
    """A preview of a latent ``[B, C, h, w]`` (first item) or an RGB image; None when the
    payload is not something we can picture."""
    array = _to_numpy(latent)
    if array.ndim == 4 and array.shape[-1] in (3, 4) and array.shape[1] not in (3, 4):
        return image_batch_to_qimages(array)[0]
    if array.ndim == 4:
        array = array[0]
    if array.ndim != 3:
        return None
    channels = array.shape[0]
    if channels == 3:
        rgb = np.moveaxis(array, 0, -1)
    elif channels == 4:
        rgb = np.einsum("chw,cr->hwr", array, _LATENT_RGB) * 0.5 + 0.5
    else:
        grey = array.mean(axis=0)
        span = float(grey.max() - grey.min()) or 1.0
        rgb = (grey - grey.min()) / span
    return rgb_to_qimage(rgb)


def images_from_records(records: Any) -> list[QImage]:
    """Every picture in a node's ``"images"`` records."""
    out: list[QImage] = []
    for record in records:
        if getattr(record, "kind", None) == "images":
            out.extend(image_batch_to_qimages(record.value))
    return out
