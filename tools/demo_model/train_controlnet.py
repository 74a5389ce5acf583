"""Train the demo ControlNet: silhouette hints for ``latentloom-shapes``, on a 2-core CPU.

    python -m tools.demo_model.train_controlnet [--minutes 25] [--out DIR]

writes ``resources/models/controlnet/latentloom-shapes-silhouette/`` (a diffusers
``ControlNetModel`` folder: ``config.json`` and ``diffusion_pytorch_model.safetensors`` in
float16), which LatentLoom's Load ControlNet Model node lists and loads by that name.

The recipe is the ControlNet paper's (Zhang et al., 2023, section 3): a trainable copy of the
frozen UNet's encoder (input convolution, time and prompt embeddings, down blocks, middle block)
whose outputs reach the UNet through convolutions initialised to zero, so training starts from
the unchanged demo model; a small hint encoder (``HINT_CHANNELS``) brings the 64×64 silhouette
down to the 16×16 latent. The UNet, autoencoder and text encoder stay frozen; the loss is the
demo model's own (ε-prediction, Min-SNR-5, object cells weighed up), on latents encoded by its
autoencoder with its shape codes written in, so the targets are what its UNet learned to make.

Training scenes (``tools.demo_model.silhouettes``) put one object anywhere it fits, except in
the held-out tiles that ``tools.demo_model.evaluate_controlnet`` measures on. The run stops at
its time budget (``--minutes``, data preparation included); the learning rate follows a cosine
over that budget, so a slower machine takes fewer steps of the same schedule, and the weights
are exported every few minutes so a run cut short leaves a usable ControlNet.

The diffusers folder, not the original single-file layout: that layout is read back from tensor
shapes with Stable Diffusion's settings, and this UNet's 16 normalisation groups, 4-channel
attention heads and prompt pooling cannot be read from shapes.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from diffusers import AutoencoderKL, ControlNetModel, UNet2DConditionModel
from transformers import CLIPTextModel

from tools.demo_model import components
from tools.demo_model.scenes import Scene, render_batch
from tools.demo_model.silhouettes import control_caption, control_scenes, silhouette_batch
from tools.demo_model.train.autoencoder import encode_all
from tools.demo_model.train.config import warmup_cosine_lr
from tools.demo_model.train.data import TokenCache, latent_object_weights
from tools.demo_model.train.options import PRECISIONS, precision_for
from tools.demo_model.train.shape_codes import read_shape_codes, shape_code_maps, with_shape_codes
from tools.demo_model.train.unet import ExponentialAverage, epsilon_loss, training_attention

CONTROLNET_NAME = "latentloom-shapes-silhouette"
CONTROLNET_DIR = components.REPO_ROOT / "resources" / "models" / "controlnet" / CONTROLNET_NAME
#: The hint encoder's widths: 64 px → 32 → 16 (two stride-2 convolutions), then a zero
#: convolution to the UNet's first width. ~60k parameters: a silhouette needs little.
HINT_CHANNELS = (16, 32, 64)
#: UNet config keys a ControlNet copies (everything that shapes its encoder half).
_COPIED = (
    "in_channels",
    "flip_sin_to_cos",
    "freq_shift",
    "down_block_types",
    "only_cross_attention",
    "block_out_channels",
    "layers_per_block",
    "downsample_padding",
    "mid_block_scale_factor",
    "act_fn",
    "norm_num_groups",
    "norm_eps",
    "cross_attention_dim",
    "transformer_layers_per_block",
    "attention_head_dim",
    "num_attention_heads",
    "use_linear_projection",
    "class_embed_type",
    "num_class_embeds",
    "upcast_attention",
    "resnet_time_scale_shift",
    "projection_class_embeddings_input_dim",
    "mid_block_type",
    "addition_embed_type",
    # diffusers' ControlNetModel.from_unet leaves this at 64 heads; the prompt pooling must
    # split its width as the UNet's does, or the copied weights compute something else.
    "addition_embed_type_num_heads",
)


@dataclass(frozen=True)
class ControlConfig:
    """Every number of the recipe; the defaults are what the shipped ControlNet was trained
    with."""

    scenes: int = 4000
    batch: int = 32
    lr: float = 3e-4
    warmup_steps: int = 50
    final_lr_fraction: float = 0.1
    weight_decay: float = 0.0
    ema_decay: float = 0.99
    empty_caption_fraction: float = 0.1
    #: Part of each batch from t >= ``high_noise_from``, where the object's place is decided.
    #: Off: a run with a quarter there placed 99 % of held-out objects right but drew squares
    #: round, which is decided at lower noise.
    high_noise_fraction: float = 0.0
    high_noise_from: int = 700
    min_snr_gamma: float = 5.0
    object_weight: float = 3.0
    #: Weight of the latent cells along each object's outline, where a square's corners and
    #: a circle's curve differ (as in the demo UNet's polish phase).
    outline_weight: float = 3.0
    minutes: float = 25.0
    export_every_minutes: float = 5.0
    seed: int = 0
    bf16: bool = False


def controlnet_config(unet_config: Any, hint_channels: tuple[int, ...] = HINT_CHANNELS) -> dict:
    """The ``ControlNetModel`` config for a UNet's encoder half and a one-channel hint."""
    config = {key: unet_config[key] for key in _COPIED if key in unet_config}
    config.update(
        conditioning_channels=1,
        conditioning_embedding_out_channels=list(hint_channels),
        controlnet_conditioning_channel_order="rgb",
    )
    return config


def controlnet_from_unet(
    unet: UNet2DConditionModel, hint_channels: tuple[int, ...] = HINT_CHANNELS
) -> ControlNetModel:
    """A ControlNet whose encoder is a copy of ``unet``'s and whose zero convolutions (and the
    hint encoder's last convolution) are zero, so it adds nothing until trained."""
    controlnet = ControlNetModel(**controlnet_config(unet.config, hint_channels))
    for name in ("conv_in", "time_proj", "time_embedding", "down_blocks", "mid_block"):
        getattr(controlnet, name).load_state_dict(getattr(unet, name).state_dict())
    if getattr(unet, "add_embedding", None) is not None:
        controlnet.add_embedding.load_state_dict(unet.add_embedding.state_dict())
    return controlnet


@dataclass
class ControlData:
    """The training set as the loop reads it."""

    means: torch.Tensor  # [N, 4, h, w] encoder means with shape codes written in (unscaled)
    stds: torch.Tensor  # [N, 4, h, w] encoder standard deviations
    hints: torch.Tensor  # [N, 1, 64, 64] silhouettes in 0..1
    cells: torch.Tensor  # [N, 1, h, w] loss weight of each latent cell
    scenes: list[Scene]


@torch.no_grad()
def prepare_data(
    scenes: list[Scene],
    vae: AutoencoderKL,
    direction: torch.Tensor,
    code: float,
    object_weight: float,
    outline_weight: float = 1.0,
) -> ControlData:
    """Draw and encode ``scenes``, write the demo model's shape codes into their latents and
    draw their silhouettes."""
    images = render_batch(scenes)
    mean, std = encode_all(vae, images)
    latent_size = mean.shape[-1]
    codes = code * shape_code_maps(scenes, latent_size, images.shape[1])
    hints = torch.from_numpy(silhouette_batch(scenes)).float().div(255).unsqueeze(1)
    backgrounds = [scene.background for scene in scenes]
    cells = latent_object_weights(images, backgrounds, latent_size, object_weight, outline_weight)
    return ControlData(with_shape_codes(mean, codes, direction), std, hints, cells, scenes)


def step_loss(
    controlnet: ControlNetModel,
    unet: UNet2DConditionModel,
    text_encoder: CLIPTextModel,
    tokens: TokenCache,
    data: ControlData,
    index: torch.Tensor,
    scale: float,
    alphas_cumprod: torch.Tensor,
    config: ControlConfig,
    generator: torch.Generator,
    rng: random.Random,
) -> torch.Tensor:
    """The ε-loss of the frozen UNet steered by ``controlnet`` on the scenes ``index``."""
    texts = [
        "" if rng.random() < config.empty_caption_fraction else control_caption(data.scenes[i], rng)
        for i in index.tolist()
    ]
    z = data.means[index] + data.stds[index] * torch.randn(
        data.means[index].shape, generator=generator
    )
    z = z * scale
    noise = torch.randn(z.shape, generator=generator)
    t = torch.randint(0, len(alphas_cumprod), (len(z),), generator=generator)
    high = round(config.high_noise_fraction * len(t))
    if high:
        t[:high] = torch.randint(
            config.high_noise_from, len(alphas_cumprod), (high,), generator=generator
        )
    a = alphas_cumprod[t].view(-1, 1, 1, 1)
    noisy = a.sqrt() * z + (1 - a).sqrt() * noise
    with (
        torch.autocast("cpu", dtype=torch.bfloat16, enabled=config.bf16),
        training_attention(config.bf16),
    ):
        with torch.no_grad():
            context = text_encoder(tokens(texts)).last_hidden_state
        down, mid = controlnet(
            noisy, t, context, controlnet_cond=data.hints[index], return_dict=False
        )
        prediction = unet(
            noisy,
            t,
            context,
            down_block_additional_residuals=down,
            mid_block_additional_residual=mid,
        ).sample
    return epsilon_loss(
        prediction.float(), noise, data.cells[index], a.flatten(), config.min_snr_gamma
    )


def export(controlnet: ControlNetModel, average: ExponentialAverage | None, out: Path) -> None:
    """Write ``controlnet`` (its averaged weights, when given) as a float16 diffusers folder."""
    copied = copy.deepcopy(controlnet)
    if average is not None:
        average.copy_to([copied])
    copied.to(torch.float16).save_pretrained(out, safe_serialization=True)


def load_demo(model: Path) -> tuple[UNet2DConditionModel, CLIPTextModel, AutoencoderKL]:
    """The demo model's frozen UNet, text encoder and autoencoder, in float32."""
    unet = UNet2DConditionModel.from_pretrained(model / "unet", torch_dtype=torch.float32)
    text_encoder = CLIPTextModel.from_pretrained(model / "text_encoder", torch_dtype=torch.float32)
    vae = AutoencoderKL.from_pretrained(model / "vae", torch_dtype=torch.float32)
    for module in (unet, text_encoder, vae):
        module.eval().requires_grad_(False)
    return unet, text_encoder, vae


def train(
    config: ControlConfig, model: Path, out: Path, max_steps: int | None = None
) -> dict[str, Any]:
    """Train a ControlNet for the demo model folder ``model`` within ``config.minutes`` (or
    ``max_steps``) and export it to ``out``; returns the run's summary."""
    started = time.time()
    budget = config.minutes * 60
    torch.manual_seed(config.seed)
    unet, text_encoder, vae = load_demo(model)
    codes = read_shape_codes(model)
    if codes is None:
        raise FileNotFoundError(
            f"{model} has no shape_codes.json: the ControlNet must learn the latents the demo "
            "UNet makes, which carry shape codes; point --model at a folder exported by "
            "python -m tools.demo_model.train"
        )
    direction, code = codes
    scenes = control_scenes(config.scenes, config.seed)
    data = prepare_data(scenes, vae, direction, code, config.object_weight, config.outline_weight)
    del vae
    print(
        f"[{(time.time() - started) / 60:5.1f} min] {len(scenes)} scenes drawn and encoded",
        flush=True,
    )
    controlnet = controlnet_from_unet(unet).train()
    params = list(controlnet.parameters())
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    average = ExponentialAverage([controlnet], config.ema_decay)
    tokens = TokenCache(components.load_tokenizer())
    alphas_cumprod = components.new_scheduler().alphas_cumprod.float()
    scale = _scaling_factor(model)
    generator = torch.Generator().manual_seed(config.seed + 1)
    rng = random.Random(config.seed + 2)
    train_start = time.time()
    train_budget = budget - (train_start - started) - 30  # leave time to export
    last_export, step, losses = train_start, 0, []
    log: list[list[float]] = []
    while True:
        elapsed = time.time() - train_start
        if (max_steps is not None and step >= max_steps) or (
            max_steps is None and elapsed > train_budget
        ):
            break
        progress = elapsed / train_budget if max_steps is None else step / max_steps
        lr = learning_rate(step, progress, config)
        for group in optimizer.param_groups:
            group["lr"] = lr
        index = torch.randint(0, len(scenes), (config.batch,), generator=generator)
        loss = step_loss(
            controlnet,
            unet,
            text_encoder,
            tokens,
            data,
            index,
            scale,
            alphas_cumprod,
            config,
            generator,
            rng,
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        average.update()
        losses.append(loss.item())
        step += 1
        if step % 25 == 0:
            mean_loss = float(np.mean(losses[-25:]))
            log.append([step, round(mean_loss, 5)])
            print(
                f"[{(time.time() - started) / 60:5.1f} min] step {step:5d} loss {mean_loss:.5f} "
                f"lr {lr:.2e} {(time.time() - train_start) / step:.2f} s/step",
                flush=True,
            )
        if time.time() - last_export > config.export_every_minutes * 60:
            export(controlnet, average, out)
            last_export = time.time()
    export(controlnet, average, out)
    summary = {
        "steps": step,
        "minutes": round((time.time() - started) / 60, 1),
        "seconds_per_step": round((time.time() - train_start) / max(step, 1), 3),
        "precision": "bf16 autocast" if config.bf16 else "float32",
        "config": {k: v for k, v in config.__dict__.items()},
        "loss": log,
    }
    (out / "train_log.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"exported {out} after {step} steps, {summary['minutes']} min", flush=True)
    return summary


def learning_rate(step: int, progress: float, config: ControlConfig) -> float:
    """Linear warm-up over ``config.warmup_steps``, then a cosine from ``config.lr`` down to
    ``config.final_lr_fraction`` of it over the run's ``progress`` (0..1 of its budget)."""
    return warmup_cosine_lr(
        step, min(progress, 1.0), config.lr, config.warmup_steps, config.final_lr_fraction
    )


def _scaling_factor(model: Path) -> float:
    return float(json.loads((model / "vae" / "config.json").read_text())["scaling_factor"])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        prog="python -m tools.demo_model.train_controlnet",
        description="Train the demo model's silhouette ControlNet within a time budget.",
    )
    parser.add_argument(
        "--minutes",
        type=float,
        default=ControlConfig.minutes,
        help="wall-clock budget, data preparation and export included",
    )
    parser.add_argument(
        "--model",
        type=Path,
        default=components.MODEL_DIR,
        help="the demo model folder whose UNet it steers",
    )
    parser.add_argument("--out", type=Path, default=CONTROLNET_DIR)
    parser.add_argument("--scenes", type=int, default=ControlConfig.scenes)
    parser.add_argument("--batch", type=int, default=ControlConfig.batch)
    parser.add_argument("--lr", type=float, default=ControlConfig.lr)
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="stop after this many steps instead of at the budget",
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="auto: bf16 autocast where the CPU has native bfloat16",
    )
    args = parser.parse_args(argv)
    components.offline()
    bf16 = precision_for(args.precision)
    config = ControlConfig(
        scenes=args.scenes, batch=args.batch, lr=args.lr, minutes=args.minutes, bf16=bf16
    )
    return train(config, args.model, args.out, args.steps)


if __name__ == "__main__":
    main()
