"""Pictures shown on a node: the finished images of an output node, the live sampler
preview, and a finished sampler's step-history scrub row. The live preview is its own uncached
child item, repainted at most ~15 times a second so a fast sampler never floods the event loop
or invalidates the node's cached body; the scrub row is one too, so scrubbing never re-renders
the body either.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from PySide6.QtCore import QRectF, Qt, QTimer
from PySide6.QtGui import QFontMetricsF, QImage, QPainter
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsObject,
    QStyleOptionGraphicsItem,
    QWidget,
)

from nodeui.canvas import style as s
from nodeui.history import WHICH_LABELS

if TYPE_CHECKING:
    from nodeui.history import HistoryCursor

_CENTER = Qt.AlignmentFlag.AlignCenter
_LEFT = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
_CAPTION = "history"


def scrub_texts(metrics: QFontMetricsF, width: float, label: str) -> tuple[str, str]:
    """The caption and step label that fit a history slider ``width`` wide: the caption goes
    first when both do not fit, then the label is cut at its end, so the two never overlap."""
    gap = metrics.horizontalAdvance("  ")
    if metrics.horizontalAdvance(_CAPTION) + gap + metrics.horizontalAdvance(label) <= width:
        return _CAPTION, label
    return "", metrics.elidedText(label, Qt.TextElideMode.ElideRight, width)


#: The fastest the live preview repaints.
PREVIEW_INTERVAL_S = 1 / 15


def fit_rect(image_size: tuple[int, int], area: QRectF) -> QRectF:
    """The largest rectangle of the image's aspect ratio centred in ``area``."""
    w, h = image_size
    if w <= 0 or h <= 0:
        return QRectF()
    scale = min(area.width() / w, area.height() / h)
    fw, fh = w * scale, h * scale
    return QRectF(
        area.left() + (area.width() - fw) / 2, area.top() + (area.height() - fh) / 2, fw, fh
    )


class ImagesItem(QGraphicsItem):
    """The images an output node produced, scaled to fit its image area (a grid when many)."""

    def __init__(self, parent: QGraphicsItem) -> None:
        super().__init__(parent)
        self._rect = QRectF()
        self._images: list[QImage] = []
        self._targets: list[QRectF] = []
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)

    def set_rect(self, rect: QRectF) -> None:
        self.prepareGeometryChange()
        self._rect = QRectF(rect)
        self._relayout()

    def set_images(self, images: list[QImage]) -> None:
        self._images = list(images)
        self._relayout()

    def _relayout(self) -> None:
        count = len(self._images)
        self._targets = []
        if not count or self._rect.isEmpty():
            self.update()
            return
        cols = max(1, round(count**0.5 + 0.49))
        rows = (count + cols - 1) // cols
        cw, ch = self._rect.width() / cols, self._rect.height() / rows
        for i, image in enumerate(self._images):
            cell = QRectF(
                self._rect.left() + (i % cols) * cw, self._rect.top() + (i // cols) * ch, cw, ch
            )
            self._targets.append(
                fit_rect((image.width(), image.height()), cell.adjusted(1, 1, -1, -1))
            )
        self.update()

    def boundingRect(self) -> QRectF:
        return self._rect

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        for image, target in zip(self._images, self._targets, strict=False):
            painter.drawImage(target, image)


class PreviewItem(QGraphicsObject):
    """The live sampler preview (or a history step's picture): stores the newest frame and a
    caption ("step 7/20"), repaints at a throttled rate, scales smoothly."""

    def __init__(self, parent: QGraphicsItem) -> None:
        super().__init__(parent)
        self._rect = QRectF()
        self._image: QImage | None = None
        self.caption = ""
        self._target = QRectF()
        self._last_paint = 0.0
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._flush)
        self.setCacheMode(QGraphicsItem.CacheMode.NoCache)
        self.setZValue(1.0)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)

    @property
    def image(self) -> QImage | None:
        return self._image

    def set_rect(self, rect: QRectF) -> None:
        self.prepareGeometryChange()
        self._rect = QRectF(rect)
        self._refit()

    def set_image(self, image: QImage, caption: str = "") -> None:
        """Takes the newest frame; repaints now or when the throttle interval has passed."""
        self._image = image
        self.caption = caption
        self._refit()
        wait = PREVIEW_INTERVAL_S - (time.monotonic() - self._last_paint)
        if wait <= 0:
            self._flush()
        elif not self._timer.isActive():
            self._timer.start(int(wait * 1000) + 1)

    def _refit(self) -> None:
        if self._image is not None:
            self._target = fit_rect((self._image.width(), self._image.height()), self._rect)

    def _flush(self) -> None:
        self._last_paint = time.monotonic()
        self.update()

    def boundingRect(self) -> QRectF:
        return self._rect

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        if self._image is None:
            return
        painter.fillRect(self._rect, s.EDITOR_BG)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.drawImage(self._target, self._image)
        if self.caption and self._target.width() > 60:
            painter.setFont(s.font(8.5))
            width = s.metrics(8.5).horizontalAdvance(self.caption) + 12
            pill = QRectF(self._target.left() + 4, self._target.bottom() - 20, width, 16)
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.setPen(s.NO_PEN)
            painter.setBrush(s.LABEL_BG)
            painter.drawRoundedRect(pill, 7, 7)
            painter.setPen(s.TEXT)
            painter.drawText(pill, _CENTER, self.caption)


class HistoryScrubItem(QGraphicsObject):
    """A finished sampler's history row, painted like the node's slider editors: a step slider
    reading "step k/N" and an x_t | x̂₀ chip whose click switches the picture. It only draws;
    the canvas's ``ScrubHistory`` and ``ToggleHistoryPicture`` gestures move the cursor."""

    def __init__(self, parent: QGraphicsItem, cursor: HistoryCursor) -> None:
        super().__init__(parent)
        self.cursor = cursor
        self._slider = QRectF()
        self._chip = QRectF()
        self.setCacheMode(QGraphicsItem.CacheMode.NoCache)
        self.setZValue(1.0)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        cursor.changed.connect(self.update)

    def set_rects(self, slider: QRectF, chip: QRectF) -> None:
        self.prepareGeometryChange()
        self._slider, self._chip = QRectF(slider), QRectF(chip)

    def boundingRect(self) -> QRectF:
        return self._slider.united(self._chip)

    def fraction(self) -> float:
        count = self.cursor.count
        return 1.0 if count <= 1 else self.cursor.index / (count - 1)

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        rect, chip = self._slider, self._chip
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(s.NO_PEN)
        painter.setBrush(s.EDITOR_BG)
        painter.drawRoundedRect(rect, s.EDITOR_RADIUS, s.EDITOR_RADIUS)
        painter.save()
        painter.setClipRect(QRectF(rect.left(), rect.top(), rect.width() * self.fraction(), 99))
        painter.setBrush(s.EDITOR_FILL)
        painter.drawRoundedRect(rect, s.EDITOR_RADIUS, s.EDITOR_RADIUS)
        painter.restore()
        painter.setFont(s.font())
        inner = rect.adjusted(8, 0, -8, 0)
        caption, label = scrub_texts(QFontMetricsF(s.font()), inner.width(), self.cursor.label())
        painter.setPen(s.TEXT_DIM)
        painter.drawText(inner, _LEFT, caption)
        painter.setPen(s.TEXT)
        painter.drawText(inner, _RIGHT, label)
        painter.setPen(s.NO_PEN)
        painter.setBrush(s.EDITOR_BG)
        painter.drawRoundedRect(chip, s.EDITOR_RADIUS, s.EDITOR_RADIUS)
        half = chip.width() / 2
        for index, (which, label) in enumerate(WHICH_LABELS.items()):
            part = QRectF(chip.left() + index * half, chip.top(), half, chip.height())
            chosen = which == self.cursor.which
            if chosen:
                painter.setBrush(s.EDITOR_FILL)
                painter.drawRoundedRect(part, s.EDITOR_RADIUS, s.EDITOR_RADIUS)
            painter.setPen(s.TEXT if chosen else s.TEXT_DIM)
            painter.drawText(part, _CENTER, label)
            painter.setPen(s.NO_PEN)
