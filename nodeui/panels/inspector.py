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

from PySide6.QtCore import QObject, QPoint, Qt, Signal
from PySide6.QtGui import QFocusEvent, QUndoStack, QValidator
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QPlainTextEdit,
    QScrollArea,
    QSpinBox,
    QToolButton,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from core.graph import types as t
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
from nodeui.runstate import CONTROL_MODES, control_mode
from nodeui.values import conform, format_number, parse_number

_INT32 = 2**31 - 1
_FLOAT_LIMIT = 1e12


def push_command(stack: QUndoStack, graph: Graph, command: Command) -> str | None:
    """Pushes through ``nodeui.undo.push``; the refusal's message, or None when applied."""
    try:
        result = undo.push(stack, graph, command)
    except GraphError as exc:
        return str(exc)
    return result if isinstance(result, str) else None


class _RuleChecks:
    """What the inspector's spin boxes share: any number may be typed (a minus sign, a value
    out of range, a size off its step grid), and when editing ends one that breaks a rule is
    replaced by the nearest allowed value, which the field shows, and ``corrected`` says why
    (instead of Qt's silent refusal of the keystroke or return to the previous value)."""

    spec: WidgetInput

    def rule_state(self, text: str) -> QValidator.State:
        body = self.body(text)
        if body in ("", "-", "+", "\u2212", ".", "-."):
            return QValidator.State.Intermediate
        try:
            value = parse_number(self.spec, body)
        except ValueError:
            return QValidator.State.Invalid
        ok = conform(self.spec, value).rule is None
        return QValidator.State.Acceptable if ok else QValidator.State.Intermediate

    def body(self, text: str) -> str:
        return text.strip()

    def rule_fixup(self, text: str) -> str | None:
        """The corrected text (None when nothing can be read from ``text``), reported."""
        try:
            value = parse_number(self.spec, self.body(text))
        except ValueError:
            return None
        checked = conform(self.spec, value)
        if checked.rule is not None:
            self.corrected.emit(checked.message(self.spec, self.body(text)))  # type: ignore[attr-defined]
        return self.show_number(checked.value)

    def show_number(self, value: float) -> str:
        return format_number(self.spec, value)


class RuleSpinBox(_RuleChecks, QSpinBox):
    """A 32-bit spin box that corrects a typed value visibly (see ``_RuleChecks``)."""

    corrected = Signal(str)

    def __init__(self, spec: WidgetInput, low: int, high: int, step: int) -> None:
        super().__init__()
        self.spec = spec
        self.setRange(low, high)
        self.setSingleStep(step)

    def validate(self, text: str, pos: int) -> object:
        return self.rule_state(text), text, pos

    def fixup(self, text: str) -> str:
        fixed = self.rule_fixup(text)
        return fixed if fixed is not None else str(self.value())

    def valueFromText(self, text: str) -> int:
        try:
            return int(conform(self.spec, parse_number(self.spec, text)).value)
        except ValueError:
            return self.value()


class RuleDoubleSpinBox(_RuleChecks, QDoubleSpinBox):
    """A float spin box that corrects a value out of range visibly (see ``_RuleChecks``)."""

    corrected = Signal(str)

    def __init__(self, spec: WidgetInput) -> None:
        super().__init__()
        self.spec = spec

    def validate(self, text: str, pos: int) -> object:
        _whole, point, fraction = self.body(text).partition(".")
        if point and len(fraction.rstrip()) > self.decimals():
            # refused as it is typed, as Qt does, rather than rounded away when editing ends
            return QValidator.State.Invalid, text, pos
        return self.rule_state(text), text, pos

    def fixup(self, text: str) -> str:
        fixed = self.rule_fixup(text)
        return fixed if fixed is not None else self.textFromValue(self.value())

    def show_number(self, value: float) -> str:
        return self.textFromValue(value)

    def valueFromText(self, text: str) -> float:
        try:
            return float(conform(self.spec, parse_number(self.spec, text)).value)
        except ValueError:
            return self.value()


class BigIntSpinBox(QAbstractSpinBox):
    """A spin box for whole numbers beyond 32 bits (seeds go up to 2**64 − 1)."""

    valueChanged = Signal(object)
    #: A typed value was replaced by the nearest allowed one; the sentence says why.
    corrected = Signal(str)

    def __init__(self, minimum: int, maximum: int, step: int = 1) -> None:
        super().__init__()
        self._min, self._max, self._step, self._value = minimum, maximum, max(1, step), minimum
        #: The field's name in ``corrected``'s sentences.
        self.label = ""
        self.lineEdit().textEdited.connect(self._parse)
        self.editingFinished.connect(self.interpretText)
        self.setKeyboardTracking(True)
        self._show()

    def value(self) -> int:
        return self._value

    def setValue(self, value: int) -> None:
        value = max(self._min, min(self._max, int(value)))
        changed = value != self._value
        self._value = value
        self._show()
        if changed:
            self.valueChanged.emit(value)

    def _show(self) -> None:
        if self.lineEdit().text() != str(self._value):
            self.lineEdit().setText(str(self._value))

    def _parse(self, text: str) -> None:
        try:
            value = int(text)
        except ValueError:
            return
        if self._min <= value <= self._max and value != self._value:
            self._value = value
            self.valueChanged.emit(value)

    def stepBy(self, steps: int) -> None:
        self.setValue(self._value + steps * self._step)

    def stepEnabled(self) -> QAbstractSpinBox.StepEnabledFlag:
        flags = QAbstractSpinBox.StepEnabledFlag.StepNone
        if self._value > self._min:
            flags |= QAbstractSpinBox.StepEnabledFlag.StepDownEnabled
        if self._value < self._max:
            flags |= QAbstractSpinBox.StepEnabledFlag.StepUpEnabled
        return flags

    def validate(self, text: str, pos: int) -> object:
        if text in ("", "-"):
            return QValidator.State.Intermediate, text, pos
        try:
            value = int(text)
        except ValueError:
            return QValidator.State.Invalid, text, pos
        ok = self._min <= value <= self._max
        return (QValidator.State.Acceptable if ok else QValidator.State.Intermediate), text, pos

    def fixup(self, text: str) -> str:
        try:
            typed = int(text.strip().replace("\u2212", "-"))
        except ValueError:
            return str(self._value)
        value = max(self._min, min(self._max, typed))
        if value != typed:
            rule = f"at least {self._min}" if typed < self._min else f"at most {self._max}"
            self.corrected.emit(f"{self.label} must be {rule}: {typed} became {value}".strip())
        return str(value)

    def interpretText(self) -> None:
        """Applies the typed text, corrected visibly when it is out of range."""
        text = self.lineEdit().text()
        state = self.validate(text, 0)[0]
        if state != QValidator.State.Acceptable:
            text = self.fixup(text)
        self.setValue(int(text))
        self._show()


class ParamEditor(QObject):
    """One param's editor: ``widget`` to lay out, ``set_value`` from the model, ``edited``
    (value, gesture) when the user changes it. One gesture token per editing session, so a
    session's edits merge into one undo step."""

    edited = Signal(object, object)
    #: A typed value was replaced by the nearest one the widget allows; the sentence says why.
    corrected = Signal(str)

    def __init__(self, spec: WidgetInput, widget: QWidget) -> None:
        super().__init__(widget)
        self.spec = spec
        self.widget = widget
        self._gesture = object()
        self._updating = False

    def new_gesture(self) -> None:
        self._gesture = object()

    def commit_typing(self) -> None:
        """Applies what the user is typing, if this editor waits for editing to end."""

    def set_value(self, value: Any) -> None:
        if self._updating or value == self.value():
            return
        self._updating = True
        try:
            self._set(value)
        finally:
            self._updating = False

    def value(self) -> Any:
        raise NotImplementedError

    def _set(self, value: Any) -> None:
        raise NotImplementedError

    def _emit(self, value: Any = None, *, discrete: bool = False) -> None:
        if self._updating:
            return
        if discrete:
            self.new_gesture()
        self.edited.emit(self.value() if value is None else value, self._gesture)


class _SpinEditor(ParamEditor):
    def __init__(self, spec: WidgetInput, box: Any) -> None:
        super().__init__(spec, box)
        box.valueChanged.connect(lambda _v: self._emit())
        box.editingFinished.connect(self.new_gesture)
        box.corrected.connect(self.corrected)

    def commit_typing(self) -> None:
        """Applies text still being typed (corrected visibly if it breaks a rule)."""
        self.widget.interpretText()

    def value(self) -> Any:
        return self.widget.value()

    def _set(self, value: Any) -> None:
        self.widget.setValue(value)


def _int_box(spec: WidgetInput) -> QWidget:
    low = int(spec.min) if spec.min is not None else -(2**63)
    high = int(spec.max) if spec.max is not None else 2**63 - 1
    step = int(spec.step) if spec.step else 1
    if low >= -_INT32 and high <= _INT32:
        return RuleSpinBox(spec, low, high, step)
    box = BigIntSpinBox(low, high, step)
    box.label = spec.name.replace("_", " ")
    return box


def _float_box(spec: WidgetInput) -> QDoubleSpinBox:
    box = RuleDoubleSpinBox(spec)
    step = float(spec.step) if spec.step else 0.01
    decimals = max(2, len(f"{step:.10f}".rstrip("0").split(".")[1]))
    box.setDecimals(decimals)
    box.setRange(
        float(spec.min) if spec.min is not None else -_FLOAT_LIMIT,
        float(spec.max) if spec.max is not None else _FLOAT_LIMIT,
    )
    box.setSingleStep(step)
    return box


class _FloatEditor(_SpinEditor):
    def value(self) -> float:
        return float(self.widget.value())


class _ComboEditor(ParamEditor):
    def __init__(self, spec: WidgetInput, choices: tuple[str, ...]) -> None:
        combo = QComboBox()
        combo.addItems(list(choices))
        super().__init__(spec, combo)
        combo.currentTextChanged.connect(lambda text: self._emit(text, discrete=True))

    def value(self) -> str:
        return self.widget.currentText()

    def _set(self, value: Any) -> None:
        combo: QComboBox = self.widget
        if combo.findText(str(value)) < 0:  # a saved value this install does not offer
            combo.addItem(str(value))
        combo.setCurrentText(str(value))


class _BoolEditor(ParamEditor):
    def __init__(self, spec: WidgetInput) -> None:
        super().__init__(spec, QCheckBox())
        self.widget.toggled.connect(lambda _on: self._emit(discrete=True))

    def value(self) -> bool:
        return self.widget.isChecked()

    def _set(self, value: Any) -> None:
        self.widget.setChecked(bool(value))


class _LineEditor(ParamEditor):
    def __init__(self, spec: WidgetInput) -> None:
        super().__init__(spec, QLineEdit())
        self.widget.textEdited.connect(lambda _text: self._emit())
        self.widget.editingFinished.connect(self.new_gesture)

    def value(self) -> str:
        return self.widget.text()

    def _set(self, value: Any) -> None:
        self.widget.setText(str(value))


class _PromptEdit(QPlainTextEdit):
    """Multi-line text that reports when the user leaves it (one undo step per visit)."""

    left = Signal()

    def focusOutEvent(self, event: QFocusEvent) -> None:
        super().focusOutEvent(event)
        self.left.emit()


class _TextEditor(ParamEditor):
    def __init__(self, spec: WidgetInput) -> None:
        edit = _PromptEdit()
        lines = 5
        edit.setMinimumHeight(edit.fontMetrics().lineSpacing() * lines)
        super().__init__(spec, edit)
        edit.textChanged.connect(lambda: self._emit())
        edit.left.connect(self.new_gesture)

    def value(self) -> str:
        return self.widget.toPlainText()

    def _set(self, value: Any) -> None:
        self.widget.setPlainText(str(value))


def make_editor(spec: WidgetInput, registry: NodeRegistry) -> ParamEditor:
    """The editor that fits a widget input's type, range and choices."""
    if spec.type == t.INT:
        return _SpinEditor(spec, _int_box(spec))
    if spec.type == t.FLOAT:
        return _FloatEditor(spec, _float_box(spec))
    if spec.type == t.BOOLEAN:
        return _BoolEditor(spec)
    choices = registry.choices(spec)
    if spec.type == t.COMBO or choices is not None:
        return _ComboEditor(spec, tuple(choices or ()))
    return _TextEditor(spec) if spec.multiline else _LineEditor(spec)


class _SeedRow(QWidget):
    """The seed editor plus its after-run mode and a "new random seed now" button."""

    modeChosen = Signal(str)
    randomizeNow = Signal()

    def __init__(self, editor: ParamEditor) -> None:
        super().__init__()
        self.mode = QComboBox()
        self.mode.addItems(list(CONTROL_MODES))
        self.mode.setToolTip("What happens to the seed after each queued run")
        self.mode.currentTextChanged.connect(self.modeChosen)
        dice = QToolButton()
        dice.setText("Random")
        dice.setToolTip("A new random seed now")
        dice.clicked.connect(self.randomizeNow)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        top = QHBoxLayout()
        top.addWidget(editor.widget, 1)
        top.addWidget(dice)
        layout.addLayout(top)
        layout.addWidget(self.mode)

    def set_mode(self, mode: str) -> None:
        if self.mode.currentText() != mode:
            self.mode.blockSignals(True)
            self.mode.setCurrentText(mode)
            self.mode.blockSignals(False)


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
        self.seed_rows: dict[str, _SeedRow] = {}
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
                seed_row = _SeedRow(editor)
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
