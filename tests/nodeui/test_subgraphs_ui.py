"""Subgraphs in the editor: Ctrl+Shift+G converts the selection, a double-click enters an
instance, the breadcrumb bar leads back out; a screenshot of an entered subgraph."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest

from core.graph.commands import SetParam
from core.graph.workflow import load_workflow
from nodeui.documents import Document
from nodeui.undo import push
from tests.nodeui.windows import open_window

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ROOT / "resources" / "workflows" / "default.json"
SCREENSHOT = ROOT / "resources" / "screenshots" / "subgraph.png"


@pytest.fixture
def window(qtbot, tmp_path):
    with open_window(tmp_path) as window:
        window.resize(1280, 760)
        window.set_document(Document.from_workflow(load_workflow(DEFAULT, window.registry)))
        window.show()
        qtbot.waitExposed(window)
        yield window


def _ids(graph, *types: str) -> list[int]:
    return sorted(n.id for n in graph if n.type_id in types)


def _double_click_node(qtbot, window, node_id: int) -> None:
    item = window.scene.nodes[node_id]
    centre = item.mapToScene(item.boundingRect().center())
    point = window.view.mapFromScene(centre) + QPoint(0, 10)
    QTest.mouseDClick(window.view.viewport(), Qt.MouseButton.LeftButton, pos=point)


def enter_prompt_block(qtbot, window) -> int:
    """Converts the two prompt encoders and the sampler with Ctrl+Shift+G, then enters it."""
    graph = window.document.graph
    chosen = _ids(graph, "CLIPTextEncode", "KSampler")
    window.scene.clearSelection()
    for node_id in chosen:
        window.scene.nodes[node_id].setSelected(True)
    window.view.setFocus()
    QTest.keyClick(
        window.view,
        Qt.Key.Key_G,
        Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier,
    )
    instance = next(n.id for n in graph if n.type_id in graph.subgraphs)
    window.scene.clearSelection()
    _double_click_node(qtbot, window, instance)
    return instance


def test_ctrl_shift_g_converts_and_undo_restores(qtbot, window):
    graph = window.document.graph
    before = graph.state()
    instance = enter_prompt_block(qtbot, window)
    assert all(n.type_id not in ("KSampler", "CLIPTextEncode") for n in graph)
    assert window.subgraphs.path == [graph.node(instance).type_id]
    window.subgraphs.leave_to(0)
    window.document.undo_stack.undo()
    assert graph.state() == before


def test_double_click_enters_and_the_breadcrumb_leads_back(qtbot, window):
    graph = window.document.graph
    enter_prompt_block(qtbot, window)
    definition = graph.subgraphs.get(window.subgraphs.path[0])
    assert window.scene.graph is definition.graph
    assert window.subgraphs.bar.isVisible()
    assert [b.text() for b in window.subgraphs.bar.crumbs] == ["Workflow", "Subgraph"]
    qtbot.mouseClick(window.subgraphs.bar.crumbs[0], Qt.MouseButton.LeftButton)
    assert window.scene.graph is graph and not window.subgraphs.bar.isVisible()


def test_an_edit_inside_changes_every_instance_and_undoes_in_one_step(qtbot, window):
    graph = window.document.graph
    enter_prompt_block(qtbot, window)
    inner = window.scene.graph
    sampler = _ids(inner, "KSampler")[0]
    steps = inner.node(sampler).params["steps"]
    push(window.document.undo_stack, inner, SetParam(sampler, "steps", steps + 5))
    assert inner.node(sampler).params["steps"] == steps + 5
    window.document.undo_stack.undo()
    assert inner.node(sampler).params["steps"] == steps
    assert len(graph.subgraphs) == 1


def test_screenshot_of_an_entered_subgraph(qtbot, window, tmp_path):
    """With $LATENTLOOM_UPDATE_SCREENSHOTS set, this rewrites the README's screenshot."""
    enter_prompt_block(qtbot, window)
    qtbot.wait(50)
    window.view.frame_all()
    target = SCREENSHOT if os.environ.get("LATENTLOOM_UPDATE_SCREENSHOTS") else tmp_path / "s.png"
    assert window.grab().save(str(target))
