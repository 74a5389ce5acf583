"""Running: events, inputs and conversions, failures, cancellation and freeing values."""

from __future__ import annotations

import gc
import json
import threading
import weakref
from pathlib import Path

import numpy as np

from core.engine import (
    CacheBudgets,
    CancelToken,
    Executor,
    NodeContext,
    NodeFailed,
    NodeFinished,
    NodeSkipped,
    NodeStarted,
    Preview,
    Progress,
    RunFinished,
    RunStarted,
)
from core.graph import types as t
from core.graph.spec import NodeSpec, Output, SocketInput
from tests.engine.toy import Toy


def _line(toy: Toy, g, *types: str, value: float = 1.0):
    """A chain Const → types… ; returns the nodes."""
    nodes = [g.add_node("Const", params={"value": value})]
    for type_id in types:
        node = g.add_node(type_id)
        g.connect(nodes[-1].id, "out", node.id, "a" if type_id == "Add" else "x")
        nodes.append(node)
    return nodes


def test_events_come_in_order(toy: Toy, executor: Executor) -> None:
    g = toy.graph()
    const, steps, show = _line(toy, g, "Steps", "Show")
    g.set_param(steps.id, "count", 2)
    events = []
    report = executor.run(g, on_event=events.append)
    kinds = [type(e) for e in events]
    assert kinds == [
        RunStarted,
        NodeStarted,
        NodeFinished,
        NodeStarted,
        Progress,
        Preview,
        Progress,
        Preview,
        NodeFinished,
        NodeStarted,
        NodeFinished,
        RunFinished,
    ]
    assert events[0] == RunStarted(report.run_id, (const.id, steps.id, show.id))
    assert events[4] == Progress(steps.id, 1, 2)
    assert events[5] == Preview(steps.id, "step 1")
    assert events[-1].status == "ok" and events[-1].run_id == report.run_id
    finished = [e for e in events if isinstance(e, NodeFinished)]
    assert [e.node_id for e in finished] == [const.id, steps.id, show.id]
    assert not any(e.cached for e in finished)
    events.clear()
    executor.run(g, on_event=events.append)
    assert [type(e) for e in events] == [RunStarted] + [NodeFinished] * 3 + [RunFinished]
    assert all(e.cached for e in events[1:-1])


def test_int_to_float_conversion_is_applied(toy: Toy, executor: Executor) -> None:
    g = toy.graph()
    integer = g.add_node("Int", params={"value": 7})
    steps = g.add_node("Steps")
    g.connect(integer.id, "out", steps.id, "x")
    out = executor.run(g, outputs=[steps.id]).outputs[steps.id][0]
    assert out == 7.0 and type(out) is float


def test_linked_widget_overrides_the_param(toy: Toy, executor: Executor) -> None:
    g = toy.graph()
    _const, add = _line(toy, g, "Add", value=1.0)
    g.set_param(add.id, "bias", 100.0)
    bias = g.add_node("Int", params={"value": 5})
    g.connect(bias.id, "out", add.id, "bias")
    assert executor.run(g, outputs=[add.id]).outputs[add.id] == (6.0,)


def test_optional_unlinked_socket_is_not_passed(toy: Toy, executor: Executor) -> None:
    g = toy.graph()
    _, add = _line(toy, g, "Add", value=2.0)  # b unlinked: the function's default 0.0 applies
    assert executor.run(g, outputs=[add.id]).outputs[add.id] == (2.0,)


def test_failure_skips_dependents_but_not_other_branches(toy: Toy, executor: Executor) -> None:
    g = toy.graph()
    _const, fail, add, show = _line(toy, g, "Fail", "Add", "Show")
    _other, show2 = _line(toy, g, "Show")
    events = []
    report = executor.run(g, on_event=events.append)
    assert report.status == "failed"
    assert report.status_of(fail.id) == "failed"
    entry = report.entries[fail.id]
    assert entry.message == "ZeroDivisionError: division by zero"
    assert "Traceback" in entry.traceback
    assert report.status_of(add.id) == "skipped"
    assert report.status_of(show.id) == "skipped"
    assert f"Fail #{fail.id}, which failed" in report.entries[show.id].message
    assert report.status_of(show2.id) == "ran"
    assert NodeFailed(fail.id, entry.message, None) in events
    assert events[-1] == RunFinished(report.run_id, report.seconds, "failed")
    json.loads(report.to_json())  # the report is plain data


def test_node_error_is_shown_as_is_with_its_field(toy: Toy, executor: Executor) -> None:
    g = toy.graph()
    _, picky = _line(toy, g, "Picky", value=-1.0)
    report = executor.run(g, outputs=[picky.id])
    entry = report.entries[picky.id]
    assert (entry.status, entry.message, entry.field) == (
        "failed",
        "x must not be negative; raise the input",
        "x",
    )


def test_wrong_number_of_outputs_is_a_node_failure(toy: Toy, executor: Executor) -> None:
    toy.registry.register(
        NodeSpec(
            "Bad",
            "Bad",
            "test",
            lambda ctx: (1.0,),
            (),
            (Output("a", t.FLOAT), Output("b", t.FLOAT)),
        )
    )
    g = toy.graph()
    bad = g.add_node("Bad")
    report = executor.run(g, outputs=[bad.id])
    assert report.status_of(bad.id) == "failed"
    assert "returned 1 values but the node has 2 outputs" in report.entries[bad.id].message


def test_cancel_between_nodes(toy: Toy, executor: Executor) -> None:
    g = toy.graph()
    const, add, show = _line(toy, g, "Add", "Show")
    cancel = CancelToken()
    events = []

    def on_event(event) -> None:
        events.append(event)
        if isinstance(event, NodeFinished) and event.node_id == const.id:
            cancel.cancel()

    report = executor.run(g, on_event=on_event, cancel=cancel)
    assert toy.calls == [const.id]
    assert report.status == "cancelled"
    assert report.status_of(add.id) == "cancelled" and report.status_of(show.id) == "cancelled"
    assert events[-1].status == "cancelled"
    assert NodeSkipped(add.id, "the run was cancelled") in events
    # The finished node was cached: the next run resumes from there.
    toy.reset()
    executor.run(g)
    assert toy.calls == [add.id, show.id]


def test_cancel_inside_a_node(toy: Toy, executor: Executor) -> None:
    g = toy.graph()
    _, steps, show = _line(toy, g, "Steps", "Show")
    g.set_param(steps.id, "count", 50)
    cancel = CancelToken()
    progress = []

    def on_event(event) -> None:
        if isinstance(event, Progress):
            progress.append(event.step)
            if event.step == 2:
                cancel.cancel()

    report = executor.run(g, on_event=on_event, cancel=cancel)
    assert progress == [1, 2]
    assert report.status_of(steps.id) == "cancelled"
    assert report.status_of(show.id) == "cancelled"
    assert report.status == "cancelled"


def test_cancel_from_another_thread(toy: Toy, executor: Executor) -> None:
    started = threading.Event()

    def wait(ctx: NodeContext, x: float) -> float:
        started.set()
        for _ in range(1000):
            ctx.cancel.raise_if_cancelled()
            threading.Event().wait(0.005)
        return x

    toy.registry.register(
        NodeSpec(
            "Wait", "Wait", "test", wait, (SocketInput("x", t.FLOAT),), (Output("out", t.FLOAT),)
        )
    )
    g = toy.graph()
    _, waiter = _line(toy, g, "Wait")
    cancel = CancelToken()
    thread = threading.Thread(target=lambda: (started.wait(5), cancel.cancel()))
    thread.start()
    report = executor.run(g, outputs=[waiter.id], cancel=cancel)
    thread.join()
    assert report.status == "cancelled" and report.status_of(waiter.id) == "cancelled"


def test_context_carries_run_options(toy: Toy, executor: Executor, tmp_path: Path) -> None:
    seen = {}
    toy.hooks["on_call"] = lambda ctx: seen.update(
        node_id=ctx.node_id, title=ctx.title, out=ctx.output_dir, wf=ctx.workflow, dev=ctx.device
    )
    g = toy.graph()
    const = g.add_node("Const", title="Seed")
    executor.run(g, [const.id], output_dir=tmp_path, workflow={"format": "x"}, device="cpu")
    assert seen == {
        "node_id": const.id,
        "title": f"Seed #{const.id}",
        "out": tmp_path,
        "wf": {"format": "x"},
        "dev": "cpu",
    }


def _probe_registry(toy: Toy, refs: list, alive: list) -> None:
    def make(ctx: NodeContext) -> np.ndarray:
        arr = np.ones(1000, dtype=np.float32)
        refs.append(weakref.ref(arr))
        return arr

    def probe(ctx: NodeContext, x: float) -> float:
        gc.collect()
        alive.append(refs[0]() is not None)
        return x

    toy.registry.register(NodeSpec("Make", "Make", "test", make, (), (Output("out", t.LATENT),)))
    toy.registry.register(
        NodeSpec(
            "Probe", "Probe", "test", probe, (SocketInput("x", t.FLOAT),), (Output("out", t.FLOAT),)
        )
    )


def test_values_are_freed_once_their_readers_have_run(toy: Toy) -> None:
    refs: list = []
    alive: list[bool] = []
    _probe_registry(toy, refs, alive)
    g = toy.graph()
    make = g.add_node("Make")
    total = g.add_node("Total")
    probe = g.add_node("Probe")
    g.connect(make.id, "out", total.id, "x")
    g.connect(total.id, "out", probe.id, "x")

    Executor(toy.registry, CacheBudgets(tensor_bytes=0)).run(g, outputs=[probe.id])
    assert alive == [False]  # freed before the probe ran: nothing else needed it

    refs.clear()
    alive.clear()
    Executor(toy.registry).run(g, outputs=[probe.id])
    assert alive == [True]  # with room in the cache, the cache keeps it


def test_report_json_lists_every_node(toy: Toy, executor: Executor) -> None:
    g = toy.graph()
    const, add, show = _line(toy, g, "Add", "Show")
    g.set_node_attribute(add.id, "bypassed", True)
    data = json.loads(executor.run(g).to_json())
    assert data["status"] == "ok" and data["ran_count"] == 2
    statuses = {n["id"]: n["status"] for n in data["nodes"]}
    assert statuses == {const.id: "ran", add.id: "bypassed", show.id: "ran"}
    assert all(isinstance(n["seconds"], float) for n in data["nodes"])
    show_entry = next(n for n in data["nodes"] if n["id"] == show.id)
    assert show_entry["records"] == [{"kind": "value", "value": 1.0}]
