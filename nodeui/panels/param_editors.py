"""One editor per param type for the inspector: spin boxes for numbers, a combo for choices,
a check box, a line or a multi-line prompt for text, and the seed's row with its after-run mode.
``make_editor`` picks the one that fits a widget's spec.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QFocusEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLineEdit,
    QPlainTextEdit,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from core.graph import types as t
from core.graph.spec import NodeRegistry, WidgetInput
from nodeui.panels.spin_boxes import BigIntSpinBox, RuleDoubleSpinBox, RuleSpinBox
from nodeui.runstate import CONTROL_MODES

_INT32 = 2**31 - 1
_FLOAT_LIMIT = 1e12


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


class SeedRow(QWidget):
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
