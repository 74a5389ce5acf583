"""Subgraphs in the editor: Convert to Subgraph (Ctrl+Shift+G), entering an instance with a
double-click, and the breadcrumb bar that shows where one is and leads back out (with a button
for the subgraph's inputs and outputs). The library's subgraph sections and the user's saved
subgraphs are ``nodeui.subgraph_library``'s; the inputs and outputs dialog is
``nodeui.subgraph_sockets``'.

Inside a definition the canvas shows the definition's own graph (its boundary nodes are the
subgraph's inputs and outputs); every edit there is an ordinary command on that graph, pushed
on the document's one undo stack, so it changes every instance and undoes as one step.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QHBoxLayout, QLabel, QToolButton, QVBoxLayout, QWidget

from core.graph.model import Graph
from core.graph.subgraph_commands import ConvertToSubgraph, UnpackSubgraph
from nodeui.subgraph_library import SubgraphShelf
from nodeui.subgraph_sockets import SubgraphSocketsDialog
from nodeui.undo import push

SEPARATOR = "›"


class BreadcrumbBar(QWidget):
    """ "Workflow › Prompt block › Inner": each crumb but the last leads back to its level."""

    levelChosen = Signal(int)
    socketsRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("subgraphBreadcrumbs")
        outer = QHBoxLayout(self)
        outer.setContentsMargins(8, 4, 8, 4)
        self._layout = QHBoxLayout()
        self._layout.setSpacing(4)
        outer.addLayout(self._layout, 1)
        self.sockets_button = QToolButton()
        self.sockets_button.setText("Inputs and Outputs…")
        self.sockets_button.clicked.connect(self.socketsRequested.emit)
        outer.addWidget(self.sockets_button)
        self.crumbs: list[QToolButton] = []
        self.set_path(["Workflow"])

    def set_path(self, names: list[str]) -> None:
        while self._layout.count():
            item = self._layout.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        self.crumbs = []
        for level, name in enumerate(names):
            if level:
                self._layout.addWidget(QLabel(SEPARATOR))
            button = QToolButton()
            button.setText(name)
            button.setAutoRaise(True)
            button.setEnabled(level < len(names) - 1)
            button.clicked.connect(lambda _=False, lv=level: self.levelChosen.emit(lv))
            self.crumbs.append(button)
            self._layout.addWidget(button)
        self._layout.addStretch(1)
        self.setVisible(len(names) > 1)


class SubgraphNavigator(QObject):
    """Which graph of the document the canvas shows: the workflow's, or a definition's."""

    #: The canvas shows another level (a fresh scene): what a run showed there is redrawn.
    levelShown = Signal()

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.window = window
        #: The definition ids entered, outermost first (empty: the workflow's own graph).
        self.path: list[str] = []
        #: For each level entered, the instance node it was entered through (None when not
        #: known: entered without a click, with several instances of the definition there).
        self.instances: list[int | None] = []
        self.bar = BreadcrumbBar()
        self.bar.levelChosen.connect(self.leave_to)
        container = QWidget()
        layout = QVBoxLayout(container)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.bar)
        layout.addWidget(window.view, 1)
        window.setCentralWidget(container)
        self.convert_action = QAction("Convert to Subgraph", window)
        self.convert_action.setShortcut(QKeySequence("Ctrl+Shift+G"))
        self.convert_action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        self.convert_action.triggered.connect(self.convert_selection)
        self.unpack_action = QAction("Unpack Subgraph", window)
        self.unpack_action.triggered.connect(self.unpack_selection)
        window.addAction(self.convert_action)
        window.addAction(self.unpack_action)
        self.bar.socketsRequested.connect(lambda: self.edit_sockets(self.path[-1]))
        self.shelf = SubgraphShelf(window)
        self.dialog: SubgraphSocketsDialog | None = None
        for menu_action in window.menuBar().actions():
            if menu_action.text().replace("&", "") == "Edit" and menu_action.menu():
                menu_action.menu().addSeparator()
                menu_action.menu().addAction(self.convert_action)
                menu_action.menu().addAction(self.unpack_action)

    # --- where the canvas is ---------------------------------------------------------------

    @property
    def graph(self) -> Graph:
        """The graph the canvas shows."""
        graph = self.window.document.graph
        return graph.subgraphs.get(self.path[-1]).graph if self.path else graph

    @property
    def instance_path(self) -> tuple[int, ...] | None:
        """The path of the shown instance (top-level instance id, …), as run events name
        the nodes inside it; () at the top level, None when an instance is not known."""
        if any(instance is None for instance in self.instances):
            return None
        return tuple(self.instances)  # type: ignore[arg-type]

    def _instance_entered(self, def_id: str) -> int | None:
        """The instance of ``def_id`` just double-clicked, else the only one on the canvas."""
        scene = self.window.scene
        graph = scene.graph
        pos = getattr(scene, "last_scene_pos", None)
        item = scene.item_at(pos) if pos is not None else None
        node_id = getattr(item, "node_id", None)
        if node_id is not None and node_id in graph and graph.node(node_id).type_id == def_id:
            return node_id
        found = [node.id for node in graph if node.type_id == def_id]
        return found[0] if len(found) == 1 else None

    def watch(self, scene: Any) -> None:
        """Lets double-clicks on instances in ``scene`` enter them, and its node menus save
        or edit them."""
        scene.subgraphRequested.connect(self.enter)
        scene.subgraphActionRequested.connect(self._menu_action)

    def reset(self) -> None:
        """A new document: back at its top level."""
        self.path = []
        self.instances = []
        self._update_bar()
        if self.dialog is not None:
            self.dialog.close()
        self.shelf.follow(self.window.document.graph)

    def enter(self, def_id: str) -> None:
        self.window.commit_pending_edits()
        self.instances.append(self._instance_entered(def_id))
        self.path.append(def_id)
        self._show()

    def leave_to(self, level: int) -> None:
        """Goes back to breadcrumb ``level`` (0: the workflow)."""
        self.window.commit_pending_edits()
        del self.path[level:]
        del self.instances[level:]
        self._show()

    def _show(self) -> None:
        window = self.window
        graph = self.graph
        old = window.scene
        old.detach()
        window.scene = window._scene_class(graph, window.registry, window.document.undo_stack)
        window.view.setScene(window.scene)
        old.deleteLater()
        window.scene.selectionNodesChanged.connect(window.inspector.show_selection)
        window.scene.selectionNodesChanged.connect(window._offer_history)
        window.scene.statusMessage.connect(window.show_status)
        self.watch(window.scene)
        window.inspector.set_document(graph, window.document.undo_stack, window.registry)
        window.image_inputs.follow(window.scene)  # Load Image nodes inside show their pictures
        self._update_bar()
        self.levelShown.emit()
        QTimer.singleShot(0, window.view.frame_all)

    def _update_bar(self) -> None:
        library = self.window.document.graph.subgraphs
        names = ["Workflow"] + [library.get(d).name for d in self.path if d in library]
        self.bar.set_path(names)

    # --- actions ---------------------------------------------------------------------------

    def _menu_action(self, action: str, def_id: str) -> None:
        if action == "save":
            self.shelf.save(def_id)
        elif action == "sockets":
            self.edit_sockets(def_id)

    def edit_sockets(self, def_id: str) -> SubgraphSocketsDialog:
        """Opens the inputs and outputs dialog of definition ``def_id`` (one at a time)."""
        if self.dialog is not None:
            self.dialog.close()
        self.dialog = SubgraphSocketsDialog(self.window, def_id)
        self.dialog.show()
        return self.dialog

    def convert_selection(self) -> None:
        window = self.window
        window.commit_pending_edits()
        command = ConvertToSubgraph(window.scene.selected_node_ids(), "Subgraph")
        error = push(window.document.undo_stack, window.scene.graph, command)
        if error:
            window.show_status(error)

    def unpack_selection(self) -> None:
        window = self.window
        window.commit_pending_edits()
        graph = window.scene.graph
        for node_id in window.scene.selected_node_ids():
            if graph.node(node_id).type_id in graph.subgraphs:
                error = push(window.document.undo_stack, graph, UnpackSubgraph(node_id))
                if error:
                    window.show_status(error)
