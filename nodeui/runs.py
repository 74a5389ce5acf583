"""The run queue and the controller that feeds it to the worker.

Each queued run is a snapshot of the graph as workflow data (``to_dict``): later edits do not
change it, it is what the worker rebuilds, and it is what saved PNGs embed. The controller
keeps each run's node states (``nodeui.runstate.apply_event``) and reports them, with images,
previews and sampler step histories, through signals that name the document the run came from,
so the window can draw them on that document's scene. The latest step history of each node is
kept per document (``histories``), so scrubbing and branching outlive the run.
"""

from __future__ import annotations

import contextlib
import itertools
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage

from core.engine import CancelToken, NodeFinished, Problem, RunFinished, RunReport, RunStarted
from core.engine.events import Event
from nodeui.final_preview import decoded_shown_by, definition_data
from nodeui.images import PreviewFrame, history_from_records, images_from_records
from nodeui.inner_runs import InnerStates
from nodeui.run_summary import summary
from nodeui.runstate import NodeRunState, RunStatus, apply_event
from nodeui.worker import RunBridge, RunRequest

#: Statuses of a queued run.
QUEUED, RUNNING, OK, FAILED, CANCELLED, INVALID = (
    "queued",
    "running",
    "ok",
    "failed",
    "cancelled",
    "invalid",
)


@dataclass(eq=False)
class QueuedRun:
    """One entry of the queue or the history."""

    run_id: int
    label: str
    workflow: dict[str, Any]
    #: The document the run came from (states are drawn on its scene while it is open).
    origin: object
    cancel: CancelToken = field(default_factory=CancelToken)
    status: str = QUEUED
    queued_at: float = field(default_factory=time.time)
    seconds: float | None = None
    message: str = ""
    progress: float | None = None
    images: list[QImage] = field(default_factory=list)
    states: dict[int, NodeRunState] = field(default_factory=dict)
    #: The seeds it runs with ("seed 43"), and what changed since the run of the same
    #: document queued before it ("KSampler: seed 42→43"), so that runs of one file differ.
    seeds: str = ""
    changes: str = ""
    #: The pictures each node showed in this run, by node id.
    node_images: dict[int, list[QImage]] = field(default_factory=dict)
    #: The samplers that left a step history in this run.
    sampled: list[int] = field(default_factory=list)
    #: The states of nodes inside subgraph instances, by path (instance id, …, node id).
    inner: InnerStates = field(default_factory=InnerStates)
    #: The pictures nodes inside subgraph instances showed, by path.
    inner_images: dict[tuple[int, ...], list[QImage]] = field(default_factory=dict)

    def summary(self) -> str:
        """The seeds and the changes, for a queue entry."""
        return "  ·  ".join(part for part in (self.seeds, self.changes) if part)


class RunQueue(QObject):
    """Pending runs (reorderable, removable), the one running, and the finished ones."""

    changed = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pending: list[QueuedRun] = []
        self.current: QueuedRun | None = None
        self.history: list[QueuedRun] = []

    def add(self, run: QueuedRun) -> None:
        self.pending.append(run)
        self.changed.emit()

    def move(self, run_id: int, delta: int) -> bool:
        """Moves a pending run ``delta`` places (negative: earlier); False if it cannot."""
        index = self._index(run_id)
        if index is None:
            return False
        target = max(0, min(len(self.pending) - 1, index + delta))
        if target == index:
            return False
        self.pending.insert(target, self.pending.pop(index))
        self.changed.emit()
        return True

    def remove(self, run_id: int) -> bool:
        index = self._index(run_id)
        if index is None:
            return False
        del self.pending[index]
        self.changed.emit()
        return True

    def take_next(self) -> QueuedRun | None:
        if self.current is not None or not self.pending:
            return None
        self.current = self.pending.pop(0)
        self.current.status = RUNNING
        self.changed.emit()
        return self.current

    def finish_current(self) -> QueuedRun | None:
        run, self.current = self.current, None
        if run is not None:
            self.history.insert(0, run)
        self.changed.emit()
        return run

    def _index(self, run_id: int) -> int | None:
        for index, run in enumerate(self.pending):
            if run.run_id == run_id:
                return index
        return None


class RunController(QObject):
    """Queues snapshots, runs them one at a time on the ``RunBridge``, and reports."""

    #: (origin, node id, NodeRunState)
    nodeStateChanged = Signal(object, int, object)
    #: (origin) when a run starts: every node's old state should be cleared first.
    statesCleared = Signal(object)
    #: (origin, node id, list[QImage])
    nodeImages = Signal(object, int, list)
    #: (origin, node id, PreviewFrame): a live sampler preview with its step
    nodePreview = Signal(object, int, object)
    #: (origin, node id, StepHistory): a sampler finished (or replayed its cached run)
    nodeHistory = Signal(object, int, object)
    #: (origin, node id, QImage | None): at the end of a run, the picture a VAE Decode made of
    #: a sampler's result (None: not decoded this run), for the history's last step.
    nodeFinalPicture = Signal(object, int, object)
    #: (origin, path, NodeRunState): a node inside a subgraph instance, by its path
    #: (instance id, …, inner node id), as the engine's events and report name it.
    innerNodeState = Signal(object, object, object)
    #: (origin, path, PreviewFrame): a live preview of a sampler inside a subgraph instance.
    innerNodePreview = Signal(object, object, object)
    #: (origin, path, StepHistory) of a sampler inside a subgraph instance, once the run ended.
    innerNodeHistory = Signal(object, object, object)
    #: (origin, path, list[QImage]) of an output node inside a subgraph instance, at the end.
    innerNodeImages = Signal(object, object, list)
    #: (QueuedRun) once it ended, whatever its status.
    runEnded = Signal(object)
    #: (QueuedRun, tuple[Problem]) when validation refused it.
    runInvalid = Signal(object, object)
    #: (QueuedRun, progress 0..1 of the whole run)
    runProgress = Signal(object, float)
    #: Nothing is running and nothing is pending.
    idle = Signal()

    def __init__(self, bridge: RunBridge, output_dir: Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.output_dir = Path(output_dir)
        self.queue = RunQueue(self)
        self.device = "auto"
        self.dtype = "auto"
        self.previews = True
        #: Full VAE decode of the sampler preview every this many steps (0: never).
        self.preview_vae_every = 0
        self._ids = itertools.count(1)
        self._finished: set[int] = set()
        self._running: dict[int, float] = {}
        self._histories: weakref.WeakKeyDictionary[object, dict[int, Any]] = (
            weakref.WeakKeyDictionary()
        )
        #: The workflow of each document's latest queued run, to say what the next changes.
        self._last_workflows: weakref.WeakKeyDictionary[object, dict[str, Any]] = (
            weakref.WeakKeyDictionary()
        )
        self._finals: weakref.WeakKeyDictionary[object, dict[int, QImage]] = (
            weakref.WeakKeyDictionary()
        )
        self._inner_histories: weakref.WeakKeyDictionary[object, dict[tuple[int, ...], Any]] = (
            weakref.WeakKeyDictionary()
        )
        self._latest: weakref.WeakKeyDictionary[object, QueuedRun] = weakref.WeakKeyDictionary()
        self._inner_finals: weakref.WeakKeyDictionary[object, dict[tuple[int, ...], QImage]] = (
            weakref.WeakKeyDictionary()
        )
        self.set_bridge(bridge)

    def set_bridge(self, bridge: RunBridge) -> None:
        """Runs later requests on ``bridge`` (a new executor after the Settings changed)."""
        self.bridge = bridge
        worker = bridge.worker
        worker.event.connect(self._on_event)
        worker.preview.connect(self._on_preview)
        worker.images.connect(self._on_images)
        worker.finished.connect(self._on_finished)
        worker.invalid.connect(self._on_invalid)
        worker.crashed.connect(self._on_crashed)

    @property
    def busy(self) -> bool:
        return self.queue.current is not None or bool(self.queue.pending)

    def enqueue(self, workflow: dict[str, Any], origin: object, label: str = "") -> QueuedRun:
        """Queues a snapshot (``to_dict`` data) and starts it when the worker is free."""
        run_id = next(self._ids)
        run = QueuedRun(run_id, label or f"Run {run_id}", workflow, origin)
        try:
            previous = self._last_workflows.get(origin)
            self._last_workflows[origin] = workflow
        except TypeError:  # an origin that cannot be weakly referenced is compared to nothing
            previous = None
        run.seeds, run.changes = summary(previous, workflow, self._spec_of)
        self.queue.add(run)
        self._start_next()
        return run

    def _spec_of(self, type_id: str) -> Any:
        registry = self.bridge.worker.registry
        return registry.get(type_id) if type_id in registry else None

    def cancel_current(self) -> None:
        """Cancels the running run; the engine stops within one sampler step."""
        if self.queue.current is not None:
            self.queue.current.cancel.cancel()

    def cancel_all(self) -> None:
        for run in list(self.queue.pending):
            self.queue.remove(run.run_id)
        self.cancel_current()

    def _start_next(self) -> None:
        run = self.queue.take_next()
        if run is None:
            return
        with contextlib.suppress(TypeError):
            self._latest[run.origin] = run
        self.statesCleared.emit(run.origin)
        self.bridge.submit(
            RunRequest(
                run.run_id,
                run.workflow,
                self.output_dir,
                run.cancel,
                self.device,
                self.dtype,
                self.previews,
                self.preview_vae_every,
            )
        )

    def histories(self, origin: object) -> dict[int, Any]:
        """The latest ``StepHistory`` of each sampler node of document ``origin``."""
        try:
            return self._histories.setdefault(origin, {})
        except TypeError:  # an origin that cannot be weakly referenced keeps none
            return {}

    def latest_run(self, origin: object) -> QueuedRun | None:
        """The run of document ``origin`` that started last (running or finished)."""
        try:
            return self._latest.get(origin)
        except TypeError:
            return None

    def inner_histories(self, origin: object) -> dict[tuple[int, ...], Any]:
        """The latest ``StepHistory`` of each sampler inside a subgraph instance, by path."""
        try:
            return self._inner_histories.setdefault(origin, {})
        except TypeError:
            return {}

    def inner_final_pictures(self, origin: object) -> dict[tuple[int, ...], QImage]:
        """``final_pictures`` of the samplers inside subgraph instances, by path."""
        try:
            return self._inner_finals.setdefault(origin, {})
        except TypeError:
            return {}

    def final_pictures(self, origin: object) -> dict[int, QImage]:
        """The decoded picture of each sampler's result in document ``origin``'s latest runs."""
        try:
            return self._finals.setdefault(origin, {})
        except TypeError:
            return {}

    def _current(self, run_id: int) -> QueuedRun | None:
        run = self.queue.current
        return run if run is not None and run.run_id == run_id else None

    # --- worker signals ------------------------------------------------------------------------

    def _on_event(self, run_id: int, event: Event) -> None:
        """One engine event: only the node it is about changes (O(1) per event, so a cached
        re-run of thousands of nodes stays cheap on the GUI thread)."""
        run = self._current(run_id)
        if run is None or isinstance(event, RunFinished):
            return
        for path, state in run.inner.on_event(event).items():
            self.innerNodeState.emit(run.origin, path, state)
        if isinstance(event, RunStarted):
            run.states = apply_event({}, event)
            self._finished.clear()
            self._running.clear()
            for node_id, state in run.states.items():
                self.nodeStateChanged.emit(run.origin, node_id, state)
            return
        node_id = getattr(event, "node_id", None)
        if node_id is None:
            return
        if isinstance(event, NodeFinished):
            self._take_history(run, node_id, event)
        old = run.states.get(node_id)
        new = apply_event({node_id: old} if old is not None else {}, event).get(node_id)
        if new is None or new == old:
            return
        run.states[node_id] = new
        self.nodeStateChanged.emit(run.origin, node_id, new)
        self._running.pop(node_id, None)
        if new.status is RunStatus.RUNNING:
            self._running[node_id] = new.progress or 0.0
        elif new.status not in (RunStatus.QUEUED, RunStatus.IDLE):
            self._finished.add(node_id)
        if run.states:
            run.progress = (len(self._finished) + sum(self._running.values())) / len(run.states)
            self.runProgress.emit(run, run.progress)

    def _take_history(self, run: QueuedRun, node_id: int, event: NodeFinished) -> None:
        history = history_from_records(event.records)
        if history is None or not len(history.steps):
            return
        self.histories(run.origin)[node_id] = history
        run.sampled.append(node_id)
        self.nodeHistory.emit(run.origin, node_id, history)

    def _on_preview(self, run_id: int, node_id: int, frame: PreviewFrame) -> None:
        run = self._current(run_id)
        if run is not None:
            self.nodePreview.emit(run.origin, node_id, frame)
            if frame.path:
                self.innerNodePreview.emit(run.origin, frame.path, frame)

    def _on_images(self, run_id: int, node_id: int, images: list[QImage]) -> None:
        run = self._current(run_id)
        if run is not None:
            run.images.extend(images)
            run.node_images.setdefault(node_id, []).extend(images)
            self.nodeImages.emit(run.origin, node_id, images)

    def _on_finished(self, run_id: int, report: RunReport) -> None:
        run = self._current(run_id)
        if run is None:
            return
        run.status = {"ok": OK, "failed": FAILED}.get(report.status, CANCELLED)
        run.seconds = report.seconds
        failures = [e for e in report.entries.values() if e.status == "failed"]
        if failures:
            run.message = "; ".join(f"{e.label}: {e.message}" for e in failures)
        self._show_decoded_results(run)
        self._report_inner(run, report)
        self._end(run)

    def _report_inner(self, run: QueuedRun, report: RunReport) -> None:
        """How each node inside a subgraph instance ended, with its history and pictures
        (a sampler's last step being the picture a VAE Decode beside it made, as on top)."""
        for path, state in run.inner.on_report(report.inner).items():
            self.innerNodeState.emit(run.origin, path, state)
        histories = self.inner_histories(run.origin)
        finals = self.inner_final_pictures(run.origin)
        sampled: list[tuple[tuple[int, ...], Any]] = []
        for path, entry in report.inner.items():
            history = history_from_records(entry.records)
            if history is not None and len(history.steps):
                sampled.append((path, history))
            pictures = images_from_records(entry.records)
            if pictures:
                run.inner_images[path] = pictures
                self.innerNodeImages.emit(run.origin, path, pictures)
        for path, history in sampled:
            histories[path] = history
            inside = definition_data(run.workflow, path[:-1])
            picture = None
            if inside is not None:
                picture = _decoded_picture(
                    inside,
                    path[-1],
                    lambda nid, path=path: run.inner.states.get((*path[:-1], nid)),
                    lambda nid, path=path: run.inner_images.get((*path[:-1], nid)),
                )
            if picture is None:
                finals.pop(path, None)
            else:
                finals[path] = picture
            self.innerNodeHistory.emit(run.origin, path, history)

    def _show_decoded_results(self, run: QueuedRun) -> None:
        """Gives each sampler of the run the picture a VAE Decode made of its result, when
        the decode ran and its picture was shown; takes it away when it was not."""
        finals = self.final_pictures(run.origin)
        for node_id in run.sampled:
            picture = _decoded_picture(run.workflow, node_id, run.states.get, run.node_images.get)
            if picture is None:
                finals.pop(node_id, None)
            else:
                finals[node_id] = picture
            self.nodeFinalPicture.emit(run.origin, node_id, picture)

    def _on_invalid(self, run_id: int, problems: tuple[Problem, ...]) -> None:
        run = self._current(run_id)
        if run is None:
            return
        run.status = INVALID
        run.message = f"{len(problems)} problem(s): " + "; ".join(p.message for p in problems)
        for problem in problems:
            state = NodeRunState(RunStatus.FAILED, message=problem.message, field=problem.field)
            previous = run.states.get(problem.node_id)
            if previous is not None and previous.message:  # several problems on one node
                state = NodeRunState(
                    RunStatus.FAILED,
                    message=f"{previous.message}\n{problem.message}",
                    field=previous.field or problem.field,
                )
            run.states[problem.node_id] = state
            self.nodeStateChanged.emit(run.origin, problem.node_id, state)
        self.runInvalid.emit(run, problems)
        self._end(run)

    def _on_crashed(self, run_id: int, message: str) -> None:
        run = self._current(run_id)
        if run is None:
            return
        run.status, run.message = FAILED, message
        self._end(run)

    def _end(self, run: QueuedRun) -> None:
        if run.cancel.cancelled and run.status not in (INVALID,):
            run.status = CANCELLED
        self.queue.finish_current()
        self.runEnded.emit(run)
        self._start_next()
        if not self.busy:
            self.idle.emit()


def _decoded_picture(
    workflow: dict[str, Any],
    sampler_id: int,
    state_of: Callable[[int], NodeRunState | None],
    images_of: Callable[[int], list[QImage] | None],
) -> QImage | None:
    """The first picture shown of the sampler's result decoded by a VAE Decode that ran."""
    ran = (RunStatus.DONE, RunStatus.CACHED)
    for decoder, shown in decoded_shown_by(workflow, sampler_id):
        state, images = state_of(decoder), images_of(shown)
        if state is not None and state.status in ran and images:
            return images[0]
    return None
