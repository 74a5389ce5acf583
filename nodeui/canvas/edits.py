"""The canvas's edit operations (menus, shortcuts, the palette), each one undo step.

Each builds core commands and pushes them through the scene; none touches the graph itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, QRectF

from core.graph import types as t
from core.graph.commands import (
    AddNode,
    AddNote,
    Command,
    Connect,
    Fragment,
    GroupNodes,
    Macro,
    Paste,
    RemoveNodes,
    RemoveNotes,
    SetNodeAttribute,
)
from core.graph.model import Link, NodeId
from core.graph.spec import REROUTE, NodeSpec
from nodeui.canvas import branching, clipboard, inline_edit
from nodeui.canvas import style as s

if TYPE_CHECKING:
    from nodeui.canvas.protocols import CanvasScene

GROUP_COLORS = ("#3f5f7f", "#5f7f3f", "#7f3f5f", "#7f6a3f", "#4f3f7f", "#3f7f74")
GROUP_MARGIN = 16.0


@dataclass(frozen=True)
class PendingLink:
    """A link dragged from a socket and released on empty canvas: the palette offers nodes
    that can take it, and the chosen node gets connected."""

    node_id: NodeId
    socket: str
    from_output: bool
    type: str


def compatible_socket(spec: NodeSpec, pending: PendingLink) -> str | None:
    """The first socket of a new node of ``spec`` that can take ``pending`` (socket inputs
    before widgets), or None."""
    if pending.from_output:
        candidates = [*spec.sockets, *spec.widgets]
        for inp in candidates:
            if t.is_compatible(pending.type, inp.link_type):
                return inp.name
        return None
    for out in spec.outputs:
        if t.is_compatible(out.type, pending.type):
            return out.name
    return None


def add_node(
    scene: CanvasScene, type_id: str, pos: QPointF, pending: PendingLink | None = None
) -> NodeId | None:
    """Adds a node at ``pos`` (and connects ``pending`` to it) as one undo step."""
    graph = scene.graph
    node_id = graph.next_node_id()
    commands: list[Command] = [AddNode(type_id, (pos.x(), pos.y()), node_id=node_id)]
    if pending is not None:
        socket = compatible_socket(graph.registry.get(type_id), pending)
        if socket is not None:
            link = (
                Connect(pending.node_id, pending.socket, node_id, socket)
                if pending.from_output
                else Connect(node_id, socket, pending.node_id, pending.socket)
            )
            commands.append(link)
    command = commands[0] if len(commands) == 1 else Macro("Add Node", commands)
    if not scene.push(command, pos):
        return None
    scene.select_nodes([node_id])
    return node_id


def insert_reroute(scene: CanvasScene, link: Link, pos: QPointF) -> NodeId | None:
    """Splits ``link`` with a reroute dot at ``pos``, as one undo step."""
    node_id = scene.graph.next_node_id()
    r = s.REROUTE_RADIUS
    command = Macro(
        "Add Reroute",
        [
            AddNode(REROUTE.type_id, (pos.x() - r, pos.y() - r), node_id=node_id),
            Connect(link.src, link.src_output, node_id, "value"),
            Connect(node_id, "value", link.dst, link.dst_input),
        ],
    )
    return node_id if scene.push(command, pos) else None


def delete(scene: CanvasScene, node_ids: list[NodeId], note_ids: list[int] | None = None) -> None:
    """Removes the nodes and the notes (the selected ones when None), one undo step."""
    notes = scene.selected_note_ids() if note_ids is None else note_ids
    commands: list[Command] = [RemoveNodes(node_ids)] if node_ids else []
    if notes:
        commands.append(RemoveNotes(notes))
    if commands:
        scene.push(commands[0] if len(commands) == 1 else Macro("Delete", commands))


def add_note(scene: CanvasScene, pos: QPointF, markdown: bool = False) -> int | None:
    """Adds an empty note at ``pos``, selected, and opens it for typing; one undo step for
    the note, one for its text."""
    command = AddNote("", (pos.x(), pos.y()), markdown=markdown)
    if not scene.push(command, pos) or command.note_id is None:
        return None
    scene.select_nodes([], [command.note_id])
    inline_edit.edit_note(scene, scene.notes[command.note_id])
    return command.note_id


def toggle(scene: CanvasScene, node_ids: list[NodeId], attribute: str) -> None:
    """Sets ``attribute`` (bypassed, muted, collapsed) on all, or clears it when all have it."""
    if not node_ids:
        return
    every = all(getattr(scene.graph.node(nid), attribute) for nid in node_ids)
    scene.push(SetNodeAttribute(node_ids, attribute, not every))


def group(scene: CanvasScene, node_ids: list[NodeId], title: str = "Group") -> int | None:
    """Frames the nodes in a new group, one undo step."""
    if not node_ids:
        return None
    rect = scene.nodes_rect(node_ids).adjusted(
        -GROUP_MARGIN, -GROUP_MARGIN - s.GROUP_TITLE_HEIGHT, GROUP_MARGIN, GROUP_MARGIN
    )
    color = GROUP_COLORS[len(scene.graph.groups) % len(GROUP_COLORS)]
    command = GroupNodes(node_ids, title, color, (rect.x(), rect.y(), rect.width(), rect.height()))
    return command.group_id if scene.push(command) else None


def add_group(scene: CanvasScene, at: QPointF) -> int | None:
    """Groups the selected nodes, or adds an empty group frame at ``at``; one undo step."""
    selected = scene.selected_node_ids()
    if selected:
        return group(scene, selected)
    color = GROUP_COLORS[len(scene.graph.groups) % len(GROUP_COLORS)]
    command = GroupNodes([], "Group", color, (at.x(), at.y(), 400.0, 300.0))
    return command.group_id if scene.push(command) else None


def copy(scene: CanvasScene, node_ids: list[NodeId]) -> bool:
    if not node_ids:
        return False
    clipboard.copy_to_clipboard(scene.graph, node_ids)
    scene.statusMessage.emit(f"Copied {len(node_ids)} node{'s' if len(node_ids) != 1 else ''}")
    return True


def paste(
    scene: CanvasScene, at: QPointF | None = None, keep_input_links: bool = False
) -> list[NodeId]:
    """Pastes the clipboard's nodes with their top-left corner at ``at`` (or shifted a little
    from where they were copied), as one undo step; selects and returns the new nodes."""
    fragment = clipboard.fragment_from_clipboard(scene.registry)
    if fragment is None or not fragment.nodes:
        scene.statusMessage.emit("The clipboard holds no LatentLoom nodes")
        return []
    offset = (30.0, 30.0)
    if at is not None:
        left = min(node.pos[0] for node in fragment.nodes)
        top = min(node.pos[1] for node in fragment.nodes)
        offset = (at.x() - left, at.y() - top)
    command = Paste(fragment, offset, keep_input_links=keep_input_links)
    if not scene.push(command, at):
        return []
    new_ids = sorted(command.id_map.values())
    scene.select_nodes(new_ids)
    return new_ids


def duplicate(scene: CanvasScene, node_ids: list[NodeId]) -> list[NodeId]:
    """Copies the nodes (with the links among them) beside themselves, one undo step."""
    if not node_ids:
        return []
    command = Paste(Fragment.copy_from(scene.graph, node_ids), (30.0, 30.0))
    if not scene.push(command):
        return []
    new_ids = sorted(command.id_map.values())
    scene.select_nodes(new_ids)
    return new_ids


def frame_rect(scene: CanvasScene, node_ids: list[NodeId] | None) -> QRectF:
    return scene.nodes_rect(node_ids).adjusted(-40, -40, 40, 40)


def continue_from_step(scene: CanvasScene, sampler_id: NodeId, step: int) -> NodeId | None:
    """ "Continue from step k" on a sampler with a step history (``nodeui.canvas.branching``):
    a new sampler from step k, beside the old branch and ending in a copy of its outputs."""
    return branching.continue_from_step(scene, sampler_id, step)
