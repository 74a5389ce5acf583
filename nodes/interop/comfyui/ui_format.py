"""ComfyUI's UI-format workflows (version 0.4 and 1), as saved by its frontend.

Version 0.4::

    {"nodes": [{"id", "type", "pos", "size", "mode", "inputs": [{"name", "type", "link",
                "widget"?}], "outputs": [{"name", "type", "links"}], "widgets_values"}],
     "links": [[id, from_node, from_slot, to_node, to_slot, type]], "groups": [{"title",
     "bounding": [x, y, w, h], "color"}], "version": 0.4}

Version 1 is the same but ``"version": 1`` and links are objects ``{id, origin_id,
origin_slot, target_id, target_slot, type}``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.graph import types as t
from core.graph.model import Graph, Group, Node, Note
from core.graph.spec import REROUTE, NodeRegistry, placeholder_spec
from core.graph.workflow import Workflow, WorkflowError
from nodes.interop.comfyui.common import (
    Slots,
    connect_slots,
    node_id_of,
    node_label,
    placeholder_params,
    socket_type,
    unique_names,
    xy_pair,
)
from nodes.interop.comfyui.group_nodes import GroupNode, add_group_instance, import_group_nodes
from nodes.interop.comfyui.mapping import (
    MODE_BYPASSED,
    MODE_MUTED,
    PRIMITIVE_NODE_TYPES,
    coerce,
    control_mode,
    control_ui,
    custom_title,
    mapping_for,
    normalised_type,
    widget_values_to_params,
)
from nodes.interop.comfyui.subgraphs import add_instance, import_definitions
from nodes.interop.report import ImportReport, ReportBuilder, SourceFormat


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


def import_ui(
    data: dict[str, Any], registry: NodeRegistry, source: str | os.PathLike[str] | None = None
) -> tuple[Workflow, ImportReport]:
    """Builds a workflow from a ComfyUI UI-format workflow (version 0.4 or 1)."""
    report = ReportBuilder()
    graph = Graph(registry)
    import_definitions(graph, data, report, _add_node_or_note, _ui_links)
    groups = import_group_nodes(graph, data, report, _add_node_or_note)
    slots: dict[int, Slots] = {}
    for index, raw in enumerate(data["nodes"]):
        if not isinstance(raw, dict):
            raise WorkflowError(f"node entry {index} is not an object", source=source)
        node_id = node_id_of(raw.get("id"))
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
        if normalised_type(type_id) in NOTE_TYPES and type_id not in registry:
            _add_note(graph, raw, type_id)
            continue
        slots[node_id] = _add_ui_node(graph, raw, node_id, type_id, report, groups)
    for link in _ui_links(data.get("links"), report):
        connect_slots(graph, slots, link.src, link.src_slot, link.dst, link.dst_slot, report)
    _add_groups(graph, data.get("groups"), report)
    if isinstance(data.get("extra"), dict) and data["extra"].get("reroutes"):
        report.warn("the workflow's native link reroutes are not kept (links stay connected)")
    version = data.get("version")
    version_text = "1" if version == 1 else str(version) if version is not None else "0.4"
    workflow = Workflow(graph, source=None if source is None else Path(source))
    return workflow, report.build(workflow, SourceFormat.COMFYUI_UI, version_text)


def _add_node_or_note(
    graph: Graph, raw: dict[str, Any], node_id: int, type_id: str, report: ReportBuilder
) -> Slots:
    """A node of a subgraph definition: a note becomes a note, anything else a node."""
    if normalised_type(type_id) in NOTE_TYPES and type_id not in graph.registry:
        _add_note(graph, raw, type_id)
        return Slots([], [])
    return _add_ui_node(graph, raw, node_id, type_id, report)


#: ComfyUI's text notes: plain and Markdown. They become notes, not nodes.
NOTE_TYPES = {"Note": False, "MarkdownNote": True}


def _add_note(graph: Graph, raw: dict[str, Any], type_id: str) -> None:
    values = raw.get("widgets_values")
    text = values[0] if isinstance(values, list) and values else ""
    if isinstance(values, dict):
        text = values.get("text", values.get("value", ""))
    graph.add_note(
        Note(
            graph.next_note_id(),
            text if isinstance(text, str) else str(text),
            xy_pair(raw.get("pos"), (0.0, 0.0)) or (0.0, 0.0),
            xy_pair(raw.get("size"), None) or (260.0, 120.0),
            NOTE_TYPES[normalised_type(type_id)],
        )
    )


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
    graph: Graph,
    raw: dict[str, Any],
    node_id: int,
    type_id: str,
    report: ReportBuilder,
    groups: dict[str, GroupNode] | None = None,
) -> Slots:
    mode = raw.get("mode", 0)
    flags = raw.get("flags") if isinstance(raw.get("flags"), dict) else {}
    common: dict[str, Any] = {
        "pos": xy_pair(raw.get("pos"), (0.0, 0.0)),
        "size": xy_pair(raw.get("size"), None),
        "muted": mode == MODE_MUTED,
        "bypassed": mode == MODE_BYPASSED,
        "collapsed": bool(flags.get("collapsed", False)),
    }
    label = node_label(node_id, type_id)
    values = raw.get("widgets_values")
    raw_inputs, raw_outputs = _raw_inputs(raw), _raw_outputs(raw)
    if type_id in graph.subgraphs:
        return add_instance(graph, raw, node_id, type_id, common)
    if groups and type_id in groups:
        return add_group_instance(graph, raw, node_id, groups[type_id], common, report)
    if type_id == "Reroute":
        graph.add_node(
            REROUTE.type_id,
            node_id,
            title=custom_title(raw.get("title"), None, REROUTE, type_id),
            **common,
        )
        return Slots(["value"], ["value"])
    if type_id == "PrimitiveNode":
        made = _add_primitive_node(graph, raw, node_id, raw_outputs, values, common, report)
        if made is not None:
            return made
    mapping = mapping_for(type_id, graph.registry)
    if mapping is not None:
        spec = graph.registry.get(mapping.our_type)
        if mapping.pack:
            report.pack_node(node_id, type_id, mapping.pack)
        params, control = widget_values_to_params(mapping, spec, values, report, label)
        graph.add_node(
            mapping.our_type,
            node_id,
            params,
            title=custom_title(raw.get("title"), mapping, spec, type_id),
            ui=control_ui(control),
            **common,
        )
        if raw_inputs:
            inputs = [mapping.param_for(_input_name(entry)) for entry in raw_inputs]
        else:  # no slot list: ComfyUI's socket order is ours for every mapped type
            inputs = [s.name for s in spec.sockets]
        return Slots(inputs, [o.name for o in spec.outputs])
    # Unknown: a placeholder with the node's sockets (widget inputs only when linked).
    kept = [
        (i, e)
        for i, e in enumerate(raw_inputs)
        if not isinstance(e.get("widget"), dict) or e.get("link") is not None
    ]
    in_names = unique_names((_input_name(e) for _, e in kept), "input")
    out_names = unique_names((str(o.get("name", "")) for o in raw_outputs), "output")
    params = placeholder_params(values)
    # A socket whose name collides with a widget param would vanish from the placeholder.
    in_names = [f"{n}_input" if n in params else n for n in in_names]
    spec = placeholder_spec(
        type_id,
        [(n, socket_type(e.get("type"))) for n, (_, e) in zip(in_names, kept, strict=True)],
        [(n, socket_type(o.get("type"))) for n, o in zip(out_names, raw_outputs, strict=True)],
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
    return Slots(inputs, out_names)


def _add_primitive_node(
    graph: Graph,
    raw: dict[str, Any],
    node_id: int,
    raw_outputs: list[dict[str, Any]],
    values: Any,
    common: dict[str, Any],
    report: ReportBuilder,
) -> Slots | None:
    """ComfyUI's frontend-only Primitive node (it feeds a widget turned into an input) as our
    Int/Float/String/Boolean node; None when its type cannot be told."""
    kind = _primitive_kind(raw_outputs[0].get("type") if raw_outputs else None, values)
    our_type = PRIMITIVE_NODE_TYPES.get(kind) if kind is not None else None
    if our_type is None or our_type not in graph.registry:
        return None
    spec = graph.registry.get(our_type)
    params: dict[str, Any] = {}
    control: dict[str, str] = {}
    if isinstance(values, list) and values:
        params["value"] = str(values[0]) if kind == t.COMBO else coerce(spec.widgets[0], values[0])
        mode = control_mode(values[1]) if len(values) > 1 else None
        if mode is not None and spec.widgets[0].control_after_run:
            control["value"] = mode
    title = raw.get("title")
    graph.add_node(
        our_type,
        node_id,
        params,
        title=title if isinstance(title, str) and title != "Primitive" else None,
        ui=control_ui(control),
        **common,
    )
    return Slots([], [spec.outputs[0].name])


def _primitive_kind(declared: Any, values: Any) -> str | None:
    """The value type a Primitive node carries. Its output names the type it feeds, except
    for a combo: then it holds the choices, as a list or (older files) one comma-joined string,
    or "COMBO". An unlinked Primitive says "*": its value's kind tells."""
    if isinstance(declared, str) and declared in PRIMITIVE_NODE_TYPES:
        return declared
    if isinstance(declared, list) or (isinstance(declared, str) and declared not in ("", t.ANY)):
        return t.COMBO
    value = values[0] if isinstance(values, list) and values else None
    if isinstance(value, bool):
        return t.BOOLEAN
    if isinstance(value, int):
        return t.INT
    if isinstance(value, float):
        return t.FLOAT
    return t.STRING if isinstance(value, str) else None


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
