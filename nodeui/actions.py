"""The window's actions, menus and toolbar, built from one table.

Shortcuts the canvas view installs itself (Tab, Delete, Ctrl+C/V/D, F, Home…) are only shown
in the menus (after a tab in the text), never registered twice: two owners of one key
sequence make Qt ignore both.

Every action first calls the handlers' ``commit_pending`` (what is typed in an open editor goes
into the graph), so Run, Save, Export, Copy, Quit… never act on a graph that lacks it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMenu, QSpinBox, QToolBar, QToolButton


@dataclass(frozen=True)
class ActionSpec:
    """One action: its name (key in ``EditorActions.by_name``), text, shortcut and slot."""

    name: str
    text: str
    slot: Callable[[], object]
    shortcut: str | QKeySequence.StandardKey | None = None
    #: Shown in the menu only: the canvas view owns this key.
    canvas_key: str | None = None
    tip: str = ""


class EditorActions:
    """Creates every action on ``window`` and lays out its menu bar and toolbar."""

    def __init__(self, window: QMainWindow, handlers: EditorHandlers) -> None:
        self.window = window
        self.by_name: dict[str, QAction] = {}
        h = handlers
        self._commit_pending = h.commit_pending
        K = QKeySequence.StandardKey
        file_specs = [
            ActionSpec("new", "&New", h.new, K.New),
            ActionSpec("open", "&Open…", h.open, K.Open),
            ActionSpec("save", "&Save", h.save, K.Save),
            ActionSpec("save_as", "Save &As…", h.save_as, "Ctrl+Shift+S"),
            ActionSpec(
                "export_png",
                "&Export PNG with Workflow…",
                h.export_png,
                "Ctrl+E",
                tip="Save the latest output image with this graph embedded",
            ),
            ActionSpec(
                "export_comfy_api",
                "Export to &ComfyUI (API format)…",
                h.export_comfy_api,
                tip="Write this graph as a ComfyUI API workflow (what its /prompt endpoint takes)",
            ),
            ActionSpec("settings", "Se&ttings…", h.settings, "Ctrl+,"),
            ActionSpec("quit", "&Quit", h.quit, K.Quit),
        ]
        edit_specs = [
            ActionSpec("undo", "&Undo", h.undo, K.Undo),
            ActionSpec("redo", "&Redo", h.redo, "Ctrl+Shift+Z"),
            ActionSpec("cut", "Cu&t", h.cut, K.Cut),
            ActionSpec("copy", "&Copy", h.copy, canvas_key="Ctrl+C"),
            ActionSpec("paste", "&Paste", h.paste, canvas_key="Ctrl+V"),
            ActionSpec(
                "paste_links", "Paste with &Input Links", h.paste_links, canvas_key="Ctrl+Shift+V"
            ),
            ActionSpec("duplicate", "&Duplicate", h.duplicate, canvas_key="Ctrl+D"),
            ActionSpec("delete", "De&lete", h.delete, canvas_key="Del"),
            ActionSpec("select_all", "Select &All", h.select_all, K.SelectAll),
            ActionSpec("bypass", "&Bypass", h.bypass, canvas_key="Ctrl+B"),
            ActionSpec("mute", "&Mute", h.mute, canvas_key="Ctrl+M"),
            ActionSpec("group", "&Group", h.group, canvas_key="Ctrl+G"),
        ]
        view_specs = [
            ActionSpec("add_node", "Add &Node…", h.add_node, canvas_key="Tab"),
            ActionSpec("frame_all", "Frame &All", h.frame_all, canvas_key="Home"),
            ActionSpec("frame_selected", "Frame &Selected", h.frame_selected, canvas_key="F"),
        ]
        run_specs = [
            ActionSpec("run", "&Run", h.run, "Ctrl+Return", tip="Queue a run of the graph"),
            ActionSpec("cancel", "&Cancel", h.cancel, "Ctrl+.", tip="Stop the running graph"),
            ActionSpec("cancel_all", "Cancel &All", h.cancel_all, "Ctrl+Shift+."),
        ]
        menubar = window.menuBar()
        file_menu = menubar.addMenu("&File")
        for spec in file_specs[:2]:
            file_menu.addAction(self._make(spec))
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(lambda: self.fill_recent(h.recent_paths()))
        self._open_recent = h.open_path
        for spec in file_specs[2:]:
            if spec.name in ("export_png", "settings", "quit"):
                file_menu.addSeparator()
            file_menu.addAction(self._make(spec))
        self._menu(menubar.addMenu("&Edit"), edit_specs, separators=("cut", "select_all", "bypass"))
        view_menu = self._menu(menubar.addMenu("&View"), view_specs)
        view_menu.addSeparator()
        self.view_menu = view_menu
        self.panels_menu = view_menu.addMenu("&Panels")
        self._menu(menubar.addMenu("&Run"), run_specs)
        run = self.by_name["run"]
        run.setShortcuts([QKeySequence("Ctrl+Return"), QKeySequence("Ctrl+Enter")])
        # Ctrl+Y as in ComfyUI and on Windows, Ctrl+Shift+Z as elsewhere: both redo.
        self.by_name["redo"].setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])

        self.toolbar = QToolBar("Main")
        self.toolbar.setObjectName("mainToolbar")
        for name in ("new", "open", "save", None, "undo", "redo", None, "run", "cancel"):
            if name is None:
                self.toolbar.addSeparator()
            else:
                self.toolbar.addAction(self.by_name[name])
        run_button = self.toolbar.widgetForAction(run)
        if isinstance(run_button, QToolButton):
            run_button.setObjectName("runButton")
        self.batch_count = QSpinBox()
        self.batch_count.setObjectName("batchCount")
        self.batch_count.setRange(1, 1000)
        self.batch_count.setPrefix("× ")
        self.batch_count.setToolTip(
            "Batch count: Run queues the graph this many times, applying each seed's after-run "
            "mode (randomize, increment) between them"
        )
        self.toolbar.insertWidget(self.by_name["cancel"], self.batch_count)
        window.addToolBar(self.toolbar)

    def _make(self, spec: ActionSpec) -> QAction:
        text = f"{spec.text}\t{spec.canvas_key}" if spec.canvas_key else spec.text
        action = QAction(text, self.window)
        action.setObjectName(f"action_{spec.name}")
        if spec.shortcut is not None:
            action.setShortcut(QKeySequence(spec.shortcut))
        if spec.tip:
            action.setToolTip(spec.tip)
            action.setStatusTip(spec.tip)
        action.triggered.connect(lambda _checked=False, slot=spec.slot: self.dispatch(slot))
        self.by_name[spec.name] = action
        return action

    def dispatch(self, slot: Callable[[], object]) -> object:
        """Runs an action's slot once the edits in progress are in the graph."""
        self._commit_pending()
        return slot()

    def _menu(
        self, menu: QMenu, specs: list[ActionSpec], separators: tuple[str, ...] = ()
    ) -> QMenu:
        for spec in specs:
            if spec.name in separators:
                menu.addSeparator()
            menu.addAction(self._make(spec))
        return menu

    def fill_recent(self, paths: list[Path]) -> None:
        self.recent_menu.clear()
        for path in paths:
            action = self.recent_menu.addAction(str(path))
            action.triggered.connect(
                lambda _checked=False, p=path: self.dispatch(lambda: self._open_recent(p))
            )
        if not paths:
            self.recent_menu.addAction("(none)").setEnabled(False)


@dataclass(frozen=True)
class EditorHandlers:
    """What the actions call; the window fills it in. ``commit_pending`` runs before each."""

    new: Callable[[], object]
    open: Callable[[], object]
    open_path: Callable[[Path], object]
    recent_paths: Callable[[], list[Path]]
    save: Callable[[], object]
    save_as: Callable[[], object]
    export_png: Callable[[], object]
    settings: Callable[[], object]
    quit: Callable[[], object]
    undo: Callable[[], object]
    redo: Callable[[], object]
    cut: Callable[[], object]
    copy: Callable[[], object]
    paste: Callable[[], object]
    paste_links: Callable[[], object]
    duplicate: Callable[[], object]
    delete: Callable[[], object]
    select_all: Callable[[], object]
    bypass: Callable[[], object]
    mute: Callable[[], object]
    group: Callable[[], object]
    add_node: Callable[[], object]
    frame_all: Callable[[], object]
    frame_selected: Callable[[], object]
    run: Callable[[], object]
    cancel: Callable[[], object]
    cancel_all: Callable[[], object]
    commit_pending: Callable[[], object] = lambda: None
    export_comfy_api: Callable[[], object] = lambda: None
