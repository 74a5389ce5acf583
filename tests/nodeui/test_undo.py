"""The Qt undo-stack adapter: one do per push, refusals leave nothing, drags merge."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")

from PySide6.QtGui import QUndoStack

from core.graph.commands import AddNode, Connect, MoveNodes, SetParam
from core.graph.model import Graph
from nodes import build_registry
from nodeui import undo
from nodeui.runstate import NodeRunState, RunStatus


@pytest.fixture(scope="module")
def registry():
    return build_registry()


def test_push_does_once_and_undo_redo_round_trip(qapp, registry):
    graph = Graph(registry)
    stack = QUndoStack()
    before = graph.state()
    assert undo.push(stack, graph, AddNode("Int", (10, 20), params={"value": 3})) is None
    after = graph.state()
    assert len(graph) == 1 and stack.count() == 1
    stack.undo()
    assert graph.state() == before
    stack.redo()
    assert graph.state() == after


def test_refused_command_returns_reason_and_records_nothing(qapp, registry):
    graph = Graph(registry)
    stack = QUndoStack()
    undo.push(stack, graph, AddNode("Int", node_id=1))
    undo.push(stack, graph, AddNode("VAEDecode", node_id=2))
    before = graph.state()
    reason = undo.push(stack, graph, Connect(1, "INT", 2, "samples"))
    assert reason and "INT" in reason and "LATENT" in reason
    assert graph.state() == before and stack.count() == 2


def test_one_gesture_token_merges_into_one_step(qapp, registry):
    graph = Graph(registry)
    stack = QUndoStack()
    undo.push(stack, graph, AddNode("Int", (0, 0), node_id=1))
    token = object()
    for x in range(1, 6):
        undo.push(stack, graph, MoveNodes({1: (x * 10.0, 0.0)}, gesture=token))
    for value in range(1, 4):
        undo.push(stack, graph, SetParam(1, "value", value, gesture=token))
    assert stack.count() == 3
    stack.undo()
    assert graph.node(1).params["value"] == 0
    stack.undo()
    assert graph.node(1).pos == (0.0, 0.0)
    undo.push(stack, graph, MoveNodes({1: (5.0, 5.0)}, gesture=object()))
    undo.push(stack, graph, MoveNodes({1: (6.0, 6.0)}, gesture=object()))
    assert stack.count() == 3  # the undone steps were dropped; two separate drags


def test_run_state_accepts_plain_strings():
    state = NodeRunState("failed", message="boom", field="seed")
    assert state.status is RunStatus.FAILED and state.status == "failed"
    assert NodeRunState("done", seconds=0.421).label == "0.42 s"
