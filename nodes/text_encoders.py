"""CLIPLoader (Load CLIP): a standalone text-encoder file and the model family it is for.

SD 1.x's CLIP ViT-L/14 (``clip_l.safetensors``, type ``stable_diffusion``) loads as a
checkpoint's CLIP would. ComfyUI's templates for newer families (Z-Image, Qwen-Image, Wan…)
load their text encoders this way too: such workflows open and validate with the file reported
when it is missing; a present file is read only far enough to say what it holds, and loading
stops with that, because LatentLoom runs none of those families
(``core.diffusion.text_encoder_files``).
"""

from __future__ import annotations

from typing import Any

from core.diffusion.model_paths import ModelKind, ModelPaths
from core.diffusion.text_encoder_files import CLIP_TYPES
from core.graph import types as t
from core.graph.spec import NodeSpec, Output, WidgetInput
from nodes.models import _Loaders
from nodes.placement import compute_device

#: ComfyUI's CLIPLoader device choices: where the encoder runs.
DEVICES = ("default", "cpu")


def _load_clip(loaders: _Loaders) -> Any:
    def load(ctx: Any, clip_name: str, type: str, device: str = "default") -> Any:
        from core.diffusion import devices
        from core.diffusion.errors import ModelLoadError
        from core.diffusion.text_encoder_files import load_text_encoder_file
        from core.engine import NodeError

        path = loaders._resolve(ModelKind.TEXT_ENCODERS, clip_name, "clip_name")
        dtype = devices.pick_aux_dtype(compute_device(ctx))
        try:
            return load_text_encoder_file(path, type, dtype)
        except ModelLoadError as exc:
            raise NodeError(str(exc), field="clip_name") from None

    return load


def specs(paths: ModelPaths) -> tuple[NodeSpec, ...]:
    """CLIPLoader, bound to ``paths``."""
    loaders = _Loaders(paths)
    kind = ModelKind.TEXT_ENCODERS
    return (
        NodeSpec(
            "CLIPLoader",
            "Load CLIP",
            "advanced/loaders",
            _load_clip(loaders),
            inputs=(
                WidgetInput(
                    "clip_name",
                    t.COMBO,
                    "",
                    choices_from=kind.value,
                    description="a text-encoder file in text_encoders or clip",
                ),
                WidgetInput(
                    "type",
                    t.COMBO,
                    "stable_diffusion",
                    choices=CLIP_TYPES,
                    description="the model family the encoder is for (ComfyUI's CLIP types)",
                ),
                WidgetInput(
                    "device",
                    t.COMBO,
                    "default",
                    choices=DEVICES,
                    description="where ComfyUI runs the encoder",
                ),
            ),
            outputs=(Output("CLIP", t.CLIP),),
            description="Loads a standalone text encoder: SD 1.x's CLIP ViT-L/14 "
            "(clip_l.safetensors, type stable_diffusion), for a UNet-only SD 1.x model. "
            "ComfyUI's templates for newer model families read theirs this way too (Qwen3 for "
            "Z-Image, Qwen2.5-VL for Qwen-Image, T5 for SD3 and Wan): such workflows open and "
            "validate, with a missing file reported, and running stops at this node with what "
            "the file holds, because LatentLoom runs only SD 1.x, SD 2.x and SDXL models.",
            fingerprint=loaders.fingerprint(kind, "clip_name"),
            check=loaders.problems(kind, "clip_name"),
        ),
    )
