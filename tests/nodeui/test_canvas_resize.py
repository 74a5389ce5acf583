"""Resizing nodes and groups by the grip in their bottom-right corner, with real mouse drags."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtTest import QTest

from core.graph.model import Graph, Group
from core.graph.workflow import dumps, loads
from nodes import build_registry
from nodeui.canvas import style as s
from tests.nodeui.canvas_helpers import LEFT, NO_MODS, at, drag, make_canvas


@pytest.fixture(scope="module")
def registry():
    return build_registry()


def grip_point(item) -> QPointF:
    """The middle of a node's resize grip, in scene coordinates."""
    return item.mapToScene(item.layout.grip_rect.center())


def test_dragging_a_nodes_grip_resizes_it_in_one_undo_step(qtbot, registry):
    graph = Graph(registry)
    nid = graph.add_node("KSampler", pos=(0, 0)).id
    view, stack = make_canvas(qtbot, registry, graph)
    item = view.graph_scene.nodes[nid]
    width, height = item.layout.width, item.layout.height
    start = grip_point(item)
    drag(view, start, start + QPointF(120, 60), steps=8)
    assert graph.node(nid).size == (width + 120, height + 60)
    assert (item.layout.width, item.layout.height) == (width + 120, height + 60)
    assert graph.node(nid).pos == (0.0, 0.0)  # resized, not moved
    assert stack.count() == 1 and stack.undoText() == "Resize"
    stack.undo()
    assert graph.node(nid).size is None and item.layout.width == width
    stack.redo()
    assert item.layout.width == width + 120


def test_a_node_is_never_resized_smaller_than_its_rows(qtbot, registry):
    graph = Graph(registry)
    nid = graph.add_node("KSampler", pos=(0, 0)).id
    view, _ = make_canvas(qtbot, registry, graph)
    item = view.graph_scene.nodes[nid]
    rows = item.layout.content_height
    start = grip_point(item)
    drag(view, start, start - QPointF(400, 400))
    assert graph.node(nid).size == (s.MIN_NODE_WIDTH, rows)
    assert item.layout.height == rows
    last = item.layout.editors[-1].rect
    assert last.bottom() < item.layout.height  # the last field is still inside the node


def test_escape_during_a_resize_puts_the_node_back_without_an_undo_step(qtbot, registry):
    graph = Graph(registry)
    nid = graph.add_node("KSampler", pos=(0, 0)).id
    view, stack = make_canvas(qtbot, registry, graph)
    item = view.graph_scene.nodes[nid]
    start = grip_point(item)
    vp = view.viewport()
    QTest.mousePress(vp, LEFT, NO_MODS, at(view, start))
    QTest.mouseMove(vp, at(view, start + QPointF(80, 0)))
    assert graph.node(nid).size is not None
    view.setFocus()
    QTest.keyClick(view, Qt.Key.Key_Escape)
    QTest.mouseRelease(vp, LEFT, NO_MODS, at(view, start + QPointF(80, 0)))
    assert graph.node(nid).size is None
    assert stack.count() == 0


def test_a_wider_node_shows_its_whole_title_and_longer_field_names(qtbot, registry):
    graph = Graph(registry)
    title = "Positive prompt for the first pass of the castle scene at dusk"
    nid = graph.add_node("KSampler", title=title, pos=(0, 0)).id
    view, _ = make_canvas(qtbot, registry, graph)
    item = view.graph_scene.nodes[nid]
    assert "…" in item.title_text
    start = grip_point(item)
    drag(view, start, start + QPointF(200, 0))
    assert item.title_text == title
    drag(view, grip_point(item), grip_point(item) - QPointF(item.layout.width, 0))
    narrow = {texts.name for texts in item._texts}
    assert any(name.endswith("…") for name in narrow)  # squeezed at the least width


def test_a_resized_nodes_size_is_saved_in_the_workflow(qtbot, registry):
    graph = Graph(registry)
    nid = graph.add_node("KSampler", pos=(0, 0)).id
    view, _ = make_canvas(qtbot, registry, graph)
    item = view.graph_scene.nodes[nid]
    start = grip_point(item)
    drag(view, start, start + QPointF(90, 40))
    size = graph.node(nid).size
    reopened = loads(dumps(graph), registry).graph
    assert reopened.node(nid).size == size
    view2, _ = make_canvas(qtbot, registry, reopened)
    assert view2.graph_scene.nodes[nid].layout.width == size[0]


def test_a_taller_node_gives_its_picture_the_extra_room(qtbot, registry):
    from PySide6.QtGui import QImage

    graph = Graph(registry)
    nid = graph.add_node("PreviewImage", pos=(0, 0)).id
    view, _ = make_canvas(qtbot, registry, graph)
    image = QImage(64, 64, QImage.Format.Format_RGB32)
    image.fill(Qt.GlobalColor.darkCyan)
    view.graph_scene.set_node_images(nid, [image])
    item = view.graph_scene.nodes[nid]
    before = item.layout.media_rect.height()
    start = grip_point(item)
    drag(view, start, start + QPointF(0, 100))
    assert item.layout.media_rect.height() == pytest.approx(before + 100)


def test_dragging_a_groups_grip_resizes_its_frame_in_one_step(qtbot, registry):
    graph = Graph(registry)
    nid = graph.add_node("KSampler", pos=(40, 60)).id
    graph.add_group(Group(1, "Sampling", frozenset({nid}), rect=(0.0, 0.0, 600.0, 500.0)))
    view, stack = make_canvas(qtbot, registry, graph)
    group = view.graph_scene.groups[1]
    grip = group.mapToScene(group.grip_rect().center())
    drag(view, grip, grip + QPointF(150, 80))
    assert graph.groups[1].rect == (0.0, 0.0, 750.0, 580.0)
    assert group.scene_rect().width() == 750.0
    assert stack.count() == 1 and stack.undoText() == "Resize Group"
    reopened = loads(dumps(graph), registry).graph
    assert reopened.groups[1].rect == (0.0, 0.0, 750.0, 580.0)
    stack.undo()
    assert graph.groups[1].rect == (0.0, 0.0, 600.0, 500.0)
    assert group.scene_rect().width() == 600.0


def test_a_group_is_never_resized_so_small_that_a_member_sticks_out(qtbot, registry):
    graph = Graph(registry)
    nid = graph.add_node("KSampler", pos=(40, 60)).id
    graph.add_group(Group(1, "Sampling", frozenset({nid}), rect=(0.0, 0.0, 600.0, 500.0)))
    view, _ = make_canvas(qtbot, registry, graph)
    group = view.graph_scene.groups[1]
    grip = group.mapToScene(group.grip_rect().center())
    drag(view, grip, QPointF(10, 10))
    frame = group.scene_rect()
    assert frame.contains(view.graph_scene.nodes[nid].sceneBoundingRect())
    assert graph.groups[1].rect[2] < 600.0


def test_the_pointer_over_a_grip_shows_a_resize_cursor(qtbot, registry):
    graph = Graph(registry)
    nid = graph.add_node("KSampler", pos=(40, 60)).id
    graph.add_group(Group(1, "Sampling", frozenset({nid}), rect=(0.0, 0.0, 600.0, 600.0)))
    view, _ = make_canvas(qtbot, registry, graph)
    vp = view.viewport()
    diagonal = Qt.CursorShape.SizeFDiagCursor
    group = view.graph_scene.groups[1]
    for grip in (
        grip_point(view.graph_scene.nodes[nid]),
        group.mapToScene(group.grip_rect().center()),
    ):
        QTest.mouseMove(vp, at(view, grip - QPointF(60, 60)))
        assert vp.cursor().shape() != diagonal
        QTest.mouseMove(vp, at(view, grip))
        assert vp.cursor().shape() == diagonal
    QTest.mouseMove(vp, at(view, QPointF(300, 300)))
    assert vp.cursor().shape() != diagonal
