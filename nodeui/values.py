"""What the editor does with a number the user typed: the nearest value the widget allows, and
the rule that made it differ, so that the field can show the correction instead of making it
quietly (the canvas's inline editor and the inspector's spin boxes share these rules)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from core.graph import types as t
from core.graph.spec import WidgetInput

#: Typographic minus signs that people paste or type; read as "-".
_MINUS_SIGNS = ("\u2212", "\u2013", "\ufe63", "\uff0d")


@dataclass(frozen=True)
class Conformed:
    """A typed number brought within the widget's rules; ``rule`` says which one it broke."""

    value: Any
    rule: str | None = None

    def message(self, widget: WidgetInput, typed: object) -> str:
        """One line for the status bar: which field, the rule, what was typed, what it became."""
        label = widget.name.replace("_", " ")
        return f"{label} must be {self.rule}: {typed} became {format_number(widget, self.value)}"


def parse_number(widget: WidgetInput, text: str) -> float:
    """The number in ``text`` (a typographic minus counts); raises ValueError naming the field."""
    cleaned = text.strip()
    for sign in _MINUS_SIGNS:
        cleaned = cleaned.replace(sign, "-")
    try:
        value = float(cleaned)
    except ValueError:
        kind = "a whole number" if widget.type == t.INT else "a number"
        raise ValueError(f"{widget.name}: {text.strip()!r} is not {kind}") from None
    if not math.isfinite(value):
        raise ValueError(f"{widget.name}: {text.strip()!r} is not a finite number")
    return value


def conform(widget: WidgetInput, value: float) -> Conformed:
    """The nearest value ``widget`` allows: whole for INT, a multiple of its ``multiple_of``
    (sizes in pixels), within min and max; with the rule that decided it (the range's when a
    bound did)."""
    rule: str | None = None
    result: float = value
    if widget.type == t.INT:
        if result != int(result):
            rule = "a whole number"
        result = round(result)
        step = int(widget.multiple_of or 1)
        if step > 1 and result % step:
            rule = rule or f"a multiple of {step}"
            result = step * round(result / step)
    if widget.min is not None and result < widget.min:
        rule = f"at least {format_number(widget, widget.min)}"
        result = widget.min
    if widget.max is not None and result > widget.max:
        rule = f"at most {format_number(widget, widget.max)}"
        result = widget.max
    final: Any = int(result) if widget.type == t.INT else float(result)
    return Conformed(final, rule)


def format_number(widget: WidgetInput, value: float) -> str:
    """A bound or a value as the user would type it (no trailing ``.0`` on whole numbers)."""
    if widget.type == t.INT or float(value).is_integer():
        return str(int(value))
    return f"{value:g}"
