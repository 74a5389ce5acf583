"""Small random Stable Diffusion models in each family's real on-disk layouts.

The models have tiny channel counts but the real module structure, so their tensors carry the
real key names: written through ``core.diffusion.keymap`` they form genuine LDM single files
(``.safetensors`` or ``.ckpt``) that the loader must read back exactly; written with
``save_pretrained`` they form diffusers folders. Every tensor is random (no constant LayerNorm
weights), so a tensor stored under the wrong name cannot go unnoticed.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from safetensors.torch import save_file
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

from core.diffusion.families import ModelFamily, PredictionType, config_folder, family_traits
from core.diffusion.keymap import clip_to_ldm, openclip_to_ldm, unet_to_ldm, vae_to_ldm
from core.diffusion.resources import CLIP_TOKENIZER, load_component_config

TINY_TEXT_LAYERS = 3  # enough for "last", "penultimate" and one more


@dataclass(frozen=True, eq=False)
class TinyPipeline:
    """The modules of one tiny model and how it was made."""

    family: ModelFamily
    prediction: PredictionType
    unet: UNet2DConditionModel
    vae: AutoencoderKL
    text_encoders: tuple[Any, ...]
    #: The SDXL refiner: only the OpenCLIP-bigG encoder, four levels, aesthetic-score ids.
    refiner: bool = False

    @property
    def inpainting(self) -> bool:
        return int(self.unet.config.in_channels) == 9


def _randomise(module: torch.nn.Module, generator: torch.Generator) -> None:
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.05)


def tiny_text_config(family: ModelFamily, index: int, refiner: bool = False) -> dict[str, Any]:
    """A CLIP text config with the family's real vocabulary and context length, tiny widths.

    CLIP-L style encoders are 32 wide, OpenCLIP-bigG style ones (SDXL's second encoder, the
    refiner's only one) 64.
    """
    traits = family_traits(family, refiner).text_encoders[index]
    folder = config_folder(family, PredictionType.EPSILON, False, refiner)
    config = load_component_config(folder, traits.config_file.removesuffix(".json"))
    width = 64 if index == 1 or refiner else 32
    config.update(
        hidden_size=width,
        intermediate_size=2 * width,
        num_hidden_layers=TINY_TEXT_LAYERS,
        # The loader's rule: 64-channel heads, else 8 heads (see architecture._heads).
        num_attention_heads=1 if width == 64 else 8,
        projection_dim=32,
    )
    return config


def tiny_unet_config(
    family: ModelFamily, context_dim: int, inpainting: bool, refiner: bool = False
) -> dict[str, Any]:
    """Three levels (the refiner: four), one resnet per level, 32/64 channels, in the family's
    block pattern."""
    folder = config_folder(family, PredictionType.EPSILON, inpainting, refiner)
    config = load_component_config(folder, "unet")
    config.update(
        block_out_channels=[32, 64, 64],
        layers_per_block=1,
        cross_attention_dim=context_dim,
        sample_size=8,
    )
    if refiner:
        # The refiner's pattern: attention on the middle two levels and in the middle block,
        # all of the same depth; five size/score numbers after the pooled text.
        config.update(
            block_out_channels=[32, 64, 64, 64],
            down_block_types=[
                "DownBlock2D",
                "CrossAttnDownBlock2D",
                "CrossAttnDownBlock2D",
                "DownBlock2D",
            ],
            up_block_types=["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
            transformer_layers_per_block=2,
            attention_head_dim=[8, 1, 1, 1],
            addition_time_embed_dim=8,
            projection_class_embeddings_input_dim=32 + 5 * 8,
        )
    elif family is ModelFamily.SDXL:
        config.update(
            down_block_types=["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
            up_block_types=["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
            transformer_layers_per_block=[1, 1, 2],
            attention_head_dim=[8, 1, 1],
            addition_time_embed_dim=8,
            projection_class_embeddings_input_dim=32 + 6 * 8,
        )
    else:
        config.update(
            down_block_types=["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
            up_block_types=["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
            attention_head_dim=[8, 1, 1] if family is ModelFamily.SD2 else 8,
        )
    return config


def tiny_vae_config(family: ModelFamily) -> dict[str, Any]:
    """Two levels of 32/64 channels, one resnet each."""
    config = load_component_config(config_folder(family, PredictionType.EPSILON, False), "vae")
    config.update(block_out_channels=[32, 64], layers_per_block=1, sample_size=32)
    config["down_block_types"] = ["DownEncoderBlock2D"] * 2
    config["up_block_types"] = ["UpDecoderBlock2D"] * 2
    return config


def make_tiny_pipeline(
    family: ModelFamily,
    *,
    inpainting: bool = False,
    prediction: PredictionType = PredictionType.EPSILON,
    seed: int = 0,
    refiner: bool = False,
) -> TinyPipeline:
    """Build a random tiny pipeline of ``family`` (``refiner``: the SDXL refiner)."""
    generator = torch.Generator().manual_seed(seed)
    encoders = []
    for index, traits in enumerate(family_traits(family, refiner).text_encoders):
        config = CLIPTextConfig(**tiny_text_config(family, index, refiner))
        model_class = CLIPTextModelWithProjection if traits.with_projection else CLIPTextModel
        model = model_class(config)
        _randomise(model, generator)
        encoders.append(model.eval())
    context = sum(int(e.config.hidden_size) for e in encoders)
    unet_config = tiny_unet_config(family, context, inpainting, refiner)
    unet = UNet2DConditionModel.from_config(unet_config)
    vae = AutoencoderKL.from_config(tiny_vae_config(family))
    _randomise(unet, generator)
    _randomise(vae, generator)
    return TinyPipeline(family, prediction, unet.eval(), vae.eval(), tuple(encoders), refiner)


def ldm_state_dict(pipeline: TinyPipeline) -> dict[str, torch.Tensor]:
    """All tensors of ``pipeline`` under the names an original LDM checkpoint uses."""
    tensors = unet_to_ldm(pipeline.unet.state_dict(), pipeline.unet.config)
    tensors.update(vae_to_ldm(pipeline.vae.state_dict(), pipeline.vae.config, "first_stage_model."))
    traits = family_traits(pipeline.family, pipeline.refiner).text_encoders
    for encoder, encoder_traits in zip(pipeline.text_encoders, traits, strict=True):
        state = encoder.state_dict()
        if encoder_traits.layout == "openclip":
            tensors.update(openclip_to_ldm(state, encoder_traits.ldm_prefix))
        else:
            tensors.update(clip_to_ldm(state, encoder_traits.ldm_prefix))
    if pipeline.family is ModelFamily.SD1:
        # Real SD 1.x files carry CLIP's position_ids buffer; the loader must tolerate it.
        key = "cond_stage_model.transformer.text_model.embeddings.position_ids"
        tensors[key] = torch.arange(77)[None]
    if pipeline.family is ModelFamily.SD2:
        # Real SD 2.x files keep OpenCLIP's unused projection and logit scale.
        width = int(pipeline.text_encoders[0].config.hidden_size)
        tensors["cond_stage_model.model.text_projection"] = torch.randn(width, width)
        tensors["cond_stage_model.model.logit_scale"] = torch.tensor(4.6052)
    if pipeline.prediction is PredictionType.V_PREDICTION:
        tensors["v_pred"] = torch.tensor([])
    return {key: value.contiguous() for key, value in tensors.items()}


def write_single_file(pipeline: TinyPipeline, path: Path, dtype: torch.dtype | None = None) -> Path:
    """Write ``pipeline`` as an LDM single file; the suffix picks .safetensors or .ckpt."""
    tensors = ldm_state_dict(pipeline)
    if dtype is not None:
        tensors = {k: v.to(dtype) if v.is_floating_point() else v for k, v in tensors.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".safetensors":
        save_file(tensors, path)
    else:
        torch.save({"state_dict": tensors, "global_step": 1, "epoch": 0}, path)
    return path


def write_diffusers_folder(pipeline: TinyPipeline, folder: Path) -> Path:
    """Write ``pipeline`` as a diffusers pipeline folder with its own tokenizer copies."""
    folder.mkdir(parents=True, exist_ok=True)
    pipeline.unet.save_pretrained(folder / "unet")
    pipeline.vae.save_pretrained(folder / "vae")
    index: dict[str, Any] = {
        "_class_name": "StableDiffusionXLImg2ImgPipeline"
        if pipeline.refiner
        else "StableDiffusionXLPipeline"
        if pipeline.family is ModelFamily.SDXL
        else "StableDiffusionPipeline",
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
        "scheduler": ["diffusers", "DDIMScheduler"],
    }
    if pipeline.refiner:  # the refiner's index names its absent first encoder as null
        index["text_encoder"] = index["tokenizer"] = [None, None]
    for number, encoder in enumerate(pipeline.text_encoders):
        suffix = "_2" if pipeline.refiner else ("" if number == 0 else f"_{number + 1}")
        encoder.save_pretrained(folder / f"text_encoder{suffix}")
        shutil.copytree(CLIP_TOKENIZER, folder / f"tokenizer{suffix}", dirs_exist_ok=True)
        index[f"text_encoder{suffix}"] = ["transformers", type(encoder).__name__]
        index[f"tokenizer{suffix}"] = ["transformers", "CLIPTokenizer"]
    scheduler = load_component_config(
        config_folder(pipeline.family, pipeline.prediction, pipeline.inpainting, pipeline.refiner),
        "scheduler",
    )
    scheduler["prediction_type"] = str(pipeline.prediction)
    (folder / "scheduler").mkdir(exist_ok=True)
    (folder / "scheduler" / "scheduler_config.json").write_text(json.dumps(scheduler))
    (folder / "model_index.json").write_text(json.dumps(index))
    return folder
