"""How ComfyUI's widget values translate into LatentLoom params and back."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from core.graph import types as t
from core.graph.spec import NodeSpec, WidgetInput
from nodes.interop.comfyui.type_mapping import TypeMapping
from nodes.interop.report import ReportBuilder

#: The values ComfyUI's frontend writes after a seed widget.
CONTROL_MODES = ("fixed", "randomize", "increment", "decrement")

# --- values --------------------------------------------------------------------------------


def _enable_to_bool(value: Any) -> Any:
    return {"enable": True, "disable": False}.get(value, value) if isinstance(value, str) else value


def _bool_to_enable(value: Any) -> Any:
    return ("enable" if value else "disable") if isinstance(value, bool) else value


def _model_name(value: Any) -> Any:
    """Windows ComfyUI installs write sub-folders with backslashes; our names use ``/``."""
    return value.replace("\\", "/") if isinstance(value, str) else value


def _identity(value: Any) -> Any:
    return value


def _sampler_name(value: Any) -> Any:
    """ComfyUI's first releases stored k-diffusion's function names (``sample_dpmpp_2m``);
    the sampler list has only the short names, so the old ones are read as those."""
    from nodes.sampling import SAMPLER_NAMES

    if isinstance(value, str) and value.startswith("sample_"):
        short = value.removeprefix("sample_")
        if short in SAMPLER_NAMES:
            return short
    return value


#: (our type, our param) → (ComfyUI value → ours, ours → ComfyUI value).
VALUE_CONVERSIONS: dict[tuple[str, str], tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
    ("KSamplerAdvanced", "add_noise"): (_enable_to_bool, _bool_to_enable),
    ("KSamplerAdvanced", "return_with_leftover_noise"): (_enable_to_bool, _bool_to_enable),
    ("LoadCheckpoint", "ckpt_name"): (_model_name, _identity),
    ("LoadVAE", "vae_name"): (_model_name, _identity),
    ("LoadLoRA", "lora_name"): (_model_name, _identity),
    ("LoraLoaderModelOnly", "lora_name"): (_model_name, _identity),
    ("CLIPVisionLoader", "clip_name"): (_model_name, _identity),
    ("unCLIPCheckpointLoader", "ckpt_name"): (_model_name, _identity),
    ("KSampler", "sampler_name"): (_sampler_name, _identity),
    ("KSamplerAdvanced", "sampler_name"): (_sampler_name, _identity),
    ("KSamplerSelect", "sampler_name"): (_sampler_name, _identity),
}


def coerce(widget: WidgetInput, value: Any) -> Any:
    """``value`` in the Python type ``widget`` expects where the file used a near one
    (512.0 for an INT, "true" for a BOOLEAN); anything else is left for validation to report."""
    if widget.type == t.INT and isinstance(value, float) and value.is_integer():
        return int(value)
    if widget.type == t.FLOAT and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if widget.type == t.BOOLEAN and isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "enable", "enabled", "yes"):
            return True
        if lowered in ("false", "disable", "disabled", "no"):
            return False
    return value


def to_ours(our_type: str, widget: WidgetInput, value: Any) -> Any:
    convert = VALUE_CONVERSIONS.get((our_type, widget.name), (_identity, _identity))[0]
    return coerce(widget, convert(value))


def to_comfy(our_type: str, param: str, value: Any) -> Any:
    return VALUE_CONVERSIONS.get((our_type, param), (_identity, _identity))[1](value)


def widget_of(spec: NodeSpec, name: str | None) -> WidgetInput | None:
    inp = spec.input(name) if name else None
    return inp if isinstance(inp, WidgetInput) else None


def widget_values_to_params(
    mapping: TypeMapping,
    spec: NodeSpec,
    values: Any,
    report: ReportBuilder,
    label: str,
) -> tuple[dict[str, Any], dict[str, str]]:
    """ComfyUI ``widgets_values`` (a list in ComfyUI's order, or a dict by name) as our params,
    plus the control_after_generate mode of each seed param."""
    params: dict[str, Any] = {}
    control: dict[str, str] = {}

    def put(comfy_name: str, value: Any) -> None:
        target = mapping.param_for(comfy_name)
        if target is None:
            return
        widget = widget_of(spec, target)
        if widget is None:
            report.warn(f"{label}: its value {comfy_name}={value!r} has no place here; ignored")
            return
        params[target] = to_ours(
            mapping.our_type, widget, mapping.imported_value(comfy_name, value)
        )
        if not value_fits(widget, params[target]):
            report.misfit(f"{label}: {target}={params[target]!r}")

    if isinstance(values, dict):
        for name, value in values.items():
            if name == "control_after_generate":
                seeds = [mapping.param_for(s) for s in mapping.widgets if s in mapping.seeds]
                mode = control_mode(value)
                if seeds and seeds[0] and mode is not None:
                    control[seeds[0]] = mode
            elif name in mapping.widgets:
                put(name, value)
            else:
                report.warn(f"{label}: unknown widget {name!r} ignored")
        return params, control
    if values is None:
        return params, control
    if not isinstance(values, list):
        report.warn(f"{label}: widgets_values should be a list, found {values!r}; defaults used")
        return params, control
    position = 0
    # How many values the list holds beyond one per widget: at most that many control values.
    room = len(values) - len(mapping.widgets)
    for index, name in enumerate(mapping.widgets):
        if position >= len(values):
            break
        put(name, values[position])
        position += 1
        if name not in mapping.seeds or position >= len(values) or room <= 0:
            continue
        # The frontend writes the seed's after-run mode right after it: a word today, a
        # "randomize" checkbox (true/false) before mid-2023, nothing in some files.
        following = widget_of(spec, _param_at(mapping, index + 1))
        mode = control_mode(values[position], following)
        if mode is not None:
            target = mapping.param_for(name)
            if target is not None:
                control[target] = mode
            position += 1
            room -= 1
    return params, control


def _param_at(mapping: TypeMapping, index: int) -> str | None:
    """Our param for ComfyUI's widget at ``index`` (None past the end or when skipped)."""
    return mapping.param_for(mapping.widgets[index]) if index < len(mapping.widgets) else None


def control_mode(value: Any, following: WidgetInput | None = None) -> str | None:
    """The after-run mode a control_after_generate value stands for, or None when ``value``
    is not one (it is then the next widget's value). ``following`` is the widget after the
    seed: a boolean before a BOOLEAN widget is that widget's value, not an old checkbox."""
    if isinstance(value, str) and value.strip().lower() in CONTROL_MODES:
        return value.strip().lower()
    if isinstance(value, bool) and (following is None or following.type != t.BOOLEAN):
        return "randomize" if value else "fixed"
    return None


def value_fits(widget: WidgetInput, value: Any) -> bool:
    """Whether ``value`` is of the kind ``widget`` holds (a number for a number…); ranges and
    choices are left to validation. A misfit means the values were read out of place."""
    if widget.type == t.BOOLEAN:
        return isinstance(value, bool)
    if widget.type in (t.INT, t.FLOAT):
        allowed = (int,) if widget.type == t.INT else (int, float)
        return isinstance(value, allowed) and not isinstance(value, bool)
    return isinstance(value, str)


def control_ui(control: Mapping[str, str]) -> dict[str, Any]:
    return {"control_after_run": dict(control)} if control else {}


def custom_title(raw: Any, mapping: TypeMapping | None, spec: NodeSpec | None, type_id: str) -> Any:
    """A custom title, or None when ``raw`` is just the type's display name."""
    if not isinstance(raw, str) or not raw.strip():
        return None
    defaults = {type_id}
    if mapping is not None:
        defaults |= {mapping.comfy_title, mapping.comfy_type}
    if spec is not None:
        defaults.add(spec.title)
    return None if raw in defaults else raw
