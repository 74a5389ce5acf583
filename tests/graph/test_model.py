from __future__ import annotations

import pytest

from core.graph import errors as e
from core.graph import types as t
from core.graph.model import Graph, LinkAdded, LinkRemoved, NodeAdded, NodeRemoved, ParamChanged
from tests.graph.registry import make_registry


@pytest.fixture
def graph() -> Graph:
    return Graph(make_registry())


def test_socket_compatibility_table():
    assert t.is_compatible(t.LATENT, t.LATENT)
    assert t.is_compatible(t.INT, t.FLOAT)
    assert not t.is_compatible(t.FLOAT, t.INT)
    assert not t.is_compatible(t.IMAGE, t.LATENT)
    assert t.is_compatible(t.ANY, t.IMAGE) and t.is_compatible(t.MASK, t.ANY)
    assert t.conversion_for(t.INT, t.FLOAT).apply(3) == 3.0
    assert t.conversion_for(t.LATENT, t.LATENT) is None
    assert "converts only to" in t.incompatibility_reason(t.INT, t.LATENT)


def test_add_node_fills_defaults_and_rejects_unknown(graph):
    node = graph.add_node("Scale", params={"factor": 2.5})
    assert node.params == {"factor": 2.5, "mode": "a"}
    with pytest.raises(e.UnknownNodeTypeError):
        graph.add_node("Nope")
    with pytest.raises(e.UnknownParamError):
        graph.add_node("Scale", params={"bogus": 1})
    with pytest.raises(e.UnknownParamError):
        graph.set_param(node.id, "x", 1.0)  # a socket, not a param
    with pytest.raises(e.DuplicateIdError):
        graph.add_node("Scale", node_id=node.id)


def test_connect_enforces_types_single_link_and_acyclicity(graph):
    num, scale, lat, samp = (graph.add_node(k).id for k in ("Number", "Scale", "Latent", "Sampler"))
    graph.connect(num, "INT", scale, "x")  # INT -> FLOAT by conversion
    with pytest.raises(e.IncompatibleTypesError, match="cannot feed"):
        graph.connect(lat, "LATENT", scale, "factor")
    with pytest.raises(e.InputOccupiedError):
        graph.connect(num, "INT", scale, "x")
    with pytest.raises(e.UnknownSocketError):
        graph.connect(num, "NOPE", samp, "latent")
    graph.connect(lat, "LATENT", samp, "latent")
    samp2 = graph.add_node("Sampler").id
    graph.connect(samp, "LATENT", samp2, "latent")
    graph.disconnect(samp, "latent")
    # samp -> samp2 exists, so samp2 -> samp would close a cycle.
    with pytest.raises(e.CycleError):
        graph.connect(samp2, "LATENT", samp, "latent")
    with pytest.raises(e.CycleError):
        graph.connect(samp, "LATENT", samp, "latent")
    assert graph.link_to(samp, "latent") is None  # a refused edit changes nothing


def test_widget_input_accepts_link_of_its_type(graph):
    num, samp = graph.add_node("Number").id, graph.add_node("Sampler").id
    graph.connect(num, "INT", samp, "seed")
    assert graph.link_to(samp, "seed").src == num


def test_reroute_takes_type_of_its_source(graph):
    lat, rr, samp = (
        graph.add_node("Latent").id,
        graph.add_node("Reroute").id,
        graph.add_node("Sampler").id,
    )
    graph.connect(rr, "value", samp, "latent")  # unfed reroute: ANY
    graph.connect(lat, "LATENT", rr, "value")
    assert graph.output_type(rr, "value") == t.LATENT
    assert [n.id for n in graph.reroutes] == [rr]
    graph.disconnect(rr, "value")
    num = graph.add_node("Number").id
    with pytest.raises(e.IncompatibleTypesError, match="reroute"):
        graph.connect(num, "INT", rr, "value")  # the reroute feeds a LATENT input


def test_observers_hear_every_change(graph):
    heard = []
    unsubscribe = graph.subscribe(heard.append)
    a = graph.add_node("Latent").id
    b = graph.add_node("Sampler").id
    graph.connect(a, "LATENT", b, "latent")
    graph.set_param(b, "seed", 5)
    graph.remove_node(a)
    kinds = [type(c) for c in heard]
    assert kinds == [NodeAdded, NodeAdded, LinkAdded, ParamChanged, LinkRemoved, NodeRemoved]
    unsubscribe()
    graph.add_node("Latent")
    assert len(heard) == 6


def test_remove_node_drops_links_and_group_membership(graph):
    a, b = graph.add_node("Latent").id, graph.add_node("Sampler").id
    graph.connect(a, "LATENT", b, "latent")
    from core.graph.model import Group

    graph.add_group(Group(1, "g", frozenset({a, b})))
    graph.remove_node(a)
    assert graph.links == [] and graph.groups[1].nodes == {b}


def test_upstream_and_downstream(graph):
    a, b, c = graph.add_node("Latent").id, graph.add_node("Sampler").id, graph.add_node("Save").id
    graph.connect(a, "LATENT", b, "latent")
    graph.connect(b, "LATENT", c, "latent")
    assert graph.downstream(a) == {b, c} and graph.upstream(c) == {a, b}


def test_a_long_chain_of_reroutes_carries_its_source_type():
    graph = Graph(make_registry())
    prev, out = graph.add_node("Latent").id, "LATENT"
    for _ in range(1500):  # deeper than Python's default recursion limit
        node = graph.add_node("Reroute").id
        graph.connect(prev, out, node, "value")
        prev, out = node, "value"
    assert graph.output_type(prev, "value") == "LATENT"
    save = graph.add_node("Save").id
    graph.connect(prev, "value", save, "latent")
