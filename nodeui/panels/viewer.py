"""The image viewer: the latest outputs, with zoom, 1:1, fit and Save As.

Saved PNGs carry the workflow of the run that made them (when known), so opening the picture
reopens its graph.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PySide6.QtCore import QBuffer, QIODevice, QSize, Qt, Signal
from PySide6.QtGui import QImage, QPainter, QPixmap, QWheelEvent
from PySide6.QtWidgets import (
    QFileDialog,
    QGraphicsPixmapItem,
    QGraphicsScene,
    QGraphicsView,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from core.graph import png
from core.graph.workflow import PNG_KEY, atomic_write


def png_with_workflow(image: QImage, workflow: dict[str, Any] | None) -> bytes:
    """``image`` encoded as PNG, with ``workflow`` embedded when given."""
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    data = bytes(buffer.data())
    if workflow:
        data = png.add_text_chunk(data, PNG_KEY, json.dumps(workflow))
    return data


class _ZoomView(QGraphicsView):
    """A view that zooms with the wheel and keeps fitting while in fit mode."""

    zoomChanged = Signal(float)

    def __init__(self) -> None:
        super().__init__()
        self.setScene(QGraphicsScene(self))
        self.item = QGraphicsPixmapItem()
        self.item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self.scene().addItem(self.item)
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.fitting = True

    def show_image(self, image: QImage | None) -> None:
        self.item.setPixmap(QPixmap.fromImage(image) if image is not None else QPixmap())
        self.scene().setSceneRect(self.item.boundingRect())
        if self.fitting:
            self.fit()

    def zoom(self) -> float:
        return self.transform().m11()

    def set_zoom(self, factor: float) -> None:
        self.fitting = False
        factor = max(0.05, min(32.0, factor))
        self.resetTransform()
        self.scale(factor, factor)
        self.zoomChanged.emit(factor)

    def fit(self) -> None:
        self.fitting = True
        if not self.item.pixmap().isNull():
            self.fitInView(self.item, Qt.AspectRatioMode.KeepAspectRatio)
        self.zoomChanged.emit(self.zoom())

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120.0
        self.set_zoom(self.zoom() * (1.25**steps))

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        if self.fitting:
            self.fit()


class ImageViewer(QWidget):
    """Shows a batch of images (thumbnails when more than one) and saves the selected one."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.images: list[QImage] = []
        self.workflow: dict[str, Any] | None = None
        self.view = _ZoomView()
        self.thumbs = QListWidget()
        self.thumbs.setViewMode(QListWidget.ViewMode.IconMode)
        self.thumbs.setFlow(QListWidget.Flow.LeftToRight)
        self.thumbs.setWrapping(False)
        side = self.fontMetrics().height() * 4
        self.thumbs.setIconSize(QSize(side, side))
        self.thumbs.setFixedHeight(side + self.fontMetrics().height() * 2)
        self.thumbs.currentRowChanged.connect(self._show_index)
        self.thumbs.hide()
        self.info = QLabel("No image yet: run the graph (Ctrl+Enter).")
        self.info.setObjectName("emptyHint")

        bar = QHBoxLayout()
        for text, tip, slot in (
            ("−", "Zoom out", lambda: self.view.set_zoom(self.view.zoom() / 1.25)),
            ("+", "Zoom in", lambda: self.view.set_zoom(self.view.zoom() * 1.25)),
            ("1:1", "Actual size", lambda: self.view.set_zoom(1.0)),
            ("Fit", "Fit to the panel", self.view.fit),
            ("Save As…", "Save the picture as a PNG with its workflow", self.save_as),
        ):
            button = QToolButton()
            button.setText(text)
            button.setToolTip(tip)
            button.clicked.connect(slot)
            bar.addWidget(button)
        bar.addStretch(1)
        bar.addWidget(self.info)
        bar.setContentsMargins(0, 0, self.fontMetrics().averageCharWidth(), 0)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.thumbs)

    def set_images(self, images: list[QImage], workflow: dict[str, Any] | None = None) -> None:
        """Shows ``images`` (the latest outputs); ``workflow`` is embedded when saving."""
        self.images = list(images)
        self.workflow = workflow
        self.thumbs.blockSignals(True)
        self.thumbs.clear()
        for image in self.images:
            icon = QPixmap.fromImage(image).scaled(
                self.thumbs.iconSize(), Qt.AspectRatioMode.KeepAspectRatio
            )
            QListWidgetItem(icon, "", self.thumbs)
        self.thumbs.blockSignals(False)
        self.thumbs.setVisible(len(self.images) > 1)
        self._show_index(0)

    def current_image(self) -> QImage | None:
        row = max(0, self.thumbs.currentRow())
        return self.images[row] if row < len(self.images) else None

    def _show_index(self, row: int) -> None:
        image = self.images[row] if 0 <= row < len(self.images) else None
        self.view.show_image(image)
        if image is None:
            self.info.setText("No image yet: run the graph (Ctrl+Enter).")
        else:
            self.info.setText(f"{image.width()} × {image.height()}")

    def save_as(self, path: Path | None = None) -> Path | None:
        """Saves the shown image as PNG (asks where when ``path`` is None)."""
        image = self.current_image()
        if image is None:
            return None
        if path is None:
            chosen, _ = QFileDialog.getSaveFileName(self, "Save image", "", "PNG images (*.png)")
            if not chosen:
                return None
            path = Path(chosen)
        if path.suffix.lower() != ".png":
            path = path.with_suffix(".png")
        try:
            atomic_write(path, png_with_workflow(image, self.workflow))
        except OSError as exc:
            QMessageBox.warning(self, "Save image", f"Could not save {path}: {exc.strerror}")
            return None
        return path
