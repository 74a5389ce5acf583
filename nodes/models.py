"""Loader nodes: checkpoints, VAEs, LoRAs and the CLIP layer choice.

Model names are relative to the model folders (``ModelPaths``), as ComfyUI and A1111 show
them. Each loader's fingerprint is the file's size and modification time, so the engine's model
cache reloads a checkpoint exactly when the file on disk changes; its ``check`` reports a
missing file with the folders searched before anything runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from core.diffusion.model_paths import ModelKind, ModelPaths
from core.graph import types as t
from core.graph.spec import NodeSpec, Output, SocketInput, WidgetInput
from nodes.placement import compute_device

#: The model trained by this project and shipped in resources/models/checkpoints.
DEMO_CHECKPOINT = "latentloom-shapes"

FAMILIES = ("auto", "sd1", "sd2", "sdxl")
PREDICTIONS = ("auto", "epsilon", "v_prediction")
DTYPES = ("auto", "float32", "bfloat16", "float16")
#: ComfyUI's UNETLoader weight_dtype choices.
UNET_WEIGHT_DTYPES = ("default", "fp8_e4m3fn", "fp8_e4m3fn_fast", "fp8_e5m2")
#: What "auto" means for the VAE and text encoders on a CPU (``devices.pick_aux_dtype``).
AUX_DTYPE_ON_CPU = "on CPUs bfloat16 when the UNet is and the CPU runs it natively, else float32"


def file_state(path: Path) -> str:
    """Size and modification time of a file, or of every file in a diffusers folder."""
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    parts = []
    for file in files:
        stat = file.stat()
        parts.append(
            f"{file.relative_to(path) if path.is_dir() else file.name}:"
            f"{stat.st_size}:{stat.st_mtime_ns}"
        )
    return f"{path.resolve()}|" + "|".join(parts)


def _dtype(name: str) -> Any:
    import torch

    return None if name == "auto" else getattr(torch, name)


def _node_error(exc: Exception, field: str) -> Exception:
    from core.engine import NodeError

    return NodeError(str(exc), field=field)


def _stop_if_cancelled(ctx: Any) -> Callable[[int, int], None]:
    """A load's stage callback that raises ``Cancelled`` between stages once the run is
    cancelled. It emits no progress events: a load's few stages are of very uneven length."""

    def check(done: int, total: int) -> None:
        ctx.cancel.raise_if_cancelled()

    return check


class _Loaders:
    """The loader node functions, bound to one set of model folders."""

    def __init__(self, paths: ModelPaths) -> None:
        self.paths = paths

    def _resolve(self, kind: ModelKind, name: str, field: str) -> Path:
        from core.diffusion.errors import ModelNotFoundError

        try:
            return self.paths.resolve(kind, name)
        except ModelNotFoundError as exc:
            raise _node_error(exc, field) from None

    def problems(self, kind: ModelKind, field: str) -> Callable[[Mapping[str, Any]], Iterable]:
        def check(params: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
            from core.diffusion.errors import ModelNotFoundError

            if field not in params:
                return  # the name arrives by a link
            name = str(params[field])
            if not name:
                yield field, f"no {kind} model chosen: pick one from the list"
                return
            try:
                self.paths.resolve(kind, name)
            except ModelNotFoundError as exc:
                yield field, str(exc)

        return check

    def fingerprint(self, kind: ModelKind, field: str) -> Callable[[Mapping[str, Any]], str]:
        def digest(params: Mapping[str, Any]) -> str:
            return file_state(self.paths.resolve(kind, str(params.get(field, ""))))

        return digest

    def load_checkpoint(
        self,
        ctx: Any,
        ckpt_name: str,
        family: str,
        prediction: str,
        dtype: str,
        vae_clip_dtype: str = "auto",
    ) -> tuple[Any, Any, Any]:
        from core.diffusion import devices
        from core.diffusion.errors import ModelLoadError
        from core.diffusion.families import ModelFamily, PredictionType
        from core.diffusion.loading import LoadOverrides, load_checkpoint

        path = self._resolve(ModelKind.CHECKPOINTS, ckpt_name, "ckpt_name")
        device = compute_device(ctx)
        # Weights stay in host memory at their compute precision, read straight into it (no
        # float32 copy of a half-precision file); nodes move them onto the device when they
        # run (nodes.placement).
        unet_dtype = devices.pick_dtype(device, _dtype(dtype))
        aux_dtype = devices.pick_aux_dtype(device, _dtype(vae_clip_dtype), unet_dtype)
        overrides = LoadOverrides(
            family=None if family == "auto" else ModelFamily(family),
            prediction=None if prediction == "auto" else PredictionType(prediction),
            dtype=unet_dtype,
            text_dtype=aux_dtype,
            vae_dtype=aux_dtype,
        )
        try:
            loaded = load_checkpoint(path, overrides, progress=_stop_if_cancelled(ctx))
        except ModelLoadError as exc:
            raise _node_error(exc, "ckpt_name") from None
        return loaded.model, loaded.clip, loaded.vae

    def load_vae(self, ctx: Any, vae_name: str, family: str) -> Any:
        from core.diffusion import devices
        from core.diffusion.errors import ModelLoadError
        from core.diffusion.families import ModelFamily
        from core.diffusion.loading import load_vae

        path = self._resolve(ModelKind.VAE, vae_name, "vae_name")
        notices: list[str] = []
        dtype = devices.pick_aux_dtype(compute_device(ctx))
        try:
            chosen = None if family == "auto" else ModelFamily(family)
            vae = load_vae(path, chosen, dtype, progress=_stop_if_cancelled(ctx), notices=notices)
        except ModelLoadError as exc:
            raise _node_error(exc, "vae_name") from None
        for notice in notices:
            if ctx is not None:
                ctx.record("notice", notice)
        return vae

    def load_lora(
        self,
        ctx: Any,
        model: Any,
        clip: Any,
        lora_name: str,
        strength_model: float,
        strength_clip: float,
    ) -> tuple[Any, Any]:
        from core.diffusion.errors import ModelLoadError
        from core.diffusion.lora import LoraUse, apply_loras, ignored_notice, load_lora

        path = self._resolve(ModelKind.LORAS, lora_name, "lora_name")
        notices: list[str] = []
        try:
            weights = load_lora(path)
            use = LoraUse(weights, strength_model, strength_clip)
            patched = apply_loras(model, clip, [use], notices)
        except ModelLoadError as exc:
            raise _node_error(exc, "lora_name") from None
        for notice in filter(None, [ignored_notice(weights), *notices]):
            if ctx is not None:
                ctx.record("notice", notice)
        return patched

    def load_unet(self, ctx: Any, unet_name: str, weight_dtype: str = "default") -> Any:
        from core.diffusion import devices
        from core.diffusion.errors import ModelLoadError
        from core.diffusion.unet_files import load_unet_file

        path = self._resolve(ModelKind.UNET, unet_name, "unet_name")
        try:
            model = load_unet_file(path, devices.pick_dtype(compute_device(ctx)))
        except ModelLoadError as exc:
            raise _node_error(exc, "unet_name") from None
        if weight_dtype != "default" and ctx is not None:
            ctx.record(
                "notice",
                f"{unet_name}: weights kept at the compute precision; LatentLoom does not "
                f"store UNets as {weight_dtype}",
            )
        return model

    def load_hypernetwork(
        self, ctx: Any, model: Any, hypernetwork_name: str, strength: float
    ) -> Any:
        from core.diffusion.errors import ModelLoadError
        from core.diffusion.hypernetwork import apply_hypernetwork, load_hypernetwork

        path = self._resolve(ModelKind.HYPERNETWORKS, hypernetwork_name, "hypernetwork_name")
        try:
            hypernetwork = load_hypernetwork(path)
        except ModelLoadError as exc:
            raise _node_error(exc, "hypernetwork_name") from None
        return apply_hypernetwork(model, hypernetwork, strength)

    def load_lora_model_only(
        self, ctx: Any, model: Any, lora_name: str, strength_model: float
    ) -> tuple[Any]:
        patched, _ = self.load_lora(ctx, model, None, lora_name, strength_model, 0.0)
        return (patched,)


def _clip_set_last_layer(ctx: Any, clip: Any, stop_at_clip_layer: int) -> Any:
    try:
        return clip.with_last_layer(stop_at_clip_layer)
    except ValueError as exc:
        raise _node_error(exc, "stop_at_clip_layer") from None


def specs(paths: ModelPaths) -> tuple[NodeSpec, ...]:
    """The loader specs, bound to ``paths``."""
    loaders = _Loaders(paths)
    ckpt, vae, lora = ModelKind.CHECKPOINTS, ModelKind.VAE, ModelKind.LORAS
    return (
        NodeSpec(
            "LoadCheckpoint",
            "Load Checkpoint",
            "loaders",
            loaders.load_checkpoint,
            inputs=(
                WidgetInput(
                    "ckpt_name",
                    t.COMBO,
                    DEMO_CHECKPOINT,
                    choices_from="checkpoints",
                    description="a .safetensors/.ckpt file or a diffusers folder",
                ),
                WidgetInput(
                    "family",
                    t.COMBO,
                    "auto",
                    choices=FAMILIES,
                    description="override the family detected from the weights",
                ),
                WidgetInput(
                    "prediction",
                    t.COMBO,
                    "auto",
                    choices=PREDICTIONS,
                    description="override ε/v-prediction (SD 2.x 768 models use v)",
                ),
                WidgetInput(
                    "dtype",
                    t.COMBO,
                    "auto",
                    choices=DTYPES,
                    description="UNet precision; auto: half on GPUs, bfloat16 on CPUs "
                    "that run it natively, else float32",
                ),
                WidgetInput(
                    "vae_clip_dtype",
                    t.COMBO,
                    "auto",
                    choices=DTYPES,
                    description="precision of the VAE and the text encoder(s); auto: the "
                    "UNet's on GPUs, " + AUX_DTYPE_ON_CPU,
                ),
            ),
            outputs=(
                Output("MODEL", t.MODEL, description="the UNet, for the sampler"),
                Output("CLIP", t.CLIP, description="the text encoder, for the prompts"),
                Output("VAE", t.VAE, description="the autoencoder, to decode and encode pictures"),
            ),
            description="Loads a Stable Diffusion checkpoint (SD 1.x, 2.x, SDXL) or the shipped "
            "demo model: the UNet, the text encoder(s) and the VAE.",
            fingerprint=loaders.fingerprint(ckpt, "ckpt_name"),
            check=loaders.problems(ckpt, "ckpt_name"),
        ),
        NodeSpec(
            "LoadVAE",
            "Load VAE",
            "loaders",
            loaders.load_vae,
            inputs=(
                WidgetInput("vae_name", t.COMBO, "", choices_from="vae"),
                WidgetInput(
                    "family",
                    t.COMBO,
                    "auto",
                    choices=FAMILIES,
                    description="picks the latent scale (SDXL VAEs use 0.13025); auto reads "
                    "it from the file's metadata or name ('xl'), else SD 1.x's",
                ),
            ),
            outputs=(Output("VAE", t.VAE),),
            description="Loads a standalone VAE, e.g. a fine-tuned decoder. SD 1.x and SDXL "
            "VAEs look alike but need different latent scales: with family auto the file's "
            "metadata or an 'xl' in its name marks an SDXL VAE, and a notice says which scale "
            "was chosen and why; set the family when the file does not say.",
            fingerprint=loaders.fingerprint(vae, "vae_name"),
            check=loaders.problems(vae, "vae_name"),
        ),
        NodeSpec(
            "LoadLoRA",
            "Load LoRA",
            "loaders",
            loaders.load_lora,
            inputs=(
                SocketInput("model", t.MODEL),
                SocketInput("clip", t.CLIP),
                WidgetInput("lora_name", t.COMBO, "", choices_from="loras"),
                WidgetInput("strength_model", t.FLOAT, 1.0, min=-10, max=10, step=0.05),
                WidgetInput("strength_clip", t.FLOAT, 1.0, min=-10, max=10, step=0.05),
            ),
            outputs=(Output("MODEL", t.MODEL), Output("CLIP", t.CLIP)),
            description="Applies a LoRA, LoCon, LoHa or LoKr file (kohya/A1111, LyCORIS or "
            "diffusers format) with separate strengths for the UNet and the text encoder; chain "
            "several to stack them. The loaded checkpoint is left untouched. Keys of the file "
            "that are no such layer are left out and listed in a notice.",
            fingerprint=loaders.fingerprint(lora, "lora_name"),
            check=loaders.problems(lora, "lora_name"),
        ),
        NodeSpec(
            "LoraLoaderModelOnly",
            "Load LoRA (Model Only)",
            "loaders",
            loaders.load_lora_model_only,
            inputs=(
                SocketInput("model", t.MODEL),
                WidgetInput("lora_name", t.COMBO, "", choices_from="loras"),
                WidgetInput("strength_model", t.FLOAT, 1.0, min=-100, max=100, step=0.01),
            ),
            outputs=(Output("MODEL", t.MODEL),),
            description="Applies a LoRA to the UNet only: for LoRAs trained without the text "
            "encoder, such as the SDXL Lightning and LCM LoRAs.",
            fingerprint=loaders.fingerprint(lora, "lora_name"),
            check=loaders.problems(lora, "lora_name"),
        ),
        NodeSpec(
            "UNETLoader",
            "Load Diffusion Model",
            "advanced/loaders",
            loaders.load_unet,
            inputs=(
                WidgetInput(
                    "unet_name",
                    t.COMBO,
                    "",
                    choices_from=ModelKind.UNET.value,
                    description="a UNet-only file in unet or diffusion_models",
                ),
                WidgetInput(
                    "weight_dtype",
                    t.COMBO,
                    "default",
                    choices=UNET_WEIGHT_DTYPES,
                    description="ComfyUI's fp8 storage choices are read as default: the "
                    "weights stay at the compute precision",
                ),
            ),
            outputs=(Output("MODEL", t.MODEL),),
            description="Loads a UNet-only file (SD 1.x, SD 2.x or SDXL; LDM or diffusers "
            "names), such as the SDXL-Lightning UNets: use it with the text encoder and VAE of "
            "a checkpoint of the same family. The prediction type is the family's usual one; "
            "follow with ModelSamplingDiscrete for a v-prediction UNet.",
            fingerprint=loaders.fingerprint(ModelKind.UNET, "unet_name"),
            check=loaders.problems(ModelKind.UNET, "unet_name"),
        ),
        NodeSpec(
            "HypernetworkLoader",
            "HypernetworkLoader",
            "loaders",
            loaders.load_hypernetwork,
            inputs=(
                SocketInput("model", t.MODEL),
                WidgetInput(
                    "hypernetwork_name",
                    t.COMBO,
                    "",
                    choices_from=ModelKind.HYPERNETWORKS.value,
                    description="an AUTOMATIC1111 hypernetwork (.pt) in hypernetworks",
                ),
                WidgetInput("strength", t.FLOAT, 1.0, min=-10.0, max=10.0, step=0.01),
            ),
            outputs=(Output("MODEL", t.MODEL),),
            description="Applies an AUTOMATIC1111 hypernetwork, a style or subject add-on "
            "older than LoRAs: small networks that change what every attention layer of the "
            "UNet reads its keys and values from. Chain several to stack them; the input "
            "model is left as it is and the weights are shared.",
            fingerprint=loaders.fingerprint(ModelKind.HYPERNETWORKS, "hypernetwork_name"),
            check=loaders.problems(ModelKind.HYPERNETWORKS, "hypernetwork_name"),
        ),
        NodeSpec(
            "CLIPSetLastLayer",
            "CLIP Set Last Layer",
            "conditioning",
            _clip_set_last_layer,
            inputs=(
                SocketInput("clip", t.CLIP),
                WidgetInput(
                    "stop_at_clip_layer",
                    t.INT,
                    -1,
                    min=-24,
                    max=-1,
                    step=1,
                    description='-1: last layer; -2: penultimate ("clip skip 2")',
                ),
            ),
            outputs=(Output("CLIP", t.CLIP),),
            description="Makes text encoding stop at an earlier layer of the text encoder.",
        ),
    )
