"""Planning: what runs, in which order, and how mute, bypass and reroutes are resolved."""

from __future__ import annotations

from core.engine import Executor, NodeSkipped, make_plan
from tests.engine.toy import Toy


def _chain(toy: Toy, g, value: float = 1.0):
    const = g.add_node("Const", params={"value": value})
    add = g.add_node("Add", params={"bias": 1.0})
    g.connect(const.id, "out", add.id, "a")
    return const, add


def test_runs_only_what_the_outputs_need(toy: Toy, executor: Executor) -> None:
    g = toy.graph()
    const, add = _chain(toy, g)
    show = g.add_node("Show")
    g.connect(add.id, "out", show.id, "x")
    unused = g.add_node("Const", params={"value": 5.0})
    other = g.add_node("Add")
    g.connect(unused.id, "out", other.id, "a")

    report = executor.run(g)

    assert toy.calls == [const.id, add.id, show.id]
    assert set(report.entries) == {const.id, add.id, show.id}
    assert report.entries[show.id].records[0].value == 2.0


def test_explicit_outputs_return_their_values(toy: Toy, executor: Executor) -> None:
    g = toy.graph()
    _const, add = _chain(toy, g, 2.0)
    pair = g.add_node("Pair")
    g.connect(add.id, "out", pair.id, "x")
    report = executor.run(g, outputs=[add.id, pair.id])
    assert report.outputs == {add.id: (3.0,), pair.id: (3.0, -3.0)}
    assert report.status == "ok"
    assert report.ran_count == 3


def test_muted_node_blocks_its_dependents(toy: Toy, executor: Executor) -> None:
    g = toy.graph()
    const, add = _chain(toy, g)
    show = g.add_node("Show")
    g.connect(add.id, "out", show.id, "x")
    g.set_node_attribute(add.id, "muted", True)
    other = g.add_node("Const", params={"value": 9.0})
    show2 = g.add_node("Show")
    g.connect(other.id, "out", show2.id, "x")
    events = []

    report = executor.run(g, on_event=events.append)

    assert toy.calls == [other.id, show2.id]
    assert report.status_of(add.id) == "muted"
    assert report.status_of(show.id) == "skipped"
    assert f"#{add.id}" in report.entries[show.id].message
    assert "muted" in report.entries[show.id].message
    # The constant only feeds the muted node, which needs nothing: it is not even planned.
    assert const.id not in report.entries
    assert NodeSkipped(show.id, report.entries[show.id].message) in events


def test_bypassed_node_passes_its_matching_input_through(toy: Toy, executor: Executor) -> None:
    g = toy.graph()
    _const, add = _chain(toy, g, 4.0)
    steps = g.add_node("Steps")
    g.connect(add.id, "out", steps.id, "x")
    g.set_node_attribute(add.id, "bypassed", True)
    report = executor.run(g, outputs=[steps.id])
    assert report.outputs[steps.id] == (4.0,)  # the bias of the bypassed Add is not applied
    assert add.id not in toy.calls
    assert report.status_of(add.id) == "bypassed"


def test_bypass_with_a_conversion_on_the_way(toy: Toy, executor: Executor) -> None:
    g = toy.graph()
    integer = g.add_node("Int", params={"value": 3})
    add = g.add_node("Add")
    g.connect(integer.id, "out", add.id, "a")
    steps = g.add_node("Steps")
    g.connect(add.id, "out", steps.id, "x")
    g.set_node_attribute(add.id, "bypassed", True)
    out = executor.run(g, outputs=[steps.id]).outputs[steps.id][0]
    assert out == 3.0 and isinstance(out, float)


def test_reroutes_are_resolved_away(toy: Toy, executor: Executor) -> None:
    g = toy.graph()
    const, add = _chain(toy, g)
    r1 = g.add_node("Reroute")
    r2 = g.add_node("Reroute")
    show = g.add_node("Show")
    g.connect(add.id, "out", r1.id, "value")
    g.connect(r1.id, "value", r2.id, "value")
    g.connect(r2.id, "value", show.id, "x")
    report = executor.run(g)
    assert r1.id not in report.entries and r2.id not in report.entries
    assert toy.calls == [const.id, add.id, show.id]
    plan = make_plan(g)
    assert plan.nodes[show.id].deps == (add.id,)


def test_plan_order_is_topological(toy: Toy) -> None:
    g = toy.graph()
    a = g.add_node("Const", node_id=10)
    b = g.add_node("Add", node_id=2)
    c = g.add_node("Show", node_id=1)
    g.connect(a.id, "out", b.id, "a")
    g.connect(b.id, "out", c.id, "x")
    assert make_plan(g).order == (10, 2, 1)


def test_structural_edits_replan_between_runs(toy: Toy, executor: Executor) -> None:
    g = toy.graph()
    _const, add = _chain(toy, g)
    show = g.add_node("Show")
    g.connect(add.id, "out", show.id, "x")
    live = g.add_node("Const")  # a branch that runs while the other one is muted
    g.connect(live.id, "out", g.add_node("Show").id, "x")
    assert executor.run(g).status_of(add.id) == "ran"
    g.set_node_attribute(add.id, "muted", True)
    assert executor.run(g).status_of(add.id) == "muted"
    g.set_node_attribute(add.id, "muted", False)
    g.set_node_attribute(add.id, "title", "Plus")
    assert executor.run(g).entries[add.id].label == f"Plus #{add.id}"
    other = g.add_node("Const", params={"value": 7.0})
    g.disconnect(show.id, "x")
    g.connect(other.id, "out", show.id, "x")
    report = executor.run(g)
    assert add.id not in report.entries and report.entries[show.id].records[0].value == 7.0


def test_thousands_of_chained_reroutes_and_bypasses_plan_without_recursion(
    toy: Toy, executor: Executor
) -> None:
    g = toy.graph()
    const = g.add_node("Const", params={"value": 2.0})
    prev, prev_out = const.id, "out"
    for index in range(3000):
        if index % 2:
            node = g.add_node("Reroute").id
            g.connect(prev, prev_out, node, "value")
            prev, prev_out = node, "value"
        else:
            node = g.add_node("Add", params={"bias": 5.0}, bypassed=True).id
            g.connect(prev, prev_out, node, "a")
            prev, prev_out = node, "out"
    show = g.add_node("Show")
    g.connect(prev, prev_out, show.id, "x")
    report = executor.run(g)
    assert report.entries[show.id].records[0].value == 2.0
    assert toy.calls == [const.id, show.id]
