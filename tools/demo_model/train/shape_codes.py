"""Stage 3: shape codes in the latent, and the decoder fine-tune that draws from them.

In the autoencoder's latent space a circle and a square of one colour and place lie only 1.7-5
apart, against ~16 for two colours, so the ε-loss hardly minds which of the two the UNet draws,
and every model trained without codes drew the same shape for both words. Colour, a per-cell
value over the whole object, is learned from its word; so the shape is made one too. The
latent's least-used direction (``least_used_direction``: the last principal component of the
encoded scenes, std 0.14 against 1.0-2.7 for the other three) is set, in the latents the UNet
learns, to +code over a circle's box, -code over a square's and 0 over a triangle's and the
background (``shape_code_maps``, ``with_shape_codes``); the other three components stay the
encoder's own. The decoder is then fine-tuned to draw from such latents
(``finetune_decoder_on_codes``), part of them taken from the same scene with circles and squares
swapped so that it learns to take the code's word for it. The encoder never changes, so a
picture encoded in the app decodes nearly as before. Asking the encoder itself to write the code
(a stage-1 loss) failed: its channel did not correlate with the code in 450 steps (2026-12-06;
EXPERIMENTS.md, "Shape codes").

Every exported folder records where its latents carry the codes (``write_shape_codes``), so
tools that make training-like latents (``tools.demo_model.probe``) can write them too.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKL
from safetensors.torch import save_file

from tools.demo_model.scenes import Scene, bounding_box, render_batch
from tools.demo_model.train.autoencoder import autoencoder_psnr, psnr, train_decoder
from tools.demo_model.train.config import LossLog, TrainConfig
from tools.demo_model.train.data import held_back, to_model_range

# Each shape's code, in units of ``TrainConfig.shape_code``. Circle and square, the pair every
# model confused, lie furthest apart; triangles (rarely confused) keep the background's 0, the
# value the encoder itself gives that direction.
SHAPE_CODES: dict[str, float] = {"circle": 1.0, "square": -1.0, "triangle": 0.0}

SHAPE_CODES_FILE = "shape_codes.json"


def shape_code_maps(scenes: list[Scene], latent_size: int, image_size: int) -> torch.Tensor:
    """``[N, 1, latent_size, latent_size]``: each object's ``SHAPE_CODES`` value over the
    latent cells of its bounding box, weighed by the fraction of the cell the box covers (so
    a box edge inside a cell gives a partial value), 0 elsewhere; later objects cover earlier
    ones, as in drawing."""
    cell = image_size / latent_size
    starts = np.arange(latent_size) * cell
    maps = np.zeros((len(scenes), 1, latent_size, latent_size), dtype=np.float32)
    for row, scene in enumerate(scenes):
        for obj in scene.objects:
            x0, y0, x1, y1 = bounding_box(obj)
            cover_x = np.clip(np.minimum(starts + cell, x1) - np.maximum(starts, x0), 0, cell)
            cover_y = np.clip(np.minimum(starts + cell, y1) - np.maximum(starts, y0), 0, cell)
            cover = np.outer(cover_y, cover_x) / cell**2
            maps[row, 0] = maps[row, 0] * (1 - cover) + SHAPE_CODES[obj.shape] * cover
    return torch.from_numpy(maps)


def with_circles_and_squares_swapped(scene: Scene) -> Scene:
    """``scene`` with every circle drawn as a square and every square as a circle."""
    other = {"circle": "square", "square": "circle"}
    objects = tuple(replace(obj, shape=other.get(obj.shape, obj.shape)) for obj in scene.objects)
    return replace(scene, objects=objects)


def least_used_direction(latents: torch.Tensor) -> torch.Tensor:
    """The unit ``[C]`` vector along which the per-cell latent values of ``[N, C, h, w]``
    vary least (the last principal component), its sign fixed so its largest entry is
    positive."""
    cells = latents.permute(0, 2, 3, 1).reshape(-1, latents.shape[1]).double()
    _, vectors = torch.linalg.eigh(torch.cov(cells.T))
    direction = vectors[:, 0]
    return (direction * direction[direction.abs().argmax()].sign()).float()


def with_shape_codes(
    latents: torch.Tensor, codes: torch.Tensor, direction: torch.Tensor
) -> torch.Tensor:
    """``latents`` with their component along the unit ``direction`` replaced by ``codes``
    (``[N, 1, h, w]``); every other component unchanged."""
    d = direction.view(1, -1, 1, 1)
    return latents + (codes - (latents * d).sum(1, keepdim=True)) * d


def finetune_decoder_on_codes(
    vae: AutoencoderKL,
    images: np.ndarray,
    scenes: list[Scene],
    config: TrainConfig,
    log: LossLog,
    codes: torch.Tensor,
    direction: torch.Tensor,
) -> None:
    """The shape-code decoder fine-tune: ``config.shape_code_steps`` decoder-only steps, logged
    as stage "shape codes", where ``config.shape_code_fraction`` of each batch decodes its
    latents ``with_shape_codes`` (``codes``: every scene's ``shape_code_maps`` times the code)
    and ``config.shape_code_swap_fraction`` of those the latents of the scene with circles and
    squares swapped, under the drawn scene's code. A decoder that only sees agreeing latents
    draws from the outline and ignores the code."""

    def write_codes(z: torch.Tensor, index: np.ndarray, generator: torch.Generator) -> torch.Tensor:
        coded = torch.rand(len(z), generator=generator) < config.shape_code_fraction
        swap = torch.rand(len(z), generator=generator) < config.shape_code_swap_fraction
        swap &= coded
        if swap.any():
            others = [with_circles_and_squares_swapped(scenes[i]) for i in index[swap.numpy()]]
            other = vae.encode(to_model_range(render_batch(others))).latent_dist
            z[swap] = other.mean + other.std * torch.randn(other.mean.shape, generator=generator)
        z[coded] = with_shape_codes(z[coded], codes[index][coded], direction)
        return z

    backgrounds = [scene.background for scene in scenes]
    train_decoder(
        vae,
        images,
        backgrounds,
        config,
        log,
        config.shape_code_steps,
        "shape codes",
        config.seed + 5,
        write_codes,
    )


def shape_code_stage(
    vae: AutoencoderKL,
    images: np.ndarray,
    scenes: list[Scene],
    means: torch.Tensor,
    config: TrainConfig,
    log: LossLog,
    work: Path,
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Stage 3 as the command runs it: find the code direction in the encoded ``means``,
    fine-tune the decoder on coded latents (saved to ``work/vae_shape_codes.safetensors``) and
    return the coded means the UNet learns from, the direction, and the autoencoder's PSNR on
    the held-back scenes after the fine-tune."""
    codes = config.shape_code * shape_code_maps(scenes, means.shape[-1], images.shape[1])
    direction = least_used_direction(means)
    print(f"shape codes along latent direction {direction.tolist()}", flush=True)
    finetune_decoder_on_codes(vae, images, scenes, config, log, codes, direction)
    save_file(vae.state_dict(), work / "vae_shape_codes.safetensors")
    means = with_shape_codes(means, codes, direction)
    held = held_back(len(images))
    ae_psnr = autoencoder_psnr(vae, images[-held:])
    with torch.no_grad():
        coded_psnr = psnr(to_model_range(images[-held:]), vae.decode(means[-held:]).sample)
    print(
        f"autoencoder PSNR after the shape-code fine-tune {ae_psnr:.2f} dB (the encoder's "
        f"own latents), {coded_psnr:.2f} dB (with shape codes)",
        flush=True,
    )
    return means, direction, ae_psnr


def write_shape_codes(folder: Path, direction: torch.Tensor, code: float) -> None:
    """Record in an exported folder where its latents carry the shape codes (the unit
    direction, unscaled latent units), so tools that make training-like latents
    (``probe.shape_kept_from_noise``) can write them too."""
    record = {"direction": direction.tolist(), "code": code, "values": SHAPE_CODES}
    (folder / SHAPE_CODES_FILE).write_text(json.dumps(record, indent=2) + "\n")


def read_shape_codes(folder: Path) -> tuple[torch.Tensor, float] | None:
    """The (direction, code) ``write_shape_codes`` recorded in ``folder``, or None."""
    path = folder / SHAPE_CODES_FILE
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    return torch.tensor(record["direction"]), float(record["code"])
