"""Pictures going into a graph: choosing a Load Image node's file, pasting a picture, dropping
one on a node, the picture shown on the node, and the Mask Editor's entry points.

- A click on a Load Image (or Load Mask) node's ``image`` field opens a file chooser; the
  node's context menu has "Choose Image…" and "Open in Mask Editor…", and a double-click on
  the picture shown on the node opens the Mask Editor too.
- Ctrl+V with a picture on the clipboard (and no copied nodes) saves it as a PNG in the
  workflow's input folder and adds a Load Image node naming that file: the workflow holds a
  path, never the picture's bytes.
- A picture dropped on a Load Image node replaces its picture (and drops a mask painted for
  the old one); dropped elsewhere it adds a node (``nodeui.drops``).
- Each Load Image node shows its picture with the painted mask over it.

**The input folder** of a saved workflow is the ``input`` folder beside its file (where the
opener also looks for the pictures a workflow names relative to itself); an unsaved workflow's
is ``input`` beside the output folder (``./input`` by default), as ComfyUI keeps them.
Files are written only through ``core.files``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from PySide6.QtCore import QBuffer, QEvent, QIODevice, QObject, QPointF, Qt
from PySide6.QtGui import (
    QContextMenuEvent,
    QGuiApplication,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
)
from PySide6.QtWidgets import (
    QFileDialog,
    QFormLayout,
    QGraphicsProxyWidget,
    QHBoxLayout,
    QMenu,
    QPushButton,
    QWidget,
)

from core.files import OutputPathError, OutputWriteError, write_new_output
from core.graph import changes
from core.graph.commands import Macro, SetParam
from nodeui.mask_canvas import overlay_image
from nodeui.mask_editor import MASKABLE, MaskEditor, MaskEditorError, initial_mask, open_mask_editor

if TYPE_CHECKING:
    from core.graph.spec import NodeRegistry
    from nodeui.canvas.scene import GraphScene
    from nodeui.canvas.view import GraphView
    from nodeui.documents import Document
    from nodeui.panels.inspector import Inspector
    from nodeui.runs import RunController

#: What the file chooser offers.
IMAGE_FILTER = "Pictures (*.png *.jpg *.jpeg *.webp *.bmp *.tif *.tiff *.gif);;All files (*)"
#: Longest side of the picture shown on a node, in pixels.
THUMBNAIL_SIZE = 256
PASTED_NAME = "pasted"


def input_folder(workflow_path: Path | None, output_dir: Path) -> Path:
    """Where pictures brought into this workflow are kept (see the module's docstring)."""
    if workflow_path is not None:
        return Path(workflow_path).parent / "input"
    return Path(output_dir).parent / "input"


def save_picture(folder: Path, image: QImage, name: str = PASTED_NAME) -> Path:
    """Writes ``image`` as a new PNG ``NAME_00001.png``… in ``folder`` (never replacing a file)."""
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if not image.save(buffer, "PNG"):
        raise OutputWriteError("the picture could not be encoded as PNG")
    return write_new_output(folder, name, ".png", bytes(buffer.data()))


def thumbnail(type_id: str, params: dict[str, Any]) -> QImage | None:
    """The node's picture, scaled down, with its mask over it; None without a readable file."""
    path = Path(str(params.get("image", ""))).expanduser()
    if not str(params.get("image", "")).strip() or not path.is_file():
        return None
    picture = QImage(str(path))
    if picture.isNull():
        return None
    picture = picture.convertToFormat(QImage.Format.Format_RGB32)
    mask = initial_mask(type_id, params, picture) if type_id == "LoadImage" else None
    if mask is not None and mask.any():
        painter = QPainter(picture)
        painter.drawImage(0, 0, overlay_image(mask))
        painter.end()
    if max(picture.width(), picture.height()) > THUMBNAIL_SIZE:
        picture = picture.scaled(
            THUMBNAIL_SIZE,
            THUMBNAIL_SIZE,
            Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation,
        )
    return picture


def replace_command(type_id: str, node_id: int, params: dict[str, Any], path: Path) -> Macro:
    """Sets the node's picture to ``path`` as one undo step; a mask painted for the old
    picture no longer fits, so it goes in the same step."""
    edits = [SetParam(node_id, "image", str(path))]
    if type_id == "LoadImage" and str(params.get("mask", "")).strip():
        edits.append(SetParam(node_id, "mask", ""))
    return Macro("Choose Image", edits)


class PictureWindow(Protocol):
    """What the picture handling uses of the main window (a ``MainWindow``, which creates it:
    a protocol, so the import goes from the window to this module only)."""

    document: Document
    runs: RunController
    scene: GraphScene
    view: GraphView
    registry: NodeRegistry
    inspector: Inspector

    def show_status(self, message: str, timeout_ms: int = 6000) -> None: ...

    def add_node(
        self, type_id: str, at: QPointF | None, params: dict[str, Any] | None = None
    ) -> int | None: ...


class ImageInputs(QObject):
    """The window's picture handling; ``follow(scene)`` each time the canvas shows a graph."""

    def __init__(self, window: PictureWindow) -> None:
        super().__init__(window)  # a MainWindow, so a QObject: it owns this one
        self.window = window
        self.scene: GraphScene | None = None
        self._unsubscribe: Callable[[], None] | None = None
        #: The open Mask Editor, if any (tests and screenshots reach it here).
        self.editor: MaskEditor | None = None
        window.view.viewport().installEventFilter(self)
        # The canvas handles Ctrl+V itself while it has the focus, before any menu shortcut.
        window.view.installEventFilter(self)
        window.inspector.extra_rows.append(self._inspector_row)

    # --- following the canvas ------------------------------------------------------------------

    def follow(self, scene: GraphScene) -> None:
        """Shows pictures on the image nodes of ``scene`` and keeps them current."""
        if self._unsubscribe is not None:
            self._unsubscribe()
        self.scene = scene
        self._unsubscribe = scene.graph.subscribe(self._on_change)
        scene.destroyed.connect(lambda *_: self._forget(scene))
        for node in list(scene.graph):
            if node.type_id in MASKABLE:
                self.refresh(node.id)

    def _forget(self, scene: object) -> None:
        if scene is self.scene:
            self.scene, self._unsubscribe = None, None

    def _on_change(self, change: changes.GraphChange) -> None:
        if isinstance(change, (changes.NodeAdded, changes.ParamChanged)):
            self.refresh(change.node_id)

    def refresh(self, node_id: int) -> None:
        scene = self.scene
        if scene is None or node_id not in scene.graph.nodes:
            return
        node = scene.graph.node(node_id)
        if node.type_id in MASKABLE:
            image = thumbnail(node.type_id, dict(node.params))
            scene.set_node_images(node_id, [image] if image is not None else [])

    def _inspector_row(self, form: QFormLayout, node_id: int) -> None:
        """Under an image node's fields in the inspector: choose the picture, paint the mask."""
        scene = self.window.scene
        if node_id not in scene.graph.nodes or scene.graph.node(node_id).type_id not in MASKABLE:
            return
        row = QWidget()
        row.setObjectName("pictureButtons")
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        for text, slot in (
            ("Choose Image…", self.choose_image),
            ("Open in Mask Editor…", self.open_mask_editor),
        ):
            button = QPushButton(text)
            button.clicked.connect(lambda _checked=False, act=slot: act(node_id))
            layout.addWidget(button)
        form.addRow("picture", row)

    # --- actions -------------------------------------------------------------------------------

    def folder(self) -> Path:
        return input_folder(self.window.document.path, self.window.runs.output_dir)

    def choose_image(self, node_id: int) -> Path | None:
        """Asks for a picture file for the node; one undo step when one is chosen."""
        scene = self.window.scene
        node = scene.graph.node(node_id)
        current = Path(str(node.params.get("image", ""))).expanduser()
        start = str(current.parent if str(current).strip() and current.parent.is_dir() else "")
        chosen, _ = QFileDialog.getOpenFileName(
            self.window, "Choose a picture", start or str(self.folder()), IMAGE_FILTER
        )
        if not chosen:
            return None
        path = Path(chosen)
        scene.push(replace_command(node.type_id, node_id, dict(node.params), path))
        return path

    def open_mask_editor(self, node_id: int) -> MaskEditor | None:
        try:
            self.editor = open_mask_editor(self.window.scene, node_id, self.window)
        except MaskEditorError as exc:
            self.window.show_status(str(exc))
            return None
        return self.editor

    def replace_image_at(self, path: Path, scene_pos: QPointF) -> bool:
        """A picture dropped at ``scene_pos``: replaces the picture of the image node there."""
        from nodeui.canvas.items.node import NodeItem

        scene = self.window.scene
        item = scene.item_at(scene_pos)
        if not isinstance(item, NodeItem):
            return False
        node = scene.graph.node(item.node_id)
        if node.type_id not in MASKABLE:
            return False
        scene.push(replace_command(node.type_id, node.id, dict(node.params), path))
        return True

    def clipboard_has_picture(self) -> bool:
        """A picture is on the clipboard, and no copied nodes (those paste as nodes)."""
        from nodeui.canvas.clipboard import fragment_from_clipboard

        mime = QGuiApplication.clipboard().mimeData()
        return (
            mime is not None
            and mime.hasImage()
            and fragment_from_clipboard(self.window.registry) is None
        )

    def paste_or(self, paste_nodes: Callable[[], object]) -> object:
        """Ctrl+V: copied nodes paste as nodes; else a picture becomes a Load Image node."""
        return self.paste_image() if self.clipboard_has_picture() else paste_nodes()

    def paste_image(self) -> int | None:
        """Saves the clipboard's picture in the input folder and adds a Load Image node."""
        image = QGuiApplication.clipboard().image()
        if image.isNull():
            self.window.show_status("The clipboard holds no picture")
            return None
        try:
            path = save_picture(self.folder(), image)
        except (OutputPathError, OutputWriteError) as exc:
            self.window.show_status(f"Cannot save the pasted picture: {exc}")
            return None
        view = self.window.view
        at = view.cursor_scene_pos() if view.underMouse() else None
        node_id = self.window.add_node("LoadImage", at, {"image": str(path)})
        if node_id is not None:
            self.window.show_status(f"Pasted picture saved as {path}")
        return node_id

    # --- canvas events -------------------------------------------------------------------------

    def _image_node_at(self, local_pos: QPointF) -> tuple[Any, str] | None:
        """The image node under a viewport point, and what of it is there (``Hit.kind``,
        ``editor:NAME`` for a field)."""
        from nodeui.canvas.items.node import NodeItem

        scene = self.window.scene
        scene_pos = self.window.view.mapToScene(local_pos.toPoint())
        item = scene.item_at(scene_pos)
        if not isinstance(item, NodeItem) or scene.graph.node(item.node_id).type_id not in MASKABLE:
            return None
        hit = item.hit(item.mapFromScene(scene_pos))
        return item, f"{hit.kind}:{hit.name}" if hit.kind == "editor" else hit.kind

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if watched is self.window.view:
            if (
                kind == QEvent.Type.KeyPress
                and isinstance(event, QKeyEvent)
                and event.key() == Qt.Key.Key_V
                and event.modifiers() == Qt.KeyboardModifier.ControlModifier
                and not isinstance(self.window.scene.focusItem(), QGraphicsProxyWidget)
                and self.clipboard_has_picture()
            ):
                self.paste_image()
                return True
            return False
        if kind == QEvent.Type.MouseButtonPress and isinstance(event, QMouseEvent):
            if event.button() != Qt.MouseButton.LeftButton or event.modifiers():
                return False
            found = self._image_node_at(event.position())
            if found is not None and found[1] == "editor:image":
                # The picture field is a file chooser, as ComfyUI's upload button is; a path
                # can still be typed in the inspector.
                self.window.scene.select_nodes([found[0].node_id])
                self.choose_image(found[0].node_id)
                return True
        elif kind == QEvent.Type.MouseButtonDblClick and isinstance(event, QMouseEvent):
            if event.button() != Qt.MouseButton.LeftButton:
                return False
            found = self._image_node_at(event.position())
            if found is None or found[0].layout.media_rect is None:
                return False
            item = found[0]
            local = item.mapFromScene(self.window.view.mapToScene(event.position().toPoint()))
            if item.layout.media_rect.contains(local):
                # A double-click on the picture paints its mask, the picture's own edit.
                self.open_mask_editor(item.node_id)
                return True
        elif kind == QEvent.Type.ContextMenu and isinstance(event, QContextMenuEvent):
            found = self._image_node_at(QPointF(event.pos()))
            if found is not None:
                self.show_menu(found[0].node_id, event)
                return True
        return False

    def show_menu(self, node_id: int, event: QContextMenuEvent) -> QMenu:
        """The node's usual menu with the picture's entries on top."""
        from nodeui.canvas import menus

        scene = self.window.scene
        scene_pos = self.window.view.mapToScene(event.pos())
        menu = menus.build_menu(scene, scene_pos)
        first = menu.actions()[0] if menu.actions() else None
        mask = menu.addAction("Open in Mask Editor…")
        mask.triggered.connect(lambda: self.open_mask_editor(node_id))
        choose = menu.addAction("Choose Image…")
        choose.triggered.connect(lambda: self.choose_image(node_id))
        if first is not None:
            menu.insertAction(first, mask)
            menu.insertAction(first, choose)
            menu.insertSeparator(first)
        scene.open_menu = menu
        menu.popup(event.globalPos())
        return menu
