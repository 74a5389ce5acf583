"""Pixel upscale models: loading an ESRGAN-family or SwinIR file and enlarging pictures with it.

ComfyUI's ``UpscaleModelLoader`` and ``ImageUpscaleWithModel``, with its names, so workflows
that use them import. Upscaling runs in tiles of 512 input pixels with 32 pixels of context,
reporting progress per tile (so Cancel stops it between tiles) and halving the tile when the
device runs out of memory.
"""

from __future__ import annotations

from typing import Any

from core.diffusion.model_paths import ModelKind, ModelPaths
from core.graph import types as t
from core.graph.spec import NodeSpec, Output, SocketInput, WidgetInput
from nodes.models import _Loaders, _node_error
from nodes.placement import place

_KIND = ModelKind.UPSCALE_MODELS
#: Input pixels a side per tile, and of context around each tile's core (ComfyUI's values).
TILE, OVERLAP = 512, 32


class _UpscaleLoaders(_Loaders):
    """The upscale model loader, bound to one set of model folders."""

    def load_upscale_model(self, ctx: Any, model_name: str) -> Any:
        from core.diffusion.errors import ModelLoadError
        from core.diffusion.upscalers import load_upscale_model

        path = self._resolve(_KIND, model_name, "model_name")
        try:
            return load_upscale_model(path)
        except ModelLoadError as exc:
            raise _node_error(exc, "model_name") from None


def _upscale(ctx: Any, upscale_model: Any, image: Any) -> Any:
    import torch

    from core.diffusion.upscalers import MIN_TILE, upscale_image
    from core.engine import NodeError

    place(ctx, upscale_model.network)
    try:
        return upscale_image(
            upscale_model,
            image,
            tile=TILE,
            overlap=OVERLAP,
            progress=ctx.progress if ctx is not None else None,
        )
    except ValueError as exc:
        raise _node_error(exc, "image") from None
    except torch.OutOfMemoryError:
        raise NodeError(
            f"out of memory upscaling a {image.shape[2]}×{image.shape[1]} picture even in "
            f"{MIN_TILE}-pixel tiles: free memory (close other programs, or run on the CPU) "
            "or upscale a smaller picture",
            field="image",
        ) from None


def specs(paths: ModelPaths) -> tuple[NodeSpec, ...]:
    """The upscale model specs, bound to ``paths``."""
    loaders = _UpscaleLoaders(paths)
    return (
        NodeSpec(
            "UpscaleModelLoader",
            "Load Upscale Model",
            "loaders",
            loaders.load_upscale_model,
            inputs=(
                WidgetInput(
                    "model_name",
                    t.COMBO,
                    "",
                    choices_from=_KIND.value,
                    description="a .safetensors or .pth file in upscale_models (ComfyUI) or "
                    "ESRGAN / RealESRGAN (A1111)",
                ),
            ),
            outputs=(Output("UPSCALE_MODEL", t.UPSCALE_MODEL),),
            description="Loads a pixel upscale model for Upscale Image (using Model). Runs "
            "ESRGAN-family models: ESRGAN and Real-ESRGAN RRDBNet files in either key layout "
            "(RealESRGAN_x4plus, x2plus, anime 6B, 4x-UltraSharp, Remacri and other community "
            "models; ×1, ×2, ×4 and ×8), Real-ESRGAN's compact SRVGGNetCompact "
            "(realesr-general-x4v3, animevideov3) and SwinIR (classical, lightweight and "
            "real-world SR, denoising: 001_classicalSR_*, 003_realSR_*…, sizes read from the "
            "file). HAT, DAT, Swin2SR, OmniSR and other architectures are refused with a "
            "message saying so.",
            fingerprint=loaders.fingerprint(_KIND, "model_name"),
            check=loaders.problems(_KIND, "model_name"),
        ),
        NodeSpec(
            "ImageUpscaleWithModel",
            "Upscale Image (using Model)",
            "image/upscaling",
            _upscale,
            inputs=(
                SocketInput("upscale_model", t.UPSCALE_MODEL),
                SocketInput("image", t.IMAGE),
            ),
            outputs=(Output("IMAGE", t.IMAGE),),
            description="Enlarges pictures with a pixel upscale model by the model's own "
            "factor (×4 for most), adding detail that plain resizing cannot; follow it with "
            "Upscale Image By to reach another size, e.g. for a hires-fix pass. Works in "
            "512-pixel tiles, so large pictures fit in memory and Cancel stops it between "
            "tiles.",
        ),
    )
