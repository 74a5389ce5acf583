"""Copying the path a node's result takes to the outputs, so that a new branch (e.g. a sampler
that continues another sampler from step k) ends in its own decode, preview and save."""

from __future__ import annotations

import copy
from collections.abc import Iterable

from core.graph import commands as c
from core.graph.model import Graph, NodeId


def downstream(graph: Graph, node_id: NodeId, outputs: Iterable[str]) -> list[NodeId]:
    """Every node that the results of ``node_id``'s ``outputs`` reach through links, in id
    order (``node_id`` itself excluded)."""
    seen: set[NodeId] = set()
    todo = [link.dst for name in outputs for link in graph.links_from(node_id, name)]
    while todo:
        nid = todo.pop()
        if nid in seen or nid == node_id:
            continue
        seen.add(nid)
        todo.extend(link.dst for link in graph.links_from(nid))
    return sorted(seen)


def copy_downstream(
    graph: Graph,
    source: NodeId,
    replacement: NodeId,
    outputs: Iterable[str],
    first_id: NodeId,
    offset: tuple[float, float] = (0.0, 0.0),
) -> tuple[list[c.Command], dict[NodeId, NodeId]]:
    """The edits that copy everything downstream of ``source``'s ``outputs`` (parameters,
    titles, flags and editor settings) with ids from ``first_id`` on, shifted by ``offset``,
    fed by ``replacement`` where the originals were fed by ``source`` and linked to the same
    upstream nodes elsewhere. Returns the edits and the map from each original to its copy.

    ``replacement`` may not exist yet (an earlier edit of the same macro adds it)."""
    outputs = tuple(outputs)
    originals = downstream(graph, source, outputs)
    copies = {nid: first_id + index for index, nid in enumerate(originals)}
    edits: list[c.Command] = []
    for nid in originals:
        node = graph.node(nid)
        x, y = node.pos
        pos = (x + offset[0], y + offset[1])
        edits.append(c.AddNode(node.type_id, pos, node.params, copies[nid], node.title))
        for attribute in ("size", "bypassed", "muted", "collapsed", "ui"):
            value = getattr(node, attribute)
            if value:
                value = copy.deepcopy(value)
                edits.append(c.SetNodeAttribute([copies[nid]], attribute, value))
    for nid in originals:
        for link in graph.inputs_of(nid):
            if link.src in copies:
                src = copies[link.src]
            elif link.src == source and link.src_output in outputs:
                src = replacement
            else:
                src = link.src
            edits.append(c.Connect(src, link.src_output, copies[nid], link.dst_input))
    return edits, copies
