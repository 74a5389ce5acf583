"""Live previews: a fast latent→RGB projection, per-step history, and channel grids.

A Stable Diffusion latent is close to a linear image of its picture: a 4×3 matrix and a bias
map each latent cell to an RGB colour at latent resolution, cheaply enough to run at every
sampler step. The SD 1.x/2.x and SDXL factors are the ones ComfyUI publishes for those VAEs
(fitted for scaled latents, RGB in −1..1); the demo model ships its own least-squares fit
(``latent_rgb.json``, RGB in 0..1). Both are stored here in the 0..1 form.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from core.diffusion.families import ModelFamily

#: File name of a model folder's own fitted factors.
LATENT_RGB_FILE = "latent_rgb.json"


@dataclass(frozen=True)
class LatentRgb:
    """rgb = latent · factors + bias, in 0..1, for scaled latents (``[4, 3]`` and ``[3]``)."""

    factors: tuple[tuple[float, float, float], ...]
    bias: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @classmethod
    def from_signed(
        cls, factors: Sequence[Sequence[float]], bias: Sequence[float] = (0.0, 0.0, 0.0)
    ) -> LatentRgb:
        """Factors published for RGB in −1..1, rescaled to 0..1: (x + 1) / 2."""
        return cls(
            tuple(tuple(v / 2 for v in row) for row in factors),  # type: ignore[misc]
            tuple((b + 1) / 2 for b in bias),  # type: ignore[arg-type]
        )

    @classmethod
    def load(cls, path: str | Path) -> LatentRgb:
        """Reads a model's ``latent_rgb.json`` (``factors`` 4×3, ``bias`` 3; RGB in 0..1)."""
        data = json.loads(Path(path).read_text())
        factors = tuple(tuple(float(v) for v in row) for row in data["factors"])
        bias = tuple(float(v) for v in data.get("bias", (0.0, 0.0, 0.0)))
        if len(bias) != 3 or any(len(row) != 3 for row in factors):
            raise ValueError(f"{path}: factors must be channels×3 and bias 3 numbers")
        return cls(factors, bias)  # type: ignore[arg-type]

    def project(self, latent: torch.Tensor) -> torch.Tensor:
        """``[B, C, h, w]`` scaled latents → IMAGE ``[B, h, w, 3]`` in 0..1 (float32, CPU)."""
        matrix = torch.tensor(self.factors, dtype=torch.float32)
        if latent.shape[1] != matrix.shape[0]:
            raise ValueError(
                f"these preview factors are for {matrix.shape[0]}-channel latents, "
                f"not {latent.shape[1]}"
            )
        cells = latent.detach().to("cpu", torch.float32).movedim(1, -1)
        return (cells @ matrix + torch.tensor(self.bias)).clamp(0, 1)


#: ComfyUI's published factors for the SD 1.x/2.x VAE (the same VAE for both families).
SD1_LATENT_RGB = LatentRgb.from_signed(
    [
        [0.3512, 0.2297, 0.3227],
        [0.3250, 0.4974, 0.2350],
        [-0.2829, 0.1762, 0.2721],
        [-0.2120, -0.2616, -0.7177],
    ]
)
#: ComfyUI's published factors for the SDXL VAE.
SDXL_LATENT_RGB = LatentRgb.from_signed(
    [
        [0.3651, 0.4232, 0.4341],
        [-0.2533, -0.0042, 0.1068],
        [0.1076, 0.1111, -0.0362],
        [-0.3165, -0.2492, -0.2188],
    ],
    [0.1084, -0.0175, -0.0011],
)
FAMILY_LATENT_RGB: dict[ModelFamily, LatentRgb] = {
    ModelFamily.SD1: SD1_LATENT_RGB,
    ModelFamily.SD2: SD1_LATENT_RGB,
    ModelFamily.SDXL: SDXL_LATENT_RGB,
}


def channel_grid(latent: torch.Tensor, columns: int = 2) -> torch.Tensor:
    """Every channel of the first latent as a grey tile (each normalised to its own range),
    tiled ``columns`` wide with a 1-cell gap: IMAGE ``[1, H, W, 3]``."""
    channels = latent[0].detach().to("cpu", torch.float32)
    count, height, width = channels.shape
    rows = math.ceil(count / columns)
    grid = torch.zeros(rows * (height + 1) - 1, columns * (width + 1) - 1)
    for index, channel in enumerate(channels):
        low, high = channel.min(), channel.max()
        tile = (channel - low) / (high - low) if high > low else torch.zeros_like(channel)
        top, left = (index // columns) * (height + 1), (index % columns) * (width + 1)
        grid[top : top + height, left : left + width] = tile
    return grid[None, :, :, None].expand(-1, -1, -1, 3).contiguous()


@dataclass(frozen=True)
class StepPreview:
    """What a sampler shows after one step: its x̂₀ as an IMAGE, either projected to RGB at
    latent resolution (``source`` "latent") or decoded by the full VAE (``source`` "vae")."""

    step: int
    total: int
    image: torch.Tensor
    source: str = "latent"


@dataclass
class StepHistory:
    """Every step of one sampler run: x_t (the latent after step i) and x̂₀ (the model's clean
    estimate at step i), kept on the CPU in float16 so scrubbing and branching cost no
    recomputation. ``steps[i]`` is the full-schedule index of entry ``i``."""

    total: int
    downscale: int
    #: The model's latent→RGB projection, so a viewer can picture any step without the model.
    projection: LatentRgb = SD1_LATENT_RGB
    steps: list[int] = field(default_factory=list)
    latents: list[torch.Tensor] = field(default_factory=list)
    denoised: list[torch.Tensor] = field(default_factory=list)

    def append(self, step: int, latent: torch.Tensor, denoised: torch.Tensor) -> None:
        self.steps.append(step)
        self.latents.append(latent.detach().to("cpu", torch.float16).clone())
        self.denoised.append(denoised.detach().to("cpu", torch.float16).clone())

    def __len__(self) -> int:
        return len(self.steps)

    def at(self, step: int, which: str = "latent") -> torch.Tensor:
        """x_t (``which="latent"``) or x̂₀ (``"denoised"``) after schedule step ``step``
        (1-based, as progress reports it), as float32."""
        if step not in self.steps:
            have = f"{self.steps[0]}…{self.steps[-1]}" if self.steps else "none"
            raise KeyError(f"step {step} is not in this history (it has steps {have})")
        index = self.steps.index(step)
        source = {"latent": self.latents, "denoised": self.denoised}[which]
        return source[index].float()

    def picture(self, step: int, which: str = "denoised") -> torch.Tensor:
        """IMAGE ``[B, h, w, 3]`` of step ``step`` through the model's projection."""
        return self.projection.project(self.at(step, which))
