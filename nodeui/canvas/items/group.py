"""The group frame: a titled, coloured rectangle behind its member nodes."""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from core.graph.model import Graph
from nodeui.canvas import style as s
from nodeui.canvas.items.grip import paint_grip

GROUP_TYPE = QGraphicsItem.UserType + 3
_LEFT = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter


class GroupItem(QGraphicsItem):
    """Draws one model group. A group without a saved rect frames its members."""

    def __init__(self, graph: Graph, group_id: int) -> None:
        super().__init__()
        self.graph = graph
        self.group_id = group_id
        self._rect = QRectF()
        self._fill = QColor()
        self._title_fill = QColor()
        self.title = ""
        self.member_rect: QRectF | None = None
        #: Lit while a dragged node would join the group if dropped.
        self.lit = False
        self.setZValue(-1.0)
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)

    def type(self) -> int:
        return GROUP_TYPE

    def refresh(self, member_rect: QRectF | None = None) -> None:
        """Re-reads the group; ``member_rect`` (its members' bounds) frames a rect-less group."""
        group = self.graph.groups[self.group_id]
        self.member_rect = member_rect
        if group.rect is not None:
            x, y, w, h = group.rect
            rect = QRectF(x, y, w, h)
        else:
            rect = (member_rect or QRectF(0, 0, 200, 120)).adjusted(
                -12, -s.GROUP_TITLE_HEIGHT - 8, 12, 12
            )
        self.set_frame(rect)
        base = QColor(group.color)
        self._fill = QColor(base.red(), base.green(), base.blue(), 48)
        self._title_fill = QColor(base.red(), base.green(), base.blue(), 150)
        self.title = group.title
        self.update()

    def set_frame(self, rect: QRectF) -> None:
        """Places the frame at ``rect`` (scene coordinates) without touching the model: a
        drag shows the frame where it will be, and the model changes once, on release."""
        self.prepareGeometryChange()
        self.setPos(rect.topLeft())
        self._rect = QRectF(0, 0, rect.width(), rect.height())
        self.update()

    def set_lit(self, lit: bool) -> None:
        if lit != self.lit:
            self.lit = lit
            self.update()

    def restore(self) -> None:
        """Back to the frame the model holds (a cancelled drag)."""
        self.refresh(self.member_rect)

    def scene_rect(self) -> QRectF:
        return self._rect.translated(self.pos())

    def grip_rect(self) -> QRectF:
        """The resize grip in the bottom-right corner, in item coordinates."""
        g = s.GRIP_SIZE + 4
        return QRectF(self._rect.right() - g, self._rect.bottom() - g, g, g)

    def title_rect(self) -> QRectF:
        return QRectF(0, 0, self._rect.width(), s.GROUP_TITLE_HEIGHT)

    def boundingRect(self) -> QRectF:
        return self._rect.adjusted(-1, -1, 1, 1)

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        lit = s.pen(s.SELECTED, 2.5)
        painter.setPen(lit if self.lit else s.pen(self._title_fill.name(), 1.0))
        painter.setBrush(self._fill)
        painter.drawRoundedRect(self._rect, 6, 6)
        painter.setPen(s.NO_PEN)
        painter.setBrush(self._title_fill)
        painter.drawRoundedRect(self.title_rect(), 6, 6)
        if option.levelOfDetailFromTransform(painter.worldTransform()) >= s.LOD_SIMPLE:
            painter.setPen(s.TEXT)
            painter.setFont(s.font(11.0, True))
            painter.drawText(self.title_rect().adjusted(10, 0, -10, 0), _LEFT, self.title)
            paint_grip(painter, self.grip_rect().adjusted(0, 0, -2, -2))
