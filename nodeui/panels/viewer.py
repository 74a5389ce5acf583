"""The image viewer: the latest outputs, with zoom, 1:1, fit and Save As; the running
sampler's live previews when following them; and a finished sampler's step history.

Saved PNGs carry the workflow of the run that made them (when known), so opening the picture
reopens its graph. Small pictures (previews are at latent resolution) are scaled smoothly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QBuffer, QIODevice, QPoint, QSignalBlocker, QSize, Qt, Signal
from PySide6.QtGui import QImage, QMouseEvent, QPainter, QPixmap, QWheelEvent
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
    QSizePolicy,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from core.files import atomic_write
from core.graph import png
from core.graph.workflow import PNG_KEY
from nodeui.panels.flow import FlowLayout, layout_spacing

if TYPE_CHECKING:
    from nodeui.history import HistoryCursor
    from nodeui.images import PreviewFrame

#: What the viewer shows: the run's outputs, a sampler's live previews, or a step history.
IMAGES, LIVE, HISTORY = "images", "live", "history"


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
    #: A click (press and release in place) on the picture, in the picture's pixels.
    pictureClicked = Signal(int, int)

    def __init__(self) -> None:
        super().__init__()
        self._pressed_at: QPoint | None = None
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

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self._pressed_at = event.position().toPoint()
        super().mousePressEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        super().mouseReleaseEvent(event)
        pressed, self._pressed_at = self._pressed_at, None
        at = event.position().toPoint()
        if pressed is None or (at - pressed).manhattanLength() > 4:
            return  # a drag that panned the picture, not a click
        point = self.item.mapFromScene(self.mapToScene(at))
        if self.item.boundingRect().contains(point):
            self.pictureClicked.emit(int(point.x()), int(point.y()))

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120.0
        self.set_zoom(self.zoom() * (1.25**steps))

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        if self.fitting:
            self.fit()


class HistoryBar(QWidget):
    """The viewer's step-history controls for one sampler: show it, a step slider, x_t/x̂₀,
    and "Continue from step k". They move the node's own ``HistoryCursor``, so the node's
    scrub row and this bar always agree."""

    #: The user asked to see the history (True) or the outputs again (False).
    showRequested = Signal(bool)
    #: (sampler node id, step): branch a new sampler from that step.
    continueRequested = Signal(int, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.cursor: HistoryCursor | None = None
        self.node_id = -1
        self.show_button = QToolButton()
        self.show_button.setText("History")
        self.show_button.setCheckable(True)
        self.show_button.setToolTip("Show the sampler's steps instead of the outputs")
        self.show_button.toggled.connect(self.showRequested)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setToolTip("Scrub through the sampler's steps")
        self.slider.valueChanged.connect(self._slider_moved)
        self.step_label = QLabel()
        self.which_button = QToolButton()
        self.which_button.setToolTip(
            "Show x_t (the latent after the step) or x̂₀ (the clean "
            "estimate the model made at that step)"
        )
        self.which_button.clicked.connect(self._toggle_which)
        self.continue_button = QToolButton()
        self.continue_button.setToolTip(
            "Add a KSampler (Advanced) that starts from this step's latent, to try another "
            "prompt, CFG or sampler for the remaining steps"
        )
        self.continue_button.clicked.connect(self._continue)
        # Two rows, so the bar does not force a wide dock: the slider row, then the actions.
        scrub, actions = QHBoxLayout(), FlowLayout(spacing=layout_spacing(self))
        scrub.addWidget(self.show_button)
        scrub.addWidget(self.slider, 1)
        scrub.addWidget(self.step_label)
        actions.addWidget(self.which_button)
        actions.addWidget(self.continue_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, self.fontMetrics().averageCharWidth(), 0)
        layout.setSpacing(2)
        layout.addLayout(scrub)
        layout.addLayout(actions)

    def bind(self, cursor: HistoryCursor | None, node_id: int = -1) -> None:
        """Follows ``cursor`` (a sampler node's; None hides the bar)."""
        if self.cursor is not None:
            self.cursor.changed.disconnect(self.sync)
        self.cursor, self.node_id = cursor, node_id
        if cursor is not None:
            cursor.changed.connect(self.sync)
        self.setVisible(cursor is not None)
        self.sync()

    def sync(self) -> None:
        """Reads the cursor into the controls (without echoing back into it)."""
        cursor = self.cursor
        if cursor is None:
            return
        with QSignalBlocker(self.slider):
            self.slider.setRange(0, max(0, cursor.count - 1))
            self.slider.setValue(cursor.index)
        self.step_label.setText(cursor.label())
        self.which_button.setText(f"showing {cursor.which_label} ⇄")
        self.continue_button.setText(f"Continue from step {cursor.step}")

    def _slider_moved(self, index: int) -> None:
        if self.cursor is not None:
            self.cursor.set_index(index)

    def _toggle_which(self) -> None:
        if self.cursor is not None:
            self.cursor.toggle_which()

    def _continue(self) -> None:
        if self.cursor is not None:
            self.continueRequested.emit(self.node_id, self.cursor.step)


class ImageViewer(QWidget):
    """Shows a batch of images (thumbnails when more than one) and saves the selected one;
    follows live sampler previews when asked; scrubs a sampler's step history."""

    #: (sampler node id, step): "Continue from step k" was pressed.
    continueRequested = Signal(int, int)
    #: (shown image's index, x, y in its pixels): the picture was clicked.
    imageClicked = Signal(int, int, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.images: list[QImage] = []
        self.workflow: dict[str, Any] | None = None
        self.mode = IMAGES
        self.view = _ZoomView()
        self.view.pictureClicked.connect(
            lambda x, y: self.imageClicked.emit(max(0, self.thumbs.currentRow()), x, y)
        )
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
        # The hint takes the rest of the buttons' row, or a row of its own in a narrow dock,
        # where it wraps: it must not widen the dock.
        self.info.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.info.setWordWrap(True)
        self.info.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        self.follow = QToolButton()
        self.follow.setText("Follow live preview")
        self.follow.setCheckable(True)
        self.follow.setChecked(True)
        self.follow.setToolTip("While a sampler runs, show its step previews here")
        self.history = HistoryBar()
        self.history.hide()
        self.history.showRequested.connect(self._history_requested)
        self.history.continueRequested.connect(self.continueRequested)

        # The buttons wrap onto a second row in a narrow dock, so the viewer never holds the
        # dock (and with it the canvas's share of the window) wider than its widest button.
        bar = FlowLayout(spacing=layout_spacing(self))
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
        bar.addWidget(self.follow)
        bar.addWidget(self.info)
        bar.setContentsMargins(0, 0, self.fontMetrics().averageCharWidth(), 0)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.history)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.thumbs)

    @property
    def following(self) -> bool:
        return self.follow.isChecked()

    def shown_image(self) -> QImage | None:
        """The picture on screen, whatever the mode."""
        pixmap = self.view.item.pixmap()
        return None if pixmap.isNull() else pixmap.toImage()

    def show_live(self, frame: PreviewFrame, title: str = "") -> bool:
        """Shows a running sampler's preview when following; True when shown."""
        if not self.following:
            return False
        self._set_mode(LIVE)
        self.view.show_image(frame.image)
        step = f" · step {frame.step}/{frame.total}" if frame.step is not None else ""
        self.info.setText(f"Live{f' · {title}' if title else ''}{step}")
        return True

    def live_ended(self) -> None:
        """The run is over: live mode falls back to the outputs (set next by the window)."""
        if self.mode == LIVE:
            self._set_mode(IMAGES)

    def set_history(self, cursor: HistoryCursor | None, node_id: int = -1, title: str = "") -> None:
        """Offers the step history of the selected sampler (None: no sampler with one)."""
        old = self.history.cursor
        if old is not None:
            old.changed.disconnect(self._cursor_changed)
        self.history.bind(cursor, node_id)
        self._history_title = title
        if cursor is not None:
            cursor.changed.connect(self._cursor_changed)
            if self.mode == HISTORY:
                self._show_history()
        elif self.mode == HISTORY:
            self._set_mode(IMAGES)
            self._show_index(max(0, self.thumbs.currentRow()))

    def _cursor_changed(self) -> None:
        """The node's slider or this one moved: the viewer goes to the history."""
        if self.mode != LIVE:
            self._set_mode(HISTORY)
            self._show_history()

    def _history_requested(self, wanted: bool) -> None:
        if wanted and self.history.cursor is not None:
            self._set_mode(HISTORY)
            self._show_history()
        elif not wanted and self.mode == HISTORY:
            self._set_mode(IMAGES)
            self._show_index(max(0, self.thumbs.currentRow()))

    def _show_history(self) -> None:
        cursor = self.history.cursor
        if cursor is None:
            return
        self.view.show_image(cursor.picture())
        title = getattr(self, "_history_title", "")
        name = f"{title} · " if title else ""
        self.info.setText(f"{name}{cursor.which_label} · {cursor.label()}")

    def _set_mode(self, mode: str) -> None:
        self.mode = mode
        with QSignalBlocker(self.history.show_button):
            self.history.show_button.setChecked(mode == HISTORY)
        self.thumbs.setVisible(mode == IMAGES and len(self.images) > 1)

    def set_images(self, images: list[QImage], workflow: dict[str, Any] | None = None) -> None:
        """Shows ``images`` (the latest outputs); ``workflow`` is embedded when saving."""
        self.images = list(images)
        self.workflow = workflow
        self._set_mode(IMAGES)
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
