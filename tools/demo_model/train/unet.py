"""Stage 4's training loop: ε-prediction training of the UNet and the CLIP text encoder, jointly.

On the cached latents of every scene (``autoencoder.encode_all``, shape codes written in),
rescaled to unit variance (LDM paper, appendix G), with Stable Diffusion's scaled-linear
schedule and ε-prediction (LDM paper, eq. 2), dropping 10 % of captions so classifier-free
guidance has an unconditional model to subtract. One call of ``train_unet`` is one phase; the
main phase, the polish and the refining phase differ only in their ``TrainConfig``
(``unet_phases.py``).

The loop also carries what lets the model learn where the prompt puts an object: part of every
batch from the noisiest timesteps, where only the prompt tells the place, with a floor under
their x0 weight (``high_noise_fraction``, ``x0_weight_floor``), and a text encoder anchored to
its initial output so it cannot erase the difference between the position words before the
UNet uses them (``text_anchor_weight``).
"""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import torch
from diffusers import UNet2DConditionModel
from safetensors.torch import load_file
from torch.nn.attention import SDPBackend, sdpa_kernel
from transformers import CLIPTextModel

from tools.demo_model import components
from tools.demo_model.scenes import caption
from tools.demo_model.train.config import LossLog, TrainConfig, cosine_lr
from tools.demo_model.train.data import TokenCache
from tools.demo_model.train.experimental import (
    PixelTargets,
    decoded_estimate_loss,
    with_pyramid_noise,
)


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
    (offset noise, Guttenberg 2023), with multi-resolution noise of discount ``pyramid`` mixed
    in before the offset when that switch is on (``experimental.with_pyramid_noise``)."""
    batch, channels, _, _ = shape
    noise = torch.randn(shape, generator=generator)
    if pyramid > 0:
        noise = with_pyramid_noise(noise, generator, pyramid)
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


def training_attention(bf16: bool):
    """The attention kernels for a UNet / text-encoder training forward pass (the backward pass
    follows the forward's choice).

    Under bf16 autocast, torch's CPU flash-attention kernel is the slow one: its backward pass
    took 53 % of a training step at this model's head sizes (8-32 channels a head). Measured
    2026-12-02, batch 64, 2 threads, the whole training loop: 3.0-3.3 s a step with it against
    1.55-1.8 s with the plain matmul-softmax ("math") kernel (``bench/demo_model_training.py``).
    In float32 the flash kernel is the faster one (1.1 against 1.4 s a bare step), so it is left
    to torch there."""
    return sdpa_kernel(SDPBackend.MATH) if bf16 else nullcontext()


def train_unet(
    means: torch.Tensor,
    stds: torch.Tensor,
    cell_weights: torch.Tensor,
    scale: float,
    scenes_captions: list,
    config: TrainConfig,
    log: LossLog,
    checkpoint: Callable[[ExponentialAverage, int], None],
    time_limit_s: float | None,
    init_from: Path | None = None,
    extra_ema_decays: tuple[float, ...] = (),
    export_extra: Callable[[float, ExponentialAverage], None] | None = None,
    stage: str = "unet",
    pixel_targets: PixelTargets | None = None,
) -> tuple[UNet2DConditionModel, CLIPTextModel, int]:
    """One phase of ε-prediction training of UNet and text encoder; returns the EMA weights and
    the number of steps done.

    ``cell_weights`` (``[N, 1, h, w]``, from ``unet_phases.phase_cell_weights``) weighs each
    latent cell's squared error; each sample's loss is normalised by its mean weight.

    ``checkpoint(average, step)`` is called every ``config.checkpoint_every`` steps, so a run
    cut short still leaves a usable model; ``time_limit_s`` stops the phase once the run (from
    ``log.start``) has lasted that long.

    ``init_from`` (an exported folder) continues from earlier weights instead of from scratch.

    ``extra_ema_decays`` keeps further averages of the same weights beside the exported one
    (0: the last weights themselves), each handed to ``export_extra(decay, average)`` at the end;
    averaging does not touch training, so one run compares several decays exactly.

    ``stage`` names the phase in the loss log ("unet", "polish" or "refine").

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
            if config.text_grad_from:  # not shipped: the text encoder learns from t >= this only
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
        pixel = None  # not shipped: the pixel-space loss of the decoded x0 estimate
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
