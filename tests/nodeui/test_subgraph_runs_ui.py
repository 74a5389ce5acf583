"""Inside a subgraph the nodes show their run states, live previews, progress, step history
and pictures, as top-level nodes do: the engine's events for the entered instance's inner
nodes (named by path) are drawn on the definition's nodes."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest

from core.graph.model import Graph
from core.graph.subgraph_commands import ConvertToSubgraph
from nodeui.documents import Document
from nodeui.inner_runs import InnerStates, summed_state
from nodeui.runstate import NodeRunState, RunStatus
from tests.nodeui import decode_fakes
from tests.nodeui.windows import new_window, open_window


@pytest.fixture
def window(qtbot, tmp_path):
    with open_window(tmp_path, decode_fakes.registry()) as made:
        made.resize(1200, 800)
        made.show()
        qtbot.waitExposed(made)
        yield made


def _document(window, steps: int = 3, delay: float = 0.0, fail: bool = False):
    """Two instances of one subgraph holding a sampler and a picture of its number."""
    graph = Graph(window.registry)
    params = {"steps": steps, "delay": delay}
    sampler = graph.add_node("FakeSampler", params=params, pos=(0, 0)).id
    show = graph.add_node("ShowNumber", pos=(300, 0)).id
    graph.connect(sampler, "INT", show, "value")
    inner = [sampler, show]
    if fail:
        failing = graph.add_node("Fail", pos=(300, 200)).id
        blocked = graph.add_node("ShowNumber", pos=(600, 200)).id
        graph.connect(sampler, "INT", failing, "value")
        graph.connect(failing, "INT", blocked, "value")
        inner += [failing, blocked]
    convert = ConvertToSubgraph(inner, "Sampling")
    convert.do(graph)
    definition = graph.node(convert.instance_id).type_id
    other = graph.add_node(definition, pos=(0, 400)).id
    window.set_document(Document(graph))
    return graph, convert.instance_id, other, sampler, show


def _double_click(qtbot, window, node_id: int) -> None:
    qtbot.wait(10)  # the view frames the new document first
    item = window.scene.nodes[node_id]
    centre = item.mapToScene(item.boundingRect().center())
    # At a readable zoom: zoomed far out, a double-click on a node lands on its title.
    window.view.set_view_state({"zoom": 1.0, "center": [centre.x(), centre.y()]})
    point = window.view.mapFromScene(centre) + QPoint(0, 10)
    QTest.mouseDClick(window.view.viewport(), Qt.MouseButton.LeftButton, pos=point)
    qtbot.waitUntil(lambda: window.scene.graph is not window.document.graph)


def _run(qtbot, window) -> None:
    window.view.setFocus()
    qtbot.keyClick(window.view, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: not window.runs.busy, timeout=30_000)


def _state(window, node_id: int) -> RunStatus:
    return window.scene.states.get(node_id, NodeRunState()).status


def test_after_a_run_the_entered_instance_shows_its_nodes_done_with_preview(qtbot, window):
    graph, instance, _, sampler, show = _document(window)
    _run(qtbot, window)
    _double_click(qtbot, window, instance)
    assert window.subgraphs.instance_path == (instance,)

    assert _state(window, sampler) is RunStatus.DONE
    assert _state(window, show) is RunStatus.DONE
    item = window.scene.nodes[sampler]
    cursor = window.scene.history_cursor(sampler)
    assert cursor is not None and cursor.step == 3
    assert item.preview_image is not None and item.preview_image.width() == 8
    assert window.scene.nodes[show].layout.media_rect is not None  # its picture is shown

    # Back at the workflow the instance still shows its own state.
    qtbot.mouseClick(window.subgraphs.bar.crumbs[0], Qt.MouseButton.LeftButton)
    assert window.scene.graph is graph
    assert _state(window, instance) is RunStatus.DONE

    # A second run reuses the cache: inside, the nodes read cached.
    _run(qtbot, window)
    _double_click(qtbot, window, instance)
    assert _state(window, sampler) is RunStatus.CACHED


def test_inside_while_it_runs_the_sampler_shows_progress_and_live_previews(
    qtbot, window, monkeypatch
):
    _, instance, _, sampler, _ = _document(window, steps=5, delay=0.1)
    _double_click(qtbot, window, instance)
    seen: list[tuple[RunStatus, float | None]] = []
    captions: list[str] = []
    scene = window.scene
    set_state, set_preview = scene.set_node_state, scene.set_node_preview

    def record_state(node_id, state):
        if node_id == sampler:
            seen.append((state.status, state.progress))
        set_state(node_id, state)

    def record_preview(node_id, image, caption=""):
        if node_id == sampler and image is not None:
            captions.append(caption)
        set_preview(node_id, image, caption)

    monkeypatch.setattr(scene, "set_node_state", record_state)
    monkeypatch.setattr(scene, "set_node_preview", record_preview)
    _run(qtbot, window)

    assert any(s is RunStatus.RUNNING and p and 0 < p < 1 for s, p in seen), seen
    assert any(c.startswith("step ") and c.endswith("/5") for c in captions), captions
    assert seen[-1][0] is RunStatus.DONE
    assert window.scene.history_cursor(sampler) is not None


def test_inside_the_sampler_last_step_shows_the_decode_beside_it(qtbot, window):
    graph = Graph(window.registry)
    sampler = graph.add_node("FakeSampler", params={"steps": 3, "delay": 0.0}, pos=(0, 0)).id
    decode = graph.add_node("VAEDecode", pos=(300, 0)).id
    preview = graph.add_node("PreviewImage", pos=(600, 0)).id
    graph.connect(sampler, "INT", decode, "samples")
    graph.connect(decode, "IMAGE", preview, "images")
    convert = ConvertToSubgraph([sampler, decode, preview], "Sampling")
    convert.do(graph)
    window.set_document(Document(graph))
    _run(qtbot, window)
    _double_click(qtbot, window, convert.instance_id)
    cursor = window.scene.history_cursor(sampler)
    assert cursor is not None and cursor.label() == "step 3/3 · decoded"
    image = window.scene.nodes[sampler].preview_image
    assert (image.width(), image.height()) == decode_fakes.DECODED_SIZE


def test_a_failure_inside_is_pinned_on_the_inner_node(qtbot, window):
    _, instance, _, sampler, _ = _document(window, fail=True)
    _run(qtbot, window)
    _double_click(qtbot, window, instance)
    failing = next(n.id for n in window.scene.graph if n.type_id == "Fail")
    assert _state(window, failing) is RunStatus.FAILED
    assert "always fails" in window.scene.states[failing].message
    assert _state(window, sampler) is RunStatus.DONE


def test_a_run_cancelled_inside_marks_the_step_the_sampler_reached(qtbot, window):
    # Long enough (400 × 50 ms) that a loaded machine still cancels it part-way.
    _, instance, _, sampler, show = _document(window, steps=400, delay=0.05)
    _double_click(qtbot, window, instance)
    window.run_graph()
    # A bool, not the step: waitUntil takes a callback returning None as an assertion that passed.
    qtbot.waitUntil(
        lambda: bool((window.scene.states.get(sampler) or NodeRunState()).step), timeout=20_000
    )
    qtbot.mouseClick(window.queue_panel.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.runs.busy, timeout=20_000)
    state = window.scene.states[sampler]
    assert state.status is RunStatus.CANCELLED and 0 < state.step < 400
    assert f"at step {state.step}" in state.label
    assert _state(window, show) is RunStatus.SKIPPED


def test_the_other_instance_shows_its_own_nodes(qtbot, window):
    graph, _, other, sampler, _ = _document(window)
    # Only the first instance runs: the second is muted.
    graph.set_node_attribute(other, "muted", True)
    _run(qtbot, window)
    _double_click(qtbot, window, other)
    assert window.subgraphs.instance_path == (other,)
    assert _state(window, sampler) is RunStatus.IDLE
    assert window.scene.history_cursor(sampler) is None


def test_inner_states_settle_and_sum_for_nested_instances():
    from core.engine.events import NodeStarted, Progress

    states = InnerStates()
    assert states.on_event(NodeStarted(1, path=(1, 2))) == {(1, 2): NodeRunState("running", 0.0)}
    changed = states.on_event(Progress(1, 2, 4, path=(1, 2)))
    assert changed[(1, 2)].progress == 0.5
    # The next inner node starts: the sampler has finished.
    changed = states.on_event(NodeStarted(1, path=(1, 7, 3)))
    assert changed[(1, 2)].status is RunStatus.DONE
    assert changed[(1, 7, 3)].status is RunStatus.RUNNING
    summed = summed_state(s for _, s in states.under((1, 7)))
    assert summed is not None and summed.status is RunStatus.RUNNING
    done = [NodeRunState("done", seconds=0.5), NodeRunState("cached", seconds=0.0)]
    assert summed_state(done) == NodeRunState("done", seconds=0.5)
    assert summed_state([*done, NodeRunState("failed", message="x")]).status is RunStatus.FAILED


def test_the_default_workflow_with_its_sampler_in_a_subgraph(qtbot, tmp_path):
    """The shipped workflow on the demo model, its prompts and KSampler converted to a
    subgraph: after a run, the KSampler inside reads done and shows its last
    step; the encoders inside read done too."""
    from core.graph.workflow import load_workflow
    from tests.nodeui.test_subgraphs_ui import DEFAULT

    made = new_window(tmp_path)
    qtbot.addWidget(made)
    try:
        made.resize(1280, 760)
        made.set_document(Document.from_workflow(load_workflow(DEFAULT, made.registry)))
        made.show()
        qtbot.waitExposed(made)
        graph = made.document.graph
        chosen = sorted(n.id for n in graph if n.type_id in ("CLIPTextEncode", "KSampler"))
        sampler = next(n.id for n in graph if n.type_id == "KSampler")
        made.scene.clearSelection()
        for node_id in chosen:
            made.scene.nodes[node_id].setSelected(True)
        made.subgraphs.convert_selection()
        instance = next(n.id for n in graph if n.type_id in graph.subgraphs)
        made.run_graph()
        qtbot.waitUntil(lambda: not made.runs.busy, timeout=300_000)
        assert made.runs.queue.history[0].status == "ok", made.runs.queue.history[0].message

        _double_click(qtbot, made, instance)
        assert _state(made, sampler) is RunStatus.DONE
        assert all(_state(made, node_id) is RunStatus.DONE for node_id in chosen)
        cursor = made.scene.history_cursor(sampler)
        assert cursor is not None and cursor.step == cursor.total
        assert made.scene.nodes[sampler].preview_image is not None
    finally:
        made.shutdown(persist=False)
        made.close()
