"""What the UI and API importers share: slot bookkeeping, linking by slot, ids and layout."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from core.graph import types as t
from core.graph.errors import GraphError
from core.graph.model import Graph
from core.graph.spec import NodeSpec
from nodes.interop.report import ReportBuilder


@dataclass
class Slots:
    """How the ComfyUI slot indices of one imported node name our sockets."""

    inputs: list[str | None]
    outputs: list[str]


def xy_pair(value: Any, default: tuple[float, float] | None) -> tuple[float, float] | None:
    if isinstance(value, dict):  # old LiteGraph: {"0": x, "1": y}
        value = [value.get("0"), value.get("1")]
    if (
        isinstance(value, (list, tuple))
        and len(value) >= 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value[:2])
    ):
        return (float(value[0]), float(value[1]))
    return default


def node_id_of(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def node_label(node_id: Any, type_id: str) -> str:
    return f"node {node_id} ({type_id})"


def connect_slots(
    graph: Graph,
    slots: Mapping[int, Slots],
    src: Any,
    src_slot: Any,
    dst: Any,
    dst_slot: Any,
    report: ReportBuilder,
    what: str = "",
) -> None:
    """Connects a ComfyUI link given by slot indices; a link that cannot be kept is reported."""
    src_id, dst_id = node_id_of(src), node_id_of(dst)
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


def unique_names(names: Iterable[str], fallback: str) -> list[str]:
    """Socket names made unique and non-empty, as a spec requires."""
    out: list[str] = []
    for index, name in enumerate(names):
        base = name or f"{fallback}_{index}"
        candidate, n = base, 2
        while candidate in out:
            candidate, n = f"{base}_{n}", n + 1
        out.append(candidate)
    return out


def placeholder_params(values: Any) -> dict[str, Any]:
    """The widget values of an unknown node as params: by name when the file names them,
    else ``widget_0``, ``widget_1``… in order."""
    if isinstance(values, dict):
        return {str(k): v for k, v in values.items()}
    if isinstance(values, list):
        return {f"widget_{i}": v for i, v in enumerate(values)}
    return {}


def socket_type(raw: Any) -> str:
    return raw if isinstance(raw, str) and raw else t.ANY


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
