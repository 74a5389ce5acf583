"""Sweeps in the editor: "Sweep this field…" in the Inspector adds an axis to the Sweep panel,
Run Sweep plans it (``core.engine.sweep``) and runs it on a background thread with the
editor's own executor and cache (or on the Ray cluster named in the Settings); the grids then
appear in the image viewer, and a click on a cell opens that run's picture with its graph.
"""

from __future__ import annotations

import functools
import itertools
import threading
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QDockWidget, QInputDialog

from core.engine import CancelToken, Progress
from core.engine.sweep import SweepError, make_axis, make_sweep, split_values
from core.graph.workflow import from_dict, to_dict
from core.sweep_command import SweepRequest, execute
from core.sweep_output import SweepResult
from nodeui.panels.sweep import SweepPanel
from nodeui.worker import _apply_dtype as apply_dtype


def new_sweep_folder(output_dir: Path) -> Path:
    """A new, empty ``sweep_NNNN`` folder inside ``output_dir`` (made exclusively)."""
    root = Path(output_dir) / "sweeps"
    root.mkdir(parents=True, exist_ok=True)
    taken = [p.name for p in root.iterdir() if p.name.startswith("sweep_")]
    start = 1 + max((int(n[6:]) for n in taken if n[6:].isdigit()), default=0)
    for number in itertools.count(start):
        folder = root / f"sweep_{number:04d}"
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        return folder
    raise AssertionError("unreachable")


def _value_text(value: Any) -> str:
    """A field's current value as the axis dialog proposes it."""
    if isinstance(value, str):
        return '"' + value.replace('"', '""') + '"' if ("," in value or '"' in value) else value
    return str(value)


class SweepController(QObject):
    """Connects the Inspector, the Sweep panel, the runner and the image viewer."""

    _stepped = Signal(int, int, int)
    _ran = Signal(int, str, str)
    _ended = Signal(object)
    #: (SweepResult) the sweep ended and its grids are shown.
    finished = Signal(object)

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.window = window
        self.panel = SweepPanel()
        self.cancel: CancelToken | None = None
        self.result: SweepResult | None = None
        self._shown: list[QImage] | None = None
        self._done = 0
        self._started = 0.0
        self._thread: threading.Thread | None = None
        self.panel.runRequested.connect(self.run)
        self.panel.cancelRequested.connect(self.stop)
        window.inspector.sweepRequested.connect(self.ask_axis)
        window.viewer.imageClicked.connect(self.open_cell)
        self._stepped.connect(self._on_step, Qt.ConnectionType.QueuedConnection)
        self._ran.connect(self._on_run, Qt.ConnectionType.QueuedConnection)
        self._ended.connect(self._on_end, Qt.ConnectionType.QueuedConnection)

    # --- axes ------------------------------------------------------------------------------

    def ask_axis(self, node_id: int, name: str) -> None:
        """Asks for the values of ``node_id.name`` and adds the axis."""
        graph = self.window.document.graph
        value = graph.node(node_id).params.get(name, graph.spec(node_id).input(name).default)
        text, accepted = QInputDialog.getText(
            self.window,
            "Sweep this field",
            f"Values of {node_id}.{name}: a list (3,5,7), a range (0..15, 3..9 step 2) "
            "or @file (one value a line)",
            text=_value_text(value),
        )
        if accepted:
            self.add_axis(node_id, name, text)

    def add_axis(self, node_id: int, name: str, text: str) -> bool:
        """Adds the axis ``node_id.name`` over ``text``; a refusal goes to the panel."""
        graph = self.window.document.graph
        source = self.window.document.path
        base = Path(source).parent if source else None
        try:
            values = split_values(text, f"{node_id}.{name}", base)
            axis = make_axis(graph, node_id, name, values)
        except SweepError as exc:
            self.panel.show_status(str(exc))
            self.window.show_status(str(exc))
            return False
        self.panel.add_axis(axis)
        self.panel.show_status("")
        self._show_dock()
        return True

    def _show_dock(self) -> None:
        dock = self.window.docks.get("sweep")
        if dock is not None:
            dock.show()
            dock.raise_()

    # --- running ---------------------------------------------------------------------------

    def run(self) -> bool:
        """Plans the sweep of the current document and starts it; False when refused."""
        if self._thread is not None and self._thread.is_alive():
            return False
        window, panel = self.window, self.panel
        window.commit_pending_edits()
        settings = window.settings
        panel.set_cluster_address(settings.ray_address)
        address = settings.ray_address if panel.cluster.isChecked() else None
        if panel.cluster.isChecked() and not address:
            panel.show_status("Set the Ray cluster's address in Settings to run on a cluster")
            return False
        graph = window.document.graph
        if window.runs.dtype != "auto":  # the Settings' precision, as a queued run gets it
            graph = from_dict(to_dict(graph), graph.registry).graph
            apply_dtype(graph, window.runs.dtype)
        try:
            plan = make_sweep(
                graph,
                panel.axes,
                panel.combine,
                panel.batch.value(),
                window.view_state(),
            )
        except SweepError as exc:
            panel.show_status(str(exc))
            return False
        folder = new_sweep_folder(window.runs.output_dir)
        request = SweepRequest(
            [], False, plan.batch_count, folder, address or None, None, window.runs.device
        )
        from nodes.cluster import worker_registry

        factory = functools.partial(worker_registry, tuple(settings.model_folders))
        self.cancel = CancelToken()
        self._done = 0
        self._started = time.perf_counter()
        panel.set_running(True, len(plan.runs))
        where = f"on the cluster at {address}" if address else "here"
        panel.show_status(f"Running {len(plan.runs)} runs {where} into {folder}")
        arguments = (plan, factory, request, settings.cache_budgets(), self.cancel)
        self._thread = threading.Thread(
            target=self._work, args=arguments, name="LatentLoom sweep", daemon=True
        )
        self._thread.start()
        return True

    def stop(self) -> None:
        if self.cancel is not None:
            self.cancel.cancel()
            self.panel.show_status("Stopping after the runs in progress…")

    def _work(
        self,
        plan: Any,
        factory: Any,
        request: SweepRequest,
        budgets: Any,
        cancel: CancelToken,
    ) -> None:
        """The sweep, on its own thread; reports through queued signals only."""

        def on_event(index: int, event: Any) -> None:
            if isinstance(event, Progress):
                self._stepped.emit(index, event.step, event.total)

        try:
            result = execute(
                plan,
                self.window.registry,
                factory,
                request,
                budgets,
                cancel,
                on_output=lambda o: self._ran.emit(o.index, o.status, o.message),
                on_event=on_event,
                executor=None if request.ray else self.window.bridge.executor,
            )
        except SweepError as exc:
            self._ended.emit(str(exc))
            return
        except Exception as exc:  # reported in the panel; the editor keeps running
            self._ended.emit(f"the sweep stopped: {type(exc).__name__}: {exc}")
            return
        self._ended.emit(result)

    def _on_step(self, index: int, step: int, total: int) -> None:
        self.panel.set_progress(self._done, step, total)

    def _on_run(self, index: int, status: str, message: str) -> None:
        self._done += 1
        self.panel.set_progress(self._done)
        if status != "ok":
            self.panel.show_status(f"Run {index} {status}: {message}")

    def _on_end(self, outcome: object) -> None:
        self.panel.set_running(False)
        self._thread = None
        if isinstance(outcome, str):
            self.panel.show_status(outcome)
            self.window.show_status(outcome)
            return
        assert isinstance(outcome, SweepResult)
        self.result = outcome
        seconds = time.perf_counter() - self._started
        failed = f", {len(outcome.failed)} failed" if outcome.failed else ""
        text = (
            f"{self._done} runs in {seconds:.1f} s{failed}: {outcome.ran} node(s) ran, "
            f"{outcome.cached} cached. Click a cell of the grid to open its run. "
            f"Files in {outcome.folder}"
        )
        self.panel.show_status(text)
        images = [QImage(str(grid.path)) for grid in outcome.grids]
        if images:
            self.window.viewer.set_images(images, None)
            self._shown = self.window.viewer.images
        self.finished.emit(outcome)

    # --- the grid --------------------------------------------------------------------------

    def cell_file(self, page: int, x: int, y: int) -> Path | None:
        """The picture of the run whose cell of grid ``page`` holds (x, y), if any."""
        if self.result is None or not 0 <= page < len(self.result.grids):
            return None
        grid = self.result.grids[page]
        for _run, _column, _row, (left, top, width, height), name in grid.cells:
            if left <= x < left + width and top <= y < top + height and name:
                return self.result.folder / name
        return None

    def open_cell(self, page: int, x: int, y: int) -> None:
        """A click on a shown grid opens that cell's run (its picture carries its graph)."""
        if self._shown is None or self.window.viewer.images is not self._shown:
            return
        path = self.cell_file(page, x, y)
        if path is not None:
            self.window.open_path(path)


def install(window: Any) -> SweepController:
    """Adds the Sweep dock to ``window`` (tabbed with the Queue) and wires it up."""
    controller = SweepController(window)
    controller.panel.set_cluster_address(window.settings.ray_address)
    dock = QDockWidget("Sweep", window)
    dock.setObjectName("sweepDock")
    dock.setWidget(controller.panel)
    window.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)
    window.actions.panels_menu.addAction(dock.toggleViewAction())
    queue = window.docks.get("queue")
    if queue is not None:
        window.tabifyDockWidget(queue, dock)
        queue.raise_()
    window.docks["sweep"] = dock
    return controller
