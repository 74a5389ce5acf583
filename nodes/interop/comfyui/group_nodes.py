"""ComfyUI's older *group nodes* as LatentLoom subgraphs.

Before subgraphs, ComfyUI's frontend saved a group node's definition in the workflow's
``extra.groupNodes[NAME]`` and its instances as nodes of type ``workflow/NAME`` (later
``workflow>NAME``). A definition holds ``nodes`` (each with ``type``, ``inputs``, ``outputs``
and ``widgets_values``; ``index`` is its place in the list), ``links`` between them by index
(``[source index, source slot, target index, target slot, …, type]``; a ``null`` source is a
link from outside the group), ``external`` (``[index, slot, type]``: inner outputs used
outside) and ``config`` (per node index: inputs and outputs renamed or hidden).

The group's inputs are the inner inputs no inner link feeds, its outputs the inner outputs no
inner link uses (or that ``external`` lists), in node order. Every inner widget is shown on
the instance: here it is a promoted widget, and the instance's ``widgets_values`` (every
inner node's values in node order, seed control values included) become its params.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.graph import types as t
from core.graph.errors import GraphError
from core.graph.model import SUBGRAPH_INPUTS_ID, SUBGRAPH_OUTPUTS_ID, Graph
from core.graph.spec import REROUTE, WidgetInput
from core.graph.subgraph import BoundarySocket, SubgraphDefinition
from nodes.interop.comfyui.common import Slots, connect_slots, socket_type, xy_pair
from nodes.interop.comfyui.mapping import (
    control_ui,
    mapping_for,
    widget_values_to_params,
)
from nodes.interop.report import ReportBuilder

#: ``add_node(graph, raw, node_id, type_id, report) -> Slots`` of the UI importer.
AddNode = Callable[[Graph, dict[str, Any], int, str, ReportBuilder], Slots]
#: How an instance's type names its group: ``workflow/NAME`` (``workflow>NAME`` since 2024).
PREFIXES = ("workflow/", "workflow>")
#: Group nodes' definitions get ids derived from their content, so the same group opened
#: twice is the same definition.
_ID_NAMESPACE = uuid.UUID("6f1b2c1e-8d0a-4f0e-9a57-3c2d7e4b9a10")


@dataclass
class _Promoted:
    """One inner widget shown on the instance."""

    name: str
    node_id: int
    param: str


@dataclass
class GroupNode:
    """One imported group: its definition and how an instance's slots and values map."""

    definition: SubgraphDefinition
    #: Per inner node in index order: its id and how many ``widgets_values`` it holds.
    value_counts: list[tuple[int, int]] = field(default_factory=list)
    promoted: list[_Promoted] = field(default_factory=list)
    #: The definition inputs that are sockets, in ComfyUI's slot order.
    socket_inputs: list[str] = field(default_factory=list)


def group_type_name(type_id: str) -> str | None:
    """``NAME`` for an instance type ``workflow/NAME``, else None."""
    for prefix in PREFIXES:
        if type_id.startswith(prefix) and len(type_id) > len(prefix):
            return type_id[len(prefix) :]
    return None


def import_group_nodes(
    graph: Graph, data: dict[str, Any], report: ReportBuilder, add_node: AddNode
) -> dict[str, GroupNode]:
    """Builds ``extra.groupNodes`` into ``graph.subgraphs``; keyed by every instance type
    (``workflow/NAME`` and ``workflow>NAME``) that names each group."""
    extra = data.get("extra")
    raw_groups = extra.get("groupNodes") if isinstance(extra, dict) else None
    if not isinstance(raw_groups, dict):
        return {}
    found: dict[str, GroupNode] = {}
    for name, entry in raw_groups.items():
        if not isinstance(name, str) or not isinstance(entry, dict):
            continue
        try:
            group = _import_group(graph, name, entry, report, add_node)
        except GraphError as exc:
            report.warn(f"group node {name!r}: {exc}; its nodes stay unknown")
            continue
        for prefix in PREFIXES:
            found[prefix + name] = group
    return found


def _import_group(
    graph: Graph, name: str, entry: dict[str, Any], report: ReportBuilder, add_node: AddNode
) -> GroupNode:
    text = json.dumps(entry, sort_keys=True, default=str)
    def_id = str(uuid.uuid5(_ID_NAMESPACE, f"{name}\n{text}"))
    if def_id in graph.subgraphs:  # the same group twice under two names
        def_id = str(uuid.uuid4())
    definition = SubgraphDefinition(def_id, name, graph.registry, graph.subgraphs)
    graph.subgraphs.add(definition)
    inner = definition.graph
    group = GroupNode(definition)
    raw_nodes = [n if isinstance(n, dict) else {} for n in _list(entry.get("nodes"))]
    links = [lk for lk in _list(entry.get("links")) if isinstance(lk, list) and len(lk) >= 4]
    config = entry.get("config") if isinstance(entry.get("config"), dict) else {}

    slots: dict[int, Slots] = {}
    for index, raw in enumerate(raw_nodes):
        type_id = raw.get("type")
        values = raw.get("widgets_values")
        node_id = index + 1
        group.value_counts.append((node_id, len(values) if isinstance(values, list) else 0))
        if not isinstance(type_id, str):
            report.warn(f"group node {name!r}: inner node {index} has no type; skipped")
            continue
        inner_raw = {**raw, "id": node_id}
        try:
            slots[node_id] = add_node(inner, inner_raw, node_id, type_id, report)
        except GraphError as exc:
            report.warn(f"group node {name!r}, inner node {index}: {exc}; skipped")
    fed, used = set(), set()
    for lk in links:
        src, src_slot, dst, dst_slot = lk[:4]
        if src is None:
            continue
        fed.add((dst, dst_slot))
        used.add((src, src_slot))
        connect_slots(
            inner, slots, _id(src), src_slot, _id(dst), dst_slot, report,
            f"group node {name!r}, link {src}[{src_slot}] → {dst}[{dst_slot}]",
        )  # fmt: skip
    external = {
        (_index(e[0]), e[1])
        for e in _list(entry.get("external"))
        if isinstance(e, list) and len(e) >= 2 and isinstance(e[1], int)
    }
    outside_types = {(lk[2], lk[3]): lk[5] for lk in links if lk[0] is None and len(lk) > 5}

    seen: dict[str, int] = {}
    for index, raw in enumerate(raw_nodes):
        node_id = index + 1
        if node_id not in slots:
            continue
        node_config = config.get(str(index)) if isinstance(config.get(str(index)), dict) else {}
        for slot, entry_in in enumerate(_list(raw.get("inputs"))):
            if (index, slot) in fed or not isinstance(entry_in, dict):
                continue
            target = _slot(slots[node_id].inputs, slot)
            if target is None:
                continue
            is_reroute = inner.node(node_id).type_id == REROUTE.type_id
            kind = outside_types.get((index, slot), entry_in.get("type"))
            key = str(kind) if is_reroute else _input_name(entry_in)
            own = key if is_reroute else str(entry_in.get("label") or key)
            label = _configured(node_config, "input", key, raw, seen, own)
            if label is None:
                continue
            _add_boundary(definition, "inputs", label, socket_type(kind))
            try:
                inner.connect(SUBGRAPH_INPUTS_ID, label, node_id, target)
            except GraphError as exc:
                report.warn(f"group node {name!r}, input {label!r}: {exc}; left unlinked")
            if not isinstance(inner.spec(node_id).input(target), WidgetInput):
                group.socket_inputs.append(label)
        _promote_widgets(definition, node_id, raw, node_config, seen, group)
    seen_out: dict[str, int] = {}
    for index, raw in enumerate(raw_nodes):
        node_id = index + 1
        if node_id not in slots:
            continue
        node_config = config.get(str(index)) if isinstance(config.get(str(index)), dict) else {}
        for slot, entry_out in enumerate(_list(raw.get("outputs"))):
            if (index, slot) in used and (index, slot) not in external:
                continue
            source = _slot(slots[node_id].outputs, slot)
            if source is None or not isinstance(entry_out, dict):
                continue
            is_reroute = inner.node(node_id).type_id == REROUTE.type_id
            kind = inner.spec(node_id).output(source).type
            own = kind if is_reroute else str(entry_out.get("name") or source)
            label = _configured(node_config, "output", str(slot), raw, seen_out, own)
            if label is None:
                continue
            _add_boundary(definition, "outputs", label, kind)
            try:
                inner.connect(node_id, source, SUBGRAPH_OUTPUTS_ID, label)
            except GraphError as exc:
                report.warn(f"group node {name!r}, output {label!r}: {exc}; left unlinked")
    _place(inner, raw_nodes)
    return group


def _promote_widgets(
    definition: SubgraphDefinition,
    node_id: int,
    raw: dict[str, Any],
    node_config: dict[str, Any],
    seen: dict[str, int],
    group: GroupNode,
) -> None:
    """Shows the inner node's widgets on the instance, in ComfyUI's widget order."""
    inner = definition.graph
    mapping = mapping_for(str(raw.get("type")), inner.registry)
    node = inner.node(node_id)
    if mapping is None or node.placeholder is not None:
        return
    spec = inner.spec(node_id)
    for comfy_name in mapping.widgets:
        param = mapping.param_for(comfy_name)
        widget = spec.input(param) if param is not None else None
        if not isinstance(widget, WidgetInput) or inner.link_to(node_id, widget.name):
            continue
        label = _configured(node_config, "input", comfy_name, raw, seen)
        if label is None:
            continue
        _add_boundary(definition, "inputs", label, t.widget_socket_type(widget.type))
        inner.connect(SUBGRAPH_INPUTS_ID, label, node_id, widget.name)
        group.promoted.append(_Promoted(label, node_id, widget.name))


def _configured(
    node_config: dict[str, Any],
    side: str,
    key: str,
    raw: dict[str, Any],
    seen: dict[str, int],
    own: str | None = None,
) -> str | None:
    """The name a group input or output shows (None: hidden), as ComfyUI words it: the
    config's name, else the socket's; a name already taken gets the node's title first."""
    entries = node_config.get(side)
    custom = entries.get(key) if isinstance(entries, dict) else None
    custom = custom if isinstance(custom, dict) else {}
    if custom.get("visible") is False:
        return None
    name = custom.get("name") if isinstance(custom.get("name"), str) else (own or key)
    name = name or side
    if name in seen:
        title = raw.get("title") if isinstance(raw.get("title"), str) else raw.get("type")
        name = f"{title} {key if side == 'input' else own or key}"
    base, n = name, 2
    while name in seen:
        name, n = f"{base} {n}", n + 1
    seen[name] = 1
    return name


def _add_boundary(definition: SubgraphDefinition, side: str, name: str, kind: str) -> None:
    definition.sockets(side).append(BoundarySocket(name, kind))
    definition.touch()


def add_group_instance(
    graph: Graph,
    raw: dict[str, Any],
    node_id: int,
    group: GroupNode,
    common: dict[str, Any],
    report: ReportBuilder,
) -> Slots:
    """Adds an instance: its ``widgets_values`` are split by inner node and become the
    promoted widgets' values (with their seeds' after-run modes)."""
    definition = group.definition
    params, control = _instance_values(raw.get("widgets_values"), group, report, node_id)
    title = raw.get("title")
    graph.add_node(
        definition.id,
        node_id,
        params,
        title=None if not isinstance(title, str) or title in _default_titles(definition) else title,
        ui=control_ui(control) or None,
        **common,
    )
    inputs: list[str | None] = []
    socket_names = group.socket_inputs
    for index, entry in enumerate(_list(raw.get("inputs"))):
        name = entry.get("name") if isinstance(entry, dict) else None
        if name in socket_names:
            inputs.append(name)
        else:
            inputs.append(socket_names[index] if index < len(socket_names) else None)
    return Slots(inputs, [b.name for b in definition.outputs])


def _instance_values(
    values: Any, group: GroupNode, report: ReportBuilder, node_id: int
) -> tuple[dict[str, Any], dict[str, str]]:
    params: dict[str, Any] = {}
    control: dict[str, str] = {}
    total = sum(count for _, count in group.value_counts)
    if not isinstance(values, list) or not values:
        return params, control
    if len(values) != total:
        report.warn(
            f"node {node_id} ({group.definition.name}): {len(values)} widget values where its "
            f"group holds {total}; the group's own values are used"
        )
        return params, control
    inner = group.definition.graph
    position = 0
    for inner_id, count in group.value_counts:
        chunk = values[position : position + count]
        position += count
        if inner_id not in inner or inner.node(inner_id).placeholder is not None:
            continue
        type_id = inner.node(inner_id).type_id
        mapping = mapping_for(type_id, inner.registry)
        if mapping is None:
            continue
        label = f"node {node_id} ({group.definition.name} › {type_id})"
        values_of, modes = widget_values_to_params(
            mapping, inner.spec(inner_id), chunk, report, label
        )
        for promoted in group.promoted:
            if promoted.node_id == inner_id and promoted.param in values_of:
                params[promoted.name] = values_of[promoted.param]
                if promoted.param in modes:
                    control[promoted.name] = modes[promoted.param]
    return params, control


def _default_titles(definition: SubgraphDefinition) -> set[str]:
    return {definition.name, *(p + definition.name for p in PREFIXES)}


def _place(inner: Graph, raw_nodes: list[dict[str, Any]]) -> None:
    """Puts the boundary nodes left and right of the inner nodes."""
    spots = [xy_pair(n.get("pos"), None) for n in raw_nodes]
    xs = [p[0] for p in spots if p is not None]
    ys = [p[1] for p in spots if p is not None]
    if xs:
        inner.set_node_attribute(SUBGRAPH_INPUTS_ID, "pos", (min(xs) - 300.0, min(ys)))
        inner.set_node_attribute(SUBGRAPH_OUTPUTS_ID, "pos", (max(xs) + 400.0, min(ys)))


def _input_name(entry: dict[str, Any]) -> str:
    widget = entry.get("widget")
    if isinstance(widget, dict) and isinstance(widget.get("name"), str):
        return widget["name"]
    return str(entry.get("name") or "")


def _slot(names: list[Any], slot: Any) -> Any:
    if isinstance(slot, int) and not isinstance(slot, bool) and 0 <= slot < len(names):
        return names[slot]
    return None


def _id(index: Any) -> Any:
    return index + 1 if isinstance(index, int) and not isinstance(index, bool) else None


def _index(value: Any) -> Any:
    """An ``external`` entry's node: its index, or (older files) the node itself."""
    return value.get("index") if isinstance(value, dict) else value


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
