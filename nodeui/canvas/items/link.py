"""Links drawn as cubic Bézier curves, coloured by the type they carry, and the temporary
curve that follows the cursor while a link is dragged."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPainterPathStroker, QPen
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from core.graph.model import Link
from nodeui.canvas import style as s

if TYPE_CHECKING:
    from nodeui.canvas.items.node import NodeItem

LINK_TYPE = QGraphicsItem.UserType + 2
_STROKER = QPainterPathStroker()
_STROKER.setWidth(10.0)


def bezier(start: QPointF, end: QPointF, path: QPainterPath | None = None) -> QPainterPath:
    """The link curve from an output at ``start`` to an input at ``end``: it leaves and enters
    horizontally, bending more the farther apart the ends are."""
    path = path if path is not None else QPainterPath()
    path.clear()
    dx = max(abs(end.x() - start.x()) * 0.5, 40.0)
    path.moveTo(start)
    path.cubicTo(QPointF(start.x() + dx, start.y()), QPointF(end.x() - dx, end.y()), end)
    return path


class LinkItem(QGraphicsItem):
    """One model link between two node items. Follows the nodes when they move."""

    def __init__(self, link: Link, source: NodeItem, target: NodeItem) -> None:
        super().__init__()
        self.link = link
        self.source, self.target = source, target
        self._path = QPainterPath()
        self._shape: QPainterPath | None = None
        self._pen = QPen()
        self._pen.setCosmetic(True)
        self._pen.setWidthF(2.0)
        self.setZValue(0.0)
        source.links.add(self)
        target.links.add(self)
        self.update_path()

    def type(self) -> int:
        return LINK_TYPE

    def detach(self) -> None:
        self.source.links.discard(self)
        self.target.links.discard(self)

    def update_path(self) -> None:
        self.prepareGeometryChange()
        start = self.source.output_scene_pos(self.link.src_output)
        end = self.target.input_scene_pos(self.link.dst_input)
        bezier(start, end, self._path)
        self._shape = None
        try:
            kind = self.source.graph.output_type(self.link.src, self.link.src_output)
        except Exception:  # the source is being removed; keep the old colour
            kind = None
        if kind is not None:
            self._pen.setColor(s.socket_color(kind))
        self.update()

    def midpoint(self) -> QPointF:
        return self._path.pointAtPercent(0.5)

    def boundingRect(self) -> QRectF:
        return self._path.controlPointRect().adjusted(-4, -4, 4, 4)

    def shape(self) -> QPainterPath:
        if self._shape is None:
            self._shape = _STROKER.createStroke(self._path)
        return self._shape

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        # Zoomed far out, aliased curves are indistinguishable and much cheaper.
        zoomed_out = option.levelOfDetailFromTransform(painter.worldTransform()) < s.LOD_SIMPLE
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, not zoomed_out)
        painter.setPen(self._pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPath(self._path)


class DragLinkItem(QGraphicsItem):
    """The curve following the cursor while the user drags a new link."""

    def __init__(self, kind: str, from_output: bool) -> None:
        super().__init__()
        self.from_output = from_output
        self._path = QPainterPath()
        self._pen = QPen(QColor(s.socket_color(kind)), 2.0, Qt.PenStyle.DashLine)
        self._pen.setCosmetic(True)
        self.setZValue(10.0)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)

    def set_ends(self, anchor: QPointF, cursor: QPointF) -> None:
        self.prepareGeometryChange()
        if self.from_output:
            bezier(anchor, cursor, self._path)
        else:
            bezier(cursor, anchor, self._path)
        self.update()

    def boundingRect(self) -> QRectF:
        return self._path.controlPointRect().adjusted(-4, -4, 4, 4)

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(self._pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPath(self._path)
