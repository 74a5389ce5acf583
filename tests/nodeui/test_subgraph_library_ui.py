"""Subgraphs in the library panel, the user's library of saved subgraphs, the inputs and
outputs dialog, and copy and paste of instances between workflows."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QContextMenuEvent, QDragEnterEvent, QDropEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from core.graph.model import Graph
from core.graph.workflow import load_workflow
from nodeui.documents import Document
from nodeui.panels.library import SAVED_SUBGRAPHS, SUBGRAPH_FILE_MIME, WORKFLOW_SUBGRAPHS
from nodeui.window import MainWindow
from tests.nodeui.windows import window_maker

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ROOT / "resources" / "workflows" / "default.json"
NO_MODIFIER = Qt.KeyboardModifier.NoModifier


@pytest.fixture
def make_window(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("LATENTLOOM_DATA_DIR", str(tmp_path / "data"))
    opened = 0

    with window_maker(tmp_path) as new:

        def make() -> MainWindow:
            nonlocal opened
            opened += 1
            # Each window its own settings file; one recovery folder, as for one user.
            window = new(settings=f"settings{opened - 1}.ini", recovery="data/recovery")
            window.resize(1280, 760)
            window.set_document(Document.from_workflow(load_workflow(DEFAULT, window.registry)))
            window.show()
            qtbot.waitExposed(window)
            window.activateWindow()
            qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
            return window

        yield make


def _convert_prompts(window) -> int:
    """Ctrl+Shift+G on the two prompt encoders; returns the new instance's id."""
    graph = window.document.graph
    window.scene.clearSelection()
    for node in graph:
        if node.type_id == "CLIPTextEncode":
            window.scene.nodes[node.id].setSelected(True)
    window.activateWindow()
    window.view.setFocus()
    QTest.keyClick(
        window.view,
        Qt.Key.Key_G,
        Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier,
    )
    return next(n.id for n in graph if n.type_id in graph.subgraphs)


def _node_menu(window, node_id: int):
    """Right-clicks node ``node_id`` (a real context menu event) and returns the menu."""
    item = window.scene.nodes[node_id]
    point = window.view.mapFromScene(item.mapToScene(QPointF(30, 10)))
    viewport = window.view.viewport()
    event = QContextMenuEvent(QContextMenuEvent.Reason.Mouse, point, viewport.mapToGlobal(point))
    QApplication.sendEvent(viewport, event)
    menu = window.scene.open_menu
    assert menu is not None
    return menu


def _trigger(menu, text: str) -> None:
    action = next(a for a in menu.actions() if a.text().startswith(text))
    menu.close()
    action.trigger()


def _activate(qtbot, window, item) -> None:
    """Picks a library item and presses Enter on it."""
    tree = window.library.tree
    tree.setCurrentItem(item)
    tree.setFocus()
    QTest.keyClick(tree, Qt.Key.Key_Return)


def test_the_library_lists_the_workflows_definitions_and_adds_an_instance(qtbot, make_window):
    window = make_window()
    assert window.library.subgraph_items(WORKFLOW_SUBGRAPHS) == []
    instance = _convert_prompts(window)
    items = window.library.subgraph_items(WORKFLOW_SUBGRAPHS)
    assert [i.text(0) for i in items] == ["Subgraph"]
    graph = window.document.graph
    _activate(qtbot, window, items[0])
    instances = [n.id for n in graph if n.type_id == graph.node(instance).type_id]
    assert len(instances) == 2
    window.document.undo_stack.undo()
    window.document.undo_stack.undo()
    assert window.library.subgraph_items(WORKFLOW_SUBGRAPHS) == []


def test_save_to_library_then_drop_it_into_another_workflow_as_one_undo_step(
    qtbot, make_window, tmp_path
):
    window = make_window()
    instance = _convert_prompts(window)
    def_id = window.document.graph.node(instance).type_id
    _trigger(_node_menu(window, instance), "Save to Library")
    saved = tmp_path / "data" / "subgraphs" / "Subgraph.json"
    assert saved.is_file()
    assert [i.text(0) for i in window.library.subgraph_items(SAVED_SUBGRAPHS)] == ["Subgraph"]

    other = make_window()
    other.set_document(Document(Graph(other.registry)))
    item = other.library.subgraph_items(SAVED_SUBGRAPHS)[0]
    mime = other.library.tree.mimeData([item])
    assert bytes(mime.data(SUBGRAPH_FILE_MIME).data()).decode() == str(saved)
    # A real drag enters the canvas; Qt hands a Drop only to the target of a real drag, so
    # the drop goes to the canvas's filter the way Qt would pass it on.
    viewport = other.view.viewport()
    centre = viewport.rect().center()
    enter = QDragEnterEvent(
        centre, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, NO_MODIFIER
    )
    QApplication.sendEvent(viewport, enter)
    assert enter.isAccepted()
    drop = QDropEvent(
        QPointF(centre), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, NO_MODIFIER
    )
    assert other.subgraphs.shelf.eventFilter(viewport, drop)
    graph = other.document.graph
    assert [n.type_id for n in graph] == [def_id] and def_id in graph.subgraphs
    assert [i.text(0) for i in other.library.subgraph_items(WORKFLOW_SUBGRAPHS)] == ["Subgraph"]
    other.document.undo_stack.undo()
    assert len(graph) == 0 and len(graph.subgraphs) == 0


def test_the_inputs_and_outputs_dialog_renames_reorders_adds_removes_and_promotes(
    qtbot, make_window, tmp_path
):
    window = make_window()
    instance = _convert_prompts(window)
    graph = window.document.graph
    definition = graph.subgraphs.get(graph.node(instance).type_id)
    _trigger(_node_menu(window, instance), "Edit Inputs and Outputs")
    dialog = window.subgraphs.dialog
    qtbot.waitExposed(dialog)
    outputs = dialog.outputs
    assert outputs.names() == [b.name for b in definition.outputs]
    first, second = outputs.names()

    outputs.list.setCurrentRow(1)
    QTest.mouseClick(outputs.up, Qt.MouseButton.LeftButton)
    assert [b.name for b in definition.outputs] == [second, first]

    item = outputs.list.item(0)
    outputs.list.editItem(item)
    editor = outputs.list.findChild(type(dialog.inputs.name))
    editor.selectAll()
    QTest.keyClicks(editor, "negative")
    QTest.keyClick(editor, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: definition.outputs[0].name != second)  # the editor commits queued
    assert [b.name for b in definition.outputs] == ["negative", first]
    assert graph.links_from(instance, "negative")  # the links through it followed

    QTest.keyClicks(dialog.inputs.name, "strength")
    dialog.inputs.kind.setCurrentText("FLOAT")
    QTest.mouseClick(dialog.inputs.add, Qt.MouseButton.LeftButton)
    assert ("strength", "FLOAT") in [(b.name, b.type) for b in definition.inputs]
    dialog.inputs.list.setCurrentRow(dialog.inputs.names().index("strength"))
    QTest.mouseClick(dialog.inputs.remove, Qt.MouseButton.LeftButton)
    assert "strength" not in dialog.inputs.names()

    index = next(
        i
        for i in range(dialog.widget_choice.count())
        if dialog.widget_choice.itemText(i).endswith("text")
    )
    dialog.widget_choice.setCurrentIndex(index)
    QTest.mouseClick(dialog.promote, Qt.MouseButton.LeftButton)
    assert "text" in dialog.inputs.names()
    assert "text" in graph.node(instance).params
    dialog.grab().save(str(tmp_path / "sockets.png"))
    window.document.undo_stack.undo()
    assert "text" not in dialog.inputs.names()


def test_a_copied_instance_pastes_into_another_workflow_with_its_definition(qtbot, make_window):
    window = make_window()
    instance = _convert_prompts(window)
    def_id = window.document.graph.node(instance).type_id
    window.scene.clearSelection()
    window.scene.nodes[instance].setSelected(True)
    window.activateWindow()
    window.view.setFocus()
    QTest.keyClick(window.view, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)

    other = make_window()
    other.set_document(Document(Graph(other.registry)))
    other.activateWindow()
    other.view.setFocus()
    QTest.keyClick(other.view, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    graph = other.document.graph
    assert [n.type_id for n in graph] == [def_id]
    assert graph.subgraphs.get(def_id).name == "Subgraph"
    other.document.undo_stack.undo()
    assert len(graph) == 0 and len(graph.subgraphs) == 0
