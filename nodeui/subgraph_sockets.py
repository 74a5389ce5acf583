"""A dialog for a subgraph's declared inputs and outputs: rename (edit an entry in place),
reorder, add, remove, and promote an inner widget to an input of every instance.

Each change is one command of ``core.graph.subgraph_commands`` on the document's undo stack;
the lists follow the definition, so Undo in the window shows here too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from core.graph import types as t
from core.graph.commands import Command
from core.graph.model import BOUNDARY_IDS
from core.graph.spec import WidgetInput
from core.graph.subgraph_commands import (
    AddSubgraphSocket,
    MoveSubgraphSocket,
    PromoteWidget,
    RemoveSubgraphSocket,
    RenameSubgraphSocket,
)
from nodeui.undo import push

_NAME_ROLE = Qt.ItemDataRole.UserRole
#: Types offered for a new input or output besides those the node catalogue uses.
_VALUE_TYPES = (t.INT, t.FLOAT, t.STRING, t.BOOLEAN)


class SocketSide(QGroupBox):
    """One side ("inputs" or "outputs"): the list and its buttons."""

    def __init__(self, side: str, kinds: list[str], act: Callable[[Command], bool]) -> None:
        super().__init__("Inputs" if side == "inputs" else "Outputs")
        self.side, self._act, self.def_id = side, act, ""
        self.list = QListWidget()
        self.list.setObjectName(f"{side}List")
        self.list.itemChanged.connect(self._renamed)
        self.name = QLineEdit()
        self.name.setPlaceholderText("New name")
        self.name.setMinimumWidth(120)
        self.kind = QComboBox()
        self.kind.addItems(kinds)
        self.add = QPushButton("Add")
        self.remove = QPushButton("Remove")
        self.up = QPushButton("Up")
        self.down = QPushButton("Down")
        self.add.clicked.connect(self._add)
        self.name.returnPressed.connect(self._add)
        self.remove.clicked.connect(self._remove)
        self.up.clicked.connect(lambda: self._move(-1))
        self.down.clicked.connect(lambda: self._move(1))
        buttons = QHBoxLayout()
        for button in (self.up, self.down, self.remove):
            buttons.addWidget(button)
        adding = QHBoxLayout()
        adding.addWidget(self.name, 1)
        adding.addWidget(self.kind)
        adding.addWidget(self.add)
        layout = QVBoxLayout(self)
        layout.addWidget(self.list, 1)
        layout.addLayout(buttons)
        layout.addLayout(adding)

    def show_sockets(self, def_id: str, sockets: list[Any]) -> None:
        self.def_id = def_id
        row = self.list.currentRow()
        self.list.blockSignals(True)
        self.list.clear()
        for socket in sockets:
            item = QListWidgetItem(socket.name)
            item.setData(_NAME_ROLE, socket.name)
            item.setToolTip(socket.type)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
            self.list.addItem(item)
        self.list.blockSignals(False)
        self.list.setCurrentRow(min(row, self.list.count() - 1))

    def names(self) -> list[str]:
        return [self.list.item(i).data(_NAME_ROLE) for i in range(self.list.count())]

    def _renamed(self, item: QListWidgetItem) -> None:
        old, new = item.data(_NAME_ROLE), item.text().strip()
        if new and new != old:
            self._act(RenameSubgraphSocket(self.def_id, self.side, old, new))

    def _add(self) -> None:
        name = self.name.text().strip()
        if name and self._act(
            AddSubgraphSocket(self.def_id, self.side, name, self.kind.currentText())
        ):
            self.name.clear()

    def _remove(self) -> None:
        item = self.list.currentItem()
        if item is not None:
            self._act(RemoveSubgraphSocket(self.def_id, self.side, item.data(_NAME_ROLE)))

    def _move(self, step: int) -> None:
        row = self.list.currentRow()
        if row < 0 or not 0 <= row + step < self.list.count():
            return
        name = self.list.item(row).data(_NAME_ROLE)
        if self._act(MoveSubgraphSocket(self.def_id, self.side, name, row + step)):
            self.list.setCurrentRow(row + step)


class SubgraphSocketsDialog(QDialog):
    """Edits definition ``def_id``'s inputs and outputs through ``window``'s undo stack."""

    def __init__(self, window: Any, def_id: str, parent: QWidget | None = None) -> None:
        super().__init__(parent or window)
        self.window, self.def_id = window, def_id
        self.setObjectName("subgraphSocketsDialog")
        library = window.document.graph.subgraphs
        kinds = sorted(
            {o.type for spec in window.registry for o in spec.outputs if o.type != t.ANY}
            | set(_VALUE_TYPES)
        )
        self.inputs = SocketSide("inputs", kinds, self._push)
        self.outputs = SocketSide("outputs", kinds, self._push)
        self.widget_choice = QComboBox()
        self.promote = QPushButton("Promote")
        self.promote.clicked.connect(self._promote)
        self.problem = QLabel()
        self.problem.setObjectName("subgraphSocketsProblem")
        self.problem.setWordWrap(True)
        promote_row = QHBoxLayout()
        promote_row.addWidget(QLabel("Inner widget:"))
        promote_row.addWidget(self.widget_choice, 1)
        promote_row.addWidget(self.promote)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        grid = QGridLayout(self)
        grid.addWidget(self.inputs, 0, 0)
        grid.addWidget(self.outputs, 0, 1)
        grid.addLayout(promote_row, 1, 0, 1, 2)
        grid.addWidget(self.problem, 2, 0, 1, 2)
        grid.addWidget(close, 3, 0, 1, 2)
        self._unsubscribe: Callable[[], None] | None = library.subscribe(self._changed)
        self.finished.connect(self._stop_following)
        self.refresh()

    def _stop_following(self, _result: int = 0) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def _changed(self, def_id: str) -> None:
        if def_id == self.def_id and self.def_id in self.window.document.graph.subgraphs:
            self.refresh()

    def refresh(self) -> None:
        definition = self.window.document.graph.subgraphs.get(self.def_id)
        self.setWindowTitle(f"Inputs and Outputs of {definition.name!r}")
        self.inputs.show_sockets(self.def_id, definition.inputs)
        self.outputs.show_sockets(self.def_id, definition.outputs)
        self.widget_choice.clear()
        inner = definition.graph
        for node in inner:
            if node.id in BOUNDARY_IDS:
                continue
            spec = inner.spec(node.id)
            title = node.title or spec.title
            for widget in spec.inputs:
                if isinstance(widget, WidgetInput) and inner.link_to(node.id, widget.name) is None:
                    self.widget_choice.addItem(
                        f"{title} #{node.id} › {widget.name}", (node.id, widget.name)
                    )
        self.promote.setEnabled(self.widget_choice.count() > 0)

    def _push(self, command: Command) -> bool:
        """Does one edit; a refused one says why under the lists and changes nothing."""
        self.window.commit_pending_edits()
        error = push(self.window.document.undo_stack, self.window.scene.graph, command)
        self.problem.setText(error or "")
        self.refresh()
        return error is None

    def _promote(self) -> None:
        choice = self.widget_choice.currentData()
        if choice is not None:
            self._push(PromoteWidget(self.def_id, choice[0], choice[1]))
