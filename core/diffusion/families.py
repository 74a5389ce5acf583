"""The model families LatentLoom loads and what differs between them.

Everything family-specific that cannot be read from tensor shapes lives here: which shipped
config folder to start from, how each text encoder is stored in an LDM checkpoint, which of its
layers the UNet was trained on, and how prompts are padded.
"""

from __future__ import annotations

from core.diffusion import offline  # noqa: F401  (must precede diffusers/transformers)

# isort: split

from dataclasses import dataclass, replace
from enum import StrEnum


class ModelFamily(StrEnum):
    """Stable Diffusion generations with distinct text conditioning."""

    SD1 = "sd1"
    SD2 = "sd2"
    SDXL = "sdxl"


class PredictionType(StrEnum):
    """What the UNet predicts: the noise ε (DDPM), the velocity v (Salimans & Ho, 2022),
    the clean sample x₀ itself (diffusers' ``sample``) or EDM's preconditioned output F
    (Karras et al. 2022, eq. 7)."""

    EPSILON = "epsilon"
    V_PREDICTION = "v_prediction"
    SAMPLE = "sample"
    EDM = "edm"


class ClipLayout(StrEnum):
    """How a text encoder's tensors are named inside an LDM single-file checkpoint."""

    HUGGINGFACE = "huggingface"  # transformers' CLIPTextModel names (SD 1.x, SDXL encoder 1)
    OPENCLIP = "openclip"  # open_clip names with fused q/k/v (SD 2.x, SDXL encoder 2)


@dataclass(frozen=True)
class TextEncoderTraits:
    """One text encoder of a family.

    ``default_layer`` counts from the end of the complete encoder (-1 = last layer, -2 =
    penultimate). ``normalize_hidden`` says whether an intermediate layer's output goes through
    the final layer norm, as the reference implementation of that family does.
    """

    config_file: str
    ldm_prefix: str
    layout: ClipLayout
    pad_token_id: int
    default_layer: int
    normalize_hidden: bool
    with_projection: bool = False


@dataclass(frozen=True)
class FamilyTraits:
    """What a family needs beyond its tensor shapes."""

    family: ModelFamily
    text_encoders: tuple[TextEncoderTraits, ...]
    default_prediction: PredictionType
    vae_scaling_factor: float
    #: The SDXL refiner: only the OpenCLIP-bigG encoder, conditioned on an aesthetic score.
    refiner: bool = False


EOS_TOKEN_ID = 49407  # <|endoftext|> in the CLIP BPE vocabulary
BOS_TOKEN_ID = 49406  # <|startoftext|>

# CLIP ViT-L/14 pads with <|endoftext|> (transformers' tokenizer for SD 1.x); open_clip's
# tokenizer pads with 0, which SD 2.x and SDXL's second encoder were trained with.
# SD 1.x: last layer (Rombach et al.'s FrozenCLIPEmbedder); "clip skip" applies the final layer
# norm to earlier layers (AUTOMATIC1111's convention, followed by ComfyUI).
_SD1_CLIP = TextEncoderTraits(
    config_file="text_encoder.json",
    ldm_prefix="cond_stage_model.transformer.",
    layout=ClipLayout.HUGGINGFACE,
    pad_token_id=EOS_TOKEN_ID,
    default_layer=-1,
    normalize_hidden=True,
)
# SD 2.x: FrozenOpenCLIPEmbedder(layer="penultimate") runs all but the last block, then ln_final
# (Stability-AI/stablediffusion, ldm/modules/encoders/modules.py).
_SD2_CLIP = TextEncoderTraits(
    config_file="text_encoder.json",
    ldm_prefix="cond_stage_model.model.",
    layout=ClipLayout.OPENCLIP,
    pad_token_id=0,
    default_layer=-2,
    normalize_hidden=True,
)
# SDXL: both encoders' penultimate hidden states without the final norm, concatenated, plus the
# pooled, projected output of encoder 2 (Podell et al., 2023; Stability-AI/generative-models,
# FrozenCLIPEmbedder(layer="hidden", layer_idx=11) and FrozenOpenCLIPEmbedder2(legacy=False)).
_SDXL_CLIP_L = TextEncoderTraits(
    config_file="text_encoder.json",
    ldm_prefix="conditioner.embedders.0.transformer.",
    layout=ClipLayout.HUGGINGFACE,
    pad_token_id=EOS_TOKEN_ID,
    default_layer=-2,
    normalize_hidden=False,
)
_SDXL_CLIP_G = TextEncoderTraits(
    config_file="text_encoder_2.json",
    ldm_prefix="conditioner.embedders.1.model.",
    layout=ClipLayout.OPENCLIP,
    pad_token_id=0,
    default_layer=-2,
    normalize_hidden=False,
    with_projection=True,
)

# The SDXL refiner stores its only encoder, the same OpenCLIP-bigG with the same conventions, as
# embedder 0 (sd_xl_refiner.yaml: FrozenOpenCLIPEmbedder2, layer "penultimate", legacy False).
_SDXL_REFINER_CLIP_G = replace(_SDXL_CLIP_G, ldm_prefix="conditioner.embedders.0.model.")

FAMILY_TRAITS: dict[ModelFamily, FamilyTraits] = {
    # Latent scale factors: 0.18215 from the LDM/SD v1 configs, 0.13025 from SDXL's VAE config.
    ModelFamily.SD1: FamilyTraits(ModelFamily.SD1, (_SD1_CLIP,), PredictionType.EPSILON, 0.18215),
    ModelFamily.SD2: FamilyTraits(ModelFamily.SD2, (_SD2_CLIP,), PredictionType.EPSILON, 0.18215),
    ModelFamily.SDXL: FamilyTraits(
        ModelFamily.SDXL, (_SDXL_CLIP_L, _SDXL_CLIP_G), PredictionType.EPSILON, 0.13025
    ),
}


SDXL_REFINER_TRAITS = FamilyTraits(
    ModelFamily.SDXL, (_SDXL_REFINER_CLIP_G,), PredictionType.EPSILON, 0.13025, refiner=True
)

#: The refiner's aesthetic scores when a prompt does not say (diffusers'
#: StableDiffusionXLImg2ImgPipeline and ComfyUI: 6 for the prompt, 2.5 for the negative).
REFINER_AESTHETIC_SCORE = 6.0
REFINER_NEGATIVE_AESTHETIC_SCORE = 2.5


def family_traits(family: ModelFamily, refiner: bool = False) -> FamilyTraits:
    """The traits of ``family``; ``refiner`` picks the SDXL refiner's."""
    if refiner:
        if family is not ModelFamily.SDXL:
            raise ValueError(f"only SDXL has a refiner, not {family}")
        return SDXL_REFINER_TRAITS
    return FAMILY_TRAITS[family]


def config_folder(
    family: ModelFamily, prediction: PredictionType, inpainting: bool, refiner: bool = False
) -> str:
    """Name the folder of ``resources/configs`` a model of this kind starts from."""
    if refiner:
        return "sdxl_refiner"
    if family is ModelFamily.SD1:
        return "sd15_inpaint" if inpainting else "sd15"
    if family is ModelFamily.SD2:
        return "sd2_768_v" if prediction is PredictionType.V_PREDICTION else "sd2_512"
    return "sdxl_base"
