"""What a newcomer meets in the editor: runs refused by validation, shipped templates, the
"Continue from step k" branch, tooltips and the canvas's menus, driven with real keys and
clicks."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtTest import QTest

from core.graph.commands import SetNodeAttribute
from nodeui.runs import INVALID, OK
from nodeui.undo import push
from tests.nodeui import shell_fakes
from tests.nodeui.canvas_helpers import click
from tests.nodeui.windows import open_window

CTRL = Qt.KeyboardModifier.ControlModifier
DEFAULT = Path(__file__).resolve().parents[2] / "resources" / "workflows" / "default.json"


@pytest.fixture
def window(qtbot, tmp_path):
    with open_window(tmp_path, shell_fakes.registry()) as made:
        made.show()
        qtbot.waitExposed(made)
        yield made


def _press_run(qtbot, window) -> None:
    """Ctrl+Enter on the canvas, then wait until the run has ended."""
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    window.view.setFocus()
    before = len(window.runs.queue.history)
    QTest.keyClick(window.view, Qt.Key.Key_Return, CTRL)
    qtbot.waitUntil(lambda: len(window.runs.queue.history) > before, timeout=30_000)
    qtbot.waitUntil(lambda: not window.runs.busy, timeout=30_000)


def test_a_run_refused_by_validation_leaves_the_incremented_seed_alone(qtbot, window):
    reg = window.registry
    graph = shell_fakes.slow_graph(reg, steps=1, seed=42)
    unlinked = graph.add_node("ShowNumber", pos=(300, 200)).id
    window.set_document(type(window.document)(graph))
    graph, stack = window.document.graph, window.document.undo_stack
    push(stack, graph, SetNodeAttribute([1], "ui", {"control_after_run": {"seed": "increment"}}))
    for _ in range(2):
        _press_run(qtbot, window)
        assert window.runs.queue.history[0].status == INVALID
        assert graph.node(1).params["seed"] == 42
        if window.problem_box is not None:
            window.problem_box.close()
    item = window.scene.nodes[unlinked]
    window.view.centerOn(item)
    click(window.view, item.scenePos() + QPointF(30, 10))
    QTest.keyClick(window.view.viewport(), Qt.Key.Key_Delete)
    assert unlinked not in graph
    _press_run(qtbot, window)
    assert window.runs.queue.history[0].status == OK
    assert graph.node(1).params["seed"] == 43


def test_the_shipped_default_workflow_opens_as_an_untitled_template(
    qtbot, window, tmp_path, monkeypatch
):
    from PySide6.QtWidgets import QFileDialog

    shipped = DEFAULT.read_bytes()
    assert window.open_path(DEFAULT, ask=False)
    assert window.document.path is None
    assert window.windowTitle().startswith("Untitled (default.json)")
    asked = []
    copy = tmp_path / "mine.json"

    def choose(parent, caption, start, filters):
        asked.append(start)
        return str(copy), filters

    monkeypatch.setattr(QFileDialog, "getSaveFileName", choose)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    QTest.keyClick(window.view.viewport(), Qt.Key.Key_S, CTRL)
    assert asked == ["default.json"]
    assert DEFAULT.read_bytes() == shipped and copy.is_file()
    assert window.document.path == copy and window.windowTitle().startswith("mine.json")


def test_ctrl_y_redoes_as_ctrl_shift_z_does(qtbot, window):
    graph = shell_fakes.slow_graph(window.registry)
    window.set_document(type(window.document)(graph))
    graph = window.document.graph
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    item = window.scene.nodes[2]
    window.view.centerOn(item)
    click(window.view, item.scenePos() + QPointF(30, 10))
    viewport = window.view.viewport()
    QTest.keyClick(viewport, Qt.Key.Key_Delete)
    assert 2 not in graph
    for redo in ((Qt.Key.Key_Y, CTRL), (Qt.Key.Key_Z, CTRL | Qt.KeyboardModifier.ShiftModifier)):
        QTest.keyClick(viewport, Qt.Key.Key_Z, CTRL)
        assert 2 in graph
        QTest.keyClick(viewport, *redo)
        assert 2 not in graph


def test_a_sampler_cancelled_mid_run_says_at_which_step(qtbot, window):
    graph = window.document.graph
    sampler = graph.add_node("FakeSampler", params={"steps": 200, "delay": 0.02}, pos=(0, 0)).id
    show = graph.add_node("ShowNumber", pos=(300, 0)).id
    graph.connect(sampler, "INT", show, "value")
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    QTest.keyClick(window.view.viewport(), Qt.Key.Key_Return, CTRL)

    def reached() -> bool:
        state = window.scene.states.get(sampler)
        return state is not None and (state.step or 0) >= 3

    qtbot.waitUntil(reached, timeout=20_000)
    QTest.keyClick(window.view.viewport(), Qt.Key.Key_Period, CTRL)
    qtbot.waitUntil(lambda: not window.runs.busy, timeout=20_000)
    state = window.scene.states[sampler]
    assert state.status == "cancelled" and 3 <= state.step < 200
    assert state.label == f"cancelled at step {state.step}"
    assert state.message == f"cancelled at step {state.step} of 200"
    assert window.scene.nodes[sampler].state_item._label == state.label
    assert window.scene.states[show].label == "skipped"
