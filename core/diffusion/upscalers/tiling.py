"""Running an upscale model tile by tile, so large pictures fit in memory and a run can stop
between tiles.

Each tile is an input window of at most ``tile`` pixels a side: a core, and up to ``overlap``
pixels of context around it (fewer at the picture's edges). The network runs on the window and
only the core's part of its output is kept, as Real-ESRGAN's tile mode does. A convolutional
network whose receptive field reaches no further than ``overlap`` input pixels therefore gives
exactly its untiled result; a deeper one differs only by what context beyond the overlap would
have contributed. When the device runs out of memory the tile size halves (down to 128, as
ComfyUI does) and the picture starts again.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from core.diffusion.models import module_device, module_dtype
from core.diffusion.upscalers.loading import UpscaleModel

#: ComfyUI's tile size and overlap for ImageUpscaleWithModel, in input pixels.
DEFAULT_TILE = 512
DEFAULT_OVERLAP = 32
#: Tiles never shrink below this when memory runs out; the out-of-memory error is raised then.
MIN_TILE = 128

#: Called with (tiles done, tiles in all) after each tile; may raise to stop the run.
ProgressFn = Callable[[int, int], None]

#: One tile along one axis: (window start, core start, core end, window end), input pixels.
Span = tuple[int, int, int, int]


def tile_spans(length: int, tile: int, overlap: int, multiple_of: int = 1) -> list[Span]:
    """How an axis of ``length`` pixels is cut into windows of at most ``tile`` pixels whose
    cores cover it once; every boundary is a multiple of ``multiple_of`` when ``length`` is."""
    if length <= tile:
        return [(0, 0, length, length)]
    overlap = -(-overlap // multiple_of) * multiple_of
    core = max(multiple_of, (tile - 2 * overlap) // multiple_of * multiple_of)
    spans = []
    for start in range(0, length, core):
        end = min(start + core, length)
        spans.append((max(0, start - overlap), start, end, min(length, end + overlap)))
    return spans


def tile_count(model: UpscaleModel, image: torch.Tensor, tile: int, overlap: int) -> int:
    """How many tiles upscaling ``image`` (``[batch, height, width, channels]``) takes."""
    batch, height, width = image.shape[:3]
    height, width = (_padded(side, model.multiple_of) for side in (height, width))
    return (
        batch
        * len(tile_spans(height, tile, overlap, model.multiple_of))
        * len(tile_spans(width, tile, overlap, model.multiple_of))
    )


def upscale_image(
    model: UpscaleModel,
    image: torch.Tensor,
    *,
    tile: int = DEFAULT_TILE,
    overlap: int = DEFAULT_OVERLAP,
    progress: ProgressFn | None = None,
) -> torch.Tensor:
    """``image`` (``[batch, height, width, 3]`` in 0..1) enlarged ``model.scale`` times, in
    0..1, float32 on the CPU. The network runs where its weights are."""
    if image.ndim != 4 or image.shape[-1] != model.in_channels:
        raise ValueError(
            f"expected pictures of shape [batch, height, width, {model.in_channels}], got "
            f"{list(image.shape)}"
        )
    while True:
        try:
            return _upscale(model, image, tile, overlap, progress)
        except torch.OutOfMemoryError:
            if tile // 2 < MIN_TILE:
                raise
            tile //= 2
            if torch.cuda.is_available():
                torch.cuda.empty_cache()


def _padded(side: int, multiple_of: int) -> int:
    return -(-side // multiple_of) * multiple_of


@torch.inference_mode()
def _upscale(
    model: UpscaleModel,
    image: torch.Tensor,
    tile: int,
    overlap: int,
    progress: ProgressFn | None,
) -> torch.Tensor:
    network, scale, multiple = model.network, model.scale, model.multiple_of
    device, dtype = module_device(network), module_dtype(network)
    batch, height, width, _ = image.shape
    pictures = image.movedim(-1, 1).float()
    padded_h, padded_w = _padded(height, multiple), _padded(width, multiple)
    if (padded_h, padded_w) != (height, width):
        pad = (0, padded_w - width, 0, padded_h - height)
        pictures = F.pad(pictures, pad, mode="replicate")
    rows = tile_spans(padded_h, tile, overlap, multiple)
    columns = tile_spans(padded_w, tile, overlap, multiple)
    total, done = batch * len(rows) * len(columns), 0
    out = torch.empty(batch, model.out_channels, padded_h * scale, padded_w * scale)
    if progress is not None:
        progress(0, total)
    for index in range(batch):
        for y0, top, bottom, y1 in rows:
            for x0, left, right, x1 in columns:
                window = pictures[index : index + 1, :, y0:y1, x0:x1]
                result = network(window.to(device, dtype)).float().cpu()
                out[index, :, top * scale : bottom * scale, left * scale : right * scale] = result[
                    0,
                    :,
                    (top - y0) * scale : (bottom - y0) * scale,
                    (left - x0) * scale : (right - x0) * scale,
                ]
                done += 1
                if progress is not None:
                    progress(done, total)
    out = out[:, :, : height * scale, : width * scale]
    return out.clamp(0.0, 1.0).movedim(1, -1).contiguous()
