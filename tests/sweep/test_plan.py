"""The sweep plan: axes parsed by each widget's type, runs expanded as a product or zipped,
batch repeats with seed modes, cache-sharing order and worker assignment, all without running
anything."""

from __future__ import annotations

import pytest

from core.engine.sweep import (
    PRODUCT,
    ZIP,
    SweepError,
    assign_to_workers,
    expand_runs,
    make_sweep,
    order_by_shared_keys,
    parse_axis,
)
from tests.sweep.toy import pipeline


@pytest.fixture
def graph():
    return pipeline()


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("3.seed=0..3", (0, 1, 2, 3)),
        ("3.seed=3..9 step 2", (3, 5, 7, 9)),
        ("3.seed=9..3 step 3", (9, 6, 3)),
        ("3.cfg=3,5.5,7", (3.0, 5.5, 7.0)),
        ("3.cfg=1..2 step 0.25", (1.0, 1.25, 1.5, 1.75, 2.0)),
        ("3.sampler_name=euler,ddim", ("euler", "ddim")),
        ('2.text="a red circle, left",a blue square', ("a red circle, left", "a blue square")),
    ],
)
def test_axis_values_are_parsed_by_the_widget_type(graph, text, values):
    assert parse_axis(text, graph).values == values


def test_an_axis_reads_the_lines_of_a_file(graph, tmp_path):
    (tmp_path / "prompts.txt").write_text("a red circle\n\n  a blue square  \n")
    axis = parse_axis("2.text=@prompts.txt", graph, tmp_path)
    assert axis.values == ("a red circle", "a blue square")
    assert axis.title == "Encode text"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("seed=1,2", "NODE.PARAM=VALUES"),
        ("9.seed=1,2", "has no node 9"),
        ("3.steps=1,2", "has no field 'steps' (it has: seed, cfg, sampler_name, seconds)"),
        ("3.seed=1,x", "'x' is not a whole number"),
        ("3.seed=0..2000", "above the maximum 1000"),
        ("3.cfg=1..x", "not a range of numbers"),
        ("3.seed=1..5 step 0", "must not be 0"),
        ("3.sampler_name=euler,heun", "'heun' is not one of"),
        ("2.text=@missing.txt", "cannot read"),
    ],
)
def test_bad_axes_are_refused_with_a_line_naming_the_axis(graph, tmp_path, text, message):
    with pytest.raises(SweepError, match="axis") as caught:
        parse_axis(text, graph, tmp_path)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_field_driven_by_a_link_cannot_be_swept(graph):
    number = graph.add_node("Number").id
    graph.connect(number, "INT", 3, "seed")
    with pytest.raises(SweepError, match=r"3\.seed: the field is driven by a link"):
        parse_axis("3.seed=1,2", graph)


def test_product_runs_in_grid_order_x_fastest(graph):
    x, y = parse_axis("3.seed=0,1,2", graph), parse_axis("3.cfg=3,7", graph)
    runs = expand_runs(graph, [x, y], PRODUCT)
    assert [r.coords for r in runs] == [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (2, 1)]
    assert runs[4].values == ((3, "seed", 1), (3, "cfg", 7.0))


def test_zip_pairs_values_and_needs_equal_lengths(graph):
    x, y = parse_axis("3.seed=0,1", graph), parse_axis("3.cfg=3,7", graph)
    assert [r.values for r in expand_runs(graph, [x, y], ZIP)] == [
        ((3, "seed", 0), (3, "cfg", 3.0)),
        ((3, "seed", 1), (3, "cfg", 7.0)),
    ]
    with pytest.raises(SweepError, match=r"3\.seed: 2, 3\.cfg: 3"):
        expand_runs(graph, [x, parse_axis("3.cfg=1,2,3", graph)], ZIP)


def test_batch_count_applies_each_seed_mode(graph):
    cfg = parse_axis("3.cfg=3,7", graph)
    graph.set_param(3, "seed", 999)
    graph.set_node_attribute(3, "ui", {"control_after_run": {"seed": "increment"}})
    runs = expand_runs(graph, [cfg], batch_count=3)
    seeds = [dict(((n, p), v) for n, p, v in r.values).get((3, "seed"), 999) for r in runs]
    assert seeds == [999, 999, 1000, 1000, 0, 0]  # wraps past the maximum, as the editor does
    assert [r.repeat for r in runs] == [0, 0, 1, 1, 2, 2]

    graph.set_node_attribute(3, "ui", {"control_after_run": {"seed": "randomize"}})
    first, again = (
        expand_runs(graph, [cfg], batch_count=3, seed=1),
        expand_runs(graph, [cfg], batch_count=3, seed=1),
    )
    assert first == again  # reproducible
    drawn = [dict(((n, p), v) for n, p, v in r.values)[(3, "seed")] for r in first[2:]]
    assert all(0 <= s <= 1000 for s in drawn) and len(set(drawn)) > 1

    graph.set_node_attribute(3, "ui", {})
    assert all(len(r.values) == 1 for r in expand_runs(graph, [cfg], batch_count=2))


def test_order_groups_runs_sharing_upstream_keys():
    # Two nodes: a loader (key L0/L1) upstream of a sampler; grid order alternates loaders.
    keys = {0: ("L0", "s0"), 1: ("L1", "s1"), 2: ("L0", "s2"), 3: ("L1", "s3")}
    assert order_by_shared_keys(keys) == [0, 2, 1, 3]
    # Nothing shared: the grid order stays.
    assert order_by_shared_keys({2: ("c",), 0: ("a",), 1: ("b",)}) == [0, 1, 2]


def test_assignment_cuts_where_runs_share_least():
    # 3 prompts × 3 seeds, ordered by prompt; two workers: the cut falls between prompts.
    keys = {i: ("ckpt", f"p{i // 3}", f"s{i}") for i in range(9)}
    order = order_by_shared_keys(keys)
    shares = assign_to_workers(order, keys, 2, slack=0.5)
    assert shares in ([[0, 1, 2], [3, 4, 5, 6, 7, 8]], [[0, 1, 2, 3, 4, 5], [6, 7, 8]])
    # Without slack, the split is even.
    assert [len(s) for s in assign_to_workers(order, keys, 3, slack=0)] == [3, 3, 3]
    # Every run once, and more workers than runs leaves some empty.
    shares = assign_to_workers(order, keys, 12)
    assert sorted(i for s in shares for i in s) == list(range(9)) and len(shares) == 12
    with pytest.raises(SweepError, match="give 1 or more"):
        assign_to_workers(order, keys, 0)


def test_a_4x4_seed_by_cfg_grid_over_two_checkpoints_plans_one_load_per_checkpoint(graph):
    axes = [
        parse_axis("3.seed=0..3", graph),
        parse_axis("3.cfg=3,5,7,9", graph),
        parse_axis("1.ckpt_name=a,b", graph),
    ]
    plan = make_sweep(graph, axes)
    assert len(plan.runs) == 32
    # Runs sharing a checkpoint run together even though the checkpoint is the Z axis.
    first_half = {plan.cell_of(r)[2] for r in plan.runs[:16]}
    assert len(first_half) == 1
    # Distinct results: 2 loads, 2 encodes, 32 samples, 32 saves.
    assert plan.stats.distinct_results == 2 + 2 + 32 + 32
    assert plan.stats.saved == 32 * 4 - 68
    assert plan.uses_models
    assert plan.grid_shape() == (4, 4, 2)


def test_an_invalid_run_is_refused_before_anything_runs(graph):
    graph.set_param(2, "text", "x" * 10)
    spec_text = graph.spec(2).input("text")
    axis = parse_axis("3.seed=1,2", graph)
    assert spec_text is not None
    graph.set_param(3, "cfg", 99.0)  # out of range for every run
    with pytest.raises(SweepError, match=r"run 3.seed=1 is not valid: .*cfg.*1 more run"):
        make_sweep(graph, [axis])


def test_a_batch_without_axes_repeats_the_workflow_with_its_seed_mode(graph):
    from core.engine.sweep_runs import SweepWorker, run_locally

    graph.set_node_attribute(3, "ui", {"control_after_run": {"seed": "increment"}})
    graph.set_param(3, "seed", 7)
    plan = make_sweep(graph, [], batch_count=3)
    assert [r.values for r in plan.runs] == [(), ((3, "seed", 8),), ((3, "seed", 9),)]
    assert plan.grid_shape() == (1, 1, 3)
    outputs = list(run_locally(plan, SweepWorker(graph.registry)))
    assert [o.status for o in outputs] == ["ok"] * 3 and len({o.files for o in outputs}) == 3
