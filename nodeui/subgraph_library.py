"""The subgraph sections of the node library and the user's library of saved subgraphs.

The library panel lists the workflow's definitions (dragging one out adds an instance, like any
node) and the definitions saved in the user's library folder (``subgraphs`` in the per-user
data folder, which ``$LATENTLOOM_DATA_DIR`` moves). Adding a saved one copies its definition,
nested ones included, into the workflow and adds an instance: one undo step. "Save to Library"
in an instance's menu writes its definition there, one JSON file per definition.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QObject, QPointF
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent

from core.graph import subgraph_transfer as transfer
from core.graph.workflow import WorkflowError
from nodeui.documents import default_data_dir
from nodeui.panels.library import SUBGRAPH_FILE_MIME
from nodeui.undo import push

#: The folder of saved subgraphs, inside the per-user data folder.
LIBRARY_FOLDER = "subgraphs"


def default_library_dir() -> Path:
    return default_data_dir() / LIBRARY_FOLDER


class SubgraphShelf(QObject):
    """Keeps the library panel's subgraph sections current and adds and saves subgraphs."""

    def __init__(self, window: Any, folder: Path | None = None) -> None:
        super().__init__(window)
        self.window = window
        self.folder = folder or default_library_dir()
        self._unsubscribe: Callable[[], None] | None = None
        self._listed: list[tuple[str, str, str]] | None = None
        self._saved: list[tuple[str, str, str]] = []
        window.library.addSavedSubgraphRequested.connect(lambda path: self.add_saved(path))
        window.view.viewport().installEventFilter(self)

    # --- what the panel lists --------------------------------------------------------------

    def follow(self, graph: Any) -> None:
        """A new document: list its definitions from now on, and re-read the saved ones."""
        if self._unsubscribe is not None:
            self._unsubscribe()
        self._unsubscribe = graph.subgraphs.subscribe(lambda _def_id: self._refresh_workflow())
        self._listed = None
        self.reload_saved()

    def reload_saved(self) -> None:
        saved = transfer.list_library(self.folder, self.window.registry)
        self._saved = [(str(s.path), s.name, s.description) for s in saved]
        self._listed = None
        self._refresh_workflow()

    def _refresh_workflow(self) -> None:
        library = self.window.document.graph.subgraphs
        listed = [
            (d.id, d.name, d.description)
            for d in sorted(library, key=lambda d: (d.name.lower(), d.id))
        ]
        if listed != self._listed:  # inner edits change no entry: the tree stays as it is
            self._listed = listed
            self.window.library.set_subgraphs(listed, self._saved)

    # --- saving and adding -----------------------------------------------------------------

    def save(self, def_id: str) -> Path | None:
        """Saves definition ``def_id`` of the document to the library folder."""
        graph = self.window.document.graph
        name = graph.subgraphs.get(def_id).name
        try:
            path = transfer.save_to_library(graph, def_id, self.folder)
        except OSError as exc:
            self.window.show_status(f"Could not save subgraph {name!r} to {self.folder}: {exc}")
            return None
        self.reload_saved()
        self.window.show_status(f"Saved subgraph {name!r} to the library ({path})")
        return path

    def add_saved(self, path: str | Path, at: QPointF | None = None) -> int | None:
        """Adds an instance of a saved subgraph at ``at`` (else the view centre): its
        definitions are copied into the workflow first, in the same undo step."""
        window = self.window
        window.commit_pending_edits()
        try:
            saved = transfer.read_library_file(path, window.registry)
        except WorkflowError as exc:
            window.show_status(str(exc))
            return None
        pos = at if at is not None else window._centre()
        command = saved.add_instance((pos.x(), pos.y()))
        error = push(window.document.undo_stack, window.scene.graph, command)
        if error:
            window.show_status(error)
            return None
        node_id = command.commands[-1].node_id
        window.scene.select_nodes([node_id])
        return node_id

    # --- drops of saved subgraphs on the canvas --------------------------------------------

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if isinstance(event, (QDragEnterEvent, QDragMoveEvent, QDropEvent)):
            mime = event.mimeData()
            if mime is not None and mime.hasFormat(SUBGRAPH_FILE_MIME):
                if event.type() == QEvent.Type.Drop:
                    path = bytes(mime.data(SUBGRAPH_FILE_MIME).data()).decode("utf-8")
                    view = self.window.view
                    self.add_saved(path, view.mapToScene(event.position().toPoint()))
                event.acceptProposedAction()
                return True
        return super().eventFilter(watched, event)
