"""Batch count: the toolbar's × N queues the run N times, each seed's after-run mode applied
between them, as a queued run is repeated in other tools."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from core.graph.commands import SetNodeAttribute
from nodeui.undo import push
from tests.nodeui import shell_fakes
from tests.nodeui.windows import open_window


@pytest.fixture
def window(qtbot, tmp_path):
    with open_window(tmp_path, shell_fakes.registry()) as made:
        made.show()
        yield made


def test_batch_count_queues_the_run_n_times_with_the_seed_mode_applied(qtbot, window):
    reg = window.registry
    window.set_document(type(window.document)(shell_fakes.slow_graph(reg, steps=1, seed=10)))
    graph, stack = window.document.graph, window.document.undo_stack
    push(stack, graph, SetNodeAttribute([1], "ui", {"control_after_run": {"seed": "increment"}}))

    box = window.actions.batch_count
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton)
    box.lineEdit().selectAll()
    qtbot.keyClicks(box, "3")
    assert box.value() == 3
    window.view.setFocus()
    qtbot.keyClick(window.view, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: not window.runs.busy, timeout=30_000)
    runs = [r for r in [*window.runs.queue.history][::-1]]
    assert [r.workflow["nodes"][0]["params"]["seed"] for r in runs] == [10, 11, 12]
    assert [r.label.rsplit(" ", 1)[1] for r in runs] == ["(1/3)", "(2/3)", "(3/3)"]
    assert graph.node(1).params["seed"] == 13
