"""ComfyUI subgraphs (``definitions.subgraphs``) import as LatentLoom subgraphs."""

from __future__ import annotations

from core.engine import Executor
from core.graph.spec import WidgetInput
from nodes.interop import open_workflow
from tests.interop.conftest import FIXTURES

SUBGRAPHS = FIXTURES / "subgraphs"


def _open(name, registry):
    opened = open_workflow(SUBGRAPHS / name, registry)
    return opened.workflow.graph, opened.report


def test_a_subgraph_instance_imports_with_its_inner_nodes_and_boundary(registry):
    graph, report = _open("basic-subgraph-zero-uuid.json", registry)
    assert not report.unknown
    instance = graph.node(2)
    definition = graph.subgraphs.get(instance.type_id)
    assert definition.name == "New Subgraph"
    inner = definition.graph
    assert {n.type_id for n in inner if n.id > 0} == {"KSampler", "VAEEncode"}
    assert inner.link_to(1, "positive").src == -10
    assert inner.link_to(-20, "LATENT").src == 1
    spec = graph.spec(2)
    assert [i.name for i in spec.sockets] == ["positive"] and spec.outputs[0].type == "LATENT"


def test_nested_subgraphs_import_innermost_first(registry):
    graph, report = _open("subgraph-nested-with-live-sampler.json", registry)
    assert not report.unknown
    outer = graph.subgraphs.get(graph.node(1).type_id)
    middle_id = outer.graph.node(2).type_id
    assert graph.subgraphs.uses(outer.id) == {middle_id}
    sampler = graph.subgraphs.get(middle_id).graph.node(3)
    assert sampler.type_id == "KSampler" and sampler.params["seed"] == 1


def test_promoted_widgets_take_the_instance_values(registry):
    graph, _ = _open("subgraph-with-promoted-text-widget.json", registry)
    spec = graph.spec(11)
    assert isinstance(spec.input("text"), WidgetInput)
    assert isinstance(spec.input("seed"), WidgetInput)
    assert graph.node(11).params["seed"] == 0 and graph.node(11).params["text"] == ""


def test_problems_inside_imported_subgraphs_point_to_the_inner_nodes(registry):
    graph, _ = _open("subgraph-nested-with-live-sampler.json", registry)
    problems = Executor(registry).validate(graph, [1])
    assert problems and {p.node_id for p in problems} == {1}
    assert all(p.path[-1] == 3 and p.code == "missing_input" for p in problems)
    assert problems[0].message.startswith("in Outer Subgraph › Middle Subgraph › KSampler #3")
