"""The graph model: nodes, links, groups, reroutes and notes, with its invariants enforced here.

Every mutation goes through a method of ``Graph`` that checks the invariants (known types and
params, compatible types, one link per input, no cycle) and raises a typed ``GraphError``
before changing anything. Observers hear every change as a ``GraphChange`` event. Edits with
undo live in ``core.graph.commands``; they call these methods.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from typing import Any

from core.graph import errors as e
from core.graph import types as t

# The graph's parts and its change events have modules of their own; every name stays
# importable from here, where most code has always found them.
from core.graph.changes import (
    GraphChange,
    GroupAdded,
    GroupChanged,
    GroupRemoved,
    LinkAdded,
    LinkRemoved,
    NodeAdded,
    NodeChanged,
    NodeRemoved,
    NoteAdded,
    NoteChanged,
    NoteRemoved,
    Observer,
    ParamChanged,
)
from core.graph.elements import (
    BOUNDARY_IDS,
    SUBGRAPH_INPUTS_ID,
    SUBGRAPH_OUTPUTS_ID,
    Group,
    Link,
    Node,
    NodeId,
    Note,
)
from core.graph.spec import REROUTE, NodeRegistry, NodeSpec, WidgetInput

__all__ = [
    "BOUNDARY_IDS",
    "SUBGRAPH_INPUTS_ID",
    "SUBGRAPH_OUTPUTS_ID",
    "Graph",
    "GraphChange",
    "Group",
    "GroupAdded",
    "GroupChanged",
    "GroupRemoved",
    "Link",
    "LinkAdded",
    "LinkRemoved",
    "Node",
    "NodeAdded",
    "NodeChanged",
    "NodeId",
    "NodeRemoved",
    "Note",
    "NoteAdded",
    "NoteChanged",
    "NoteRemoved",
    "Observer",
    "ParamChanged",
    "SubgraphLibrary",
]


class SubgraphLibrary:
    """The subgraph definitions of one workflow, shared by its graph and every definition's
    graph (definitions nest). Keyed by the definition's id, which is an instance's type.

    A definition is a ``core.graph.subgraph.SubgraphDefinition``; the library only holds them
    and tells its observers when one is added, removed or changed."""

    def __init__(self) -> None:
        self._definitions: dict[str, Any] = {}
        self._observers: list[Callable[[str], None]] = []
        #: The workflow's top-level graph (set by the ``Graph`` that made the library).
        self.root: Graph | None = None

    def __contains__(self, def_id: object) -> bool:
        return def_id in self._definitions

    def __iter__(self) -> Iterator[Any]:
        return iter(list(self._definitions.values()))

    def __len__(self) -> int:
        return len(self._definitions)

    def get(self, def_id: str) -> Any:
        try:
            return self._definitions[def_id]
        except KeyError:
            raise e.UnknownNodeTypeError(f"no subgraph definition with id {def_id!r}") from None

    def add(self, definition: Any) -> None:
        if definition.id in self._definitions:
            raise e.DuplicateIdError(f"a subgraph definition with id {definition.id} exists")
        self._definitions[definition.id] = definition
        self.changed(definition.id)

    def remove(self, def_id: str) -> Any:
        definition = self.get(def_id)
        del self._definitions[def_id]
        self.changed(def_id)
        return definition

    def graphs(self) -> list[Graph]:
        """The top-level graph and every definition's graph."""
        found = [] if self.root is None else [self.root]
        return found + [d.graph for d in self._definitions.values()]

    def instances(self, def_id: str) -> list[tuple[Graph, NodeId]]:
        """Every node, in any graph of the workflow, that is an instance of ``def_id``."""
        return [(g, n.id) for g in self.graphs() for n in g if n.type_id == def_id]

    def uses(self, def_id: str) -> set[str]:
        """The definitions whose instances ``def_id``'s graph holds, directly or not."""
        seen: set[str] = set()
        stack = [def_id]
        while stack:
            definition = self._definitions.get(stack.pop())
            if definition is None:
                continue
            for node in definition.graph:
                if node.type_id in self._definitions and node.type_id not in seen:
                    seen.add(node.type_id)
                    stack.append(node.type_id)
        return seen

    def subscribe(self, observer: Callable[[str], None]) -> Callable[[], None]:
        """Calls ``observer(def_id)`` when a definition is added, removed or changed."""
        self._observers.append(observer)
        return lambda: self._observers.remove(observer)

    def changed(self, def_id: str) -> None:
        """Drops every derived spec (definitions nest) and tells the observers."""
        for definition in self._definitions.values():
            definition.forget_spec()
        for observer in list(self._observers):
            observer(def_id)


_NODE_ATTRIBUTES = ("pos", "size", "title", "bypassed", "muted", "collapsed", "ui")


class Graph:
    """A node graph over a registry of node specs."""

    def __init__(
        self,
        registry: NodeRegistry,
        subgraphs: SubgraphLibrary | None = None,
        definition: Any = None,
    ) -> None:
        self.registry = registry
        if subgraphs is None:
            subgraphs = SubgraphLibrary()
            subgraphs.root = self
        #: The workflow's subgraph definitions (shared with every definition's graph).
        self.subgraphs = subgraphs
        #: The ``SubgraphDefinition`` whose inside this graph is; None for a workflow's graph.
        self.definition = definition
        self._nodes: dict[NodeId, Node] = {}
        self._links: dict[tuple[NodeId, str], Link] = {}  # keyed by destination
        self._out: dict[NodeId, set[Link]] = {}  # links leaving each node
        self._in: dict[NodeId, set[Link]] = {}  # links entering each node
        self._groups: dict[int, Group] = {}
        self._notes: dict[int, Note] = {}
        self._observers: list[Observer] = []

    # --- observation -----------------------------------------------------------------------

    def subscribe(self, observer: Observer) -> Callable[[], None]:
        """Calls ``observer`` after every change; returns a function that unsubscribes."""
        self._observers.append(observer)
        return lambda: self._observers.remove(observer)

    def _emit(self, change: GraphChange) -> None:
        for observer in list(self._observers):
            observer(change)

    # --- queries ---------------------------------------------------------------------------

    @property
    def nodes(self) -> Mapping[NodeId, Node]:
        return self._nodes

    @property
    def links(self) -> list[Link]:
        return list(self._links.values())

    @property
    def groups(self) -> Mapping[int, Group]:
        return self._groups

    @property
    def notes(self) -> Mapping[int, Note]:
        return self._notes

    @property
    def reroutes(self) -> list[Node]:
        return [n for n in self._nodes.values() if n.type_id == REROUTE.type_id]

    def node(self, node_id: NodeId) -> Node:
        try:
            return self._nodes[node_id]
        except KeyError:
            raise e.NodeNotFoundError(f"no node with id {node_id}") from None

    def spec(self, node_id: NodeId) -> NodeSpec:
        node = self.node(node_id)
        return node.placeholder or self.type_spec(node.type_id)

    def type_spec(self, type_id: str) -> NodeSpec:
        """The spec of a node type: a subgraph's derived spec, a boundary node's (inside a
        definition), else the registry's."""
        if type_id in self.subgraphs:
            return self.subgraphs.get(type_id).spec
        if self.definition is not None:
            boundary = self.definition.boundary_spec(type_id)
            if boundary is not None:
                return boundary
        return self.registry.get(type_id)

    def knows_type(self, type_id: str) -> bool:
        """Whether ``type_id`` is a registered type or a subgraph of this workflow."""
        return type_id in self.registry or type_id in self.subgraphs

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._nodes

    def __iter__(self) -> Iterator[Node]:
        return iter(self._nodes.values())

    def __len__(self) -> int:
        return len(self._nodes)

    def next_node_id(self) -> NodeId:
        return max(self._nodes, default=0) + 1

    def next_group_id(self) -> int:
        return max(self._groups, default=0) + 1

    def next_note_id(self) -> int:
        return max(self._notes, default=0) + 1

    def link_to(self, node_id: NodeId, input_name: str) -> Link | None:
        return self._links.get((node_id, input_name))

    def links_of(self, node_id: NodeId) -> list[Link]:
        """Every link that starts or ends at the node."""
        return self.inputs_of(node_id) + self.links_from(node_id)

    def links_from(self, node_id: NodeId, output: str | None = None) -> list[Link]:
        links = self._out.get(node_id, ())
        return sorted(
            (lk for lk in links if output is None or lk.src_output == output), key=_link_order
        )

    def inputs_of(self, node_id: NodeId) -> list[Link]:
        return sorted(self._in.get(node_id, ()), key=_link_order)

    def groups_of(self, node_id: NodeId) -> list[Group]:
        return [g for g in self._groups.values() if node_id in g.nodes]

    def output_type(self, node_id: NodeId, output: str) -> str:
        """The type an output carries; a reroute carries what feeds it (ANY when unfed).

        Chains of reroutes are followed in a loop, so a chain of any length has a type."""
        while True:
            spec = self.spec(node_id)
            out = spec.output(output)
            if out is None:
                raise e.UnknownSocketError(
                    f"node {node_id} ({spec.title}) has no output named {output!r}"
                )
            feed = self.link_to(node_id, "value") if spec is REROUTE else None
            if out.type != t.ANY or feed is None:
                return out.type
            node_id, output = feed.src, feed.src_output

    def input_type(self, node_id: NodeId, input_name: str) -> str:
        """The link type an input accepts; a reroute accepts what its consumers accept."""
        spec = self.spec(node_id)
        inp = spec.input(input_name)
        if inp is None:
            raise e.UnknownSocketError(
                f"node {node_id} ({spec.title}) has no input named {input_name!r}"
            )
        return inp.link_type

    def upstream(self, node_id: NodeId) -> set[NodeId]:
        """Every node that feeds ``node_id``, directly or not."""
        seen: set[NodeId] = set()
        stack = [node_id]
        while stack:
            for lk in self.inputs_of(stack.pop()):
                if lk.src not in seen:
                    seen.add(lk.src)
                    stack.append(lk.src)
        return seen

    def downstream(self, node_id: NodeId) -> set[NodeId]:
        """Every node fed by ``node_id``, directly or not."""
        seen: set[NodeId] = set()
        stack = [node_id]
        while stack:
            for lk in self._out.get(stack.pop(), ()):
                if lk.dst not in seen:
                    seen.add(lk.dst)
                    stack.append(lk.dst)
        return seen

    def state(self) -> dict[str, Any]:
        """A plain, comparable picture of the whole graph (used by tests and undo checks)."""
        return {
            "nodes": {nid: n.snapshot() for nid, n in sorted(self._nodes.items())},
            "links": sorted(
                (lk.src, lk.src_output, lk.dst, lk.dst_input) for lk in self._links.values()
            ),
            "groups": {
                gid: (g.title, tuple(sorted(g.nodes)), g.color, g.rect)
                for gid, g in sorted(self._groups.items())
            },
            "notes": dict(sorted(self._notes.items())),
            **self._subgraph_state(),
        }

    def _subgraph_state(self) -> dict[str, Any]:
        """The workflow's definitions, on its top-level graph only (and only when it has any)."""
        if self.subgraphs.root is not self or not len(self.subgraphs):
            return {}
        return {
            "subgraphs": {
                d.id: (d.name, tuple(d.inputs), tuple(d.outputs), d.graph.state())
                for d in sorted(self.subgraphs, key=lambda d: d.id)
            }
        }

    # --- node edits ------------------------------------------------------------------------

    def add_node(
        self,
        type_id: str,
        node_id: NodeId | None = None,
        params: Mapping[str, Any] | None = None,
        pos: tuple[float, float] = (0.0, 0.0),
        *,
        size: tuple[float, float] | None = None,
        title: str | None = None,
        bypassed: bool = False,
        muted: bool = False,
        collapsed: bool = False,
        ui: Mapping[str, Any] | None = None,
        placeholder: NodeSpec | None = None,
    ) -> Node:
        """Adds a node; params not given take the spec's defaults."""
        spec = self.type_spec(type_id) if placeholder is None else placeholder
        node_id = self.next_node_id() if node_id is None else node_id
        if node_id in self._nodes:
            raise e.DuplicateIdError(f"a node with id {node_id} already exists")
        if self.definition is not None and type_id in self.subgraphs:
            own = self.definition.id
            if type_id == own or own in self.subgraphs.uses(type_id):
                raise e.CycleError(
                    f"subgraph {self.definition.name!r} cannot hold an instance of "
                    f"{spec.title!r}: that would put the subgraph inside itself"
                )
        merged = spec.default_params()
        for name, value in (params or {}).items():
            self._check_param_name(spec, node_id, name)
            merged[name] = copy.deepcopy(value)
        node = Node(
            id=node_id,
            type_id=type_id,
            params=merged,
            pos=(float(pos[0]), float(pos[1])),
            size=size,
            title=title,
            bypassed=bypassed,
            muted=muted,
            collapsed=collapsed,
            ui=copy.deepcopy(dict(ui or {})),
            placeholder=placeholder,
        )
        self._nodes[node_id] = node
        self._emit(NodeAdded(node_id))
        return node

    def remove_node(self, node_id: NodeId) -> None:
        """Removes a node with its links, and drops it from its groups."""
        self.node(node_id)
        if self.definition is not None and node_id in BOUNDARY_IDS:
            raise e.GraphError(
                "a subgraph's inputs and outputs stay; remove single inputs or outputs instead"
            )
        for lk in self.links_of(node_id):
            self.disconnect(lk.dst, lk.dst_input)
        for group in self.groups_of(node_id):
            self._replace_group(replace(group, nodes=group.nodes - {node_id}))
        del self._nodes[node_id]
        self._out.pop(node_id, None)
        self._in.pop(node_id, None)
        self._emit(NodeRemoved(node_id))

    def set_param(self, node_id: NodeId, name: str, value: Any) -> None:
        node = self.node(node_id)
        self._check_param_name(self.spec(node_id), node_id, name)
        node.params[name] = copy.deepcopy(value)
        self._emit(ParamChanged(node_id, name))

    def drop_param(self, node_id: NodeId, name: str) -> None:
        """Forgets a stored param (a subgraph input that no longer exists); no-op if absent."""
        node = self.node(node_id)
        if name in node.params:
            del node.params[name]
            self._emit(ParamChanged(node_id, name))

    def refresh_spec(self, node_id: NodeId) -> None:
        """Tells observers that the node's spec changed (a subgraph gained an input…)."""
        self.node(node_id)
        self._emit(NodeChanged(node_id, "spec"))

    def set_node_attribute(self, node_id: NodeId, attribute: str, value: Any) -> None:
        """Sets pos, size, title, bypassed, muted, collapsed or ui."""
        if attribute not in _NODE_ATTRIBUTES:
            raise ValueError(f"{attribute!r} is not an editable node attribute")
        node = self.node(node_id)
        if attribute == "pos":
            value = (float(value[0]), float(value[1]))
        elif attribute == "ui":
            value = copy.deepcopy(dict(value))
        setattr(node, attribute, value)
        self._emit(NodeChanged(node_id, attribute))

    def _check_param_name(self, spec: NodeSpec, node_id: NodeId, name: str) -> None:
        if not isinstance(spec.input(name), WidgetInput):
            raise e.UnknownParamError(f"node {node_id} ({spec.title}) has no parameter {name!r}")

    # --- links -----------------------------------------------------------------------------

    def check_link(self, src: NodeId, src_output: str, dst: NodeId, dst_input: str) -> None:
        """Raises the GraphError that ``connect`` would raise, without changing anything."""
        src_type = self.output_type(src, src_output)
        dst_type = self.input_type(dst, dst_input)
        reason = t.incompatibility_reason(src_type, dst_type)
        if reason:
            raise e.IncompatibleTypesError(
                f"cannot link {self._label(src)}.{src_output} to {self._label(dst)}.{dst_input}: "
                f"{reason}"
            )
        if self.spec(dst) is REROUTE:
            # Everything the reroute feeds must accept the new type.
            for lk in self.links_from(dst):
                reason = t.incompatibility_reason(src_type, self.input_type(lk.dst, lk.dst_input))
                if reason:
                    raise e.IncompatibleTypesError(
                        f"cannot route {src_type} through reroute {dst}: it feeds "
                        f"{self._label(lk.dst)}.{lk.dst_input}, and {reason}"
                    )
        if (dst, dst_input) in self._links:
            raise e.InputOccupiedError(f"{self._label(dst)}.{dst_input} already has a link")
        if src == dst or src in self.downstream(dst):
            raise e.CycleError(
                f"linking {self._label(src)} to {self._label(dst)} would make a cycle"
            )

    def connect(self, src: NodeId, src_output: str, dst: NodeId, dst_input: str) -> Link:
        self.check_link(src, src_output, dst, dst_input)
        link = Link(src, src_output, dst, dst_input)
        self._links[(dst, dst_input)] = link
        self._out.setdefault(src, set()).add(link)
        self._in.setdefault(dst, set()).add(link)
        self._emit(LinkAdded(link))
        return link

    def disconnect(self, dst: NodeId, dst_input: str) -> Link:
        try:
            link = self._links.pop((dst, dst_input))
        except KeyError:
            raise e.UnknownSocketError(f"{self._label(dst)}.{dst_input} has no link") from None
        self._out[link.src].discard(link)
        self._in[link.dst].discard(link)
        self._emit(LinkRemoved(link))
        return link

    def _label(self, node_id: NodeId) -> str:
        node = self._nodes.get(node_id)
        if node is None:
            return f"#{node_id}"
        return f"{node.title or self.spec(node_id).title} #{node_id}"

    # --- groups ----------------------------------------------------------------------------

    def add_group(self, group: Group) -> None:
        if group.id in self._groups:
            raise e.DuplicateIdError(f"a group with id {group.id} already exists")
        for nid in group.nodes:
            self.node(nid)
        self._groups[group.id] = group
        self._emit(GroupAdded(group.id))

    def remove_group(self, group_id: int) -> Group:
        try:
            group = self._groups.pop(group_id)
        except KeyError:
            raise e.GroupNotFoundError(f"no group with id {group_id}") from None
        self._emit(GroupRemoved(group_id))
        return group

    def update_group(self, group_id: int, **changes: Any) -> None:
        if group_id not in self._groups:
            raise e.GroupNotFoundError(f"no group with id {group_id}")
        self._replace_group(replace(self._groups[group_id], **changes))

    def _replace_group(self, group: Group) -> None:
        self._groups[group.id] = group
        self._emit(GroupChanged(group.id))

    # --- notes -----------------------------------------------------------------------------

    def add_note(self, note: Note) -> None:
        if note.id in self._notes:
            raise e.DuplicateIdError(f"a note with id {note.id} already exists")
        self._notes[note.id] = _checked_note(note)
        self._emit(NoteAdded(note.id))

    def remove_note(self, note_id: int) -> Note:
        try:
            note = self._notes.pop(note_id)
        except KeyError:
            raise e.NoteNotFoundError(f"no note with id {note_id}") from None
        self._emit(NoteRemoved(note_id))
        return note

    def update_note(self, note_id: int, **changes: Any) -> None:
        """Changes a note's text, pos, size or markdown flag."""
        if note_id not in self._notes:
            raise e.NoteNotFoundError(f"no note with id {note_id}")
        if "id" in changes:
            raise ValueError("a note's id cannot change")
        self._notes[note_id] = _checked_note(replace(self._notes[note_id], **changes))
        self._emit(NoteChanged(note_id))


def _checked_note(note: Note) -> Note:
    """The note with its position and size as float pairs (the view reads them so)."""
    return replace(
        note,
        text=str(note.text),
        pos=(float(note.pos[0]), float(note.pos[1])),
        size=(float(note.size[0]), float(note.size[1])),
        markdown=bool(note.markdown),
    )


def _link_order(link: Link) -> tuple[NodeId, str, NodeId, str]:
    return (link.src, link.src_output, link.dst, link.dst_input)
