"""A random-weight Stable Diffusion 1.5 checkpoint in the original single-file layout.

Every tensor has the name and shape of the real SD 1.5 file (``model.diffusion_model.*``,
``cond_stage_model.transformer.*``, ``first_stage_model.*``), stored in float16 as the common
``*-fp16.safetensors`` downloads are (~2.1 GB), with uniform random values. ``quick`` builds the
same layout at a small size for smoke tests. Files are cached under ``tmp/cache/bench`` of the
repository, with a diffusers-format config folder beside each (configs and tokenizer only, no
weights) so that diffusers' ``from_single_file`` loads it offline.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.diffusion import offline  # noqa: E402, F401  (before diffusers/transformers)

# isort: split
import torch  # noqa: E402

from core.diffusion.keymap import clip_to_ldm, unet_to_ldm, vae_to_ldm  # noqa: E402
from core.diffusion.resources import CLIP_TOKENIZER, load_component_config  # noqa: E402

CACHE = ROOT / "tmp" / "cache" / "bench"
TEXT_PREFIX, VAE_PREFIX = "cond_stage_model.transformer.", "first_stage_model."


def configs(quick: bool) -> dict[str, dict[str, Any]]:
    """The UNet, VAE, text encoder and scheduler configs: SD 1.5's, or small ones."""
    found = {name: load_component_config("sd15", name) for name in ("unet", "vae")}
    found["text_encoder"] = load_component_config("sd15", "text_encoder")
    found["scheduler"] = load_component_config("sd15", "scheduler")
    if quick:
        found["unet"].update(
            block_out_channels=[32, 64],
            down_block_types=["CrossAttnDownBlock2D", "DownBlock2D"],
            up_block_types=["UpBlock2D", "CrossAttnUpBlock2D"],
            layers_per_block=1,
            cross_attention_dim=64,
            attention_head_dim=8,
        )
        found["vae"].update(block_out_channels=[32, 32, 32, 32], layers_per_block=1)
        found["text_encoder"].update(
            hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2
        )
    return found


def checkpoint_path(quick: bool) -> Path:
    """The cached checkpoint, written first if it is missing."""
    path = CACHE / (
        "sd15_small_random_fp16.safetensors" if quick else "sd15_random_fp16.safetensors"
    )
    if not path.is_file():
        _write(path, configs(quick))
    config_folder = path.with_suffix(".diffusers")
    if not (config_folder / "model_index.json").is_file():
        _write_config_folder(config_folder, configs(quick))
    return path


def diffusers_config_folder(checkpoint: Path) -> Path:
    """The config-only diffusers folder written beside ``checkpoint``."""
    return checkpoint.with_suffix(".diffusers")


def _modules(found: dict[str, dict[str, Any]]) -> tuple[Any, Any, Any]:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(found["unet"])
        vae = AutoencoderKL.from_config(found["vae"])
        text = CLIPTextModel(CLIPTextConfig(**found["text_encoder"]))
    return unet, vae, text


def _write(path: Path, found: dict[str, dict[str, Any]]) -> None:
    from safetensors.torch import save_file

    unet, vae, text = _modules(found)
    generator = torch.Generator().manual_seed(0)

    def random(shapes: dict[str, torch.Size]) -> dict[str, torch.Tensor]:
        return {
            key: torch.empty(shape, dtype=torch.float16).uniform_(-0.05, 0.05, generator=generator)
            for key, shape in shapes.items()
        }

    shapes = {k: v.shape for k, v in text.state_dict().items() if not k.endswith("position_ids")}
    tensors = random(unet_to_ldm({k: v.shape for k, v in unet.state_dict().items()}, unet.config))
    tensors.update(clip_to_ldm(random(shapes), TEXT_PREFIX))
    vae_tensors = random({k: v.shape for k, v in vae.state_dict().items()})
    tensors.update(vae_to_ldm(vae_tensors, vae.config, VAE_PREFIX))
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    save_file(tensors, partial)
    partial.replace(path)


def _write_config_folder(folder: Path, found: dict[str, dict[str, Any]]) -> None:
    from diffusers import EulerDiscreteScheduler
    from transformers import CLIPTokenizer

    unet, vae, text = _modules(found)
    unet.save_config(folder / "unet")
    vae.save_config(folder / "vae")
    text.config.save_pretrained(folder / "text_encoder")
    EulerDiscreteScheduler.from_config(found["scheduler"]).save_config(folder / "scheduler")
    CLIPTokenizer.from_pretrained(str(CLIP_TOKENIZER)).save_pretrained(folder / "tokenizer")
    index = {
        "_class_name": "StableDiffusionPipeline",
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "scheduler": ["diffusers", "EulerDiscreteScheduler"],
        "safety_checker": [None, None],
        "feature_extractor": [None, None],
        "requires_safety_checker": False,
    }
    (folder / "model_index.json").write_text(json.dumps(index, indent=2))
