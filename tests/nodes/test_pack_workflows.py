"""Workflows note which node pack each node came from, so a node whose pack is missing, disabled
or broken opens as a placeholder that names the pack and says what to do."""

from __future__ import annotations

import json

import pytest

from core.engine import validate
from core.graph import workflow as wf
from core.graph.model import Graph
from nodes import build_registry
from tests.helpers.node_packs import EXAMPLE_NAME, install_example_pack, install_on_path, pack_site

__all__ = ["pack_site"]  # the fixture, imported for the tests below


def _saved_graph(site, tmp_path):
    """A workflow file with a built-in image feeding the example pack's Posterize and a save."""
    install_example_pack(site)
    graph = Graph(build_registry())
    source = graph.add_node("EmptyImage", params={"width": 8, "height": 8}).id
    poster = graph.add_node("ExamplePack.Posterize", params={"levels": 3}).id
    save = graph.add_node("SaveImage").id
    graph.connect(source, "IMAGE", poster, "image")
    graph.connect(poster, "IMAGE", save, "images")
    path = tmp_path / "flow.json"
    wf.save_workflow(graph, path)
    return path, poster


def test_a_saved_node_from_a_pack_names_its_pack(pack_site, tmp_path):
    path, poster = _saved_graph(pack_site, tmp_path)
    entries = {n["id"]: n for n in json.loads(path.read_text())["nodes"]}
    assert entries[poster]["pack"] == EXAMPLE_NAME
    assert [n for n in entries.values() if "pack" in n] == [entries[poster]]
    plain = wf.to_dict(Graph(build_registry(entry_points=[])))  # no node from a pack
    assert json.loads(path.read_text())["version"] == plain["version"]  # the note needs none


@pytest.mark.parametrize(
    ("how", "state", "advice"),
    [
        ("disabled", "which is disabled", "Enable it in Settings → Node packs"),
        ("uninstalled", "which is not installed", "Install the pack"),
        ("broken", "which failed to load", "`main.py packs` shows its error"),
    ],
)
def test_a_node_of_an_unavailable_pack_opens_as_a_placeholder_naming_it(
    pack_site, tmp_path, how, state, advice
):
    path, poster = _saved_graph(pack_site, tmp_path)
    if how == "disabled":
        registry = build_registry(disabled_packs=[EXAMPLE_NAME])
    elif how == "uninstalled":
        registry = build_registry(entry_points=[])
    else:
        broken = tmp_path / "broken"
        broken.mkdir()
        install_on_path(broken, EXAMPLE_NAME, "0.3.0", {"example": "gone_module:node_pack"})
        registry = build_registry(entry_points=_entry_points_in(broken))
    workflow = wf.load_workflow(path, registry)
    assert workflow.placeholders == [poster]
    spec = workflow.graph.spec(poster)
    assert spec.title == f"ExamplePack.Posterize (missing: {EXAMPLE_NAME})"
    assert f"node pack '{EXAMPLE_NAME}', {state}" in spec.description
    assert workflow.graph.node(poster).params == {"levels": 3}
    (problem,) = [p for p in validate(workflow.graph) if p.node_id == poster]
    assert f"comes from node pack '{EXAMPLE_NAME}', {state}. " in problem.message
    assert advice in problem.message


def _entry_points_in(folder):
    from importlib import metadata

    (dist,) = metadata.distributions(path=[str(folder)])
    return list(dist.entry_points)


def test_a_placeholder_keeps_its_pack_so_the_node_comes_back_when_the_pack_does(
    pack_site, tmp_path
):
    path, poster = _saved_graph(pack_site, tmp_path)
    placeholder = wf.load_workflow(path, build_registry(disabled_packs=[EXAMPLE_NAME]))
    again = tmp_path / "again.json"
    wf.save_workflow(placeholder.graph, again)
    entry = next(n for n in json.loads(again.read_text())["nodes"] if n["id"] == poster)
    assert entry["pack"] == EXAMPLE_NAME
    restored = wf.load_workflow(again, build_registry())
    assert restored.placeholders == []
    assert restored.graph.spec(poster).pack == EXAMPLE_NAME
    assert restored.graph.node(poster).params == {"levels": 3}
    assert len(restored.graph.links) == 2


def test_a_missing_node_without_a_pack_note_keeps_the_plain_message(tmp_path):
    graph = Graph(build_registry())
    graph.add_node("SaveText", params={"filename": "x"})
    data = wf.to_dict(graph)
    data["nodes"][0]["type"] = "SomeoneElsesNode"
    workflow = wf.from_dict(data, build_registry())
    assert workflow.graph.spec(1).title == "SomeoneElsesNode (missing)"
    (problem,) = validate(workflow.graph)
    assert "is not installed. Install what provides it" in problem.message


def test_a_pack_note_that_is_not_text_is_refused_naming_node_and_field(tmp_path):
    graph = Graph(build_registry())
    graph.add_node("SaveText", params={"filename": "x"})
    data = wf.to_dict(graph)
    data["nodes"][0]["pack"] = 7
    with pytest.raises(
        wf.WorkflowError, match=r"node 1, field 'pack': the node pack should be text"
    ):
        wf.from_dict(data, build_registry())
