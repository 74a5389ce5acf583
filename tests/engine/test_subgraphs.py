"""Subgraph instances run by expansion: shared cache keys, local reruns, errors inside."""

from __future__ import annotations

import pytest

from core.engine import Executor, NodeFailed, NodeFinished, Preview, ValidationError
from core.graph import commands as c
from core.graph import subgraph_commands as sc
from core.graph.model import Graph
from tests.engine.toy import Toy


def _two_instances(toy: Toy) -> tuple[Graph, c.UndoStack, int, int, str]:
    """Const → [Add → Steps] → Show, twice: the bracket is one subgraph with 'bias' promoted."""
    g = toy.graph()
    const = g.add_node("Const", params={"value": 2.0}).id
    add = g.add_node("Add", params={"bias": 1.0}).id
    steps = g.add_node("Steps", params={"count": 2}).id
    show = g.add_node("Show").id
    g.connect(const, "out", add, "a")
    g.connect(add, "out", steps, "x")
    g.connect(steps, "out", show, "x")
    stack = c.UndoStack(g)
    convert = sc.ConvertToSubgraph([add, steps], "Block")
    stack.push(convert)
    first = convert.instance_id
    def_id = g.node(first).type_id
    stack.push(sc.PromoteWidget(def_id, add, "bias"))
    second = g.add_node(def_id).id
    show2 = g.add_node("Show").id
    g.connect(const, "out", second, "a")
    g.connect(second, "out", show2, "x")
    return g, stack, first, second, def_id


def test_an_instance_computes_what_its_nodes_computed(toy: Toy, executor: Executor) -> None:
    g, _, first, _, _ = _two_instances(toy)
    report = executor.run(g, [first])
    assert report.status == "ok"
    assert report.entries[first].status == "ran"
    assert {path[-1] for path in report.inner} == {2, 3}


def test_equal_instances_share_cache_entries(toy: Toy, executor: Executor) -> None:
    g, _, first, second, _ = _two_instances(toy)
    report = executor.run(g)
    statuses = {path: entry.status for path, entry in report.inner.items()}
    for inner in (2, 3):
        assert sorted([statuses[(first, inner)], statuses[(second, inner)]]) == ["cached", "ran"]
    assert len(toy.calls) == 4  # each node once: the second instance and Show are equal


def test_only_the_changed_instance_reruns(toy: Toy, executor: Executor) -> None:
    g, stack, first, second, _ = _two_instances(toy)
    executor.run(g)
    stack.push(c.SetParam(second, "bias", 5.0))
    report = executor.run(g)
    assert report.entries[first].status == "cached"
    assert report.inner[(second, 2)].status == "ran"
    assert [r.value for r in report.entries[second + 1].records] == [7.0]


def test_a_definition_edited_once_reruns_every_instance(toy: Toy, executor: Executor) -> None:
    g, stack, first, second, def_id = _two_instances(toy)
    executor.run(g)
    stack.push(sc.EditInside(def_id, c.SetParam(3, "count", 4)))
    report = executor.run(g)
    pair = [report.inner[(first, 3)].status, report.inner[(second, 3)].status]
    assert sorted(pair) == ["cached", "ran"]  # the edit reached both; they are equal again
    assert report.inner[(first, 2)].status == "cached"


def test_progress_and_previews_inside_show_on_the_instance(toy: Toy, executor: Executor) -> None:
    g, _, first, _, _ = _two_instances(toy)
    events: list = []
    executor.run(g, [first], on_event=events.append)
    previews = [e for e in events if isinstance(e, Preview)]
    assert previews and all(e.node_id == first and e.path == (first, 3) for e in previews)
    finished = [e for e in events if isinstance(e, NodeFinished) and e.node_id == first]
    assert len(finished) == 1


def test_a_failure_inside_is_pinned_to_the_inner_node(toy: Toy, executor: Executor) -> None:
    g = toy.graph()
    const = g.add_node("Const").id
    fail = g.add_node("Fail").id
    show = g.add_node("Show").id
    g.connect(const, "out", fail, "x")
    g.connect(fail, "out", show, "x")
    stack = c.UndoStack(g)
    convert = sc.ConvertToSubgraph([fail], "Prompt block")
    stack.push(convert)
    events: list = []
    report = executor.run(g, on_event=events.append)
    failed = [e for e in events if isinstance(e, NodeFailed)]
    assert len(failed) == 1 and failed[0].node_id == convert.instance_id
    assert failed[0].path == (convert.instance_id, fail)
    assert failed[0].message.startswith(f"in Prompt block › Fail #{fail}: ZeroDivisionError")
    assert report.entries[convert.instance_id].status == "failed"


def test_validation_problems_inside_name_the_inner_node(toy: Toy, executor: Executor) -> None:
    g, _, first, _, def_id = _two_instances(toy)
    inner = g.subgraphs.get(def_id).graph
    inner.add_node("Add", 9)  # its input 'a' is fed by nothing
    show = inner.add_node("Show", 10)
    inner.connect(9, "out", show.id, "x")
    with pytest.raises(ValidationError) as caught:
        executor.run(g, [first])
    problem = next(p for p in caught.value.problems if p.path and p.path[-1] == 9)
    assert problem.node_id == first
    assert problem.message.startswith("in Block › Add #9: input 'a' needs a FLOAT link")


def test_nested_instances_expand_all_the_way(toy: Toy, executor: Executor) -> None:
    g, _, first, _, def_id = _two_instances(toy)
    inner = g.subgraphs.get(def_id).graph
    nest = sc.ConvertToSubgraph([3], "Inner")
    c.UndoStack(inner).push(nest)
    report = executor.run(g, [first])
    assert report.status == "ok"
    assert (first, nest.instance_id, 3) in report.inner
