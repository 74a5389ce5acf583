"""Drag and drop of files onto the window or the canvas: workflow files (and PNGs carrying
one) open; a picture dropped on a Load Image node replaces that node's picture; other image
files become Load Image nodes where they are dropped. Node types dragged from the library are
the canvas view's own business (``NODE_MIME``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QPointF
from PySide6.QtGui import QDragEnterEvent, QDropEvent

from nodeui.documents import classify_drop
from nodeui.panels.library import NODE_MIME


class DropHandler(QObject):
    """An event filter for the window and the canvas viewport.

    ``scene_pos(watched, event)`` maps a drop to scene coordinates (None: the view centre);
    ``replace_image(path, scene_pos)`` gives the picture to the image node there, if there is
    one, and says whether it did.
    """

    def __init__(
        self,
        open_workflow: Callable[[Path], object],
        add_image: Callable[[Path, QPointF | None], object],
        scene_pos: Callable[[QObject, QDropEvent], QPointF | None],
        parent: QObject | None = None,
        replace_image: Callable[[Path, QPointF], bool] | None = None,
    ) -> None:
        super().__init__(parent)
        self._replace_image = replace_image
        self._open_workflow = open_workflow
        self._add_image = add_image
        self._scene_pos = scene_pos

    @staticmethod
    def accepts(event: QDragEnterEvent | QDropEvent) -> bool:
        mime = event.mimeData()
        return not mime.hasFormat(NODE_MIME) and any(url.isLocalFile() for url in mime.urls())

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind in (QEvent.Type.DragEnter, QEvent.Type.DragMove):
            if self.accepts(event):  # type: ignore[arg-type]
                event.acceptProposedAction()  # type: ignore[attr-defined]
                return True
            return False
        if kind == QEvent.Type.Drop and self.accepts(event):  # type: ignore[arg-type]
            self.drop(watched, event)  # type: ignore[arg-type]
            return True
        return False

    def drop(self, watched: QObject, event: QDropEvent) -> None:
        """Handles one drop of files: the first workflow opens, else the first picture goes to
        the image node under the drop, if any, and the others are added as nodes."""
        event.acceptProposedAction()
        pos = self._scene_pos(watched, event)
        paths = [Path(url.toLocalFile()) for url in event.mimeData().urls() if url.isLocalFile()]
        for path in paths:
            kind = classify_drop(path)
            if kind in ("workflow", "unknown"):  # unknown: the open error says why
                self._open_workflow(path)
                return  # one workflow replaces the document; the rest would be lost anyway
        images = [path for path in paths if classify_drop(path) == "image"]
        replace = self._replace_image
        if images and pos is not None and replace is not None and replace(images[0], pos):
            images = images[1:]  # one node holds one picture; the rest become new nodes
        offset = 0.0
        for path in images:
            at = None if pos is None else QPointF(pos.x() + offset, pos.y() + offset)
            self._add_image(path, at)
            offset += 30.0
