"""Temporary editors that exist only while the user types (or picks from a combo).

Nodes paint their editors themselves; a double-click on a value opens a ``QLineEdit`` (or a
``QPlainTextEdit`` for prompts) over the painted one, and Enter / focus-out commits it as one
``SetParam`` (Escape cancels). Combos open a menu of ``registry.choices(widget)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, QPoint, QPointF, Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QGraphicsProxyWidget, QLineEdit, QMenu, QPlainTextEdit, QWidget

from core.graph import types as t
from core.graph.commands import EditGroup, SetParam
from nodeui.canvas.items.editors import format_value
from nodeui.canvas.layout import MULTILINE, EditorRow

if TYPE_CHECKING:
    from nodeui.canvas.items.group import GroupItem
    from nodeui.canvas.items.node import NodeItem
    from nodeui.canvas.scene import GraphScene

_STYLE = (
    "QLineEdit, QPlainTextEdit { background: #15161a; color: #e6e8eb; border: 1px solid #6aa5e0;"
    " border-radius: 4px; padding: 1px 4px; font-size: 9pt; }"
)


class InlineEditor(QObject):
    """One open text editor over the canvas; commits or cancels exactly once."""

    def __init__(
        self,
        scene: GraphScene,
        widget: QLineEdit | QPlainTextEdit,
        commit: Callable[[str], None],
    ) -> None:
        super().__init__(scene)
        self.scene, self.widget, self._commit = scene, widget, commit
        self.done = False
        widget.setStyleSheet(_STYLE)
        self.proxy = QGraphicsProxyWidget()
        self.proxy.setWidget(widget)
        self.proxy.setZValue(100.0)
        scene.addItem(self.proxy)
        widget.installEventFilter(self)
        widget.selectAll()
        self.proxy.setFocus()
        widget.setFocus()
        scene.inline_editor = self

    def text(self) -> str:
        w = self.widget
        return w.text() if isinstance(w, QLineEdit) else w.toPlainText()

    def commit(self) -> None:
        if not self.done:
            self.done = True
            text = self.text()
            self._close()
            self._commit(text)

    def cancel(self) -> None:
        if not self.done:
            self.done = True
            self._close()

    def _close(self) -> None:
        if getattr(self.scene, "inline_editor", None) is self:
            self.scene.inline_editor = None
        self.widget.removeEventFilter(self)
        self.proxy.hide()
        self.scene.removeItem(self.proxy)
        self.proxy.deleteLater()
        self.deleteLater()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if isinstance(event, QKeyEvent) and event.type() == QEvent.Type.KeyPress:
            key, mods = event.key(), event.modifiers()
            if key == Qt.Key.Key_Escape:
                self.cancel()
                return True
            if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and (
                isinstance(self.widget, QLineEdit) or mods & Qt.KeyboardModifier.ControlModifier
            ):
                self.commit()
                return True
        elif event.type() == QEvent.Type.FocusOut:
            self.commit()
        return False


def parse_value(row: EditorRow, text: str) -> object:
    """The typed text as the widget's value; raises ValueError with a readable message."""
    kind = row.widget.type
    if kind == t.INT:
        try:
            return int(float(text.strip()))
        except ValueError:
            raise ValueError(f"{row.widget.name}: {text!r} is not a whole number") from None
    if kind == t.FLOAT:
        try:
            return float(text.strip())
        except ValueError:
            raise ValueError(f"{row.widget.name}: {text!r} is not a number") from None
    return text


def open_text(scene: GraphScene, item: NodeItem, row: EditorRow) -> InlineEditor:
    """Opens a line (or prompt) editor over ``row`` of ``item``; commit sets the param."""
    from nodeui.canvas.gestures import clamp

    node_id, name = item.node_id, row.widget.name
    value = scene.graph.node(node_id).params.get(name, row.widget.default)
    multiline = row.kind == MULTILINE
    widget: QLineEdit | QPlainTextEdit
    if multiline:
        widget = QPlainTextEdit()
        widget.setPlainText(str(value))
    else:
        widget = QLineEdit(
            format_value(row.widget, value) if row.widget.type != t.STRING else value
        )

    def commit(text: str) -> None:
        try:
            new = parse_value(row, text)
        except ValueError as exc:
            scene.refuse(str(exc), item.mapToScene(row.rect.center()))
            return
        if row.widget.type in (t.INT, t.FLOAT):
            new = clamp(row.widget, new)  # type: ignore[arg-type]
        if new != scene.graph.node(node_id).params.get(name):
            scene.push(SetParam(node_id, name, new, gesture=object()))

    editor = InlineEditor(scene, widget, commit)
    rect = row.rect
    editor.proxy.setPos(item.mapToScene(rect.topLeft()))
    widget.setFixedSize(int(rect.width()), int(max(rect.height(), 20)))
    return editor


def open_combo(scene: GraphScene, item: NodeItem, row: EditorRow, screen_pos: QPoint) -> QMenu:
    """Pops up the combo's choices (fetched now: dynamic lists such as checkpoint files)."""
    node_id, name = item.node_id, row.widget.name
    choices = scene.registry.choices(row.widget) or ()
    current = scene.graph.node(node_id).params.get(name)
    parent: QWidget | None = scene.views()[0] if scene.views() else None
    menu = QMenu(parent)
    menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    if not choices:
        menu.addAction("(nothing to choose)").setEnabled(False)
    for choice in choices:
        action = menu.addAction(choice)
        action.setCheckable(True)
        action.setChecked(choice == current)
        action.triggered.connect(
            lambda _checked=False, c=choice: scene.push(
                SetParam(node_id, name, c, gesture=object())
            )
        )
    scene.open_menu = menu
    menu.popup(screen_pos if isinstance(screen_pos, QPoint) else QPointF(screen_pos).toPoint())
    return menu


def rename_group(scene: GraphScene, item: GroupItem) -> InlineEditor:
    group_id = item.group_id

    def commit(text: str) -> None:
        if text.strip() and text != scene.graph.groups[group_id].title:
            scene.push(EditGroup(group_id, title=text.strip()))

    editor = InlineEditor(scene, QLineEdit(item.title), commit)
    rect = item.title_rect()
    editor.proxy.setPos(item.mapToScene(rect.topLeft()))
    editor.widget.setFixedSize(int(min(rect.width(), 320)), int(rect.height()))
    return editor
