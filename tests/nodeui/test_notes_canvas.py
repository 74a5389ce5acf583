"""Notes on the canvas: added from the right-click menu, typed into after a double-click,
moved by dragging and deleted with the Delete key, each one undo step."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import QPointF, Qt
from PySide6.QtTest import QTest

from core.graph.model import Graph, Note
from nodes import build_registry
from nodeui.canvas import menus
from nodeui.canvas.items.note import NoteItem
from tests.nodeui.canvas_helpers import LEFT, NO_MODS, at, drag, make_canvas


@pytest.fixture(scope="module")
def registry():
    return build_registry()


def _double_click(view, pos: QPointF) -> None:
    QTest.mouseDClick(view.viewport(), LEFT, NO_MODS, at(view, pos))


def test_add_a_note_from_the_menu_type_into_it_and_undo(qtbot, registry):
    view, stack = make_canvas(qtbot, registry)
    scene, graph = view.graph_scene, view.graph_scene.graph
    menu = menus.build_menu(scene, QPointF(400, 250))
    [add] = [a for a in menu.actions() if a.text() == "Add Note"]
    add.trigger()
    [note_id] = graph.notes
    assert graph.notes[note_id].pos == (400.0, 250.0)
    assert isinstance(scene.notes[note_id], NoteItem) and scene.notes[note_id].isSelected()
    editor = scene.inline_editor
    assert editor is not None  # a new note opens for typing
    QTest.keyClicks(editor.widget, "Try seed 7")
    assert graph.notes[note_id].text == "Try seed 7"  # shown while it is typed
    QTest.keyClick(editor.widget, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert scene.inline_editor is None
    assert stack.count() == 2  # the note, then its text
    stack.undo()
    assert graph.notes[note_id].text == ""
    stack.undo()
    assert graph.notes == {} and scene.notes == {}
    stack.redo()
    assert note_id in scene.notes


def test_double_click_edits_drag_moves_and_delete_removes_a_note(qtbot, registry):
    graph = Graph(registry)
    graph.add_note(Note(1, "old text", (300, 200), (240, 120)))
    view, stack = make_canvas(qtbot, registry, graph)
    scene = view.graph_scene
    inside = QPointF(380, 260)
    _double_click(view, inside)
    editor = scene.inline_editor
    assert editor is not None and editor.widget.toPlainText() == "old text"
    editor.widget.selectAll()
    QTest.keyClicks(editor.widget, "new text")
    QTest.keyClick(editor.widget, Qt.Key.Key_Escape)  # Escape takes the visit back
    assert graph.notes[1].text == "old text"
    _double_click(view, inside)
    scene.inline_editor.widget.selectAll()
    QTest.keyClicks(scene.inline_editor.widget, "kept")
    QTest.keyClick(
        scene.inline_editor.widget, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier
    )
    assert graph.notes[1].text == "kept"
    steps = stack.count()
    drag(view, QPointF(320, 205), QPointF(420, 255))
    assert graph.notes[1].pos == pytest.approx((400.0, 250.0), abs=1.5)
    assert stack.count() == steps + 1  # the whole drag is one step
    assert scene.notes[1].pos().x() == pytest.approx(400.0, abs=1.5)
    assert scene.selected_note_ids() == [1]
    view.setFocus()
    QTest.keyClick(view, Qt.Key.Key_Delete)
    assert graph.notes == {} and scene.notes == {}
    stack.undo()
    assert graph.notes[1].text == "kept" and 1 in scene.notes


def test_markdown_notes_show_formatted_text_and_toggle_from_the_menu(qtbot, registry):
    graph = Graph(registry)
    graph.add_note(Note(1, "# Title\n\n**bold** words", (0, 0), (260, 140), markdown=True))
    view, _ = make_canvas(qtbot, registry, graph)
    item = view.graph_scene.notes[1]
    assert item.document.toPlainText() == "Title\nbold words"  # rendered, marks gone
    menu = menus.build_menu(view.graph_scene, item.mapToScene(QPointF(40, 60)))
    [markdown] = [a for a in menu.actions() if a.text() == "Markdown"]
    assert markdown.isChecked()
    markdown.trigger()
    assert not graph.notes[1].markdown
    assert item.document.toPlainText() == "# Title\n\n**bold** words"
