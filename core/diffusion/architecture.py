"""Recognise a checkpoint's family and read its architecture from tensor names and shapes.

Only sizes that weights cannot reveal come from the shipped configs (``resources/configs``):
attention head counts, activation functions, normalisation groups, latent scale. Everything a
shape does reveal (channels, levels, depths, context width, encoder width and depth…) is read
from the file, so fine-tunes of any standard size and small test models load alike.
"""

from __future__ import annotations

from core.diffusion import offline  # noqa: F401  (must precede diffusers/transformers)

# isort: split
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from core.diffusion.errors import ModelLoadError
from core.diffusion.families import ClipLayout, ModelFamily, PredictionType

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
SDXL_ENCODER_PREFIXES = ("conditioner.embedders.0.transformer.", "conditioner.embedders.1.model.")
#: The SDXL refiner's only text encoder, OpenCLIP-bigG, is its embedder 0.
SDXL_REFINER_ENCODER_PREFIX = "conditioner.embedders.0.model."
SD2_ENCODER_PREFIX = "cond_stage_model.model."
SD1_ENCODER_PREFIX = "cond_stage_model.transformer."
# ComfyUI's convention for marking converted v-prediction checkpoints: an (empty) "v_pred" key.
V_PRED_MARKER = "v_pred"
# ComfyUI's SD 2.x heuristic (comfy/supported_models.py, SD20.model_type): in v-prediction
# models the first norm bias of the last output transformer has a standard deviation above 0.09.
SD2_V_PROBE = UNET_PREFIX + "output_blocks.11.1.transformer_blocks.0.norm1.bias"
SD2_V_PROBE_THRESHOLD = 0.09


def strip_prefix(state_dict: Mapping[str, torch.Tensor], prefix: str) -> dict:
    """Return the tensors under ``prefix``, with the prefix removed (reading no others)."""
    return {k[len(prefix) :]: state_dict[k] for k in state_dict if k.startswith(prefix)}


def _has_prefix(state_dict: Mapping[str, torch.Tensor], prefix: str) -> bool:
    return any(key.startswith(prefix) for key in state_dict)


def detect_family(state_dict: Mapping[str, torch.Tensor], path: Path) -> ModelFamily:
    """Name the family of an LDM single-file checkpoint from its text encoder's key names."""
    if not _has_prefix(state_dict, UNET_PREFIX):
        raise ModelLoadError(path, _not_a_checkpoint_reason(state_dict), _CHECKPOINT_REMEDY)
    if all(_has_prefix(state_dict, p) for p in SDXL_ENCODER_PREFIXES) or is_sdxl_refiner(
        state_dict
    ):
        return ModelFamily.SDXL
    if _has_prefix(state_dict, SD2_ENCODER_PREFIX):
        return ModelFamily.SD2
    if _has_prefix(state_dict, SD1_ENCODER_PREFIX):
        return ModelFamily.SD1
    raise ModelLoadError(
        path,
        "has UNet weights but no text encoder LatentLoom recognises (expected "
        "cond_stage_model.transformer.* for SD 1.x, cond_stage_model.model.* for SD 2.x or "
        "conditioner.embedders.* for SDXL).",
        "Use a complete checkpoint; UNet-only files are not supported.",
    )


def is_sdxl_refiner(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """Whether an LDM checkpoint is an SDXL refiner: OpenCLIP-bigG as its only embedder."""
    return _has_prefix(state_dict, SDXL_REFINER_ENCODER_PREFIX) and not _has_prefix(
        state_dict, "conditioner.embedders.1."
    )


_CHECKPOINT_REMEDY = (
    "Expected a Stable Diffusion 1.x/2.x/SDXL checkpoint with model.diffusion_model.* tensors; "
    "put VAEs in the vae folder and LoRAs in the loras folder."
)


def _not_a_checkpoint_reason(state_dict: Mapping[str, torch.Tensor]) -> str:
    keys = list(state_dict)
    if any(k.startswith(("lora_", "lora_unet", "unet.")) or ".lora" in k for k in keys):
        return "is a LoRA, not a checkpoint."
    if any(k.startswith(("encoder.", "decoder.", VAE_PREFIX)) for k in keys):
        return "is a VAE, not a full checkpoint."
    return "is not a Stable Diffusion checkpoint (no model.diffusion_model.* tensors)."


#: "xl" at a word boundary of a VAE's file name: sdxl_vae, sdxl-vae-fp16-fix, xlVAEC,
#: juggernautXL_vae (InvokeAI also tells VAEs apart by name), never "axle".
_XL_NAME = re.compile(r"(?<![a-z])xl|xl(?![a-z])")


def detect_vae_family(
    state_dict: Mapping[str, torch.Tensor], path: Path, metadata: Mapping[str, str]
) -> tuple[ModelFamily | None, str]:
    """The family whose latent scale a standalone VAE needs, and what told it; None when
    nothing does.

    SDXL's VAE has the very layout of SD 1.x's, with other weights and another latent scale
    (0.13025 against 0.18215), so no key or shape can tell them apart. What can, in order:
    a whole checkpoint's other components; the file's metadata (the Stability model spec's
    ``modelspec.architecture``, kohya's ``ss_base_model_version``); the file's name.
    """
    if _has_prefix(state_dict, UNET_PREFIX):
        try:
            return detect_family(state_dict, path), "the checkpoint's text encoders"
        except ModelLoadError:
            pass
    for key in ("modelspec.architecture", "ss_base_model_version"):
        value = str(metadata.get(key, "")).lower()
        if "xl" in value:
            return ModelFamily.SDXL, f"its metadata ({key} {metadata[key]})"
        if any(tag in value for tag in ("stable-diffusion-v1", "sd_v1", "sd1")):
            return ModelFamily.SD1, f"its metadata ({key} {metadata[key]})"
        if any(tag in value for tag in ("stable-diffusion-v2", "sd_v2", "sd2")):
            return ModelFamily.SD2, f"its metadata ({key} {metadata[key]})"
    if _XL_NAME.search(path.name.lower()):
        return ModelFamily.SDXL, "its file name"
    return None, ""


def detect_prediction(
    state_dict: Mapping[str, torch.Tensor], family: ModelFamily
) -> PredictionType:
    """Guess the prediction type; weights alone cannot tell, so this follows ComfyUI's rules.

    A ``v_pred`` marker key wins; SD 2.x models are probed with ComfyUI's norm-bias statistic;
    everything else predicts noise. Callers let the user override the result.
    """
    if V_PRED_MARKER in state_dict:
        return PredictionType.V_PREDICTION
    if family is ModelFamily.SD2:
        probe = state_dict.get(SD2_V_PROBE)
        std = float(probe.float().std(unbiased=False)) if probe is not None else 0.0
        if std > SD2_V_PROBE_THRESHOLD:
            return PredictionType.V_PREDICTION
    return PredictionType.EPSILON


def _indices(state_dict: Mapping[str, Any], pattern: str) -> list[int]:
    """Sorted distinct integers captured by ``pattern`` (one group) over the keys."""
    regex = re.compile(pattern)
    return sorted({int(m.group(1)) for k in state_dict if (m := regex.match(k))})


def _heads(channels: int, linear_projection: bool) -> int:
    """Attention heads per level: SD 1.x uses 8 heads; SD 2.x/SDXL use 64-channel heads.

    (CompVis v1-inference.yaml: num_heads 8; Stability v2-inference.yaml and sd_xl_base.yaml:
    num_head_channels 64.) Small test models fall back to the largest of 8/4/2/1 dividing them.
    """
    if linear_projection and channels % 64 == 0:
        return channels // 64
    return next(h for h in (8, 4, 2, 1) if channels % h == 0)


def unet_config_from_ldm(
    unet: Mapping[str, torch.Tensor], base: dict[str, Any], path: Path
) -> dict[str, Any]:
    """Fill a UNet2DConditionModel config from LDM ``UNetModel`` tensors (prefix removed)."""
    try:
        return _unet_config(unet, base)
    except (KeyError, IndexError, StopIteration, ValueError) as exc:
        raise ModelLoadError(
            path,
            f"has a UNet whose layout LatentLoom does not recognise ({exc}).",
            "Expected an SD 1.x, SD 2.x or SDXL UNet in the original LDM layout.",
        ) from exc


def _unet_config(unet: Mapping[str, torch.Tensor], base: dict[str, Any]) -> dict[str, Any]:
    config = encoder_config(unet, base)
    attention = ["CrossAttn" in kind for kind in config["down_block_types"]]
    config.update(
        out_channels=int(unet["out.2.weight"].shape[0]),
        up_block_types=["CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attention)],
    )
    return config


def encoder_config(unet: Mapping[str, torch.Tensor], base: dict[str, Any]) -> dict[str, Any]:
    """The config of a UNet's input half (input and middle blocks, time and label embeddings),
    which is all a ControlNet copies, from LDM tensors (prefix removed)."""
    config = dict(base)
    conv_in = unet["input_blocks.0.0.weight"]
    inputs = _indices(unet, r"input_blocks\.(\d+)\.")
    downsamples = [i for i in inputs if f"input_blocks.{i}.0.op.weight" in unet]
    levels = len(downsamples) + 1
    per_level = downsamples[0] if downsamples else len(inputs)
    layers = per_level - 1
    if len(inputs) != 1 + levels * layers + levels - 1 or layers < 1:
        raise ValueError(f"{len(inputs)} input blocks do not form {levels} regular levels")
    firsts = [1 + level * per_level for level in range(levels)]
    channels = [int(unet[f"input_blocks.{i}.0.out_layers.3.weight"].shape[0]) for i in firsts]
    attention = [f"input_blocks.{i}.1.proj_in.weight" in unet for i in firsts]
    mid_depth = len(_indices(unet, r"middle_block\.1\.transformer_blocks\.(\d+)\.")) or 1
    # Levels without attention take the middle block's depth: diffusers builds the middle block
    # with the last level's entry, and the SDXL refiner's last level has no attention.
    depths = [
        len(_indices(unet, rf"input_blocks\.{i}\.1\.transformer_blocks\.(\d+)\.")) or mid_depth
        for i in firsts
    ]
    if mid_depth != depths[-1]:
        raise ValueError(f"middle block depth {mid_depth} differs from the last level's")
    proj_in = next(unet[k] for k in unet if k.endswith(".proj_in.weight"))
    linear = proj_in.ndim == 2
    context = next(unet[k] for k in unet if k.endswith("attn2.to_k.weight"))
    config.update(
        in_channels=int(conv_in.shape[1]),
        block_out_channels=channels,
        layers_per_block=layers,
        down_block_types=["CrossAttnDownBlock2D" if a else "DownBlock2D" for a in attention],
        cross_attention_dim=int(context.shape[1]),
        use_linear_projection=linear,
        transformer_layers_per_block=depths[0] if len(set(depths)) == 1 else depths,
        attention_head_dim=(
            [_heads(c, linear) for c in channels] if linear else _heads(channels[0], linear)
        ),
    )
    if int(unet["time_embed.0.weight"].shape[0]) != 4 * channels[0]:
        config["time_embedding_dim"] = int(unet["time_embed.0.weight"].shape[0])
    if "label_emb.0.0.weight" in unet:
        width = int(unet["label_emb.0.0.weight"].shape[1])
        config["projection_class_embeddings_input_dim"] = width
        # The LDM UNet's ``adm`` input: SDXL's pooled text and size numbers (diffusers'
        # "text_time" addition embedding), or, in an SD 2.x UNet, Stable unCLIP's noised CLIP
        # image embedding beside its noise level (a "projection" class embedding).
        if base.get("addition_embed_type") == "text_time":
            config["addition_embed_type"] = "text_time"
        else:
            config["class_embed_type"] = "projection"
    else:
        for key in (
            "addition_embed_type",
            "addition_time_embed_dim",
            "projection_class_embeddings_input_dim",
        ):
            config.pop(key, None)
    return config


def sdxl_time_embed_dim(unet_config: Mapping[str, Any], pooled_dim: int, numbers: int = 6) -> int:
    """SDXL's size/crop embedding width: (adm_in_channels − pooled width) / ``numbers``.

    The base embeds 6 numbers (original size, crop, target size), the refiner 5 (original
    size, crop, aesthetic score).
    """
    extra = int(unet_config["projection_class_embeddings_input_dim"]) - pooled_dim
    if extra <= 0 or extra % numbers:
        raise ValueError(
            f"label_emb input width leaves {extra} channels for {numbers} size numbers"
        )
    return extra // numbers


def vae_config_from_ldm(
    vae: Mapping[str, torch.Tensor], base: dict[str, Any], path: Path
) -> dict[str, Any]:
    """Fill an AutoencoderKL config from LDM autoencoder tensors (prefix removed)."""
    try:
        levels = _indices(vae, r"encoder\.down\.(\d+)\.")
        channels = [int(vae[f"encoder.down.{i}.block.0.conv2.weight"].shape[0]) for i in levels]
        layers = len(_indices(vae, r"encoder\.down\.0\.block\.(\d+)\."))
        config = dict(base)
        config.update(
            in_channels=int(vae["encoder.conv_in.weight"].shape[1]),
            out_channels=int(vae["decoder.conv_out.weight"].shape[0]),
            latent_channels=int(vae["decoder.conv_in.weight"].shape[1]),
            block_out_channels=channels,
            layers_per_block=layers,
            down_block_types=["DownEncoderBlock2D"] * len(levels),
            up_block_types=["UpDecoderBlock2D"] * len(levels),
        )
    except (KeyError, IndexError, ValueError) as exc:
        raise ModelLoadError(
            path,
            f"has a VAE whose layout LatentLoom does not recognise (missing {exc}).",
            "Expected a KL autoencoder in the original LDM layout (encoder.*, decoder.*).",
        ) from exc
    if not channels or layers < 1:
        raise ModelLoadError(path, "holds no VAE encoder blocks.", "Expected a KL autoencoder.")
    return config


def clip_config_from_weights(
    encoder: Mapping[str, torch.Tensor], layout: ClipLayout, base: dict[str, Any], path: Path
) -> dict[str, Any]:
    """Fill a CLIPTextConfig from a text encoder's tensors (prefix removed)."""
    if layout is ClipLayout.HUGGINGFACE:
        names = {
            "token": "text_model.embeddings.token_embedding.weight",
            "position": "text_model.embeddings.position_embedding.weight",
            "layers": r"text_model\.encoder\.layers\.(\d+)\.",
            "fc1": "text_model.encoder.layers.0.mlp.fc1.weight",
        }
    else:
        names = {
            "token": "token_embedding.weight",
            "position": "positional_embedding",
            "layers": r"transformer\.resblocks\.(\d+)\.",
            "fc1": "transformer.resblocks.0.mlp.c_fc.weight",
        }
    try:
        token = encoder[names["token"]]
        hidden = int(token.shape[1])
        config = dict(base)
        config.update(
            vocab_size=int(token.shape[0]),
            hidden_size=hidden,
            max_position_embeddings=int(encoder[names["position"]].shape[0]),
            num_hidden_layers=len(_indices(encoder, names["layers"])),
            intermediate_size=int(encoder[names["fc1"]].shape[0]),
            # 64-channel heads in CLIP ViT-L/14, OpenCLIP ViT-H/14 and ViT-bigG/14.
            num_attention_heads=hidden // 64 if hidden % 64 == 0 else _heads(hidden, False),
        )
    except (KeyError, IndexError) as exc:
        raise ModelLoadError(
            path,
            f"has a text encoder whose layout LatentLoom does not recognise (missing {exc}).",
            "Expected a CLIP or OpenCLIP text transformer as stored by Stable Diffusion.",
        ) from exc
    projection = encoder.get("text_projection") if layout is ClipLayout.OPENCLIP else None
    if projection is None:
        projection = encoder.get("text_projection.weight")
        if projection is not None:
            config["projection_dim"] = int(projection.shape[0])
    else:
        config["projection_dim"] = int(projection.shape[1])
    return config
