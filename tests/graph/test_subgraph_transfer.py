"""Subgraph definitions travel between workflows: copy and paste, and the user's library."""

from __future__ import annotations

import json

import pytest

from core.graph import commands as c
from core.graph import subgraph_commands as sc
from core.graph import subgraph_transfer as st
from core.graph import workflow as wf
from core.graph.model import Graph
from tests.graph.registry import make_registry, sampler_chain


def _nested() -> tuple[Graph, str, str]:
    """Latent → [Outer: Sampler → [Inner: Sampler]] → Save; returns the outer and inner ids."""
    graph = sampler_chain()
    stack = c.UndoStack(graph)
    inner = sc.ConvertToSubgraph([3], "Inner")
    stack.push(inner)
    inner_id = graph.node(inner.instance_id).type_id
    outer = sc.ConvertToSubgraph([2, inner.instance_id], "Outer")
    stack.push(outer)
    return graph, graph.node(outer.instance_id).type_id, inner_id


def _paste(target: Graph, source: Graph, node_ids) -> c.Paste:
    text = json.dumps(wf.to_dict(source, node_ids=set(node_ids)))
    loaded = wf.loads(text, target.registry)
    fragment = c.Fragment.copy_from(loaded.graph, list(loaded.graph.nodes))
    fragment.definitions = st.definition_entries(
        loaded.graph, [d.id for d in loaded.graph.subgraphs]
    )
    command = c.Paste(fragment)
    command.do(target)
    return command


def test_a_copied_instance_carries_its_definition_and_the_ones_inside_it():
    graph, outer, inner = _nested()
    instance = next(n.id for n in graph if n.type_id == outer)
    data = wf.to_dict(graph, node_ids={instance})
    assert {e["id"] for e in data["subgraphs"]} == {outer, inner}
    plain = wf.to_dict(graph, node_ids={1})
    assert "subgraphs" not in plain and plain["version"] == wf.VERSION_WITHOUT_SUBGRAPHS


def test_pasting_into_another_workflow_adds_the_definitions_and_undo_removes_them():
    source, outer, inner = _nested()
    instance = next(n.id for n in source if n.type_id == outer)
    target = Graph(make_registry())
    command = _paste(target, source, [instance])
    pasted = target.node(next(iter(command.id_map.values())))
    assert pasted.type_id == outer and {d.id for d in target.subgraphs} == {outer, inner}
    assert target.spec(pasted.id).outputs[0].name == "LATENT"
    command.undo(target)
    assert len(target) == 0 and len(target.subgraphs) == 0
    command.do(target)
    assert {d.id for d in target.subgraphs} == {outer, inner}


def test_pasting_where_the_definition_exists_keeps_the_workflows_own():
    graph, outer, _ = _nested()
    before = list(graph.subgraphs)
    instance = next(n.id for n in graph if n.type_id == outer)
    command = _paste(graph, graph, [instance])
    assert list(graph.subgraphs) == before
    command.undo(graph)
    assert list(graph.subgraphs) == before


def test_a_definition_saved_to_the_library_adds_to_another_workflow_in_one_step(tmp_path):
    graph, outer, inner = _nested()
    path = st.save_to_library(graph, outer, tmp_path / "library")
    assert path.name == "Outer.json"
    saved = st.list_library(tmp_path / "library", make_registry())
    assert [(s.name, s.def_id) for s in saved] == [("Outer", outer)]
    target = Graph(make_registry())
    stack = c.UndoStack(target)
    stack.push(saved[0].add_instance((10.0, 20.0)))
    node = next(iter(target))
    assert node.type_id == outer and node.pos == (10.0, 20.0)
    assert {d.id for d in target.subgraphs} == {outer, inner}
    stack.undo()
    assert len(target) == 0 and len(target.subgraphs) == 0


def test_saving_again_replaces_the_file_that_holds_the_definition(tmp_path):
    graph, outer, _ = _nested()
    first = st.save_to_library(graph, outer, tmp_path)
    c.UndoStack(graph).push(sc.RenameSubgraph(outer, "Renamed"))
    second = st.save_to_library(graph, outer, tmp_path)
    assert first == second and [p.name for p in tmp_path.iterdir()] == ["Outer.json"]
    assert st.read_library_file(second, make_registry()).name == "Renamed"


def test_a_bad_library_file_is_named_in_a_one_line_problem(tmp_path):
    (tmp_path / "broken.json").write_text('{"format": "latentloom-subgraph", "version": 1}')
    (tmp_path / "other.json").write_text('{"format": "latentloom"}')
    problems = st.library_problems(tmp_path, make_registry())
    assert len(problems) == 2 and all("\n" not in p for p in problems)
    assert "broken.json" in problems[0] and "other.json" in problems[1]
    assert st.list_library(tmp_path, make_registry()) == []
    with pytest.raises(wf.WorkflowError, match="not a saved subgraph"):
        st.read_library_file(tmp_path / "other.json", make_registry())


def test_file_names_keep_to_safe_characters_and_never_collide():
    assert st.file_name("a/b:c") == "a_b_c.json"
    assert st.file_name("Block", ["Block.json"]) == "Block 2.json"
    assert st.file_name("..") == "__.json"
