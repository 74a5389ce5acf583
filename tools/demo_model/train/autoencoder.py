"""Stages 1 and 2: the KL autoencoder, then its decoder fine-tuned alone.

Stage 1 trains encoder and decoder together (LDM paper, section 3.1: f = 4, KL weight 1e-6)
with object pixels weighted up and a latent→RGB preview term that shapes the latent space so
the sampler's live preview looks like the decoded picture. Stage 2 freezes the encoder, hence
the latent space the UNet will learn, and fine-tunes the decoder with object pixels weighted up
further, so the pictures get sharper and truer in colour without moving any latent.
``train_decoder`` is the decoder-only loop that stage 2 and the shape-code stage
(``shape_codes.py``) share.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL
from safetensors.torch import load_file

from tools.demo_model import components
from tools.demo_model.train.config import LossLog, TrainConfig, cosine_lr
from tools.demo_model.train.data import held_back, object_weights, to_model_range

# Changes a batch's sampled latents before the decoder sees them: (latents, the batch's scene
# indices, the stage's random generator) -> latents.
LatentAdjustment = Callable[[torch.Tensor, np.ndarray, torch.Generator], torch.Tensor]


def psnr(reference: torch.Tensor, estimate: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB of images in -1..1 (peak-to-peak 2)."""
    mse = F.mse_loss(estimate.clamp(-1, 1), reference).item()
    return 10 * math.log10(4.0 / max(mse, 1e-12))


def reconstruction_loss(
    reconstruction: torch.Tensor, x: torch.Tensor, weight: torch.Tensor
) -> torch.Tensor:
    """L1, as in the LDM autoencoders, plus L2 for flat colours, per pixel weighted by
    ``weight`` and normalised by its mean so the loss keeps its scale."""
    error = reconstruction - x
    return (weight * (error.abs() + error.pow(2))).mean() / weight.mean()


def train_autoencoder(
    images: np.ndarray, backgrounds: list[str], config: TrainConfig, log: LossLog
) -> tuple[AutoencoderKL, float]:
    """Stage 1: fit the autoencoder; returns it and its PSNR on the held-back scenes."""
    torch.manual_seed(config.seed)
    vae = components.new_vae()
    # Latent → RGB at latent resolution; only shapes the latent space, not exported (the
    # shipped preview factors are refitted by least squares in ``export.fit_latent_rgb``).
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
        # float32: on a 2-core CPU bf16 autocast makes the autoencoder slower (~4 s vs ~1.2 s a
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


def finetune_decoder(
    vae: AutoencoderKL,
    images: np.ndarray,
    backgrounds: list[str],
    config: TrainConfig,
    log: LossLog,
) -> None:
    """Stage 2: train the decoder alone on latents of the frozen encoder, objects weighted up.

    The encoder does not change, so neither do the latents the UNet learns; only the pictures
    they decode to get sharper and truer in colour."""
    train_decoder(
        vae, images, backgrounds, config, log, config.decoder_steps, "decoder", config.seed + 4
    )


def train_decoder(
    vae: AutoencoderKL,
    images: np.ndarray,
    backgrounds: list[str],
    config: TrainConfig,
    log: LossLog,
    steps: int,
    stage: str,
    seed: int,
    adjust_latents: LatentAdjustment | None = None,
) -> None:
    """``steps`` decoder-only steps (encoder and its quantisation conv frozen) at
    ``config.decoder_lr``, reconstructing each scene from a sample of its encoder posterior,
    object pixels weighed ``config.object_weight`` times; logged as ``stage``. With
    ``adjust_latents`` the sampled latents pass through it first (the shape-code stage writes
    its codes there), drawing from the same generator so a run stays reproducible."""
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
            if adjust_latents is not None:
                z = adjust_latents(z, index, generator)
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


def load_autoencoder(path: Path) -> AutoencoderKL:
    """An autoencoder saved by an earlier run (``<work>/vae_decoder_tuned.safetensors``), in
    evaluation mode, so a run can skip stages 1-2."""
    vae = components.new_vae()
    vae.load_state_dict(load_file(path))
    vae.eval()
    return vae


@torch.no_grad()
def autoencoder_psnr(vae: AutoencoderKL, images: np.ndarray) -> float:
    """PSNR of the autoencoder's reconstructions (posterior mode) of ``images``."""
    x = to_model_range(images)
    return psnr(x, vae.decode(vae.encode(x).latent_dist.mode()).sample)


@torch.no_grad()
def encode_all(vae: AutoencoderKL, images: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior mean and std of every scene, computed once (float32): what the UNet stage
    samples its latents from."""
    means, stds = [], []
    for start in range(0, len(images), 256):
        posterior = vae.encode(to_model_range(images[start : start + 256])).latent_dist
        means.append(posterior.mean.float())
        stds.append(posterior.std.float())
    return torch.cat(means), torch.cat(stds)
