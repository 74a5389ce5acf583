"""Writing workflow files: a graph as JSON-ready data, as text, and saved atomically."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from core.files import atomic_write
from core.graph.model import Graph
from core.graph.notes import notes_to_list
from core.graph.spec import NodeSpec, SocketInput
from core.graph.subgraph_files import definitions_to_list, needed_definitions
from core.graph.workflow_format import FORMAT, VERSION, VERSION_WITHOUT_SUBGRAPHS, mode_name


def _sockets(spec: NodeSpec) -> dict[str, list[list[str]]]:
    return {
        "inputs": [[i.name, i.type] for i in spec.inputs if isinstance(i, SocketInput)],
        "outputs": [[o.name, o.type] for o in spec.outputs],
    }


def to_dict(
    graph: Graph,
    view: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
    node_ids: set[int] | None = None,
) -> dict[str, Any]:
    """The workflow as JSON-ready data; ``node_ids`` limits it to a selection (copy)."""
    keep = set(graph.nodes) if node_ids is None else node_ids
    nodes, ui_nodes = [], {}
    for node in graph:
        if node.id not in keep:
            continue
        spec = graph.spec(node.id)
        nodes.append(
            {
                "id": node.id,
                "type": node.type_id,
                "type_version": spec.version,
                "params": node.params,
                "title": node.title,
                "mode": mode_name(node.bypassed, node.muted),
                "sockets": _sockets(spec),
            }
        )
        if spec.output_node:  # kept so that a placeholder still knows it was an output
            nodes[-1]["output_node"] = True
        if spec.pack is not None:  # kept so that a placeholder can name the pack to install
            nodes[-1]["pack"] = spec.pack
        ui: dict[str, Any] = {"pos": list(node.pos), "collapsed": node.collapsed}
        if node.size is not None:
            ui["size"] = list(node.size)
        if node.ui:
            ui["extra"] = node.ui
        ui_nodes[str(node.id)] = ui
    links = sorted(
        [lk.src, lk.src_output, lk.dst, lk.dst_input]
        for lk in graph.links
        if lk.src in keep and lk.dst in keep
    )
    groups, ui_groups = [], {}
    for group in graph.groups.values():
        if node_ids is not None and not group.nodes <= keep:
            continue
        groups.append({"id": group.id, "title": group.title, "nodes": sorted(group.nodes)})
        ui_groups[str(group.id)] = {
            "color": group.color,
            "rect": None if group.rect is None else list(group.rect),
        }
    data = {
        "format": FORMAT,
        "version": VERSION_WITHOUT_SUBGRAPHS,
        "nodes": nodes,
        "links": links,
        "groups": groups,
        "ui": {"nodes": ui_nodes, "groups": ui_groups, "view": dict(view or {})},
        "extra": dict(extra or {}),
    }
    if graph.notes and node_ids is None:  # copying a selection of nodes leaves notes out
        data["notes"] = notes_to_list(graph)
    if node_ids is not None:  # a copy carries the definitions its instances need
        types = (graph.nodes[n].type_id for n in keep if n in graph.nodes)
        needed = needed_definitions(graph.subgraphs, types)
        if needed:
            data["version"] = VERSION
            data["subgraphs"] = definitions_to_list(graph, to_dict, needed)
    elif graph.definition is None and len(graph.subgraphs):
        data["version"] = VERSION
        data["subgraphs"] = definitions_to_list(graph, to_dict)
    return data


def dumps(graph: Graph, view: Mapping[str, Any] | None = None, **kwargs: Any) -> str:
    return json.dumps(to_dict(graph, view, **kwargs), indent=1, sort_keys=False)


def save_workflow(
    graph: Graph, path: str | os.PathLike[str], view: Mapping[str, Any] | None = None
) -> None:
    """Saves the graph as a workflow file, atomically."""
    atomic_write(path, dumps(graph, view).encode("utf-8"))
