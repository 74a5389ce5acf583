"""The resize grip that nodes and groups draw in their bottom-right corner."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF
from PySide6.QtGui import QPainter

from nodeui.canvas import style as s


def paint_grip(painter: QPainter, grip: QRectF) -> None:
    """Three short diagonal strokes in ``grip``'s corner: "drag here to resize"."""
    painter.setPen(s.pen("#7a808b", 1.2))
    right, bottom = grip.right() - 3, grip.bottom() - 3
    for step in (3.0, 6.0, 9.0):
        painter.drawLine(QPointF(right - step, bottom), QPointF(right, bottom - step))
