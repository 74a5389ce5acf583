"""ComfyUI's subgraphs (frontend 1.24 and later) as LatentLoom subgraphs.

A UI-format workflow lists them under ``definitions.subgraphs``; each has ``inputs`` and
``outputs`` (name, type), its own ``nodes`` and ``links``, and links from node -10 (its
inputs) and to node -20 (its outputs), by slot index, as LatentLoom's definitions do by name.
An instance is a node whose ``type`` is the definition's id; its ``widgets_values`` are the
values of its promoted widgets (the inputs that feed only widgets), in order. Newer frontends
say which widgets an instance shows in ``properties.proxyWidgets``, one ``[node, widget]``
pair per value: node "-1" means the definition's input of that name, any other id an inner
node's widget shown without an input. LatentLoom promotes a widget through an input, so each
such inner widget gets one, named after the widget.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.graph import types as t
from core.graph.errors import GraphError
from core.graph.model import SUBGRAPH_INPUTS_ID, SUBGRAPH_OUTPUTS_ID, Graph
from core.graph.spec import WidgetInput
from core.graph.subgraph import BoundarySocket, SubgraphDefinition, unique_name
from nodes.interop.comfyui.common import Slots, connect_slots, socket_type, unique_names
from nodes.interop.comfyui.mapping import mapping_for
from nodes.interop.report import ReportBuilder

#: ``add_node(graph, raw, node_id, type_id, report) -> Slots`` of the UI importer.
AddNode = Callable[[Graph, dict[str, Any], int, str, ReportBuilder], Slots]


def raw_definitions(data: dict[str, Any]) -> list[dict[str, Any]]:
    definitions = data.get("definitions")
    raw = definitions.get("subgraphs") if isinstance(definitions, dict) else None
    if not isinstance(raw, list):
        return []
    return [d for d in raw if isinstance(d, dict) and isinstance(d.get("id"), str)]


def import_definitions(
    graph: Graph,
    data: dict[str, Any],
    report: ReportBuilder,
    add_node: AddNode,
    links_of: Callable[[Any, ReportBuilder], list[Any]],
) -> None:
    """Adds the workflow's subgraph definitions to ``graph.subgraphs``, innermost first."""
    entries = {d["id"]: d for d in raw_definitions(data)}
    shown = _inner_widgets_shown(data, entries)
    for def_id in _innermost_first(entries, report):
        entry = entries[def_id]
        name = entry.get("name") if isinstance(entry.get("name"), str) else "Subgraph"
        inputs = _sockets(entry.get("inputs"), "input")
        outputs = _sockets(entry.get("outputs"), "output")
        definition = SubgraphDefinition(
            def_id, name, graph.registry, graph.subgraphs, inputs, outputs
        )
        graph.subgraphs.add(definition)
        inner = definition.graph
        _place_boundary(inner, entry)
        slots: dict[int, Slots] = {
            SUBGRAPH_INPUTS_ID: Slots([], [b.name for b in inputs]),
            SUBGRAPH_OUTPUTS_ID: Slots([b.name for b in outputs], []),
        }
        raw_nodes = entry.get("nodes") if isinstance(entry.get("nodes"), list) else []
        for raw in raw_nodes:
            node_id, type_id = raw.get("id") if isinstance(raw, dict) else None, None
            if isinstance(raw, dict):
                type_id = raw.get("type")
            if not isinstance(node_id, int) or not isinstance(type_id, str) or node_id < 0:
                report.warn(f"subgraph {name!r}: a node entry without id or type; skipped")
                continue
            try:
                slots[node_id] = add_node(inner, raw, node_id, type_id, report)
            except GraphError as exc:
                report.warn(f"subgraph {name!r}, node {node_id}: {exc}; skipped")
        # The frontend trusts each input's own link id over a link's target slot.
        slot_of_link = {
            (raw.get("id"), i.get("link")): index
            for raw in raw_nodes
            if isinstance(raw, dict) and isinstance(raw.get("inputs"), list)
            for index, i in enumerate(raw["inputs"])
            if isinstance(i, dict) and i.get("link") is not None
        }
        for link in links_of(entry.get("links"), report):
            connect_slots(
                inner,
                slots,
                link.src,
                link.src_slot,
                link.dst,
                slot_of_link.get((link.dst, link.link_id), link.dst_slot),
                report,
                f"subgraph {name!r}, link {link.link_id}",
            )
        raw_types = {
            raw["id"]: raw["type"]
            for raw in raw_nodes
            if isinstance(raw, dict) and isinstance(raw.get("type"), str)
        }
        for inner_id, widget in shown.get(def_id, []):
            _promote(definition, inner_id, widget, raw_types.get(inner_id), report)


def add_instance(
    graph: Graph, raw: dict[str, Any], node_id: int, type_id: str, common: dict[str, Any]
) -> Slots:
    """Adds an instance of a definition: promoted widgets take ``widgets_values`` in order."""
    definition = graph.subgraphs.get(type_id)
    spec = definition.spec
    raw_values = raw.get("widgets_values")
    raw_values = raw_values if isinstance(raw_values, list) else []
    proxies = _proxy_widgets(raw)
    if proxies:
        pairs = [
            (_promoted_input(definition, node, widget), value)
            for (node, widget), value in zip(proxies, raw_values, strict=False)
        ]
    else:
        values = [v for v in raw_values if v not in _CONTROL_MODES]
        widgets = [i.name for i in spec.inputs if isinstance(i, WidgetInput)]
        pairs = list(zip(widgets, values, strict=False))
    params: dict[str, Any] = {}
    for name, value in pairs:
        widget = spec.input(name) if name is not None else None
        if isinstance(widget, WidgetInput) and widget.check_value(value) is None:
            params[name] = value
    title = raw.get("title")
    graph.add_node(
        type_id,
        node_id,
        params,
        title=title if isinstance(title, str) and title != definition.name else None,
        **common,
    )
    names = [b.name for b in definition.inputs]
    inputs: list[str | None] = []
    raw_inputs = raw.get("inputs") if isinstance(raw.get("inputs"), list) else []
    for index, entry in enumerate(raw_inputs):
        name = entry.get("name") if isinstance(entry, dict) else None
        if name in names:
            inputs.append(name)
        elif index < len(names):
            inputs.append(names[index])
        else:
            inputs.append(None)
    return Slots(inputs, [b.name for b in definition.outputs])


_CONTROL_MODES = ("fixed", "increment", "decrement", "randomize")
#: The frontend's own widget after a seed; LatentLoom keeps that choice on the seed widget.
_CONTROL_WIDGET = "control_after_generate"
#: proxyWidgets' node for "the definition's input of this name".
_INPUT_PROXY = "-1"


def _proxy_widgets(raw: dict[str, Any]) -> list[tuple[str, str]]:
    """An instance's ``properties.proxyWidgets`` as (node, widget) pairs; empty when absent."""
    props = raw.get("properties")
    proxies = props.get("proxyWidgets") if isinstance(props, dict) else None
    if not isinstance(proxies, list):
        return []
    return [
        (str(p[0]), p[1])
        for p in proxies
        if isinstance(p, list) and len(p) == 2 and isinstance(p[1], str)
    ]


def _inner_widgets_shown(
    data: dict[str, Any], entries: dict[str, dict[str, Any]]
) -> dict[str, list[tuple[int, str]]]:
    """Per definition, the inner (node id, widget) pairs its instances show without an input,
    from every instance in the workflow and in the definitions, in order of first mention."""
    instances = [n for n in data.get("nodes") or [] if isinstance(n, dict)]
    for entry in entries.values():
        instances += [n for n in entry.get("nodes") or [] if isinstance(n, dict)]
    shown: dict[str, list[tuple[int, str]]] = {}
    for raw in instances:
        def_id = raw.get("type")
        if def_id not in entries:
            continue
        for node, widget in _proxy_widgets(raw):
            if node == _INPUT_PROXY or widget == _CONTROL_WIDGET or not node.lstrip("-").isdigit():
                continue
            pair = (int(node), widget)
            if pair not in shown.setdefault(def_id, []):
                shown[def_id].append(pair)
    return shown


def _param_name(raw_type: str | None, widget: str, registry: Any) -> str:
    """Our param name for ComfyUI's widget ``widget`` of an inner node of type ``raw_type``."""
    mapping = mapping_for(raw_type, registry) if raw_type else None
    name = mapping.param_for(widget) if mapping is not None else widget
    return name or widget


def _promote(
    definition: SubgraphDefinition,
    inner_id: int,
    widget: str,
    raw_type: str | None,
    report: ReportBuilder,
) -> None:
    """Gives an inner widget that instances show an input of the definition, linked to it."""
    inner = definition.graph
    if inner_id not in inner:
        report.warn(
            f"subgraph {definition.name!r} shows {widget!r} of node {inner_id}, which it lacks"
        )
        return
    param = _param_name(raw_type, widget, inner.registry)
    target = inner.spec(inner_id).input(param)
    if not isinstance(target, WidgetInput) or inner.link_to(inner_id, param) is not None:
        return  # a placeholder's value, or a widget already fed by an input
    name = unique_name(param, (b.name for b in definition.inputs))
    definition.inputs.append(BoundarySocket(name, t.widget_socket_type(target.type)))
    definition.touch()
    inner.connect(SUBGRAPH_INPUTS_ID, name, inner_id, param)


def _promoted_input(definition: SubgraphDefinition, node: str, widget: str) -> str | None:
    """The definition input a proxyWidgets pair stands for, or None (a control widget, or a
    widget that could not be promoted)."""
    if widget == _CONTROL_WIDGET:
        return None
    if node == _INPUT_PROXY:
        return widget if any(b.name == widget for b in definition.inputs) else None
    if not node.lstrip("-").isdigit():
        return None
    inner = definition.graph
    for link in inner.links_from(SUBGRAPH_INPUTS_ID):
        if link.dst == int(node) and link.dst_input in (
            widget,
            _param_of(inner, int(node), widget),
        ):
            return link.src_output
    return None


def _param_of(inner: Graph, node_id: int, widget: str) -> str:
    node = inner.nodes.get(node_id)
    return widget if node is None else _param_name(node.type_id, widget, inner.registry)


def _sockets(raw: Any, fallback: str) -> list[BoundarySocket]:
    entries = [e for e in raw if isinstance(e, dict)] if isinstance(raw, list) else []
    names = unique_names((str(e.get("name", "")) for e in entries), fallback)
    sockets = []
    for name, entry in zip(names, entries, strict=True):
        kind = socket_type(entry.get("type"))
        sockets.append(BoundarySocket(name, t.STRING if kind == t.COMBO else kind))
    return sockets


def _place_boundary(inner: Graph, entry: dict[str, Any]) -> None:
    for key, node_id in (("inputNode", SUBGRAPH_INPUTS_ID), ("outputNode", SUBGRAPH_OUTPUTS_ID)):
        box = entry.get(key, {}).get("bounding") if isinstance(entry.get(key), dict) else None
        if (
            isinstance(box, list)
            and len(box) >= 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box[:2])
        ):
            inner.set_node_attribute(node_id, "pos", (float(box[0]), float(box[1])))


def _innermost_first(entries: dict[str, dict[str, Any]], report: ReportBuilder) -> list[str]:
    uses = {
        def_id: {
            n.get("type")
            for n in (e.get("nodes") if isinstance(e.get("nodes"), list) else [])
            if isinstance(n, dict) and n.get("type") in entries and n.get("type") != def_id
        }
        for def_id, e in entries.items()
    }
    order: list[str] = []
    done: set[str] = set()
    while len(order) < len(entries):
        ready = [d for d in entries if d not in done and uses[d] <= done]
        if not ready:
            left = [d for d in entries if d not in done]
            report.warn(f"subgraphs {', '.join(left)} hold each other in a loop; left out")
            break
        order += ready
        done.update(ready)
    return order
