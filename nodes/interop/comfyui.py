"""ComfyUI workflows in and out: the UI format (0.4 and 1) and the API ("prompt") format.

ComfyUI stores widget values by position (``widgets_values``), in the order its node class
declares its widgets, with a frontend-only ``control_after_generate`` value after each seed.
``MAPPINGS`` is the explicit table, per ComfyUI node type, of that order and of the LatentLoom
type and param names each position lands in. Node types without an entry become placeholders
(``core.graph.spec.placeholder_spec``) that keep their sockets, values and links, and are
reported by type and id.

UI format 0.4::

    {"nodes": [{"id", "type", "pos", "size", "mode", "inputs": [{"name", "type", "link",
                "widget"?}], "outputs": [{"name", "type", "links"}], "widgets_values"}],
     "links": [[id, from_node, from_slot, to_node, to_slot, type]], "groups": [{"title",
     "bounding": [x, y, w, h], "color"}], "version": 0.4}

UI format 1 is the same but ``"version": 1`` and links are objects ``{id, origin_id,
origin_slot, target_id, target_slot, type}``. The API format is ``{id: {"class_type",
"inputs": {name: literal | [source_id, output_index]}, "_meta": {"title"}}}``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.graph import types as t
from core.graph.errors import GraphError
from core.graph.model import Graph, Group, Node
from core.graph.spec import REROUTE, NodeRegistry, NodeSpec, WidgetInput, placeholder_spec
from core.graph.workflow import Workflow, WorkflowError
from nodes.interop.report import ImportReport, ReportBuilder, SourceFormat

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
    _map("ImageInvert", title="Invert Image"),
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
)

BY_COMFY_TYPE: dict[str, TypeMapping] = {m.comfy_type: m for m in MAPPINGS}
BY_OUR_TYPE: dict[str, TypeMapping] = {m.our_type: m for m in MAPPINGS if m.export}

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


#: (our type, our param) → (ComfyUI value → ours, ours → ComfyUI value).
VALUE_CONVERSIONS: dict[tuple[str, str], tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
    ("KSamplerAdvanced", "add_noise"): (_enable_to_bool, _bool_to_enable),
    ("KSamplerAdvanced", "return_with_leftover_noise"): (_enable_to_bool, _bool_to_enable),
    ("LoadCheckpoint", "ckpt_name"): (_model_name, _identity),
    ("LoadVAE", "vae_name"): (_model_name, _identity),
    ("LoadLoRA", "lora_name"): (_model_name, _identity),
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


def _to_ours(our_type: str, widget: WidgetInput, value: Any) -> Any:
    convert = VALUE_CONVERSIONS.get((our_type, widget.name), (_identity, _identity))[0]
    return coerce(widget, convert(value))


def _to_comfy(our_type: str, param: str, value: Any) -> Any:
    return VALUE_CONVERSIONS.get((our_type, param), (_identity, _identity))[1](value)


def _widget(spec: NodeSpec, name: str | None) -> WidgetInput | None:
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
        widget = _widget(spec, target)
        if widget is None:
            report.warn(f"{label}: its value {comfy_name}={value!r} has no place here; ignored")
            return
        params[target] = _to_ours(mapping.our_type, widget, value)

    if isinstance(values, dict):
        for name, value in values.items():
            if name == "control_after_generate":
                seeds = [mapping.param_for(s) for s in mapping.widgets if s in mapping.seeds]
                if seeds and seeds[0] and value in CONTROL_MODES:
                    control[seeds[0]] = value
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
    for name in mapping.widgets:
        if position >= len(values):
            break
        put(name, values[position])
        position += 1
        # The frontend writes the seed's after-run mode right after it (older files did not).
        if name in mapping.seeds and position < len(values) and values[position] in CONTROL_MODES:
            target = mapping.param_for(name)
            if target is not None:
                control[target] = values[position]
            position += 1
    if position < len(values):
        extra = values[position:]
        report.warn(f"{label}: {len(extra)} extra widget value(s) {extra!r} ignored")
    return params, control


def _control_ui(control: Mapping[str, str]) -> dict[str, Any]:
    return {"control_after_run": dict(control)} if control else {}


def _title(raw: Any, mapping: TypeMapping | None, spec: NodeSpec | None, type_id: str) -> Any:
    """A custom title, or None when ``raw`` is just the type's display name."""
    if not isinstance(raw, str) or not raw.strip():
        return None
    defaults = {type_id}
    if mapping is not None:
        defaults |= {mapping.comfy_title, mapping.comfy_type}
    if spec is not None:
        defaults.add(spec.title)
    return None if raw in defaults else raw


def _unique(names: Iterable[str], fallback: str) -> list[str]:
    """Socket names made unique and non-empty, as a spec requires."""
    out: list[str] = []
    for index, name in enumerate(names):
        base = name or f"{fallback}_{index}"
        candidate, n = base, 2
        while candidate in out:
            candidate, n = f"{base}_{n}", n + 1
        out.append(candidate)
    return out


def _placeholder_params(values: Any) -> dict[str, Any]:
    """The widget values of an unknown node as params: by name when the file names them,
    else ``widget_0``, ``widget_1``… in order."""
    if isinstance(values, dict):
        return {str(k): v for k, v in values.items()}
    if isinstance(values, list):
        return {f"widget_{i}": v for i, v in enumerate(values)}
    return {}


def _socket_type(raw: Any) -> str:
    return raw if isinstance(raw, str) and raw else t.ANY


# --- the UI format -------------------------------------------------------------------------


@dataclass
class _Slots:
    """How the ComfyUI slot indices of one imported node name our sockets."""

    inputs: list[str | None]
    outputs: list[str]


@dataclass(frozen=True)
class _UiLink:
    link_id: Any
    src: Any
    src_slot: Any
    dst: Any
    dst_slot: Any


def is_ui_workflow(data: Any) -> bool:
    """Whether ``data`` looks like a ComfyUI UI-format workflow."""
    return (
        isinstance(data, dict)
        and isinstance(data.get("nodes"), list)
        and "format" not in data
        and ("links" in data or "version" in data or "last_node_id" in data or "state" in data)
    )


def is_api_prompt(data: Any) -> bool:
    """Whether ``data`` looks like a ComfyUI API-format prompt."""
    return (
        isinstance(data, dict)
        and bool(data)
        and all(isinstance(v, dict) and "class_type" in v for v in data.values())
    )


def _pair(value: Any, default: tuple[float, float] | None) -> tuple[float, float] | None:
    if isinstance(value, dict):  # old LiteGraph: {"0": x, "1": y}
        value = [value.get("0"), value.get("1")]
    if (
        isinstance(value, (list, tuple))
        and len(value) >= 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value[:2])
    ):
        return (float(value[0]), float(value[1]))
    return default


def _node_id(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _label(node_id: Any, type_id: str) -> str:
    return f"node {node_id} ({type_id})"


def import_ui(
    data: dict[str, Any], registry: NodeRegistry, source: str | os.PathLike[str] | None = None
) -> tuple[Workflow, ImportReport]:
    """Builds a workflow from a ComfyUI UI-format workflow (version 0.4 or 1)."""
    report = ReportBuilder()
    graph = Graph(registry)
    slots: dict[int, _Slots] = {}
    for index, raw in enumerate(data["nodes"]):
        if not isinstance(raw, dict):
            raise WorkflowError(f"node entry {index} is not an object", source=source)
        node_id = _node_id(raw.get("id"))
        type_id = raw.get("type")
        if node_id is None or not isinstance(type_id, str):
            raise WorkflowError(
                f"node entry {index} needs an integer id and a type, found id={raw.get('id')!r} "
                f"type={type_id!r}",
                source=source,
                field="nodes",
            )
        if node_id in graph:
            raise WorkflowError("two nodes have this id", source=source, node_id=node_id)
        slots[node_id] = _add_ui_node(graph, raw, node_id, type_id, report)
    for link in _ui_links(data.get("links"), report):
        _connect(graph, slots, link.src, link.src_slot, link.dst, link.dst_slot, report)
    _add_groups(graph, data.get("groups"), report)
    if isinstance(data.get("extra"), dict) and data["extra"].get("reroutes"):
        report.warn("the workflow's native link reroutes are not kept (links stay connected)")
    version = data.get("version")
    version_text = "1" if version == 1 else str(version) if version is not None else "0.4"
    workflow = Workflow(graph, source=None if source is None else Path(source))
    return workflow, report.build(workflow, SourceFormat.COMFYUI_UI, version_text)


def _raw_inputs(raw: dict[str, Any]) -> list[dict[str, Any]]:
    inputs = raw.get("inputs")
    return [i if isinstance(i, dict) else {} for i in inputs] if isinstance(inputs, list) else []


def _raw_outputs(raw: dict[str, Any]) -> list[dict[str, Any]]:
    outputs = raw.get("outputs")
    return [o if isinstance(o, dict) else {} for o in outputs] if isinstance(outputs, list) else []


def _input_name(entry: dict[str, Any]) -> str:
    widget = entry.get("widget")
    if isinstance(widget, dict) and isinstance(widget.get("name"), str):
        return widget["name"]
    return str(entry.get("name", ""))


def _add_ui_node(
    graph: Graph, raw: dict[str, Any], node_id: int, type_id: str, report: ReportBuilder
) -> _Slots:
    mode = raw.get("mode", 0)
    flags = raw.get("flags") if isinstance(raw.get("flags"), dict) else {}
    common: dict[str, Any] = {
        "pos": _pair(raw.get("pos"), (0.0, 0.0)),
        "size": _pair(raw.get("size"), None),
        "muted": mode == MODE_MUTED,
        "bypassed": mode == MODE_BYPASSED,
        "collapsed": bool(flags.get("collapsed", False)),
    }
    label = _label(node_id, type_id)
    values = raw.get("widgets_values")
    raw_inputs, raw_outputs = _raw_inputs(raw), _raw_outputs(raw)
    if type_id == "Reroute":
        graph.add_node(
            REROUTE.type_id,
            node_id,
            title=_title(raw.get("title"), None, REROUTE, type_id),
            **common,
        )
        return _Slots(["value"], ["value"])
    if type_id == "PrimitiveNode":
        made = _add_primitive_node(graph, raw, node_id, raw_outputs, values, common, report)
        if made is not None:
            return made
    mapping = BY_COMFY_TYPE.get(type_id)
    if mapping is not None and mapping.our_type in graph.registry:
        spec = graph.registry.get(mapping.our_type)
        params, control = widget_values_to_params(mapping, spec, values, report, label)
        graph.add_node(
            mapping.our_type,
            node_id,
            params,
            title=_title(raw.get("title"), mapping, spec, type_id),
            ui=_control_ui(control),
            **common,
        )
        if raw_inputs:
            inputs = [mapping.param_for(_input_name(entry)) for entry in raw_inputs]
        else:  # no slot list: ComfyUI's socket order is ours for every mapped type
            inputs = [s.name for s in spec.sockets]
        return _Slots(inputs, [o.name for o in spec.outputs])
    # Unknown: a placeholder with the node's sockets (widget inputs only when linked).
    kept = [
        (i, e)
        for i, e in enumerate(raw_inputs)
        if not isinstance(e.get("widget"), dict) or e.get("link") is not None
    ]
    in_names = _unique((_input_name(e) for _, e in kept), "input")
    out_names = _unique((str(o.get("name", "")) for o in raw_outputs), "output")
    params = _placeholder_params(values)
    # A socket whose name collides with a widget param would vanish from the placeholder.
    in_names = [f"{n}_input" if n in params else n for n in in_names]
    spec = placeholder_spec(
        type_id,
        [(n, _socket_type(e.get("type"))) for n, (_, e) in zip(in_names, kept, strict=True)],
        [(n, _socket_type(o.get("type"))) for n, o in zip(out_names, raw_outputs, strict=True)],
        params,
    )
    title = raw.get("title") if isinstance(raw.get("title"), str) else None
    graph.add_node(
        type_id,
        node_id,
        params,
        title=None if title == type_id else title,
        placeholder=spec,
        **common,
    )
    report.unknown_node(node_id, type_id, title)
    inputs: list[str | None] = [None] * len(raw_inputs)
    for name, (slot, _) in zip(in_names, kept, strict=True):
        inputs[slot] = name
    return _Slots(inputs, out_names)


def _add_primitive_node(
    graph: Graph,
    raw: dict[str, Any],
    node_id: int,
    raw_outputs: list[dict[str, Any]],
    values: Any,
    common: dict[str, Any],
    report: ReportBuilder,
) -> _Slots | None:
    """ComfyUI's frontend-only Primitive node (it feeds a widget turned into an input) as our
    Int/Float/String/Boolean node; None when its type cannot be told."""
    kind = raw_outputs[0].get("type") if raw_outputs else None
    if isinstance(kind, list):  # a combo's choices
        kind = t.COMBO
    our_type = PRIMITIVE_NODE_TYPES.get(kind) if isinstance(kind, str) else None
    if our_type is None or our_type not in graph.registry:
        return None
    spec = graph.registry.get(our_type)
    params: dict[str, Any] = {}
    control: dict[str, str] = {}
    if isinstance(values, list) and values:
        params["value"] = coerce(spec.widgets[0], values[0])
        if kind == t.COMBO:
            params["value"] = str(values[0])
        if len(values) > 1 and values[1] in CONTROL_MODES:
            control["value"] = values[1]
    title = raw.get("title")
    graph.add_node(
        our_type,
        node_id,
        params,
        title=title if isinstance(title, str) and title != "Primitive" else None,
        ui=_control_ui(control),
        **common,
    )
    return _Slots([], [spec.outputs[0].name])


def _ui_links(raw_links: Any, report: ReportBuilder) -> list[_UiLink]:
    links = []
    for entry in raw_links if isinstance(raw_links, list) else []:
        if isinstance(entry, list) and len(entry) >= 5:
            links.append(_UiLink(*entry[:5]))
        elif isinstance(entry, dict):
            links.append(
                _UiLink(
                    entry.get("id"),
                    entry.get("origin_id"),
                    entry.get("origin_slot"),
                    entry.get("target_id"),
                    entry.get("target_slot"),
                )
            )
        elif entry is not None:
            report.warn(f"link entry {entry!r} is not understood; skipped")
    return links


def _connect(
    graph: Graph,
    slots: Mapping[int, _Slots],
    src: Any,
    src_slot: Any,
    dst: Any,
    dst_slot: Any,
    report: ReportBuilder,
    what: str = "",
) -> None:
    """Connects a ComfyUI link given by slot indices; a link that cannot be kept is reported."""
    src_id, dst_id = _node_id(src), _node_id(dst)
    where = what or f"link {src}[{src_slot}] → {dst}[{dst_slot}]"
    if src_id not in slots or dst_id not in slots:
        report.warn(f"{where}: it joins a node the workflow lacks; dropped")
        return
    src_slots, dst_slots = slots[src_id], slots[dst_id]
    output = _slot(src_slots.outputs, src_slot)
    target = dst_slot if isinstance(dst_slot, str) else _slot(dst_slots.inputs, dst_slot)
    if output is None or target is None:
        report.warn(f"{where}: no such socket; dropped")
        return
    try:
        if graph.link_to(dst_id, target) is not None:
            graph.disconnect(dst_id, target)
            report.warn(f"{where}: {target!r} had two links; the later one is kept")
        graph.connect(src_id, output, dst_id, target)
    except GraphError as exc:
        report.warn(f"{where}: {exc}; dropped")


def _slot(names: list[Any], index: Any) -> Any:
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(names):
        return None
    return names[index]


#: LiteGraph draws a node's title bar above its ``pos``; a default size for nodes saved without.
_DEFAULT_SIZE = (200.0, 100.0)


def _add_groups(graph: Graph, raw_groups: Any, report: ReportBuilder) -> None:
    """ComfyUI groups are bounding boxes: a node belongs to each group its centre lies in."""
    for index, raw in enumerate(raw_groups if isinstance(raw_groups, list) else []):
        bounding = raw.get("bounding") if isinstance(raw, dict) else None
        if not (
            isinstance(bounding, list)
            and len(bounding) == 4
            and all(isinstance(v, (int, float)) for v in bounding)
        ):
            report.warn(f"group {index}: no bounding box; skipped")
            continue
        x, y, w, h = (float(v) for v in bounding)
        members = frozenset(node.id for node in graph if _centre_inside(node, (x, y, w, h)))
        color = raw.get("color")
        graph.add_group(
            Group(
                graph.next_group_id(),
                str(raw.get("title", "Group")),
                members,
                color if isinstance(color, str) and color else "#3f789e",
                (x, y, w, h),
            )
        )


def _centre_inside(node: Node, rect: tuple[float, float, float, float]) -> bool:
    width, height = node.size or _DEFAULT_SIZE
    cx, cy = node.pos[0] + width / 2, node.pos[1] + height / 2
    x, y, w, h = rect
    return x <= cx <= x + w and y <= cy <= y + h


# --- the API format ------------------------------------------------------------------------


def import_api(
    data: dict[str, Any], registry: NodeRegistry, source: str | os.PathLike[str] | None = None
) -> tuple[Workflow, ImportReport]:
    """Builds a workflow from a ComfyUI API-format prompt, laid out left to right."""
    report = ReportBuilder()
    graph = Graph(registry)
    ids: dict[str, int] = {}
    taken = {i for i in (_node_id(k) for k in data) if i is not None}
    fresh = max(taken, default=0) + 1
    for key in data:
        node_id = _node_id(key)
        if node_id is None:  # e.g. "12:3", a node expanded from a group node
            node_id, fresh = fresh, fresh + 1
        ids[str(key)] = node_id
    inputs_of: dict[str, dict[str, Any]] = {}
    for key, raw in data.items():
        inputs = raw.get("inputs", {})
        if not isinstance(inputs, dict):
            report.warn(f"node {key}: its inputs are not an object; defaults used")
            inputs = {}
        inputs_of[str(key)] = inputs
    # Outputs referenced by index: unknown types get as many outputs as others use.
    used_outputs: dict[str, int] = {}
    for inputs in inputs_of.values():
        for value in inputs.values():
            if _is_link(value):
                used_outputs[str(value[0])] = max(used_outputs.get(str(value[0]), 0), value[1] + 1)
    slots: dict[int, _Slots] = {}
    pending: list[tuple[str, int, int, str | None]] = []
    for key, raw in data.items():
        node_id = ids[str(key)]
        inputs = inputs_of[str(key)]
        slots[node_id] = _add_api_node(
            graph, raw, node_id, inputs, used_outputs.get(str(key), 0), report
        )
        mapping = BY_COMFY_TYPE.get(str(raw.get("class_type")))
        if graph.node(node_id).placeholder is not None:
            mapping = None
        for name, value in inputs.items():
            if _is_link(value):
                target = mapping.param_for(name) if mapping is not None else name
                pending.append((str(value[0]), value[1], node_id, target))
    for src_key, out_index, dst_id, target in pending:
        if target is None:
            continue
        name = target
        _connect(
            graph,
            slots,
            ids.get(src_key),
            out_index,
            dst_id,
            target,
            report,
            what=f"input {name!r} of node {dst_id}",
        )
    layout(graph)
    workflow = Workflow(graph, source=None if source is None else Path(source))
    return workflow, report.build(workflow, SourceFormat.COMFYUI_API)


def _is_link(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], (str, int))
        and isinstance(value[1], int)
        and not isinstance(value[1], bool)
    )


def _add_api_node(
    graph: Graph,
    raw: dict[str, Any],
    node_id: int,
    inputs: dict[str, Any],
    output_count: int,
    report: ReportBuilder,
) -> _Slots:
    type_id = str(raw.get("class_type"))
    meta = raw.get("_meta") if isinstance(raw.get("_meta"), dict) else {}
    label = _label(node_id, type_id)
    mapping = BY_COMFY_TYPE.get(type_id)
    if mapping is not None and mapping.our_type in graph.registry:
        spec = graph.registry.get(mapping.our_type)
        params: dict[str, Any] = {}
        for name, value in inputs.items():
            target = mapping.param_for(name)
            if _is_link(value) or target is None:
                continue
            widget = _widget(spec, target)
            if widget is None:
                report.warn(f"{label}: its input {name}={value!r} has no place here; ignored")
                continue
            params[target] = _to_ours(mapping.our_type, widget, value)
        saved = meta.get(META_PARAMS)
        for name, value in (saved if isinstance(saved, dict) else {}).items():
            widget = _widget(spec, name)
            if widget is not None:
                params[name] = coerce(widget, value)
        graph.add_node(
            mapping.our_type,
            node_id,
            params,
            title=_title(meta.get("title"), mapping, spec, type_id),
        )
        return _Slots([], [o.name for o in spec.outputs])
    literals = {k: v for k, v in inputs.items() if not _is_link(v)}
    sockets = [(k, t.ANY) for k, v in inputs.items() if _is_link(v)]
    outputs = [(f"output_{i}", t.ANY) for i in range(output_count)]
    title = meta.get("title") if isinstance(meta.get("title"), str) else None
    graph.add_node(
        type_id,
        node_id,
        literals,
        title=None if title == type_id else title,
        placeholder=placeholder_spec(type_id, sockets, outputs, literals),
    )
    report.unknown_node(node_id, type_id, title)
    return _Slots([], [name for name, _ in outputs])


# --- layout --------------------------------------------------------------------------------

_COLUMN_WIDTH, _ROW_GAP = 320.0, 40.0


def estimated_height(spec: NodeSpec) -> float:
    """Roughly how tall the editor draws a node of ``spec``, for laying out files without
    positions."""
    rows = max(len(spec.sockets), len(spec.outputs)) + len(spec.widgets)
    tall = sum(1 for w in spec.widgets if w.multiline)
    return 40.0 + 26.0 * rows + 80.0 * tall


def layout(graph: Graph, origin: tuple[float, float] = (0.0, 0.0)) -> None:
    """Places every node in columns by its depth in the graph (sources left, outputs right).

    Depth is the longest chain of links feeding the node, computed in topological order (the
    graph is acyclic), so deep graphs need no recursion.
    """
    waiting = {nid: len({lk.src for lk in graph.inputs_of(nid)}) for nid in graph.nodes}
    ready = sorted(nid for nid, count in waiting.items() if count == 0)
    depth = dict.fromkeys(ready, 0)
    while ready:
        node_id = ready.pop()
        for consumer in sorted({lk.dst for lk in graph.links_from(node_id)}):
            depth[consumer] = max(depth.get(consumer, 0), depth[node_id] + 1)
            waiting[consumer] -= 1
            if waiting[consumer] == 0:
                ready.append(consumer)
    columns: dict[int, list[int]] = {}
    for node_id in sorted(graph.nodes):
        columns.setdefault(depth.get(node_id, 0), []).append(node_id)
    for column, members in columns.items():
        y = origin[1]
        for node_id in members:
            graph.set_node_attribute(node_id, "pos", (origin[0] + column * _COLUMN_WIDTH, y))
            y += estimated_height(graph.spec(node_id)) + _ROW_GAP


# --- export to the API format --------------------------------------------------------------


class ComfyExportError(ValueError):
    """The graph holds node types (or uses outputs) that have no ComfyUI equivalent."""

    def __init__(self, unmapped: Mapping[str, list[int]], outputs: Iterable[str] = ()) -> None:
        self.unmapped = dict(unmapped)
        self.outputs = tuple(outputs)
        listed = [
            f"{type_id} (node{'s' if len(ids) > 1 else ''} {', '.join(map(str, ids))})"
            for type_id, ids in sorted(unmapped.items())
        ]
        listed += list(self.outputs)
        super().__init__(
            f"cannot export to ComfyUI's API format: no ComfyUI equivalent for "
            f"{'; '.join(listed)}. Replace or remove these first."
        )


def to_comfy_api(graph: Graph) -> dict[str, dict[str, Any]]:
    """The graph in ComfyUI's API format.

    Reroutes and bypassed nodes are resolved away (a bypassed node passes the input of its
    output's type on), as ComfyUI's frontend does; muted nodes are left out with the inputs
    they fed. LatentLoom-only params that differ from their defaults travel in
    ``_meta.latentloom_params``, which ComfyUI ignores, so that importing the file back gives
    the same graph. Raises ``ComfyExportError`` listing every node type that does not map.
    """
    exported = [n for n in graph if not (n.muted or n.bypassed or n.type_id == REROUTE.type_id)]
    unmapped: dict[str, list[int]] = {}
    for node in exported:
        if node.placeholder is not None or node.type_id not in BY_OUR_TYPE:
            unmapped.setdefault(node.type_id, []).append(node.id)
    outputs = sorted(
        {
            f"output {lk.src_output} of {node.type_id} (node {node.id})"
            for node in exported
            if node.id not in {i for ids in unmapped.values() for i in ids}
            for lk in graph.links_from(node.id)
            if BY_OUR_TYPE[node.type_id].outputs
            and lk.src_output not in BY_OUR_TYPE[node.type_id].outputs
            and not graph.node(lk.dst).muted
        }
    )
    if unmapped or outputs:
        raise ComfyExportError(unmapped, outputs)
    prompt: dict[str, dict[str, Any]] = {}
    for node in sorted(exported, key=lambda n: n.id):
        mapping = BY_OUR_TYPE[node.type_id]
        spec = graph.spec(node.id)
        inputs: dict[str, Any] = {}
        comfy_params = set()
        for comfy_name in mapping.widgets:
            param = mapping.param_for(comfy_name)
            if param is None or _widget(spec, param) is None:
                continue
            comfy_params.add(param)
            inputs[comfy_name] = _to_comfy(node.type_id, param, node.params[param])
        for link in graph.inputs_of(node.id):
            found = _effective_source(graph, link.src, link.src_output)
            if found is None:  # fed by a muted node: a widget keeps its own value
                continue
            src, output = found
            index = [o.name for o in graph.spec(src).outputs].index(output)
            inputs[mapping.comfy_name_for(link.dst_input)] = [str(src), index]
        meta: dict[str, Any] = {"title": node.title or mapping.comfy_title or spec.title}
        own = {
            w.name: node.params[w.name]
            for w in spec.widgets
            if w.name not in comfy_params
            and node.params.get(w.name, w.default) != w.default
            and graph.link_to(node.id, w.name) is None
        }
        if own:
            meta[META_PARAMS] = own
        prompt[str(node.id)] = {"inputs": inputs, "class_type": mapping.comfy_type, "_meta": meta}
    return prompt


def _effective_source(graph: Graph, node_id: int, output: str) -> tuple[int, str] | None:
    """The node output that really feeds a link, through reroutes and bypassed nodes; None
    when a muted node or nothing feeds it."""
    seen: set[int] = set()
    while node_id not in seen:
        seen.add(node_id)
        node = graph.node(node_id)
        if node.muted:
            return None
        if node.type_id == REROUTE.type_id:
            feed = graph.link_to(node_id, "value")
        elif node.bypassed:
            feed = _bypass_feed(graph, node_id, output)
        else:
            return node_id, output
        if feed is None:
            return None
        node_id, output = feed.src, feed.src_output
    return None


def _bypass_feed(graph: Graph, node_id: int, output: str) -> Any:
    """The input link a bypassed node passes on for ``output``: one of the same type."""
    wanted = graph.output_type(node_id, output)
    for link in graph.inputs_of(node_id):
        if graph.output_type(link.src, link.src_output) in (wanted, t.ANY):
            return link
    return None
