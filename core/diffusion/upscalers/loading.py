"""Reading a pixel upscale model file into a runnable network, recognised from its keys.

Supported: ESRGAN's RRDBNet in the original and in BasicSR's key layout (ESRGAN, Real-ESRGAN
x4plus / x2plus / anime 6B, and the many community models such as 4x-UltraSharp or
4x_foolhardy_Remacri; ×1, ×2, ×4 and ×8), Real-ESRGAN's compact SRVGGNetCompact and SwinIR
(001_classicalSR_*, 002_lightweightSR_*, 003_realSR_*, 004/005 denoising). Other
files get an error naming the file, what its keys look like when that is known, and what is
supported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from core.diffusion.checkpoint_io import StateDict, read_state_dict
from core.diffusion.errors import ModelLoadError
from core.diffusion.models import HoldsTensors, StorageKey, module_storages
from core.diffusion.upscalers import rrdbnet, srvgg, swinir

SUPPORTED = (
    "ESRGAN / Real-ESRGAN RRDBNet (original and BasicSR key layouts, ×1 ×2 ×4 ×8), "
    "Real-ESRGAN's compact SRVGGNetCompact and SwinIR (classical, lightweight and real-world "
    "SR, denoising)"
)

#: Keys that mark architectures LatentLoom recognises but does not run, checked in order.
_UNSUPPORTED: tuple[tuple[Callable[[str], bool], str], ...] = (
    (lambda key: key == "relative_position_index_SA", "HAT"),
    (lambda key: key.startswith("before_RG."), "DAT"),
    (lambda key: ".attn.cpb_mlp." in key, "Swin2SR"),
    (lambda key: key.startswith("model.diffusion_model."), "Stable Diffusion checkpoint"),
)


@dataclass(frozen=True, eq=False)
class UpscaleModel(HoldsTensors):
    """The UPSCALE_MODEL socket value: a network that enlarges RGB pictures ``scale`` times.

    ``multiple_of``: the network needs input sides divisible by it (pixel-unshuffle models);
    the upscaler pads and crops so any size works.
    """

    network: nn.Module
    architecture: str
    scale: int
    multiple_of: int = 1
    in_channels: int = 3
    out_channels: int = 3
    source: Path | None = None

    def cache_storages(self) -> dict[StorageKey, int]:
        return module_storages(self.network)


def load_upscale_model(path: str | Path) -> UpscaleModel:
    """Reads ``path`` (.safetensors or a pickled .pth/.pt/.ckpt/.bin, read safely) and builds
    its network in float32 on the CPU; raises ``ModelLoadError`` naming the file."""
    path = Path(path)
    state_dict = unwrap(read_state_dict(path))
    try:
        model = _build(state_dict, path)
    except ValueError as exc:
        raise ModelLoadError(
            path,
            f"looks like an upscale model but its weights do not fit together ({exc}).",
            "The file may be damaged or a variant LatentLoom does not run; supported: "
            f"{SUPPORTED}.",
        ) from None
    if (model.in_channels, model.out_channels) != (3, 3):
        raise ModelLoadError(
            path,
            f"is a {model.architecture} for {model.in_channels}-channel pictures in and "
            f"{model.out_channels} out; only RGB (3-channel) upscale models are supported.",
        )
    return model


def unwrap(state_dict: StateDict) -> StateDict:
    """The network's own weights: Real-ESRGAN's ``params_ema`` (else ``params``) and a
    ``module.`` prefix left by data-parallel training are taken off."""
    for wrapper in ("params_ema.", "params."):
        inner = {k[len(wrapper) :]: v for k, v in state_dict.items() if k.startswith(wrapper)}
        if inner:
            state_dict = inner
            break
    if state_dict and all(key.startswith("module.") for key in state_dict):
        state_dict = {key[len("module.") :]: value for key, value in state_dict.items()}
    return state_dict


def _build(state_dict: StateDict, path: Path) -> UpscaleModel:
    if rrdbnet.is_old_layout(state_dict) or rrdbnet.is_new_layout(state_dict):
        layout = "original" if rrdbnet.is_old_layout(state_dict) else "BasicSR"
        if layout == "original":
            state_dict = rrdbnet.from_old_layout(state_dict)
        shape = rrdbnet.read_shape(state_dict)
        network: nn.Module = rrdbnet.RRDBNet(shape)
        name = (
            f"ESRGAN RRDBNet ×{shape.scale} ({layout} keys, {shape.blocks} blocks, "
            f"{shape.features} features)"
        )
        model = UpscaleModel(
            network,
            name,
            shape.scale,
            multiple_of=shape.unshuffle,
            in_channels=shape.in_channels,
            out_channels=shape.out_channels,
            source=path,
        )
    elif srvgg.is_srvgg(state_dict):
        compact = srvgg.read_shape(state_dict)
        network = srvgg.SRVGGNetCompact(compact)
        name = (
            f"Real-ESRGAN SRVGGNetCompact ×{compact.scale} ({compact.convolutions} "
            f"convolutions, {compact.features} features)"
        )
        model = UpscaleModel(
            network,
            name,
            compact.scale,
            in_channels=compact.channels,
            out_channels=compact.channels,
            source=path,
        )
    elif swinir.is_swinir(state_dict):
        shape = swinir.read_shape(state_dict)
        network = swinir.SwinIR(shape)
        state_dict = swinir.without_derived_buffers(state_dict)
        depths = "·".join(str(d) for d in shape.depths)
        name = (
            f"SwinIR ×{shape.scale} ({shape.upsampler or 'no upsampler'}, {shape.embed_dim} "
            f"features, depths {depths}, window {shape.window_size})"
        )
        model = UpscaleModel(
            network,
            name,
            shape.scale,
            in_channels=shape.in_channels,
            out_channels=shape.out_channels,
            source=path,
        )
    else:
        raise ModelLoadError(path, _unknown(state_dict), f"Supported: {SUPPORTED}.")
    _load_weights(model, state_dict, path)
    return model


def _unknown(state_dict: StateDict) -> str:
    for matches, family in _UNSUPPORTED:
        if any(matches(key) for key in state_dict):
            if family == "Stable Diffusion checkpoint":
                return (
                    "is a Stable Diffusion checkpoint, not an upscale model; load it with "
                    "Load Checkpoint."
                )
            return f"is a {family} upscale model, an architecture LatentLoom does not run yet."
    return "is no upscale model LatentLoom recognises (none of its keys fit)."


def _load_weights(model: UpscaleModel, state_dict: StateDict, path: Path) -> None:
    network = model.network
    expected = network.state_dict()
    unexpected = sorted(set(state_dict) - set(expected))
    missing = sorted(set(expected) - set(state_dict))
    wrong = [
        key
        for key in expected
        if key in state_dict and state_dict[key].shape != expected[key].shape
    ]
    if unexpected or missing or wrong:
        details = []
        for what, keys in (("unexpected", unexpected), ("missing", missing), ("misshapen", wrong)):
            if keys:
                more = f" and {len(keys) - 3} more" if len(keys) > 3 else ""
                details.append(f"{what} {', '.join(keys[:3])}{more}")
        raise ModelLoadError(
            path,
            f"looks like a {model.architecture} but its weights do not match that network "
            f"({'; '.join(details)}).",
            f"It may be a variant LatentLoom does not run; supported: {SUPPORTED}.",
        )
    with torch.no_grad():
        network.load_state_dict(state_dict)  # copied into the float32 parameters
    network.eval().requires_grad_(False)
