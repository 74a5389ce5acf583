"""A small overview of the whole graph in a corner of the view: every node as a coloured box,
the visible rectangle on top. Click or drag in it to move the view there."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, QRectF, Qt, QTimer
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent, QPen, QPixmap
from PySide6.QtWidgets import QWidget

from nodeui.canvas import style as s

if TYPE_CHECKING:
    from nodeui.canvas.view import GraphView

SIZE = (200, 140)
MARGIN = 12


class Minimap(QWidget):
    """The overview. The node boxes are drawn once into a pixmap (redrawn, debounced, when the
    graph changes); each paint only adds the visible rectangle."""

    def __init__(self, view: GraphView) -> None:
        super().__init__(view)
        self.view = view
        self.resize(*SIZE)
        self._pixmap = QPixmap()
        self._world = QRectF()
        self._scale = 1.0
        self._offset = QPointF()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(120)
        self._timer.timeout.connect(self.rebuild)
        self._frame_pen = QPen(QColor("#f0c674"), 1.0)
        self.setCursor(Qt.CursorShape.PointingHandCursor)

    def schedule(self) -> None:
        if not self._timer.isActive():
            self._timer.start()

    def place(self) -> None:
        """Keeps the minimap in the bottom-right corner of the viewport."""
        vp = self.view.viewport().geometry()
        self.move(vp.right() - self.width() - MARGIN, vp.bottom() - self.height() - MARGIN)

    def rebuild(self) -> None:
        scene = self.view.graph_scene
        world = scene.nodes_rect()
        visible = self.view.visible_scene_rect()
        world = (world.united(visible) if not world.isNull() else visible).adjusted(
            -50, -50, 50, 50
        )
        self._world = world
        w, h = self.width() - 8, self.height() - 8
        self._scale = min(w / max(world.width(), 1.0), h / max(world.height(), 1.0))
        self._offset = QPointF(
            4 + (w - world.width() * self._scale) / 2, 4 + (h - world.height() * self._scale) / 2
        )
        ratio = self.devicePixelRatioF()
        pixmap = QPixmap(int(self.width() * ratio), int(self.height() * ratio))
        pixmap.setDevicePixelRatio(ratio)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(24, 25, 28, 220))
        painter.drawRoundedRect(QRectF(0, 0, self.width(), self.height()), 6, 6)
        for item in scene.nodes.values():
            box = self._to_map(item.sceneBoundingRect())
            painter.setBrush(s.category_color(item.spec.category))
            painter.drawRect(box)
        painter.end()
        self._pixmap = pixmap
        self.update()

    def _to_map(self, rect: QRectF) -> QRectF:
        return QRectF(
            self._offset.x() + (rect.x() - self._world.x()) * self._scale,
            self._offset.y() + (rect.y() - self._world.y()) * self._scale,
            max(rect.width() * self._scale, 1.5),
            max(rect.height() * self._scale, 1.5),
        )

    def to_scene(self, point: QPointF) -> QPointF:
        return QPointF(
            self._world.x() + (point.x() - self._offset.x()) / self._scale,
            self._world.y() + (point.y() - self._offset.y()) / self._scale,
        )

    def paintEvent(self, event: QPaintEvent) -> None:
        if self._pixmap.isNull():
            self.rebuild()
        painter = QPainter(self)
        painter.drawPixmap(0, 0, self._pixmap)
        painter.setPen(self._frame_pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(self._to_map(self.view.visible_scene_rect()))

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self.view.centerOn(self.to_scene(event.position()))
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if event.buttons() & Qt.MouseButton.LeftButton:
            self.view.centerOn(self.to_scene(event.position()))
        event.accept()
