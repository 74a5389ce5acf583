"""Whatever is typed in an editor, on the canvas or in the inspector, is in the graph before an
action of the menus or the toolbar (Run, Save, Export, Copy, Close, Quit) acts on it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QColor, QDropEvent, QGuiApplication, QImage
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QFileDialog, QMessageBox

from core.graph.commands import AddNode
from core.graph.workflow import load_workflow
from nodeui.undo import push
from nodeui.window import MainWindow
from tests.nodeui.windows import open_window

ROOT = Path(__file__).resolve().parents[2]
TYPED = "a red square, (glossy:1.2)"
LEFT = Qt.MouseButton.LeftButton
NO_MODS = Qt.KeyboardModifier.NoModifier


@pytest.fixture
def window(qtbot, tmp_path):
    """A shown window holding one saved prompt node (id 1)."""
    with open_window(tmp_path) as win:
        win.resize(1400, 900)
        document = win.document
        push(document.undo_stack, document.graph, AddNode("CLIPTextEncode", (0, 0), node_id=1))
        assert win.files.save_as(tmp_path / "flow.json")
        win.show()
        qtbot.waitExposed(win)
        win.view.set_view_state({"center": [100, 60], "zoom": 1.0})
        yield win


def _type_on_canvas(qtbot, win: MainWindow, text: str) -> None:
    """Double-clicks the prompt on the node and types ``text`` with real key events."""
    item = win.scene.nodes[1]
    row = item.layout.editor("text")
    point = win.view.mapFromScene(item.mapToScene(row.rect.center()))
    QTest.mouseDClick(win.view.viewport(), LEFT, NO_MODS, point)
    editor = win.scene.inline_editor
    assert editor is not None
    QTest.keyClicks(editor.widget, text)
    assert editor.text() == text


def _type_in_inspector(qtbot, win: MainWindow, text: str) -> None:
    win.scene.select_nodes([1])
    box = win.inspector.editors["text"].widget
    box.setFocus()
    QTest.keyClicks(box, text)


TYPERS = {"canvas": _type_on_canvas, "inspector": _type_in_inspector}


def _all_runs(win: MainWindow):
    queue = win.runs.queue
    return [*queue.pending, *([queue.current] if queue.current else []), *queue.history]


def _prompt_of(data: dict) -> str:
    (node,) = [n for n in data["nodes"] if n["id"] == 1]
    return node["params"]["text"]


@pytest.mark.parametrize("where", TYPERS)
def test_run_queues_the_typed_prompt(qtbot, window, where):
    TYPERS[where](qtbot, window, TYPED)
    window.actions.by_name["run"].trigger()
    (run,) = _all_runs(window)
    assert _prompt_of(run.workflow) == TYPED
    assert window.document.graph.node(1).params["text"] == TYPED


@pytest.mark.parametrize("where", TYPERS)
def test_save_writes_the_typed_prompt(qtbot, window, tmp_path, where):
    TYPERS[where](qtbot, window, TYPED)
    assert window.document.dirty and "*" in window.windowTitle()
    window.actions.by_name["save"].trigger()
    saved = load_workflow(tmp_path / "flow.json", window.registry)
    assert saved.graph.node(1).params["text"] == TYPED
    assert not window.document.dirty


@pytest.mark.parametrize("where", TYPERS)
def test_save_as_writes_the_typed_prompt(qtbot, window, tmp_path, monkeypatch, where):
    target = tmp_path / "other.json"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    TYPERS[where](qtbot, window, TYPED)
    window.actions.by_name["save_as"].trigger()
    assert load_workflow(target, window.registry).graph.node(1).params["text"] == TYPED


@pytest.mark.parametrize("where", TYPERS)
def test_export_embeds_the_typed_prompt(qtbot, window, tmp_path, monkeypatch, where):
    picture = QImage(16, 16, QImage.Format.Format_RGB32)
    picture.fill(QColor("tomato"))
    window.viewer.set_images([picture], None)  # an image whose run is not known
    target = tmp_path / "export.png"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    TYPERS[where](qtbot, window, TYPED)
    window.actions.by_name["export_png"].trigger()
    assert load_workflow(target, window.registry).graph.node(1).params["text"] == TYPED


@pytest.mark.parametrize("where", TYPERS)
def test_copy_puts_the_typed_prompt_on_the_clipboard(qtbot, window, where):
    TYPERS[where](qtbot, window, TYPED)
    window.scene.select_nodes([1])
    window.actions.by_name["copy"].trigger()
    copied = json.loads(QGuiApplication.clipboard().text())
    assert _prompt_of(copied) == TYPED


@pytest.mark.parametrize("action", ["close", "quit"])
@pytest.mark.parametrize("where", TYPERS)
def test_closing_asks_about_the_typed_prompt(qtbot, window, monkeypatch, where, action):
    asked = []

    def answer(*args, **kwargs):
        asked.append(args[2])
        return QMessageBox.StandardButton.Cancel

    monkeypatch.setattr(QMessageBox, "question", answer)
    TYPERS[where](qtbot, window, TYPED)
    if action == "quit":
        window.actions.by_name["quit"].trigger()
    else:
        window.close()
    assert len(asked) == 1 and "flow.json" in asked[0]
    assert window.isVisible()
    assert window.document.graph.node(1).params["text"] == TYPED


def test_ctrl_enter_in_the_prompt_editor_runs_the_typed_prompt(qtbot, window):
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    _type_on_canvas(qtbot, window, TYPED)
    editor = window.scene.inline_editor
    QTest.keyClick(editor.widget, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    (run,) = _all_runs(window)
    assert _prompt_of(run.workflow) == TYPED


def test_the_inspector_follows_typing_on_the_canvas(qtbot, window):
    window.scene.select_nodes([1])
    _type_on_canvas(qtbot, window, TYPED)
    assert window.scene.inline_editor is not None  # still typing
    assert window.inspector.editors["text"].value() == TYPED
    assert "*" in window.windowTitle()


def test_a_typing_burst_is_one_undo_step_that_undo_and_redo_keep(qtbot, window):
    stack = window.document.undo_stack
    start = stack.count()
    window.view.select_all()
    window.actions.by_name["bypass"].trigger()  # an earlier edit of another kind
    _type_on_canvas(qtbot, window, TYPED)
    assert stack.count() == start + 2
    window.actions.by_name["undo"].trigger()  # ends typing, then takes the burst back
    assert window.scene.inline_editor is None
    assert window.document.graph.node(1).params["text"] == ""
    assert window.document.graph.node(1).bypassed
    window.actions.by_name["redo"].trigger()
    assert window.document.graph.node(1).params["text"] == TYPED


def test_escape_takes_the_typing_back_without_an_undo_step(qtbot, window):
    stack = window.document.undo_stack
    start = stack.count()
    _type_on_canvas(qtbot, window, TYPED)
    QTest.keyClick(window.scene.inline_editor.widget, Qt.Key.Key_Escape)
    assert window.scene.inline_editor is None
    assert window.document.graph.node(1).params["text"] == ""
    assert stack.count() == start and not window.document.dirty


def test_saving_ends_the_undo_step_so_later_typing_is_a_new_one(qtbot, window):
    stack = window.document.undo_stack
    start = stack.count()
    _type_in_inspector(qtbot, window, "first")
    window.actions.by_name["save"].trigger()
    QTest.keyClicks(window.inspector.editors["text"].widget, " second")
    assert stack.count() == start + 2 and window.document.dirty
    window.actions.by_name["undo"].trigger()
    assert window.document.graph.node(1).params["text"] == "first"
    assert not window.document.dirty


def test_run_applies_the_title_typed_in_the_inspector(qtbot, window):
    window.scene.select_nodes([1])
    title = window.inspector.title_edit
    title.setFocus()
    QTest.keyClicks(title, "Positive prompt")
    window.actions.by_name["run"].trigger()
    (run,) = _all_runs(window)
    (node,) = [n for n in run.workflow["nodes"] if n["id"] == 1]
    assert node["title"] == "Positive prompt"


def test_dropping_a_workflow_asks_about_the_title_being_typed(qtbot, window, monkeypatch):
    asked = []

    def answer(*args, **kwargs):
        asked.append(args[2])
        return QMessageBox.StandardButton.Cancel

    monkeypatch.setattr(QMessageBox, "question", answer)
    window.scene.select_nodes([1])
    window.inspector.title_edit.setFocus()
    QTest.keyClicks(window.inspector.title_edit, "Positive prompt")  # applied when typing ends
    document = window.document
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(ROOT / "resources" / "workflows" / "default.json"))])
    viewport = window.view.viewport()
    drop = QDropEvent(
        QPointF(viewport.rect().center()), Qt.DropAction.CopyAction, mime, LEFT, NO_MODS
    )
    assert window.drops.eventFilter(viewport, drop)
    assert len(asked) == 1 and window.document is document
    assert document.graph.node(1).title == "Positive prompt"
