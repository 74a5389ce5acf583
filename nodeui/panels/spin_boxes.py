"""The inspector's spin boxes: any number may be typed, and a value that breaks its widget's
rules (range, step grid, whole numbers) is replaced by the nearest allowed one, visibly, with
a sentence saying why (``corrected``). ``BigIntSpinBox`` holds integers beyond 32 bits (seeds).
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import QAbstractSpinBox, QDoubleSpinBox, QSpinBox

from core.graph.spec import WidgetInput
from nodeui.values import conform, format_number, parse_number


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
