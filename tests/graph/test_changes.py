from __future__ import annotations

import dataclasses

import pytest

from core.graph.changes import (
    GroupChanged,
    GroupEvent,
    LinkEvent,
    NodeAdded,
    NodeChanged,
    NodeEvent,
    NodeRemoved,
    NoteEvent,
    ParamChanged,
)
from core.graph.model import Graph, Group
from tests.graph.registry import make_registry


def test_events_of_one_kind_share_a_base_but_stay_distinct():
    assert NodeAdded(3) == NodeAdded(3)
    assert NodeAdded(3) != NodeRemoved(3)
    assert hash(NodeAdded(3)) == hash(NodeAdded(3))
    assert repr(NodeRemoved(3)) == "NodeRemoved(node_id=3)"
    assert ParamChanged(3, "seed").node_id == 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        NodeAdded(3).node_id = 4  # type: ignore[misc]


def test_an_observer_can_listen_for_a_kind_of_change():
    graph = Graph(make_registry())
    about_nodes, about_links, about_groups, about_notes = [], [], [], []
    buckets = (
        (NodeEvent, about_nodes),
        (LinkEvent, about_links),
        (GroupEvent, about_groups),
        (NoteEvent, about_notes),
    )

    def hear(change):
        for kind, bucket in buckets:
            if isinstance(change, kind):
                bucket.append(change)

    graph.subscribe(hear)
    a = graph.add_node("Latent").id
    b = graph.add_node("Sampler").id
    graph.connect(a, "LATENT", b, "latent")
    graph.set_node_attribute(b, "title", "mine")
    graph.add_group(Group(1, "g", frozenset({a, b})))
    graph.remove_node(a)
    assert about_nodes == [NodeAdded(a), NodeAdded(b), NodeChanged(b, "title"), NodeRemoved(a)]
    assert len(about_links) == 2
    assert about_groups[-1] == GroupChanged(1)
    assert about_notes == []
