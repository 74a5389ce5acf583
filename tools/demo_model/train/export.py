"""Stage 5: the exported model folder.

A standard diffusers Stable Diffusion folder with float16 weights, so LatentLoom's ordinary
checkpoint loader (and ``from_pretrained``) reads it like any SD 1.x folder, plus what is
particular to this model: the least-squares latent→RGB factors of the sampler's live preview
(``latent_rgb.json``) and where its latents carry the shape codes (``shape_codes.json``). The
run's summary and losses go beside them in ``train_log.json`` (``write_training_log``).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextModel

from tools.demo_model import components
from tools.demo_model.train.shape_codes import write_shape_codes
from tools.demo_model.train.unet import ExponentialAverage


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


@dataclass(frozen=True)
class ModelExport:
    """What every folder one run exports shares (the final model, its checkpoints and the
    phases' starting points): the autoencoder, its preview factors and, when the run writes
    shape codes, their direction and size."""

    vae: AutoencoderKL
    latent_rgb: dict
    shape_codes: tuple[torch.Tensor, float] | None = None

    def write(self, folder: Path, unet: UNet2DConditionModel, text_encoder: CLIPTextModel) -> None:
        """Export these UNet and text-encoder weights with the shared parts to ``folder``."""
        write_model_folder(folder, self.vae, unet, text_encoder, self.latent_rgb)
        if self.shape_codes is not None:
            write_shape_codes(folder, *self.shape_codes)

    def write_average(self, average: ExponentialAverage, folder: Path) -> None:
        """Export the averaged weights of ``average`` (the training modules stay as they are)."""
        unet, text_encoder = components.new_unet(), components.new_text_encoder()
        average.copy_to([unet, text_encoder])
        self.write(folder, unet, text_encoder)


def write_training_log(folder: Path, summary: dict) -> None:
    """The run's summary (command, config, precision, steps done, PSNR, timings, losses) as
    ``train_log.json`` beside the exported weights."""
    (folder / "train_log.json").write_text(json.dumps(summary) + "\n")
