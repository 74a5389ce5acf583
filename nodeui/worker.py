"""The executor on a worker thread, reporting through queued Qt signals.

One ``Executor`` per window, so its cache lives across runs. The GUI thread hands the worker a
``RunRequest`` (a snapshot of the graph as workflow data, so later edits cannot touch a queued
run); the worker rebuilds the graph, runs it and turns every engine event into a signal.
Pictures are converted to ``QImage`` here, off the GUI thread, and live previews are throttled,
so the event loop stays responsive while a sampler works.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from core.engine import (
    CacheBudgets,
    CancelToken,
    Executor,
    NodeFailed,
    NodeFinished,
    NodeSkipped,
    Preview,
    ValidationError,
)
from core.engine.events import Event
from core.graph.spec import NodeRegistry, WidgetInput
from core.graph.workflow import WorkflowError, from_dict
from nodeui.images import images_from_records, preview_to_qimage

#: At most this many live previews per second per node reach the GUI (15 would still be smooth).
PREVIEW_RATE_HZ = 8.0


@dataclass(frozen=True)
class RunRequest:
    """One run: a workflow snapshot plus how to run it."""

    run_id: int
    workflow: dict[str, Any]
    output_dir: Path
    cancel: CancelToken = field(default_factory=CancelToken)
    device: str = "auto"
    #: "auto" leaves loader nodes alone; anything else fills their ``dtype`` params left "auto".
    dtype: str = "auto"
    previews: bool = True
    #: Samplers decode their preview with the full VAE every this many steps (0: never).
    preview_vae_every: int = 0


class ExecutorWorker(QObject):
    """Lives on the worker thread; ``run`` executes one request at a time."""

    #: (run id, engine event) for every event except previews.
    event = Signal(int, object)
    #: (run id, node id, PreviewFrame) for a throttled live preview (picture, step, total).
    preview = Signal(int, int, object)
    #: (run id, node id, list[QImage]) for a node's "images" records.
    images = Signal(int, int, list)
    #: (run id, RunReport) when the run ended (ok, failed or cancelled).
    finished = Signal(int, object)
    #: (run id, tuple[Problem]) when validation refused the graph; nothing ran.
    invalid = Signal(int, object)
    #: (run id, message) when the run could not even start (a broken snapshot, a crash).
    crashed = Signal(int, str)

    def __init__(self, registry: NodeRegistry, budgets: CacheBudgets | None = None) -> None:
        super().__init__()
        self.registry = registry
        self.executor = Executor(registry, budgets)

    @Slot(object)
    def run(self, request: RunRequest) -> None:
        try:
            workflow = from_dict(request.workflow, self.registry)
        except WorkflowError as exc:
            self.crashed.emit(request.run_id, str(exc))
            return
        graph = workflow.graph
        if request.dtype != "auto":
            _apply_dtype(graph, request.dtype)
        last_preview: dict[int, float] = {}
        #: The newest preview of each node that came too soon after the last one shown. It is
        #: shown once it is due (at the node's next event) or when the node ends, so throttling
        #: never hides the latest picture, e.g. a full VAE decode made every k steps.
        pending: dict[int, Preview] = {}

        def show(node_id: int, preview: Preview, now: float) -> None:
            last_preview[node_id] = now
            frame = preview_to_qimage(preview.image)
            if frame is not None:
                self.preview.emit(request.run_id, node_id, replace(frame, path=preview.path))

        def due(node_id: int, now: float) -> bool:
            return now - last_preview.get(node_id, -1e9) >= 1.0 / PREVIEW_RATE_HZ

        def on_event(event: Event) -> None:
            node_id = getattr(event, "node_id", None)
            if isinstance(event, Preview):
                if not request.previews:
                    return
                now = time.monotonic()
                if due(event.node_id, now):
                    pending.pop(event.node_id, None)
                    show(event.node_id, event, now)
                else:
                    pending[event.node_id] = event
                return
            if node_id in pending:
                now = time.monotonic()
                ended = isinstance(event, (NodeFinished, NodeFailed, NodeSkipped))
                if ended or due(node_id, now):
                    show(node_id, pending.pop(node_id), now)
            if isinstance(event, NodeFinished):
                pictures = images_from_records(event.records)
                if pictures:
                    self.images.emit(request.run_id, event.node_id, pictures)
            self.event.emit(request.run_id, event)

        try:
            report = self.executor.run(
                graph,
                on_event=on_event,
                cancel=request.cancel,
                output_dir=request.output_dir,
                workflow=request.workflow,
                device=request.device,
                preview_vae_every=request.preview_vae_every,
            )
        except ValidationError as exc:
            self.invalid.emit(request.run_id, exc.problems)
            return
        except Exception as exc:  # the engine should not raise; never let a run kill the app
            traceback.print_exc()
            self.crashed.emit(request.run_id, f"{type(exc).__name__}: {exc}")
            return
        self.finished.emit(request.run_id, report)


def _apply_dtype(graph: Any, dtype: str) -> None:
    """Fills every ``dtype`` param still "auto" with the Settings precision, in this snapshot
    only (the user's graph and the embedded workflow keep what the user chose)."""
    for node in graph:
        widget = graph.spec(node.id).input("dtype")
        if (
            isinstance(widget, WidgetInput)
            and node.params.get("dtype") == "auto"
            and widget.choices is not None
            and dtype in widget.choices
        ):
            graph.set_param(node.id, "dtype", dtype)


class RunBridge(QObject):
    """Owns the worker thread and the worker; the GUI side submits requests here."""

    _submit = Signal(object)

    def __init__(
        self,
        registry: NodeRegistry,
        budgets: CacheBudgets | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.thread = QThread()
        self.thread.setObjectName("LatentLoom executor")
        self.worker = ExecutorWorker(registry, budgets)
        self.worker.moveToThread(self.thread)
        self._submit.connect(self.worker.run)
        self.thread.start()

    @property
    def executor(self) -> Executor:
        return self.worker.executor

    def submit(self, request: RunRequest) -> None:
        """Starts ``request`` on the worker thread (queued behind a run in progress)."""
        self._submit.emit(request)

    def shutdown(self, timeout_ms: int = 10_000) -> None:
        """Stops the thread once the run in progress ends (cancel it first)."""
        if self.thread.isRunning():
            self.thread.quit()
            self.thread.wait(timeout_ms)
