"""Undoable edits. Each command changes the graph only through ``Graph`` methods.

``do`` may raise a ``GraphError``; it then leaves the graph as it found it. ``redo`` is ``do``
again and reuses the ids the first ``do`` allocated, so a redone graph equals the original one.
``UndoStack`` is a plain-Python stack for scripts and tests; the editor wraps the same commands
in a ``QUndoStack``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.graph.errors import GraphError
from core.graph.model import Graph, Group, Link, Node, NodeId, Note


class Command:
    """One undoable edit. ``text`` names it in the Edit menu ("Undo Move")."""

    text = "Edit"

    def do(self, graph: Graph) -> None:
        raise NotImplementedError

    def undo(self, graph: Graph) -> None:
        raise NotImplementedError

    def merge(self, newer: Command) -> bool:
        """Absorbs ``newer`` (already done) into this command; True when it did."""
        return False


def _restore_node(graph: Graph, node: Node) -> None:
    graph.add_node(
        node.type_id,
        node.id,
        node.params,
        node.pos,
        size=node.size,
        title=node.title,
        bypassed=node.bypassed,
        muted=node.muted,
        collapsed=node.collapsed,
        ui=node.ui,
        placeholder=node.placeholder,
    )


class AddNode(Command):
    text = "Add Node"

    def __init__(
        self,
        type_id: str,
        pos: tuple[float, float] = (0.0, 0.0),
        params: Mapping[str, Any] | None = None,
        node_id: NodeId | None = None,
        title: str | None = None,
    ) -> None:
        self.type_id, self.pos, self.params, self.title = type_id, pos, dict(params or {}), title
        self.node_id = node_id

    def do(self, graph: Graph) -> None:
        node = graph.add_node(self.type_id, self.node_id, self.params, self.pos, title=self.title)
        self.node_id = node.id

    def undo(self, graph: Graph) -> None:
        assert self.node_id is not None
        graph.remove_node(self.node_id)


class RemoveNodes(Command):
    """Removes nodes; undo puts back each node, every link it had and its group memberships."""

    text = "Delete"

    def __init__(self, node_ids: Iterable[NodeId]) -> None:
        self.node_ids = sorted(set(node_ids))
        self._nodes: list[Node] = []
        self._links: list[Link] = []
        self._groups: list[Group] = []

    def do(self, graph: Graph) -> None:
        for nid in self.node_ids:
            graph.node(nid)  # raises before anything changes
        self._nodes = [copy.deepcopy(graph.node(nid)) for nid in self.node_ids]
        links = {lk for nid in self.node_ids for lk in graph.links_of(nid)}
        self._links = sorted(links, key=lambda lk: (lk.dst, lk.dst_input))
        groups = {g.id: g for nid in self.node_ids for g in graph.groups_of(nid)}
        self._groups = list(groups.values())
        for nid in self.node_ids:
            graph.remove_node(nid)

    def undo(self, graph: Graph) -> None:
        for node in self._nodes:
            _restore_node(graph, node)
        for lk in self._links:
            graph.connect(lk.src, lk.src_output, lk.dst, lk.dst_input)
        for group in self._groups:
            graph.update_group(group.id, nodes=group.nodes)


class Connect(Command):
    """Links an output to an input; an existing link into that input is replaced, undoably."""

    text = "Connect"

    def __init__(self, src: NodeId, src_output: str, dst: NodeId, dst_input: str) -> None:
        self.link = Link(src, src_output, dst, dst_input)
        self._replaced: Link | None = None

    def do(self, graph: Graph) -> None:
        lk = self.link
        self._replaced = graph.link_to(lk.dst, lk.dst_input)
        if self._replaced is not None:
            graph.disconnect(lk.dst, lk.dst_input)
        try:
            graph.connect(lk.src, lk.src_output, lk.dst, lk.dst_input)
        except GraphError:
            if self._replaced is not None:
                old = self._replaced
                graph.connect(old.src, old.src_output, old.dst, old.dst_input)
            raise

    def undo(self, graph: Graph) -> None:
        graph.disconnect(self.link.dst, self.link.dst_input)
        if self._replaced is not None:
            old = self._replaced
            graph.connect(old.src, old.src_output, old.dst, old.dst_input)


class Disconnect(Command):
    text = "Disconnect"

    def __init__(self, dst: NodeId, dst_input: str) -> None:
        self.dst, self.dst_input = dst, dst_input
        self._link: Link | None = None

    def do(self, graph: Graph) -> None:
        self._link = graph.disconnect(self.dst, self.dst_input)

    def undo(self, graph: Graph) -> None:
        assert self._link is not None
        lk = self._link
        graph.connect(lk.src, lk.src_output, lk.dst, lk.dst_input)


class SetParam(Command):
    """Sets one widget value. Consecutive edits of the same param merge into one undo step
    (typing, slider drags) unless their ``gesture`` tokens differ."""

    text = "Change Value"

    def __init__(self, node_id: NodeId, name: str, value: Any, gesture: object = None) -> None:
        self.node_id, self.name, self.value, self.gesture = node_id, name, value, gesture
        self._old: Any = None

    def do(self, graph: Graph) -> None:
        old = copy.deepcopy(graph.node(self.node_id).params.get(self.name))
        graph.set_param(self.node_id, self.name, self.value)
        self._old = old

    def undo(self, graph: Graph) -> None:
        graph.set_param(self.node_id, self.name, self._old)

    def merge(self, newer: Command) -> bool:
        if (
            isinstance(newer, SetParam)
            and (newer.node_id, newer.name) == (self.node_id, self.name)
            and newer.gesture == self.gesture
        ):
            self.value = newer.value
            return True
        return False


class MoveNodes(Command):
    """Moves nodes to new positions. Consecutive moves of the same nodes merge (one drag is
    one step); give each drag its own ``gesture`` token to keep separate drags apart.

    ``groups`` changes groups with the move, by id (``{"nodes": …, "rect": …}``): a node
    dropped into a group's frame joins it, one dragged out leaves, in the same undo step."""

    text = "Move"

    def __init__(
        self,
        positions: Mapping[NodeId, tuple[float, float]],
        gesture: object = None,
        groups: Mapping[int, Mapping[str, Any]] | None = None,
    ) -> None:
        self.positions = {nid: (float(x), float(y)) for nid, (x, y) in positions.items()}
        self.gesture = gesture
        self.groups = {gid: dict(changes) for gid, changes in (groups or {}).items()}
        self._old: dict[NodeId, tuple[float, float]] = {}
        self._old_groups: dict[int, dict[str, Any]] = {}

    def do(self, graph: Graph) -> None:
        old = {nid: graph.node(nid).pos for nid in self.positions}
        for gid in self.groups:
            if gid not in graph.groups:
                graph.update_group(gid)  # raises before anything changes
        old_groups = {
            gid: {k: getattr(graph.groups[gid], k) for k in changes}
            for gid, changes in self.groups.items()
        }
        for nid, pos in self.positions.items():
            graph.set_node_attribute(nid, "pos", pos)
        for gid, changes in self.groups.items():
            graph.update_group(gid, **changes)
        self._old, self._old_groups = old, old_groups

    def undo(self, graph: Graph) -> None:
        for gid, changes in self._old_groups.items():
            graph.update_group(gid, **changes)
        for nid, pos in self._old.items():
            graph.set_node_attribute(nid, "pos", pos)

    def merge(self, newer: Command) -> bool:
        if (
            isinstance(newer, MoveNodes)
            and newer.positions.keys() == self.positions.keys()
            and newer.gesture == self.gesture
        ):
            self.positions = dict(newer.positions)
            for gid, changes in newer.groups.items():
                # The group as it was before this step is what undo must bring back.
                before = newer._old_groups.get(gid, {})
                kept = self._old_groups.setdefault(gid, {})
                for key, value in before.items():
                    kept.setdefault(key, value)
                self.groups.setdefault(gid, {}).update(changes)
            return True
        return False


_ATTRIBUTE_TEXTS = {
    "bypassed": "Bypass",
    "muted": "Mute",
    "collapsed": "Collapse",
    "title": "Rename",
    "size": "Resize",
    "ui": "Change Setting",
}


class SetNodeAttribute(Command):
    """Sets bypassed, muted, collapsed, title or size on several nodes at once. Edits of the
    same attribute of the same nodes with one (non-None) ``gesture`` token merge: a resize
    drag is one undo step."""

    def __init__(
        self, node_ids: Iterable[NodeId], attribute: str, value: Any, gesture: object = None
    ) -> None:
        if attribute not in _ATTRIBUTE_TEXTS:
            raise ValueError(f"{attribute!r} cannot be set with SetNodeAttribute")
        self.node_ids = sorted(set(node_ids))
        self.attribute, self.value, self.gesture = attribute, value, gesture
        self.text = _ATTRIBUTE_TEXTS[attribute]
        self._old: dict[NodeId, Any] = {}

    def do(self, graph: Graph) -> None:
        old = {nid: getattr(graph.node(nid), self.attribute) for nid in self.node_ids}
        for nid in self.node_ids:
            graph.set_node_attribute(nid, self.attribute, self.value)
        self._old = old

    def undo(self, graph: Graph) -> None:
        for nid, value in self._old.items():
            graph.set_node_attribute(nid, self.attribute, value)

    def restores(self) -> bool:
        """True when the edit leaves every node as it found it (a drag that came back)."""
        return all(old == self.value for old in self._old.values())

    def merge(self, newer: Command) -> bool:
        if (
            isinstance(newer, SetNodeAttribute)
            and self.gesture is not None
            and newer.gesture == self.gesture
            and (newer.node_ids, newer.attribute) == (self.node_ids, self.attribute)
        ):
            self.value = newer.value
            return True
        return False


class GroupNodes(Command):
    text = "Group"

    def __init__(
        self,
        node_ids: Iterable[NodeId],
        title: str = "Group",
        color: str = "#3f5f7f",
        rect: tuple[float, float, float, float] | None = None,
    ) -> None:
        self.node_ids = frozenset(node_ids)
        self.title, self.color, self.rect = title, color, rect
        self.group_id: int | None = None

    def do(self, graph: Graph) -> None:
        gid = graph.next_group_id() if self.group_id is None else self.group_id
        graph.add_group(Group(gid, self.title, self.node_ids, self.color, self.rect))
        self.group_id = gid

    def undo(self, graph: Graph) -> None:
        assert self.group_id is not None
        graph.remove_group(self.group_id)


class Ungroup(Command):
    text = "Ungroup"

    def __init__(self, group_id: int) -> None:
        self.group_id = group_id
        self._group: Group | None = None

    def do(self, graph: Graph) -> None:
        self._group = graph.remove_group(self.group_id)

    def undo(self, graph: Graph) -> None:
        assert self._group is not None
        graph.add_group(self._group)


class EditGroup(Command):
    """Renames, recolours or re-frames a group."""

    text = "Edit Group"

    def __init__(self, group_id: int, **changes: Any) -> None:
        self.group_id, self.changes = group_id, changes
        self._old: dict[str, Any] = {}

    def do(self, graph: Graph) -> None:
        group = graph.groups.get(self.group_id)
        old = {k: getattr(group, k) for k in self.changes} if group else {}
        graph.update_group(self.group_id, **self.changes)
        self._old = old

    def undo(self, graph: Graph) -> None:
        graph.update_group(self.group_id, **self._old)


class AddNote(Command):
    """Adds a text note; redo reuses the id the first ``do`` allocated."""

    text = "Add Note"

    def __init__(
        self,
        body: str = "",
        pos: tuple[float, float] = (0.0, 0.0),
        size: tuple[float, float] = (260.0, 120.0),
        markdown: bool = False,
        note_id: int | None = None,
    ) -> None:
        self.body, self.pos, self.size, self.markdown = body, pos, size, markdown
        self.note_id = note_id

    def do(self, graph: Graph) -> None:
        note_id = graph.next_note_id() if self.note_id is None else self.note_id
        graph.add_note(Note(note_id, self.body, self.pos, self.size, self.markdown))
        self.note_id = note_id

    def undo(self, graph: Graph) -> None:
        assert self.note_id is not None
        graph.remove_note(self.note_id)


class RemoveNotes(Command):
    """Removes notes; undo puts each back as it was."""

    text = "Delete"

    def __init__(self, note_ids: Iterable[int]) -> None:
        self.note_ids = sorted(set(note_ids))
        self._notes: list[Note] = []

    def do(self, graph: Graph) -> None:
        for note_id in self.note_ids:
            if note_id not in graph.notes:
                graph.remove_note(note_id)  # raises before anything changes
        self._notes = [graph.remove_note(note_id) for note_id in self.note_ids]

    def undo(self, graph: Graph) -> None:
        for note in self._notes:
            graph.add_note(note)


class EditNote(Command):
    """Changes a note's text, position, size or markdown flag. Consecutive edits of the same
    fields of one note with the same ``gesture`` token merge (typing, one drag)."""

    def __init__(self, note_id: int, gesture: object = None, **changes: Any) -> None:
        self.note_id, self.gesture, self.changes = note_id, gesture, changes
        self.text = "Move Note" if set(changes) == {"pos"} else "Edit Note"
        self._old: dict[str, Any] = {}

    def do(self, graph: Graph) -> None:
        note = graph.notes.get(self.note_id)
        old = {k: getattr(note, k) for k in self.changes if hasattr(note, k)}
        graph.update_note(self.note_id, **self.changes)
        self._old = old

    def undo(self, graph: Graph) -> None:
        graph.update_note(self.note_id, **self._old)

    def merge(self, newer: Command) -> bool:
        if (
            isinstance(newer, EditNote)
            and newer.note_id == self.note_id
            and newer.changes.keys() == self.changes.keys()
            and self.gesture is not None
            and newer.gesture == self.gesture
        ):
            self.changes = dict(newer.changes)
            return True
        return False


@dataclass
class Fragment:
    """Nodes, the links among them and the links feeding them from outside: what is copied."""

    nodes: list[Node]
    links: list[Link]
    external_inputs: list[Link] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)
    #: The subgraph definitions its instances need, as workflow-file entries (a copy from
    #: another workflow brings them; pasting adds those the workflow lacks).
    definitions: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def copy_from(cls, graph: Graph, node_ids: Iterable[NodeId]) -> Fragment:
        ids = set(node_ids)
        nodes = [copy.deepcopy(graph.node(nid)) for nid in sorted(ids)]
        inner, outer = [], []
        for nid in sorted(ids):
            for lk in graph.inputs_of(nid):
                (inner if lk.src in ids else outer).append(lk)
        groups = [g for g in graph.groups.values() if g.nodes and g.nodes <= ids]
        return cls(nodes, inner, outer, groups)


class Paste(Command):
    """Adds a fragment's nodes under fresh ids, offset by ``offset``, as one undo step.

    With ``keep_input_links`` the links that fed the fragment from outside are re-made when
    their source node still exists (Ctrl+Shift+V)."""

    text = "Paste"

    def __init__(
        self,
        fragment: Fragment,
        offset: tuple[float, float] = (30.0, 30.0),
        keep_input_links: bool = False,
    ) -> None:
        self.fragment, self.offset, self.keep_input_links = fragment, offset, keep_input_links
        self.id_map: dict[NodeId, NodeId] = {}
        self._children: list[Command] = []
        self._definitions: Command | None = None

    def do(self, graph: Graph) -> None:
        first = not self.id_map
        if first:
            next_id = graph.next_node_id()
            for i, node in enumerate(self.fragment.nodes):
                self.id_map[node.id] = next_id + i
        if self.fragment.definitions:
            if self._definitions is None:
                # Imported here: the subgraph modules build on this one.
                from core.graph.subgraph_transfer import ImportDefinitions

                self._definitions = ImportDefinitions(self.fragment.definitions)
            self._definitions.do(graph)
        added: list[NodeId] = []
        try:
            for node in self.fragment.nodes:
                new = copy.deepcopy(node)
                new.id = self.id_map[node.id]
                new.pos = (node.pos[0] + self.offset[0], node.pos[1] + self.offset[1])
                _restore_node(graph, new)
                added.append(new.id)
            links = [
                Link(self.id_map[lk.src], lk.src_output, self.id_map[lk.dst], lk.dst_input)
                for lk in self.fragment.links
            ]
            if self.keep_input_links:
                links += [
                    Link(lk.src, lk.src_output, self.id_map[lk.dst], lk.dst_input)
                    for lk in self.fragment.external_inputs
                    if lk.src in graph and lk.src not in self.id_map.values()
                ]
            for lk in links:
                graph.connect(lk.src, lk.src_output, lk.dst, lk.dst_input)
            gid = graph.next_group_id()
            for i, group in enumerate(self.fragment.groups):
                rect = group.rect
                if rect is not None:
                    rect = (rect[0] + self.offset[0], rect[1] + self.offset[1], rect[2], rect[3])
                members = frozenset(self.id_map[n] for n in group.nodes)
                graph.add_group(Group(gid + i, group.title, members, group.color, rect))
        except GraphError:
            for nid in reversed(added):
                graph.remove_node(nid)
            if self._definitions is not None:
                self._definitions.undo(graph)
            raise

    def undo(self, graph: Graph) -> None:
        new_ids = set(self.id_map.values())
        for gid, group in list(graph.groups.items()):
            if group.nodes and group.nodes <= new_ids:
                graph.remove_group(gid)
        for nid in sorted(new_ids, reverse=True):
            graph.remove_node(nid)
        if self._definitions is not None:
            self._definitions.undo(graph)


class Macro(Command):
    """Several commands as one undo step (e.g. "delete selection and its groups")."""

    def __init__(self, text: str, commands: Sequence[Command]) -> None:
        self.text, self.commands = text, list(commands)

    def do(self, graph: Graph) -> None:
        done: list[Command] = []
        try:
            for cmd in self.commands:
                cmd.do(graph)
                done.append(cmd)
        except GraphError:
            for cmd in reversed(done):
                cmd.undo(graph)
            raise

    def undo(self, graph: Graph) -> None:
        for cmd in reversed(self.commands):
            cmd.undo(graph)


class UndoStack:
    """A plain-Python undo stack over one graph, for scripts, the CLI and tests."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self._done: list[Command] = []
        self._undone: list[Command] = []

    def push(self, command: Command) -> None:
        """Does the command and records it; a command that raises is not recorded."""
        command.do(self.graph)
        self._undone.clear()
        if self._done and self._done[-1].merge(command):
            return
        self._done.append(command)

    def undo(self) -> bool:
        if not self._done:
            return False
        command = self._done.pop()
        command.undo(self.graph)
        self._undone.append(command)
        return True

    def redo(self) -> bool:
        if not self._undone:
            return False
        command = self._undone.pop()
        command.do(self.graph)
        self._done.append(command)
        return True

    def __len__(self) -> int:
        return len(self._done)
