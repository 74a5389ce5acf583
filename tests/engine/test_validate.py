"""Validation: every problem at once, pinned to its node and field, before anything runs."""

from __future__ import annotations

import pytest

from core.engine import Executor, ValidationError, validate
from core.graph.spec import placeholder_spec
from tests.engine.toy import Toy, force_link


def _codes(problems) -> set[tuple[int, str | None, str]]:
    return {(p.node_id, p.field, p.code) for p in problems}


def test_every_problem_is_reported_at_once(toy: Toy, tmp_path) -> None:
    g = toy.graph()
    add = g.add_node("Add", params={"bias": float("inf")})  # missing 'a', bad bias
    show = g.add_node("Show")
    g.connect(add.id, "out", show.id, "x")
    load = g.add_node("Load", params={"path": str(tmp_path / "nope.txt")})
    ghost_spec = placeholder_spec("Ghost", [], [("out", "FLOAT")], {"strength": 1.0})
    ghost = g.add_node("Ghost", placeholder=ghost_spec)
    show3 = g.add_node("Show")
    g.connect(ghost.id, "out", show3.id, "x")
    steps = g.add_node("Steps", params={"count": 0})
    g.connect(ghost.id, "out", steps.id, "x")

    problems = validate(g, outputs=[show.id, load.id, show3.id, steps.id])

    assert _codes(problems) == {
        (add.id, "a", "missing_input"),
        (add.id, "bias", "bad_value"),
        (load.id, "path", "check_failed"),
        (ghost.id, None, "unknown_type"),
        (steps.id, "count", "bad_value"),
    }
    by_code = {p.code: p for p in problems}
    assert f"Add #{add.id}" in by_code["missing_input"].message
    assert "'a'" in by_code["missing_input"].message
    assert "Connect a FLOAT output" in by_code["missing_input"].message
    assert "nope.txt" in by_code["check_failed"].message
    assert "not installed" in by_code["unknown_type"].message


def test_run_raises_and_runs_nothing(toy: Toy, executor: Executor) -> None:
    g = toy.graph()
    add = g.add_node("Add")
    show = g.add_node("Show")
    g.connect(add.id, "out", show.id, "x")
    other = g.add_node("Const")
    show2 = g.add_node("Show")
    g.connect(other.id, "out", show2.id, "x")
    events = []
    with pytest.raises(ValidationError) as caught:
        executor.run(g, on_event=events.append)
    assert toy.calls == [] and events == []
    assert [p.field for p in caught.value.problems] == ["a"]
    text = str(caught.value)
    assert text.splitlines()[0] == "the graph cannot run: 1 problem:"
    assert f"Add #{add.id}: input 'a'" in text
    assert caught.value.to_dict()["problems"][0]["code"] == "missing_input"


def test_check_hook_that_raises_is_a_problem(toy: Toy) -> None:
    g = toy.graph()
    load = g.add_node("Load")
    g.set_param(load.id, "path", 3)  # the hook's Path(3) raises TypeError
    problems = validate(g, outputs=[load.id])
    codes = _codes(problems)
    assert (load.id, "path", "bad_value") in codes
    assert (load.id, None, "check_failed") in codes
    assert any("TypeError" in p.message for p in problems)


def test_bad_link_type_from_a_file(toy: Toy) -> None:
    g = toy.graph()
    arr = g.add_node("Array")
    show = g.add_node("Show")
    force_link(g, arr.id, "out", show.id, "x")  # LATENT into FLOAT
    problems = validate(g)
    assert _codes(problems) == {(show.id, "x", "type_mismatch")}
    assert "LATENT" in problems[0].message and "FLOAT" in problems[0].message


def test_unresolvable_bypass_is_pinned_to_the_bypassed_node(toy: Toy) -> None:
    g = toy.graph()
    arr = g.add_node("Array")
    total = g.add_node("Total")
    g.connect(arr.id, "out", total.id, "x")
    show = g.add_node("Show")
    g.connect(total.id, "out", show.id, "x")
    g.set_node_attribute(total.id, "bypassed", True)  # FLOAT out, only a LATENT in
    problems = validate(g)
    assert _codes(problems) == {(total.id, "out", "bypass_unresolvable")}
    assert "'out'" in problems[0].message and f"#{total.id}" in problems[0].message


def test_unfed_reroute_is_a_missing_input(toy: Toy) -> None:
    g = toy.graph()
    reroute = g.add_node("Reroute")
    show = g.add_node("Show")
    g.connect(reroute.id, "value", show.id, "x")
    problems = validate(g)
    assert _codes(problems) == {(show.id, "x", "missing_input")}
    assert f"Reroute #{reroute.id}" in problems[0].message


def test_linked_widget_is_not_checked(toy: Toy) -> None:
    g = toy.graph()
    integer = g.add_node("Int", params={"value": 5})
    steps = g.add_node("Steps", params={"count": 0})  # out of range, but driven by a link
    const = g.add_node("Const")
    g.connect(const.id, "out", steps.id, "x")
    g.connect(integer.id, "out", steps.id, "count")
    assert validate(g, outputs=[steps.id]) == []


def test_problems_of_muted_branches_are_ignored(toy: Toy) -> None:
    g = toy.graph()
    add = g.add_node("Add")  # missing input, but muted
    show = g.add_node("Show")
    g.connect(add.id, "out", show.id, "x")
    g.set_node_attribute(add.id, "muted", True)
    live = g.add_node("Const")  # a branch that runs, so the run is not empty
    g.connect(live.id, "out", g.add_node("Show").id, "x")
    assert validate(g) == []


def test_unknown_requested_node(toy: Toy) -> None:
    assert _codes(validate(toy.graph(), outputs=[42])) == {(42, None, "unknown_node")}


def test_cycle_from_a_file_is_a_problem(toy: Toy, executor: Executor) -> None:
    g = toy.graph()
    a = g.add_node("Add")
    b = g.add_node("Add")
    g.connect(a.id, "out", b.id, "a")
    force_link(g, b.id, "out", a.id, "a")
    show = g.add_node("Show")
    g.connect(b.id, "out", show.id, "x")
    with pytest.raises(ValidationError) as caught:
        executor.run(g)
    assert {p.code for p in caught.value.problems} == {"cycle"}


def test_a_graph_without_output_nodes_says_nothing_would_run(toy: Toy, executor: Executor) -> None:
    g = toy.graph()
    const = g.add_node("Const")
    add = g.add_node("Add")
    g.connect(const.id, "out", add.id, "a")
    problems = validate(g)
    assert _codes(problems) == {(add.id, None, "nothing_to_run")}
    assert "no output node" in problems[0].message and f"#{add.id}" in problems[0].message
    with pytest.raises(ValidationError):
        executor.run(g)
    assert toy.calls == []


def test_an_unknown_node_that_feeds_nothing_explains_why_nothing_would_run(toy: Toy) -> None:
    g = toy.graph()
    const = g.add_node("Const")
    ghost = g.add_node("Ghost", placeholder=placeholder_spec("Ghost", [("x", "FLOAT")], []))
    g.connect(const.id, "out", ghost.id, "x")
    problems = validate(g)
    assert _codes(problems) == {(ghost.id, None, "unknown_type")}
    assert "'Ghost' is not installed" in problems[0].message
    assert "nothing would run" in problems[0].message


def test_an_unknown_output_node_is_planned_and_reported(toy: Toy) -> None:
    g = toy.graph()
    const = g.add_node("Const")
    spec = placeholder_spec("FancySave", [("x", "FLOAT")], [], output_node=True)
    ghost = g.add_node("FancySave", placeholder=spec)
    g.connect(const.id, "out", ghost.id, "x")
    show = g.add_node("Show")
    g.connect(const.id, "out", show.id, "x")
    assert _codes(validate(g)) == {(ghost.id, None, "unknown_type")}


@pytest.mark.parametrize("flag", ["muted", "bypassed"])
def test_muted_or_bypassed_only_outputs_say_nothing_would_run(toy: Toy, flag: str) -> None:
    g = toy.graph()
    const = g.add_node("Const")
    show = g.add_node("Show")
    g.connect(const.id, "out", show.id, "x")
    g.set_node_attribute(show.id, flag, True)
    problems = validate(g)
    assert _codes(problems) == {(show.id, None, "nothing_to_run")}
    assert f"is {flag}, so nothing would run" in problems[0].message


def test_an_output_blocked_by_a_muted_node_says_which(toy: Toy) -> None:
    g = toy.graph()
    add = g.add_node("Add")
    show = g.add_node("Show")
    g.connect(add.id, "out", show.id, "x")
    g.set_node_attribute(add.id, "muted", True)
    problems = validate(g)
    assert _codes(problems) == {(show.id, None, "nothing_to_run")}
    assert f"needs Add #{add.id}, which is muted" in problems[0].message
