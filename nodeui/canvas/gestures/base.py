"""The gesture protocol: press, move, release (or cancel), and what every gesture shares."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF
from PySide6.QtWidgets import QGraphicsSceneMouseEvent

if TYPE_CHECKING:
    from nodeui.canvas.protocols import CanvasScene


#: Scene-pixels a press must travel before it counts as a drag.
DRAG_THRESHOLD = 3.0


class Gesture:
    """A press-move-release interaction. Subclasses override the three steps."""

    def __init__(self, scene: CanvasScene) -> None:
        self.scene = scene
        self.origin = QPointF()
        self.moved = False

    def press(self, event: QGraphicsSceneMouseEvent) -> None:
        self.origin = event.scenePos()

    def move(self, event: QGraphicsSceneMouseEvent) -> None:
        delta = event.scenePos() - self.origin
        if not self.moved and max(abs(delta.x()), abs(delta.y())) >= DRAG_THRESHOLD:
            self.moved = True

    def release(self, event: QGraphicsSceneMouseEvent) -> None:
        """Ends the gesture."""

    def cancel(self) -> None:
        """Abandons the gesture (Escape, the view lost the mouse)."""


class FollowPointer(Gesture):
    """A gesture that applies the pointer's scene position on press and on every move."""

    def press(self, event: QGraphicsSceneMouseEvent) -> None:
        super().press(event)
        self._set(event.scenePos())

    def move(self, event: QGraphicsSceneMouseEvent) -> None:
        super().move(event)
        self._set(event.scenePos())

    def _set(self, pos: QPointF) -> None:
        raise NotImplementedError
