"""ControlNet and T2I-Adapter nodes, with ComfyUI's names, inputs and widget order so its
workflows import, and the hint-picture operations that go with them (Canny edges, a
threshold, resizing to the latent's picture size)."""

from __future__ import annotations

from typing import Any

from core.diffusion.model_paths import ModelKind, ModelPaths
from core.graph import types as t
from core.graph.spec import NodeSpec, Output, SocketInput, WidgetInput
from nodes.image_ops import CROP_MODES, UPSCALE_METHODS
from nodes.models import _Loaders, _node_error
from nodes.placement import compute_device

_KIND = ModelKind.CONTROLNET
_FILES = (
    "a ControlNet or T2I-Adapter file in controlnet or t2i_adapter (ComfyUI) or ControlNet (A1111)"
)


class _ControlLoaders(_Loaders):
    """The ControlNet loaders, bound to one set of model folders."""

    def _load(self, ctx: Any, name: str, field: str, model: Any = None) -> Any:
        from core.diffusion import devices
        from core.diffusion.controlnet import load_control_model
        from core.diffusion.errors import ModelLoadError

        path = self._resolve(_KIND, name, field)
        dtype = devices.pick_dtype(compute_device(ctx))
        try:
            return load_control_model(path, model, dtype)
        except ModelLoadError as exc:
            raise _node_error(exc, field) from None

    def load(self, ctx: Any, control_net_name: str) -> Any:
        return self._load(ctx, control_net_name, "control_net_name")

    def load_diff(self, ctx: Any, model: Any, control_net_name: str) -> Any:
        return self._load(ctx, control_net_name, "control_net_name", model)

    def load_adapter(self, ctx: Any, t2i_adapter_name: str) -> Any:
        return self._load(ctx, t2i_adapter_name, "t2i_adapter_name")


def _apply(
    conditionings: tuple[Any, ...],
    control_net: Any,
    image: Any,
    strength: float,
    start_percent: float = 0.0,
    end_percent: float = 1.0,
) -> tuple[Any, ...]:
    from core.diffusion.controlnet import apply_control
    from core.engine import NodeError

    if image.ndim != 4:
        raise NodeError(f"the image is not a picture (shape {tuple(image.shape)})", field="image")
    if start_percent > end_percent:
        raise NodeError(
            f"start_percent {start_percent:g} is after end_percent {end_percent:g}: the "
            "control would apply at no step; set start_percent at or below end_percent",
            field="start_percent",
        )
    return apply_control(conditionings, control_net, image, strength, start_percent, end_percent)


def _control_net_apply(
    ctx: Any, conditioning: Any, control_net: Any, image: Any, strength: float
) -> Any:
    return _apply((conditioning,), control_net, image, strength)[0]


def _control_net_apply_advanced(
    ctx: Any,
    positive: Any,
    negative: Any,
    control_net: Any,
    image: Any,
    strength: float,
    start_percent: float,
    end_percent: float,
) -> tuple[Any, Any]:
    positive, negative = _apply(
        (positive, negative), control_net, image, strength, start_percent, end_percent
    )
    return positive, negative


def _canny(
    ctx: Any, image: Any, low_threshold: float, high_threshold: float, resolution: int = 0
) -> Any:
    from core.diffusion import hints
    from core.diffusion.image_effects import to_working_resolution
    from core.engine import NodeError

    if low_threshold > high_threshold:
        raise NodeError(
            f"low_threshold {low_threshold:g} is above high_threshold {high_threshold:g}: "
            "set it at or below the high threshold",
            field="low_threshold",
        )
    return hints.canny(to_working_resolution(image, resolution), low_threshold, high_threshold)


def _threshold(ctx: Any, image: Any, threshold: float) -> Any:
    from core.diffusion import hints

    return hints.threshold(image, threshold)


def _scale_to_latent(ctx: Any, image: Any, latent: Any, upscale_method: str, crop: str) -> Any:
    from core.diffusion import images
    from core.diffusion.latents import downscale_of

    factor = downscale_of(latent)
    height, width = (int(side) * factor for side in latent["samples"].shape[-2:])
    return images.scale(image, width, height, upscale_method, crop)


_STRENGTH = WidgetInput(
    "strength",
    t.FLOAT,
    1.0,
    min=0.0,
    max=10.0,
    step=0.01,
    description="how strongly the hint steers the picture; 0 leaves the conditioning as it is",
)


def specs(paths: ModelPaths) -> tuple[NodeSpec, ...]:
    """The ControlNet specs, bound to ``paths``."""
    loaders = _ControlLoaders(paths)
    fingerprint = loaders.fingerprint(_KIND, "control_net_name")
    check = loaders.problems(_KIND, "control_net_name")
    name = WidgetInput(
        "control_net_name", t.COMBO, "", choices_from=_KIND.value, description=_FILES
    )
    return (
        NodeSpec(
            "ControlNetLoader",
            "Load ControlNet Model",
            "loaders",
            loaders.load,
            inputs=(name,),
            outputs=(Output("CONTROL_NET", t.CONTROL_NET),),
            description="Loads a ControlNet or a T2I-Adapter for Apply ControlNet, which "
            "makes the picture follow a hint such as edges, a depth map or a pose. Reads the "
            "original files (control_v11p_sd15_*, control_sd15_*, SD 2.x and SDXL "
            "ControlNets), diffusers ControlNet files (with or without their config.json), "
            "Stability's SDXL Control-LoRAs (control-lora-*-rank*, built from the model being "
            "sampled when they first run) and TencentARC or diffusers T2I-Adapters (full, "
            "light, SDXL). Use a ControlNet made for the checkpoint's family.",
            fingerprint=fingerprint,
            check=check,
        ),
        NodeSpec(
            "DiffControlNetLoader",
            "Load ControlNet Model (diff)",
            "loaders",
            loaders.load_diff,
            inputs=(SocketInput("model", t.MODEL), name),
            outputs=(Output("CONTROL_NET", t.CONTROL_NET),),
            description="Loads a ControlNet stored as its difference to the model it was "
            "trained from (diff_control_sd15_*), adding the connected model's weights back. "
            "Connect the checkpoint the difference was made against; an ordinary ControlNet "
            "loads here as in Load ControlNet Model.",
            fingerprint=fingerprint,
            check=check,
        ),
        NodeSpec(
            "T2IAdapterLoader",
            "Load T2I-Adapter Model",
            "loaders",
            loaders.load_adapter,
            inputs=(
                WidgetInput(
                    "t2i_adapter_name",
                    t.COMBO,
                    "",
                    choices_from=_KIND.value,
                    description=_FILES,
                ),
            ),
            outputs=(Output("CONTROL_NET", t.CONTROL_NET),),
            description="Loads a T2I-Adapter (or a ControlNet) exactly as Load ControlNet "
            "Model does; kept for older workflows that load adapters with their own node.",
            fingerprint=loaders.fingerprint(_KIND, "t2i_adapter_name"),
            check=loaders.problems(_KIND, "t2i_adapter_name"),
        ),
        NodeSpec(
            "ControlNetApply",
            "Apply ControlNet",
            "conditioning/controlnet",
            _control_net_apply,
            inputs=(
                SocketInput("conditioning", t.CONDITIONING),
                SocketInput("control_net", t.CONTROL_NET),
                SocketInput("image", t.IMAGE, description="the hint: edges, depth, pose…"),
                _STRENGTH,
            ),
            outputs=(Output("CONDITIONING", t.CONDITIONING),),
            description="Attaches a ControlNet or T2I-Adapter with its hint picture to a "
            "prompt's conditioning, so every sampler step follows the hint's layout. Chain "
            "several to combine hints (their effects add up). The hint is resized to the "
            "picture being sampled, with a notice, when their sizes differ.",
        ),
        NodeSpec(
            "ControlNetApplyAdvanced",
            "Apply ControlNet (Advanced)",
            "conditioning/controlnet",
            _control_net_apply_advanced,
            inputs=(
                SocketInput("positive", t.CONDITIONING),
                SocketInput("negative", t.CONDITIONING),
                SocketInput("control_net", t.CONTROL_NET),
                SocketInput("image", t.IMAGE, description="the hint: edges, depth, pose…"),
                _STRENGTH,
                WidgetInput(
                    "start_percent",
                    t.FLOAT,
                    0.0,
                    min=0.0,
                    max=1.0,
                    step=0.001,
                    description="where in the run the control starts (0: the first step)",
                ),
                WidgetInput(
                    "end_percent",
                    t.FLOAT,
                    1.0,
                    min=0.0,
                    max=1.0,
                    step=0.001,
                    description="where it stops (1: the last step); ending early leaves "
                    "the details to the prompt",
                ),
            ),
            outputs=(
                Output("positive", t.CONDITIONING),
                Output("negative", t.CONDITIONING),
            ),
            description="Applies a ControlNet or T2I-Adapter to both the positive and the "
            "negative conditioning, only between start and end percent of the sampling run. "
            "Use it when the control should fix the composition early and let go for the "
            "details, or for ControlNets that expect the negative prompt to carry them too.",
        ),
        NodeSpec(
            "Canny",
            "Canny",
            "image/preprocessors",
            _canny,
            inputs=(
                SocketInput("image", t.IMAGE),
                WidgetInput(
                    "low_threshold",
                    t.FLOAT,
                    0.4,
                    min=0.01,
                    max=0.99,
                    step=0.01,
                    description="weaker edges are kept only where they touch strong ones",
                ),
                WidgetInput(
                    "high_threshold",
                    t.FLOAT,
                    0.8,
                    min=0.01,
                    max=0.99,
                    step=0.01,
                    description="edges at least this strong are always kept",
                ),
                WidgetInput(
                    "resolution",
                    t.INT,
                    0,
                    min=0,
                    max=16384,
                    step=1,
                    description="0: find edges at the picture's own size; else first scale it "
                    "so its shorter side is this many pixels (the edges come out that size)",
                ),
            ),
            outputs=(Output("IMAGE", t.IMAGE),),
            description="Finds the edges of a picture (white lines on black) as the hint for "
            "a canny ControlNet or T2I-Adapter. Lower the thresholds to keep fainter edges, "
            "raise them for only the main outlines; set a resolution to find edges at the "
            "scale the ControlNet will see rather than the picture's own.",
        ),
        NodeSpec(
            "ImageThreshold",
            "Image Threshold",
            "image/preprocessors",
            _threshold,
            inputs=(
                SocketInput("image", t.IMAGE),
                WidgetInput("threshold", t.FLOAT, 0.5, min=0.0, max=1.0, step=0.01),
            ),
            outputs=(Output("IMAGE", t.IMAGE),),
            description="Turns a picture black and white: white where its brightness reaches "
            "the threshold. Use it to clean a scanned sketch or a scribble before a scribble "
            "ControlNet; follow it with Invert Image for dark lines on white.",
        ),
        NodeSpec(
            "ImageScaleToLatentSize",
            "Upscale Image to Latent Size",
            "image/preprocessors",
            _scale_to_latent,
            inputs=(
                SocketInput("image", t.IMAGE),
                SocketInput("latent", t.LATENT),
                WidgetInput("upscale_method", t.COMBO, "nearest-exact", choices=UPSCALE_METHODS),
                WidgetInput("crop", t.COMBO, "center", choices=CROP_MODES),
            ),
            outputs=(Output("IMAGE", t.IMAGE),),
            description="Resizes a picture to the pixel size of a latent, so a hint lines up "
            "with the picture being sampled exactly (Apply ControlNet would otherwise resize "
            "it, with a notice).",
        ),
    )
