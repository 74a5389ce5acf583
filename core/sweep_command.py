"""``main.py sweep``: plan a sweep, run it here or on a Ray cluster, write pictures, grids and
``sweep.json``, with a progress bar over runs and one over the running sampler's steps.

The caller (``main.py``) gives the loaded workflow, its registry and a picklable registry
factory for cluster workers; this module knows nothing of the node catalogue.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.engine import CacheBudgets, CancelToken, Executor, Progress
from core.engine.sweep import PRODUCT, ZIP, SweepError, SweepPlan, make_sweep, parse_axis
from core.engine.sweep_runs import RunOutput, SweepWorker, run_locally
from core.graph.model import Graph
from core.graph.spec import NodeRegistry
from core.sweep_output import SweepResult, SweepWriter


@dataclass(frozen=True)
class SweepRequest:
    """Everything the command line says about one sweep."""

    axes: Sequence[str]
    zip: bool = False
    batch_count: int = 1
    out: Path = Path("output")
    ray: str | None = None
    workers: int | None = None
    device: str = "auto"


def plan_sweep(
    graph: Graph, view: dict[str, Any], request: SweepRequest, base: Path | None = None
) -> SweepPlan:
    """The plan for ``request`` over ``graph``; raises ``SweepError`` with a one-line reason."""
    if not request.axes and request.batch_count == 1:
        raise SweepError(
            "give at least one --axis NODE.PARAM=VALUES (e.g. --axis 5.seed=0..3) "
            "or a --batch-count above 1"
        )
    axes = [parse_axis(text, graph, base) for text in request.axes]
    mode = ZIP if request.zip else PRODUCT
    return make_sweep(graph, axes, mode, request.batch_count, view)


def execute(
    plan: SweepPlan,
    registry: NodeRegistry,
    registry_factory: Callable[[], NodeRegistry],
    request: SweepRequest,
    budgets: CacheBudgets | None = None,
    cancel: CancelToken | None = None,
    on_output: Callable[[RunOutput], None] | None = None,
    on_event: Callable[[int, Any], None] | None = None,
    executor: Executor | None = None,
) -> SweepResult:
    """Runs ``plan`` (locally, or on Ray when ``request.ray`` is set) and writes its results.

    ``executor``: the local runs use it and its cache (the editor passes its own)."""
    writer = SweepWriter(request.out, plan)
    if request.ray:
        from core.engine.sweep_ray import RayOptions, run_on_ray

        options = RayOptions(request.ray, request.workers, request.device, budgets=budgets)
        outputs = run_on_ray(plan, registry_factory, options, on_event, cancel)
    else:
        worker = SweepWorker(registry, budgets, request.device, executor=executor)
        outputs = run_locally(plan, worker, on_event, cancel)
    for output in outputs:
        writer.add(output)
        if on_output is not None:
            on_output(output)
    return writer.finish()


def run_command(
    graph: Graph,
    view: dict[str, Any],
    registry: NodeRegistry,
    registry_factory: Callable[[], NodeRegistry],
    request: SweepRequest,
    base: Path | None = None,
) -> int:
    """The command: 0 when every run succeeded, 1 when one failed, 2 for a bad sweep."""
    from tqdm import tqdm

    try:
        plan = plan_sweep(graph, view, request, base)
    except SweepError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if request.ray:  # join the cluster first: a wrong address is said before any progress
        from core.engine.sweep_ray import connect

        try:
            connect(request.ray)
        except SweepError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    stats = plan.stats
    where = f"on Ray ({request.ray})" if request.ray else "here"
    print(
        f"sweep: {len(plan.runs)} run(s) {where}; {stats.without_cache} node executions "
        f"without a cache, at most {stats.distinct_results} with it"
    )
    runs_bar = tqdm(total=len(plan.runs), unit="run", desc="runs", position=0)
    steps_bar = tqdm(total=0, unit="step", desc="steps", position=1, leave=False)

    def on_event(index: int, event: Any) -> None:
        if isinstance(event, Progress):
            if event.step <= 1 or steps_bar.total != event.total:
                steps_bar.reset(total=event.total)
            steps_bar.n = event.step
            steps_bar.set_description(f"run {index} #{event.node_id}")
            steps_bar.refresh()

    def on_output(output: RunOutput) -> None:
        runs_bar.update(1)
        if output.status != "ok":
            runs_bar.write(f"run {output.index} {output.status}: {output.message}")

    started = time.perf_counter()
    try:
        result = execute(
            plan, registry, registry_factory, request, on_output=on_output, on_event=on_event
        )
    except SweepError as exc:
        steps_bar.close()
        runs_bar.close()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    steps_bar.close()
    runs_bar.close()
    seconds = time.perf_counter() - started
    print(
        f"{len(plan.runs)} run(s) in {seconds:.1f} s: {result.ran} node(s) ran, "
        f"{result.cached} cached (the cache saved "
        f"{stats.without_cache - result.ran} of {stats.without_cache} node executions)"
    )
    for grid in result.grids:
        print(f"grid: {grid.path}")
    print(f"index: {result.index}")
    print(f"pictures: {len(result.files)} file(s) in {result.folder}")
    return 1 if result.failed else 0
