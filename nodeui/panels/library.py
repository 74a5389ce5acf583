"""The node library: every node type by category, with a search box.

Double-click (or Enter) asks to add the node at the view centre; dragging carries the type id
as ``NODE_MIME`` so the canvas drop handler can add it where it is dropped. Typing in the search
box makes the best match (ranked as the canvas palette ranks) the current item, which is what
Enter adds: "load checkpoint" adds Load Checkpoint, not the first loader whose description
happens to hold both words.

Two more sections list subgraphs: the workflow's own definitions (an instance's type id, like
any node) and the user's library of saved ones, which drag their file as
``SUBGRAPH_FILE_MIME`` (adding one copies its definition into the workflow first).
"""

from __future__ import annotations

from PySide6.QtCore import QMimeData, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QLineEdit,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.graph.spec import NodeRegistry, NodeSpec

NODE_MIME = "application/x-latentloom-node-type"
#: A saved subgraph of the user's library: its file's path as UTF-8.
SUBGRAPH_FILE_MIME = "application/x-latentloom-subgraph-file"
_TYPE_ROLE = Qt.ItemDataRole.UserRole
_FILE_ROLE = Qt.ItemDataRole.UserRole + 2
#: The sections that list subgraphs, after the node categories.
WORKFLOW_SUBGRAPHS = "Subgraphs in this workflow"
SAVED_SUBGRAPHS = "Subgraph library"


class _NodeTree(QTreeWidget):
    """A tree whose node items drag their type id."""

    def mimeData(self, items: list[QTreeWidgetItem]) -> QMimeData:
        mime = QMimeData()
        files = [item.data(0, _FILE_ROLE) for item in items if item.data(0, _FILE_ROLE)]
        if files:
            mime.setData(SUBGRAPH_FILE_MIME, files[0].encode("utf-8"))
            return mime
        type_ids = [item.data(0, _TYPE_ROLE) for item in items if item.data(0, _TYPE_ROLE)]
        if type_ids:
            mime.setData(NODE_MIME, type_ids[0].encode("utf-8"))
            mime.setText(type_ids[0])
        return mime

    def mimeTypes(self) -> list[str]:
        return [NODE_MIME, SUBGRAPH_FILE_MIME]


class NodeLibrary(QWidget):
    """Categories and search over a registry; emits ``addNodeRequested(type_id)``, or
    ``addSavedSubgraphRequested(path)`` for a subgraph of the user's library."""

    addNodeRequested = Signal(str)
    addSavedSubgraphRequested = Signal(str)

    def __init__(self, registry: NodeRegistry, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search nodes…")
        self.search.setClearButtonEnabled(True)
        self.tree = _NodeTree()
        self.tree.setHeaderHidden(True)
        self.tree.setDragEnabled(True)
        self.tree.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.tree.itemActivated.connect(self._activated)
        self.search.textChanged.connect(self._filter)
        self.search.returnPressed.connect(self._add_first_match)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.search)
        layout.addWidget(self.tree)
        self._subgraphs: list[tuple[str, str, str]] = []
        self._saved: list[tuple[str, str, str]] = []
        self._specs: dict[str, NodeSpec] = {}
        self.set_registry(registry)

    def set_registry(self, registry: NodeRegistry) -> None:
        self.tree.clear()
        self._specs = {spec.type_id: spec for spec in registry}
        for category, specs in sorted(registry.categories().items(), key=_category_order):
            parent = QTreeWidgetItem([category])
            parent.setFlags(parent.flags() & ~Qt.ItemFlag.ItemIsDragEnabled)
            self.tree.addTopLevelItem(parent)
            for spec in specs:
                parent.addChild(_spec_item(spec))
        self._add_subgraph_sections()
        self.tree.expandAll()
        self._filter(self.search.text())

    def set_subgraphs(
        self, workflow: list[tuple[str, str, str]], saved: list[tuple[str, str, str]]
    ) -> None:
        """Lists the workflow's definitions (id, name, description) and the user's saved ones
        (file path, name, description)."""
        self._subgraphs, self._saved = list(workflow), list(saved)
        for i in reversed(range(self.tree.topLevelItemCount())):
            if self.tree.topLevelItem(i).text(0) in (WORKFLOW_SUBGRAPHS, SAVED_SUBGRAPHS):
                self.tree.takeTopLevelItem(i)
        self._add_subgraph_sections()
        self.tree.expandAll()
        self._filter(self.search.text())

    def _add_subgraph_sections(self) -> None:
        for title, entries, role in (
            (WORKFLOW_SUBGRAPHS, self._subgraphs, _TYPE_ROLE),
            (SAVED_SUBGRAPHS, self._saved, _FILE_ROLE),
        ):
            parent = QTreeWidgetItem([title])
            parent.setFlags(parent.flags() & ~Qt.ItemFlag.ItemIsDragEnabled)
            self.tree.addTopLevelItem(parent)
            for key, name, description in entries:
                item = QTreeWidgetItem([name])
                item.setData(0, role, key)
                item.setData(
                    0, Qt.ItemDataRole.UserRole + 1, f"{name} subgraph {description}".lower()
                )
                item.setToolTip(0, description or f"Subgraph {name!r}")
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsDragEnabled)
                parent.addChild(item)

    def subgraph_items(self, section: str) -> list[QTreeWidgetItem]:
        """The items of one subgraph section (``WORKFLOW_SUBGRAPHS`` or ``SAVED_SUBGRAPHS``)."""
        for i in range(self.tree.topLevelItemCount()):
            parent = self.tree.topLevelItem(i)
            if parent.text(0) == section:
                return [parent.child(j) for j in range(parent.childCount())]
        return []

    def node_items(self) -> list[QTreeWidgetItem]:
        out = []
        for i in range(self.tree.topLevelItemCount()):
            parent = self.tree.topLevelItem(i)
            out.extend(parent.child(j) for j in range(parent.childCount()))
        return out

    def visible_type_ids(self) -> list[str]:
        return [item.data(0, _TYPE_ROLE) for item in self.node_items() if not item.isHidden()]

    def _filter(self, text: str) -> None:
        words = text.lower().split()
        for i in range(self.tree.topLevelItemCount()):
            parent = self.tree.topLevelItem(i)
            shown = 0
            for j in range(parent.childCount()):
                item = parent.child(j)
                haystack = item.data(0, Qt.ItemDataRole.UserRole + 1)
                match = all(word in haystack for word in words)
                item.setHidden(not match)
                shown += match
            parent.setHidden(shown == 0)
        best = self._best_match(text) if words else None
        if best is not None:
            self.tree.setCurrentItem(best)
            self.tree.scrollToItem(best)

    def _best_match(self, text: str) -> QTreeWidgetItem | None:
        """The shown node item that ranks first for ``text``; the tree's own order is by
        category, which puts "Load CLIP" before "Load Checkpoint"."""
        # Imported here: the palette module lives in the canvas package, which the window
        # imports only when it makes its canvas.
        from nodeui.canvas.palette import rank

        shown = {}
        for item in self.node_items():
            spec = self._specs.get(item.data(0, _TYPE_ROLE))
            if spec is not None and not item.isHidden():
                shown[spec.type_id] = item
        ranked = rank(text, [self._specs[type_id] for type_id in shown])
        if ranked:
            return shown[ranked[0].type_id]
        return next((item for item in self.node_items() if not item.isHidden()), None)

    def _activated(self, item: QTreeWidgetItem, _column: int = 0) -> None:
        path = item.data(0, _FILE_ROLE)
        if path:
            self.addSavedSubgraphRequested.emit(path)
            return
        type_id = item.data(0, _TYPE_ROLE)
        if type_id:
            self.addNodeRequested.emit(type_id)

    def _add_first_match(self) -> None:
        """Enter in the search box adds the current item when it is shown (the best match,
        or the one the user moved to), else the first shown."""
        current = self.tree.currentItem()
        if current is not None and not current.isHidden() and current.parent() is not None:
            self._activated(current)
            return
        visible = [t for t in self.visible_type_ids() if t]
        if visible:
            self.addNodeRequested.emit(visible[0])


def _category_order(entry: tuple[str, list[NodeSpec]]) -> tuple[bool, str]:
    """Everyday categories first, the ``advanced/…`` ones after them, each set alphabetical."""
    category = entry[0]
    return category.split("/", 1)[0] == "advanced", category


def _spec_item(spec: NodeSpec) -> QTreeWidgetItem:
    item = QTreeWidgetItem([spec.title])
    item.setData(0, _TYPE_ROLE, spec.type_id)
    haystack = f"{spec.title} {spec.type_id} {spec.category} {spec.description}".lower()
    item.setData(0, Qt.ItemDataRole.UserRole + 1, haystack)
    item.setToolTip(0, spec.description or spec.title)
    item.setFlags(item.flags() | Qt.ItemFlag.ItemIsDragEnabled)
    return item
