"""The table of ComfyUI node types LatentLoom maps, and how their values translate.

ComfyUI stores widget values by position (``widgets_values``), in the order its node class
declares its widgets, with a frontend-only ``control_after_generate`` value after each seed.
``MAPPINGS`` is the explicit table, per ComfyUI node type, of that order and of the LatentLoom
type and param names each position lands in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from core.graph import types as t
from core.graph.spec import REROUTE, NodeRegistry, NodeSpec, WidgetInput
from nodes.interop.report import ReportBuilder

#: The values ComfyUI's frontend writes after a seed widget.
CONTROL_MODES = ("fixed", "randomize", "increment", "decrement")
#: ComfyUI's mode numbers: 0 always, 2 never (muted), 4 bypass.
MODE_MUTED, MODE_BYPASSED = 2, 4
#: The key under which an API export keeps LatentLoom-only params (ComfyUI ignores ``_meta``).
META_PARAMS = "latentloom_params"

# --- the mapping table ---------------------------------------------------------------------


@dataclass(frozen=True)
class TypeMapping:
    """One ComfyUI node type and the LatentLoom type it becomes.

    ``widgets`` are ComfyUI's widget names in its declaration order (the order of
    ``widgets_values``, control values left out). ``rename`` maps a ComfyUI input or widget
    name to ours where they differ; ``None`` means ComfyUI's widget has no counterpart and is
    skipped. ``seeds`` are the widgets ComfyUI follows with a control_after_generate value.
    Output slots map by index: every mapped type has ComfyUI's output order, and
    ``outputs`` names the ComfyUI ones where ours go on beyond them (the sampler's HISTORY).
    """

    comfy_type: str
    our_type: str
    widgets: tuple[str, ...] = ()
    rename: Mapping[str, str | None] = field(default_factory=dict)
    seeds: frozenset[str] = frozenset()
    #: ComfyUI's outputs where ours are more (empty: the same as ours).
    outputs: tuple[str, ...] = ()
    #: ComfyUI's display name: a node titled so has no custom title.
    comfy_title: str = ""
    #: Whether exporting ``our_type`` uses this entry (one entry per LatentLoom type does).
    export: bool = True

    def param_for(self, comfy_name: str) -> str | None:
        """Our input or param name for ComfyUI's input or widget ``comfy_name``."""
        return self.rename.get(comfy_name, comfy_name)

    def comfy_name_for(self, our_name: str) -> str:
        """ComfyUI's input or widget name for our ``our_name``."""
        for comfy, ours in self.rename.items():
            if ours == our_name:
                return comfy
        return our_name


def _map(
    comfy_type: str,
    our_type: str | None = None,
    widgets: tuple[str, ...] = (),
    *,
    rename: Mapping[str, str | None] | None = None,
    seeds: Iterable[str] = (),
    outputs: tuple[str, ...] = (),
    title: str = "",
    export: bool = True,
) -> TypeMapping:
    return TypeMapping(
        comfy_type,
        our_type or comfy_type,
        widgets,
        dict(rename or {}),
        frozenset(seeds),
        outputs,
        title,
        export,
    )


_UPLOAD = {"upload": None}

MAPPINGS: tuple[TypeMapping, ...] = (
    # loaders
    _map("CheckpointLoaderSimple", "LoadCheckpoint", ("ckpt_name",), title="Load Checkpoint"),
    _map(
        "CheckpointLoader",
        "LoadCheckpoint",
        ("config_name", "ckpt_name"),
        rename={"config_name": None},
        title="Load Checkpoint With Config (DEPRECATED)",
        export=False,
    ),
    _map("VAELoader", "LoadVAE", ("vae_name",), title="Load VAE"),
    _map(
        "LoraLoader",
        "LoadLoRA",
        ("lora_name", "strength_model", "strength_clip"),
        title="Load LoRA",
    ),
    _map(
        "LoraLoaderModelOnly",
        widgets=("lora_name", "strength_model"),
        title="LoraLoaderModelOnly",
    ),
    _map("CLIPSetLastLayer", widgets=("stop_at_clip_layer",), title="CLIP Set Last Layer"),
    # conditioning
    _map("CLIPTextEncode", widgets=("text",), title="CLIP Text Encode (Prompt)"),
    _map("ConditioningCombine", title="Conditioning (Combine)"),
    _map(
        "ConditioningAverage",
        widgets=("conditioning_to_strength",),
        title="Conditioning (Average)",
    ),
    _map("ConditioningConcat", title="Conditioning (Concat)"),
    _map(
        "ConditioningSetArea",
        widgets=("width", "height", "x", "y", "strength"),
        title="Conditioning (Set Area)",
    ),
    _map(
        "ConditioningSetMask",
        widgets=("strength", "set_cond_area"),
        title="Conditioning (Set Mask)",
    ),
    _map("ConditioningZeroOut", title="ConditioningZeroOut"),
    _map(
        "ConditioningSetTimestepRange",
        widgets=("start", "end"),
        title="ConditioningSetTimestepRange",
    ),
    # sampling
    _map(
        "KSampler",
        widgets=("seed", "steps", "cfg", "sampler_name", "scheduler", "denoise"),
        seeds=("seed",),
        outputs=("LATENT",),
        title="KSampler",
    ),
    _map(
        "KSamplerAdvanced",
        widgets=(
            "add_noise",
            "noise_seed",
            "steps",
            "cfg",
            "sampler_name",
            "scheduler",
            "start_at_step",
            "end_at_step",
            "return_with_leftover_noise",
        ),
        seeds=("noise_seed",),
        outputs=("LATENT",),
        title="KSampler (Advanced)",
    ),
    # latents
    _map("EmptyLatentImage", widgets=("width", "height", "batch_size"), title="Empty Latent Image"),
    _map("VAEDecode", title="VAE Decode"),
    _map(
        "VAEDecodeTiled",
        widgets=("tile_size", "overlap", "temporal_size", "temporal_overlap"),
        rename={"temporal_size": None, "temporal_overlap": None},
        title="VAE Decode (Tiled)",
    ),
    _map("VAEEncode", title="VAE Encode"),
    _map("VAEEncodeForInpaint", widgets=("grow_mask_by",), title="VAE Encode (for Inpainting)"),
    _map("SetLatentNoiseMask", title="Set Latent Noise Mask"),
    _map(
        "LatentUpscale",
        widgets=("upscale_method", "width", "height", "crop"),
        title="Upscale Latent",
    ),
    _map("LatentUpscaleBy", widgets=("upscale_method", "scale_by"), title="Upscale Latent By"),
    _map("LatentBatch", title="Latent Batch"),
    _map("LatentFromBatch", widgets=("batch_index", "length"), title="Latent From Batch"),
    _map(
        "LatentBatchSeedBehavior",
        widgets=("seed_behavior",),
        title="LatentBatchSeedBehavior",
    ),
    _map("RepeatLatentBatch", widgets=("amount",), title="Repeat Latent Batch"),
    _map("LatentInterpolate", widgets=("ratio",), title="LatentInterpolate"),
    # images
    _map("LoadImage", widgets=("image", "upload"), rename=_UPLOAD, title="Load Image"),
    _map("SaveImage", widgets=("filename_prefix",), title="Save Image"),
    _map("PreviewImage", title="Preview Image"),
    _map(
        "ImageScale",
        widgets=("upscale_method", "width", "height", "crop"),
        title="Upscale Image",
    ),
    _map("ImageScaleBy", widgets=("upscale_method", "scale_by"), title="Upscale Image By"),
    _map("UpscaleModelLoader", widgets=("model_name",), title="Load Upscale Model"),
    _map("ImageUpscaleWithModel", title="Upscale Image (using Model)"),
    # image prompts
    _map("CLIPVisionLoader", widgets=("clip_name",), title="Load CLIP Vision"),
    _map("CLIPVisionEncode", widgets=("crop",), title="CLIP Vision Encode"),
    _map("unCLIPCheckpointLoader", widgets=("ckpt_name",), title="unCLIPCheckpointLoader"),
    _map(
        "unCLIPConditioning",
        widgets=("strength", "noise_augmentation"),
        title="unCLIPConditioning",
    ),
    _map("ImageInvert", title="Invert Image"),
    # ControlNets and T2I-Adapters (nodes.controlnet)
    _map("ControlNetLoader", widgets=("control_net_name",), title="Load ControlNet Model"),
    _map(
        "DiffControlNetLoader", widgets=("control_net_name",), title="Load ControlNet Model (diff)"
    ),
    _map("T2IAdapterLoader", widgets=("t2i_adapter_name",), title="Load T2I-Adapter Model"),
    _map("ControlNetApply", widgets=("strength",), title="Apply ControlNet"),
    _map(
        "ControlNetApplyAdvanced",
        widgets=("strength", "start_percent", "end_percent"),
        title="Apply ControlNet (Advanced)",
    ),
    _map("Canny", widgets=("low_threshold", "high_threshold"), title="Canny"),
    # masks
    _map(
        "LoadImageMask",
        widgets=("image", "channel", "upload"),
        rename=_UPLOAD,
        title="Load Image (as Mask)",
    ),
    _map("SolidMask", widgets=("value", "width", "height"), title="SolidMask"),
    _map("InvertMask", title="InvertMask"),
    _map("GrowMask", widgets=("expand", "tapered_corners"), title="GrowMask"),
    _map("MaskComposite", widgets=("x", "y", "operation"), title="MaskComposite"),
    _map("ImageToMask", widgets=("channel",), title="Convert Image to Mask"),
    _map("MaskToImage", title="Convert Mask to Image"),
    _map("CropMask", widgets=("x", "y", "width", "height"), title="CropMask"),
    # primitives and text
    _map(
        "StringConcatenate",
        "TextJoin",
        ("string_a", "string_b", "delimiter"),
        rename={"string_a": "a", "string_b": "b", "delimiter": "separator"},
        title="Concatenate",
    ),
    _map("PrimitiveInt", "Int", ("value",), seeds=("value",), title="Int"),
    _map("PrimitiveFloat", "Float", ("value",), title="Float"),
    _map("PrimitiveString", "String", ("value",), title="String"),
    _map(
        "PrimitiveStringMultiline",
        "String",
        ("value",),
        title="String (Multiline)",
        export=False,
    ),
    _map("PrimitiveBoolean", "Boolean", ("value",), title="Boolean"),
    # ComfyUI core nodes that map by name once this install has a node of that name (with
    # these widgets): the lookup below skips an entry whose type the registry lacks.
    _map("LatentComposite", widgets=("x", "y", "feather"), title="Latent Composite"),
    _map(
        "LatentCompositeMasked", widgets=("x", "y", "resize_source"), title="LatentCompositeMasked"
    ),
    _map("LatentFlip", widgets=("flip_method",), title="Flip Latent"),
    _map("LatentRotate", widgets=("rotation",), title="Rotate Latent"),
    _map("LatentCrop", widgets=("width", "height", "x", "y"), title="Crop Latent"),
    _map("EmptyImage", widgets=("width", "height", "batch_size", "color"), title="EmptyImage"),
    _map("ImageBatch", title="Batch Images"),
    _map("ImageCrop", widgets=("width", "height", "x", "y"), title="Image Crop"),
    _map(
        "ImagePadForOutpaint",
        widgets=("left", "top", "right", "bottom", "feathering"),
        title="Pad Image for Outpainting",
    ),
    _map("ImageBlend", widgets=("blend_factor", "blend_mode"), title="Image Blend"),
    _map("ImageBlur", widgets=("blur_radius", "sigma"), title="Image Blur"),
    _map("ImageSharpen", widgets=("sharpen_radius", "sigma", "alpha"), title="Image Sharpen"),
    _map("FeatherMask", widgets=("left", "top", "right", "bottom"), title="FeatherMask"),
    _map("ThresholdMask", widgets=("value",), title="ThresholdMask"),
    _map(
        "CLIPTextEncodeSDXL",
        widgets=(
            "width",
            "height",
            "crop_w",
            "crop_h",
            "target_width",
            "target_height",
            "text_g",
            "text_l",
        ),
        title="CLIPTextEncodeSDXL",
    ),
    _map(
        "CLIPTextEncodeSDXLRefiner",
        widgets=("ascore", "width", "height", "text"),
        title="CLIPTextEncodeSDXLRefiner",
    ),
    _map("ModelMergeSimple", widgets=("ratio",), title="ModelMergeSimple"),
    _map("CLIPMergeSimple", widgets=("ratio",), title="CLIPMergeSimple"),
    # custom sampling (nodes.custom_sampling, nodes.sigmas)
    _map("KSamplerSelect", widgets=("sampler_name",), title="KSamplerSelect"),
    _map("SamplerEulerAncestral", widgets=("eta", "s_noise"), title="SamplerEulerAncestral"),
    _map(
        "SamplerDPMPP_2S_Ancestral", widgets=("eta", "s_noise"), title="SamplerDPMPP_2S_Ancestral"
    ),
    _map("SamplerLMS", widgets=("order",), title="SamplerLMS"),
    _map(
        "SamplerDPMPP_2M_SDE",
        widgets=("solver_type", "eta", "s_noise", "noise_device"),
        title="SamplerDPMPP_2M_SDE",
    ),
    _map(
        "SamplerDPMPP_3M_SDE",
        widgets=("eta", "s_noise", "noise_device"),
        title="SamplerDPMPP_3M_SDE",
    ),
    _map(
        "SamplerDPMPP_SDE",
        widgets=("eta", "s_noise", "r", "noise_device"),
        title="SamplerDPMPP_SDE",
    ),
    _map("BasicScheduler", widgets=("scheduler", "steps", "denoise"), title="BasicScheduler"),
    _map(
        "KarrasScheduler",
        widgets=("steps", "sigma_max", "sigma_min", "rho"),
        title="KarrasScheduler",
    ),
    _map(
        "ExponentialScheduler",
        widgets=("steps", "sigma_max", "sigma_min"),
        title="ExponentialScheduler",
    ),
    _map(
        "PolyexponentialScheduler",
        widgets=("steps", "sigma_max", "sigma_min", "rho"),
        title="PolyexponentialScheduler",
    ),
    _map("VPScheduler", widgets=("steps", "beta_d", "beta_min", "eps_s"), title="VPScheduler"),
    _map("SDTurboScheduler", widgets=("steps", "denoise"), title="SDTurboScheduler"),
    _map(
        "BetaSamplingScheduler",
        widgets=("steps", "alpha", "beta"),
        title="BetaSamplingScheduler",
    ),
    _map("SplitSigmas", widgets=("step",), title="SplitSigmas"),
    _map("SplitSigmasDenoise", widgets=("denoise",), title="SplitSigmasDenoise"),
    _map("FlipSigmas", title="FlipSigmas"),
    _map("RandomNoise", widgets=("noise_seed",), seeds=("noise_seed",), title="RandomNoise"),
    _map("DisableNoise", title="DisableNoise"),
    _map("BasicGuider", title="BasicGuider"),
    _map("CFGGuider", widgets=("cfg",), title="CFGGuider"),
    _map(
        "DualCFGGuider",
        widgets=("cfg_conds", "cfg_cond2_negative", "style"),
        title="DualCFGGuider",
    ),
    _map(
        "SamplerCustom",
        widgets=("add_noise", "noise_seed", "cfg"),
        seeds=("noise_seed",),
        outputs=("output", "denoised_output"),
        title="SamplerCustom",
    ),
    _map(
        "SamplerCustomAdvanced",
        outputs=("output", "denoised_output"),
        title="SamplerCustomAdvanced",
    ),
    _map("AddNoise", title="AddNoise"),
)

BY_COMFY_TYPE: dict[str, TypeMapping] = {m.comfy_type: m for m in MAPPINGS}
BY_OUR_TYPE: dict[str, TypeMapping] = {m.our_type: m for m in MAPPINGS if m.export}


def normalised_type(type_id: str) -> str:
    """A node type name without stray whitespace: old ComfyUI registered
    ``"ConditioningAverage "`` with a trailing space, and files kept it."""
    return " ".join(type_id.split())


def mapping_for(type_id: str, registry: NodeRegistry) -> TypeMapping | None:
    """How a ComfyUI node type imports into ``registry``, or None when it does not.

    The table's entry when the registry has its type with every widget it names; else, when
    the registry has a node type of the same name, that type with its own widgets in its own
    order (ComfyUI's order for nodes written to match ComfyUI), so new nodes import without a
    table entry.
    """
    name = normalised_type(type_id)
    entry = BY_COMFY_TYPE.get(name)
    if entry is not None and entry.our_type in registry:
        spec = registry.get(entry.our_type)
        if all(
            widget_of(spec, entry.param_for(w)) is not None
            for w in entry.widgets
            if entry.param_for(w) is not None
        ):
            return entry
    if name in registry and name != REROUTE.type_id:
        spec = registry.get(name)
        return TypeMapping(
            name,
            name,
            tuple(w.name for w in spec.widgets),
            seeds=frozenset(w.name for w in spec.widgets if w.control_after_run),
            comfy_title=spec.title,
            export=False,
        )
    return None


def export_mapping(our_type: str, registry: NodeRegistry) -> TypeMapping | None:
    """The table's entry that exports ``our_type`` to ComfyUI, or None when it has none."""
    entry = BY_OUR_TYPE.get(our_type)
    return entry if entry is not None and mapping_for(entry.comfy_type, registry) is entry else None


def active_mappings(registry: NodeRegistry) -> list[TypeMapping]:
    """The table's entries that import into ``registry`` as they stand."""
    return [m for m in MAPPINGS if mapping_for(m.comfy_type, registry) is m]


#: The frontend-only node that feeds a widget converted to an input, by the type it carries.
PRIMITIVE_NODE_TYPES = {
    t.INT: "Int",
    t.FLOAT: "Float",
    t.STRING: "String",
    t.BOOLEAN: "Boolean",
    t.COMBO: "String",
}


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
        params[target] = to_ours(mapping.our_type, widget, value)
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
