"""Documents: one open graph with its undo stack and file, plus autosave and crash recovery.

A ``Document`` is the unit the window swaps on New/Open. Each window has its own
``RecoveryStore``: a recovery file with a name of its own in a per-user data folder
(``QStandardPaths``; ``$LATENTLOOM_DATA_DIR`` or a constructor argument override it for tests),
held by a lock file while the window lives. ``Autosaver`` writes it every 30 s while the
document is dirty, atomically, and a clean exit deletes it (never another window's), so a
recovery file whose lock is free at startup was left by a crash, and every such file is offered.
"""

from __future__ import annotations

import itertools
import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QLockFile, QObject, QStandardPaths, QTimer, Signal, Slot
from PySide6.QtGui import QUndoStack

from core.files import atomic_write
from core.graph.model import Graph
from core.graph.spec import NodeRegistry
from core.graph.workflow import Workflow, load_workflow, to_dict

DATA_ENVIRONMENT = "LATENTLOOM_DATA_DIR"
AUTOSAVE_INTERVAL_MS = 30_000
#: File suffixes opened as images (a Load Image node) rather than as workflows.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
WORKFLOW_SUFFIXES = (".json",)
#: The workflows shipped with LatentLoom: they open as templates (untitled, so Save asks
#: where to write instead of overwriting the shipped file).
SHIPPED_WORKFLOWS = Path(__file__).resolve().parents[1] / "resources" / "workflows"


def is_shipped(path: Path) -> bool:
    """Whether ``path`` is one of the workflows shipped in ``resources/workflows``."""
    return Path(path).resolve().is_relative_to(SHIPPED_WORKFLOWS)


class Document(QObject):
    """One graph being edited: the graph, its undo history, its file and its view state."""

    #: The title or the dirty flag may have changed.
    changed = Signal()

    def __init__(
        self,
        graph: Graph,
        path: Path | None = None,
        view: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.graph = graph
        self.path = Path(path) if path is not None else None
        self.view: dict[str, Any] = dict(view or {})
        self.extra: dict[str, Any] = dict(extra or {})
        self.undo_stack = QUndoStack(self)
        self.undo_stack.cleanChanged.connect(self._clean_changed)
        #: Set when the document came back from a recovery file: dirty until saved.
        self.recovered = False
        #: How an opened file was imported (``nodes.interop.ImportReport``), when it was.
        self.import_report: Any = None
        #: The shipped workflow this untitled document was opened from, if any.
        self.template: Path | None = None

    @Slot(bool)
    def _clean_changed(self, _clean: bool) -> None:
        self.changed.emit()

    @classmethod
    def from_workflow(cls, workflow: Workflow, path: Path | None = None) -> Document:
        return cls(workflow.graph, path, workflow.view, workflow.extra)

    @classmethod
    def open(cls, path: Path, registry: NodeRegistry) -> Document:
        """Loads a workflow (LatentLoom's, or ComfyUI's UI or API format) or a PNG carrying
        one (or A1111's parameters); raises ``WorkflowError``. ``import_report`` says what an
        import from another tool could not carry over."""
        from nodes.interop import SourceFormat, open_workflow

        path = Path(path)
        result = open_workflow(path, registry)
        document = cls.from_workflow(result.workflow, path)
        document.import_report = result.report
        native = result.report.source_format is SourceFormat.LATENTLOOM
        if path.suffix.lower() != ".json" or not native:
            document.path = None  # saving writes a new LatentLoom .json, never the source
        elif is_shipped(path):
            document.path, document.template = None, path
        return document

    @property
    def dirty(self) -> bool:
        return self.recovered or not self.undo_stack.isClean()

    @property
    def title(self) -> str:
        if self.path is not None:
            return self.path.name
        return f"Untitled ({self.template.name})" if self.template is not None else "Untitled"

    def workflow_data(self, view: dict[str, Any] | None = None) -> dict[str, Any]:
        """The workflow as JSON-ready data (what is saved, queued and embedded in PNGs)."""
        if view is not None:
            self.view = dict(view)
        return to_dict(self.graph, self.view, self.extra)

    def save(self, path: Path, view: dict[str, Any] | None = None) -> None:
        """Writes the workflow atomically and marks the document clean."""
        data = json.dumps(self.workflow_data(view), indent=1).encode("utf-8")
        atomic_write(path, data)
        self.path, self.template = Path(path), None
        self.recovered = False
        self.undo_stack.setClean()
        self.changed.emit()


@dataclass(frozen=True)
class Recovery:
    """What a recovery file holds: the graph and the file it was a copy of (if any)."""

    workflow: Workflow
    source: Path | None
    saved_at: float


def default_data_dir() -> Path:
    override = os.environ.get(DATA_ENVIRONMENT)
    if override:
        return Path(override)
    location = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(location or Path.home() / ".latentloom")


class RecoveryStore:
    """One window's recovery file, ``recovery-<pid>-<n>-<random>.json``, and the lock that
    tells other windows (in this process or another) that it is in use.

    The lock (``QLockFile``, beside the file) is taken on the first write and freed by
    ``discard``; a process that dies leaves a stale lock, which ``left_behind`` recognises
    (the process is gone), so a file is offered only once its window cannot come back.
    """

    PATTERN = "recovery*.json"
    _numbers = itertools.count(1)

    def __init__(self, folder: Path | None = None, *, path: Path | None = None) -> None:
        """A new store with a file name of its own in ``folder``; ``path`` binds the store to an
        existing file instead (one left behind)."""
        if path is not None:
            self.folder = Path(path).parent
            self._path = Path(path)
        else:
            self.folder = Path(folder) if folder is not None else default_data_dir() / "recovery"
            name = f"recovery-{os.getpid()}-{next(self._numbers)}-{uuid.uuid4().hex[:8]}.json"
            self._path = self.folder / name
        self._lock: QLockFile | None = None

    @property
    def path(self) -> Path:
        return self._path

    def _claim(self) -> bool:
        """Takes the file's lock; False while a living window holds it."""
        if self._lock is not None:
            return True
        lock = QLockFile(str(self._path) + ".lock")
        lock.setStaleLockTime(0)  # a lock is stale only when its process is gone, never by age
        if not lock.tryLock(0):
            return False
        self._lock = lock
        return True

    def left_behind(self) -> list[RecoveryStore]:
        """The recovery files in this store's folder whose windows are gone, newest first, each
        bound to a store that holds its lock (so no other window offers it at the same time).
        Files of windows still open, in this process or another, are never among them."""
        found: list[RecoveryStore] = []
        for path in self.folder.glob(self.PATTERN) if self.folder.is_dir() else ():
            if path == self._path:
                continue
            other = RecoveryStore(path=path)
            if other._claim():
                found.append(other)
        found.sort(key=lambda store: _mtime(store.path), reverse=True)
        return found

    def write(self, document: Document) -> None:
        data = document.workflow_data()
        data["extra"] = dict(data.get("extra") or {})
        data["extra"]["recovery"] = {
            "source": str(document.path) if document.path is not None else None,
            "saved_at": time.time(),
        }
        self.folder.mkdir(parents=True, exist_ok=True)
        self._claim()
        atomic_write(self.path, json.dumps(data).encode("utf-8"))

    def pending(self) -> bool:
        """A recovery file is there, newer than the document it copies: offer it."""
        if not self.path.is_file():
            return False
        source = self.peek_source()
        if source is None or not source.is_file():
            return True
        return self.path.stat().st_mtime > source.stat().st_mtime

    def peek_source(self) -> Path | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            source = data["extra"]["recovery"]["source"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return Path(source) if isinstance(source, str) else None

    def read(self, registry: NodeRegistry) -> Recovery:
        """The recovered graph; raises ``WorkflowError`` when the file is unusable."""
        from core.graph.workflow import loads

        workflow = loads(self.path.read_text(encoding="utf-8"), registry, self.path)
        info = workflow.extra.pop("recovery", {}) or {}
        source = info.get("source")
        return Recovery(
            workflow,
            Path(source) if isinstance(source, str) else None,
            float(info.get("saved_at", 0.0)),
        )

    def discard(self) -> None:
        """Deletes this store's recovery file and frees its lock (never another's file)."""
        self.path.unlink(missing_ok=True)
        if self._lock is not None:
            self._lock.unlock()
            self._lock = None


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


class Autosaver(QObject):
    """Every ``interval_ms``, writes the current document to the recovery file if it is dirty."""

    saved = Signal(Path)
    failed = Signal(str)

    def __init__(
        self,
        store: RecoveryStore,
        current: Callable[[], Document | None],
        interval_ms: int = AUTOSAVE_INTERVAL_MS,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.store = store
        self._current = current
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.save_now)
        self.timer.start()

    def save_now(self) -> bool:
        """Writes the recovery file when the document is dirty (and drops a stale one when it
        is clean again); True when it wrote."""
        document = self._current()
        if document is None:
            return False
        if not document.dirty:
            self.store.discard()
            return False
        try:
            self.store.write(document)
        except OSError as exc:
            self.failed.emit(f"autosave failed: {exc}")
            return False
        self.saved.emit(self.store.path)
        return True


def classify_drop(path: Path) -> str:
    """What dropping or opening ``path`` means: "workflow", "image" (a Load Image node) or
    "unknown". A picture is a workflow when it carries one (LatentLoom's, ComfyUI's or A1111's,
    in PNG text chunks or, for WebP and JPEG, in EXIF)."""
    suffix = path.suffix.lower()
    if suffix in WORKFLOW_SUFFIXES:
        return "workflow"
    if suffix == ".png":
        return "workflow" if png_has_workflow(path) else "image"
    if suffix in (".webp", ".jpg", ".jpeg"):
        return "workflow" if exif_has_workflow(path) else "image"
    if suffix in IMAGE_SUFFIXES:
        return "image"
    return "unknown"


#: PNG text chunks that carry a graph: LatentLoom's, ComfyUI's and A1111's.
WORKFLOW_PNG_KEYS = ("latentloom", "workflow", "prompt", "parameters")


def png_has_workflow(path: Path) -> bool:
    """The PNG carries a graph that Open understands (LatentLoom, ComfyUI or A1111)."""
    from core.graph import png
    from core.graph.workflow import WorkflowError, read_file

    try:  # reads the text chunks only, within their limits, never the picture data
        chunks = png.read_text_chunks(read_file(path))
    except (WorkflowError, png.PngError):
        return False
    return any(key in chunks for key in WORKFLOW_PNG_KEYS)


def exif_has_workflow(path: Path) -> bool:
    """The WebP or JPEG carries a ComfyUI workflow or A1111 parameters in its EXIF."""
    from core.graph.workflow import MAX_FILE_BYTES
    from nodes.interop.exif import read_texts

    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return False
        return bool(read_texts(path.read_bytes()))
    except (OSError, ValueError):
        return False


def new_document(registry: NodeRegistry, template: Path | None = None) -> Document:
    """An empty document, or a copy of ``template`` (not bound to the template's file)."""
    if template is not None and template.is_file():
        document = Document.from_workflow(load_workflow(template, registry))
        return document
    return Document(Graph(registry))


def snapshot(document: Document, view: dict[str, Any] | None = None) -> dict[str, Any]:
    """A detached copy of the document's workflow data (a queued run's snapshot)."""
    return json.loads(json.dumps(document.workflow_data(view)))
