"""Running a sweep on this machine: the cache serves every run that shares an upstream
result, each run's pictures are published with its own workflow, and the X/Y grids and
``sweep.json`` say which run is where."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from core.engine import NodeStarted, Progress
from core.engine.sweep import make_sweep, parse_axis
from core.engine.sweep_runs import SweepWorker, run_locally
from core.graph.png import read_text_chunks
from core.sweep_output import SweepWriter, read_grid_cells
from tests.sweep import toy


@pytest.fixture
def graph():
    toy.CALLS.clear()
    return toy.pipeline()


def _sweep(graph, *axes, batch_count=1):
    return make_sweep(graph, [parse_axis(a, graph) for a in axes], batch_count=batch_count)


def test_a_4x4_grid_loads_each_checkpoint_once_and_encodes_each_prompt_once(graph):
    plan = _sweep(
        graph,
        "3.seed=0..3",
        "3.cfg=3,5,7,9",
        '2.text="a red circle","a blue square"',
        "1.ckpt_name=a,b",
    )
    worker = SweepWorker(graph.registry)
    outputs = list(run_locally(plan, worker))
    assert len(outputs) == 64 and all(o.status == "ok" for o in outputs)
    assert toy.CALLS == {"Load": 2, "Encode": 4, "Sample": 64, "Save": 64}
    ran = sum(o.ran for o in outputs)
    assert ran == plan.stats.distinct_results == 2 + 4 + 64 + 64
    assert sum(o.cached for o in outputs) == plan.stats.saved == 64 * 4 - ran


def test_grid_order_without_the_cache_order_would_load_again_when_the_cache_is_small(graph):
    # The same sweep run in grid order (checkpoint as X, fastest) on a one-model cache
    # reloads at every run; the planned order loads each checkpoint once.
    from core.engine.cache import CacheBudgets

    plan = _sweep(graph, "1.ckpt_name=a,b", "3.seed=0..2")
    tiny = CacheBudgets(model_bytes=toy.MODEL_BYTES, tensor_bytes=10**9)  # one model
    worker = SweepWorker(graph.registry, tiny)
    for run in sorted(plan.runs, key=lambda r: r.index):
        worker.run(plan.workflow, run)
    in_grid_order = toy.CALLS["Load"]
    toy.CALLS.clear()
    list(run_locally(plan, SweepWorker(graph.registry, tiny)))
    assert (in_grid_order, toy.CALLS["Load"]) == (6, 2)


def test_events_carry_the_run_and_steps(graph):
    plan = _sweep(graph, "3.seed=0,1")
    seen = []
    list(run_locally(plan, SweepWorker(graph.registry), lambda i, e: seen.append((i, e))))
    steps = [(i, e.step) for i, e in seen if isinstance(e, Progress)]
    assert steps == [(0, 1), (0, 2), (0, 3), (1, 1), (1, 2), (1, 3)]
    started = [(i, e.node_id) for i, e in seen if isinstance(e, NodeStarted)]
    assert started == [(0, 1), (0, 2), (0, 3), (0, 4), (1, 3), (1, 4)]


def test_a_repeat_with_a_fixed_seed_still_writes_its_picture(graph):
    plan = _sweep(graph, "3.cfg=3", batch_count=2)
    outputs = list(run_locally(plan, SweepWorker(graph.registry)))
    assert [len(o.files) for o in outputs] == [1, 1]
    assert toy.CALLS["Sample"] == 1 and toy.CALLS["Save"] == 2


def test_the_writer_publishes_pictures_grids_and_the_index(graph, tmp_path):
    plan = _sweep(graph, "3.seed=0..2", "3.cfg=3,7", "3.sampler_name=euler,ddim")
    writer = SweepWriter(tmp_path, plan)
    for output in run_locally(plan, SweepWorker(graph.registry)):
        writer.add(output)
    result = writer.finish()
    assert len(result.files) == 12
    # Each picture embeds the workflow of its own run.
    run = plan.run(4)  # seed 1, cfg 7, euler
    picture = writer.picture_of(4)
    assert picture is not None and picture.name == "run0004_pic_00001.png"
    embedded = json.loads(read_text_chunks(picture.read_bytes())[toy.WORKFLOW_KEY])
    params = {n["id"]: n["params"] for n in embedded["nodes"]}
    assert (params[3]["seed"], params[3]["cfg"]) == (1, 7.0) == (run.values[0][2], run.values[1][2])
    # One grid per Z value, each cell mapped to its run's picture.
    assert [g.path.name for g in result.grids] == ["grid_page01.png", "grid_page02.png"]
    assert [g.label for g in result.grids] == [
        "Sample sampler_name: euler",
        "Sample sampler_name: ddim",
    ]
    cells = read_grid_cells(result.grids[1].path)
    cell = next(c for c in cells if (c["column"], c["row"]) == (1, 1))
    assert cell["run"] == 10 and cell["file"] == "run0010_pic_00001.png"
    # The cell shows that run's picture, enlarged.
    grid = Image.open(result.grids[1].path).convert("RGB")
    x, y, w, h = cell["box"]
    shown = grid.crop((x, y, x + w, y + h)).resize((toy.SIDE, toy.SIDE), Image.NEAREST)
    own = Image.open(tmp_path / cell["file"]).convert("RGB")
    assert shown.tobytes() == own.tobytes()
    index = json.loads(result.index.read_text())
    assert index["format"] == "latentloom-sweep" and len(index["runs"]) == 12
    assert index["runs"][10]["files"] == ["run0010_pic_00001.png"]
    assert index["node_executions"] == {"without_cache": 48, "distinct_results": 26}
    assert index["executed"] == {"ran": 26, "cached": 22}


def test_a_failed_run_leaves_a_grey_cell_and_is_reported(graph, tmp_path):
    plan = _sweep(graph, "3.seed=0,1")
    original = toy._sample

    def sample(ctx, model, positive, seed, **rest):
        if seed == 1:
            raise RuntimeError("out of memory")
        return original(ctx, model, positive, seed, **rest)

    spec = graph.registry.get("Sample")
    object.__setattr__(spec, "function", sample)
    try:
        writer = SweepWriter(tmp_path, plan)
        for output in run_locally(plan, SweepWorker(graph.registry)):
            writer.add(output)
        result = writer.finish()
    finally:
        object.__setattr__(spec, "function", original)
    assert [o.index for o in result.failed] == [1]
    assert "out of memory" in result.failed[0].message
    cells = {c["run"]: c["file"] for c in read_grid_cells(result.grids[0].path)}
    assert cells == {0: "run0000_pic_00001.png", 1: None}


def test_without_ray_a_cluster_sweep_says_how_to_install_it(graph, monkeypatch):
    import sys

    from core.engine.sweep import SweepError
    from core.engine.sweep_ray import RayOptions, run_on_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    plan = _sweep(graph, "3.seed=0,1")
    with pytest.raises(SweepError, match=r"pip install 'latentloom\[cluster\]'"):
        next(run_on_ray(plan, toy.registry, RayOptions(workers=1)))


class _Cluster:
    """Stands in for ``ray`` where only the cluster's resources matter."""

    def __init__(self, **resources: float) -> None:
        self.resources = resources

    def cluster_resources(self) -> dict[str, float]:
        return dict(self.resources)


def test_workers_ask_for_a_gpu_when_the_sweep_loads_models_and_the_cluster_has_gpus(graph):
    from core.engine.sweep import SweepError
    from core.engine.sweep_ray import RayOptions, cluster_workers

    plan = _sweep(graph, "3.seed=0..9")  # loads a MODEL: wants a GPU where there is one
    assert plan.uses_models
    assert cluster_workers(_Cluster(CPU=64, GPU=4), RayOptions(), plan) == (4, 1.0)
    assert cluster_workers(_Cluster(CPU=3), RayOptions(), plan) == (3, 0.0)
    # Never more workers than the cluster can place (they would wait forever).
    assert cluster_workers(_Cluster(CPU=2), RayOptions(workers=5), plan) == (2, 0.0)
    assert cluster_workers(_Cluster(CPU=64, GPU=2), RayOptions(workers=8), plan) == (2, 1.0)
    with pytest.raises(SweepError, match="no room for a worker asking for 1 CPU"):
        cluster_workers(_Cluster(CPU=0.5), RayOptions(), plan)

    text_only = toy.pipeline()
    number = text_only.add_node("Number").id
    axis = parse_axis(f"{number}.value=1,2", text_only)
    no_models = make_sweep(text_only, [axis], outputs=[number])
    assert not no_models.uses_models
    assert cluster_workers(_Cluster(CPU=8, GPU=4), RayOptions(), no_models) == (2, 0.0)


def test_main_sweep_takes_a_batch_count_without_axes(tmp_path, capsys):
    import main
    from core.graph.workflow import save_workflow

    path = tmp_path / "flow.json"
    save_workflow(toy.sum_to_text("answer", 40, 2), path)
    out = tmp_path / "out"
    assert main.main(["sweep", str(path), "--out", str(out)]) == 2
    assert "or a --batch-count above 1" in capsys.readouterr().err
    assert main.main(["sweep", str(path), "--batch-count", "2", "--out", str(out)]) == 0
    written = sorted(p.name for p in out.glob("run*.txt"))
    assert written == ["run0000_answer.txt", "run0001_answer.txt"]
