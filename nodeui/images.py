"""Tensors and arrays to ``QImage``: IMAGE batches for output nodes, sampler previews and
step-history pictures.

Conversions accept torch tensors or numpy arrays (anything with ``numpy()`` or the array
protocol) and always return images that own their pixels, so they may be made on the worker
thread and shown on the GUI thread. Latents are never projected here: the latent→RGB
projection belongs to ``core.diffusion.previews`` (per model family), and what reaches the
editor is already an IMAGE.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PySide6.QtGui import QImage


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


def first_image(images: Any) -> QImage | None:
    """The first picture of an IMAGE batch ``[B, H, W, 3]`` (or one ``[H, W, 3]``); None for
    anything else (a latent, a string): the editor shows only what is already RGB."""
    array = _to_numpy(images)
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4 or array.shape[-1] != 3 or array.shape[0] < 1:
        return None
    return rgb_to_qimage(array[0])


@dataclass(frozen=True)
class PreviewFrame:
    """One live sampler preview as the GUI gets it: the picture and which step it shows."""

    image: QImage
    step: int | None = None
    total: int | None = None
    #: Inside a subgraph: the node's path (instance id, …, inner node id); empty at top level.
    path: tuple[int, ...] = ()


def preview_to_qimage(payload: Any) -> PreviewFrame | None:
    """A ``Preview`` event's payload as a frame: a ``StepPreview`` (duck-typed: ``.image``,
    ``.step``, ``.total``) or a bare IMAGE batch; None when it is not a picture."""
    image = getattr(payload, "image", None)
    if image is None:
        picture = first_image(payload) if not isinstance(payload, str) else None
        return None if picture is None else PreviewFrame(picture)
    picture = first_image(image)
    if picture is None:
        return None
    step, total = getattr(payload, "step", None), getattr(payload, "total", None)
    return PreviewFrame(picture, step, total)


def history_picture(history: Any, step: int, which: str) -> QImage | None:
    """Step ``step`` of a ``StepHistory`` (``which``: "latent" for x_t, "denoised" for x̂₀)
    through the history's own projection; None when the step is not in it."""
    try:
        return first_image(history.picture(step, which))
    except (KeyError, ValueError):
        return None


def images_from_records(records: Any) -> list[QImage]:
    """Every picture in a node's ``"images"`` records."""
    out: list[QImage] = []
    for record in records:
        if getattr(record, "kind", None) == "images":
            out.extend(image_batch_to_qimages(record.value))
    return out


def history_from_records(records: Any) -> Any | None:
    """The last ``"history"`` record's value (a sampler's ``StepHistory``), if any."""
    found = None
    for record in records:
        if getattr(record, "kind", None) == "history":
            found = record.value
    return found
