"""Expansion: subgraph instances become their inner nodes before planning.

The flat graph keeps every top-level node under its own id and gives each inner node a fresh
id, remembering its path (instance id, …, inner node id) and a label naming where it lives
("Prompt block › KSampler #3"). Links through a definition's boundary are joined up, and a
promoted widget's value on the instance goes to the inner widgets it stands for. So planning,
cache keys (which never include ids), validation, previews and errors all work inside
subgraphs, and equal instances share cache entries.

Muted and bypassed instances are kept whole: muted ones block what depends on them, and
bypassed ones pass their inputs through by type, like any node.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from core.graph.errors import GraphError
from core.graph.model import SUBGRAPH_INPUTS_ID, SUBGRAPH_OUTPUTS_ID, Graph, Link, NodeId
from core.graph.spec import WidgetInput

Endpoint = tuple[NodeId, str]


@dataclass
class Expansion:
    """A flat graph and how its nodes map back to the graph the user edits."""

    graph: Graph
    #: For each inner node's flat id: its path from the top-level instance down.
    paths: dict[NodeId, tuple[NodeId, ...]] = field(default_factory=dict)
    #: For each inner node's flat id: the label messages use.
    labels: dict[NodeId, str] = field(default_factory=dict)
    #: For each expanded top-level instance: the flat ids of its inner nodes.
    members: dict[NodeId, list[NodeId]] = field(default_factory=dict)
    #: For each expanded top-level instance: where its outputs come from in the flat graph.
    ends: dict[NodeId, list[NodeId]] = field(default_factory=dict)
    #: For each expanded top-level instance: how reports name it ("Prompt block #7").
    instance_labels: dict[NodeId, str] = field(default_factory=dict)
    #: Links that could not be joined (a definition changed under a saved link).
    problems: list[tuple[NodeId, str]] = field(default_factory=list)

    def top(self, flat_id: NodeId) -> NodeId:
        """The top-level node a flat node stands for (itself, or its outermost instance)."""
        path = self.paths.get(flat_id)
        return flat_id if path is None else path[0]

    def targets(self, outputs: Iterable[NodeId] | None) -> list[NodeId] | None:
        """Requested top-level nodes as flat nodes: an instance is what makes its outputs
        and the output nodes inside it."""
        if outputs is None:
            return None
        found: list[NodeId] = []
        for nid in outputs:
            if nid in self.members:
                flat = self.graph
                inner = [m for m in self.members[nid] if flat.spec(m).output_node]
                found += [*self.ends.get(nid, []), *inner]
            else:
                found.append(nid)
        return list(dict.fromkeys(found))


def has_instances(graph: Graph) -> bool:
    """Whether the graph holds a subgraph instance that runs (neither muted nor bypassed)."""
    library = graph.subgraphs
    return bool(len(library)) and any(
        n.type_id in library and not (n.muted or n.bypassed) for n in graph
    )


def expand(graph: Graph) -> Expansion:
    """The flat graph that runs ``graph``: every running instance replaced by its nodes."""
    flat = Graph(graph.registry, subgraphs=graph.subgraphs)
    expansion = Expansion(flat)
    _Expander(graph, expansion).run()
    return expansion


class _Expander:
    def __init__(self, graph: Graph, expansion: Expansion) -> None:
        self.graph = graph
        self.out = expansion
        self.flat = expansion.graph
        self.next_id = max(graph.nodes, default=0) + 1

    def run(self) -> None:
        self._inline(self.graph, (), "", {}, {})

    def _inline(
        self,
        g: Graph,
        path: tuple[NodeId, ...],
        where: str,
        feeds: dict[str, Endpoint | None],
        values: dict[str, Any],
    ) -> dict[str, Endpoint | None]:
        """Adds ``g``'s nodes to the flat graph. ``feeds`` says what feeds each boundary input
        and ``values`` the promoted widget values; returns what feeds each boundary output."""
        ends: dict[Endpoint, Endpoint | None] = {}
        library = g.subgraphs

        def source(lk: Link) -> Endpoint | None:
            if lk.src == SUBGRAPH_INPUTS_ID:
                return feeds.get(lk.src_output)
            return ends.get((lk.src, lk.src_output))

        for nid in _topological(g):
            if nid in (SUBGRAPH_INPUTS_ID, SUBGRAPH_OUTPUTS_ID):
                continue
            node = g.node(nid)
            spec = g.spec(nid)
            title = node.title or spec.title
            if node.type_id in library and not (node.muted or node.bypassed):
                definition = library.get(node.type_id)
                sub_feeds = {lk.dst_input: source(lk) for lk in g.inputs_of(nid)}
                sub_values = {
                    w.name: node.params.get(w.name, w.default)
                    for w in spec.widgets
                    if sub_feeds.get(w.name) is None
                }
                start = self.next_id
                outs = self._inline(
                    definition.graph, (*path, nid), f"{where}{title} › ", sub_feeds, sub_values
                )
                for name, endpoint in outs.items():
                    ends[(nid, name)] = endpoint
                if not path:
                    self.out.instance_labels[nid] = f"{title} #{nid}"
                    self.out.members[nid] = list(range(start, self.next_id))
                    self.out.ends[nid] = sorted({e[0] for e in outs.values() if e is not None})
                continue
            params = copy.deepcopy(node.params)
            for lk in g.inputs_of(nid):
                promoted = (
                    lk.src == SUBGRAPH_INPUTS_ID
                    and feeds.get(lk.src_output) is None
                    and lk.src_output in values
                    and isinstance(spec.input(lk.dst_input), WidgetInput)
                )
                if promoted:
                    params[lk.dst_input] = copy.deepcopy(values[lk.src_output])
            if path:
                fid = self.next_id
                self.next_id += 1
                self.out.paths[fid] = (*path, nid)
                self.out.labels[fid] = f"{where}{title} #{nid}"
            else:
                fid = nid
            self.flat.add_node(
                node.type_id,
                fid,
                params,
                node.pos,
                title=node.title,
                bypassed=node.bypassed,
                muted=node.muted,
                placeholder=node.placeholder,
            )
            for out in spec.outputs:
                ends[(nid, out.name)] = (fid, out.name)
            for lk in g.inputs_of(nid):
                src = source(lk)
                if src is None:
                    continue
                try:
                    self.flat.connect(src[0], src[1], fid, lk.dst_input)
                except GraphError as exc:
                    self.out.problems.append((fid, str(exc)))
        result: dict[str, Endpoint | None] = {}
        if g.definition is not None:
            for boundary in g.definition.outputs:
                lk = g.link_to(SUBGRAPH_OUTPUTS_ID, boundary.name)
                result[boundary.name] = None if lk is None else source(lk)
        return result


def _topological(g: Graph) -> list[NodeId]:
    """The graph's nodes, each after every node that feeds it (ids break ties)."""
    waiting = {nid: len(g.inputs_of(nid)) for nid in g.nodes}
    ready = sorted(nid for nid, count in waiting.items() if count == 0)
    order: list[NodeId] = []
    while ready:
        nid = ready.pop(0)
        order.append(nid)
        for lk in g.links_from(nid):
            waiting[lk.dst] -= 1
            if waiting[lk.dst] == 0:
                ready.append(lk.dst)
        ready.sort()
    return order
