"""The painting surface of the Mask Editor: a picture with its mask drawn over it.

The mask is a float array ``[height, width]`` in 0..1 at the picture's own resolution
(1 = repaint, as the MASK socket type has it). A brush stamp is a disc of ``size`` pixels whose
edge fades over the part ``1 - hardness`` of its radius; the brush raises the mask to the stamp,
the eraser lowers it. Each stroke, invert, clear and fill is one step of the editor's own undo
history, which lives only while the editor is open; applying the editor's result to the graph is
one step of the graph's undo stack (``nodeui.mask_editor``).
"""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

BRUSH, ERASER = "brush", "eraser"
#: The mask's colour over the picture (white, as the saved file has it: white = repaint) and
#: its opacity where the mask is 1: the picture stays visible under it.
OVERLAY_RGB = (255, 255, 255)
OVERLAY_OPACITY = 0.6
#: Strokes and edits kept for undo inside the editor.
UNDO_DEPTH = 64


def stamp(mask: np.ndarray, centre: QPointF, size: float, hardness: float, erase: bool) -> None:
    """Paints (or erases) one brush disc into ``mask`` in place, at picture coordinates."""
    radius = max(size / 2.0, 0.5)
    height, width = mask.shape
    left, right = (
        max(0, math.floor(centre.x() - radius)),
        min(width, math.ceil(centre.x() + radius)),
    )
    top, bottom = (
        max(0, math.floor(centre.y() - radius)),
        min(height, math.ceil(centre.y() + radius)),
    )
    if left >= right or top >= bottom:
        return
    ys, xs = np.mgrid[top:bottom, left:right].astype(np.float32)
    # Distances from the pixel centres, so a 1-pixel brush paints exactly the pixel it is on.
    distance = np.hypot(xs + 0.5 - centre.x(), ys + 0.5 - centre.y())
    inner = radius * min(max(hardness, 0.0), 1.0)
    if radius - inner < 1e-6:
        strength = (distance <= radius).astype(np.float32)
    else:
        strength = np.clip((radius - distance) / (radius - inner), 0.0, 1.0).astype(np.float32)
    region = mask[top:bottom, left:right]
    if erase:
        np.minimum(region, 1.0 - strength, out=region)
    else:
        np.maximum(region, strength, out=region)


def feathered(mask: np.ndarray, radius: float) -> np.ndarray:
    """``mask`` blurred by a Gaussian whose standard deviation is ``radius`` pixels (the mask
    itself when 0)."""
    if radius <= 0:
        return mask
    from PIL import Image, ImageFilter

    # At 8 bits, the precision the mask is saved with: Pillow blurs those in C, fast enough to
    # follow the brush on large pictures.
    levels = np.round(np.clip(mask, 0.0, 1.0) * 255.0).astype(np.uint8)
    blurred = Image.fromarray(levels, mode="L").filter(ImageFilter.GaussianBlur(radius))
    return np.asarray(blurred, dtype=np.float32) / 255.0


def overlay_image(mask: np.ndarray) -> QImage:
    """The mask as a translucent colour layer to draw over the picture."""
    height, width = mask.shape
    rgba = np.empty((height, width, 4), dtype=np.uint8)
    rgba[..., :3] = OVERLAY_RGB
    rgba[..., 3] = np.round(np.clip(mask, 0, 1) * (255 * OVERLAY_OPACITY)).astype(np.uint8)
    return QImage(rgba.data, width, height, 4 * width, QImage.Format.Format_RGBA8888).copy()


class MaskCanvas(QWidget):
    """Shows the picture scaled to fit with the mask over it; the left button paints with the
    current tool, the right button always erases."""

    #: The mask changed (a stroke step, undo, invert…).
    maskChanged = Signal()

    def __init__(
        self, picture: QImage, mask: np.ndarray | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.picture = picture
        shape = (picture.height(), picture.width())
        if mask is not None and mask.shape != shape:
            raise ValueError(
                f"the mask is {mask.shape[1]}×{mask.shape[0]} pixels, the picture "
                f"{shape[1]}×{shape[0]}"
            )
        self.mask = np.zeros(shape, np.float32) if mask is None else mask.astype(np.float32).copy()
        self.tool = BRUSH
        self.size = float(max(2, min(shape) // 8))
        self.hardness = 0.8
        self.feather = 0.0
        self._undo: list[np.ndarray] = []
        self._redo: list[np.ndarray] = []
        self._stroke_start: np.ndarray | None = None
        self._stroke_erases = False
        self._last: QPointF | None = None
        self._hover: QPointF | None = None
        self._overlay = overlay_image(self.shown_mask())
        self.setMouseTracking(True)
        self.setMinimumSize(320, 320)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setCursor(Qt.CursorShape.CrossCursor)

    # --- the mask ------------------------------------------------------------------------------

    def shown_mask(self) -> np.ndarray:
        """The mask as it will be saved: feathered by ``feather`` pixels."""
        return feathered(self.mask, self.feather)

    def set_feather(self, radius: float) -> None:
        """The feather preview: the overlay shows the mask blurred by ``radius`` pixels."""
        self.feather = max(0.0, float(radius))
        self._changed()

    def edit(self, change: str) -> None:
        """``invert``, ``clear`` or ``fill`` the whole mask, as one undo step."""
        before = self.mask.copy()
        if change == "invert":
            self.mask = 1.0 - self.mask
        elif change == "clear":
            self.mask = np.zeros_like(self.mask)
        elif change == "fill":
            self.mask = np.ones_like(self.mask)
        else:
            raise ValueError(f"unknown mask edit {change!r}: use invert, clear or fill")
        self._record(before)
        self._changed()

    def can_undo(self) -> bool:
        return bool(self._undo)

    def can_redo(self) -> bool:
        return bool(self._redo)

    def undo(self) -> None:
        if self._undo:
            self._redo.append(self.mask)
            self.mask = self._undo.pop()
            self._changed()

    def redo(self) -> None:
        if self._redo:
            self._undo.append(self.mask)
            self.mask = self._redo.pop()
            self._changed()

    def _record(self, before: np.ndarray) -> None:
        self._undo.append(before)
        del self._undo[:-UNDO_DEPTH]
        self._redo.clear()

    def _changed(self) -> None:
        self._overlay = overlay_image(self.shown_mask())
        self.update()
        self.maskChanged.emit()

    # --- geometry ------------------------------------------------------------------------------

    def picture_rect(self) -> QRectF:
        """Where the picture is drawn: as large as fits, centred, its aspect kept."""
        width, height = self.picture.width(), self.picture.height()
        scale = min(self.width() / width, self.height() / height)
        shown_w, shown_h = width * scale, height * scale
        return QRectF((self.width() - shown_w) / 2, (self.height() - shown_h) / 2, shown_w, shown_h)

    def to_picture(self, pos: QPointF) -> QPointF:
        """A widget point in picture pixels."""
        rect = self.picture_rect()
        scale = rect.width() / self.picture.width()
        return QPointF((pos.x() - rect.left()) / scale, (pos.y() - rect.top()) / scale)

    def from_picture(self, pos: QPointF) -> QPointF:
        """A picture point (pixels) in widget coordinates."""
        rect = self.picture_rect()
        scale = rect.width() / self.picture.width()
        return QPointF(rect.left() + pos.x() * scale, rect.top() + pos.y() * scale)

    # --- strokes -------------------------------------------------------------------------------

    def mousePressEvent(self, event: QMouseEvent) -> None:
        button = event.button()
        if button not in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton):
            super().mousePressEvent(event)
            return
        self._stroke_start = self.mask.copy()
        self._stroke_erases = button == Qt.MouseButton.RightButton or self.tool == ERASER
        self._last = self.to_picture(event.position())
        stamp(self.mask, self._last, self.size, self.hardness, self._stroke_erases)
        self._changed()
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        self._hover = event.position()
        if self._stroke_start is None or self._last is None:
            self.update()
            return
        point = self.to_picture(event.position())
        # Stamps close enough together that a quick stroke is a line, not a row of dots.
        spacing = max(0.5, self.size / 8.0)
        distance = math.hypot(point.x() - self._last.x(), point.y() - self._last.y())
        count = max(1, math.ceil(distance / spacing))
        for i in range(1, count + 1):
            t = i / count
            at = QPointF(
                self._last.x() + (point.x() - self._last.x()) * t,
                self._last.y() + (point.y() - self._last.y()) * t,
            )
            stamp(self.mask, at, self.size, self.hardness, self._stroke_erases)
        self._last = point
        self._changed()
        event.accept()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._stroke_start is not None:
            if not np.array_equal(self._stroke_start, self.mask):
                self._record(self._stroke_start)
            self._stroke_start, self._last = None, None
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def leaveEvent(self, event: QEvent) -> None:
        self._hover = None
        self.update()
        super().leaveEvent(event)

    # --- painting ------------------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor("#1e1f22"))
        rect = self.picture_rect()
        # Pixels stay sharp when a small picture is enlarged: the mask's edge is visible.
        smooth = rect.width() < self.picture.width()
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, smooth)
        painter.drawImage(rect, self.picture)
        painter.drawImage(rect, self._overlay)
        if self._hover is not None:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            radius = self.size / 2.0 * rect.width() / self.picture.width()
            painter.setBrush(Qt.BrushStyle.NoBrush)
            for colour, width in (("#000000", 3.0), ("#ffffff", 1.0)):
                painter.setPen(QPen(QColor(colour), width))
                painter.drawEllipse(self._hover, radius, radius)
        painter.end()
