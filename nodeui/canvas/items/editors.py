"""Painting of the inline editors inside a node (numbers, sliders, combos, text, toggles).

Editors are drawn by the node item itself, not embedded widgets: a temporary ``QLineEdit``
or ``QPlainTextEdit`` exists only while the user types (see ``canvas.inline_edit``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QPainter

from core.graph import types as t
from core.graph.spec import WidgetInput
from nodeui.canvas import style as s
from nodeui.canvas.layout import COMBO, MULTILINE, NUMBER, SLIDER, TEXT, TOGGLE, EditorRow

ARROW_WIDTH = 14.0
_LEFT = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
_CENTER = Qt.AlignmentFlag.AlignCenter
_WRAP = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop | Qt.TextFlag.TextWordWrap


def decimals(widget: WidgetInput) -> int:
    """How many decimals a float widget shows, from its step."""
    step = widget.step or 0.01
    text = f"{step:.6f}".rstrip("0")
    return max(1, len(text.split(".")[1])) if "." in text else 0


def format_value(widget: WidgetInput, value: Any) -> str:
    """The text an editor shows for ``value``."""
    if widget.type == t.FLOAT and isinstance(value, (int, float)):
        text = f"{value:.{decimals(widget)}f}"
        # more digits than the step's when the value has them: a typed 6.55 never shows as 6.5
        return text if float(text) == value else f"{value:.10g}"
    if widget.type == t.BOOLEAN:
        return "true" if value else "false"
    return "" if value is None else str(value)


def file_name(text: str) -> str:
    """A full path's last part (a picture's file name), other text as it is: on a node the
    folders would crowd out the name; the inspector and the inline editor show the whole path."""
    for flavour in (PurePosixPath, PureWindowsPath):
        path = flavour(text)
        if path.is_absolute() and path.name:
            return path.name
    return text


@dataclass(frozen=True)
class EditorTexts:
    """The elided strings an editor row paints, made when the value changes, not per frame."""

    name: str
    value: str
    fraction: float = 0.0
    on: bool = False
    mode: str = ""


def make_texts(row: EditorRow, value: Any, mode: str) -> EditorTexts:
    fm = s.metrics()
    widget = row.widget
    width = row.rect.width() - 2 * ARROW_WIDTH
    name = widget.name.replace("_", " ")
    shown = format_value(widget, value)
    if row.kind == TEXT:
        shown = file_name(shown)
    if row.kind == MULTILINE:
        return EditorTexts(name, shown)
    value_width = min(fm.horizontalAdvance(shown), width * 0.62)
    value_text = fm.elidedText(shown, Qt.TextElideMode.ElideRight, value_width + 1)
    name_text = fm.elidedText(name, Qt.TextElideMode.ElideRight, width - value_width - 8)
    fraction = 0.0
    if row.kind == SLIDER and isinstance(value, (int, float)):
        lo, hi = float(widget.min or 0.0), float(widget.max or 1.0)
        fraction = 0.0 if hi <= lo else min(1.0, max(0.0, (value - lo) / (hi - lo)))
    return EditorTexts(name_text, value_text, fraction, bool(value), mode)


def paint_editor(painter: QPainter, row: EditorRow, texts: EditorTexts) -> None:
    """Paints one editor row (the node item has set pens/brushes state as it likes)."""
    rect = row.rect
    painter.setFont(s.font())
    if row.linked:
        painter.setPen(s.TEXT_DIM)
        painter.drawText(rect.adjusted(4, 0, 0, 0), _LEFT, texts.name)
        return
    painter.setPen(s.NO_PEN)
    painter.setBrush(s.EDITOR_BG)
    if row.kind == MULTILINE:
        painter.drawRoundedRect(rect, 4, 4)
        painter.setPen(s.TEXT if texts.value else s.TEXT_DIM)
        painter.drawText(rect.adjusted(6, 4, -6, -4), _WRAP, texts.value or texts.name)
        return
    painter.drawRoundedRect(rect, s.EDITOR_RADIUS, s.EDITOR_RADIUS)
    inner = rect.adjusted(ARROW_WIDTH, 0, -ARROW_WIDTH, 0)
    if row.kind == SLIDER:
        fill = QRectF(rect.left(), rect.top(), rect.width() * texts.fraction, rect.height())
        painter.save()
        painter.setClipRect(fill)
        painter.setBrush(s.EDITOR_FILL)
        painter.drawRoundedRect(rect, s.EDITOR_RADIUS, s.EDITOR_RADIUS)
        painter.restore()
        inner = rect.adjusted(8, 0, -8, 0)
    elif row.kind == NUMBER:
        painter.setPen(s.TEXT_DIM)
        painter.drawText(QRectF(rect.left(), rect.top(), ARROW_WIDTH, rect.height()), _CENTER, "‹")
        right = QRectF(rect.right() - ARROW_WIDTH, rect.top(), ARROW_WIDTH, rect.height())
        painter.drawText(right, _CENTER, "›")
    elif row.kind == TOGGLE:
        inner = rect.adjusted(8, 0, -40, 0)
        track = QRectF(rect.right() - 34, rect.center().y() - 6, 26, 12)
        painter.setBrush(s.EDITOR_ACCENT if texts.on else s.NODE_BORDER)
        painter.drawRoundedRect(track, 6, 6)
        painter.setBrush(s.TEXT)
        knob_x = track.right() - 6 if texts.on else track.left() + 6
        painter.drawEllipse(QPointF(knob_x, track.center().y()), 4.5, 4.5)
        painter.setPen(s.TEXT_DIM)
        painter.drawText(inner, _LEFT, texts.name)
        return
    elif row.kind in (COMBO, TEXT):
        inner = rect.adjusted(8, 0, -8 - (10 if row.kind == COMBO else 0), 0)
        if row.kind == COMBO:
            painter.setPen(s.TEXT_DIM)
            arrow = QRectF(rect.right() - 16, rect.top(), 12, rect.height())
            painter.drawText(arrow, _CENTER, "▾")
    # Once a slider's fill reaches its label the whole label is drawn bright: dim text would
    # sink into the fill, and a word bright on the fill but dim past it (a low cfg) reads badly.
    filled = row.kind == SLIDER and rect.left() + rect.width() * texts.fraction > inner.left()
    painter.setPen(s.TEXT if filled else s.TEXT_DIM)
    painter.drawText(inner, _LEFT, texts.name)
    painter.setPen(s.TEXT)
    painter.drawText(inner, _RIGHT, texts.value)
    if row.mode_rect is not None:
        mode = row.mode_rect
        painter.setPen(s.NO_PEN)
        painter.setBrush(s.EDITOR_BG)
        painter.drawRoundedRect(mode, s.EDITOR_RADIUS, s.EDITOR_RADIUS)
        text_rect = mode.adjusted(8, 0, -8, 0)
        painter.setPen(s.TEXT_DIM)
        painter.drawText(text_rect, _LEFT, "control after run")
        painter.setPen(s.TEXT)
        painter.drawText(text_rect, _RIGHT, f"{texts.mode} ▾")


__all__ = ["COMBO", "NUMBER", "SLIDER", "TEXT", "TOGGLE", "EditorTexts", "make_texts"]
