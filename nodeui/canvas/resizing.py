"""Resize gestures: drag the grip in a node's or a group's bottom-right corner.

A node grows live (each move is a ``SetNodeAttribute("size")`` with the drag's token, merged
into one undo step) because its layout follows its size; a group's frame follows the pointer
and the model changes once, on release, as a group's move does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, QRectF
from PySide6.QtWidgets import QGraphicsSceneMouseEvent

from core.graph.commands import EditGroup, SetNodeAttribute
from nodeui.canvas import style as s
from nodeui.canvas.items.group import GroupItem
from nodeui.canvas.items.node import NodeItem

if TYPE_CHECKING:
    from nodeui.canvas.protocols import CanvasScene

#: The smallest frame a group can be resized to, when it has no members to hold.
MIN_GROUP_SIZE = (120.0, s.GROUP_TITLE_HEIGHT + 40.0)
#: Room kept between a group's members and its right and bottom edges.
GROUP_MARGIN = 12.0


def on_grip(scene: CanvasScene, pos: QPointF) -> bool:
    """Whether scene point ``pos`` is on a node's or a group's resize grip."""
    item = scene.item_at(pos)
    if isinstance(item, NodeItem):
        return item.hit(item.mapFromScene(pos)).kind == "resize"
    return isinstance(item, GroupItem) and item.grip_rect().contains(item.mapFromScene(pos))


class ResizeNode:
    """Drag a node's grip: wider shows more of its title and fields, taller gives its
    picture more room; never smaller than its rows need."""

    def __init__(self, scene: CanvasScene, item: NodeItem) -> None:
        self.scene, self.item = scene, item
        self.token = object()
        self.origin = QPointF()
        self.start = (0.0, 0.0)
        self.start_size: tuple[float, float] | None = None
        self.moved = False

    def press(self, event: QGraphicsSceneMouseEvent) -> None:
        self.origin = event.scenePos()
        self.start = (self.item.layout.width, self.item.layout.height)
        self.start_size = self.scene.graph.node(self.item.node_id).size

    def move(self, event: QGraphicsSceneMouseEvent) -> None:
        delta = event.scenePos() - self.origin
        width = max(s.MIN_NODE_WIDTH, round(self.start[0] + delta.x()))
        height = max(self.item.layout.content_height, round(self.start[1] + delta.y()))
        self._set((float(width), float(height)))

    def _set(self, size: tuple[float, float] | None) -> None:
        if size == self.scene.graph.node(self.item.node_id).size:
            return
        self.moved = True
        self.scene.push(SetNodeAttribute([self.item.node_id], "size", size, gesture=self.token))

    def release(self, event: QGraphicsSceneMouseEvent) -> None:
        """The drag's sizes are already in the graph."""

    def cancel(self) -> None:
        self._set(self.start_size)


class ResizeGroup:
    """Drag a group's grip: the frame follows the pointer, never so small that a member
    sticks out; one ``EditGroup`` undo step on release."""

    def __init__(self, scene: CanvasScene, item: GroupItem) -> None:
        self.scene, self.item = scene, item
        self.origin = QPointF()
        self.start = QRectF()
        self.least = QRectF()
        self.moved = False

    def press(self, event: QGraphicsSceneMouseEvent) -> None:
        self.origin = event.scenePos()
        self.start = self.item.scene_rect()
        top_left = self.start.topLeft()
        least = QRectF(top_left.x(), top_left.y(), *MIN_GROUP_SIZE)
        group = self.scene.graph.groups[self.item.group_id]
        for nid in group.nodes:
            node = self.scene.nodes.get(nid)
            if node is not None:
                least = least.united(
                    node.sceneBoundingRect().adjusted(0, 0, GROUP_MARGIN, GROUP_MARGIN)
                )
        self.least = least

    def _rect(self, at: QPointF) -> QRectF:
        delta = at - self.origin
        right = max(self.least.right(), self.start.right() + delta.x())
        bottom = max(self.least.bottom(), self.start.bottom() + delta.y())
        left, top = self.start.left(), self.start.top()
        return QRectF(left, top, round(right - left), round(bottom - top))

    def move(self, event: QGraphicsSceneMouseEvent) -> None:
        self.moved = True
        self.item.set_frame(self._rect(event.scenePos()))

    def release(self, event: QGraphicsSceneMouseEvent) -> None:
        rect = self._rect(event.scenePos())
        if not self.moved or rect == self.start:
            self.item.restore()
            return
        frame = (rect.x(), rect.y(), rect.width(), rect.height())
        command = EditGroup(self.item.group_id, rect=frame)
        command.text = "Resize Group"
        if not self.scene.push(command):
            self.item.restore()

    def cancel(self) -> None:
        self.item.restore()
