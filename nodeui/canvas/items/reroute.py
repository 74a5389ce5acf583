"""The reroute dot: the core ``Reroute`` node drawn as a small circle on a link's path."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF
from PySide6.QtGui import QPainter, QPainterPath
from PySide6.QtWidgets import QStyleOptionGraphicsItem, QWidget

from core.graph.model import Graph, NodeId
from nodeui.canvas import style as s
from nodeui.canvas.items.node import Hit, NodeItem
from nodeui.canvas.layout import NodeLayout, SocketSlot

R = s.REROUTE_RADIUS


class RerouteItem(NodeItem):
    """A node item that is only a dot: its one input and one output sit at its centre.

    ``node.pos`` is the dot's top-left corner, like any node's, so moves work the same.
    """

    def __init__(self, graph: Graph, node_id: NodeId) -> None:
        super().__init__(graph, node_id)
        self.setZValue(1.5)

    def refresh(self) -> None:
        node = self.graph.node(self.node_id)
        center = QPointF(R, R)
        kind = self.graph.output_type(self.node_id, "value")
        box = QRectF(0, 0, 2 * R, 2 * R)
        self.prepareGeometryChange()
        self.layout = NodeLayout(
            2 * R,
            2 * R,
            box,
            QRectF(),
            [SocketSlot("value", kind, True, center, QRectF())],
            [SocketSlot("value", kind, False, center, QRectF())],
        )
        self._kind = kind
        self._body_path = QPainterPath()
        self._body_path.addEllipse(box.adjusted(-3, -3, 3, 3))
        self._hit_path = self._body_path
        self.setPos(QPointF(*node.pos))
        self.state_item.relayout()
        self.update()
        self.update_links()

    def hit(self, local: QPointF) -> Hit:
        return Hit("output", "value", self._kind)

    def boundingRect(self) -> QRectF:
        return QRectF(-4, -4, 2 * R + 8, 2 * R + 8)

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        lit = bool(self.highlight)
        painter.setPen(s.pen("#f0c674", 2.0) if self.isSelected() or lit else s.pen("#1e1f22"))
        painter.setBrush(s.socket_color(self._kind))
        painter.drawEllipse(QPointF(R, R), R, R)
