from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.graph import commands as c
from core.graph.errors import GraphError
from core.graph.model import Graph, Group
from tests.graph.registry import make_registry


def _graph() -> Graph:
    graph = Graph(make_registry())
    lat = graph.add_node("Latent", pos=(0, 0)).id
    samp = graph.add_node("Sampler", pos=(200, 0)).id
    save = graph.add_node("Save", pos=(400, 0)).id
    graph.connect(lat, "LATENT", samp, "latent")
    graph.connect(samp, "LATENT", save, "latent")
    return graph


def test_remove_restores_node_and_all_links_on_undo():
    graph = _graph()
    before = graph.state()
    stack = c.UndoStack(graph)
    stack.push(c.RemoveNodes([2]))
    assert 2 not in graph and graph.links == []
    stack.undo()
    assert graph.state() == before


def test_connect_to_occupied_input_replaces_and_undo_restores_old_link():
    graph = _graph()
    other = graph.add_node("Latent").id
    stack = c.UndoStack(graph)
    stack.push(c.Connect(other, "LATENT", 2, "latent"))
    assert graph.link_to(2, "latent").src == other
    stack.undo()
    assert graph.link_to(2, "latent").src == 1


def test_refused_connect_leaves_old_link_in_place():
    graph = _graph()
    num = graph.add_node("Number").id
    with pytest.raises(GraphError):
        c.UndoStack(graph).push(c.Connect(num, "INT", 2, "latent"))
    assert graph.link_to(2, "latent").src == 1


def test_consecutive_param_edits_merge_into_one_step():
    graph = _graph()
    stack = c.UndoStack(graph)
    for seed in (1, 2, 3):
        stack.push(c.SetParam(2, "seed", seed))
    stack.push(c.SetParam(1, "width", 128))
    assert len(stack) == 2
    stack.undo()
    stack.undo()
    assert graph.node(2).params["seed"] == 0 and graph.node(1).params["width"] == 64


def test_moves_merge_within_a_gesture_only():
    graph = _graph()
    stack = c.UndoStack(graph)
    for x in range(5):
        stack.push(c.MoveNodes({1: (x, x)}, gesture="drag-1"))
    stack.push(c.MoveNodes({1: (50, 50)}, gesture="drag-2"))
    assert len(stack) == 2
    stack.undo()
    assert graph.node(1).pos == (4.0, 4.0)
    stack.undo()
    assert graph.node(1).pos == (0.0, 0.0)


def test_a_move_that_joins_a_group_is_one_step_with_the_drag():
    graph = _graph()
    graph.add_group(Group(1, "Inputs", frozenset({1}), rect=(0, 0, 100, 100)))
    stack = c.UndoStack(graph)
    stack.push(c.MoveNodes({3: (300, 0)}, gesture="drag"))
    stack.push(c.MoveNodes({3: (20, 20)}, gesture="drag"))
    joined = {1: {"nodes": frozenset({1, 3}), "rect": (0, 0, 300, 200)}}
    stack.push(c.MoveNodes({3: (20, 20)}, gesture="drag", groups=joined))
    assert len(stack) == 1
    assert graph.groups[1].nodes == {1, 3} and graph.groups[1].rect == (0, 0, 300, 200)
    stack.undo()
    assert graph.node(3).pos == (400.0, 0.0)
    assert graph.groups[1].nodes == {1} and graph.groups[1].rect == (0, 0, 100, 100)
    stack.redo()
    assert graph.groups[1].nodes == {1, 3} and graph.node(3).pos == (20.0, 20.0)


def test_a_move_naming_a_missing_group_changes_nothing():
    graph = _graph()
    with pytest.raises(GraphError):
        c.UndoStack(graph).push(c.MoveNodes({1: (9, 9)}, groups={7: {"nodes": frozenset()}}))
    assert graph.node(1).pos == (0.0, 0.0)


def test_resizes_merge_within_a_gesture_only():
    graph = _graph()
    stack = c.UndoStack(graph)
    for w in (250, 260, 300):
        stack.push(c.SetNodeAttribute([2], "size", (w, 100), gesture="resize-1"))
    assert len(stack) == 1 and graph.node(2).size == (300, 100)
    stack.push(c.SetNodeAttribute([2], "size", (400, 100), gesture="resize-2"))
    stack.push(c.SetNodeAttribute([2], "bypassed", True))
    stack.push(c.SetNodeAttribute([2], "bypassed", False))
    assert len(stack) == 4  # without a token, edits stay apart
    for _ in range(4):
        stack.undo()
    assert graph.node(2).size is None


def test_paste_of_many_nodes_is_one_step_and_keeps_input_links_on_request():
    graph = _graph()
    fragment = c.Fragment.copy_from(graph, [2, 3])
    stack = c.UndoStack(graph)
    stack.push(c.Paste(fragment, keep_input_links=True))
    assert len(graph) == 5 and len(stack) == 1
    new_sampler = max(graph.nodes) - 1
    assert graph.link_to(new_sampler, "latent").src == 1  # external input kept
    stack.undo()
    assert len(graph) == 3
    stack.push(c.Paste(fragment))
    assert graph.link_to(max(graph.nodes) - 1, "latent") is None


def test_group_and_ungroup():
    graph = _graph()
    stack = c.UndoStack(graph)
    stack.push(c.GroupNodes([1, 2], "Inputs"))
    gid = next(iter(graph.groups))
    assert graph.groups[gid].nodes == {1, 2}
    stack.push(c.Ungroup(gid))
    assert not graph.groups
    stack.undo()
    assert graph.groups[gid].title == "Inputs"


# --- property: any command sequence, fully undone, restores the original -----------------

TYPES = ("Number", "Scale", "Latent", "Sampler", "Save", "Reroute")


def _draw_command(data: st.DataObject, graph: Graph) -> c.Command:
    ids = sorted(graph.nodes)
    pick_node = st.sampled_from(ids) if ids else st.just(1)
    kind = data.draw(
        st.sampled_from(
            [
                "add",
                "remove",
                "connect",
                "disconnect",
                "param",
                "move",
                "flag",
                "group",
                "ungroup",
                "paste",
            ]
        )
    )
    if kind == "add" or not ids:
        return c.AddNode(data.draw(st.sampled_from(TYPES)), (data.draw(st.integers(0, 900)), 0))
    if kind == "remove":
        return c.RemoveNodes(data.draw(st.lists(pick_node, min_size=1, max_size=3)))
    if kind == "connect":
        src, dst = data.draw(pick_node), data.draw(pick_node)
        outs = [o.name for o in graph.spec(src).outputs] or ["none"]
        ins = [i.name for i in graph.spec(dst).inputs] or ["none"]
        return c.Connect(
            src, data.draw(st.sampled_from(outs)), dst, data.draw(st.sampled_from(ins))
        )
    if kind == "disconnect":
        links = graph.links
        if not links:
            return c.Disconnect(data.draw(pick_node), "latent")
        lk = data.draw(st.sampled_from(links))
        return c.Disconnect(lk.dst, lk.dst_input)
    if kind == "param":
        node = data.draw(pick_node)
        widgets = [w.name for w in graph.spec(node).widgets] or ["none"]
        return c.SetParam(node, data.draw(st.sampled_from(widgets)), data.draw(st.integers(0, 9)))
    if kind == "move":
        return c.MoveNodes({data.draw(pick_node): (data.draw(st.integers(0, 99)), 7.0)})
    if kind == "flag":
        attribute = data.draw(st.sampled_from(["bypassed", "muted", "collapsed", "title", "ui"]))
        if attribute == "title":
            value = data.draw(st.text(max_size=3))
        elif attribute == "ui":
            mode = data.draw(st.sampled_from(["fixed", "increment"]))
            value = {"control_after_run": {"seed": mode}}
        else:
            value = data.draw(st.booleans())
        return c.SetNodeAttribute(data.draw(st.lists(pick_node, min_size=1)), attribute, value)
    if kind == "group":
        return c.GroupNodes(data.draw(st.lists(pick_node, min_size=1, max_size=3)), "G")
    if kind == "ungroup":
        return c.Ungroup(data.draw(st.sampled_from(sorted(graph.groups) or [1])))
    fragment = c.Fragment.copy_from(graph, data.draw(st.lists(pick_node, min_size=1)))
    return c.Paste(fragment, keep_input_links=data.draw(st.booleans()))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_sequence_undone_restores_and_redone_reproduces(data):
    graph = _graph()
    stack = c.UndoStack(graph)
    original = graph.state()
    for _ in range(data.draw(st.integers(1, 25))):
        command = _draw_command(data, graph)
        before = graph.state()
        try:
            stack.push(command)
        except GraphError:
            assert graph.state() == before, "a refused command must change nothing"
    final = graph.state()
    while stack.undo():
        pass
    assert graph.state() == original
    while stack.redo():
        pass
    assert graph.state() == final
