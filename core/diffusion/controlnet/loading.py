"""Reading ControlNet and T2I-Adapter files into diffusers modules.

Recognised from their tensor names: the original ControlNet release (``control_model.*`` or
unprefixed ``input_hint_block``…, SD 1.x, SD 2.x and SDXL, whole training checkpoints
included), diffusers' ``ControlNetModel`` files (alone, or beside their ``config.json``),
TencentARC's T2I-Adapters (full, light and SDXL) and diffusers' ``T2IAdapter`` files. Sizes
come from the tensors, the rest from the configs shipped in ``resources/configs/controlnet``.
A "difference" ControlNet stores its weights minus the UNet it was trained from; loading it
with that model adds the model's weights back (ComfyUI's DiffControlNetLoader). A Control-LoRA
keeps its tensors until it runs beside a UNet, which it is built from (``control_lora``).
"""

from __future__ import annotations

from core.diffusion import offline  # noqa: F401  (must precede diffusers/transformers)

# isort: split
import json
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from core.diffusion.checkpoint_io import read_state_dict
from core.diffusion.errors import ModelLoadError
from core.diffusion.families import ModelFamily
from core.diffusion.models import DiffusionModel, HoldsTensors, StorageKey, module_storages
from core.diffusion.module_build import _build
from core.diffusion.resources import load_component_config

from . import control_lora, layouts

CONFIG_FOLDER = "controlnet"
#: The key that marks a ControlNet stored as its difference to the UNet it was made from.
DIFFERENCE_MARKER = "difference"
_ADAPTER_CONFIGS = {
    "full_adapter": "t2i_adapter_full",
    "light_adapter": "t2i_adapter_light",
    "full_adapter_xl": "t2i_adapter_xl",
}
_REMEDY = (
    "Expected a ControlNet (control_v11p_sd15_*, control_sd15_*, SD 2.x or SDXL ControlNets, "
    "diffusers ControlNetModel files) or a T2I-Adapter (TencentARC or diffusers layout)."
)


@dataclass(frozen=True, eq=False)
class ControlModel(HoldsTensors):
    """The CONTROL_NET socket value: a loaded ControlNet or T2I-Adapter."""

    module: Any  # diffusers ControlNetModel or T2IAdapter; None for a Control-LoRA
    kind: str  # "controlnet" or "t2i_adapter"
    family: ModelFamily | None  # None: an adapter that fits SD 1.x and SD 2.x alike
    source: Path
    #: A Control-LoRA's tensors (original names); its ControlNet is built from the UNet it
    #: runs with (``module_for``).
    lora: Mapping[str, torch.Tensor] | None = None
    #: The ControlNet last built from a UNet, with a weak reference to that UNet.
    _built: dict = field(default_factory=dict, repr=False)

    def cache_storages(self) -> dict[StorageKey, int]:
        if self.lora is not None:
            return {
                (str(t.device), t.untyped_storage().data_ptr()): t.untyped_storage().nbytes()
                for t in self.lora.values()
            }
        return module_storages(self.module)

    @property
    def is_control_lora(self) -> bool:
        return self.lora is not None

    def forget_built(self) -> None:
        """Drop the ControlNet built from a UNet (a Control-LoRA's), until it runs again."""
        self._built.clear()

    def module_for(self, unet: torch.nn.Module) -> Any:
        """The module to run beside ``unet``: the loaded one, or for a Control-LoRA the
        ControlNet it makes of ``unet`` (built once per UNet and sampling run)."""
        if self.lora is None:
            return self.module
        held = self._built.get("unet")
        if held is not None and held[0]() is unet:
            return held[1]
        self._built.clear()  # one built ControlNet at a time: it is as large as half a UNet
        module = control_lora.build_control_lora(self.source, self.lora, unet)
        self._built["unet"] = (weakref.ref(unet), module)
        return module

    @property
    def name(self) -> str:
        """The file's name, for messages."""
        return self.source.name

    @property
    def is_adapter(self) -> bool:
        return self.kind == "t2i_adapter"


def load_control_model(
    path: Path, base: DiffusionModel | None = None, dtype: torch.dtype = torch.float32
) -> ControlModel:
    """Load the ControlNet or T2I-Adapter at ``path`` in ``dtype``. ``base`` is the model a
    difference ControlNet is added to (without it, such a file is refused)."""
    path = Path(path)
    config_file = path.parent / "config.json"
    tensors = read_state_dict(path)
    if config_file.is_file() and path.stem.startswith("diffusion_pytorch_model"):
        return _load_diffusers_folder(path, config_file, tensors, dtype)
    if control_lora.MARKER in tensors:
        weights = control_lora.split_control_lora(path, tensors)
        weights = {k: v.to(dtype) if v.is_floating_point() else v for k, v in weights.items()}
        return ControlModel(None, "controlnet", ModelFamily.SDXL, path, lora=weights)
    ldm = _original_controlnet(tensors)
    if ldm is not None:
        return _load_original_controlnet(path, ldm, DIFFERENCE_MARKER in tensors, base, dtype)
    if layouts.HINT_ENCODER + "conv_in.weight" in tensors:
        return _load_diffusers_controlnet(path, tensors, dtype)
    if "conv_in.weight" in tensors or "body.0.out_conv.weight" in tensors:
        return _load_adapter(path, tensors, dtype)
    if "adapter.conv_in.weight" in tensors or "adapter.body.0.out_conv.weight" in tensors:
        return _load_adapter(path, layouts.diffusers_adapter_as_original(tensors), dtype)
    raise ModelLoadError(path, _not_a_control_reason(tensors), _REMEDY)


def _not_a_control_reason(tensors: Mapping[str, torch.Tensor]) -> str:
    keys = list(tensors)
    if any(k.startswith("model.diffusion_model.") for k in keys):
        return "is a Stable Diffusion checkpoint, not a ControlNet (put it in checkpoints)."
    if any(".lora" in k or k.startswith("lora_") for k in keys):
        return "is a LoRA, not a ControlNet (put it in loras)."
    if any(k.startswith("backbone.") for k in keys):
        return "is a T2I style adapter, which LatentLoom does not load as a ControlNet."
    return "is neither a ControlNet nor a T2I-Adapter LatentLoom recognises."


def _original_controlnet(tensors: Mapping[str, torch.Tensor]) -> dict | None:
    """The tensors of an original-layout ControlNet without their prefix, or None."""
    prefix = layouts.LDM_CONTROL_PREFIX
    if any(k.startswith(prefix + "input_hint_block.") for k in tensors):
        return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
    if "input_hint_block.0.weight" in tensors:
        return {k: v for k, v in tensors.items() if k != DIFFERENCE_MARKER}
    return None


def _family(config: Mapping[str, Any]) -> ModelFamily:
    if config.get("addition_embed_type") == "text_time":
        return ModelFamily.SDXL
    return ModelFamily.SD2 if config.get("use_linear_projection") else ModelFamily.SD1


def _controlnet_config(path: Path, ldm: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    linear = any(k.endswith(".proj_in.weight") and v.ndim == 2 for k, v in ldm.items())
    base = "sdxl" if "label_emb.0.0.weight" in ldm else "sd2" if linear else "sd15"
    try:
        return layouts.controlnet_config_from_ldm(ldm, load_component_config(CONFIG_FOLDER, base))
    except (KeyError, IndexError, StopIteration, ValueError) as exc:
        raise ModelLoadError(
            path,
            f"has a ControlNet whose layout LatentLoom does not recognise ({exc}).",
            _REMEDY,
        ) from exc


def _load_original_controlnet(
    path: Path,
    ldm: dict[str, torch.Tensor],
    difference: bool,
    base: DiffusionModel | None,
    dtype: torch.dtype,
) -> ControlModel:
    from diffusers import ControlNetModel

    config = _controlnet_config(path, ldm)
    with torch.device("meta"):
        names = list(ControlNetModel.from_config(config).state_dict())
    renamed: dict[str, torch.Tensor] = {}
    missing = []
    for name in names:
        original = layouts.controlnet_name_to_ldm(name, config)
        if original in ldm:
            renamed[name] = ldm.pop(original)
        else:
            missing.append(original)
    if missing or ldm:
        problem = (
            f"lacks {', '.join(missing[:3])}" if missing else f"has {', '.join(list(ldm)[:3])}"
        )
        raise ModelLoadError(
            path,
            f"is a ControlNet whose tensors do not match the architecture read from it "
            f"({problem}{'…' if len(missing or ldm) > 3 else ''}).",
            "The file is damaged or a variant LatentLoom does not support.",
        )
    if difference:
        renamed = _add_base(path, renamed, base)
    return _finish(path, ControlNetModel, config, renamed, dtype, "controlnet", _family(config))


def _add_base(
    path: Path, tensors: dict[str, torch.Tensor], base: DiffusionModel | None
) -> dict[str, torch.Tensor]:
    """A difference ControlNet's tensors plus the base UNet's of the same names (the UNet half
    of a ControlNet uses the UNet's own names in diffusers)."""
    if base is None:
        raise ModelLoadError(
            path,
            "is a difference ControlNet: it stores its weights minus those of the model it "
            "was trained from.",
            "Load it with Load ControlNet Model (diff), connected to that model.",
        )
    unet = base.unet.state_dict()
    added = {}
    for name, tensor in tensors.items():
        own = unet.get(name)
        if own is not None and own.shape != tensor.shape:
            raise ModelLoadError(
                path,
                f"is a difference ControlNet for another architecture ({name} is "
                f"{tuple(tensor.shape)} here, {tuple(own.shape)} in the model).",
                "Connect the model this ControlNet was made for.",
            )
        added[name] = tensor if own is None else tensor.float() + own.to("cpu", torch.float32)
    return added


def _load_diffusers_controlnet(
    path: Path, tensors: Mapping[str, torch.Tensor], dtype: torch.dtype
) -> ControlModel:
    from diffusers import ControlNetModel

    config = _controlnet_config(path, layouts.diffusers_controlnet_as_ldm(tensors))
    return _finish(path, ControlNetModel, config, tensors, dtype, "controlnet", _family(config))


def _load_adapter(
    path: Path, tensors: Mapping[str, torch.Tensor], dtype: torch.dtype
) -> ControlModel:
    from diffusers import T2IAdapter

    unsupported = [k for k in tensors if ".down_opt.op." in k or ".skep." in k]
    if unsupported:
        raise ModelLoadError(
            path,
            f"is a T2I-Adapter with convolution downsampling or skip convolutions "
            f"({unsupported[0]}), a variant diffusers' T2IAdapter cannot run.",
            "Use one of TencentARC's released adapters (t2iadapter_*_sd14v1, *_sd15v2, SDXL).",
        )
    bases = {kind: load_component_config(CONFIG_FOLDER, f) for kind, f in _ADAPTER_CONFIGS.items()}
    try:
        config = layouts.adapter_config_from_original(tensors, bases)
    except (KeyError, IndexError, ValueError) as exc:
        raise ModelLoadError(
            path, f"has a T2I-Adapter whose layout LatentLoom does not recognise ({exc}).", _REMEDY
        ) from exc
    with torch.device("meta"):
        names = list(T2IAdapter.from_config(config).state_dict())
    renamed = {}
    for name in names:
        original = layouts.adapter_name_to_original(name, config)
        if original not in tensors:
            raise ModelLoadError(
                path,
                f"is a T2I-Adapter that lacks {original} for the architecture read from it.",
                "The file is damaged or a variant LatentLoom does not support.",
            )
        renamed[name] = tensors[original]
    family = ModelFamily.SDXL if config["adapter_type"] == "full_adapter_xl" else None
    return _finish(path, T2IAdapter, config, renamed, dtype, "t2i_adapter", family)


def _load_diffusers_folder(
    path: Path, config_file: Path, tensors: Mapping[str, torch.Tensor], dtype: torch.dtype
) -> ControlModel:
    from diffusers import ControlNetModel, T2IAdapter

    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(config_file, f"is not valid JSON ({exc}).") from exc
    kinds = {
        "ControlNetModel": (ControlNetModel, "controlnet"),
        "T2IAdapter": (T2IAdapter, "t2i_adapter"),
    }
    if config.get("_class_name") not in kinds:
        raise ModelLoadError(
            config_file,
            f"describes a {config.get('_class_name')!r}, not a ControlNetModel or T2IAdapter.",
            _REMEDY,
        )
    model_class, kind = kinds[config["_class_name"]]
    family = _family(config) if kind == "controlnet" else None
    if kind == "t2i_adapter" and config.get("adapter_type") == "full_adapter_xl":
        family = ModelFamily.SDXL
    return _finish(path, model_class, config, tensors, dtype, kind, family)


def _finish(
    path: Path,
    model_class: Any,
    config: Mapping[str, Any],
    tensors: Mapping[str, torch.Tensor],
    dtype: torch.dtype,
    kind: str,
    family: ModelFamily | None,
) -> ControlModel:
    what = "ControlNet" if kind == "controlnet" else "T2I-Adapter"
    module = _build(lambda: model_class.from_config(dict(config)), tensors, path, what, dtype)
    return ControlModel(module, kind, family, path)
