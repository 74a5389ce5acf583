"""Temporary editors that exist only while the user types (or picks from a combo).

Nodes paint their editors themselves; a double-click on a value opens a ``QLineEdit`` (or a
``QPlainTextEdit`` for prompts) over the painted one. Text goes into the graph as it is typed,
one ``SetParam`` per keystroke merged into one undo step per visit, so the inspector, the title's
unsaved mark and every action see it at once; Escape takes the visit back. A number is applied
on Enter or focus-out (or when an action ends typing, ``GraphScene.commit_inline_editor``), and
one that breaks its widget's rules is never changed quietly: Enter shows the corrected value in
the field and says why, a second Enter takes it. Combos open a menu of
``registry.choices(widget)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, QPoint, QPointF, Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QGraphicsProxyWidget, QLineEdit, QMenu, QPlainTextEdit, QWidget

from core.graph import types as t
from core.graph.commands import EditGroup, EditNote, SetParam
from nodeui.canvas.items.editors import format_value
from nodeui.canvas.layout import MULTILINE, EditorRow
from nodeui.values import Conformed, conform, parse_number

if TYPE_CHECKING:
    from nodeui.canvas.items.group import GroupItem
    from nodeui.canvas.items.node import NodeItem
    from nodeui.canvas.items.note import NoteItem
    from nodeui.canvas.protocols import CanvasScene

_STYLE = (
    "QLineEdit, QPlainTextEdit { background: #15161a; color: #e6e8eb; border: 1px solid #6aa5e0;"
    " border-radius: 4px; padding: 1px 4px; font-size: 9pt; }"
)


class InlineEditor(QObject):
    """One open text editor over the canvas; commits or cancels exactly once.

    ``commit(text)`` applies the final text; ``live(text)``, when given, applies every change as
    it is typed and ``revert()`` takes those back on Escape; ``accept(text)`` may keep the editor
    open on Enter (False) after showing the user why.
    """

    def __init__(
        self,
        scene: CanvasScene,
        widget: QLineEdit | QPlainTextEdit,
        commit: Callable[[str], None],
        *,
        live: Callable[[str], None] | None = None,
        revert: Callable[[], None] | None = None,
        accept: Callable[[str], bool] | None = None,
    ) -> None:
        super().__init__(scene)
        self.scene, self.widget, self._commit = scene, widget, commit
        self._revert, self._accept = revert, accept
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
        if live is not None:
            changed = widget.textChanged
            changed.connect(lambda *_args: None if self.done else live(self.text()))

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
            if self._revert is not None:
                self._revert()

    def _enter(self) -> None:
        if self._accept is None or self._accept(self.text()):
            self.commit()

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
                self._enter()
                return True
        elif event.type() == QEvent.Type.FocusOut:
            self.commit()
        return False


def parse_value(row: EditorRow, text: str) -> object:
    """The typed text as the widget's value, within its rules; raises ValueError with a
    readable message. Use ``check_number`` to learn whether (and why) a number was corrected."""
    if row.widget.type in (t.INT, t.FLOAT):
        return check_number(row, text).value
    return text


def check_number(row: EditorRow, text: str) -> Conformed:
    """The typed number brought within the widget's rules, with the rule it broke if any."""
    return conform(row.widget, parse_number(row.widget, text))


def open_text(scene: CanvasScene, item: NodeItem, row: EditorRow) -> InlineEditor:
    """Opens a line (or prompt) editor over ``row`` of ``item``: text is applied as it is typed,
    numbers on Enter (corrected visibly when they break a rule)."""
    node_id, name, spec = item.node_id, row.widget.name, row.widget
    value = scene.graph.node(node_id).params.get(name, spec.default)
    at = item.mapToScene(row.rect.center())
    multiline = row.kind == MULTILINE
    widget: QLineEdit | QPlainTextEdit
    if multiline:
        widget = QPlainTextEdit()
        widget.setPlainText(str(value))
    else:
        widget = QLineEdit(format_value(spec, value) if spec.type != t.STRING else value)
    visit = object()  # one undo step per visit: every keystroke's SetParam merges into it

    def apply(new: object) -> None:
        if node_id in scene.graph and new != scene.graph.node(node_id).params.get(name):
            scene.push(SetParam(node_id, name, new, gesture=visit), at)

    if spec.type not in (t.INT, t.FLOAT):
        editor = InlineEditor(
            scene, widget, apply, live=apply, revert=lambda: apply(value), accept=None
        )
    else:

        def accept(text: str) -> bool:
            try:
                checked = check_number(row, text)
            except ValueError as exc:
                scene.refuse(str(exc), at)
                return False
            if checked.rule is None:
                return True
            shown = format_value(spec, checked.value)
            scene.refuse(f"{checked.message(spec, text.strip())}; Enter to keep it", at)
            if isinstance(widget, QLineEdit):
                widget.setText(shown)
                widget.selectAll()
            return False

        def commit(text: str) -> None:
            try:
                checked = check_number(row, text)
            except ValueError as exc:
                scene.refuse(str(exc), at)
                return
            if checked.rule is not None:
                scene.refuse(checked.message(spec, text.strip()), at)
            apply(checked.value)

        editor = InlineEditor(scene, widget, commit, accept=accept)
    rect = row.rect
    editor.proxy.setPos(item.mapToScene(rect.topLeft()))
    widget.setFixedSize(int(rect.width()), int(max(rect.height(), 20)))
    return editor


def open_combo(scene: CanvasScene, item: NodeItem, row: EditorRow, screen_pos: QPoint) -> QMenu:
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


def rename_group(scene: CanvasScene, item: GroupItem) -> InlineEditor:
    group_id = item.group_id

    def commit(text: str) -> None:
        if text.strip() and text != scene.graph.groups[group_id].title:
            scene.push(EditGroup(group_id, title=text.strip()))

    editor = InlineEditor(scene, QLineEdit(item.title), commit)
    rect = item.title_rect()
    editor.proxy.setPos(item.mapToScene(rect.topLeft()))
    editor.widget.setFixedSize(int(min(rect.width(), 320)), int(rect.height()))
    return editor


def edit_note(scene: CanvasScene, item: NoteItem) -> InlineEditor:
    """Opens a text editor over a note: what is typed shows at once and is one undo step per
    visit; Escape takes the visit back, Ctrl+Enter or a click elsewhere ends it."""
    note_id = item.note_id
    original = scene.graph.notes[note_id].text
    visit = object()

    def apply(text: str) -> None:
        if note_id in scene.graph.notes and text != scene.graph.notes[note_id].text:
            scene.push(EditNote(note_id, gesture=visit, text=text))

    widget = QPlainTextEdit()
    widget.setPlainText(original)
    editor = InlineEditor(scene, widget, apply, live=apply, revert=lambda: apply(original))
    rect = item.text_rect().adjusted(-4, -2, 4, 2)
    editor.proxy.setPos(item.mapToScene(rect.topLeft()))
    widget.setFixedSize(int(rect.width()), int(max(rect.height(), 40)))
    return editor
