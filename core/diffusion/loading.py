"""Load Stable Diffusion checkpoints, VAEs and diffusers folders, fully offline.

Single files in the original LDM layout are read tensor by tensor (nothing is executed), their
family and architecture are read from key names and shapes, diffusers' own
``convert_ldm_*_checkpoint`` functions rename the tensors, and the modules are built from local
configs on the ``meta`` device before the file's tensors are assigned in, strictly: a missing or
unexpected tensor is an error, never a silently random weight.

Each component's tensors are read in its compute precision (``CastingView``): a
``.safetensors`` file whose precision is the compute precision stays memory-mapped and is never
copied, and one in another precision is converted tensor by tensor, so no float32 copy of a
half-precision file and no second copy of the weights is ever alive.
"""

from __future__ import annotations

from core.diffusion import offline  # noqa: F401  (must precede diffusers/transformers)

# isort: split
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from diffusers.loaders.single_file_utils import (
    convert_ldm_clip_checkpoint,
    convert_ldm_unet_checkpoint,
    convert_ldm_vae_checkpoint,
    convert_open_clip_checkpoint,
)
from safetensors import SafetensorError, safe_open
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

from core.diffusion.architecture import (
    UNET_PREFIX,
    VAE_PREFIX,
    clip_config_from_weights,
    detect_family,
    detect_prediction,
    detect_vae_family,
    is_sdxl_refiner,
    sdxl_time_embed_dim,
    strip_prefix,
    unet_config_from_ldm,
    vae_config_from_ldm,
)
from core.diffusion.checkpoint_io import CastingView, StateDict, read_state_dict
from core.diffusion.diffusers_components import (
    _family_of_unet,
    _from_pretrained,
    _has_component,
    _read_latent_rgb,
    _read_scheduler_config,
)
from core.diffusion.errors import ModelLoadError
from core.diffusion.families import (
    FAMILY_TRAITS,
    ClipLayout,
    ModelFamily,
    PredictionType,
    TextEncoderTraits,
    config_folder,
    family_traits,
)
from core.diffusion.models import (
    ClipModel,
    DiffusionModel,
    LoadedCheckpoint,
    TextEncoder,
    VaeModel,
)
from core.diffusion.module_build import _build, _fit_clip_keys
from core.diffusion.resources import load_clip_tokenizer, load_component_config

# OpenCLIP ViT-H/14 has 24 blocks; diffusers' SD 2.x text encoders store only 23
# (stabilityai/stable-diffusion-2*/text_encoder/config.json) because SD 2 reads the penultimate.
_OPENCLIP_H_WIDTH, _DIFFUSERS_SD2_LAYERS = 1024, 23


@dataclass(frozen=True)
class LoadOverrides:
    """User choices that replace what detection would pick; part of the model cache key.

    ``dtype`` is the precision of every component (float32 when None); ``text_dtype`` and
    ``vae_dtype`` give the text encoders' and the VAE's their own.
    """

    family: ModelFamily | None = None
    prediction: PredictionType | None = None
    dtype: torch.dtype | None = None
    text_dtype: torch.dtype | None = None
    vae_dtype: torch.dtype | None = None

    def cache_token(self) -> tuple[str, ...]:
        """A hashable, printable summary for cache keys."""
        return (
            str(self.family),
            str(self.prediction),
            str(self.dtype),
            str(self.text_dtype),
            str(self.vae_dtype),
        )

    @property
    def unet_dtype(self) -> torch.dtype:
        return self.dtype or torch.float32

    @property
    def text_encoder_dtype(self) -> torch.dtype:
        return self.text_dtype or self.unet_dtype

    @property
    def autoencoder_dtype(self) -> torch.dtype:
        return self.vae_dtype or self.unet_dtype


#: ``progress(done, total)``, called after each stage of a load (reading the file, building
#: each component); it may raise to stop the load there. The loader nodes pass their context's
#: ``progress``, which raises ``Cancelled`` once the run is cancelled.
StageProgress = Callable[[int, int], None]


def _no_progress(done: int, total: int) -> None:
    """The default ``StageProgress``: nothing to report, nothing to stop."""


def load_checkpoint(
    path: str | Path,
    overrides: LoadOverrides | None = None,
    progress: StageProgress = _no_progress,
) -> LoadedCheckpoint:
    """Load a checkpoint file or a diffusers folder (one containing ``model_index.json``)."""
    path = Path(path)
    overrides = overrides or LoadOverrides()
    if path.is_dir():
        return load_diffusers_folder(path, overrides, progress)
    state_dict = read_state_dict(path)
    return load_checkpoint_state_dict(state_dict, path, overrides, progress)


def load_checkpoint_state_dict(
    state_dict: StateDict,
    path: Path,
    overrides: LoadOverrides,
    progress: StageProgress = _no_progress,
) -> LoadedCheckpoint:
    """Build MODEL, CLIP and VAE from an LDM-layout state dict read from ``path``.

    Stages reported: the file read, each text encoder, the UNet, the VAE.
    """
    detected = detect_family(state_dict, path)
    family = overrides.family or detected
    prediction = overrides.prediction or detect_prediction(state_dict, family)
    unet_tensors = strip_prefix(state_dict, UNET_PREFIX)
    inpainting = int(unet_tensors["input_blocks.0.0.weight"].shape[1]) == 9
    refiner = family is ModelFamily.SDXL and is_sdxl_refiner(state_dict)
    folder = config_folder(family, prediction, inpainting, refiner)
    traits = family_traits(family, refiner)
    stages = _Stages(progress, 3 + len(traits.text_encoders))
    stages.done()  # the file is read

    encoders = []
    for encoder_traits in traits.text_encoders:
        encoders.append(
            _load_ldm_text_encoder(
                state_dict, path, folder, encoder_traits, overrides.text_encoder_dtype
            )
        )
        stages.done()
    unet_config = unet_config_from_ldm(unet_tensors, load_component_config(folder, "unet"), path)
    if unet_config.get("addition_embed_type") == "text_time":
        pooled = int(encoders[-1].model.config.projection_dim)
        numbers = 5 if refiner else 6
        try:
            unet_config["addition_time_embed_dim"] = sdxl_time_embed_dim(
                unet_config, pooled, numbers
            )
        except ValueError as exc:
            raise ModelLoadError(path, f"has an SDXL UNet that does not fit: {exc}.") from exc
    del unet_tensors
    dtype = overrides.unet_dtype
    unet = _build(
        lambda: UNet2DConditionModel.from_config(unet_config),
        convert_ldm_unet_checkpoint(CastingView(state_dict, dtype, path), unet_config),
        path,
        "UNet",
        dtype,
    )
    stages.done()
    scheduler_config = load_component_config(folder, "scheduler")
    scheduler_config["prediction_type"] = str(prediction)
    vae = _load_ldm_vae(state_dict, path, folder, family, overrides.autoencoder_dtype)
    stages.done()
    return LoadedCheckpoint(
        source=path,
        family=family,
        model=DiffusionModel(unet, family, prediction, scheduler_config, preview_vae=vae),
        clip=ClipModel(family, tuple(encoders)),
        vae=vae,
    )


class _Stages:
    """Counts the stages of one load and reports each to a ``StageProgress``."""

    def __init__(self, progress: StageProgress, total: int) -> None:
        self.progress, self.total, self.count = progress, total, 0

    def done(self) -> None:
        self.count += 1
        self.progress(self.count, self.total)


def load_vae(
    path: str | Path,
    family: ModelFamily | None = None,
    dtype: torch.dtype | None = None,
    progress: StageProgress = _no_progress,
    notices: list[str] | None = None,
) -> VaeModel:
    """Load a standalone VAE: a single file (LDM names, bare or ``first_stage_model.``) or a
    diffusers ``AutoencoderKL`` folder. Stages reported: the file read (single files), the VAE.

    ``family`` picks a single file's latent scale factor; None detects it from the file
    (``detect_vae_family``) and falls back to SD 1.x's, adding a line saying so to
    ``notices``. A folder's own config always says its scale.
    """
    path = Path(path)
    dtype = dtype or torch.float32
    if path.is_dir():
        vae = _from_pretrained(AutoencoderKL, path, path, dtype)
        _Stages(progress, 1).done()
        return VaeModel(vae, float(vae.config.scaling_factor))
    state_dict = read_state_dict(path)
    stages = _Stages(progress, 2)
    stages.done()
    if not any(k.startswith(("encoder.", "decoder.", VAE_PREFIX)) for k in state_dict):
        raise ModelLoadError(
            path,
            "is not a VAE (no encoder.*/decoder.* tensors).",
            "Expected a KL autoencoder such as vae-ft-mse-840000 or sdxl_vae.",
        )
    if family is None:
        family, basis = detect_vae_family(state_dict, path, _metadata(path))
        if family is None:
            family = ModelFamily.SD1
            if notices is not None:
                notices.append(
                    f"{path.name}: nothing in the file tells which model family this VAE is for "
                    f"(SD 1.x and SDXL VAEs look alike), so it uses SD 1.x's latent scale "
                    f"{FAMILY_TRAITS[family].vae_scaling_factor}. For an SDXL VAE set family to "
                    "sdxl, or put 'xl' in its file name."
                )
        elif notices is not None:
            notices.append(
                f"{path.name}: a {family} VAE by {basis}, latent scale "
                f"{FAMILY_TRAITS[family].vae_scaling_factor}."
            )
    folder = config_folder(family, PredictionType.EPSILON, inpainting=False)
    vae = _load_ldm_vae(state_dict, path, folder, family, dtype)
    stages.done()
    return vae


def _metadata(path: Path) -> dict[str, str]:
    """A .safetensors file's text metadata (its header only); empty for other files."""
    if path.suffix.lower() != ".safetensors":
        return {}
    try:
        with safe_open(str(path), framework="pt") as handle:
            return dict(handle.metadata() or {})
    except (SafetensorError, OSError, ValueError):
        return {}


def _load_ldm_vae(
    state_dict: StateDict, path: Path, folder: str, family: ModelFamily, dtype: torch.dtype
) -> VaeModel:
    tensors = strip_prefix(state_dict, VAE_PREFIX) or state_dict
    if not tensors:
        raise ModelLoadError(path, "holds no VAE (first_stage_model.*) tensors.", "")
    config = vae_config_from_ldm(tensors, load_component_config(folder, "vae"), path)
    config["scaling_factor"] = FAMILY_TRAITS[family].vae_scaling_factor
    vae = _build(
        lambda: AutoencoderKL.from_config(config),
        convert_ldm_vae_checkpoint(CastingView(state_dict, dtype, path), config),
        path,
        "VAE",
        dtype,
    )
    return VaeModel(vae, float(config["scaling_factor"]))


def _load_ldm_text_encoder(
    state_dict: StateDict,
    path: Path,
    folder: str,
    traits: TextEncoderTraits,
    dtype: torch.dtype,
) -> TextEncoder:
    tensors = strip_prefix(CastingView(state_dict, dtype, path), traits.ldm_prefix)
    if not tensors:
        raise ModelLoadError(
            path,
            f"has no text encoder tensors under {traits.ldm_prefix}*.",
            "The checkpoint is incomplete or of another family; pass family= to override.",
        )
    base = load_component_config(folder, traits.config_file.removesuffix(".json"))
    config = CLIPTextConfig(**clip_config_from_weights(tensors, traits.layout, base, path))
    model_class = CLIPTextModelWithProjection if traits.with_projection else CLIPTextModel
    if traits.layout is ClipLayout.HUGGINGFACE:
        converted = convert_ldm_clip_checkpoint(
            {traits.ldm_prefix + key: value for key, value in tensors.items()}, traits.ldm_prefix
        )
    else:
        # A neutral prefix keeps diffusers from dropping block 23 and the projection, which it
        # does for SD 2.x files because its SD 2 text encoders are one block short.
        neutral = {"openclip." + key: value for key, value in tensors.items()}
        with torch.device("meta"):
            shape_probe = model_class(config)
        converted = convert_open_clip_checkpoint(shape_probe, neutral, prefix="openclip.")
    model = _build(
        lambda: model_class(config),
        _fit_clip_keys(converted, model_class),
        path,
        "text encoder",
        dtype,
    )
    return TextEncoder(
        model=model,
        tokenizer=load_clip_tokenizer(),
        pad_token_id=traits.pad_token_id,
        default_layer=traits.default_layer,
        normalize_hidden=traits.normalize_hidden,
        with_projection=traits.with_projection,
    )


def load_sd1_text_encoder(path: Path, dtype: torch.dtype) -> ClipModel:
    """The CLIP of SD 1.x from a standalone CLIP ViT-L/14 text-encoder file (transformers'
    names, as ComfyUI's ``clip_l.safetensors``): the tensors an SD 1.x checkpoint keeps under
    ``cond_stage_model.transformer.``, so it loads as a checkpoint's would."""
    traits = FAMILY_TRAITS[ModelFamily.SD1].text_encoders[0]
    tensors = read_state_dict(path)
    if not any(key.startswith("text_model.") for key in tensors):
        raise ModelLoadError(
            path,
            "has no CLIP text encoder tensors (text_model.*).",
            "Choose a CLIP ViT-L/14 text encoder such as clip_l.safetensors.",
        )
    prefixed = {traits.ldm_prefix + key: value for key, value in tensors.items()}
    folder = config_folder(ModelFamily.SD1, PredictionType.EPSILON, inpainting=False)
    encoder = _load_ldm_text_encoder(prefixed, path, folder, traits, dtype)
    return ClipModel(ModelFamily.SD1, (encoder,))


def load_diffusers_folder(
    folder: Path,
    overrides: LoadOverrides | None = None,
    progress: StageProgress = _no_progress,
) -> LoadedCheckpoint:
    """Load a diffusers pipeline folder from disk only (``local_files_only`` everywhere).

    Stages reported: the UNet, each text encoder, the VAE.
    """
    overrides = overrides or LoadOverrides()
    index_path = folder / "model_index.json"
    if not index_path.is_file():
        raise ModelLoadError(
            folder,
            "is a folder without model_index.json.",
            "Expected a diffusers pipeline folder or a single .safetensors/.ckpt file.",
        )
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(index_path, f"is not valid JSON ({exc}).") from exc
    # The SDXL refiner's folder has only the second text encoder (text_encoder_2/).
    refiner = not _has_component(folder, index, "text_encoder") and _has_component(
        folder, index, "text_encoder_2"
    )
    for component in ("unet", "vae", "text_encoder_2" if refiner else "text_encoder"):
        if not _has_component(folder, index, component):
            raise ModelLoadError(
                folder,
                f"has no {component}/ component.",
                "Expected a Stable Diffusion pipeline folder (unet, vae, text_encoder…).",
            )
    unet = _from_pretrained(UNet2DConditionModel, folder / "unet", folder, overrides.unet_dtype)
    family = overrides.family or _family_of_unet(unet.config)
    if refiner and family is not ModelFamily.SDXL:
        raise ModelLoadError(
            folder,
            "has no text_encoder/ component.",
            "Expected a Stable Diffusion pipeline folder (unet, vae, text_encoder…).",
        )
    traits = family_traits(family, refiner)
    stages = _Stages(progress, 2 + len(traits.text_encoders))
    stages.done()
    scheduler_config = _read_scheduler_config(folder)
    default_prediction = scheduler_config.get("prediction_type", "epsilon")
    prediction = overrides.prediction or PredictionType(default_prediction)
    scheduler_config["prediction_type"] = str(prediction)
    encoders = []
    for number, encoder_traits in enumerate(traits.text_encoders):
        suffix = "_2" if refiner else ("" if number == 0 else f"_{number + 1}")
        model_class = (
            CLIPTextModelWithProjection if encoder_traits.with_projection else CLIPTextModel
        )
        component = folder / f"text_encoder{suffix}"
        if not component.is_dir():
            raise ModelLoadError(folder, f"has no text_encoder{suffix}/ component.", "")
        model = _from_pretrained(model_class, component, folder, overrides.text_encoder_dtype)
        tokenizer_folder = folder / f"tokenizer{suffix}"
        tokenizer = load_clip_tokenizer(tokenizer_folder if tokenizer_folder.is_dir() else None)
        config = model.config
        missing = int(
            family is ModelFamily.SD2
            and config.hidden_size == _OPENCLIP_H_WIDTH
            and config.num_hidden_layers == _DIFFUSERS_SD2_LAYERS
        )
        encoders.append(
            TextEncoder(
                model=model,
                tokenizer=tokenizer,
                pad_token_id=encoder_traits.pad_token_id,
                default_layer=encoder_traits.default_layer,
                normalize_hidden=encoder_traits.normalize_hidden,
                with_projection=encoder_traits.with_projection,
                missing_last_layers=missing,
            )
        )
        stages.done()
    autoencoder = _from_pretrained(
        AutoencoderKL, folder / "vae", folder, overrides.autoencoder_dtype
    )
    vae = VaeModel(autoencoder, float(autoencoder.config.scaling_factor))
    stages.done()
    latent_rgb = _read_latent_rgb(folder)
    return LoadedCheckpoint(
        source=folder,
        family=family,
        model=DiffusionModel(
            unet, family, prediction, scheduler_config, latent_rgb, preview_vae=vae
        ),
        clip=ClipModel(family, tuple(encoders)),
        vae=vae,
    )
