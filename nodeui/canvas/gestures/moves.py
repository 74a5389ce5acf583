"""Selecting and moving: the rubber band, nodes (joining and leaving groups), groups and
notes; each drag is one undo step."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QPen
from PySide6.QtWidgets import QGraphicsRectItem, QGraphicsSceneMouseEvent

from core.graph.commands import Command, EditGroup, EditNote, Macro, MoveNodes
from nodeui.canvas import grouping
from nodeui.canvas import style as s
from nodeui.canvas.gestures.base import Gesture
from nodeui.canvas.items.group import GroupItem
from nodeui.canvas.items.node import NodeItem
from nodeui.canvas.items.note import NoteItem

if TYPE_CHECKING:
    from nodeui.canvas.protocols import CanvasScene


class RubberBandSelect(Gesture):
    """Drag on empty canvas: selects the nodes the band touches. Shift adds to the
    selection, Ctrl toggles; a plain click clears it."""

    def __init__(self, scene: CanvasScene) -> None:
        super().__init__(scene)
        self.band: QGraphicsRectItem | None = None
        self.base: set[int] = set()
        self.mode = "replace"

    def press(self, event: QGraphicsSceneMouseEvent) -> None:
        super().press(event)
        mods = event.modifiers()
        if mods & Qt.KeyboardModifier.ControlModifier:
            self.mode = "toggle"
        elif mods & Qt.KeyboardModifier.ShiftModifier:
            self.mode = "add"
        self.base = set(self.scene.selected_node_ids())

    def move(self, event: QGraphicsSceneMouseEvent) -> None:
        super().move(event)
        if not self.moved:
            return
        rect = QRectF(self.origin, event.scenePos()).normalized()
        if self.band is None:
            self.band = QGraphicsRectItem()
            pen = QPen(s.EDITOR_ACCENT, 1.0)
            pen.setCosmetic(True)
            self.band.setPen(pen)
            self.band.setBrush(s.color("#306aa5e0"))
            self.band.setZValue(20.0)
            self.scene.addItem(self.band)
        self.band.setRect(rect)
        self._select(rect)

    def _select(self, rect: QRectF) -> None:
        inside = {
            nid
            for nid, item in self.scene.nodes.items()
            if rect.intersects(item.sceneBoundingRect())
        }
        if self.mode == "add":
            chosen = self.base | inside
        elif self.mode == "toggle":
            chosen = self.base ^ inside
        else:
            chosen = inside
        self.scene.select_nodes(chosen)

    def release(self, event: QGraphicsSceneMouseEvent) -> None:
        self._remove_band()
        if not self.moved and self.mode == "replace":
            self.scene.select_nodes([])

    def cancel(self) -> None:
        self._remove_band()
        self.scene.select_nodes(self.base)

    def _remove_band(self) -> None:
        if self.band is not None:
            self.scene.removeItem(self.band)
            self.band = None


class MoveSelection(Gesture):
    """Press on a node's title or body: selects it (Ctrl toggles, Shift adds) and drags every
    selected node; the drag is one ``MoveNodes`` undo step. Dropped inside a group's frame a
    node joins the group, dragged out of it it leaves (``grouping``), in the same step."""

    def __init__(self, scene: CanvasScene, item: NodeItem) -> None:
        super().__init__(scene)
        self.item = item
        self.token = object()
        self.start: dict[int, tuple[float, float]] = {}
        self.deferred_select = False
        self.frames = grouping.frames(scene)

    def press(self, event: QGraphicsSceneMouseEvent) -> None:
        super().press(event)
        mods = event.modifiers()
        selected = set(self.scene.selected_node_ids())
        nid = self.item.node_id
        if mods & Qt.KeyboardModifier.ControlModifier:
            selected ^= {nid}
        elif mods & Qt.KeyboardModifier.ShiftModifier:
            selected |= {nid}
        elif nid not in selected:
            selected = {nid}
        else:
            self.deferred_select = True  # a click (no drag) in a selection selects only this
        self.scene.select_nodes(selected)
        self.start = {n: self.scene.graph.node(n).pos for n in selected}

    def _positions(self, event: QGraphicsSceneMouseEvent) -> dict[int, tuple[float, float]]:
        delta = event.scenePos() - self.origin
        return {n: (x + delta.x(), y + delta.y()) for n, (x, y) in self.start.items()}

    def move(self, event: QGraphicsSceneMouseEvent) -> None:
        super().move(event)
        if not self.moved or not self.start:
            return
        positions = self._positions(event)
        self.scene.push(MoveNodes(positions, gesture=self.token))
        if self.frames:
            moves = {n: QPointF(x, y) for n, (x, y) in positions.items()}
            grouping.light_targets(self.scene, moves, self.frames)

    def release(self, event: QGraphicsSceneMouseEvent) -> None:
        if self.deferred_select and not self.moved:
            self.scene.select_nodes([self.item.node_id])
        if not self.moved or not self.start or not self.frames:
            return
        grouping.light_targets(self.scene, {}, self.frames)
        positions = self._positions(event)
        moves = {n: QPointF(x, y) for n, (x, y) in positions.items()}
        groups = grouping.regroup(self.scene, moves, self.frames)
        if groups:
            self.scene.push(MoveNodes(positions, gesture=self.token, groups=groups))

    def cancel(self) -> None:
        grouping.light_targets(self.scene, {}, self.frames)


class MoveGroup(Gesture):
    """Drag a group's title bar: the frame and its member nodes move; one undo step."""

    def __init__(self, scene: CanvasScene, item: GroupItem) -> None:
        super().__init__(scene)
        self.item = item
        self.start_pos = item.pos()
        self.members: dict[int, tuple[float, float]] = {}

    def press(self, event: QGraphicsSceneMouseEvent) -> None:
        super().press(event)
        group = self.scene.graph.groups[self.item.group_id]
        self.members = {n: self.scene.graph.node(n).pos for n in group.nodes}

    def move(self, event: QGraphicsSceneMouseEvent) -> None:
        super().move(event)
        if not self.moved:
            return
        # Items follow the cursor; the model changes once, on release.
        delta = event.scenePos() - self.origin
        self.item.setPos(self.start_pos + delta)
        for nid, (x, y) in self.members.items():
            node = self.scene.nodes[nid]
            node.setPos(QPointF(x + delta.x(), y + delta.y()))
            node.update_links()

    def release(self, event: QGraphicsSceneMouseEvent) -> None:
        if not self.moved:
            return
        delta = event.scenePos() - self.origin
        group = self.scene.graph.groups[self.item.group_id]
        commands: list[Command] = []
        if self.members:
            commands.append(
                MoveNodes({n: (x + delta.x(), y + delta.y()) for n, (x, y) in self.members.items()})
            )
        if group.rect is not None:
            x, y, w, h = group.rect
            commands.append(EditGroup(group.id, rect=(x + delta.x(), y + delta.y(), w, h)))
        if commands and not self.scene.push(Macro("Move Group", commands)):
            self.cancel()

    def cancel(self) -> None:
        self.item.setPos(self.start_pos)
        for nid in self.members:
            self.scene.nodes[nid].refresh_position()


class MoveNote(Gesture):
    """Press on a note: selects it (Shift or Ctrl adds it to the selection); a drag moves it,
    one ``EditNote`` undo step."""

    def __init__(self, scene: CanvasScene, item: NoteItem) -> None:
        super().__init__(scene)
        self.item = item
        self.token = object()
        self.start = (0.0, 0.0)

    def press(self, event: QGraphicsSceneMouseEvent) -> None:
        super().press(event)
        adding = event.modifiers() & (
            Qt.KeyboardModifier.ShiftModifier | Qt.KeyboardModifier.ControlModifier
        )
        notes = set(self.scene.selected_note_ids()) if adding else set()
        nodes = self.scene.selected_node_ids() if adding else []
        self.scene.select_nodes(nodes, notes | {self.item.note_id})
        self.start = self.scene.graph.notes[self.item.note_id].pos

    def move(self, event: QGraphicsSceneMouseEvent) -> None:
        super().move(event)
        if not self.moved:
            return
        delta = event.scenePos() - self.origin
        pos = (self.start[0] + delta.x(), self.start[1] + delta.y())
        self.scene.push(EditNote(self.item.note_id, gesture=self.token, pos=pos))
