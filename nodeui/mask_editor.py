"""The Mask Editor: paint which part of a Load Image (or Load Mask) picture to repaint.

Opened from the node's context menu ("Open in Mask Editor") or the inspector's button, as in
ComfyUI. Brush and eraser with size and hardness, the editor's own undo and redo (Ctrl+Z,
Ctrl+Shift+Z), invert, clear, fill, and a feather radius whose effect the overlay previews.

Where the mask goes: a separate grayscale PNG beside the picture, ``NAME.mask.png`` (white =
repaint), never the picture itself, so the original stays untouched. Each OK writes a new file
(``NAME.mask_00001.png``… once that name is taken) through ``core.files``, and sets the node's
``mask`` field to it as one undo step: undoing the edit finds the earlier mask file unchanged.
A Load Mask node gets the painted file as its ``image`` with the ``red`` channel.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QKeyEvent, QKeySequence
from PySide6.QtWidgets import (
    QButtonGroup,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from core.files import OutputPathError, OutputWriteError, write_new_output
from core.graph.commands import Macro, SetParam
from nodeui.mask_canvas import BRUSH, ERASER, MaskCanvas

if TYPE_CHECKING:
    from nodeui.canvas.scene import GraphScene

#: The node types the editor paints for, and the param naming each one's picture.
MASKABLE = ("LoadImage", "LoadImageMask")
MASK_SUFFIX = ".mask"
#: The chosen tool must be told apart at a glance, whatever the theme does with checked buttons.
_TOOL_STYLE = (
    "QToolButton { padding: 3px 10px; border: 1px solid #4a4d52; border-radius: 4px; }"
    "QToolButton:checked { background: #3d6ea8; border-color: #6aa5e0; color: white; }"
)


class MaskEditorError(ValueError):
    """The node's picture cannot be edited (no file, unreadable); the message says what to do."""


def read_picture(path: Path) -> QImage:
    """The picture as a Qt image, or ``MaskEditorError`` naming the file."""
    if not str(path).strip() or not path.is_file():
        raise MaskEditorError(f"picture {path} does not exist: choose a picture for the node first")
    image = QImage(str(path))
    if image.isNull():
        raise MaskEditorError(f"{path} is not a picture the editor can read: choose another")
    return image.convertToFormat(QImage.Format.Format_RGB32)


def _channel(path: Path, channel: str, size: tuple[int, int]) -> np.ndarray | None:
    """One channel of a file as a mask (alpha inverted), or None if it cannot be read or its
    size differs from the picture's."""
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as opened:
            rgba = ImageOps.exif_transpose(opened).convert("RGBA")
    except OSError:
        return None
    if rgba.size != size:
        return None
    values = np.asarray(rgba, dtype=np.float32)[..., "rgba".index(channel[0])] / 255.0
    return 1.0 - values if channel == "alpha" else values


def initial_mask(type_id: str, params: dict, picture: QImage) -> np.ndarray | None:
    """The mask the node gives today, to start painting from (None: empty)."""
    size = (picture.width(), picture.height())
    image = Path(str(params.get("image", ""))).expanduser()
    if type_id == "LoadImageMask":
        return _channel(image, str(params.get("channel", "alpha")), size)
    painted = str(params.get("mask", "")).strip()
    if painted:
        found = _channel(Path(painted).expanduser(), "red", size)
        if found is not None:
            return found
    return (
        _channel(image, "alpha", size) if picture.hasAlphaChannel() or _has_alpha(image) else None
    )


def _has_alpha(path: Path) -> bool:
    from PIL import Image

    try:
        with Image.open(path) as opened:
            return "A" in opened.getbands() or "transparency" in opened.info
    except OSError:
        return False


def mask_png(mask: np.ndarray) -> bytes:
    """The mask as an 8-bit grayscale PNG (white = repaint)."""
    from PIL import Image

    values = np.round(np.clip(mask, 0.0, 1.0) * 255.0).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(values, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def mask_stem(picture: Path) -> str:
    """``NAME.mask`` for a picture ``NAME.png``; a mask file's own stem is kept as it is, so
    repainting a mask never makes ``NAME.mask.mask``."""
    stem = picture.stem
    base, dot, tail = stem.rpartition(MASK_SUFFIX)
    if dot and base and (not tail or (tail.startswith("_") and tail[1:].isdigit())):
        return base + MASK_SUFFIX
    return stem + MASK_SUFFIX


def save_mask(picture: Path, mask: np.ndarray) -> Path:
    """Writes ``mask`` as a new file beside ``picture`` and returns its path; raises
    ``MaskEditorError`` when the folder refuses it."""
    try:
        return write_new_output(
            picture.parent, mask_stem(picture), ".png", mask_png(mask), plain_first=True
        )
    except (OutputPathError, OutputWriteError) as exc:
        raise MaskEditorError(f"cannot save the mask beside {picture}: {exc}") from None


def mask_command(type_id: str, node_id: int, path: Path) -> Macro:
    """The graph edit that makes the node use the mask in ``path``: one undo step."""
    if type_id == "LoadImageMask":
        changes = [SetParam(node_id, "image", str(path)), SetParam(node_id, "channel", "red")]
    else:
        changes = [SetParam(node_id, "mask", str(path))]
    return Macro("Edit Mask", changes)


class MaskEditor(QDialog):
    """The editor window for one picture; ``result_mask()`` once accepted."""

    def __init__(
        self,
        picture: QImage,
        mask: np.ndarray | None = None,
        title: str = "Mask Editor",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.canvas = MaskCanvas(picture, mask, self)

        self.brush = self._tool_button("Brush", "B", BRUSH)
        self.eraser = self._tool_button("Eraser", "E", ERASER)
        self.brush.setChecked(True)
        tools = QButtonGroup(self)
        tools.setExclusive(True)
        for button in (self.brush, self.eraser):
            tools.addButton(button)

        self.size = QSpinBox()
        self.size.setRange(1, max(512, max(picture.width(), picture.height())))
        self.size.setValue(int(self.canvas.size))
        self.size.setSuffix(" px")
        self.size.setToolTip("Brush size: the disc's diameter in picture pixels")
        self.size.valueChanged.connect(lambda value: setattr(self.canvas, "size", float(value)))
        self.hardness = QSlider(Qt.Orientation.Horizontal)
        self.hardness.setRange(0, 100)
        self.hardness.setValue(round(self.canvas.hardness * 100))
        self.hardness.setFixedWidth(90)
        self.hardness.setToolTip("Hardness: 100 % a sharp edge, 0 % soft all the way in")
        self.hardness.valueChanged.connect(
            lambda value: setattr(self.canvas, "hardness", value / 100.0)
        )
        self.feather = QSpinBox()
        self.feather.setRange(0, 64)
        self.feather.setSuffix(" px")
        self.feather.setToolTip("Feather: softens the saved mask's edge; the overlay shows it")
        self.feather.valueChanged.connect(self.canvas.set_feather)

        self.undo_button = self._action("Undo", self.canvas.undo, "Undo the last stroke (Ctrl+Z)")
        self.redo_button = self._action("Redo", self.canvas.redo, "Redo (Ctrl+Shift+Z)")
        self.invert_button = self._action("Invert", lambda: self.canvas.edit("invert"))
        self.clear_button = self._action("Clear", lambda: self.canvas.edit("clear"))
        self.fill_button = self._action("Fill", lambda: self.canvas.edit("fill"))

        bar = QHBoxLayout()
        for widget in (
            self.brush,
            self.eraser,
            QLabel("Size"),
            self.size,
            QLabel("Hardness"),
            self.hardness,
            QLabel("Feather"),
            self.feather,
        ):
            bar.addWidget(widget)
        bar.addStretch(1)
        for button in (
            self.undo_button,
            self.redo_button,
            self.invert_button,
            self.clear_button,
            self.fill_button,
        ):
            bar.addWidget(button)

        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        hint = QLabel("Left button paints with the tool, right button erases. White = repaint.")
        hint.setStyleSheet("color: #9aa0a6")
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.canvas, 1)
        bottom = QHBoxLayout()
        bottom.addWidget(hint, 1)
        bottom.addWidget(self.buttons)
        layout.addLayout(bottom)

        self.canvas.maskChanged.connect(self._update_buttons)
        self._update_buttons()
        self.resize(760, 700)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """Ctrl+Z and Ctrl+Shift+Z (or Ctrl+Y) undo and redo strokes here, not in the graph:
        the editor is a window of its own, so its keys never reach the main window's stack."""
        if event.matches(QKeySequence.StandardKey.Undo):
            self.canvas.undo()
        elif event.matches(QKeySequence.StandardKey.Redo) or (
            event.key() == Qt.Key.Key_Y and event.modifiers() == Qt.KeyboardModifier.ControlModifier
        ):
            self.canvas.redo()
        else:
            super().keyPressEvent(event)
            return
        event.accept()

    def _tool_button(self, text: str, key: str, tool: str) -> QToolButton:
        button = QToolButton()
        button.setText(text)
        button.setCheckable(True)
        button.setShortcut(QKeySequence(key))
        button.setToolTip(f"{text} ({key})")
        button.setStyleSheet(_TOOL_STYLE)
        button.toggled.connect(lambda on: setattr(self.canvas, "tool", tool) if on else None)
        return button

    def _action(self, text: str, slot: Callable[[], object], tip: str = "") -> QPushButton:
        button = QPushButton(text)
        button.setAutoDefault(False)
        button.setToolTip(tip or text)
        button.clicked.connect(slot)
        return button

    def _update_buttons(self) -> None:
        self.undo_button.setEnabled(self.canvas.can_undo())
        self.redo_button.setEnabled(self.canvas.can_redo())

    def result_mask(self) -> np.ndarray:
        """The painted mask, feathered as the overlay shows it, 0..1 at the picture's size."""
        return self.canvas.shown_mask()


def open_mask_editor(scene: GraphScene, node_id: int, parent: QWidget | None = None) -> MaskEditor:
    """Opens the editor on a Load Image or Load Mask node (window-modal; returns at once).

    OK saves the mask and sets the node to it as one undo step; a refusal (the picture is
    missing, the folder is read-only) goes to the status bar. Raises ``MaskEditorError`` when
    the node's picture cannot be opened.
    """
    node = scene.graph.node(node_id)
    if node.type_id not in MASKABLE:
        raise MaskEditorError(f"node {node_id} ({node.type_id}) has no picture to paint on")
    picture_path = Path(str(node.params.get("image", ""))).expanduser()
    picture = read_picture(picture_path)
    mask = initial_mask(node.type_id, dict(node.params), picture)
    title = f"Mask Editor — {picture_path.name}"
    editor = MaskEditor(picture, mask, title, parent)

    def apply() -> None:
        try:
            path = save_mask(picture_path, editor.result_mask())
        except MaskEditorError as exc:
            scene.refuse(str(exc))
            return
        if node_id in scene.graph.nodes and scene.push(mask_command(node.type_id, node_id, path)):
            scene.statusMessage.emit(f"Mask saved as {path.name}")

    editor.accepted.connect(apply)
    editor.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    editor.open()
    return editor
