"""Dragging a node into a group's frame makes it a member (it then moves with the group);
dragging it out removes it. Real mouse drags on the view."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPointF

from core.graph.model import Graph, Group
from nodes import build_registry
from tests.nodeui.canvas_helpers import drag, make_canvas


@pytest.fixture(scope="module")
def registry():
    return build_registry()


FRAME = (0.0, 0.0, 700.0, 500.0)


@pytest.fixture
def canvas(qtbot, registry):
    """A group framing (0, 0)–(700, 500) with a loader in it, and a sampler outside."""
    graph = Graph(registry)
    graph.add_node("LoadCheckpoint", node_id=1, pos=(40, 60))
    graph.add_node("KSampler", node_id=2, pos=(900, 60))
    graph.add_group(Group(1, "Inputs", frozenset({1}), rect=FRAME))
    view, stack = make_canvas(qtbot, registry, graph)
    return view, stack, graph


def title_point(item) -> QPointF:
    return item.mapToScene(QPointF(item.layout.width / 2, 12))


def test_dropping_a_node_inside_a_groups_frame_makes_it_a_member(canvas):
    view, stack, graph = canvas
    start = title_point(view.graph_scene.nodes[2])
    drag(view, start, start - QPointF(500, 0), steps=10)
    assert graph.node(2).pos == (400.0, 60.0)
    assert graph.groups[1].nodes == {1, 2}
    assert stack.count() == 1  # the move and the membership are one step
    stack.undo()
    assert graph.node(2).pos == (900.0, 60.0) and graph.groups[1].nodes == {1}
    stack.redo()
    assert graph.groups[1].nodes == {1, 2}


def test_a_node_dropped_in_a_group_moves_with_it(canvas):
    view, _, graph = canvas
    scene = view.graph_scene
    start = title_point(scene.nodes[2])
    drag(view, start, start - QPointF(500, 0))
    group_title = scene.groups[1].mapToScene(QPointF(60, 12))
    drag(view, group_title, group_title + QPointF(30, 100))
    assert graph.node(2).pos == (430.0, 160.0) and graph.node(1).pos == (70.0, 160.0)
    assert graph.groups[1].rect[:2] == (30.0, 100.0)


def test_dragging_a_member_out_of_the_frame_removes_it(canvas):
    view, stack, graph = canvas
    start = title_point(view.graph_scene.nodes[1])
    drag(view, start, start + QPointF(0, 700))
    assert graph.groups[1].nodes == frozenset()
    assert graph.groups[1].rect == FRAME  # the frame stays where it was
    assert stack.count() == 1
    stack.undo()
    assert graph.groups[1].nodes == {1} and graph.node(1).pos == (40.0, 60.0)


def test_a_member_moved_within_its_group_changes_no_group(canvas):
    view, _, graph = canvas
    start = title_point(view.graph_scene.nodes[1])
    drag(view, start, start + QPointF(60, 40))
    assert graph.groups[1].nodes == {1} and graph.groups[1].rect == FRAME


def test_a_node_dropped_half_outside_a_frame_grows_the_group_to_hold_it(canvas):
    view, _, graph = canvas
    scene = view.graph_scene
    sampler = scene.nodes[2]
    # centre just inside the right edge: the node sticks out by about half its width
    target_x = FRAME[2] - sampler.layout.width / 2 - 5
    start = title_point(sampler)
    drag(view, start, start + QPointF(target_x - 900, 0))
    assert graph.groups[1].nodes == {1, 2}
    frame = scene.groups[1].scene_rect()
    assert frame.contains(sampler.sceneBoundingRect())
    assert graph.groups[1].rect[2] > FRAME[2]


def test_a_frame_fitted_to_its_members_stays_put_when_one_leaves(qtbot, registry):
    graph = Graph(registry)
    graph.add_node("LoadCheckpoint", node_id=1, pos=(0, 0))
    graph.add_node("EmptyLatentImage", node_id=2, pos=(0, 300))
    graph.add_group(Group(1, "Inputs", frozenset({1, 2})))  # no saved rect: fits its members
    view, _ = make_canvas(qtbot, registry, graph)
    scene = view.graph_scene
    before = scene.groups[1].scene_rect()
    start = title_point(scene.nodes[2])
    drag(view, start, start + QPointF(900, 0))
    assert graph.groups[1].nodes == {1}
    assert scene.groups[1].scene_rect() == before


def test_the_frame_a_dragged_node_would_join_lights_up_until_the_drop(canvas):
    from PySide6.QtTest import QTest

    from tests.nodeui.canvas_helpers import LEFT, NO_MODS, at

    view, _, graph = canvas
    scene = view.graph_scene
    start = title_point(scene.nodes[2])
    vp = view.viewport()
    QTest.mousePress(vp, LEFT, NO_MODS, at(view, start))
    QTest.mouseMove(vp, at(view, start - QPointF(100, 0)))
    assert not scene.groups[1].lit  # still outside the frame
    QTest.mouseMove(vp, at(view, start - QPointF(500, 0)))
    assert scene.groups[1].lit
    QTest.mouseRelease(vp, LEFT, NO_MODS, at(view, start - QPointF(500, 0)))
    assert not scene.groups[1].lit and graph.groups[1].nodes == {1, 2}
