"""Queued and finished runs of one file are told apart: each entry shows when it was queued,
its seeds and what changed since the run before it."""

from __future__ import annotations

import re

import pytest
from PySide6.QtCore import Qt

from core.graph.commands import SetNodeAttribute, SetParam
from nodeui.run_summary import run_changes, run_seeds, summary
from nodeui.undo import push
from tests.nodeui import shell_fakes
from tests.nodeui.windows import open_window

REGISTRY = shell_fakes.registry()


def _spec_of(type_id: str):
    return REGISTRY.get(type_id) if type_id in REGISTRY else None


def _workflow(**params) -> dict:
    count = {"id": 1, "type": "SlowCount", "params": {"steps": 5, "delay": 0.0, "seed": 7}}
    count["params"].update(params)
    show = {"id": 2, "type": "ShowNumber", "params": {}, "title": "Result"}
    return {"nodes": [count, show], "links": [[1, "INT", 2, "value"]]}


def test_seeds_come_from_seed_widgets_of_nodes_that_run():
    workflow = _workflow(seed=42)
    workflow["nodes"].append({"id": 3, "type": "Unknown", "params": {"noise_seed": 5}})
    workflow["nodes"].append({"id": 4, "type": "SlowCount", "params": {"seed": 9}, "mode": "muted"})
    assert run_seeds(workflow, _spec_of) == [42, 5]


def test_changes_name_the_node_and_the_values():
    before, after = _workflow(seed=42, steps=20), _workflow(seed=43, steps=30)
    assert run_changes(before, after, _spec_of) == ["Slow Count: steps 20→30, seed 42→43"]
    assert summary(before, after, _spec_of) == ("seed 43", "Slow Count: steps 20→30, seed 42→43")
    assert summary(None, after, _spec_of) == ("seed 43", "first run")
    assert summary(after, _workflow(seed=43, steps=30), _spec_of) == ("seed 43", "no changes")


def test_long_text_reads_edited_and_structure_changes_are_named():
    before = _workflow()
    before["nodes"][1]["params"] = {"text": "a red circle on a blue field"}
    after = _workflow()
    after["nodes"][1]["params"] = {"text": "a red square on a blue field"}
    after["nodes"][1]["mode"] = "bypassed"
    after["nodes"].append({"id": 5, "type": "Fail", "params": {}})
    after["links"].append([1, "INT", 5, "value"])
    assert run_changes(before, after, _spec_of) == [
        "Result: text edited, bypassed",
        "added Fail",
        "links changed",
    ]
    del after["nodes"][0]
    assert "removed Slow Count" in run_changes(before, after, _spec_of)


@pytest.fixture
def window(qtbot, tmp_path):
    with open_window(tmp_path, shell_fakes.registry()) as made:
        made.show()
        yield made


def _texts(widget) -> list[str]:
    return [widget.item(i).text() for i in range(widget.count())]


def test_the_queue_panel_shows_time_seeds_and_changes_of_each_run(qtbot, window):
    reg = window.registry
    window.set_document(type(window.document)(shell_fakes.slow_graph(reg, steps=1, seed=42)))
    graph, stack = window.document.graph, window.document.undo_stack
    push(stack, graph, SetNodeAttribute([1], "ui", {"control_after_run": {"seed": "increment"}}))
    panel = window.queue_panel
    # A long first run keeps the next two waiting in the queue.
    push(stack, graph, SetParam(1, "delay", 0.3))
    window.view.setFocus()
    qtbot.keyClick(window.view, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    push(stack, graph, SetParam(1, "delay", 0.0))
    qtbot.keyClick(window.view, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    push(stack, graph, SetParam(1, "steps", 3))
    qtbot.keyClick(window.view, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)

    pending = _texts(panel.pending)
    assert len(pending) == 2, pending
    assert re.match(r"\d\d:\d\d:\d\d  ", pending[0])
    assert "seed 43" in pending[0] and "Slow Count: delay 0.3→0, seed 42→43" in pending[0]
    assert "seed 44" in pending[1] and "Slow Count: steps 1→3, seed 43→44" in pending[1]
    assert "seed 42" in panel.current.text() and "first run" in panel.current.text()

    qtbot.waitUntil(lambda: not window.runs.busy, timeout=30_000)
    history = _texts(panel.history)  # newest first
    assert len(history) == 3 and all(": done" in text for text in history)
    assert "steps 1→3" in history[0] and "seed 44" in history[0]
    assert "first run" in history[2] and "seed 42" in history[2]
    assert "seed 43→44" in panel.history.item(0).toolTip()
