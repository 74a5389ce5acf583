"""Sweep benchmark: an N-run seed × CFG sweep of the demo model here, then on a local Ray
cluster of W workers on this machine, and the projected time on a cluster of GPUs.

Measured: the local sweep (one executor, one model load, torch on one thread as each Ray
worker is), the same sweep on Ray (actors started, the model loaded once per worker), whether
the pictures are bit-identical, and Ray's start-up and overhead per task from two sweeps of
runs that do almost nothing (the slope between 8 and 64 runs is the per-task overhead).
Projected (not measured): the time of an N-run sweep on G GPU workers, from a per-run time,
the model load, and the measured per-task overhead and start-up, as
``start-up + load + ceil(N / G) × (run + overhead)``.

    python bench/sweep.py [--runs 16] [--steps 20] [--workers 2] [--gpu-run-s 0.5]

Prints JSON; exits non-zero when the Ray pictures differ from the local ones.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.engine.sweep import make_sweep, parse_axis
from core.engine.sweep_runs import SweepWorker, run_locally
from core.graph.workflow import load_workflow
from nodes import build_registry
from nodes.cluster import worker_registry
from tests.sweep.toy import sum_to_text

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "resources" / "workflows" / "default.json"


def demo_plan(runs: int, steps: int) -> object:
    """A seed × CFG sweep of the default workflow with ``runs`` runs (4 CFG values)."""
    graph = load_workflow(DEFAULT, build_registry()).graph
    graph.set_param(5, "steps", steps)
    columns = max(1, runs // 4)
    axes = [parse_axis(f"5.seed=0..{columns - 1}", graph), parse_axis("5.cfg=3,5,7,9", graph)]
    return make_sweep(graph, axes)


def trivial_plan(runs: int) -> object:
    """A sweep whose runs compute almost nothing (Int math into a text file)."""
    graph = sum_to_text("sum", 1, 2)
    return make_sweep(graph, [parse_axis(f"1.a=0..{runs - 1}", graph)])


def run_local(plan: object, device: str) -> tuple[float, list[object]]:
    start = time.perf_counter()
    outputs = list(run_locally(plan, SweepWorker(build_registry(), device=device)))
    return time.perf_counter() - start, outputs


def run_ray(plan: object, workers: int, device: str) -> tuple[float, list[object]]:
    from core.engine.sweep_ray import RayOptions, run_on_ray

    factory = functools.partial(worker_registry, ())
    options = RayOptions(workers=workers, device=device)
    start = time.perf_counter()
    outputs = list(run_on_ray(plan, factory, options))
    return time.perf_counter() - start, outputs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--trivial-runs", type=int, default=64)
    parser.add_argument("--project-runs", type=int, default=1024, help="N for the projection")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the local run")
    parser.add_argument(
        "--gpu-run-s",
        type=float,
        default=None,
        help="a per-run time on one GPU for the projection (default: the one measured here)",
    )
    parser.add_argument("--project", default="1,2,4,8,16,32", help="GPU counts to project")
    args = parser.parse_args()

    import ray
    import torch

    torch.set_num_threads(args.threads)
    plan = demo_plan(args.runs, args.steps)
    local_s, local = run_local(plan, args.device)
    ordered = [o.seconds for o in local]  # execution order: the first run loads the model
    per_run = statistics.median(ordered[1:]) if len(ordered) > 1 else local_s
    load = max(0.0, ordered[0] - per_run)

    start = time.perf_counter()
    ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
    ray_init_s = time.perf_counter() - start
    ray_s, remote = run_ray(plan, args.workers, args.device)
    identical = {o.index: o.files for o in remote} == {o.index: o.files for o in local}

    small = 8
    trivial_local_s, _ = run_local(trivial_plan(args.trivial_runs), args.device)
    small_s, _ = run_ray(trivial_plan(small), args.workers, args.device)
    trivial_ray_s, _ = run_ray(trivial_plan(args.trivial_runs), args.workers, args.device)
    ray.shutdown()
    # Each worker takes its share one run after another: the slope is the per-task cost.
    overhead = max(0.0, trivial_ray_s - small_s) * args.workers / (args.trivial_runs - small)
    startup = max(0.0, small_s - small / args.workers * overhead)

    gpu_run = args.gpu_run_s if args.gpu_run_s is not None else per_run
    runs = args.project_runs
    one = startup + load + runs * (gpu_run + overhead)
    projection = {}
    for count in (int(c) for c in args.project.split(",")):
        total = startup + load + math.ceil(runs / count) * (gpu_run + overhead)
        projection[str(count)] = {
            "seconds": round(total, 2),
            "speed_up_vs_one": round(one / total, 2),
            "efficiency": round(one / total / count, 3),
        }
    result = {
        "measured": {
            "runs": len(plan.runs),
            "steps": args.steps,
            "device": args.device,
            "local_s": round(local_s, 2),
            "local_runs_per_s": round(len(local) / local_s, 3),
            "local_threads": args.threads,
            "local_per_run_median_s": round(per_run, 3),
            "model_load_s": round(load, 2),
            "ray_workers": args.workers,
            "ray_init_s": round(ray_init_s, 2),
            "ray_s": round(ray_s, 2),
            "ray_runs_per_s": round(len(remote) / ray_s, 3),
            "ray_per_run_median_s": round(statistics.median(o.seconds for o in remote), 3),
            "ray_worker_busy_s": {
                worker: round(sum(o.seconds for o in remote if o.worker == worker), 2)
                for worker in sorted({o.worker for o in remote})
            },
            "ray_startup_s": round(startup, 2),
            "trivial_ray_8_runs_s": round(small_s, 3),
            "ray_pictures_identical": identical,
            "trivial_runs": args.trivial_runs,
            "trivial_local_s": round(trivial_local_s, 3),
            "trivial_ray_s": round(trivial_ray_s, 3),
            "ray_overhead_per_task_ms": round(overhead * 1000, 2),
            "node_executions": {
                "without_cache": plan.stats.without_cache,
                "ran_local": sum(o.ran for o in local),
            },
        },
        "projected": {
            "formula": "startup + load + ceil(runs / gpus) * (per_run + overhead_per_task)",
            "runs": runs,
            "per_run_s": round(gpu_run, 3),
            "per_run_from": "--gpu-run-s" if args.gpu_run_s is not None else "measured here",
            "startup_s": round(startup, 2),
            "load_s": round(load, 2),
            "by_gpus": projection,
        },
    }
    print(json.dumps(result, indent=1))
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
