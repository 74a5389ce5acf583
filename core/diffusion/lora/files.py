"""Reading LoRA-family files: key names → layers by (component, module name as written).

Recognised key names:

* kohya / A1111 / LyCORIS: ``lora_unet_<module>``, ``lora_te_<module>`` (SD 1.x/2.x),
  ``lora_te1_`` and ``lora_te2_`` (SDXL), UNet modules named the diffusers way or the LDM way,
  dots written as underscores. Parts: ``lora_down``/``lora_up`` (+ ``lora_mid``) for LoRA and
  LoCon, ``hada_w1_a``… (+ ``hada_t1``/``hada_t2``) for LoHa, ``lokr_w1`` or
  ``lokr_w1_a``/``lokr_w1_b``, ``lokr_w2`` or ``lokr_w2_a``/``lokr_w2_b`` (+ ``lokr_t2``) for
  LoKr, and ``alpha``. α defaults to the rank, which is read from the factors' shapes.
* diffusers / PEFT: ``unet.<module>``, ``text_encoder.<module>``, ``text_encoder_2.<module>``
  (or PEFT's bare ``base_model.model.<module>`` for a UNet) with ``.lora_A.weight``/
  ``.lora_B.weight``, ``.lora.down.weight``/``.lora.up.weight`` or the older
  attention-processor names (``.processor.to_q_lora.down.weight``).

Keys that are none of these (embeddings bundled with a LoRA, full-weight ``diff`` layers, IA³,
GLoRA) are left out of the layers and listed in ``LoraWeights.ignored``; a file with nothing
usable at all is refused. DoRA layers (``dora_scale``) are refused: applying them without their
magnitude rescaling would silently give another result.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from core.diffusion.checkpoint_io import read_state_dict
from core.diffusion.errors import ModelLoadError
from core.diffusion.lora.layers import Layer, LohaLayer, LokrLayer, LoraLayer

log = logging.getLogger(__name__)

_KOHYA_PREFIXES = {
    "lora_unet_": "unet",
    "lora_te1_": "te1",
    "lora_te2_": "te2",
    "lora_te_": "te1",
}
#: kohya/LyCORIS part (after the module name) → the factor it holds.
_KOHYA_PARTS = {
    "lora_down.weight": "down",
    "lora_up.weight": "up",
    "lora_mid.weight": "mid",
    "alpha": "alpha",
    "dora_scale": "dora_scale",
    **{f"hada_{n}": f"hada_{n}" for n in ("w1_a", "w1_b", "w2_a", "w2_b", "t1", "t2")},
    **{f"lokr_{n}": f"lokr_{n}" for n in ("w1", "w1_a", "w1_b", "w2", "w2_a", "w2_b", "t2")},
}
_PROCESSOR = re.compile(r"\.processor\.(to_q|to_k|to_v|to_out)_lora$")
_DIFFUSERS_PARTS = {
    ".lora_A.weight": "down",
    ".lora_B.weight": "up",
    ".lora.down.weight": "down",
    ".lora.up.weight": "up",
    ".lora_down.weight": "down",
    ".lora_up.weight": "up",
    ".down.weight": "down",
    ".up.weight": "up",
    ".alpha": "alpha",
    ".dora_scale": "dora_scale",
    ".lora_magnitude_vector": "dora_scale",
}
_DIFFUSERS_COMPONENTS = {"unet.": "unet", "text_encoder.": "te1", "text_encoder_2.": "te2"}


@dataclass(frozen=True, eq=False)
class LoraWeights:
    """A parsed LoRA file: layers by (component, module name as written in the file), and
    the keys it holds that are no layer LatentLoom can apply."""

    source: Path
    layers: Mapping[tuple[str, str], Layer]
    ignored: tuple[str, ...] = ()


def load_lora(path: str | Path) -> LoraWeights:
    """Read and parse a LoRA file (``.safetensors`` or a weights-only pickle)."""
    path = Path(path)
    weights = parse_lora(read_state_dict(path), path)
    notice = ignored_notice(weights)
    if notice is not None:
        log.warning("%s", notice)
    return weights


def ignored_notice(weights: LoraWeights) -> str | None:
    """One line naming the keys of ``weights`` that were left out, or None if none were."""
    if not weights.ignored:
        return None
    count = len(weights.ignored)
    shown = ", ".join(repr(key) for key in weights.ignored[:3])
    more = f" and {count - 3} more" if count > 3 else ""
    return (
        f"{weights.source.name}: {count} {'key is' if count == 1 else 'keys are'} no LoRA, "
        f"LoHa or LoKr layer and {'was' if count == 1 else 'were'} left out ({shown}{more})"
    )


def parse_lora(state_dict: Mapping[str, torch.Tensor], path: Path) -> LoraWeights:
    """Group a LoRA state dict into layers; raise if nothing in it is a LoRA layer."""
    parts: dict[tuple[str, str], dict[str, torch.Tensor]] = defaultdict(dict)
    keys: dict[tuple[str, str], list[str]] = defaultdict(list)
    ignored: list[str] = []
    for key, tensor in state_dict.items():
        parsed = _parse_kohya_key(key) or _parse_diffusers_key(key)
        if parsed is None:
            ignored.append(key)
            continue
        component, module, part = parsed
        parts[(component, module)][part] = tensor
        keys[(component, module)].append(key)
    layers: dict[tuple[str, str], Layer] = {}
    dora = []
    for target, found in parts.items():
        if "dora_scale" in found:
            dora.append(target[1])
            continue
        layer = _layer(found)
        if layer is None:
            ignored.extend(keys[target])
        else:
            layers[target] = layer
    if dora:
        raise ModelLoadError(
            path,
            f"is a DoRA (weight-decomposed LoRA: 'dora_scale' on {len(dora)} layers, such as "
            f"{dora[0]!r}), which LatentLoom cannot apply.",
            "Use a plain LoRA, LoHa or LoKr version of it.",
        )
    if not layers:
        raise ModelLoadError(
            path,
            "holds no LoRA layers (expected lora_unet_*/lora_te_* keys with lora_down/lora_up, "
            "LoHa hada_* or LoKr lokr_* factors, or diffusers unet.*/text_encoder.* keys with "
            "lora_A/lora_B).",
            "Check that this file is a LoRA.",
        )
    return LoraWeights(path, layers, tuple(sorted(ignored)))


def _layer(found: Mapping[str, torch.Tensor]) -> Layer | None:
    """The layer a module's factors make, or None when they make none."""
    alpha = float(found["alpha"]) if "alpha" in found else None
    if "down" in found and "up" in found:
        rank = found["down"].shape[0]
        return LoraLayer(
            found["down"], found["up"], rank if alpha is None else alpha, found.get("mid")
        )
    hada = ("hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b")
    if all(name in found for name in hada):
        rank = found["hada_w1_b"].shape[0]
        return LohaLayer(
            *(found[name] for name in hada),
            alpha=rank if alpha is None else alpha,
            t1=found.get("hada_t1"),
            t2=found.get("hada_t2"),
        )
    has_w1 = "lokr_w1" in found or ("lokr_w1_a" in found and "lokr_w1_b" in found)
    has_w2 = "lokr_w2" in found or ("lokr_w2_a" in found and "lokr_w2_b" in found)
    if has_w1 and has_w2:
        return LokrLayer(
            w1=found.get("lokr_w1"),
            w1a=None if "lokr_w1" in found else found["lokr_w1_a"],
            w1b=None if "lokr_w1" in found else found["lokr_w1_b"],
            w2=found.get("lokr_w2"),
            w2a=None if "lokr_w2" in found else found["lokr_w2_a"],
            w2b=None if "lokr_w2" in found else found["lokr_w2_b"],
            t2=None if "lokr_w2" in found else found.get("lokr_t2"),
            alpha=alpha,
        )
    return None


def _parse_kohya_key(key: str) -> tuple[str, str, str] | None:
    prefix = next((p for p in _KOHYA_PREFIXES if key.startswith(p)), None)
    if prefix is None:
        return None
    module, _, part = key[len(prefix) :].partition(".")
    if not module or part not in _KOHYA_PARTS:
        return None
    return _KOHYA_PREFIXES[prefix], module, _KOHYA_PARTS[part]


def _parse_diffusers_key(key: str) -> tuple[str, str, str] | None:
    if key.startswith("base_model.model."):
        key = key.removeprefix("base_model.model.")
        if not key.startswith(tuple(_DIFFUSERS_COMPONENTS)):
            # A PEFT adapter of the UNet alone names its modules from the UNet's root.
            key = ("text_encoder." if key.startswith("text_model.") else "unet.") + key
    component = next((c for p, c in _DIFFUSERS_COMPONENTS.items() if key.startswith(p)), None)
    if component is None:
        return None
    rest = key.split(".", 1)[1]
    for suffix, part in _DIFFUSERS_PARTS.items():
        if rest.endswith(suffix):
            module = rest[: -len(suffix)]
            module = _PROCESSOR.sub(
                lambda m: "." + (m.group(1) + ".0" if m.group(1) == "to_out" else m.group(1)),
                module,
            )
            return component, module, part
    return None
