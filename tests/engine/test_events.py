from __future__ import annotations

import dataclasses

from core.engine.events import (
    NodeEvent,
    NodeFailed,
    NodeFinished,
    NodeSkipped,
    NodeStarted,
    Preview,
    Progress,
    RunFinished,
    RunStarted,
)


def test_every_event_about_a_node_carries_its_id_and_subgraph_path():
    events = [
        NodeStarted(4),
        Progress(4, 1, 2),
        Preview(4, "picture"),
        NodeFinished(4, 0.5, False),
        NodeFailed(4, "boom"),
        NodeSkipped(4, "muted"),
    ]
    for event in events:
        assert isinstance(event, NodeEvent)
        assert event.node_id == 4 and event.path == ()
        inner = dataclasses.replace(event, path=(4, 9))
        assert inner.path == (4, 9) and inner != event
    assert not isinstance(RunStarted("r", (4,)), NodeEvent)
    assert not isinstance(RunFinished("r", 1.0, "ok"), NodeEvent)


def test_the_path_is_named_so_the_fields_of_each_event_keep_their_places():
    failed = NodeFailed(4, "boom", "seed", path=(4, 9))
    assert (failed.message, failed.field, failed.path) == ("boom", "seed", (4, 9))
    finished = NodeFinished(4, 0.5, True, (), path=(4, 9))
    assert finished.cached is True and finished.path == (4, 9)
