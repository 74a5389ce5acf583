"""File commands of the window: New, Open, Save, Save As, Export PNG, recovery, and the
unsaved-changes prompt. A file that cannot be opened shows one error and changes nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from core.files import atomic_write
from core.graph.spec import NodeRegistry
from core.graph.workflow import WorkflowError
from nodeui.documents import Document, RecoveryStore, new_document
from nodeui.settings import RecentFiles

OPEN_FILTER = (
    "Workflows and images (*.json *.png *.webp *.jpg *.jpeg);;Workflows (*.json);;"
    "Images (*.png *.webp *.jpg *.jpeg)"
)
SAVE_FILTER = "Workflows (*.json)"
COMFY_API_FILTER = "ComfyUI API workflows (*.json)"


class DocumentHost(Protocol):
    """What the file commands need from the window."""

    registry: NodeRegistry
    document: Document

    def set_document(self, document: Document) -> None: ...

    def view_state(self) -> dict: ...


class FileController(QObject):
    """Runs the file commands against a ``DocumentHost`` (the main window)."""

    statusMessage = Signal(str)

    def __init__(
        self,
        host: DocumentHost,
        parent_widget: QWidget,
        recent: RecentFiles,
        recovery: RecoveryStore,
        template: Callable[[], Path | None] = lambda: None,
    ) -> None:
        super().__init__(parent_widget)
        self.host = host
        self.widget = parent_widget
        self.recent = recent
        self.recovery = recovery
        self._template = template
        self.import_box: QMessageBox | None = None

    # --- prompts ---------------------------------------------------------------------------

    def maybe_save(self) -> bool:
        """Asks about unsaved changes; False when the user cancels what they were doing."""
        document = self.host.document
        if not document.dirty:
            return True
        answer = QMessageBox.question(
            self.widget,
            "Unsaved changes",
            f"Save the changes to {document.title} first?",
            QMessageBox.StandardButton.Save
            | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Save,
        )
        if answer == QMessageBox.StandardButton.Save:
            return self.save()
        return answer == QMessageBox.StandardButton.Discard

    def _error(self, title: str, message: str) -> None:
        QMessageBox.critical(self.widget, title, message)

    # --- commands --------------------------------------------------------------------------

    def new(self) -> bool:
        if not self.maybe_save():
            return False
        self.host.set_document(Document(new_document(self.host.registry).graph))
        return True

    def open(self, path: Path | None = None, *, ask: bool = True) -> bool:
        """Opens a workflow or PNG (asks which when ``path`` is None)."""
        if path is None:
            chosen, _ = QFileDialog.getOpenFileName(self.widget, "Open", "", OPEN_FILTER)
            if not chosen:
                return False
            path = Path(chosen)
        try:
            document = Document.open(Path(path), self.host.registry)
        except WorkflowError as exc:
            self._error("Cannot open the file", str(exc))
            return False
        if ask and not self.maybe_save():
            return False
        self.host.set_document(document)
        self.recent.add(Path(path))
        self._report_import(document, Path(path))
        return True

    def _report_import(self, document: Document, path: Path) -> None:
        """An import from another tool says what it carried over, and what it could not."""
        report = document.import_report
        if report is None or (report.source_format == "latentloom" and not report.warnings):
            self.statusMessage.emit(f"Opened {path}")
            return
        self.statusMessage.emit(f"Opened {path} ({report.label})")
        if report.warnings or report.unknown:
            box = QMessageBox(
                QMessageBox.Icon.Information,
                "Imported with changes",
                f"{path.name} was imported from {report.label}; some of it could not be "
                "carried over.",
                QMessageBox.StandardButton.Ok,
                self.widget,
            )
            box.setDetailedText(report.summary())
            box.setWindowModality(Qt.WindowModality.NonModal)
            box.show()
            self.import_box = box

    def save(self) -> bool:
        document = self.host.document
        if document.path is None:
            return self.save_as()
        return self._write(document.path)

    def save_as(self, path: Path | None = None) -> bool:
        if path is None:
            document = self.host.document
            start = str(document.path or (document.template or Path("untitled.json")).name)
            chosen, _ = QFileDialog.getSaveFileName(self.widget, "Save As", start, SAVE_FILTER)
            if not chosen:
                return False
            path = Path(chosen)
            if path.suffix.lower() != ".json":
                path = path.with_suffix(".json")
        return self._write(Path(path))

    def _write(self, path: Path) -> bool:
        try:
            self.host.document.save(path, self.host.view_state())
        except OSError as exc:
            self._error("Cannot save", f"{path}: {exc.strerror or exc}")
            return False
        self.recent.add(path)
        self.recovery.discard()
        self.statusMessage.emit(f"Saved {path}")
        return True

    def export_comfy_api(self, path: Path | None = None) -> Path | None:
        """Writes the graph in ComfyUI's API format (asks where when ``path`` is None); a graph
        with nodes ComfyUI lacks is refused with their names, before anything is asked."""
        from nodes.interop import ComfyExportError, to_comfy_api

        try:
            prompt = to_comfy_api(self.host.document.graph)
        except ComfyExportError as exc:
            self._error("Cannot export to ComfyUI", str(exc))
            return None
        if path is None:
            current = self.host.document.path
            start = f"{current.stem if current else 'untitled'}_api.json"
            chosen, _ = QFileDialog.getSaveFileName(
                self.widget, "Export to ComfyUI (API format)", start, COMFY_API_FILTER
            )
            if not chosen:
                return None
            path = Path(chosen)
            if path.suffix.lower() != ".json":
                path = path.with_suffix(".json")
        try:
            atomic_write(path, (json.dumps(prompt, indent=2) + "\n").encode("utf-8"))
        except OSError as exc:
            self._error("Cannot export", f"{path}: {exc.strerror or exc}")
            return None
        self.statusMessage.emit(f"Exported {path} in ComfyUI's API format")
        return Path(path)

    # --- recovery --------------------------------------------------------------------------

    def offer_recovery(self, open_more: Callable[[Document], object]) -> list[Document]:
        """At startup: offers back, one by one, every recovery file that a window which did not
        close cleanly left behind (newest first; never a file of a window still open). The first
        graph taken back is shown in this window, each further one goes to ``open_more`` (a new
        window). An offered file is deleted once answered, after a taken-back graph is in its new
        window's own recovery file. Returns the documents taken back."""
        recovered: list[Document] = []
        for left in self.recovery.left_behind():
            document = self._offer(left)
            if document is not None:
                if recovered:
                    open_more(document)
                else:
                    self.host.set_document(document)
                    try:
                        self.recovery.write(document)
                    except OSError as exc:
                        self.statusMessage.emit(f"autosave failed: {exc}")
                        recovered.append(document)
                        continue  # keep the file left behind: it is the only copy on disk
                recovered.append(document)
            left.discard()
        if recovered:
            what = f"{len(recovered)} autosaved graphs" if len(recovered) > 1 else "the graph"
            self.statusMessage.emit(f"Recovered {what}; save to keep the changes")
        return recovered

    def _offer(self, left: RecoveryStore) -> Document | None:
        """Asks about one recovery file; the recovered document, or None (declined, unusable,
        or older than the file it copies)."""
        if not left.pending():
            return None
        try:
            recovery = left.read(self.host.registry)
        except (OSError, WorkflowError) as exc:
            self.statusMessage.emit(f"The recovery file could not be read: {exc}")
            return None
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(recovery.saved_at))
        name = recovery.source.name if recovery.source else "an untitled graph"
        answer = QMessageBox.question(
            self.widget,
            "Recover unsaved work?",
            f"LatentLoom did not close cleanly. Restore the unsaved changes to {name} "
            f"(autosaved {when})?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.Yes,
        )
        if answer != QMessageBox.StandardButton.Yes:
            return None
        document = Document.from_workflow(recovery.workflow, recovery.source)
        document.recovered = True
        return document
