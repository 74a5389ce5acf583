"""Subgraphs in workflow files: nested definitions save, reload and migrate; files without
subgraphs stay byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.graph import commands as c
from core.graph import subgraph_commands as sc
from core.graph import workflow as wf
from core.graph.model import Graph
from tests.graph.registry import make_registry, sampler_chain

ROOT = Path(__file__).resolve().parents[2]


def _nested() -> Graph:
    graph = sampler_chain()
    stack = c.UndoStack(graph)
    outer = sc.ConvertToSubgraph([2, 3], "Outer")
    stack.push(outer)
    outer_id = graph.node(outer.instance_id).type_id
    stack.push(sc.PromoteWidget(outer_id, 3, "seed"))
    stack.push(c.SetParam(outer.instance_id, "seed", 11))
    inner_graph = graph.subgraphs.get(outer_id).graph
    c.UndoStack(inner_graph).push(sc.ConvertToSubgraph([2], "Inner"))
    return graph


def test_nested_subgraphs_save_and_reload_equal(tmp_path):
    graph = _nested()
    path = tmp_path / "nested.json"
    wf.save_workflow(graph, path)
    data = json.loads(path.read_text())
    assert data["version"] == 3 and len(data["subgraphs"]) == 2
    loaded = wf.load_workflow(path, make_registry())
    assert loaded.graph.state() == graph.state()
    wf.save_workflow(loaded.graph, tmp_path / "again.json")
    assert (tmp_path / "again.json").read_bytes() == path.read_bytes()


def test_a_file_without_subgraphs_is_byte_identical_after_a_round_trip(tmp_path):
    graph = Graph(make_registry())
    graph.add_node("Latent", pos=(0, 0))
    graph.add_node("Save", pos=(200, 0))
    graph.connect(1, "LATENT", 2, "latent")
    path = tmp_path / "plain.json"
    wf.save_workflow(graph, path)
    original = path.read_bytes()
    assert json.loads(original)["version"] == 2 and b"subgraphs" not in original
    wf.save_workflow(wf.load_workflow(path, make_registry()).graph, path)
    assert path.read_bytes() == original


def test_the_default_workflow_saved_once_is_byte_identical_after_a_round_trip(tmp_path):
    from nodes import build_registry

    registry = build_registry()
    loaded = wf.load_workflow(ROOT / "resources" / "workflows" / "default.json", registry)
    path = tmp_path / "default.json"
    wf.save_workflow(loaded.graph, path, loaded.view)
    saved = path.read_bytes()
    again = wf.load_workflow(path, registry)
    wf.save_workflow(again.graph, path, again.view)
    assert path.read_bytes() == saved and b'"version": 2' in saved


def test_a_version_2_file_migrates_and_opens(tmp_path):
    path = tmp_path / "old.json"
    graph = Graph(make_registry())
    graph.add_node("Latent")
    wf.save_workflow(graph, path)
    data = wf.MIGRATIONS[2](json.loads(path.read_text()))
    assert data["version"] == 3
    assert wf.from_dict(data, make_registry()).graph.state() == graph.state()


def _saved(tmp_path, change) -> Path:
    data = json.loads(wf.dumps(_nested()))
    change(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["subgraphs"][0].update(inputs=[["x"]]), "inputs should be a list"),
        (lambda d: d["subgraphs"].append(d["subgraphs"][0]), "two subgraphs have the id"),
        (
            lambda d: d["subgraphs"][0]["nodes"][0].update(params={"nope": 1}),
            "in subgraph .*has no parameter 'nope'",
        ),
    ],
)
def test_bad_subgraph_entries_are_one_line_errors_naming_the_file(tmp_path, change, message):
    path = _saved(tmp_path, change)
    with pytest.raises(wf.WorkflowError, match=message) as caught:
        wf.load_workflow(path, make_registry())
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_subgraphs_holding_each_other_are_refused(tmp_path):
    def loop(data):
        first, second = data["subgraphs"]
        first["nodes"].append({"id": 50, "type": second["id"], "params": {}})
        second["nodes"].append({"id": 51, "type": first["id"], "params": {}})

    with pytest.raises(wf.WorkflowError, match="hold each other in a loop"):
        wf.load_workflow(_saved(tmp_path, loop), make_registry())


def test_the_shipped_default_workflow_is_byte_for_byte_what_the_saver_writes(tmp_path):
    from nodes import build_registry

    shipped = ROOT / "resources" / "workflows" / "default.json"
    loaded = wf.load_workflow(shipped, build_registry())
    path = tmp_path / "default.json"
    wf.save_workflow(loaded.graph, path, loaded.view)
    assert path.read_bytes() == shipped.read_bytes(), (
        "resources/workflows/default.json is not what the saver writes: load it with "
        "core.graph.workflow.load_workflow and save it again with save_workflow"
    )
