"""ComfyUI's API format ("prompt"): ``{id: {"class_type", "inputs": {name: literal |
[source_id, output_index]}, "_meta": {"title"}}}``, without positions, so it is laid out."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from core.graph import types as t
from core.graph.model import Graph
from core.graph.spec import NodeRegistry, placeholder_spec
from core.graph.workflow import Workflow
from nodes.interop.comfyui.common import Slots, connect_slots, layout, node_id_of, node_label
from nodes.interop.comfyui.mapping import (
    META_PARAMS,
    coerce,
    custom_title,
    mapping_for,
    to_ours,
    widget_of,
)
from nodes.interop.report import ImportReport, ReportBuilder, SourceFormat


def is_api_prompt(data: Any) -> bool:
    """Whether ``data`` looks like a ComfyUI API-format prompt."""
    return (
        isinstance(data, dict)
        and bool(data)
        and all(isinstance(v, dict) and "class_type" in v for v in data.values())
    )


def import_api(
    data: dict[str, Any], registry: NodeRegistry, source: str | os.PathLike[str] | None = None
) -> tuple[Workflow, ImportReport]:
    """Builds a workflow from a ComfyUI API-format prompt, laid out left to right."""
    report = ReportBuilder()
    graph = Graph(registry)
    ids: dict[str, int] = {}
    taken = {i for i in (node_id_of(k) for k in data) if i is not None}
    fresh = max(taken, default=0) + 1
    for key in data:
        node_id = node_id_of(key)
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
    slots: dict[int, Slots] = {}
    pending: list[tuple[str, int, int, str | None]] = []
    for key, raw in data.items():
        node_id = ids[str(key)]
        inputs = inputs_of[str(key)]
        slots[node_id] = _add_api_node(
            graph, raw, node_id, inputs, used_outputs.get(str(key), 0), report
        )
        mapping = mapping_for(str(raw.get("class_type")), graph.registry)
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
        connect_slots(
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
) -> Slots:
    type_id = str(raw.get("class_type"))
    meta = raw.get("_meta") if isinstance(raw.get("_meta"), dict) else {}
    label = node_label(node_id, type_id)
    mapping = mapping_for(type_id, graph.registry)
    if mapping is not None:
        spec = graph.registry.get(mapping.our_type)
        if mapping.pack:
            report.pack_node(node_id, type_id, mapping.pack)
        params: dict[str, Any] = {}
        for name, value in inputs.items():
            target = mapping.param_for(name)
            if _is_link(value) or target is None:
                continue
            widget = widget_of(spec, target)
            if widget is None:
                report.warn(f"{label}: its input {name}={value!r} has no place here; ignored")
                continue
            params[target] = to_ours(mapping.our_type, widget, mapping.imported_value(name, value))
        saved = meta.get(META_PARAMS)
        for name, value in (saved if isinstance(saved, dict) else {}).items():
            widget = widget_of(spec, name)
            if widget is not None:
                params[name] = coerce(widget, value)
        graph.add_node(
            mapping.our_type,
            node_id,
            params,
            title=custom_title(meta.get("title"), mapping, spec, type_id),
        )
        return Slots([], [o.name for o in spec.outputs])
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
    return Slots([], [name for name, _ in outputs])
