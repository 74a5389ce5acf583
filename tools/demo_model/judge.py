"""Measuring what a generated scene shows: background colour, object colour, shape and position.

Evaluation must not rely on looking at pictures, so every attribute is read off the pixels:
the background is the median colour of the image border, the object is the largest connected
region that differs from it, its colour is the median of its interior, its shape follows from
its corners and how much of its bounding box it fills (square ≈ 1, circle ≈ π/4, upright
triangle ≈ 1/2, with empty top corners) and its
position is the named place nearest to its centroid.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from tools.demo_model.scenes import COLOURS, POSITIONS, Scene

ATTRIBUTES: tuple[str, ...] = ("background", "colour", "shape", "position")

# Half the smallest distance between two named colours (yellow and orange, ~90): a pixel farther
# than this from the background belongs to an object.
FOREGROUND_DISTANCE = 45.0
BORDER = 2
# An upright triangle leaves the top corners of its bounding box empty (a circle fills ~22 % of
# each 1/4 × 1/4 corner cell, a square all of it) and has a third of its area in the top half.
TRIANGLE_TOP_CORNERS_BELOW = 0.12
TRIANGLE_TOP_SHARE_BELOW = 0.8
# Fill ratio of the bounding box: circle π/4 ≈ 0.785, square 1.0. Decoded images are slightly
# blurred, which rounds a square's corners (~0.93 big, ~0.85 small) and barely moves a circle.
CIRCLE_BELOW = 0.87

_PALETTE_NAMES = tuple(COLOURS)
_PALETTE = np.array([COLOURS[name] for name in _PALETTE_NAMES], dtype=np.float32)


@dataclass(frozen=True)
class Judgement:
    """What the measurements say an image shows, with the numbers behind it."""

    background: str
    colour: str | None
    shape: str | None
    position: str | None
    fill_ratio: float
    centroid: tuple[float, float] | None
    area: int


def nearest_colour(rgb: np.ndarray) -> str:
    """The name of the palette colour nearest to ``rgb`` (0..255) in Euclidean RGB distance."""
    distances = np.linalg.norm(_PALETTE - np.asarray(rgb, dtype=np.float32), axis=1)
    return _PALETTE_NAMES[int(np.argmin(distances))]


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 4-connected region of a boolean mask (all False when the mask is empty)."""
    height, width = mask.shape
    labels = np.zeros(mask.shape, dtype=np.int32)
    best_label, best_size, label = 0, 0, 0
    for y, x in zip(*np.nonzero(mask), strict=True):
        if labels[y, x]:
            continue
        label += 1
        labels[y, x] = label
        queue, size = deque([(y, x)]), 0
        while queue:
            cy, cx = queue.popleft()
            size += 1
            for ny, nx in ((cy - 1, cx), (cy + 1, cx), (cy, cx - 1), (cy, cx + 1)):
                if 0 <= ny < height and 0 <= nx < width and mask[ny, nx] and not labels[ny, nx]:
                    labels[ny, nx] = label
                    queue.append((ny, nx))
        if size > best_size:
            best_label, best_size = label, size
    return labels == best_label if best_size else np.zeros_like(mask)


def shape_of_blob(blob: np.ndarray) -> tuple[str, float]:
    """Shape class of a boolean blob from its corners and fill ratio; also returns the ratio."""
    ys, xs = np.nonzero(blob)
    box = blob[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    height, width = box.shape
    fill_ratio = float(box.mean())
    cell_h, cell_w = max(1, height // 4), max(1, width // 4)
    top_corners = (box[:cell_h, :cell_w].mean() + box[:cell_h, -cell_w:].mean()) / 2
    top_half, bottom_half = box[: height // 2].sum(), box[(height + 1) // 2 :].sum()
    top_share = top_half / max(bottom_half, 1)
    if top_corners < TRIANGLE_TOP_CORNERS_BELOW and top_share < TRIANGLE_TOP_SHARE_BELOW:
        return "triangle", fill_ratio
    return ("circle" if fill_ratio < CIRCLE_BELOW else "square"), fill_ratio


def nearest_position(centroid: tuple[float, float]) -> str:
    """The named position whose anchor is nearest to an (x, y) centroid in pixels."""
    x, y = centroid
    return min(
        POSITIONS, key=lambda name: (POSITIONS[name][0] - x) ** 2 + (POSITIONS[name][1] - y) ** 2
    )


def judge(image: np.ndarray) -> Judgement:
    """Measure one ``[H, W, 3]`` RGB image (uint8, or float in 0..255)."""
    pixels = np.asarray(image, dtype=np.float32)
    border = np.concatenate(
        [
            pixels[:BORDER].reshape(-1, 3),
            pixels[-BORDER:].reshape(-1, 3),
            pixels[:, :BORDER].reshape(-1, 3),
            pixels[:, -BORDER:].reshape(-1, 3),
        ]
    )
    background_rgb = np.median(border, axis=0)
    background = nearest_colour(background_rgb)
    distance = np.linalg.norm(pixels - background_rgb, axis=2)
    blob = largest_component(distance > FOREGROUND_DISTANCE)
    area = int(blob.sum())
    if area < 4:
        return Judgement(background, None, None, None, 0.0, None, area)

    # The interior (4 neighbours all in the blob) avoids anti-aliased edge pixels.
    padded = np.pad(blob, 1)
    interior = blob & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    core = interior if interior.any() else blob
    colour = nearest_colour(np.median(pixels[core], axis=0))

    ys, xs = np.nonzero(blob)
    shape, fill_ratio = shape_of_blob(blob)
    # Pixel centres sit at +0.5 in the renderer's continuous coordinates.
    centroid = (float(xs.mean()) + 0.5, float(ys.mean()) + 0.5)
    return Judgement(
        background=background,
        colour=colour,
        shape=shape,
        position=nearest_position(centroid),
        fill_ratio=fill_ratio,
        centroid=centroid,
        area=area,
    )


def score(scene: Scene, judgement: Judgement) -> dict[str, bool]:
    """Which attributes of a single-object scene the judgement got right."""
    target = scene.objects[0]
    return {
        "background": judgement.background == scene.background,
        "colour": judgement.colour == target.colour,
        "shape": judgement.shape == target.shape,
        "position": judgement.position == target.position,
    }


def accuracy(
    scenes: Sequence[Scene], images: Iterable[np.ndarray]
) -> tuple[dict[str, float], list[dict[str, bool]]]:
    """Per-attribute accuracy of ``images`` against the single-object ``scenes`` they show."""
    results = [score(scene, judge(image)) for scene, image in zip(scenes, images, strict=True)]
    return fraction_right(results), results


def fraction_right(results: Sequence[dict[str, bool]]) -> dict[str, float]:
    """The fraction of ``results`` (``score`` outputs) that got each attribute right."""
    return {name: sum(r[name] for r in results) / max(len(results), 1) for name in ATTRIBUTES}


def shape_accuracy_by_class(
    scenes: Sequence[Scene], results: Sequence[dict[str, bool]]
) -> dict[str, float]:
    """The fraction of ``results`` (``score`` outputs) whose shape is right, for each shape the
    single-object ``scenes`` asked for (a shape none of them asked for is left out)."""
    by_shape: dict[str, list[bool]] = {}
    for scene, result in zip(scenes, results, strict=True):
        by_shape.setdefault(scene.objects[0].shape, []).append(result["shape"])
    return {shape: sum(right) / len(right) for shape, right in sorted(by_shape.items())}
