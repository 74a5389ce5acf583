"""Hint pictures for ControlNets and T2I-Adapters: edge detection and the image operations
that go with it, on IMAGE tensors ``[batch, height, width, channels]`` in 0..1."""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: ITU-R BT.601 luma weights, as OpenCV and kornia turn RGB into grey.
_LUMA = (0.299, 0.587, 0.114)


def _grey(image: torch.Tensor) -> torch.Tensor:
    """[B, 1, H, W] luma of an IMAGE (one channel is taken as grey already)."""
    channels = image.float().movedim(-1, 1)
    if channels.shape[1] < 3:
        return channels[:, :1]
    weights = torch.tensor(_LUMA, dtype=torch.float32).view(1, 3, 1, 1)
    return (channels[:, :3] * weights).sum(dim=1, keepdim=True)


def _gaussian(image: torch.Tensor, size: int = 5, sigma: float = 1.0) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    padded = F.pad(image, (size // 2,) * 4, mode="reflect")
    out = F.conv2d(padded, kernel.view(1, 1, 1, size))
    return F.conv2d(out, kernel.view(1, 1, size, 1))


def canny(image: torch.Tensor, low_threshold: float, high_threshold: float) -> torch.Tensor:
    """Canny's edge detector (Canny 1986): Gaussian smoothing (5×5, σ = 1), Sobel gradients,
    thinning to local maxima along the gradient, then hysteresis: pixels whose gradient
    magnitude reaches ``high_threshold`` are edges, and so are those above ``low_threshold``
    connected to them. Returns white edges on black as an IMAGE of the input's size."""
    if image.ndim != 4:
        raise ValueError(
            f"Canny needs an IMAGE [batch, height, width, channels], got {tuple(image.shape)}"
        )
    if not 0.0 <= low_threshold <= high_threshold:
        raise ValueError(
            f"low_threshold {low_threshold:g} must not exceed high_threshold {high_threshold:g}"
        )
    smooth = _gaussian(_grey(image))
    sobel = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    padded = F.pad(smooth, (1, 1, 1, 1), mode="replicate")
    gx = F.conv2d(padded, sobel.view(1, 1, 3, 3))
    gy = F.conv2d(padded, sobel.t().contiguous().view(1, 1, 3, 3))
    magnitude = torch.sqrt(gx * gx + gy * gy + 1e-12)
    # Non-maximum suppression: compare each pixel with its two neighbours along the gradient,
    # the direction rounded to one of four (0°, 45°, 90°, 135°).
    angle = torch.rad2deg(torch.atan2(gy, gx)) % 180.0
    sector = torch.round(angle / 45.0).long() % 4
    offsets = [(0, 1), (1, 1), (1, 0), (1, -1)]  # (dy, dx) per sector
    around = F.pad(magnitude, (1, 1, 1, 1))
    height, width = magnitude.shape[-2:]
    keep = torch.zeros_like(magnitude, dtype=torch.bool)
    for number, (dy, dx) in enumerate(offsets):
        ahead = around[..., 1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width]
        behind = around[..., 1 - dy : 1 - dy + height, 1 - dx : 1 - dx + width]
        keep |= (sector == number) & (magnitude >= ahead) & (magnitude >= behind)
    thin = magnitude * keep
    strong = thin >= high_threshold
    weak = thin >= low_threshold
    # Hysteresis: grow the strong edges through 8-connected weak pixels until nothing changes.
    while True:
        grown = (F.max_pool2d(strong.float(), 3, stride=1, padding=1) > 0) & weak
        if torch.equal(grown, strong):
            break
        strong = grown
    edges = strong.float().movedim(1, -1)
    return edges.expand(*edges.shape[:-1], 3).contiguous()


def threshold(image: torch.Tensor, value: float) -> torch.Tensor:
    """Every channel 1 where the pixel's luma reaches ``value``, else 0 (a black-and-white
    hint from a grey sketch or a depth map)."""
    grey = (_grey(image) >= value).float().movedim(1, -1)
    return grey.expand(*grey.shape[:-1], 3).contiguous()
