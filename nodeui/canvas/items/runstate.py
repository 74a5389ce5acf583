"""The run-state overlay of a node: queued outline, progress bar, cached badge, time, and a
failure pinned under the node. A child item, so state changes never re-render the cached body.
"""

from __future__ import annotations

from typing import Protocol

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from nodeui.canvas import style as s
from nodeui.canvas.layout import NodeLayout
from nodeui.runstate import IDLE, NodeRunState, RunStatus

_WRAP = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop | Qt.TextFlag.TextWordWrap
_OUTLINE = {
    RunStatus.QUEUED: "#6aa5e0",
    RunStatus.RUNNING: "#5fb760",
    RunStatus.FAILED: "#e05252",
}
MESSAGE_GAP = 6.0


class LaidOutNode(Protocol):
    """What the overlay reads of the node item it is a child of (a ``NodeItem``, which
    creates it: a protocol, so the import goes from the node to its overlay only)."""

    layout: NodeLayout


class RunStateItem(QGraphicsItem):
    """Draws a node's ``NodeRunState`` over and around the node."""

    def __init__(self, node: LaidOutNode) -> None:
        super().__init__(node)  # a NodeItem, so a QGraphicsItem: the overlay is its child
        self.node = node
        self.state: NodeRunState = IDLE
        self._message_rect = QRectF()
        self._bounds = QRectF()
        self._label = ""
        self._label_rect = QRectF()
        self.setVisible(False)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)

    def set_state(self, state: NodeRunState) -> None:
        if state == self.state:
            return
        self.state = state
        self.relayout()
        self.setVisible(state.status is not RunStatus.IDLE)
        self.update()

    def relayout(self) -> None:
        lay = self.node.layout
        self.prepareGeometryChange()
        self._message_rect = QRectF()
        self._label = "" if self.state.message and not lay.collapsed else self.state.label
        if self.state.status in (RunStatus.SKIPPED, RunStatus.CANCELLED):
            self._label = self.state.label
        width = s.metrics(8.5).horizontalAdvance(self._label) + 14
        self._label_rect = QRectF(lay.width - width - 6, (s.TITLE_HEIGHT - 16) / 2, width, 16)
        if self.state.status is RunStatus.FAILED and self.state.message:
            width = max(lay.width, 240.0)
            fm = s.metrics()
            text = fm.boundingRect(QRectF(0, 0, width - 16, 10_000), int(_WRAP), self.state.message)
            height = min(text.height(), 160.0) + 12
            self._message_rect = QRectF(0, lay.height + MESSAGE_GAP, width, height)
        self._bounds = QRectF(-4, -4, lay.width + 8, lay.height + 8).united(
            self._message_rect.adjusted(-1, -1, 1, 1)
        )

    def boundingRect(self) -> QRectF:
        return self._bounds

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        state = self.state
        lay = self.node.layout
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        outline = _OUTLINE.get(state.status)
        if outline:
            painter.setPen(s.pen(outline, 2.0))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(QRectF(-2, -2, lay.width + 4, lay.height + 4), 8, 8)
        if state.status is RunStatus.RUNNING and state.progress is not None:
            bar = QRectF(0, s.TITLE_HEIGHT - 3, lay.width * state.progress, 3)
            painter.fillRect(bar, s.RUNNING)
        if option.levelOfDetailFromTransform(painter.worldTransform()) < s.LOD_SIMPLE:
            if not self._message_rect.isNull():
                painter.fillRect(self._message_rect, s.ERROR)
            return
        if self._label:
            # A pill over the title's right end, legible over any title text under it.
            painter.setPen(s.NO_PEN)
            painter.setBrush(s.CACHED if state.status is RunStatus.CACHED else s.LABEL_BG)
            painter.drawRoundedRect(self._label_rect, 7, 7)
            painter.setFont(s.font(8.5))
            painter.setPen(s.NODE_BODY if state.status is RunStatus.CACHED else s.TEXT)
            painter.drawText(self._label_rect, Qt.AlignmentFlag.AlignCenter, self._label)
        if not self._message_rect.isNull():
            painter.setPen(s.pen("#e05252", 1.0))
            painter.setBrush(s.ERROR_BG)
            painter.drawRoundedRect(self._message_rect, 5, 5)
            painter.setPen(s.TEXT)
            painter.setFont(s.font())
            painter.drawText(self._message_rect.adjusted(8, 6, -8, -6), _WRAP, state.message)
