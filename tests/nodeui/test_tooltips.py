"""Hovering on a node explains it: a socket its type and description, a field its description
and range, the title the node's description. Sent as the help events Qt sends on hover."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QEvent, QPointF
from PySide6.QtGui import QHelpEvent
from PySide6.QtWidgets import QApplication, QToolTip

from core.graph.model import Graph
from nodes import build_registry
from tests.nodeui.canvas_helpers import at, make_canvas


@pytest.fixture(scope="module")
def registry():
    return build_registry()


def _hover(qtbot, view, scene_pos: QPointF) -> str:
    """The tooltip shown when the pointer rests at ``scene_pos``."""
    QToolTip.hideText()
    qtbot.waitUntil(lambda: not QToolTip.isVisible())
    point = at(view, scene_pos)
    event = QHelpEvent(QEvent.Type.ToolTip, point, view.viewport().mapToGlobal(point))
    QApplication.sendEvent(view.viewport(), event)
    return QToolTip.text() if QToolTip.isVisible() else ""


def test_sockets_fields_and_titles_explain_themselves(qtbot, registry):
    graph = Graph(registry)
    sampler = graph.add_node("KSampler", pos=(300, 100)).id
    view, _ = make_canvas(qtbot, registry, graph)
    item = view.graph_scene.nodes[sampler]
    lay = item.layout

    def local(point: QPointF) -> QPointF:
        return item.mapToScene(point)

    positive = next(slot for slot in lay.inputs if slot.name == "positive")
    tip = _hover(qtbot, view, local(positive.center))
    assert "positive" in tip and "CONDITIONING" in tip and "the prompt to follow" in tip
    assert _hover(qtbot, view, local(positive.label_rect.center())) == tip  # the label counts too

    latent = next(slot for slot in lay.outputs if slot.name == "LATENT")
    assert "decode it with VAE Decode" in _hover(qtbot, view, local(latent.center))

    cfg = next(row for row in lay.editors if row.widget.name == "cfg")
    tip = _hover(qtbot, view, local(cfg.rect.center()))
    assert "guidance scale" in tip and "default 8.0" in tip and "0 to 100" in tip

    tip = _hover(qtbot, view, local(lay.title_rect.center() + QPointF(30, 0)))
    assert "KSampler" in tip and "Denoises a latent" in tip

    assert _hover(qtbot, view, QPointF(-400, -400)) == ""  # empty canvas: nothing
