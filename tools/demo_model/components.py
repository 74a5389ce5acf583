"""The demo model's components, built from explicit configs (no hub, no downloads).

Everything here is a standard diffusers / transformers class, so the exported folder loads with
``from_pretrained`` like any Stable Diffusion 1.x folder; only the sizes are small.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

REPO_ROOT = Path(__file__).resolve().parents[2]
TOKENIZER_DIR = REPO_ROOT / "resources" / "tokenizers" / "clip"
# Where nodes/ looks for the shipped model (``checkpoints/latentloom-shapes`` under the
# shipped models root), so the ordinary checkpoint loader finds it by name.
MODEL_DIR = REPO_ROOT / "resources" / "models" / "checkpoints" / "latentloom-shapes"
MAX_TOKENS = 77  # CLIP's context length, as in Stable Diffusion

# The scheduler Stable Diffusion 1.x ships: "scaled linear" β from 0.00085 to 0.012 over 1,000
# steps (LDM paper, appendix; SD v1 config), ε-prediction.
SCHEDULER_CONFIG: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "prediction_type": "epsilon",
    "clip_sample": False,
    "set_alpha_to_one": False,
    "steps_offset": 1,
}

# f = 4 (three blocks, two downsamplings), 4 latent channels: a 64×64 image becomes 4×16×16.
VAE_CONFIG: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 3,
    "up_block_types": ["UpDecoderBlock2D"] * 3,
    "block_out_channels": [32, 64, 64],
    "layers_per_block": 1,
    "latent_channels": 4,
    "norm_num_groups": 16,
    "sample_size": 64,
    "scaling_factor": 1.0,  # replaced by 1 / std of the encoded training latents
}

# A small CLIP text transformer with the real vocabulary and context length, so the real CLIP
# tokenizer's ids go in unchanged. Trained jointly with the UNet, as the LDM paper does for its
# text-to-image models (section 4.3.1).
TEXT_ENCODER_CONFIG: dict[str, Any] = {
    "vocab_size": 49408,
    "hidden_size": 128,
    "intermediate_size": 512,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "max_position_embeddings": MAX_TOKENS,
    "hidden_act": "quick_gelu",
    "projection_dim": 128,
    "bos_token_id": 49406,
    "eos_token_id": 49407,
    "pad_token_id": 49407,
}

# Latents are 16×16; the UNet works at 16, 8, 4 and 2. Conditioning enters by cross-attention
# at every level: at 16×16 only cross-attention, below it and in the middle block both self- and
# cross-attention. Self-attention over the 256 positions at 16×16 too made a UNet training step
# 1.10 s against 0.76 s (measured 2026-12-05, bf16 on 2 threads); a full run with it (and
# 20/28 px shapes) drew 60.0 % of held-out shapes right against 55.6 % but lost colour (90.6 %),
# so it stays off (tools/demo_model/EXPERIMENTS.md, "UNet architecture").
# Layout and colour are decided at the coarse levels; a shape's outline (a square's corners
# against a circle's curve) only at the fine ones, where a 14-px object spans 3-4 latent cells.
UNET_CONFIG: dict[str, Any] = {
    "sample_size": 16,
    "in_channels": 4,
    "out_channels": 4,
    # Four levels, 16/8/4/2 (since 2026-11-22; the first models stopped at 4×4): at 2×2 every
    # cell is a corner that its zero padding tells apart. It lifted colour and shape accuracy,
    # but position was still not learned, so knowing where a cell is was not what was missing
    # (tools/demo_model/EXPERIMENTS.md, "UNet architecture").
    "down_block_types": ["CrossAttnDownBlock2D"] * 4,
    "up_block_types": ["CrossAttnUpBlock2D"] * 4,
    # The two fine levels were widened from 32 and 64 channels on 2026-12-05: the narrower UNet
    # drew one soft-edged "squircle" for circles and squares alike, rounding squares even when
    # denoising from t = 101, where their corners are plain to see (tools/demo_model/
    # EXPERIMENTS.md, "UNet architecture"). About 1.2x the cost of a training step.
    "block_out_channels": [64, 96, 128, 128],
    "only_cross_attention": [True, False, False, False],
    "layers_per_block": 1,
    "cross_attention_dim": TEXT_ENCODER_CONFIG["hidden_size"],
    "attention_head_dim": 4,
    "norm_num_groups": 16,
    # The prompt also enters as one attention-pooled vector added to the timestep embedding, so
    # every ResNet block is modulated by it, the way class-conditional UNets learn each class's
    # layout; diffusers computes it from the same encoder_hidden_states, so loaders and
    # samplers pass nothing new.
    "addition_embed_type": "text",
    "addition_embed_type_num_heads": 4,
}


def offline() -> None:
    """Forbid every hub lookup for this process."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"


def load_tokenizer(folder: Path = TOKENIZER_DIR) -> CLIPTokenizer:
    """The Stable Diffusion CLIP tokenizer from the project's own vocabulary and merges files."""
    vocab, merges = folder / "vocab.json", folder / "merges.txt"
    for path in (vocab, merges):
        if not path.is_file():
            raise FileNotFoundError(
                f"CLIP tokenizer file {path} is missing; run `python tools/make_clip_tokenizer.py`"
            )
    # from_pretrained reads tokenizer_config.json too; with transformers 5 the constructor's
    # vocab_file/merges_file arguments alone yield an empty vocabulary that maps every word to
    # the same id.
    tokenizer = CLIPTokenizer.from_pretrained(str(folder), local_files_only=True)
    if tokenizer("a red circle").input_ids[:2] != [49406, 320]:
        raise RuntimeError(f"the CLIP tokenizer in {folder} does not tokenize as CLIP does")
    return tokenizer


def new_vae() -> AutoencoderKL:
    """A freshly initialised autoencoder."""
    return AutoencoderKL(**VAE_CONFIG)


def new_text_encoder() -> CLIPTextModel:
    """A freshly initialised text encoder."""
    return CLIPTextModel(CLIPTextConfig(**TEXT_ENCODER_CONFIG))


def new_unet() -> UNet2DConditionModel:
    """A freshly initialised denoising UNet."""
    return UNet2DConditionModel(**UNET_CONFIG)


def new_scheduler() -> DDIMScheduler:
    """The training noise schedule, as a DDIM scheduler (the one evaluation samples with)."""
    return DDIMScheduler(**SCHEDULER_CONFIG)


def parameter_count(module: Any) -> int:
    """Number of parameters in a torch module."""
    return sum(p.numel() for p in module.parameters())
