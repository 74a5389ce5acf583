"""The main window: the canvas in the centre, docks around it, and the wiring between them.

The window composes small parts and owns little logic itself: ``EditorActions`` (menus and
toolbar), ``FileController`` (files, prompts, recovery), ``RunController`` (queue and worker),
``DropHandler`` (drag and drop), the panels, and one ``Document`` at a time with its
``GraphScene``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import shiboken6
from PySide6.QtCore import QEvent, QObject, QPointF, QSettings, Qt, QTimer
from PySide6.QtGui import QCloseEvent, QDropEvent, QImage, QResizeEvent, QShowEvent
from PySide6.QtWidgets import QDockWidget, QMainWindow, QMessageBox, QWidget

from core.diffusion.model_paths import ModelPaths
from core.engine import Executor
from core.graph.commands import AddNode
from core.graph.model import Graph
from core.graph.spec import NodeRegistry
from nodeui.actions import EditorActions, EditorHandlers
from nodeui.documents import AUTOSAVE_INTERVAL_MS, Autosaver, Document, RecoveryStore, snapshot
from nodeui.drops import DropHandler
from nodeui.files import FileController
from nodeui.image_inputs import ImageInputs
from nodeui.images import PreviewFrame
from nodeui.panels.inspector import Inspector, push_command
from nodeui.panels.library import NodeLibrary
from nodeui.panels.queue import QueuePanel
from nodeui.panels.viewer import ImageViewer
from nodeui.runs import INVALID, QueuedRun, RunController
from nodeui.runstate import NodeRunState, controls_after_run
from nodeui.settings import EditorSettings, RecentFiles, SettingsDialog
from nodeui.side_columns import SideColumns
from nodeui.subgraph_runs import SubgraphRunView
from nodeui.subgraphs import SubgraphNavigator
from nodeui.sweeps import install as install_sweeps
from nodeui.worker import RunBridge

APP_TITLE = "LatentLoom"
#: How a finished run's status reads in the status bar.
STATUS_WORDS = {
    "ok": "done",
    "failed": "a node failed",
    "cancelled": "cancelled",
    "invalid": "not run, the graph has problems",
}


def build_registry(settings: EditorSettings) -> NodeRegistry:
    """The node registry, its loaders searching the Settings' model folders first, without the
    node packs disabled in Settings or by ``$LATENTLOOM_DISABLED_PACKS``."""
    import nodes
    from nodes.packs import disabled_from_environment

    roots = nodes.default_model_roots(settings.model_folders)
    disabled = (*settings.disabled_packs, *disabled_from_environment())
    return nodes.build_registry(ModelPaths.of(*roots), disabled)


def canvas_classes() -> tuple[type, type]:
    """The canvas's scene and view classes (``nodeui.canvas``), imported when a window is made."""
    from nodeui.canvas import GraphScene, GraphView

    return GraphScene, GraphView


class MainWindow(SideColumns, QMainWindow):
    """One editor window: one document, one executor (its cache lives across runs)."""

    #: Whether ``_fit_side_columns`` follows the window's width (a first start, until the user
    #: arranges the panels).
    _fitting = False
    #: Whether ``_fit_side_columns`` put all the side panels in one column.
    _single_column = False
    #: Set while ``_arrange_columns`` moves docks (their moves are not the user's).
    _arranging = False

    def __init__(
        self,
        store: QSettings,
        *,
        recovery: RecoveryStore | None = None,
        output_dir: Path | None = None,
        autosave_ms: int | None = None,
        registry: NodeRegistry | None = None,
        parent: QWidget | None = None,
    ) -> None:
        """``registry`` replaces the one the Settings' model folders would build (tests,
        embedding); ``recovery`` and ``output_dir`` default to the per-user ones."""
        super().__init__(parent)
        self.store = store
        self.settings = EditorSettings.load(store)
        self.registry = registry or build_registry(self.settings)
        self.recent = RecentFiles(store)
        self.recovery = recovery or RecoveryStore()
        self.bridge = RunBridge(self.registry, self.settings.cache_budgets(), self)
        self.runs = RunController(self.bridge, output_dir or Path.cwd() / "output", self)
        self._apply_run_settings()
        self.setWindowTitle(APP_TITLE)
        self.setAcceptDrops(True)
        self.setDockNestingEnabled(True)

        scene_class, view_class = canvas_classes()
        self._scene_class = scene_class
        self.document = Document(Graph(self.registry))
        self.scene = scene_class(self.document.graph, self.registry, self.document.undo_stack)
        self.view = view_class(self.scene)
        self.setCentralWidget(self.view)

        self.library = NodeLibrary(self.registry)
        self.inspector = Inspector()
        self.queue_panel = QueuePanel(self.runs.queue)
        self.viewer = ImageViewer()
        self.files = FileController(self, self, self.recent, self.recovery)
        self.actions = EditorActions(self, self._handlers())
        self.view.minimap.use_settings(self.store)
        minimap_action = self.view.minimap.toggle_action
        self.actions.view_menu.insertAction(self.actions.panels_menu.menuAction(), minimap_action)
        self._build_docks()
        self.sweeps = install_sweeps(self)
        self.autosaver = Autosaver(
            self.recovery, lambda: self.document, autosave_ms or AUTOSAVE_INTERVAL_MS, self
        )

        self.drops = DropHandler(
            self._open_dropped,
            self.add_image_node,
            self._drop_scene_pos,
            self,
            replace_image=lambda path, at: self.image_inputs.replace_image_at(path, at),
        )
        self.installEventFilter(self.drops)
        self.view.viewport().setAcceptDrops(True)
        self.view.viewport().installEventFilter(self.drops)
        self.image_inputs = ImageInputs(self)

        self.library.addNodeRequested.connect(lambda type_id: self.add_node(type_id, None))
        self.inspector.statusMessage.connect(self.show_status)
        self.files.statusMessage.connect(self.show_status)
        self.autosaver.failed.connect(self.show_status)
        self.queue_panel.cancelRequested.connect(self.runs.cancel_current)
        self.queue_panel.historyActivated.connect(self._show_run_images)
        self.runs.statesCleared.connect(self._on_states_cleared)
        self.runs.nodeStateChanged.connect(self._on_node_state)
        self.runs.nodeImages.connect(self._on_node_images)
        self.runs.nodePreview.connect(self._on_node_preview)
        self.runs.nodeHistory.connect(self._on_node_history)
        self.runs.nodeFinalPicture.connect(self._on_final_picture)
        self.viewer.continueRequested.connect(self.continue_from_step)
        self.runs.runProgress.connect(self.queue_panel.set_progress)
        self.runs.runEnded.connect(self._on_run_ended)
        self.runs.runInvalid.connect(self._on_run_invalid)
        self.runs.queue.changed.connect(self._update_actions)
        self.last_problems: tuple[Any, ...] = ()
        self.problem_box: QMessageBox | None = None
        #: Windows this one opened for further recovered graphs.
        self.companions: list[MainWindow] = []
        self.subgraphs = SubgraphNavigator(self)
        self.subgraph_runs = SubgraphRunView(self)
        self.set_document(self.document)
        self._restore_layout()
        self._announce_failed_packs()

    # --- composition -----------------------------------------------------------------------

    def _handlers(self) -> EditorHandlers:
        view = self.view
        return EditorHandlers(
            new=self.files.new,
            open=lambda: self.files.open(),
            open_path=lambda path: self.files.open(path),
            recent_paths=self.recent.paths,
            save=self.files.save,
            save_as=lambda: self.files.save_as(),
            export_png=self.export_png,
            export_comfy_api=lambda: self.files.export_comfy_api(),
            settings=self.edit_settings,
            quit=self.close,
            undo=lambda: self.document.undo_stack.undo(),
            redo=lambda: self.document.undo_stack.redo(),
            cut=lambda: view.cut_selection(),
            copy=lambda: view.copy_selection(),
            paste=lambda: self.image_inputs.paste_or(view.paste),
            paste_links=lambda: view.paste(keep_input_links=True),
            duplicate=lambda: view.duplicate_selection(),
            delete=lambda: view.delete_selection(),
            select_all=lambda: view.select_all(),
            bypass=lambda: view.toggle_bypass_selection(),
            mute=lambda: view.toggle_mute_selection(),
            group=lambda: view.group_selection(),
            add_node=lambda: view.open_palette(),
            frame_all=lambda: view.frame_all(),
            frame_selected=lambda: view.frame_selected(),
            run=self.run_graph,
            cancel=self.runs.cancel_current,
            cancel_all=self.runs.cancel_all,
            commit_pending=self.commit_pending_edits,
        )

    def _build_docks(self) -> None:
        left = Qt.DockWidgetArea.LeftDockWidgetArea
        right = Qt.DockWidgetArea.RightDockWidgetArea
        self.docks: dict[str, QDockWidget] = {}
        for name, title, widget, area in (
            ("library", "Node Library", self.library, left),
            ("queue", "Queue", self.queue_panel, left),
            ("inspector", "Inspector", self.inspector, right),
            ("viewer", "Image Viewer", self.viewer, right),
        ):
            dock = QDockWidget(title, self)
            dock.setObjectName(f"{name}Dock")
            dock.setWidget(widget)
            self.addDockWidget(area, dock)
            self.actions.panels_menu.addAction(dock.toggleViewAction())
            self.docks[name] = dock
        em = self.fontMetrics().averageCharWidth()
        #: The side columns' widths on a window wide enough for them (the first start).
        # The inspector's widest rows (a sampler's) need about 50 characters; the library's
        # node names about 30.
        self.preferred_side_widths = (34 * em, 52 * em)
        self.resizeDocks(
            [self.docks["library"], self.docks["inspector"]],
            list(self.preferred_side_widths),
            Qt.Orientation.Horizontal,
        )
        self._size_rows()

    def event(self, event: QEvent) -> bool:
        # A press on the window itself (not on a panel or the canvas) grabs a column's edge.
        if event.type() == QEvent.Type.MouseButtonPress:
            self._fitting = False
        return super().event(event)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._fitting:
            QTimer.singleShot(0, self._fit_side_columns)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self._fitting and self.isVisible():
            QTimer.singleShot(0, self._fit_side_columns)

    # --- documents -------------------------------------------------------------------------

    def set_document(self, document: Document) -> None:
        """Shows ``document``: a fresh scene on the view, the inspector following its graph."""
        old_document, old_scene = self.document, self.scene
        navigator = getattr(self, "subgraphs", None)
        inside = navigator is not None and bool(navigator.path)
        if document is not old_document:
            old_document.changed.disconnect(self._update_title)
            old_document.undo_stack.canUndoChanged.disconnect(self._update_actions)
            old_document.undo_stack.canRedoChanged.disconnect(self._update_actions)
        if document is not old_document or inside:
            detach = getattr(old_scene, "detach", None)
            if callable(detach):
                detach()
            self.scene = self._scene_class(document.graph, self.registry, document.undo_stack)
            self.view.setScene(self.scene)
            old_scene.deleteLater()
            self.document = document
        if navigator is not None:
            navigator.reset()
            navigator.watch(self.scene)
        document.changed.connect(self._update_title)
        document.undo_stack.canUndoChanged.connect(self._update_actions)
        document.undo_stack.canRedoChanged.connect(self._update_actions)
        self.scene.selectionNodesChanged.connect(self.inspector.show_selection)
        self.scene.selectionNodesChanged.connect(self._offer_history)
        finals = self.runs.final_pictures(document)
        for node_id, history in self.runs.histories(document).items():
            if node_id in document.graph:
                cursor = self.scene.set_node_history(node_id, history)
                if cursor is not None:
                    cursor.set_final(finals.get(node_id))
        self._offer_history(self.scene.selected_node_ids())
        self.scene.statusMessage.connect(self.show_status)
        self.inspector.set_document(document.graph, document.undo_stack, self.registry)
        self.image_inputs.follow(self.scene)
        if document.view:
            self.view.set_view_state(document.view)
        else:
            QTimer.singleShot(0, self.view.frame_all)
        self._update_title()
        self._update_actions()

    def _shows_workflow(self) -> bool:
        """Whether the canvas shows the workflow's graph (not the inside of a subgraph)."""
        return self.scene.graph is self.document.graph

    def commit_pending_edits(self) -> None:
        """Puts what is typed in an editor, on the canvas or in the inspector, into the graph.
        Every menu and toolbar action, opening a dropped workflow and closing the window call
        this first."""
        commit = getattr(self.scene, "commit_inline_editor", None)
        if callable(commit):
            commit()
        self.inspector.commit_pending_edits()

    def view_state(self) -> dict[str, Any]:
        return dict(self.view.view_state())

    def _update_title(self) -> None:
        mark = "*" if self.document.dirty else ""
        self.setWindowTitle(f"{self.document.title}{mark} — {APP_TITLE}")

    def _update_actions(self) -> None:
        stack = self.document.undo_stack
        if not shiboken6.isValid(stack):  # the window is being torn down
            return
        self.actions.by_name["undo"].setEnabled(stack.canUndo())
        self.actions.by_name["redo"].setEnabled(stack.canRedo())
        self.actions.by_name["cancel"].setEnabled(self.runs.queue.current is not None)

    def open_path(self, path: Path, *, ask: bool = True) -> bool:
        return self.files.open(path, ask=ask)

    def recover_left_behind(self) -> list[Document]:
        """At startup: offers every graph that windows which crashed left behind; the first one
        taken back opens here, each further one in a window of its own (``companions``)."""
        return self.files.offer_recovery(self._open_in_new_window)

    def _open_in_new_window(self, document: Document) -> MainWindow:
        window = MainWindow(
            self.store,
            recovery=RecoveryStore(self.recovery.folder),
            output_dir=self.runs.output_dir,
            registry=self.registry,
        )
        window.set_document(document)
        window.autosaver.save_now()
        window.show()
        self.companions.append(window)
        return window

    # --- adding nodes ----------------------------------------------------------------------

    def _centre(self) -> QPointF:
        return self.view.mapToScene(self.view.viewport().rect().center())

    def _drop_scene_pos(self, watched: QObject, event: QDropEvent) -> QPointF | None:
        if watched is self.view.viewport():
            return self.view.mapToScene(event.position().toPoint())
        return None

    def add_node(
        self, type_id: str, at: QPointF | None, params: dict[str, Any] | None = None
    ) -> int | None:
        """Adds a node (undoably) at ``at`` in scene coordinates, else at the view centre."""
        pos = at if at is not None else self._centre()
        command = AddNode(type_id, (pos.x(), pos.y()), params)
        error = push_command(self.document.undo_stack, self.scene.graph, command)
        if error:
            self.show_status(error)
            return None
        return command.node_id

    def _open_dropped(self, path: Path) -> bool:
        """A dropped workflow replaces the document: what is being typed counts as a change."""
        self.commit_pending_edits()
        return self.files.open(path)

    def add_image_node(self, path: Path, at: QPointF | None) -> int | None:
        return self.add_node("LoadImage", at, {"image": str(path)})

    # --- running ---------------------------------------------------------------------------

    def run_graph(self, count: int | None = None) -> QueuedRun:
        """Queues a snapshot of the graph, then applies the seeds' after-run modes, unless
        validation will refuse the run: a run that never starts leaves the seeds alone.

        ``count`` runs (default: the toolbar's batch count) are queued, the seeds' modes
        applied after each, as a queued run is repeated in other tools; returns the last."""
        document = self.document
        count = count or self.actions.batch_count.value()
        starts = not Executor(document.graph.registry).validate(document.graph)
        for number in range(count):
            data = snapshot(document, self.view_state())
            label = document.title if count == 1 else f"{document.title} ({number + 1}/{count})"
            run = self.runs.enqueue(data, document, label=label)
            command = controls_after_run(document.graph) if starts else None
            if command is not None:
                push_command(document.undo_stack, document.graph, command)
        self.show_status(f"Queued {run.label}")
        return run

    def _on_states_cleared(self, origin: object) -> None:
        """A run of ``origin`` starts: the last run's states and previews go."""
        if origin is self.document:
            self.scene.clear_run_states()
            for node_id in self.document.graph.nodes:
                self.scene.set_node_preview(node_id, None)

    def _on_node_state(self, origin: object, node_id: int, state: NodeRunState) -> None:
        if origin is self.document and self._shows_workflow() and node_id in self.document.graph:
            self.scene.set_node_state(node_id, state)

    def _on_node_images(self, origin: object, node_id: int, images: list[QImage]) -> None:
        if origin is self.document and self._shows_workflow() and node_id in self.document.graph:
            self.scene.set_node_images(node_id, images)

    def _on_node_preview(self, origin: object, node_id: int, frame: PreviewFrame) -> None:
        if origin is self.document and self._shows_workflow() and node_id in self.document.graph:
            caption = f"step {frame.step}/{frame.total}" if frame.step is not None else ""
            self.scene.set_node_preview(node_id, frame.image, caption)
            self.viewer.show_live(frame, self._node_title(node_id))

    def _on_node_history(self, origin: object, node_id: int, history: object) -> None:
        """A sampler finished: its live preview gives way to its scrubbable step history."""
        if origin is self.document and self._shows_workflow() and node_id in self.document.graph:
            self.scene.set_node_preview(node_id, None)
            self.scene.set_node_history(node_id, history)
            self._offer_history(self.scene.selected_node_ids())

    def _on_final_picture(self, origin: object, node_id: int, image: QImage | None) -> None:
        """The run ended: the sampler's last step shows what the VAE decoded, if it did."""
        if origin is self.document and self._shows_workflow():
            cursor = self.scene.history_cursor(node_id)
            if cursor is not None:
                cursor.set_final(image)

    def _node_title(self, node_id: int) -> str:
        node = self.document.graph.node(node_id)
        return node.title or self.document.graph.spec(node_id).title

    def _offer_history(self, node_ids: list[int]) -> None:
        """The viewer's history controls follow the selected sampler (the first with one)."""
        for node_id in node_ids:
            cursor = self.scene.history_cursor(node_id)
            if cursor is not None:
                self.viewer.set_history(cursor, node_id, self._node_title(node_id))
                return
        self.viewer.set_history(None)

    def continue_from_step(self, sampler_id: int, step: int) -> int | None:
        """ "Continue from step k": a new KSampler (Advanced) fed by the sampler's step-k
        latent, as one undo step; returns its id (None when refused)."""
        from nodeui.canvas.edits import continue_from_step

        node_id = continue_from_step(self.scene, sampler_id, step)
        if node_id is not None:
            self.show_status(f"Added a sampler that continues from step {step}")
        return node_id

    def _on_run_ended(self, run: QueuedRun) -> None:
        self.viewer.live_ended()
        if run.images:
            self.viewer.set_images(run.images, run.workflow)
        seconds = f" in {run.seconds:.2f} s" if run.seconds is not None else ""
        message = f" ({run.message})" if run.message else ""
        status = STATUS_WORDS.get(run.status, run.status)
        self.show_status(f"{run.label}: {status}{seconds}{message}", 10_000)
        self._update_actions()

    def _on_run_invalid(self, run: QueuedRun, problems: tuple[Any, ...]) -> None:
        self.last_problems = tuple(problems)
        lines = "\n".join(f"• {p.message}" for p in problems)
        box = QMessageBox(
            QMessageBox.Icon.Warning,
            "The graph cannot run",
            f"{len(problems)} problem(s) are marked on their nodes; nothing was run.",
            QMessageBox.StandardButton.Ok,
            self,
        )
        box.setDetailedText(lines)
        box.setInformativeText(lines if len(problems) <= 6 else "")
        box.setWindowModality(Qt.WindowModality.NonModal)
        self.problem_box = box
        if run.status == INVALID:
            box.show()

    def _show_run_images(self, run: QueuedRun) -> None:
        if isinstance(run, QueuedRun) and run.images:
            self.viewer.set_images(run.images, run.workflow)

    def export_png(self, path: Path | None = None) -> Path | None:
        """Saves the image in the viewer with the workflow that made it embedded (the current
        graph when the image's run is unknown)."""
        if self.viewer.current_image() is None:
            QMessageBox.information(self, "Export PNG", "Run the graph first: no image yet.")
            return None
        if self.viewer.workflow is None:
            self.viewer.workflow = snapshot(self.document, self.view_state())
        return self.viewer.save_as(path)

    # --- settings --------------------------------------------------------------------------

    def _apply_run_settings(self) -> None:
        self.runs.device = self.settings.device
        self.runs.dtype = self.settings.dtype
        self.runs.previews = self.settings.preview_mode != "off"
        vae = self.settings.preview_mode == "vae"
        self.runs.preview_vae_every = self.settings.preview_vae_every if vae else 0

    def _announce_failed_packs(self) -> None:
        """Names each node pack that failed to load in the status bar (it stays until another
        message replaces it); Settings → Node packs shows the full list."""
        from nodes.packs import failures

        lines = failures(self.registry.packs)
        if lines:
            more = f" (and {len(lines) - 1} more)" if len(lines) > 1 else ""
            self.show_status(f"{lines[0]}{more}. See Settings → Node packs.", 0)

    def edit_settings(self) -> None:
        from nodes.packs import disabled_from_environment

        dialog = SettingsDialog(
            self.settings, self, self.registry.packs, disabled_from_environment()
        )
        if dialog.exec() == SettingsDialog.DialogCode.Accepted:
            self.apply_settings(dialog.result_settings())

    def apply_settings(self, settings: EditorSettings) -> None:
        """Stores new settings; model folders or cache budgets rebuild the registry and the
        executor (when no run is in progress; otherwise once the queue is empty)."""
        old, self.settings = self.settings, settings
        settings.save(self.store)
        self._apply_run_settings()
        if (old.model_folders, old.cache_budgets(), old.disabled_packs) == (
            settings.model_folders,
            settings.cache_budgets(),
            settings.disabled_packs,
        ):
            return
        if self.runs.busy:
            self.show_status("The new model folders and cache sizes apply when the queue is empty")
            self.runs.idle.connect(self._rebuild_engine, Qt.ConnectionType.SingleShotConnection)
        else:
            self._rebuild_engine()

    def _rebuild_engine(self) -> None:
        """A new registry and executor; the document is rebuilt on it (its undo history
        cannot follow, since the graph object changes)."""
        from core.graph.workflow import from_dict

        self.registry = build_registry(self.settings)
        self.bridge.shutdown()
        self.bridge = RunBridge(self.registry, self.settings.cache_budgets(), self)
        self.runs.set_bridge(self.bridge)
        self.library.set_registry(self.registry)
        old = self.document
        workflow = from_dict(snapshot(old, self.view_state()), self.registry)
        document = Document.from_workflow(workflow, old.path)
        document.recovered = old.dirty
        self.set_document(document)
        self._announce_failed_packs()

    # --- status and closing ----------------------------------------------------------------

    _shut_down = False

    def show_status(self, message: str, timeout_ms: int = 6000) -> None:
        self.statusBar().showMessage(message, timeout_ms)

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._shut_down:
            event.accept()
            return
        self.commit_pending_edits()
        if not self.files.maybe_save():
            event.ignore()
            return
        self.shutdown()
        event.accept()

    def shutdown(self, *, persist: bool = True) -> None:
        """Stops runs and the worker; with ``persist`` (a user's session, not a scripted
        one) saves the layout and deletes the recovery file: a clean exit leaves none."""
        self._shut_down = True
        self.autosaver.timer.stop()
        self.runs.cancel_all()
        self.bridge.shutdown()
        if persist:
            self.save_layout()
            self.recovery.discard()
