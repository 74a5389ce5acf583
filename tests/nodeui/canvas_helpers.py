"""Shared set-up for the canvas tests: a real registry, a scene, a shown view, and mouse
gestures sent to the view's viewport at scene coordinates."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QUndoStack
from PySide6.QtTest import QTest

from core.graph.commands import AddNode
from core.graph.model import Graph
from nodeui import undo
from nodeui.canvas import GraphScene, GraphView

LEFT = Qt.MouseButton.LeftButton
NO_MODS = Qt.KeyboardModifier.NoModifier


def make_canvas(qtbot, registry, graph: Graph | None = None) -> tuple[GraphView, QUndoStack]:
    graph = graph if graph is not None else Graph(registry)
    stack = QUndoStack()
    scene = GraphScene(graph, registry, stack)
    view = GraphView(scene)
    view.resize(1200, 800)
    qtbot.addWidget(view)
    view.show()
    qtbot.waitExposed(view)
    view.set_view_state({"center": [500, 300], "zoom": 1.0})
    view._test_stack = stack  # keeps the stack alive as long as the view
    return view, stack


def canvas_with(
    qtbot, registry, *nodes: tuple[str, tuple[float, float]]
) -> tuple[GraphView, QUndoStack]:
    """A shown canvas holding ``nodes`` (type, position) with ids 1, 2, … in that order, and
    an empty undo stack, so a test's own edits are all it holds."""
    view, stack = make_canvas(qtbot, registry)
    for node_id, (type_id, pos) in enumerate(nodes, start=1):
        undo.push(stack, view.graph_scene.graph, AddNode(type_id, pos, node_id=node_id))
    stack.clear()
    return view, stack


def at(view: GraphView, scene_pos: QPointF) -> QPoint:
    return view.mapFromScene(scene_pos)


def drag(view: GraphView, start: QPointF, end: QPointF, mods=NO_MODS, steps: int = 6) -> None:
    """Presses at ``start``, moves in ``steps`` steps and releases at ``end`` (scene points)."""
    vp = view.viewport()
    QTest.mousePress(vp, LEFT, mods, at(view, start))
    for i in range(1, steps + 1):
        p = start + (end - start) * (i / steps)
        QTest.mouseMove(vp, at(view, p))
    QTest.mouseRelease(vp, LEFT, mods, at(view, end))


def click(view: GraphView, pos: QPointF, mods=NO_MODS) -> None:
    QTest.mouseClick(view.viewport(), LEFT, mods, at(view, pos))
