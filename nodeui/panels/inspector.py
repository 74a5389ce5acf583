"""The inspector: every param of the selected node with an editor that fits its spec.

Spin boxes take the widget's range and step, combos their choices (``registry.choices`` for
dynamic lists such as checkpoint files), prompts get multi-line text, seeds get their
fixed / randomize / increment mode. Every edit is a core command pushed through
``nodeui.undo.push``, so it is undoable and merges like the canvas's edits; the inspector
observes the graph and refreshes when a value changes anywhere else.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtGui import QUndoStack
from PySide6.QtWidgets import (
    QFormLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QScrollArea,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from core.graph.commands import Command, SetNodeAttribute, SetParam
from core.graph.errors import GraphError
from core.graph.model import (
    Graph,
    GraphChange,
    LinkAdded,
    LinkRemoved,
    NodeChanged,
    NodeRemoved,
    ParamChanged,
)
from core.graph.spec import NodeRegistry, WidgetInput
from nodeui import undo
from nodeui.panels.param_editors import ParamEditor, SeedRow, make_editor
from nodeui.runstate import control_mode


def push_command(stack: QUndoStack, graph: Graph, command: Command) -> str | None:
    """Pushes through ``nodeui.undo.push``; the refusal's message, or None when applied."""
    try:
        result = undo.push(stack, graph, command)
    except GraphError as exc:
        return str(exc)
    return result if isinstance(result, str) else None


class Inspector(QWidget):
    """Edits the params of one node of the current document."""

    #: A refused edit's message, for the status bar.
    statusMessage = Signal(str)
    #: (node id, field name): "Sweep this field…" was chosen on a field's label.
    sweepRequested = Signal(int, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.graph: Graph | None = None
        self.stack: QUndoStack | None = None
        self.registry: NodeRegistry | None = None
        self.node_id: int | None = None
        self.editors: dict[str, ParamEditor] = {}
        self.seed_rows: dict[str, SeedRow] = {}
        #: Rows other parts of the editor add under a node's fields: ``add(form, node_id)``
        #: (the picture buttons of image nodes).
        self.extra_rows: list[Callable[[QFormLayout, int], None]] = []
        self._unsubscribe: Callable[[], None] | None = None
        self.heading = QLabel()
        self.heading.setObjectName("inspectorTitle")
        self.heading.setWordWrap(True)
        self.hint = QLabel("Select a node to edit its parameters.")
        self.hint.setObjectName("inspectorHint")
        self.hint.setWordWrap(True)
        self.title_edit = QLineEdit()
        self.title_edit.setPlaceholderText("Title")
        self.title_edit.editingFinished.connect(self._rename)
        self.form_host = QWidget()
        self.form = QFormLayout(self.form_host)
        scroll = QScrollArea()
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.form_host)
        layout = QVBoxLayout(self)
        layout.addWidget(self.heading)
        layout.addWidget(self.hint)
        layout.addWidget(self.title_edit)
        layout.addWidget(scroll, 1)
        self._rebuild()

    def set_document(self, graph: Graph, stack: QUndoStack, registry: NodeRegistry) -> None:
        """Follows another graph (a new or opened document)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
        self.graph, self.stack, self.registry = graph, stack, registry
        self._unsubscribe = graph.subscribe(self._on_change)
        self.show_node(None)

    def show_selection(self, node_ids: list[int]) -> None:
        self.show_node(node_ids[0] if len(node_ids) == 1 else None)

    def show_node(self, node_id: int | None) -> None:
        if self.graph is None or node_id not in self.graph:
            node_id = None
        self.node_id = node_id
        self._rebuild()

    # --- building --------------------------------------------------------------------------

    def _rebuild(self) -> None:
        while self.form.rowCount():
            self.form.removeRow(0)
        self.editors.clear()
        self.seed_rows.clear()
        graph, node_id = self.graph, self.node_id
        if graph is None or node_id is None or self.registry is None:
            self.heading.setText("Inspector")
            self.hint.setText("Select a node to edit its parameters.")
            self.title_edit.hide()
            return
        spec = graph.spec(node_id)
        node = graph.node(node_id)
        self.heading.setText(f"{spec.title}  #{node_id}")
        self.hint.setText(spec.description or spec.category)
        self.title_edit.show()
        self.title_edit.setText(node.title or "")
        if not spec.widgets:
            self.form.addRow(QLabel("This node has no parameters."))
        for widget in spec.widgets:
            editor = make_editor(widget, self.registry)
            editor.set_value(node.params.get(widget.name, widget.default))
            editor.edited.connect(
                lambda value, gesture, name=widget.name: self._edit(name, value, gesture)
            )
            editor.corrected.connect(lambda text, e=editor: self._show_correction(e, text))
            self.editors[widget.name] = editor
            row: QWidget = editor.widget
            if widget.control_after_run:
                seed_row = SeedRow(editor)
                seed_row.set_mode(control_mode(graph, node_id, widget.name))
                seed_row.modeChosen.connect(
                    lambda mode, name=widget.name: self._set_mode(name, mode)
                )
                seed_row.randomizeNow.connect(lambda spec=widget: self._randomize(spec))
                self.seed_rows[widget.name] = seed_row
                row = seed_row
            label = QLabel(widget.name.replace("_", " "))
            label.setToolTip(widget.description or widget.name)
            label.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
            label.customContextMenuRequested.connect(
                lambda pos, lb=label, name=widget.name: self._field_menu(lb, pos, name)
            )
            editor.widget.setToolTip(widget.description or widget.name)
            self.form.addRow(label, row)
        for add_rows in self.extra_rows:
            add_rows(self.form, node_id)
        self._mark_links()

    def _field_menu(self, label: QLabel, pos: QPoint, name: str) -> None:
        """A field's context menu: sweep it (not when a link drives it)."""
        if self.graph is None or self.node_id is None:
            return
        menu = QMenu(label)
        action = menu.addAction("Sweep this field…")
        linked = self.graph.link_to(self.node_id, name) is not None
        action.setEnabled(not linked)
        node_id = self.node_id
        action.triggered.connect(lambda: self.sweepRequested.emit(node_id, name))
        menu.popup(label.mapToGlobal(pos))

    def _mark_links(self) -> None:
        """A widget driven by a link shows it and cannot be edited here."""
        if self.graph is None or self.node_id is None:
            return
        for name, editor in self.editors.items():
            link = self.graph.link_to(self.node_id, name)
            editor.widget.setEnabled(link is None)
            tip = editor.spec.description or name
            if link is not None:
                tip = f"driven by the link from node {link.src} ({link.src_output})"
            editor.widget.setToolTip(tip)

    # --- edits -----------------------------------------------------------------------------

    def commit_pending_edits(self) -> None:
        """Applies what is still being typed (a number not yet confirmed, the title) and starts
        a new undo step for whatever is typed next (an action such as Save is a boundary)."""
        if self.graph is None or self.node_id is None or self.node_id not in self.graph:
            return
        for editor in list(self.editors.values()):
            if editor.widget.isEnabled():
                editor.commit_typing()
            editor.new_gesture()
        if not self.title_edit.isHidden():
            self._rename()

    def _show_correction(self, editor: ParamEditor, text: str) -> None:
        """A typed value was corrected: says so in the status bar and beside the field."""
        self.statusMessage.emit(text)
        widget = editor.widget
        if widget.isVisible():
            QToolTip.showText(widget.mapToGlobal(QPoint(0, widget.height())), text, widget)

    def _push(self, command: Command) -> None:
        if self.graph is None or self.stack is None:
            return
        error = push_command(self.stack, self.graph, command)
        if error:
            self.statusMessage.emit(error)
            self._refresh_values()

    def _edit(self, name: str, value: Any, gesture: object) -> None:
        if self.node_id is not None:
            self._push(SetParam(self.node_id, name, value, gesture))

    def _set_mode(self, name: str, mode: str) -> None:
        if self.graph is None or self.node_id is None:
            return
        ui = dict(self.graph.node(self.node_id).ui)
        modes = dict(ui.get("control_after_run") or {})
        modes[name] = mode
        ui["control_after_run"] = modes
        self._push(SetNodeAttribute([self.node_id], "ui", ui))

    def _randomize(self, spec: WidgetInput) -> None:
        if self.node_id is None:
            return
        low = int(spec.min) if spec.min is not None else 0
        high = int(spec.max) if spec.max is not None else 2**53 - 1
        self._push(SetParam(self.node_id, spec.name, random.randint(low, high), object()))

    def _rename(self) -> None:
        if self.graph is None or self.node_id is None:
            return
        title = self.title_edit.text().strip() or None
        if title != self.graph.node(self.node_id).title:
            self._push(SetNodeAttribute([self.node_id], "title", title))

    # --- observing the graph ---------------------------------------------------------------

    def _on_change(self, change: GraphChange) -> None:
        node_id = self.node_id
        if node_id is None or self.graph is None:
            return
        if isinstance(change, NodeRemoved) and change.node_id == node_id:
            self.show_node(None)
        elif isinstance(change, ParamChanged) and change.node_id == node_id:
            editor = self.editors.get(change.name)
            if editor is not None:
                editor.set_value(self.graph.node(node_id).params.get(change.name))
        elif isinstance(change, NodeChanged) and change.node_id == node_id:
            node = self.graph.node(node_id)
            if change.attribute == "title" and not self.title_edit.hasFocus():
                self.title_edit.setText(node.title or "")
            elif change.attribute == "ui":
                for name, row in self.seed_rows.items():
                    row.set_mode(control_mode(self.graph, node_id, name))
        elif isinstance(change, (LinkAdded, LinkRemoved)) and change.link.dst == node_id:
            self._mark_links()

    def _refresh_values(self) -> None:
        if self.graph is None or self.node_id is None:
            return
        params = self.graph.node(self.node_id).params
        for name, editor in self.editors.items():
            editor.set_value(params.get(name))
