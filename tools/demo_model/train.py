"""Train the shipped demo model from scratch: autoencoder, then UNet with a joint text encoder.

    python -m tools.demo_model.train

runs every stage with fixed seeds and writes the model to
``resources/models/checkpoints/latentloom-shapes`` (where the app looks for it by name):

1. draw a fixed set of captioned scenes (``tools.demo_model.scenes``);
2. train a KL-regularised autoencoder (LDM paper, section 3.1: f = 4, KL weight 1e-6), then
   fine-tune its decoder alone with object pixels weighted up (the encoder, hence the latent
   space, stays fixed);
3. encode every scene once, write each object's shape code into the latent's least-used
   direction over its box (+ for a circle, - for a square; ``shape_code_maps``) and fine-tune
   the decoder to draw the shape the code says, then set the latent scaling factor to 1 / std
   of the latents (LDM paper, appendix G, "rescale the latent space to unit standard
   deviation"). Without the code a circle and a square lie so close in latent space that the
   UNet drew the same shape for both words (tools/demo_model/experiments/session21_*);
4. train the UNet and the CLIP text encoder jointly on the cached latents with ε-prediction
   (LDM paper, eq. 2) and Stable Diffusion's scaled-linear schedule, dropping 10 % of captions
   so classifier-free guidance has an unconditional model to subtract. Two phases: for the
   first 2,200 of 2,800 steps half of every batch comes from t >= 900 with an x0 weight of at
   least 1 (the only timesteps where the prompt's place lowers the loss), then timesteps are
   uniform under plain Min-SNR-5; the text encoder is anchored to its initial output
   throughout, so it cannot erase the difference between the position words before the UNet
   uses them (tools/demo_model/experiments/session7_*, session8_*); then a polishing phase of
   400 steps continues the exported average with a fresh learning-rate cycle (peak 2e-4),
   uniform timesteps and the cells around each object's outline weighed 3 times (session
   13). The UNet stage runs under bf16 autocast where the CPU computes bfloat16 natively and
   in float32 elsewhere (``--precision``);
5. export a float16 diffusers folder with its latent→RGB preview factors and the loss log;
6. evaluate on held-out prompts (``tools.demo_model.evaluate``) and draw the sample grid.

Checkpoints of the exported folder are written to the work directory every few hundred steps,
so a run that has to be cut short still leaves a usable model behind.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, UNet2DConditionModel
from safetensors.torch import load_file, save_file
from torch.nn.attention import SDPBackend, sdpa_kernel
from transformers import CLIPTextModel, CLIPTokenizer

from core.diffusion.devices import cpu_has_native_bf16
from tools.demo_model import components
from tools.demo_model.scenes import (
    COLOURS,
    Scene,
    bounding_box,
    caption,
    render_batch,
    training_scenes,
)


@dataclass(frozen=True)
class TrainConfig:
    """Every number that decides the result; saved next to the model in ``train_log.json``."""

    seed: int = 0
    scenes: int = 20_000
    threads: int = 2
    # Autoencoder.
    ae_steps: int = 700
    ae_batch: int = 32
    ae_lr: float = 1e-3
    ae_kl_weight: float = 1e-6  # LDM paper, appendix G: "KL-reg" models use a weight of ~1e-6
    # Objects cover a few percent of a scene; weighting their pixels up in stage 1 too makes the
    # encoder keep their outline (session 1: shape read back from reconstructions capped at 84 %
    # with the weighting in the decoder stage only).
    ae_object_weight: float = 5.0
    # A learned 1×1 projection of the latent must match the image average-pooled to latent
    # resolution, so the latent→RGB live preview is close to the decoded picture (session 1:
    # least-squares fit RMSE 0.22 without this term).
    ae_preview_weight: float = 0.1
    # Decoder fine-tuning with the encoder frozen (as Stability's ft-MSE VAE decoders): objects
    # cover a few percent of a scene, so their pixels weigh object_weight times more.
    decoder_steps: int = 500
    decoder_lr: float = 5e-4
    object_weight: float = 10.0
    # Shape codes in the latent (``--shape-code``; 0: off). The latent's least-used direction
    # (PCA of the encoded scenes: std 0.14 against 1.0-2.7 for the other three, session 18) is
    # set to each object's ``SHAPE_CODES`` value times this over the cells of its box
    # (``shape_code_maps``, ``with_shape_codes``) in the latents the UNet learns, and the
    # decoder is fine-tuned for ``shape_code_steps`` more steps to draw from such latents
    # (``shape_code_fraction`` of each batch; the rest keep the encoder's own value, so a
    # user's encoded picture still decodes as before). A circle and a square of one colour and
    # place otherwise lie only 1.7-5 apart in latent space against ~16 for two colours
    # (session 14's probe): the ε-loss hardly minds which one the UNet draws, and every model
    # up to session 20 drew the same shape whichever of the two words it was given. With the
    # code the shape is a per-cell value over the whole box, as colour is, and the UNet writes
    # the right sign for the word (16 of 16 circle/square prompts, session 21): held-out shape
    # 55.6 -> 70.0 %, 73.8 % with the swapped decoder batches below. Asking the encoder itself
    # to write the code (a stage-1 loss) failed: in 450 steps its channel did not correlate
    # with the code at all (tools/demo_model/experiments/session21_shape_codes.txt).
    shape_code: float = 2.5
    shape_code_steps: int = 400
    shape_code_fraction: float = 0.75
    # Of the coded samples, this fraction decodes the latent of the same scene with circles and
    # squares swapped, carrying the drawn scene's code: a decoder that only ever sees agreeing
    # latents draws from the outline and ignores the code (session 21: swapping the codes of 44
    # held-out scenes changed 1 drawn shape), so the UNet's code would not reach the picture.
    # The UNet does not depend on the decoder, so this changes nothing it learns. 0.5 for 400
    # steps: 4 of 44 drawn shapes follow a swapped code, held-out shape 73.8 %; 1.0 for 800:
    # 34 of 44 follow it, but the same 73.8 % and the autoencoder's own shape ceiling 85.6 %
    # against 96.2 %.
    shape_code_swap_fraction: float = 0.5
    # UNet and text encoder.
    unet_steps: int = 2800
    unet_batch: int = 64
    unet_lr: float = 6e-4
    text_lr_scale: float = 5.0
    # The text encoder keeps its random initial weights for this many first steps
    # (``--text-freeze-steps``; 0, the full command's, trains it from the start). Trained from the
    # start, it erases the difference between words the UNet does not use yet, and a random
    # encoder already tells "left" from "right" (session 6, experiments/session6_position_check).
    text_freeze_steps: int = 0
    # The text encoder learns only from the samples of a batch with t >= text_grad_from
    # (``--text-grad-from``; their context is detached for the others; 0: from every sample).
    # Below t ~ 900 x_t already shows where the object is, so the position word cannot lower
    # the loss there. It does not keep the position words apart: session 8's check collapsed
    # them further with it (left/right 11.9 -> 0.16, placement 20 %; session8_text_encoder_*).
    text_grad_from: int = 0
    # A penalty on the text encoder's drift (``--text-anchor-weight``): this weight times the
    # mean squared difference between its output and that of a frozen copy of its initial
    # weights. The UNet learns to use the position words late, and until it does, training
    # shrinks their difference (session 8, run e: context distance 11.9 -> 0.16); words it
    # uses early (colour) pull harder than the anchor. 0: off.
    text_anchor_weight: float = 10.0
    warmup_steps: int = 150
    final_lr_fraction: float = 0.05
    weight_decay: float = 0.01
    empty_caption_fraction: float = 0.1  # classifier-free guidance (Ho & Salimans 2022)
    # Min-SNR-γ loss weighting (Hang et al. 2023), γ = 5 as in the paper.
    min_snr_gamma: float = 5.0
    # A floor under the x0 weight that the ε-loss puts on each timestep (``--x0-weight-floor``):
    # the ε-loss weighs x0 errors by SNR, under 0.024 for t > 850, the only timesteps where x_t
    # does not yet show where the object is and the position words could lower the loss
    # (session 4's probe). 0: off. Session 5 tried 0.1, alone and with pyramid_noise 0.8:
    # position stayed at chance (tools/demo_model/experiments/session5_*); 1 with the high-noise
    # half-batches below is what teaches the layout (session 7).
    x0_weight_floor: float = 1.0
    # Offset noise (Guttenberg 2023): a per-channel constant added to the noise, so the mean
    # colour of x_T leaks nothing and the background must come from the prompt.
    offset_noise: float = 0.1
    # Multi-resolution ("pyramid") noise (``--pyramid-noise``): noise drawn at 1/2, 1/4, 1/8 of
    # the latent's size, weighted by discount**level, upsampled and added, so the coarse layout
    # stays hidden in x_t down to lower t. 0: off. A model trained
    # with it draws blotches from the white noise every sampler starts from (session 5).
    pyramid_noise: float = 0.0
    # A fraction of every batch drawn from the noisiest timesteps only, high_noise_from..999
    # (``--high-noise-fraction``, ``--high-noise-from``), the rest uniformly from 0..999 as usual.
    # Only there does the position word lower the loss (x_t shows the place below t ~ 900).
    # 0: off, every timestep uniform. 1 trains those timesteps alone, as the position check's
    # session-6 runs 4-5 did. From 800, the position check placed 35-80 % and lost the
    # background; from 900, 95 % with it (session 7).
    high_noise_fraction: float = 0.5
    high_noise_from: int = 900
    # A two-phase recipe (``--high-noise-steps N``): high_noise_fraction and x0_weight_floor
    # apply to the first N steps only; after them timesteps are drawn uniformly and the loss is
    # plain Min-SNR-γ, for the low-noise detail that a high-noise-heavy batch starves (session 7:
    # the full data at half of each batch from t >= 900 and x0 floor 1 was still blotches with
    # the background right in a third of pictures after 1,500 steps of 64). 0: every step.
    high_noise_steps: int = 2200
    # Timesteps are drawn from 0 up to (not including) this; 1000: all of them. Only the
    # refining phase below draws fewer.
    unet_timestep_below: int = 1000
    # 0.999 is effectively 0.9968 at 2,800 steps (the (1 + n) / (10 + n) warm-up). Against the
    # last weights (0) of the same run, session 11: the same held-out accuracy (98.8 / 89.4 /
    # 41.2 / 100 %) but the default prompt's red circle red for 3 of 4 seeds against 1 of 4
    # (tools/demo_model/experiments/session11_end_to_end_run.txt).
    ema_decay: float = 0.999
    # The ε-loss of latent cells an object touches can weigh more (``--unet-object-weight``).
    # 1: off. Session 3 tried 5 with 5,000 steps of 32: held-out
    # accuracy fell (tools/demo_model/experiments/session3_object_weighted_loss.txt).
    unet_object_weight: float = 1.0
    # The ε-loss of latent cells within one cell of an object's outline, inside or out, can
    # weigh more (``--unet-outline-weight``; 1: off): where a square's corners and a circle's
    # curve differ.
    unet_outline_weight: float = 1.0
    # The ε-loss of the latent cells at the four corners of each object's box can weigh more
    # (``--unet-corner-weight``, ``--polish-corner-weight``; 1: off): the cells where a square
    # is full, a circle empty and a triangle full at the bottom only (``latent_corner_weights``).
    # Session 18, in the polish on session 17's main phase: W = 6 held-out shape 60.0 % (10
    # fixed, 3 broken against 55.6 %; sign test p ~ 0.09), W = 12 55.0 %: no dose response, so
    # within noise, and off (tools/demo_model/experiments/session18_squares.txt).
    unet_corner_weight: float = 1.0
    # A loss in pixel space beside the ε-loss (``--unet-pixel-weight``; 0: off): for the samples
    # of a batch with t < unet_pixel_below, the UNet's x0 estimate is decoded by the frozen
    # autoencoder and compared with the drawn scene (L1 + L2, object pixels weighed
    # ``object_weight`` times, as the decoder's fine-tuning). A small circle and a small square
    # lie only 1.65 apart in latent space against 15.7 for red and green (session 14's probe),
    # so the ε-loss hardly tells them apart; through the decoder the difference is the corner
    # pixels themselves.
    unet_pixel_weight: float = 0.0
    unet_pixel_below: int = 600
    # A polishing phase after the main one (``--polish-steps``, ``--polish-lr``; 0 steps: off):
    # the exported average is trained on for this many more steps with a fresh optimizer, its
    # own warm-up and cosine from ``polish_lr``, uniform timesteps under plain Min-SNR-γ and an
    # average of decay ``polish_ema_decay``, as ``--resume`` continues an exported folder. The
    # main phase's uniform part runs at the tail of its cosine (1e-4 down to 3e-5); session 13's
    # 400 steps from 2e-4 on the session-11 model lifted held-out colour from 89.4 to 95.0 % and
    # shape from 41.2 to 46.2 % (8 colours and 17 shapes fixed, 2 and 8 broken, of 160), with
    # background and position at 100 % (tools/demo_model/experiments/session13_*). With the
    # ε-loss of the cells around each object's outline weighed 3 times (polish_outline_weight),
    # the same 400 steps reached 95.0 % colour and 53.1 % shape: 13 shapes fixed and 3 broken
    # against the polish without it, triangles 41 of 50 right.
    polish_steps: int = 400
    polish_lr: float = 2e-4
    polish_warmup_steps: int = 30
    polish_ema_decay: float = 0.99
    polish_outline_weight: float = 3.0
    polish_corner_weight: float = 1.0
    polish_pixel_weight: float = 0.0
    # A refining phase after the polish (``--refine-steps``, ``--refine-timestep-below``; 0
    # steps: off), with the polish's settings but timesteps drawn only below
    # ``refine_timestep_below``: the nearly clean steps, where guidance is off in the default
    # workflow and the UNet alone settles a square's edges. Session 23: held-out squares noised
    # to t = 51 and denoised by the UNet alone stayed square only 75 % of the time (through the
    # autoencoder alone: 92 %). Session 24, these 400 steps after session 21's model: held-out
    # shape with 20 DDIM steps 78.1 -> 83.8 % (squares 34 -> 39 of 60, triangles 46 -> 49;
    # 78.8 -> 87.5 % with other noise), colour 98.8 -> 99.4 %
    # (tools/demo_model/experiments/session24_refining_low_noise.txt).
    refine_steps: int = 400
    refine_timestep_below: int = 400
    # bf16 autocast for the UNet and text encoder. The command's ``--precision auto`` (its
    # default) keeps it only where the CPU computes bfloat16 in hardware (AVX512-BF16 or AMX):
    # elsewhere autocast emulates it, and a training step takes ten times as long as in float32
    # (session 13, AMD EPYC with AVX2 only: 25.2 against 1.9-2.6 s a step; ``precision_for``).
    bf16: bool = True
    checkpoint_every: int = 500
    log_every: int = 25


class LossLog:
    """Losses by stage and step, printed as they come and kept for ``train_log.json``."""

    def __init__(self) -> None:
        self.records: dict[str, list[list[float]]] = {}
        self.start = time.time()

    def add(self, stage: str, step: int, loss: float, **extra: float) -> None:
        self.records.setdefault(stage, []).append([step, round(loss, 5)])
        elapsed = time.time() - self.start
        details = " ".join(f"{k}={v:.3g}" for k, v in extra.items())
        print(
            f"[{elapsed / 60:6.1f} min] {stage} step {step:5d} loss {loss:.5f} {details}",
            flush=True,
        )


def cosine_lr(step: int, total: int, peak: float, warmup: int, final_fraction: float) -> float:
    """Linear warm-up, then cosine decay to ``final_fraction`` of the peak."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (final_fraction + (1 - final_fraction) * 0.5 * (1 + math.cos(math.pi * progress)))


def to_model_range(images: np.ndarray) -> torch.Tensor:
    """uint8 ``[N, H, W, 3]`` images as float ``[N, 3, H, W]`` in -1..1, the VAE's range."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def held_back(count: int) -> int:
    """How many of ``count`` scenes (the last ones) the autoencoder never trains on and is
    measured on: 512, or a quarter of a small set."""
    return min(512, count // 4)


def psnr(reference: torch.Tensor, estimate: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB of images in -1..1 (peak-to-peak 2)."""
    mse = F.mse_loss(estimate.clamp(-1, 1), reference).item()
    return 10 * math.log10(4.0 / max(mse, 1e-12))


def train_autoencoder(
    images: np.ndarray, backgrounds: list[str], config: TrainConfig, log: LossLog
) -> tuple[AutoencoderKL, float]:
    """Stage 1: fit the autoencoder; returns it and its PSNR on the held-back scenes."""
    torch.manual_seed(config.seed)
    vae = components.new_vae()
    # Latent → RGB at latent resolution; only shapes the latent space, not exported (the
    # shipped preview factors are refitted by least squares in ``fit_latent_rgb``).
    preview = torch.nn.Conv2d(vae.config.latent_channels, 3, kernel_size=1)
    optimizer = torch.optim.AdamW(
        [*vae.parameters(), *preview.parameters()], lr=config.ae_lr, weight_decay=0.0
    )
    generator = torch.Generator().manual_seed(config.seed)
    train_count = len(images) - held_back(len(images))
    vae.train()
    for step in range(config.ae_steps):
        lr = cosine_lr(step, config.ae_steps, config.ae_lr, 50, config.final_lr_fraction)
        for group in optimizer.param_groups:
            group["lr"] = lr
        index = torch.randint(0, train_count, (config.ae_batch,), generator=generator).numpy()
        x = to_model_range(images[index])
        weight = object_weights(images, backgrounds, index, config.ae_object_weight)
        # float32: on this CPU bf16 autocast makes the autoencoder slower (~4 s vs ~1.2 s a
        # step), unlike the UNet.
        posterior = vae.encode(x).latent_dist
        z = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=generator)
        reconstruction = vae.decode(z).sample
        rec = reconstruction_loss(reconstruction.float(), x, weight)
        factor = x.shape[-1] // z.shape[-1]
        preview_loss = (preview(posterior.mean) - F.avg_pool2d(x, factor)).abs().mean()
        # LDM weighs the KL of each image against its summed reconstruction error; per pixel,
        # that is the KL weight divided by the number of values in an image.
        kl = posterior.kl().float().mean()
        loss = (
            rec + config.ae_kl_weight * kl / x[0].numel() + config.ae_preview_weight * preview_loss
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        optimizer.step()
        if step % config.log_every == 0 or step == config.ae_steps - 1:
            log.add(
                "autoencoder", step, loss.item(), rec=rec.item(), preview=preview_loss.item(), lr=lr
            )
    vae.eval()
    return vae, autoencoder_psnr(vae, images[train_count:])


# Each shape's code, in units of ``TrainConfig.shape_code``. Circle and square, the pair every
# model confused, lie furthest apart; triangles (rarely confused) keep the background's 0, the
# value the encoder itself gives that direction.
SHAPE_CODES: dict[str, float] = {"circle": 1.0, "square": -1.0, "triangle": 0.0}


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


SHAPE_CODES_FILE = "shape_codes.json"


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


def reconstruction_loss(
    reconstruction: torch.Tensor, x: torch.Tensor, weight: torch.Tensor
) -> torch.Tensor:
    """L1, as in the LDM autoencoders, plus L2 for flat colours, per pixel weighted by
    ``weight`` and normalised by its mean so the loss keeps its scale."""
    error = reconstruction - x
    return (weight * (error.abs() + error.pow(2))).mean() / weight.mean()


def finetune_decoder(
    vae: AutoencoderKL,
    images: np.ndarray,
    backgrounds: list[str],
    config: TrainConfig,
    log: LossLog,
    shape_codes: tuple[torch.Tensor, torch.Tensor, list[Scene]] | None = None,
) -> None:
    """Stage 2: train the decoder alone on latents of the frozen encoder, objects weighted up.

    The encoder does not change, so neither do the latents the UNet learns; only the pictures
    they decode to get sharper and truer in colour.

    With ``shape_codes`` (every scene's ``shape_code_maps`` times the code, the latent
    direction they go in, and the scenes) it runs the shape-code fine-tune instead:
    ``config.shape_code_steps`` steps where ``config.shape_code_fraction`` of each batch has
    its latents' ``with_shape_codes``, ``config.shape_code_swap_fraction`` of those the latents
    of the scene with circles and squares swapped, logged as stage "shape codes".
    """
    steps, stage, seed = config.decoder_steps, "decoder", config.seed + 4
    if shape_codes is not None:
        steps, stage, seed = config.shape_code_steps, "shape codes", config.seed + 5
    generator = torch.Generator().manual_seed(seed)
    train_count = len(images) - held_back(len(images))
    for module in (vae.encoder, vae.quant_conv):
        module.requires_grad_(False)
    params = [p for p in vae.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.decoder_lr, weight_decay=0.0)
    vae.train()
    for step in range(steps):
        lr = cosine_lr(step, steps, config.decoder_lr, 20, config.final_lr_fraction)
        for group in optimizer.param_groups:
            group["lr"] = lr
        index = torch.randint(0, train_count, (config.ae_batch,), generator=generator).numpy()
        x = to_model_range(images[index])
        weight = object_weights(images, backgrounds, index, config.object_weight)
        with torch.no_grad():
            posterior = vae.encode(x).latent_dist
            z = posterior.mean + posterior.std * torch.randn(
                posterior.mean.shape, generator=generator
            )
            if shape_codes is not None:
                codes, direction, scenes = shape_codes
                coded = torch.rand(len(z), generator=generator) < config.shape_code_fraction
                swap = torch.rand(len(z), generator=generator) < config.shape_code_swap_fraction
                swap &= coded
                if swap.any():
                    others = [
                        with_circles_and_squares_swapped(scenes[i]) for i in index[swap.numpy()]
                    ]
                    other = vae.encode(to_model_range(render_batch(others))).latent_dist
                    z[swap] = other.mean + other.std * torch.randn(
                        other.mean.shape, generator=generator
                    )
                z[coded] = with_shape_codes(z[coded], codes[index][coded], direction)
        reconstruction = vae.decode(z).sample
        loss = reconstruction_loss(reconstruction, x, weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        if step % config.log_every == 0 or step == steps - 1:
            log.add(stage, step, loss.item(), lr=lr)
    vae.requires_grad_(True)
    vae.eval()


@torch.no_grad()
def autoencoder_psnr(vae: AutoencoderKL, images: np.ndarray) -> float:
    """PSNR of the autoencoder's reconstructions (posterior mode) of ``images``."""
    x = to_model_range(images)
    return psnr(x, vae.decode(vae.encode(x).latent_dist.mode()).sample)


@torch.no_grad()
def encode_all(vae: AutoencoderKL, images: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Stage 3: posterior mean and std of every scene, computed once (float32)."""
    means, stds = [], []
    for start in range(0, len(images), 256):
        posterior = vae.encode(to_model_range(images[start : start + 256])).latent_dist
        means.append(posterior.mean.float())
        stds.append(posterior.std.float())
    return torch.cat(means), torch.cat(stds)


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


class ExponentialAverage:
    """EMA of a set of parameters, with the usual warm-up of the decay ((1 + n) / (10 + n))."""

    def __init__(self, modules: list[torch.nn.Module], decay: float) -> None:
        self.decay = decay
        self.params = [p for m in modules for p in m.parameters()]
        self.shadow = [p.detach().clone().float() for p in self.params]
        self.updates = 0

    @torch.no_grad()
    def update(self) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        torch._foreach_lerp_(self.shadow, [p.detach().float() for p in self.params], 1 - decay)

    @torch.no_grad()
    def copy_to(self, modules: list[torch.nn.Module]) -> None:
        targets = [p for m in modules for p in m.parameters()]
        for target, value in zip(targets, self.shadow, strict=True):
            target.copy_(value)


def training_noise(
    shape: torch.Size, generator: torch.Generator, offset: float, pyramid: float
) -> torch.Tensor:
    """The ε a training step adds: white noise, plus ``offset`` times a per-channel constant
    (offset noise), plus coarser white noise at every halving of the size down to 2×2, weighted
    ``pyramid``**level and bilinearly upsampled, the whole rescaled to unit variance per sample
    when ``pyramid`` is on (multi-resolution noise)."""
    batch, channels, height, width = shape
    noise = torch.randn(shape, generator=generator)
    if pyramid > 0:
        level, size = 1, min(height, width) // 2
        while size >= 2:
            coarse = torch.randn((batch, channels, size, size), generator=generator)
            noise = noise + pyramid**level * F.interpolate(
                coarse, size=(height, width), mode="bilinear", align_corners=False
            )
            level, size = level + 1, size // 2
        noise = noise / noise.std(dim=(1, 2, 3), keepdim=True)
    return noise + offset * torch.randn((batch, channels, 1, 1), generator=generator)


def epsilon_loss(
    prediction: torch.Tensor,
    noise: torch.Tensor,
    cells: torch.Tensor,
    alphas_cumprod: torch.Tensor,
    min_snr_gamma: float,
    x0_weight_floor: float = 0.0,
) -> torch.Tensor:
    """The UNet's training loss: squared ε error (LDM eq. 2), each latent cell weighted by
    ``cells`` and each sample normalised by its mean weight, then Min-SNR-γ weighted across
    timesteps (Hang et al. 2023; for ε-prediction the weight is min(SNR, γ) / SNR).

    An ε error is an x0 error times sqrt(SNR), so the plain ε-loss weighs x0 errors by SNR;
    ``x0_weight_floor`` raises that weight to at least the floor at the noisiest timesteps:
    the weight becomes clamp(SNR, floor, γ) / SNR."""
    squared = (prediction - noise).pow(2)
    per_sample = (cells * squared).mean(dim=(1, 2, 3)) / cells.mean(dim=(1, 2, 3))
    snr = alphas_cumprod / (1 - alphas_cumprod)
    return (snr.clamp(min=x0_weight_floor, max=min_snr_gamma) / snr * per_sample).mean()


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


def training_attention(bf16: bool):
    """The attention kernels for a UNet / text-encoder training forward pass (the backward pass
    follows the forward's choice).

    Under bf16 autocast, torch's CPU flash-attention kernel is the slow one: its backward pass
    took 53 % of a training step at this model's head sizes (8-32 channels a head). Session 10,
    batch 64, 2 threads, the whole training loop: 3.0-3.3 s a step with it against 1.55-1.8 s
    with the plain matmul-softmax ("math") kernel (``bench/demo_model_training.py``). In float32
    the flash kernel is the faster one (1.1 against 1.4 s a bare step), so it is left to torch
    there."""
    return sdpa_kernel(SDPBackend.MATH) if bf16 else nullcontext()


def train_unet(
    means: torch.Tensor,
    stds: torch.Tensor,
    cell_weights: torch.Tensor,
    scale: float,
    scenes_captions: list,
    config: TrainConfig,
    log: LossLog,
    checkpoint: callable,
    time_limit_s: float | None,
    init_from: Path | None = None,
    extra_ema_decays: tuple[float, ...] = (),
    export_extra: Callable[[float, ExponentialAverage], None] | None = None,
    stage: str = "unet",
    pixel_targets: PixelTargets | None = None,
) -> tuple[UNet2DConditionModel, CLIPTextModel, int]:
    """Stage 4: ε-prediction training of UNet and text encoder; returns the EMA weights.

    ``cell_weights`` (``[N, 1, h, w]``, from ``latent_object_weights``) weighs each latent
    cell's squared error; each sample's loss is normalised by its mean weight.

    ``init_from`` (an exported folder) continues from earlier weights instead of from scratch.

    ``extra_ema_decays`` keeps further averages of the same weights beside the exported one
    (0: the last weights themselves), each handed to ``export_extra(decay, average)`` at the end;
    averaging does not touch training, so one run compares several decays exactly.

    ``stage`` names the phase in the loss log ("unet", or "polish" for ``polish_config``'s).

    ``pixel_targets`` are what ``config.unet_pixel_weight`` compares decoded x0 estimates with;
    a config that asks for that loss without them is refused.
    """
    if config.unet_pixel_weight and pixel_targets is None:
        raise ValueError(
            f"unet_pixel_weight {config.unet_pixel_weight} asks for a pixel-space loss, but no "
            "pixel targets (autoencoder and drawn scenes) were given to train_unet; pass "
            "pixel_targets or set unet_pixel_weight to 0"
        )
    if pixel_targets is not None:
        pixel_targets.vae.eval().requires_grad_(False)
    torch.manual_seed(config.seed + 1)
    unet, text_encoder = components.new_unet(), components.new_text_encoder()
    if init_from is not None:
        unet.load_state_dict(load_file(init_from / "unet" / "diffusion_pytorch_model.safetensors"))
        text_encoder.load_state_dict(
            load_file(init_from / "text_encoder" / "model.safetensors"), strict=False
        )
    scheduler = components.new_scheduler()
    alphas_cumprod = scheduler.alphas_cumprod.float()
    tokens = TokenCache(components.load_tokenizer())
    modules = [unet, text_encoder]
    params = [p for m in modules for p in m.parameters()]
    # The text encoder starts from embeddings of std 0.02, so different prompts give nearly
    # the same context; a larger step for it lets the prompt matter sooner.
    optimizer = torch.optim.AdamW(
        [
            {"params": list(unet.parameters()), "lr_scale": 1.0, "frozen_for": 0},
            {
                "params": list(text_encoder.parameters()),
                "lr_scale": config.text_lr_scale,
                "frozen_for": config.text_freeze_steps,
            },
        ],
        lr=config.unet_lr,
        betas=(0.9, 0.999),
        weight_decay=config.weight_decay,
    )
    ema = ExponentialAverage(modules, config.ema_decay)
    extras = {decay: ExponentialAverage(modules, decay) for decay in extra_ema_decays}
    anchor = None
    if config.text_anchor_weight:
        anchor = copy.deepcopy(text_encoder).eval().requires_grad_(False)
    generator = torch.Generator().manual_seed(config.seed + 2)
    rng = random.Random(config.seed + 3)
    for module in modules:
        module.train()
    started, steps_done = time.time(), 0
    for step in range(config.unet_steps):
        lr = cosine_lr(
            step, config.unet_steps, config.unet_lr, config.warmup_steps, config.final_lr_fraction
        )
        for group in optimizer.param_groups:
            # lr 0 also stops AdamW's (lr-scaled) weight decay, so frozen weights stay put.
            group["lr"] = 0.0 if step < group["frozen_for"] else lr * group["lr_scale"]
        index = torch.randint(0, len(means), (config.unet_batch,), generator=generator)
        texts = [
            "" if rng.random() < config.empty_caption_fraction else caption(scenes_captions[i], rng)
            for i in index.tolist()
        ]
        ids = tokens(texts)
        # z ~ q(z|x), rescaled to unit variance (LDM appendix G).
        z = means[index] + stds[index] * torch.randn(means[index].shape, generator=generator)
        z = z * scale
        noise = training_noise(z.shape, generator, config.offset_noise, config.pyramid_noise)
        t = torch.randint(0, config.unet_timestep_below, (z.shape[0],), generator=generator)
        emphasis = config.high_noise_steps == 0 or step < config.high_noise_steps
        high = round(config.high_noise_fraction * len(t)) if emphasis else 0
        if high:
            t[:high] = torch.randint(
                config.high_noise_from, len(alphas_cumprod), (high,), generator=generator
            )
        a = alphas_cumprod[t].view(-1, 1, 1, 1)
        noisy = a.sqrt() * z + (1 - a).sqrt() * noise  # q(z_t | z_0), DDPM eq. 4
        with (
            torch.autocast("cpu", dtype=torch.bfloat16, enabled=config.bf16),
            training_attention(config.bf16),
        ):
            context = text_encoder(ids).last_hidden_state
            if config.text_grad_from:
                learns = (t >= config.text_grad_from).view(-1, 1, 1)
                context = torch.where(learns, context, context.detach())
            prediction = unet(noisy, t, context).sample
        loss = epsilon_loss(
            prediction.float(),
            noise,
            cell_weights[index],
            a.flatten(),
            config.min_snr_gamma,
            config.x0_weight_floor if emphasis else 0.0,
        )
        pixel = None
        low = (t < config.unet_pixel_below).nonzero().flatten()
        if config.unet_pixel_weight and len(low):
            with (
                torch.autocast("cpu", dtype=torch.bfloat16, enabled=config.bf16),
                training_attention(config.bf16),
            ):
                pixel = decoded_estimate_loss(
                    prediction.float()[low],
                    noisy[low],
                    a.flatten()[low],
                    scale,
                    pixel_targets,
                    index[low],
                    config.object_weight,
                )
            loss = loss + config.unet_pixel_weight * pixel
        drift = None
        if anchor is not None:
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=config.bf16):
                initial = anchor(ids).last_hidden_state
            drift = (context.float() - initial.float()).pow(2).mean()
            loss = loss + config.text_anchor_weight * drift
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        ema.update()
        for extra in extras.values():
            extra.update()
        steps_done = step + 1
        if step % config.log_every == 0 or steps_done == config.unet_steps:
            seconds_per_step = (time.time() - started) / steps_done
            log.add(
                stage,
                step,
                loss.item(),
                mse=(prediction.float() - noise).pow(2).mean().item(),
                lr=lr,
                s_per_step=seconds_per_step,
                **({} if drift is None else {"text_drift": drift.item()}),
                **({} if pixel is None else {"pixel": pixel.item()}),
            )
        if steps_done % config.checkpoint_every == 0 and steps_done < config.unet_steps:
            checkpoint(ema, steps_done)
        if time_limit_s is not None and time.time() - log.start > time_limit_s:
            print(f"time limit reached after {steps_done} UNet steps; exporting", flush=True)
            break
    for decay, extra in extras.items():
        if export_extra is not None:
            export_extra(decay, extra)
    ema.copy_to(modules)
    for module in modules:
        module.eval()
    return unet, text_encoder, steps_done


@torch.no_grad()
def fit_latent_rgb(vae: AutoencoderKL, latents: torch.Tensor, scale: float) -> dict:
    """Least-squares 4×3 matrix and bias from scaled latents to the VAE's decoded RGB (0..1),
    both at latent resolution: the factors a sampler's live preview multiplies latents by."""
    decoded = vae.decode(latents / scale).sample.float().clamp(-1, 1).add(1).div(2)
    factor = decoded.shape[-1] // latents.shape[-1]
    target = F.avg_pool2d(decoded, factor).permute(0, 2, 3, 1).reshape(-1, 3)
    inputs = latents.permute(0, 2, 3, 1).reshape(-1, latents.shape[1])
    design = torch.cat([inputs, torch.ones(len(inputs), 1)], dim=1).double()
    solution = torch.linalg.lstsq(design, target.double()).solution
    fitted = design @ solution
    rmse = (fitted - target.double()).pow(2).mean().sqrt().item()
    return {
        "input": "scaled latents (VAE latents × scaling_factor), [4, h, w]",
        "output": "RGB in 0..1 at latent resolution: rgb = latent · factors + bias",
        "factors": [[round(v, 6) for v in row] for row in solution[:-1].tolist()],
        "bias": [round(v, 6) for v in solution[-1].tolist()],
        "fit_rmse": round(rmse, 5),
    }


def polish_config(config: TrainConfig) -> TrainConfig:
    """The settings of the polishing phase that follows ``config``'s main phase: its steps,
    learning rate, warm-up, average decay, outline, corner and pixel-loss weights; every timestep
    uniform under plain Min-SNR-γ; no polishing of its own."""
    return replace(
        config,
        unet_steps=config.polish_steps,
        unet_lr=config.polish_lr,
        warmup_steps=config.polish_warmup_steps,
        ema_decay=config.polish_ema_decay,
        high_noise_fraction=0.0,
        x0_weight_floor=0.0,
        text_freeze_steps=0,
        unet_outline_weight=config.polish_outline_weight,
        unet_corner_weight=config.polish_corner_weight,
        unet_pixel_weight=config.polish_pixel_weight,
        polish_steps=0,
        refine_steps=0,
    )


def refine_config(config: TrainConfig) -> TrainConfig:
    """The settings of the refining phase that follows ``config``'s polish: the polish's, with
    its own step count and timesteps drawn only below ``refine_timestep_below``."""
    return replace(
        polish_config(config),
        unet_steps=config.refine_steps,
        unet_timestep_below=config.refine_timestep_below,
    )


def write_model_folder(
    folder: Path,
    vae: AutoencoderKL,
    unet: UNet2DConditionModel,
    text_encoder: CLIPTextModel,
    latent_rgb: dict,
) -> None:
    """A standard diffusers Stable Diffusion folder, float16 weights, no tokenizer copy (the
    loader uses ``resources/tokenizers/clip``)."""
    import diffusers

    folder.mkdir(parents=True, exist_ok=True)
    for name, module in (("vae", vae), ("unet", unet), ("text_encoder", text_encoder)):
        target = folder / name
        if target.exists():
            shutil.rmtree(target)
        half = module.to(torch.float16)
        half.save_pretrained(target, safe_serialization=True)
        module.to(torch.float32)
    components.new_scheduler().save_pretrained(folder / "scheduler")
    model_index = {
        "_class_name": "StableDiffusionPipeline",
        "_diffusers_version": diffusers.__version__,
        "feature_extractor": [None, None],
        "requires_safety_checker": False,
        "safety_checker": [None, None],
        "scheduler": ["diffusers", "DDIMScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": [None, None],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }
    (folder / "model_index.json").write_text(json.dumps(model_index, indent=2) + "\n")
    (folder / "latent_rgb.json").write_text(json.dumps(latent_rgb, indent=2) + "\n")


# The UNet-stage settings that experiments vary, as command-line options of both ``train`` and
# ``position_check`` (``--unet-lr`` for ``unet_lr`` and so on), with their help texts.
RECIPE_OPTIONS: dict[str, str] = {
    "unet_lr": "peak learning rate of the UNet",
    "text_lr_scale": "the text encoder's learning rate as a multiple of the UNet's",
    "text_freeze_steps": "keep the text encoder at its initial weights for this many first steps",
    "text_grad_from": "the text encoder learns only from samples with t >= this (0 = all)",
    "text_anchor_weight": "weight of the text encoder's squared drift from its initial output "
    "(0 = off)",
    "warmup_steps": "linear learning-rate warm-up steps",
    "ema_decay": "decay of the exported exponential moving average of the weights",
    "unet_object_weight": "weight of the latent cells an object touches in the ε-loss (1 = off)",
    "unet_outline_weight": "weight of the latent cells within one cell of an object's outline "
    "in the ε-loss (1 = off)",
    "unet_corner_weight": "weight of the latent cells at the corners of each object's box in "
    "the ε-loss (1 = off)",
    "unet_pixel_weight": "weight of the pixel-space loss of the decoded x0 estimate (0 = off)",
    "unet_pixel_below": "the pixel-space loss covers the samples with t below this",
    "x0_weight_floor": "lowest x0 weight the ε-loss gives a timestep (0 = plain Min-SNR-γ)",
    "pyramid_noise": "discount per level of multi-resolution noise (0 = white noise, as before)",
    "high_noise_fraction": "fraction of each batch drawn from timesteps --high-noise-from..999",
    "high_noise_from": "lowest timestep of the high-noise part of each batch",
    "high_noise_steps": "apply --high-noise-fraction and --x0-weight-floor to this many first "
    "steps only, then uniform timesteps and plain Min-SNR-γ (0 = every step)",
    "min_snr_gamma": "Min-SNR-γ: a sample's ε-loss weight is min(SNR, γ) / SNR, which weighs "
    "the low-noise timesteps down (a large γ: the plain ε-loss of DDPM)",
}


PRECISIONS = ("auto", "bf16", "fp32")


def precision_for(choice: str) -> bool:
    """Whether the UNet stage trains under bf16 autocast (``TrainConfig.bf16``) for a
    ``--precision`` choice: "auto" asks the CPU, since only AVX512-BF16 / AMX compute bfloat16
    in hardware and emulated bfloat16 is ten times slower than float32 here. The two
    precisions train numerically different models: a run reproduces another's weights only in
    the same precision."""
    if choice not in PRECISIONS:
        raise ValueError(f"unknown precision {choice!r}; choose one of {', '.join(PRECISIONS)}")
    return cpu_has_native_bf16() if choice == "auto" else choice == "bf16"


def add_recipe_arguments(parser: argparse.ArgumentParser) -> None:
    """Add an option for every ``RECIPE_OPTIONS`` field, defaulting to ``TrainConfig``'s value,
    and ``--precision``."""
    defaults = TrainConfig()
    for name, help_text in RECIPE_OPTIONS.items():
        default = getattr(defaults, name)
        parser.add_argument(
            "--" + name.replace("_", "-"), type=type(default), default=default, help=help_text
        )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="UNet and text-encoder arithmetic: bf16 autocast or float32; auto (the default): "
        "bf16 where the CPU has native bfloat16 (AVX512-BF16 or AMX), float32 elsewhere. The "
        "shipped model was trained in bf16; float32 gives a different model",
    )


def recipe_from_arguments(args: argparse.Namespace) -> dict:
    """The ``RECIPE_OPTIONS`` fields of parsed arguments and the precision they resolve to, as
    ``TrainConfig`` keyword arguments."""
    recipe = {name: getattr(args, name) for name in RECIPE_OPTIONS}
    recipe["bf16"] = precision_for(args.precision)
    return recipe


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=components.MODEL_DIR)
    parser.add_argument(
        "--work", type=Path, default=Path(tempfile.gettempdir()) / "latentloom_demo_model"
    )
    parser.add_argument("--scenes", type=int, default=TrainConfig.scenes)
    parser.add_argument("--ae-steps", type=int, default=TrainConfig.ae_steps)
    parser.add_argument("--decoder-steps", type=int, default=TrainConfig.decoder_steps)
    parser.add_argument(
        "--shape-code",
        type=float,
        default=TrainConfig.shape_code,
        help="put each object's shape code, this large, into the latent's least-used "
        "direction over its box and fine-tune the decoder to draw from it (0: off)",
    )
    parser.add_argument("--shape-code-steps", type=int, default=TrainConfig.shape_code_steps)
    parser.add_argument(
        "--shape-code-swap-fraction",
        type=float,
        default=TrainConfig.shape_code_swap_fraction,
        help="of the coded samples of the shape-code fine-tune, the fraction that decodes the "
        "scene's latent with circles and squares swapped under the scene's own code",
    )
    parser.add_argument("--unet-steps", type=int, default=TrainConfig.unet_steps)
    parser.add_argument("--threads", type=int, default=TrainConfig.threads)
    parser.add_argument(
        "--time-limit-min",
        type=float,
        default=None,
        help="stop UNet training after this many minutes in all and export (breaks exact "
        "reproducibility, which then depends on machine speed)",
    )
    parser.add_argument("--skip-eval", action="store_true")
    parser.add_argument(
        "--resume",
        type=Path,
        nargs=2,
        metavar=("AUTOENCODER", "MODEL_FOLDER"),
        help="skip stages 1-2: take the autoencoder from a run's vae_decoder_tuned.safetensors "
        "(or vae.safetensors) and continue UNet and text encoder from an exported folder",
    )
    parser.add_argument(
        "--autoencoder",
        type=Path,
        metavar="AUTOENCODER",
        help="skip stages 1-2 and take the autoencoder from a run's "
        "vae_decoder_tuned.safetensors, then train UNet and text encoder from scratch; with the "
        "same settings this gives exactly what the full command gives, since stages 1-2 are "
        "deterministic",
    )
    parser.add_argument("--unet-batch", type=int, default=TrainConfig.unet_batch)
    parser.add_argument(
        "--polish-steps",
        type=int,
        default=TrainConfig.polish_steps,
        help="steps of the polishing phase after the main one (0: none; give 0 with --resume "
        "to continue a folder only as the other options say)",
    )
    parser.add_argument(
        "--refine-steps",
        type=int,
        default=TrainConfig.refine_steps,
        help="steps of the refining phase after the polish, on low-noise timesteps only (0: none)",
    )
    parser.add_argument(
        "--refine-timestep-below",
        type=int,
        default=TrainConfig.refine_timestep_below,
        help="the refining phase draws its timesteps from 0 up to this",
    )
    parser.add_argument(
        "--polish-lr",
        type=float,
        default=TrainConfig.polish_lr,
        help="peak learning rate of the polishing phase",
    )
    parser.add_argument(
        "--polish-pixel-weight",
        type=float,
        default=TrainConfig.polish_pixel_weight,
        help="weight of the pixel-space loss in the polishing phase (0: off)",
    )
    parser.add_argument(
        "--polish-corner-weight",
        type=float,
        default=TrainConfig.polish_corner_weight,
        help="weight of the latent cells at the corners of each object's box in the polishing "
        "phase's ε-loss (1: off)",
    )
    parser.add_argument(
        "--also-export-ema",
        type=float,
        nargs="+",
        default=[],
        metavar="DECAY",
        help="also export the weights averaged with these EMA decays to <work>/ema-<decay> "
        "(0: the last weights), from the same run, for comparison with --ema-decay's",
    )
    add_recipe_arguments(parser)
    args = parser.parse_args(argv)
    if args.resume is not None and args.autoencoder is not None:
        parser.error("--resume and --autoencoder both name an autoencoder; give one of them")
    if args.autoencoder is not None and not args.autoencoder.is_file():
        parser.error(
            f"--autoencoder {args.autoencoder} is not a file; give a run's "
            "<work>/vae_decoder_tuned.safetensors"
        )

    components.offline()
    config = TrainConfig(
        scenes=args.scenes,
        ae_steps=args.ae_steps,
        decoder_steps=args.decoder_steps,
        shape_code=args.shape_code,
        shape_code_steps=args.shape_code_steps,
        shape_code_swap_fraction=args.shape_code_swap_fraction,
        unet_steps=args.unet_steps,
        threads=args.threads,
        unet_batch=args.unet_batch,
        polish_steps=args.polish_steps,
        refine_steps=args.refine_steps,
        refine_timestep_below=args.refine_timestep_below,
        polish_lr=args.polish_lr,
        polish_pixel_weight=args.polish_pixel_weight,
        polish_corner_weight=args.polish_corner_weight,
        **recipe_from_arguments(args),
    )
    torch.set_num_threads(config.threads)
    random.seed(config.seed)
    np.random.seed(config.seed)
    args.work.mkdir(parents=True, exist_ok=True)
    log = LossLog()
    print(f"config: {asdict(config)}", flush=True)
    print(
        f"precision: {'bf16 autocast' if config.bf16 else 'float32'} (--precision "
        f"{args.precision}; native bfloat16 on this CPU: {cpu_has_native_bf16()})",
        flush=True,
    )

    scenes = training_scenes(config.scenes, config.seed)
    images = render_batch(scenes)
    print(f"rendered {len(scenes)} scenes in {time.time() - log.start:.0f} s", flush=True)

    autoencoder = args.autoencoder if args.resume is None else args.resume[0]
    if autoencoder is None:
        vae, first_psnr = train_autoencoder(
            images, [scene.background for scene in scenes], config, log
        )
        save_file(vae.state_dict(), args.work / "vae.safetensors")
        print(f"autoencoder PSNR {first_psnr:.2f} dB", flush=True)
        finetune_decoder(vae, images, [scene.background for scene in scenes], config, log)
        save_file(vae.state_dict(), args.work / "vae_decoder_tuned.safetensors")
    else:
        vae = components.new_vae()
        vae.load_state_dict(load_file(autoencoder))
        vae.eval()
        first_psnr = float("nan")
    held = held_back(len(images))  # the last scenes, which no stage trains on
    ae_psnr = autoencoder_psnr(vae, images[-held:])
    ae_minutes = (time.time() - log.start) / 60
    print(f"autoencoder PSNR after decoder fine-tuning {ae_psnr:.2f} dB", flush=True)

    means, stds = encode_all(vae, images)
    if config.shape_code:
        codes = config.shape_code * shape_code_maps(scenes, means.shape[-1], images.shape[1])
        direction = least_used_direction(means)
        print(f"shape codes along latent direction {direction.tolist()}", flush=True)
        finetune_decoder(
            vae,
            images,
            [scene.background for scene in scenes],
            config,
            log,
            (codes, direction, scenes),
        )
        save_file(vae.state_dict(), args.work / "vae_shape_codes.safetensors")
        means = with_shape_codes(means, codes, direction)
        ae_psnr = autoencoder_psnr(vae, images[-held:])
        with torch.no_grad():
            coded_psnr = psnr(to_model_range(images[-held:]), vae.decode(means[-held:]).sample)
        print(
            f"autoencoder PSNR after the shape-code fine-tune {ae_psnr:.2f} dB (the encoder's "
            f"own latents), {coded_psnr:.2f} dB (with shape codes)",
            flush=True,
        )

    def cell_weights_for(phase: TrainConfig) -> torch.Tensor:
        weights = latent_object_weights(
            images,
            [scene.background for scene in scenes],
            means.shape[-1],
            phase.unet_object_weight,
            phase.unet_outline_weight,
        )
        if phase.unet_corner_weight != 1.0:
            corners = latent_corner_weights(
                scenes, means.shape[-1], images.shape[1], phase.unet_corner_weight
            )
            weights = torch.maximum(weights, corners)
        return weights

    cell_weights = cell_weights_for(config)
    sample = means + stds * torch.randn(means.shape, generator=torch.Generator().manual_seed(0))
    scale = 1.0 / sample.std().item()  # LDM appendix G: unit-variance latents
    vae.register_to_config(scaling_factor=scale)
    print(f"latent std {sample.std().item():.4f} -> scaling factor {scale:.4f}", flush=True)
    latent_rgb = fit_latent_rgb(vae, (sample[:256] * scale), scale)

    def export(folder: Path, unet: UNet2DConditionModel, text_encoder: CLIPTextModel) -> None:
        write_model_folder(folder, vae, unet, text_encoder, latent_rgb)
        if config.shape_code:
            write_shape_codes(folder, direction, config.shape_code)

    def export_average(ema: ExponentialAverage, folder: Path) -> None:
        unet, text_encoder = components.new_unet(), components.new_text_encoder()
        ema.copy_to([unet, text_encoder])
        export(folder, unet, text_encoder)

    def checkpoint(ema: ExponentialAverage, step: int) -> None:
        export_average(ema, args.work / "checkpoint")
        (args.work / "checkpoint" / "step.txt").write_text(f"{step}\n")
        print(f"checkpoint at step {step} in {args.work / 'checkpoint'}", flush=True)

    time_limit = None if args.time_limit_min is None else args.time_limit_min * 60
    pixel_targets = PixelTargets(vae, images, [scene.background for scene in scenes])
    unet, text_encoder, steps_done = train_unet(
        means,
        stds,
        cell_weights,
        scale,
        scenes,
        config,
        log,
        checkpoint,
        time_limit,
        None if args.resume is None else args.resume[1],
        tuple(args.also_export_ema),
        lambda decay, ema: export_average(ema, args.work / f"ema-{decay:g}"),
        pixel_targets=pixel_targets,
    )

    def continue_from_export(
        folder: str, phase: TrainConfig, stage: str
    ) -> tuple[UNet2DConditionModel, CLIPTextModel, int]:
        """Export the current weights to ``work/<folder>`` and train ``phase`` from that
        (float16) export, exactly as --resume would continue it."""
        start = args.work / folder
        export(start, unet, text_encoder)
        print(f"{folder} exported to {start}; next: {stage}", flush=True)
        return train_unet(
            means,
            stds,
            cell_weights_for(phase),
            scale,
            scenes,
            phase,
            log,
            lambda *_: None,
            time_limit,
            start,
            stage=stage,
            pixel_targets=pixel_targets,
        )

    polish_done = refine_done = 0
    stopped_early = steps_done < config.unet_steps
    if config.polish_steps and not stopped_early:
        polish = polish_config(config)
        unet, text_encoder, polish_done = continue_from_export("main-phase", polish, "polish")
        stopped_early = polish_done < polish.unet_steps
    if config.refine_steps and not stopped_early:
        refine = refine_config(config)
        unet, text_encoder, refine_done = continue_from_export("polished", refine, "refine")
    total_minutes = (time.time() - log.start) / 60

    export(args.out, unet, text_encoder)
    summary = {
        "command": "python -m tools.demo_model.train",
        "resumed_from": None if args.resume is None else [str(p) for p in args.resume],
        "autoencoder_from": None if autoencoder is None else str(autoencoder),
        "config": asdict(config),
        "precision": {"asked": args.precision, "cpu_native_bf16": cpu_has_native_bf16()},
        "unet_steps_done": steps_done,
        "polish_steps_done": polish_done,
        "refine_steps_done": refine_done,
        "autoencoder_psnr_db": {
            "before_decoder_tuning": round(first_psnr, 2),
            "final": round(ae_psnr, 2),
        },
        "scaling_factor": scale,
        "parameters": {
            "vae": components.parameter_count(vae),
            "unet": components.parameter_count(unet),
            "text_encoder": components.parameter_count(text_encoder),
        },
        "minutes": {"autoencoder": round(ae_minutes, 1), "total": round(total_minutes, 1)},
        "losses": log.records,
    }
    (args.out / "train_log.json").write_text(json.dumps(summary) + "\n")
    print(f"exported to {args.out} after {total_minutes:.1f} min", flush=True)

    if not args.skip_eval:
        from tools.demo_model import evaluate

        evaluate.main(["--model", str(args.out)])


if __name__ == "__main__":
    main()
