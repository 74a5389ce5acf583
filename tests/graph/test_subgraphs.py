"""Subgraphs in the model: convert, unpack, derived specs, and undo of every operation."""

from __future__ import annotations

import pytest

from core.graph import commands as c
from core.graph import subgraph_commands as sc
from core.graph.errors import CycleError, GraphError
from core.graph.model import SUBGRAPH_INPUTS_ID, SUBGRAPH_OUTPUTS_ID, Graph
from core.graph.spec import SocketInput, WidgetInput
from tests.graph.registry import sampler_chain


def _chain() -> Graph:
    """Latent → Sampler → Sampler → Save, plus a Number nobody uses."""
    return sampler_chain(width=128)


def _convert(graph: Graph, ids, name="Block") -> tuple[c.UndoStack, sc.ConvertToSubgraph]:
    stack = c.UndoStack(graph)
    command = sc.ConvertToSubgraph(ids, name)
    stack.push(command)
    return stack, command


def test_converting_a_selection_makes_one_instance_whose_crossing_links_are_its_sockets():
    graph = _chain()
    _, command = _convert(graph, [2, 3])
    iid = command.instance_id
    definition = graph.subgraphs.get(graph.node(iid).type_id)
    assert [(b.name, b.type) for b in definition.inputs] == [("latent", "LATENT")]
    assert [(b.name, b.type) for b in definition.outputs] == [("LATENT", "LATENT")]
    assert sorted(n.id for n in graph) == [1, 4, iid]
    assert graph.link_to(iid, "latent").src == 1
    assert graph.link_to(4, "latent").src == iid
    inner = definition.graph
    assert inner.link_to(2, "latent").src == SUBGRAPH_INPUTS_ID
    assert inner.link_to(SUBGRAPH_OUTPUTS_ID, "LATENT").src == 3
    spec = graph.spec(iid)
    assert spec.title == "Block" and isinstance(spec.input("latent"), SocketInput)


def test_convert_then_unpack_gives_the_same_graph_back():
    graph = _chain()
    before = graph.state()
    stack, command = _convert(graph, [2, 3])
    stack.push(sc.UnpackSubgraph(command.instance_id))
    assert graph.state() == before
    assert len(graph.subgraphs) == 0


def test_convert_and_unpack_undo_and_redo_exactly():
    graph = _chain()
    before = graph.state()
    stack, command = _convert(graph, [2, 3])
    converted = graph.state()
    stack.push(sc.UnpackSubgraph(command.instance_id))
    stack.undo()
    assert graph.state() == converted
    stack.undo()
    assert graph.state() == before
    stack.redo()
    assert graph.state() == converted


def test_an_input_that_feeds_only_widgets_is_a_promoted_widget_with_their_range():
    graph = _chain()
    _, command = _convert(graph, [2, 3])
    def_id = graph.node(command.instance_id).type_id
    stack = c.UndoStack(graph)
    before = graph.state()
    stack.push(sc.PromoteWidget(def_id, 2, "seed"))
    widget = graph.spec(command.instance_id).input("seed")
    assert isinstance(widget, WidgetInput) and widget.max == 2**63 - 1 and widget.default == 5
    assert graph.node(command.instance_id).params["seed"] == 5
    stack.undo()
    assert graph.state() == before


def test_unpack_gives_promoted_values_back_to_the_inner_widgets():
    graph = _chain()
    stack, command = _convert(graph, [2, 3])
    def_id = graph.node(command.instance_id).type_id
    stack.push(sc.PromoteWidget(def_id, 3, "seed"))
    stack.push(c.SetParam(command.instance_id, "seed", 42))
    stack.push(sc.UnpackSubgraph(command.instance_id))
    assert graph.node(3).params["seed"] == 42


def test_editing_a_definition_once_changes_every_instance_in_one_undo_step():
    graph = _chain()
    stack, command = _convert(graph, [2, 3])
    def_id = graph.node(command.instance_id).type_id
    other = graph.add_node(def_id).id
    stack.push(sc.AddSubgraphSocket(def_id, "inputs", "strength", "FLOAT"))
    for iid in (command.instance_id, other):
        assert graph.spec(iid).input("strength") is not None
    assert len(stack) == 2
    stack.undo()
    assert graph.spec(other).input("strength") is None


def test_rename_reorder_and_remove_sockets_keep_links_and_undo():
    graph = _chain()
    stack, command = _convert(graph, [2, 3])
    iid = command.instance_id
    def_id = graph.node(iid).type_id
    definition = graph.subgraphs.get(def_id)
    before = graph.state()
    stack.push(sc.RenameSubgraphSocket(def_id, "inputs", "latent", "start"))
    assert graph.link_to(iid, "start").src == 1
    assert definition.graph.link_to(2, "latent").src_output == "start"
    stack.push(sc.AddSubgraphSocket(def_id, "outputs", "extra", "LATENT"))
    stack.push(sc.MoveSubgraphSocket(def_id, "outputs", "extra", 0))
    assert [b.name for b in definition.outputs] == ["extra", "LATENT"]
    stack.push(sc.RemoveSubgraphSocket(def_id, "outputs", "LATENT"))
    assert graph.link_to(4, "latent") is None
    assert definition.graph.link_to(SUBGRAPH_OUTPUTS_ID, "LATENT") is None
    stack.push(sc.RenameSubgraph(def_id, "Two samplers"))
    assert graph.spec(iid).title == "Two samplers"
    for _ in range(5):
        stack.undo()
    assert graph.state() == before


def test_edits_inside_a_definition_are_ordinary_commands_with_undo():
    graph = _chain()
    stack, command = _convert(graph, [2, 3])
    def_id = graph.node(command.instance_id).type_id
    inner = graph.subgraphs.get(def_id).graph
    before = graph.state()
    stack.push(sc.EditInside(def_id, c.SetParam(3, "seed", 99)))
    assert inner.node(3).params["seed"] == 99
    stack.undo()
    assert graph.state() == before


def test_definitions_nest_but_never_hold_themselves():
    graph = _chain()
    _, outer = _convert(graph, [2, 3], "Outer")
    outer_id = graph.node(outer.instance_id).type_id
    inner_graph = graph.subgraphs.get(outer_id).graph
    inner_stack = c.UndoStack(inner_graph)
    nested = sc.ConvertToSubgraph([3], "Inner")
    inner_stack.push(nested)
    inner_id = inner_graph.node(nested.instance_id).type_id
    assert graph.subgraphs.uses(outer_id) == {inner_id}
    with pytest.raises(CycleError):
        graph.subgraphs.get(inner_id).graph.add_node(outer_id)
    with pytest.raises(CycleError):
        inner_graph.add_node(outer_id)


def test_boundary_nodes_cannot_be_deleted_and_used_definitions_cannot_be_removed():
    graph = _chain()
    stack, command = _convert(graph, [2, 3])
    def_id = graph.node(command.instance_id).type_id
    with pytest.raises(GraphError, match="inputs and outputs stay"):
        graph.subgraphs.get(def_id).graph.remove_node(SUBGRAPH_INPUTS_ID)
    with pytest.raises(GraphError, match="still used"):
        stack.push(sc.RemoveDefinition(def_id))
