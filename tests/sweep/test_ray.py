"""The same sweep on a local Ray cluster (two workers on this machine): pictures bit-identical
to a local run, a worker killed mid-sweep costs no run, and runs arrive with step progress.
Skipped when Ray is not installed (``pip install 'latentloom[cluster]'``)."""

from __future__ import annotations

import functools
import json
import os
import signal
from pathlib import Path

import pytest

import main
from core.engine import Progress
from core.engine.sweep import make_sweep, parse_axis
from core.engine.sweep_ray import RayOptions, run_on_ray
from core.engine.sweep_runs import SweepWorker, run_locally
from core.graph.workflow import load_workflow
from nodes import build_registry
from nodes.cluster import worker_registry
from tests.sweep import toy

ray = pytest.importorskip("ray")

DEFAULT = Path(main.__file__).parent / "resources" / "workflows" / "default.json"


@pytest.fixture(scope="module", autouse=True)
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _files(outputs) -> dict[int, tuple[tuple[str, bytes], ...]]:
    return {o.index: o.files for o in outputs}


@pytest.mark.slow
def test_a_2x3_sweep_on_two_workers_gives_the_local_pictures_bit_for_bit():
    graph = load_workflow(DEFAULT, build_registry()).graph
    graph.set_param(5, "steps", 3)
    axes = [parse_axis("5.seed=0,1", graph), parse_axis("5.cfg=3,5,7", graph)]
    plan = make_sweep(graph, axes)
    local = list(run_locally(plan, SweepWorker(graph.registry, device="cpu")))
    steps = []
    remote = list(
        run_on_ray(
            plan,
            functools.partial(worker_registry, ()),
            RayOptions(workers=2, device="cpu"),
            on_event=lambda index, event: steps.append((index, event)),
        )
    )
    assert sorted(o.index for o in remote) == list(range(6))
    assert all(o.status == "ok" for o in remote), [o.message for o in remote]
    assert _files(remote) == _files(local)
    assert len({o.worker for o in remote}) == 2  # both workers took part
    assert any(isinstance(e, Progress) for _, e in steps)


def test_a_worker_killed_mid_sweep_has_its_runs_finished_elsewhere():
    graph = toy.pipeline()
    graph.set_param(3, "seconds", 0.3)
    axes = [parse_axis("3.seed=0,1", graph), parse_axis("3.cfg=3,5,7", graph)]
    plan = make_sweep(graph, axes)
    local = _files(run_locally(plan, SweepWorker(graph.registry)))
    actors = []
    outputs = []
    for output in run_on_ray(plan, toy.registry, RayOptions(workers=2), on_started=actors.extend):
        outputs.append(output)
        if len(outputs) == 1:  # the other worker is busy with its share: kill its process
            victim = next(a for a in actors if ray.get(a.pid.remote()) != _pid(output))
            os.kill(ray.get(victim.pid.remote()), signal.SIGKILL)
    assert sorted(o.index for o in outputs) == list(range(6))
    assert all(o.status == "ok" for o in outputs), [o.message for o in outputs]
    assert _files(outputs) == local
    assert len({o.worker for o in outputs}) == 3  # two workers, one of them restarted


def _pid(output) -> int:
    return int(output.worker.rsplit(":", 1)[1])


def _registry_that_fails():
    raise RuntimeError("no model folder at /models on this machine")


def test_workers_that_cannot_start_fail_their_runs_with_the_reason():
    graph = toy.pipeline()
    plan = make_sweep(graph, [parse_axis("3.seed=0,1", graph)])
    outputs = list(run_on_ray(plan, _registry_that_fails, RayOptions(workers=2)))
    assert sorted(o.index for o in outputs) == [0, 1]
    for output in outputs:
        assert output.status == "failed" and "\n" not in output.message
        assert "no model folder at /models on this machine" in output.message


def test_main_sweep_with_ray_writes_every_run_and_the_index(tmp_path, capsys):
    from core.graph.workflow import save_workflow

    path = tmp_path / "flow.json"
    save_workflow(toy.sum_to_text("answer", 40, 2), path)
    out = tmp_path / "out"
    argv = ["sweep", str(path), "--axis", "1.a=1..4", "--ray", "auto", "--workers", "2"]
    assert main.main([*argv, "--out", str(out)]) == 0
    assert "4 run(s) on Ray (auto)" in capsys.readouterr().out
    texts = sorted(p.read_text() for p in out.glob("run*_answer*.txt"))
    assert texts == ["answer, 3", "answer, 4", "answer, 5", "answer, 6"]
    assert not list(out.glob("grid*.png"))  # no run made a picture
    index = json.loads((out / "sweep.json").read_text())
    assert len({run["worker"] for run in index["runs"]}) == 2
