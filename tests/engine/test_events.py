from __future__ import annotations

import dataclasses

from core.engine import events as ev


def test_every_event_about_a_node_carries_its_id_and_subgraph_path():
    events = [
        ev.NodeStarted(4),
        ev.Progress(4, 1, 2),
        ev.Preview(4, "picture"),
        ev.NodeFinished(4, 0.5, False),
        ev.NodeFailed(4, "boom"),
        ev.NodeSkipped(4, "muted"),
    ]
    for event in events:
        assert isinstance(event, ev.NodeEvent)
        assert event.node_id == 4 and event.path == ()
        inner = dataclasses.replace(event, path=(4, 9))
        assert inner.path == (4, 9) and inner != event
    assert not isinstance(ev.RunStarted("r", (4,)), ev.NodeEvent)
    assert not isinstance(ev.RunFinished("r", 1.0, "ok"), ev.NodeEvent)


def test_the_path_is_named_so_the_fields_of_each_event_keep_their_places():
    failed = ev.NodeFailed(4, "boom", "seed", path=(4, 9))
    assert (failed.message, failed.field, failed.path) == ("boom", "seed", (4, 9))
    finished = ev.NodeFinished(4, 0.5, True, (), path=(4, 9))
    assert finished.cached is True and finished.path == (4, 9)
