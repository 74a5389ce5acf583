"""A LatentLoom graph in ComfyUI's API format, for its ``/prompt`` endpoint or scripts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from core.graph import types as t
from core.graph.model import Graph
from core.graph.spec import REROUTE
from nodes.interop.comfyui.mapping import (
    META_PARAMS,
    TypeMapping,
    export_mapping,
    to_comfy,
    widget_of,
)


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
    mappings: dict[int, TypeMapping] = {}
    for node in exported:
        found = None if node.placeholder else export_mapping(node.type_id, graph.registry)
        if found is None:
            unmapped.setdefault(node.type_id, []).append(node.id)
        else:
            mappings[node.id] = found
    outputs = sorted(
        {
            f"output {lk.src_output} of {node.type_id} (node {node.id})"
            for node in exported
            if node.id in mappings
            for lk in graph.links_from(node.id)
            if mappings[node.id].outputs
            and lk.src_output not in mappings[node.id].outputs
            and not graph.node(lk.dst).muted
        }
    )
    if unmapped or outputs:
        raise ComfyExportError(unmapped, outputs)
    prompt: dict[str, dict[str, Any]] = {}
    for node in sorted(exported, key=lambda n: n.id):
        mapping = mappings[node.id]
        spec = graph.spec(node.id)
        inputs: dict[str, Any] = {}
        comfy_params = set()
        for comfy_name in mapping.widgets:
            param = mapping.param_for(comfy_name)
            if param is None or widget_of(spec, param) is None:
                continue
            comfy_params.add(param)
            inputs[comfy_name] = to_comfy(node.type_id, param, node.params[param])
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
