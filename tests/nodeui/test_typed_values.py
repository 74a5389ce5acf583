"""A number typed out of its widget's rules is never changed quietly: the canvas's inline
editor shows the corrected value and the rule on Enter (a second Enter takes it), and the
inspector's spin boxes show the correction in the field and say why in the status bar."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QKeyEvent, QUndoStack
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from core.graph.model import Graph
from nodes import build_registry
from nodeui.canvas.items.editors import format_value
from nodeui.panels.inspector import Inspector
from tests.nodeui.canvas_helpers import canvas_with

LEFT = Qt.MouseButton.LeftButton
NO_MODS = Qt.KeyboardModifier.NoModifier
CTRL = Qt.KeyboardModifier.ControlModifier


@pytest.fixture(scope="module")
def registry():
    return build_registry()


@pytest.fixture
def canvas(qtbot, registry):
    """A view on a KSampler (1) and an Empty Latent Image (2), and the status messages."""
    view, _ = canvas_with(qtbot, registry, ("KSampler", (100, 0)), ("EmptyLatentImage", (500, 0)))
    messages: list[str] = []
    view.graph_scene.statusMessage.connect(messages.append)
    return view, messages


def _type(widget, text: str) -> None:
    """Real key events for ``text``; a character beyond ASCII (a typographic minus) comes as
    the key event a keyboard layout would send for it."""
    for char in text:
        if char.isascii():
            QTest.keyClicks(widget, char)
        else:
            for kind in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease):
                QApplication.sendEvent(widget, QKeyEvent(kind, Qt.Key.Key_Minus, NO_MODS, char))


def _type_in_row(view, node_id: int, name: str, text: str):
    """Double-clicks the value ``name`` on the node and replaces it by typing ``text``."""
    scene = view.graph_scene
    item = scene.nodes[node_id]
    row = item.layout.editor(name)
    QTest.mouseDClick(
        view.viewport(), LEFT, NO_MODS, view.mapFromScene(item.mapToScene(row.rect.center()))
    )
    editor = scene.inline_editor
    assert editor is not None
    QTest.keyClick(editor.widget, Qt.Key.Key_A, CTRL)
    _type(editor.widget, text)
    return editor


@pytest.mark.parametrize(
    ("node_id", "name", "typed", "corrected", "rule"),
    [
        (1, "steps", "\u22125", "1", "steps must be at least 1: \u22125 became 1"),
        (1, "steps", "-5", "1", "steps must be at least 1: -5 became 1"),
        (2, "width", "13", "16", "width must be a multiple of 8: 13 became 16"),
        (1, "cfg", "150", "100.0", "cfg must be at most 100: 150 became 100"),
    ],
)
def test_enter_shows_the_correction_and_a_second_enter_takes_it(
    canvas, node_id, name, typed, corrected, rule
):
    view, messages = canvas
    graph = view.graph_scene.graph
    before = graph.node(node_id).params[name]
    editor = _type_in_row(view, node_id, name, typed)
    QTest.keyClick(editor.widget, Qt.Key.Key_Return)
    assert view.graph_scene.inline_editor is editor  # still open, showing the correction
    assert editor.text() == corrected
    assert messages and messages[-1].startswith(rule)
    assert graph.node(node_id).params[name] == before
    QTest.keyClick(editor.widget, Qt.Key.Key_Return)
    assert view.graph_scene.inline_editor is None
    assert str(graph.node(node_id).params[name]) == corrected


def test_a_value_within_the_rules_is_taken_on_the_first_enter(canvas):
    view, messages = canvas
    editor = _type_in_row(view, 2, "width", "24")
    QTest.keyClick(editor.widget, Qt.Key.Key_Return)
    assert view.graph_scene.graph.node(2).params["width"] == 24
    assert view.graph_scene.inline_editor is None and not messages


def test_ending_typing_applies_the_correction_and_says_so(canvas):
    view, messages = canvas
    _type_in_row(view, 1, "steps", "-5")
    view.graph_scene.commit_inline_editor()  # what Run, Save… do first
    assert view.graph_scene.graph.node(1).params["steps"] == 1
    assert messages == ["steps must be at least 1: -5 became 1"]


def test_text_that_is_not_a_number_keeps_the_editor_open(canvas):
    view, messages = canvas
    editor = _type_in_row(view, 1, "steps", "many")
    QTest.keyClick(editor.widget, Qt.Key.Key_Return)
    assert view.graph_scene.inline_editor is editor
    assert view.graph_scene.graph.node(1).params["steps"] == 20
    assert messages == ["steps: 'many' is not a whole number"]


@pytest.fixture
def inspector(qtbot, registry):
    """An inspector on a KSampler (1) and an Empty Latent Image (2), and its messages."""
    graph = Graph(registry)
    graph.add_node("KSampler", node_id=1)
    graph.add_node("EmptyLatentImage", node_id=2)
    stack = QUndoStack()
    panel = Inspector()
    panel._test_stack = stack
    qtbot.addWidget(panel)
    panel.set_document(graph, stack, registry)
    panel.show()
    qtbot.waitExposed(panel)
    messages: list[str] = []
    panel.statusMessage.connect(messages.append)
    return panel, graph, messages


def _type_in_box(panel, node_id: int, name: str, text: str):
    panel.show_node(node_id)
    box = panel.editors[name].widget
    box.setFocus()
    QTest.keyClick(box, Qt.Key.Key_A, CTRL)
    QTest.keyClicks(box, text)
    return box


@pytest.mark.parametrize(
    ("node_id", "name", "typed", "value", "rule"),
    [
        (1, "steps", "-5", 1, "steps must be at least 1: -5 became 1"),
        (2, "width", "13", 16, "width must be a multiple of 8: 13 became 16"),
        (1, "seed", "-5", 0, "seed must be at least 0: -5 became 0"),
        (1, "cfg", "150", 100.0, "cfg must be at most 100: 150 became 100"),
    ],
)
def test_a_spin_box_shows_what_it_made_of_the_typed_value(
    inspector, node_id, name, typed, value, rule
):
    panel, graph, messages = inspector
    box = _type_in_box(panel, node_id, name, typed)
    assert box.lineEdit().text() == typed  # every key was taken, the minus sign too
    QTest.keyClick(box, Qt.Key.Key_Return)
    assert graph.node(node_id).params[name] == value
    assert box.value() == value and float(box.lineEdit().text()) == value
    assert messages == [rule]


def test_an_action_applies_a_number_still_being_typed_in_the_inspector(inspector):
    panel, graph, messages = inspector
    _type_in_box(panel, 2, "width", "13")
    assert graph.node(2).params["width"] == 512  # not applied yet: 13 breaks a rule
    panel.commit_pending_edits()
    assert graph.node(2).params["width"] == 16
    assert messages == ["width must be a multiple of 8: 13 became 16"]


def test_the_node_shows_every_digit_of_a_typed_float(canvas):
    view, _messages = canvas
    editor = _type_in_row(view, 1, "cfg", "6.55")  # cfg steps by 0.1
    QTest.keyClick(editor.widget, Qt.Key.Key_Return)
    item = view.graph_scene.nodes[1]
    row = item.layout.editor("cfg")
    assert view.graph_scene.graph.node(1).params["cfg"] == 6.55
    assert format_value(row.widget, 6.55) == "6.55"
    assert format_value(row.widget, 6.5) == "6.5"


def test_a_digit_beyond_the_spin_boxs_decimals_is_refused_not_rounded_away(inspector):
    panel, graph, messages = inspector
    box = _type_in_box(panel, 1, "cfg", "6.555")
    assert box.lineEdit().text() == "6.55"  # the third decimal was not taken
    QTest.keyClick(box, Qt.Key.Key_Return)
    assert graph.node(1).params["cfg"] == 6.55 and not messages
