"""The graph scene: mirrors a ``Graph`` as items and hands mouse presses to gesture objects.

The scene is one observer of the graph. Each change event touches only the items it is about.
Every edit the user makes goes through core commands on the undo stack (``nodeui.undo.push``);
the scene never changes the graph itself and never re-checks the model's rules.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QImage, QUndoStack
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsScene,
    QGraphicsSceneContextMenuEvent,
    QGraphicsSceneHelpEvent,
    QGraphicsSceneMouseEvent,
    QToolTip,
)

from core.graph import model as m
from core.graph.commands import Command
from core.graph.model import Graph, NodeId
from core.graph.spec import REROUTE, NodeRegistry
from nodeui import undo
from nodeui.canvas import gestures, menus
from nodeui.canvas.inline_edit import InlineEditor
from nodeui.canvas.items.group import GroupItem
from nodeui.canvas.items.link import LinkItem
from nodeui.canvas.items.node import NodeItem
from nodeui.canvas.items.note import NoteItem
from nodeui.canvas.items.reroute import RerouteItem
from nodeui.history import HistoryCursor
from nodeui.runstate import IDLE, NodeRunState

#: Half the side of the square scene the view can scroll over.
SCENE_EXTENT = 100_000.0


class GraphScene(QGraphicsScene):
    """The items of one graph, kept in step with it through its observer."""

    #: The ids of the selected nodes, whenever the selection changes.
    selectionNodesChanged = Signal(list)
    #: A sentence for the status bar (why a link was refused, what was pasted…).
    statusMessage = Signal(str)
    #: A refused edit, with the scene point to flash the reason at.
    refused = Signal(str, QPointF)
    #: The palette should open at a scene point, for a pending link or None.
    paletteRequested = Signal(QPointF, object)
    #: Anything in the graph changed (the minimap redraws, debounced).
    graphChanged = Signal()
    #: A subgraph instance was double-clicked: its definition's id, to enter it.
    subgraphRequested = Signal(str)
    #: The node menu asked for a subgraph action ("save" to the library, "sockets" to edit
    #: its inputs and outputs) on a definition, by id.
    subgraphActionRequested = Signal(str, str)

    def __init__(
        self, graph: Graph, registry: NodeRegistry, undo_stack: QUndoStack, parent=None
    ) -> None:
        super().__init__(parent)
        self.graph = graph
        self.registry = registry
        self.undo_stack = undo_stack
        self.nodes: dict[NodeId, NodeItem] = {}
        self.links: dict[tuple[NodeId, str], LinkItem] = {}
        self.groups: dict[int, GroupItem] = {}
        self.notes: dict[int, NoteItem] = {}
        self.states: dict[NodeId, NodeRunState] = {}
        self.histories: dict[NodeId, HistoryCursor] = {}
        self.gesture: gestures.Gesture | None = None
        self.last_scene_pos: QPointF | None = None
        self.inline_editor: InlineEditor | None = None
        self.open_menu: object | None = None  # the open combo menu, if any
        # Moving items would keep a BSP index busy for nothing: scan instead.
        self.setItemIndexMethod(QGraphicsScene.ItemIndexMethod.NoIndex)
        self.setSceneRect(QRectF(-SCENE_EXTENT, -SCENE_EXTENT, 2 * SCENE_EXTENT, 2 * SCENE_EXTENT))
        self.selectionChanged.connect(self._emit_selection)
        self._build()
        unsubscribe = graph.subscribe(self._on_change)
        self._unsubscribe = unsubscribe
        # A scene deleted by Qt must not stay subscribed (the lambda holds no ref to self).
        self.destroyed.connect(lambda *_: _quietly(unsubscribe))

    # --- building and mirroring ----------------------------------------------------------------

    def _build(self) -> None:
        for node in self.graph:
            self._add_node_item(node.id)
        for link in self.graph.links:
            self._add_link_item(link)
        for gid in self.graph.groups:
            self._add_group_item(gid)
        for note_id in self.graph.notes:
            self._add_note_item(note_id)

    def commit_inline_editor(self) -> None:
        """Ends typing in the open inline editor, if any, applying what it holds (an action of
        the window is about to act on the graph)."""
        if self.inline_editor is not None:
            self.inline_editor.commit()

    def detach(self) -> None:
        """Stops listening to the graph (call when the scene is discarded)."""
        _quietly(self._unsubscribe)

    def _add_node_item(self, node_id: NodeId) -> NodeItem:
        is_reroute = self.graph.node(node_id).type_id == REROUTE.type_id
        item = (RerouteItem if is_reroute else NodeItem)(self.graph, node_id)
        self.nodes[node_id] = item
        self.addItem(item)
        state = self.states.get(node_id)
        if state is not None:
            item.set_run_state(state)
        return item

    def _add_link_item(self, link: m.Link) -> None:
        src, dst = self.nodes[link.src], self.nodes[link.dst]
        item = LinkItem(link, src, dst)
        self.links[(link.dst, link.dst_input)] = item
        self.addItem(item)
        src.connected_outputs.add(link.src_output)
        dst.connected_inputs.add(link.dst_input)

    def _add_group_item(self, group_id: int) -> None:
        item = GroupItem(self.graph, group_id)
        self.groups[group_id] = item
        self.addItem(item)
        item.refresh(self._members_rect(group_id))

    def _add_note_item(self, note_id: int) -> None:
        item = NoteItem(self.graph, note_id)
        self.notes[note_id] = item
        self.addItem(item)

    def _on_change(self, change: m.GraphChange) -> None:
        """One graph change updates only the items it concerns."""
        if isinstance(change, m.NodeAdded):
            self._add_node_item(change.node_id)
        elif isinstance(change, m.NodeRemoved):
            self.histories.pop(change.node_id, None)
            item = self.nodes.pop(change.node_id)
            self.removeItem(item)
            self._refresh_frames()
        elif isinstance(change, m.NodeChanged):
            item = self.nodes[change.node_id]
            if change.attribute == "pos":
                item.refresh_position()
            else:
                item.refresh()
            self._refresh_frames(change.node_id)
        elif isinstance(change, m.ParamChanged):
            self.nodes[change.node_id].refresh()
        elif isinstance(change, m.LinkAdded):
            self._add_link_item(change.link)
            self._link_touched(change.link)
        elif isinstance(change, m.LinkRemoved):
            self._remove_link_item(change.link)
        elif isinstance(change, m.GroupAdded):
            self._add_group_item(change.group_id)
        elif isinstance(change, m.GroupRemoved):
            self.removeItem(self.groups.pop(change.group_id))
        elif isinstance(change, m.GroupChanged):
            self.groups[change.group_id].refresh(self._members_rect(change.group_id))
        elif isinstance(change, m.NoteAdded):
            self._add_note_item(change.note_id)
        elif isinstance(change, m.NoteRemoved):
            self.removeItem(self.notes.pop(change.note_id))
        elif isinstance(change, m.NoteChanged):
            self.notes[change.note_id].refresh()
        self.graphChanged.emit()

    def _remove_link_item(self, link: m.Link) -> None:
        item = self.links.pop((link.dst, link.dst_input))
        item.detach()
        self.removeItem(item)
        src, dst = self.nodes.get(link.src), self.nodes.get(link.dst)
        if src is not None and not self.graph.links_from(link.src, link.src_output):
            src.connected_outputs.discard(link.src_output)
            src.update()
        if dst is not None:
            dst.connected_inputs.discard(link.dst_input)
        self._link_touched(link)

    def _link_touched(self, link: m.Link) -> None:
        """Relayouts the ends whose look depends on links (a linked widget shows a socket; a
        reroute takes the type of what feeds it)."""
        for node_id in (link.src, link.dst):
            item = self.nodes.get(node_id)
            if item is not None:
                item.refresh()
        if any(isinstance(item, RerouteItem) for item in self.nodes.values()):
            for item in self.nodes.values():
                if isinstance(item, RerouteItem):
                    item.refresh()

    def _members_rect(self, group_id: int) -> QRectF | None:
        rect: QRectF | None = None
        for nid in self.graph.groups[group_id].nodes:
            item = self.nodes.get(nid)
            if item is not None:
                box = item.sceneBoundingRect()
                rect = box if rect is None else rect.united(box)
        return rect

    def _refresh_frames(self, node_id: NodeId | None = None) -> None:
        """Refits the groups without a saved rect that frame ``node_id`` (or any node)."""
        for gid, group in self.graph.groups.items():
            if group.rect is None and (node_id is None or node_id in group.nodes):
                self.groups[gid].refresh(self._members_rect(gid))

    # --- the contract's API ------------------------------------------------------------------

    def push(self, command: Command, at: QPointF | None = None) -> bool:
        """Pushes an edit; a refused one is reported (status bar, flash at ``at``)."""
        error = undo.push(self.undo_stack, self.graph, command)
        if error is None:
            return True
        self.refuse(error, at)
        return False

    def refuse(self, reason: str, at: QPointF | None = None) -> None:
        self.statusMessage.emit(reason)
        self.refused.emit(reason, at if at is not None else QPointF())

    def selected_node_ids(self) -> list[int]:
        return sorted(item.node_id for item in self.selectedItems() if isinstance(item, NodeItem))

    def selected_note_ids(self) -> list[int]:
        return sorted(item.note_id for item in self.selectedItems() if isinstance(item, NoteItem))

    def _emit_selection(self) -> None:
        self.selectionNodesChanged.emit(self.selected_node_ids())

    def select_nodes(
        self, node_ids: list[int] | set[int], note_ids: list[int] | set[int] = ()
    ) -> None:
        """Selects exactly these nodes and notes."""
        wanted, notes = set(node_ids), set(note_ids)
        self.blockSignals(True)
        try:
            for nid, item in self.nodes.items():
                item.setSelected(nid in wanted)
            for note_id, note in self.notes.items():
                note.setSelected(note_id in notes)
        finally:
            self.blockSignals(False)
        self.selectionChanged.emit()

    def set_node_state(self, node_id: int, state: NodeRunState) -> None:
        """Draws a node's run state (queued, running with progress, cached, done, failed…)."""
        if state.status == IDLE.status:
            self.states.pop(node_id, None)
        else:
            self.states[node_id] = state
        item = self.nodes.get(node_id)
        if item is not None:
            item.set_run_state(state)

    def clear_run_states(self) -> None:
        for node_id in list(self.states):
            self.set_node_state(node_id, IDLE)

    def set_node_images(self, node_id: int, images: list[QImage]) -> None:
        """Shows an output node's images on the node, scaled to fit."""
        item = self.nodes.get(node_id)
        if item is not None:
            item.set_images(list(images))

    def set_node_preview(self, node_id: int, image: QImage | None, caption: str = "") -> None:
        """Shows (None: hides) the live sampler preview inside the node, throttled, with a
        caption such as "step 7/20"."""
        item = self.nodes.get(node_id)
        if item is not None:
            item.set_preview(image, caption)

    def set_node_history(self, node_id: int, history: object | None) -> HistoryCursor | None:
        """Gives a sampler node the step history of its finished run (a ``StepHistory``;
        None removes it): a scrub row and the step's picture. Returns the node's cursor,
        which the image viewer may share."""
        item = self.nodes.get(node_id)
        old = self.histories.pop(node_id, None)
        cursor = None
        if item is not None and history is not None and len(getattr(history, "steps", ())):
            if old is not None and old.history is history:  # a cached re-run: keep the place
                cursor = old
            else:
                cursor = HistoryCursor(history)
                if old is not None:
                    cursor.set_which(old.which)  # a new run keeps the user's x_t / x̂₀ choice
            self.histories[node_id] = cursor
        if item is not None and (cursor is not old or item.history_cursor is not cursor):
            item.set_history(cursor)
        return cursor

    def history_cursor(self, node_id: int) -> HistoryCursor | None:
        """Where the user is in a sampler node's step history, if it has one."""
        return self.histories.get(node_id)

    def nodes_rect(self, node_ids: list[int] | None = None) -> QRectF:
        """The bounds of the given nodes (all when None) in scene coordinates."""
        rect = QRectF()
        for nid, item in self.nodes.items():
            if node_ids is None or nid in node_ids:
                rect = rect.united(item.sceneBoundingRect())
        return rect

    # --- hit-testing ---------------------------------------------------------------------------

    def item_at(self, pos: QPointF) -> QGraphicsItem | None:
        """The node, link, note or group under ``pos`` (a node's overlays count as the
        node)."""
        for item in self.items(pos):
            if isinstance(item, (NodeItem, LinkItem, NoteItem)):
                return item
            parent = item.parentItem()
            if isinstance(parent, NodeItem) and parent.contains(parent.mapFromScene(pos)):
                return parent
            if isinstance(item, GroupItem):
                return item
        return None

    def helpEvent(self, event: QGraphicsSceneHelpEvent) -> None:
        """Hovering on a node explains the socket, field or title under the pointer."""
        from nodeui.canvas.tooltips import tooltip

        item = self.item_at(event.scenePos())
        if not isinstance(item, NodeItem):
            super().helpEvent(event)
            return
        text = tooltip(item, item.mapFromScene(event.scenePos())) or item.toolTip()
        view = self.views()[0] if self.views() else None
        if text:
            QToolTip.showText(event.screenPos(), text, view)
        else:
            QToolTip.hideText()
        event.setAccepted(bool(text))

    # --- mouse: delegated to one gesture at a time ---------------------------------------------

    def mousePressEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        self.last_scene_pos = event.scenePos()
        if self.gesture is not None:
            event.accept()
            return
        gesture = gestures.for_press(self, event)
        if gesture is not None and self.inline_editor is not None:
            self.inline_editor.commit()  # a press anywhere but in the editor ends typing
        if gesture is None:
            super().mousePressEvent(event)
            return
        self.gesture = gesture
        gesture.press(event)
        event.accept()

    def mouseMoveEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        self.last_scene_pos = event.scenePos()
        if self.gesture is not None:
            self.gesture.move(event)
            event.accept()
        else:
            super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        self.last_scene_pos = event.scenePos()
        gesture, self.gesture = self.gesture, None
        if gesture is not None:
            gesture.release(event)
            event.accept()
        else:
            super().mouseReleaseEvent(event)

    def mouseDoubleClickEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        self.last_scene_pos = event.scenePos()
        item = self.item_at(event.scenePos())
        if isinstance(item, NodeItem) and event.button() == Qt.MouseButton.LeftButton:
            type_id = self.graph.node(item.node_id).type_id
            hit = item.hit(item.mapFromScene(event.scenePos()))
            if type_id in self.graph.subgraphs and hit.kind not in ("title", "editor", "collapse"):
                self.subgraphRequested.emit(type_id)
                event.accept()
                return
        if not gestures.double_click(self, event):
            super().mouseDoubleClickEvent(event)
        event.accept()

    def contextMenuEvent(self, event: QGraphicsSceneContextMenuEvent) -> None:
        menus.show_menu(self, event.scenePos(), event.screenPos())
        event.accept()

    def cancel_gesture(self) -> None:
        gesture, self.gesture = self.gesture, None
        if gesture is not None:
            gesture.cancel()


def _quietly(unsubscribe: Callable[[], None]) -> None:
    """Unsubscribes once; a second call (detach, then deletion) does nothing."""
    with contextlib.suppress(ValueError):
        unsubscribe()
