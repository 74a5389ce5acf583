"""IP-Adapter nodes: load an adapter from the ipadapter folder and apply it to a MODEL with a
picture, under the node and widget names of ComfyUI's IPAdapter node pack (IPAdapterModelLoader,
IPAdapterApply), so its workflows import and run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from core.diffusion.model_paths import ModelKind, ModelPaths
from core.graph import types as t
from core.graph.spec import NodeSpec, Output, SocketInput, WidgetInput
from nodes.models import _Loaders, _node_error
from nodes.placement import compute_device, place

#: How the weight applies: "linear" multiplies every cross-attention layer's image attention
#: by it (the paper's and diffusers' scale; the IPAdapter pack's "linear" with "V only"
#: scaling); "original" is the same under the name the pack's first version gave it.
WEIGHT_TYPES = ("linear", "original")


#: The weight and window widgets both apply nodes share.
_WIDGETS = (
    WidgetInput(
        "weight",
        t.FLOAT,
        1.0,
        min=-1.0,
        max=5.0,
        step=0.05,
        description="how strongly the picture steers the result (0: not at all; "
        "around 0.5 leaves more room for the text prompt)",
    ),
    WidgetInput(
        "start_at",
        t.FLOAT,
        0.0,
        min=0.0,
        max=1.0,
        step=0.01,
        description="apply the picture from this point of the schedule on (0: pure noise)",
    ),
    WidgetInput(
        "end_at",
        t.FLOAT,
        1.0,
        min=0.0,
        max=1.0,
        step=0.01,
        description="apply the picture up to this point of the schedule (1: clean)",
    ),
    WidgetInput(
        "weight_type",
        t.COMBO,
        "linear",
        choices=WEIGHT_TYPES,
        description="linear: the image attention times the weight in every cross-attention "
        "layer; original: the same (its name in older workflows)",
    ),
)


_MASK = SocketInput(
    "attn_mask",
    t.MASK,
    optional=True,
    description="where the picture applies (1) and where not (0); everywhere if unlinked",
)


class _IpAdapterLoaders(_Loaders):
    """The IP-Adapter loader, bound to one set of model folders."""

    def load_ip_adapter(self, ctx: Any, ipadapter_file: str) -> Any:
        from core.diffusion import devices
        from core.diffusion.errors import ModelLoadError
        from core.diffusion.ip_adapter import load_ip_adapter

        path = self._resolve(ModelKind.IPADAPTER, ipadapter_file, "ipadapter_file")
        try:
            return load_ip_adapter(path, devices.pick_dtype(compute_device(ctx)))
        except ModelLoadError as exc:
            raise _node_error(exc, "ipadapter_file") from None


def _patched(
    ctx: Any,
    model: Any,
    ipadapter: Any,
    encode: Any,
    clip_vision: Any,
    weight: float,
    start_at: float,
    end_at: float,
    weight_type: str,
    attn_mask: Any,
) -> Any:
    """``model`` with ``ipadapter`` attending to the pictures ``encode()`` gives."""
    from core.diffusion.ip_adapter import apply_ip_adapter, fit_problem, image_tokens
    from core.engine import NodeError

    if weight_type not in WEIGHT_TYPES:
        raise NodeError(
            f"weight type {weight_type!r} is not supported: use {', '.join(WEIGHT_TYPES)}",
            field="weight_type",
        )
    if start_at > end_at:
        raise NodeError(f"start_at ({start_at:g}) is after end_at ({end_at:g})", field="start_at")
    problem = fit_problem(model, ipadapter)
    if problem is not None:
        raise NodeError(problem, field="ipadapter")
    if ipadapter.variant == "plus" and clip_vision is None:
        raise NodeError(
            f"{ipadapter.source.name} is a plus adapter: link the CLIP vision model here too, "
            "its negative side is the encoder's view of a blank picture",
            field="clip_vision",
        )
    encoded = encode()
    if clip_vision is not None:
        place(ctx, clip_vision.model)
    place(ctx, ipadapter.image_proj)
    try:
        positive, negative = image_tokens(ipadapter, encoded, clip_vision)
    except ValueError as exc:
        raise _node_error(exc, "clip_vision") from None
    try:
        return apply_ip_adapter(
            model, ipadapter, positive, negative, weight, start_at, end_at, attn_mask
        )
    except ValueError as exc:
        raise _node_error(exc, "attn_mask") from None


def _apply(
    ctx: Any,
    model: Any,
    ipadapter: Any,
    clip_vision: Any,
    image: Any,
    weight: float = 1.0,
    start_at: float = 0.0,
    end_at: float = 1.0,
    weight_type: str = "linear",
    attn_mask: Any = None,
) -> Any:
    def encode() -> Any:
        from core.diffusion.clip_vision import encode_images

        place(ctx, clip_vision.model)
        try:
            return encode_images(clip_vision, image, "center")
        except ValueError as exc:
            raise _node_error(exc, "image") from None

    return _patched(
        ctx, model, ipadapter, encode, clip_vision, weight, start_at, end_at, weight_type, attn_mask
    )


def _apply_encoded(
    ctx: Any,
    model: Any,
    ipadapter: Any,
    clip_vision_output: Any,
    weight: float = 1.0,
    start_at: float = 0.0,
    end_at: float = 1.0,
    weight_type: str = "linear",
    clip_vision: Any = None,
    attn_mask: Any = None,
) -> Any:
    return _patched(
        ctx,
        model,
        ipadapter,
        lambda: clip_vision_output,
        clip_vision,
        weight,
        start_at,
        end_at,
        weight_type,
        attn_mask,
    )


def _problems(params: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    start, end = params.get("start_at"), params.get("end_at")
    if isinstance(start, (int, float)) and isinstance(end, (int, float)) and start > end:
        yield (
            "start_at",
            f"start_at ({start:g}) is after end_at ({end:g}): the picture never applies",
        )


def specs(paths: ModelPaths) -> tuple[NodeSpec, ...]:
    """The IP-Adapter specs, bound to ``paths``."""
    loaders = _IpAdapterLoaders(paths)
    kind = ModelKind.IPADAPTER
    return (
        NodeSpec(
            "IPAdapterModelLoader",
            "IPAdapter Model Loader",
            "loaders",
            loaders.load_ip_adapter,
            inputs=(
                WidgetInput(
                    "ipadapter_file",
                    t.COMBO,
                    "",
                    choices_from=kind.value,
                    description="an IP-Adapter file in ipadapter (plain or plus, SD 1.5 or "
                    "SDXL; .safetensors or the original .bin)",
                ),
            ),
            outputs=(Output("IPADAPTER", t.IPADAPTER),),
            description="Loads an IP-Adapter: a small add-on that lets a model take a picture "
            "as a prompt. Plain adapters (ip-adapter_sd15, ip-adapter_sdxl_vit-h) carry the "
            "picture's overall look; plus adapters (ip-adapter-plus_sd15, -plus-face) follow "
            "it more closely. Use it with IPAdapter Apply and the CLIP vision model the "
            "adapter was trained with.",
            fingerprint=loaders.fingerprint(kind, "ipadapter_file"),
            check=loaders.problems(kind, "ipadapter_file"),
        ),
        NodeSpec(
            "IPAdapterApply",
            "IPAdapter Apply",
            "conditioning",
            _apply,
            inputs=(
                SocketInput("model", t.MODEL),
                SocketInput("ipadapter", t.IPADAPTER),
                SocketInput("clip_vision", t.CLIP_VISION),
                SocketInput(
                    "image",
                    t.IMAGE,
                    description="the picture prompt; several pictures in a batch all apply",
                ),
                *_WIDGETS,
                _MASK,
            ),
            outputs=(Output("MODEL", t.MODEL),),
            description="Makes a picture part of the prompt (IP-Adapter, Ye et al. 2023): the "
            "model attends to the picture's CLIP features beside the text in every "
            "cross-attention layer. Use it for a style, a subject or a face to follow; chain "
            "several to mix pictures, each with its own weight, and link a mask to keep one "
            "to a region. The loaded model is shared, not changed.",
            check=_problems,
        ),
        NodeSpec(
            "IPAdapterApplyEncoded",
            "IPAdapter Apply (Encoded)",
            "conditioning",
            _apply_encoded,
            inputs=(
                SocketInput("model", t.MODEL),
                SocketInput("ipadapter", t.IPADAPTER),
                SocketInput(
                    "clip_vision_output",
                    t.CLIP_VISION_OUTPUT,
                    description="pictures already encoded by CLIP Vision Encode",
                ),
                *_WIDGETS,
                SocketInput(
                    "clip_vision",
                    t.CLIP_VISION,
                    optional=True,
                    description="the encoder that made the output; plus adapters need it",
                ),
                _MASK,
            ),
            outputs=(Output("MODEL", t.MODEL),),
            description="IPAdapter Apply for pictures encoded once by CLIP Vision Encode: "
            "use it to share one encoding between several adapters or to choose the crop. "
            "Plus adapters also need the CLIP vision model linked.",
            check=_problems,
        ),
    )
