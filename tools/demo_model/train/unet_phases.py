"""Stage 4's three phases, each one ``unet.train_unet`` call with its own ``TrainConfig``.

1. The main phase (2,800 steps): for the first 2,200, half of every batch from t >= 900 with an
   x0 weight of at least 1, the only timesteps where the prompt's place lowers the loss; then
   uniform timesteps under plain Min-SNR-5, which cleans the pictures up.
2. The polish (400 steps, ``polish_config``): the main phase's exported average continued with a
   fresh learning-rate cycle (peak 2e-4), uniform timesteps and the cells around each object's
   outline weighed 3 times, where the main phase's uniform part ran at the tail of its cosine.
3. The refining phase (400 steps, ``refine_config``): the polish's settings on timesteps below
   400 only, where the default workflow's guidance is off and the UNet alone settles the edges
   of a square.

The polish continues the main phase's float16 export and the refining phase the polish's,
exactly as ``--resume`` would continue a shipped folder, so a phase can be rerun on its own.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from diffusers import UNet2DConditionModel
from transformers import CLIPTextModel

from tools.demo_model.scenes import Scene
from tools.demo_model.train.config import LossLog, TrainConfig
from tools.demo_model.train.data import latent_object_weights
from tools.demo_model.train.experimental import PixelTargets, latent_corner_weights
from tools.demo_model.train.export import ModelExport
from tools.demo_model.train.unet import ExponentialAverage, train_unet


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


def phase_cell_weights(
    images: np.ndarray, scenes: list[Scene], latent_size: int, phase: TrainConfig
) -> torch.Tensor:
    """``[N, 1, latent_size, latent_size]`` ε-loss weights of every scene's latent cells for one
    phase: its object and outline weights, and its corner weights where that switch is on."""
    backgrounds = [scene.background for scene in scenes]
    weights = latent_object_weights(
        images, backgrounds, latent_size, phase.unet_object_weight, phase.unet_outline_weight
    )
    if phase.unet_corner_weight != 1.0:
        corners = latent_corner_weights(
            scenes, latent_size, images.shape[1], phase.unet_corner_weight
        )
        weights = torch.maximum(weights, corners)
    return weights


def train_unet_phases(
    means: torch.Tensor,
    stds: torch.Tensor,
    scale: float,
    images: np.ndarray,
    scenes: list[Scene],
    config: TrainConfig,
    log: LossLog,
    export: ModelExport,
    work: Path,
    time_limit_s: float | None = None,
    resume_from: Path | None = None,
    extra_ema_decays: tuple[float, ...] = (),
) -> tuple[UNet2DConditionModel, CLIPTextModel, dict[str, int]]:
    """Run the main phase (from scratch, or continuing the exported folder ``resume_from``),
    then the polish and the refining phase where ``config`` asks for them, each from the
    previous phase's export in ``work`` ("main-phase", "polished"). The main phase writes a
    checkpoint to ``work/checkpoint`` every ``config.checkpoint_every`` steps and the averages
    of ``extra_ema_decays`` to ``work/ema-<decay>``. A phase cut short by ``time_limit_s``
    ends the run. Returns the final UNet and text encoder and the steps each phase did."""
    backgrounds = [scene.background for scene in scenes]
    wants_pixels = config.unet_pixel_weight or config.polish_pixel_weight
    pixel_targets = PixelTargets(export.vae, images, backgrounds) if wants_pixels else None

    def checkpoint(average: ExponentialAverage, step: int) -> None:
        export.write_average(average, work / "checkpoint")
        (work / "checkpoint" / "step.txt").write_text(f"{step}\n")
        print(f"checkpoint at step {step} in {work / 'checkpoint'}", flush=True)

    unet, text_encoder, main_done = train_unet(
        means,
        stds,
        phase_cell_weights(images, scenes, means.shape[-1], config),
        scale,
        scenes,
        config,
        log,
        checkpoint,
        time_limit_s,
        resume_from,
        extra_ema_decays,
        lambda decay, average: export.write_average(average, work / f"ema-{decay:g}"),
        pixel_targets=pixel_targets,
    )
    done = {"unet": main_done, "polish": 0, "refine": 0}
    stopped_early = main_done < config.unet_steps
    later_phases = (
        ("polish", "main-phase", polish_config(config)),
        ("refine", "polished", refine_config(config)),
    )
    for stage, start_folder, phase in later_phases:
        if not phase.unet_steps or stopped_early:
            continue
        start = work / start_folder
        export.write(start, unet, text_encoder)
        print(f"{start_folder} exported to {start}; next: {stage}", flush=True)
        unet, text_encoder, done[stage] = train_unet(
            means,
            stds,
            phase_cell_weights(images, scenes, means.shape[-1], phase),
            scale,
            scenes,
            phase,
            log,
            lambda *_: None,
            time_limit_s,
            start,
            stage=stage,
            pixel_targets=pixel_targets,
        )
        stopped_early = done[stage] < phase.unet_steps
    return unet, text_encoder, done
