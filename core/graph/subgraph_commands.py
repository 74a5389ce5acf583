"""Undoable edits of subgraphs: convert a selection, unpack an instance, edit a definition.

Each command is done on the graph the user is looking at (``graph``); those that change a
definition find it in ``graph.subgraphs`` by id, so they work from the workflow's graph or
from inside any definition. A definition object is kept across undo and redo, so commands
recorded inside it stay valid.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from core.graph import types as t
from core.graph.commands import (
    AddNode,
    Command,
    Connect,
    Fragment,
    Macro,
    Paste,
    RemoveNodes,
)
from core.graph.errors import GraphError
from core.graph.model import (
    BOUNDARY_IDS,
    SUBGRAPH_INPUTS_ID,
    SUBGRAPH_OUTPUTS_ID,
    Graph,
    Link,
    NodeId,
)
from core.graph.spec import WidgetInput
from core.graph.subgraph import (
    BoundarySocket,
    SubgraphDefinition,
    boundary_type,
    new_definition_id,
    unique_name,
)


def definition_of(graph: Graph, def_id: str) -> SubgraphDefinition:
    return graph.subgraphs.get(def_id)


class _Sequence(Command):
    """Runs child commands built on the first ``do``; undo runs them backwards."""

    def __init__(self) -> None:
        self._children: list[Command] | None = None

    def build(self, graph: Graph) -> list[Command]:
        raise NotImplementedError

    def do(self, graph: Graph) -> None:
        if self._children is None:
            self._children = self.build(graph)
        Macro(self.text, self._children).do(graph)

    def undo(self, graph: Graph) -> None:
        assert self._children is not None
        Macro(self.text, self._children).undo(graph)


class AddDefinition(Command):
    text = "Add Subgraph"

    def __init__(self, definition: SubgraphDefinition) -> None:
        self.definition = definition

    def do(self, graph: Graph) -> None:
        graph.subgraphs.add(self.definition)

    def undo(self, graph: Graph) -> None:
        graph.subgraphs.remove(self.definition.id)


class RemoveDefinition(Command):
    """Drops a definition no node uses any more."""

    text = "Remove Subgraph"

    def __init__(self, def_id: str) -> None:
        self.def_id = def_id
        self._definition: SubgraphDefinition | None = None

    def do(self, graph: Graph) -> None:
        definition = definition_of(graph, self.def_id)
        if graph.subgraphs.instances(self.def_id):
            raise GraphError(
                f"subgraph {definition.name!r} is still used; delete or unpack its nodes first"
            )
        self._definition = graph.subgraphs.remove(self.def_id)

    def undo(self, graph: Graph) -> None:
        assert self._definition is not None
        graph.subgraphs.add(self._definition)


class ConvertToSubgraph(_Sequence):
    """Turns a selection into one instance of a new definition (Ctrl+Shift+G). Links that
    crossed the selection's edge become the definition's inputs and outputs; inner nodes keep
    their ids and positions, so unpacking the instance gives the selection back."""

    text = "Convert to Subgraph"

    def __init__(self, node_ids: Iterable[NodeId], name: str = "Subgraph") -> None:
        super().__init__()
        self.node_ids = sorted(set(node_ids))
        self.name = name
        self.definition: SubgraphDefinition | None = None
        self.instance_id: NodeId | None = None

    def build(self, graph: Graph) -> list[Command]:
        ids = set(self.node_ids)
        if not ids:
            raise GraphError("select the nodes to convert to a subgraph first")
        for nid in self.node_ids:
            graph.node(nid)
            if graph.definition is not None and nid in BOUNDARY_IDS:
                raise GraphError("a subgraph's inputs and outputs cannot go into a subgraph")
        inner, incoming, outgoing = [], [], []
        for nid in self.node_ids:
            for lk in graph.inputs_of(nid):
                (inner if lk.src in ids else incoming).append(lk)
            outgoing += [lk for lk in graph.links_from(nid) if lk.dst not in ids]

        inputs: list[BoundarySocket] = []
        input_of: dict[tuple[NodeId, str], str] = {}
        for lk in incoming:
            if (lk.src, lk.src_output) not in input_of:
                kind = boundary_type(
                    graph.output_type(lk.src, lk.src_output), graph.input_type(lk.dst, lk.dst_input)
                )
                name = unique_name(lk.dst_input, (b.name for b in inputs))
                inputs.append(BoundarySocket(name, kind))
                input_of[(lk.src, lk.src_output)] = name
        outputs: list[BoundarySocket] = []
        output_of: dict[tuple[NodeId, str], str] = {}
        for lk in outgoing:
            if (lk.src, lk.src_output) not in output_of:
                kind = boundary_type(
                    graph.input_type(lk.dst, lk.dst_input), graph.output_type(lk.src, lk.src_output)
                )
                name = unique_name(lk.src_output, (b.name for b in outputs))
                outputs.append(BoundarySocket(name, kind))
                output_of[(lk.src, lk.src_output)] = name

        definition = SubgraphDefinition(
            new_definition_id(), self.name, graph.registry, graph.subgraphs, inputs, outputs
        )
        self.definition = definition
        inside = definition.graph
        xs = [graph.node(n).pos[0] for n in self.node_ids]
        ys = [graph.node(n).pos[1] for n in self.node_ids]
        inside.set_node_attribute(SUBGRAPH_INPUTS_ID, "pos", (min(xs) - 300.0, sum(ys) / len(ys)))
        inside.set_node_attribute(SUBGRAPH_OUTPUTS_ID, "pos", (max(xs) + 350.0, sum(ys) / len(ys)))
        fragment = Fragment.copy_from(graph, self.node_ids)
        paste = Paste(
            Fragment(fragment.nodes, fragment.links, [], fragment.groups), offset=(0.0, 0.0)
        )
        paste.id_map = {n: n for n in self.node_ids}
        paste.do(inside)
        for lk in incoming:
            name = input_of[(lk.src, lk.src_output)]
            inside.connect(SUBGRAPH_INPUTS_ID, name, lk.dst, lk.dst_input)
        for (src, out), name in output_of.items():
            inside.connect(src, out, SUBGRAPH_OUTPUTS_ID, name)

        add = AddNode(definition.id, (min(xs), sum(ys) / len(ys)), title=None)
        children: list[Command] = [RemoveNodes(self.node_ids), AddDefinition(definition), add]
        children.append(_Bind(add, input_of, output_of, outgoing))
        return children

    def do(self, graph: Graph) -> None:
        super().do(graph)
        assert self._children is not None
        self.instance_id = self._children[2].node_id  # type: ignore[attr-defined]


class _Bind(Command):
    """Links a new instance to what the converted selection was linked to."""

    def __init__(
        self,
        add: AddNode,
        input_of: dict[tuple[NodeId, str], str],
        output_of: dict[tuple[NodeId, str], str],
        outgoing: list[Link],
    ) -> None:
        self.add, self.input_of, self.output_of, self.outgoing = add, input_of, output_of, outgoing
        self._done: list[Command] = []

    def do(self, graph: Graph) -> None:
        iid = self.add.node_id
        assert iid is not None
        links = [Connect(src, out, iid, name) for (src, out), name in self.input_of.items()]
        links += [
            Connect(iid, self.output_of[(lk.src, lk.src_output)], lk.dst, lk.dst_input)
            for lk in self.outgoing
        ]
        Macro("", links).do(graph)
        self._done = links

    def undo(self, graph: Graph) -> None:
        Macro("", self._done).undo(graph)


class UnpackSubgraph(_Sequence):
    """Replaces an instance by a copy of its definition's nodes, linked as the instance was;
    promoted widgets' values go back to the inner widgets. Inner nodes keep their ids where
    those are free. The definition goes too when no other node uses it."""

    text = "Unpack Subgraph"

    def __init__(self, instance_id: NodeId) -> None:
        super().__init__()
        self.instance_id = instance_id
        self.id_map: dict[NodeId, NodeId] = {}

    def build(self, graph: Graph) -> list[Command]:
        node = graph.node(self.instance_id)
        if node.type_id not in graph.subgraphs:
            raise GraphError(f"node {self.instance_id} is not a subgraph")
        definition = definition_of(graph, node.type_id)
        inside = definition.graph
        spec = graph.spec(self.instance_id)
        inner_ids = sorted(n.id for n in inside if n.id not in BOUNDARY_IDS)
        taken = set(graph.nodes) - {self.instance_id}
        next_id = max([*taken, *inner_ids, 0]) + 1
        for nid in inner_ids:
            if nid in taken:
                self.id_map[nid] = next_id
                next_id += 1
            else:
                self.id_map[nid] = nid
        fed = {lk.dst_input: lk for lk in graph.inputs_of(self.instance_id)}
        fragment = Fragment.copy_from(inside, inner_ids)
        by_id = {n.id: n for n in fragment.nodes}
        links: list[Command] = []
        for boundary in definition.inputs:
            outer = fed.get(boundary.name)
            for lk in inside.links_from(SUBGRAPH_INPUTS_ID, boundary.name):
                if lk.dst in BOUNDARY_IDS:
                    continue
                if outer is not None:
                    links.append(
                        Connect(outer.src, outer.src_output, self.id_map[lk.dst], lk.dst_input)
                    )
                elif isinstance(spec.input(boundary.name), WidgetInput):
                    value = node.params.get(boundary.name)
                    if value is not None:
                        by_id[lk.dst].params[lk.dst_input] = copy.deepcopy(value)
        for lk in graph.links_from(self.instance_id):
            feed = inside.link_to(SUBGRAPH_OUTPUTS_ID, lk.src_output)
            if feed is None:
                continue
            if feed.src == SUBGRAPH_INPUTS_ID:
                outer = fed.get(feed.src_output)
                if outer is not None:
                    links.append(Connect(outer.src, outer.src_output, lk.dst, lk.dst_input))
            else:
                links.append(Connect(self.id_map[feed.src], feed.src_output, lk.dst, lk.dst_input))
        paste = Paste(Fragment(fragment.nodes, fragment.links, [], fragment.groups), (0.0, 0.0))
        paste.id_map = dict(self.id_map)
        children: list[Command] = [RemoveNodes([self.instance_id]), paste, *links]
        others = [x for x in graph.subgraphs.instances(definition.id) if x[1] != self.instance_id]
        if not others:
            children.append(RemoveDefinition(definition.id))
        return children


class EditInside(Command):
    """An ordinary command done inside a definition's graph (for scripts: the editor pushes
    commands on the definition's graph directly)."""

    def __init__(self, def_id: str, command: Command) -> None:
        self.def_id, self.command = def_id, command
        self.text = command.text

    def do(self, graph: Graph) -> None:
        self.command.do(definition_of(graph, self.def_id).graph)

    def undo(self, graph: Graph) -> None:
        self.command.undo(definition_of(graph, self.def_id).graph)


class RenameSubgraph(Command):
    text = "Rename Subgraph"

    def __init__(self, def_id: str, name: str) -> None:
        self.def_id, self.name = def_id, name
        self._old = ""

    def do(self, graph: Graph) -> None:
        definition = definition_of(graph, self.def_id)
        if not self.name.strip():
            raise GraphError("a subgraph needs a name")
        self._old, definition.name = definition.name, self.name
        definition.touch()

    def undo(self, graph: Graph) -> None:
        definition = definition_of(graph, self.def_id)
        definition.name = self._old
        definition.touch()


class AddSubgraphSocket(Command):
    """Declares a new input or output (``side``: "inputs" or "outputs") at ``index``."""

    text = "Add Subgraph Socket"

    def __init__(self, def_id: str, side: str, name: str, kind: str, index: int | None = None):
        self.def_id, self.side, self.name, self.kind, self.index = def_id, side, name, kind, index

    def do(self, graph: Graph) -> None:
        definition = definition_of(graph, self.def_id)
        sockets = definition.sockets(self.side)
        if any(b.name == self.name for b in sockets):
            raise GraphError(
                f"subgraph {definition.name!r} already has {self.side[:-1]} {self.name!r}"
            )
        if not self.name:
            raise GraphError("a subgraph input or output needs a name")
        index = len(sockets) if self.index is None else self.index
        sockets.insert(index, BoundarySocket(self.name, self.kind))
        definition.touch()

    def undo(self, graph: Graph) -> None:
        definition = definition_of(graph, self.def_id)
        sockets = definition.sockets(self.side)
        sockets[:] = [b for b in sockets if b.name != self.name]
        definition.touch()


def _socket_links(definition: SubgraphDefinition, side: str, name: str) -> list[tuple[Graph, Link]]:
    """Every link, inside the definition and to its instances anywhere, through one socket."""
    inside = definition.graph
    if side == "inputs":
        found = [(inside, lk) for lk in inside.links_from(SUBGRAPH_INPUTS_ID, name)]
        for graph, iid in definition.library.instances(definition.id):
            lk = graph.link_to(iid, name)
            if lk is not None:
                found.append((graph, lk))
    else:
        lk = inside.link_to(SUBGRAPH_OUTPUTS_ID, name)
        found = [] if lk is None else [(inside, lk)]
        for graph, iid in definition.library.instances(definition.id):
            found += [(graph, x) for x in graph.links_from(iid, name)]
    return found


class RemoveSubgraphSocket(Command):
    """Removes an input or output with every link through it, in every graph."""

    text = "Remove Subgraph Socket"

    def __init__(self, def_id: str, side: str, name: str) -> None:
        self.def_id, self.side, self.name = def_id, side, name
        self._links: list[tuple[Graph, Link]] = []
        self._params: list[tuple[Graph, NodeId, Any]] = []
        self._index = 0
        self._socket: BoundarySocket | None = None

    def do(self, graph: Graph) -> None:
        definition = definition_of(graph, self.def_id)
        sockets = definition.sockets(self.side)
        index = next((i for i, b in enumerate(sockets) if b.name == self.name), None)
        if index is None:
            raise GraphError(f"subgraph {definition.name!r} has no {self.side[:-1]} {self.name!r}")
        self._index, self._socket = index, sockets[index]
        self._links = _socket_links(definition, self.side, self.name)
        for g, lk in self._links:
            g.disconnect(lk.dst, lk.dst_input)
        self._params = []
        if self.side == "inputs":
            for g, iid in definition.library.instances(definition.id):
                params = g.node(iid).params
                if self.name in params:
                    self._params.append((g, iid, copy.deepcopy(params[self.name])))
                    g.drop_param(iid, self.name)
        del sockets[index]
        definition.touch()

    def undo(self, graph: Graph) -> None:
        definition = definition_of(graph, self.def_id)
        assert self._socket is not None
        definition.sockets(self.side).insert(self._index, self._socket)
        definition.touch()
        for g, lk in self._links:
            g.connect(lk.src, lk.src_output, lk.dst, lk.dst_input)
        for g, iid, value in self._params:
            g.set_param(iid, self.name, value)


class RenameSubgraphSocket(Command):
    """Renames an input or output; the links through it and promoted values follow."""

    text = "Rename Subgraph Socket"

    def __init__(self, def_id: str, side: str, old: str, new: str) -> None:
        self.def_id, self.side, self.old, self.new = def_id, side, old, new

    def do(self, graph: Graph) -> None:
        self._rename(graph, self.old, self.new)

    def undo(self, graph: Graph) -> None:
        self._rename(graph, self.new, self.old)

    def _rename(self, graph: Graph, old: str, new: str) -> None:
        definition = definition_of(graph, self.def_id)
        sockets = definition.sockets(self.side)
        if not new or any(b.name == new for b in sockets):
            raise GraphError(f"subgraph {definition.name!r} already has a socket named {new!r}")
        index = next((i for i, b in enumerate(sockets) if b.name == old), None)
        if index is None:
            raise GraphError(f"subgraph {definition.name!r} has no {self.side[:-1]} {old!r}")
        links = _socket_links(definition, self.side, old)
        for g, lk in links:
            g.disconnect(lk.dst, lk.dst_input)
        values = []
        if self.side == "inputs":
            for g, iid in definition.library.instances(definition.id):
                if old in g.node(iid).params:
                    values.append((g, iid, copy.deepcopy(g.node(iid).params[old])))
                    g.drop_param(iid, old)
        sockets[index] = BoundarySocket(new, sockets[index].type)
        definition.touch()
        for g, lk in links:
            renamed = _renamed(lk, definition, self.side, new, g)
            g.connect(renamed.src, renamed.src_output, renamed.dst, renamed.dst_input)
        for g, iid, value in values:
            g.set_param(iid, new, value)


def _renamed(lk: Link, definition: SubgraphDefinition, side: str, new: str, g: Graph) -> Link:
    inner = g is definition.graph
    if (side == "inputs") == inner:  # the socket is this link's source
        return Link(lk.src, new, lk.dst, lk.dst_input)
    return Link(lk.src, lk.src_output, lk.dst, new)


class MoveSubgraphSocket(Command):
    """Moves an input or output to another place in the list."""

    text = "Reorder Subgraph Sockets"

    def __init__(self, def_id: str, side: str, name: str, index: int) -> None:
        self.def_id, self.side, self.name, self.index = def_id, side, name, index
        self._old = 0

    def _move(self, graph: Graph, index: int) -> int:
        definition = definition_of(graph, self.def_id)
        sockets = definition.sockets(self.side)
        old = next((i for i, b in enumerate(sockets) if b.name == self.name), None)
        if old is None:
            raise GraphError(f"subgraph {definition.name!r} has no {self.side[:-1]} {self.name!r}")
        sockets.insert(max(0, min(index, len(sockets) - 1)), sockets.pop(old))
        definition.touch()
        return old

    def do(self, graph: Graph) -> None:
        self._old = self._move(graph, self.index)

    def undo(self, graph: Graph) -> None:
        self._move(graph, self._old)


class PromoteWidget(_Sequence):
    """Shows an inner node's widget on every instance: a new input linked to the widget, so
    the instance gets the widget with its range and current value."""

    text = "Promote Widget"

    def __init__(self, def_id: str, node_id: NodeId, param: str, name: str | None = None):
        super().__init__()
        self.def_id, self.node_id, self.param, self.name = def_id, node_id, param, name

    def build(self, graph: Graph) -> list[Command]:
        definition = definition_of(graph, self.def_id)
        inside = definition.graph
        widget = inside.spec(self.node_id).input(self.param)
        if not isinstance(widget, WidgetInput):
            raise GraphError(f"node {self.node_id} has no widget {self.param!r} to promote")
        if inside.link_to(self.node_id, self.param) is not None:
            raise GraphError(f"{self.param!r} is fed by a link; disconnect it to promote it")
        name = self.name or unique_name(self.param, (b.name for b in definition.inputs))
        return [
            AddSubgraphSocket(self.def_id, "inputs", name, t.widget_socket_type(widget.type)),
            EditInside(self.def_id, Connect(SUBGRAPH_INPUTS_ID, name, self.node_id, self.param)),
            _SetPromotedValues(self.def_id, name),
        ]


class _SetPromotedValues(Command):
    """Gives every instance the promoted widget's current value."""

    def __init__(self, def_id: str, name: str) -> None:
        self.def_id, self.name = def_id, name
        self._set: list[tuple[Graph, NodeId]] = []

    def do(self, graph: Graph) -> None:
        definition = definition_of(graph, self.def_id)
        default = definition.spec.input(self.name)
        assert isinstance(default, WidgetInput)
        self._set = []
        for g, iid in definition.library.instances(self.def_id):
            g.set_param(iid, self.name, default.default)
            self._set.append((g, iid))

    def undo(self, graph: Graph) -> None:
        for g, iid in self._set:
            g.drop_param(iid, self.name)


__all__ = [
    "AddDefinition",
    "AddSubgraphSocket",
    "ConvertToSubgraph",
    "EditInside",
    "MoveSubgraphSocket",
    "PromoteWidget",
    "RemoveDefinition",
    "RemoveSubgraphSocket",
    "RenameSubgraph",
    "RenameSubgraphSocket",
    "UnpackSubgraph",
]
