"""Running a sweep on a Ray cluster: one actor per worker, each holding a ``SweepWorker``.

``ray`` is imported inside these functions only, so LatentLoom starts without it (it is the
optional extra ``latentloom[cluster]``). Runs go to actors by ``assign_to_workers``, so runs
sharing a checkpoint or a prompt meet the same cache; each actor keeps at most two runs in
flight and an actor that runs dry takes runs from the end of the longest share left. Results
come back as each run ends, step progress through a small progress actor. A worker process
that dies is restarted by Ray and its runs re-executed (actor ``max_restarts`` and
``max_task_retries``); a worker that stays dead has its runs given to the others. Finished
runs are never run again: the caller has already published them.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from core.engine.cache import CacheBudgets
from core.engine.context import CancelToken
from core.engine.events import Progress
from core.engine.sweep import SweepError, SweepPlan, SweepRun, assign_to_workers
from core.engine.sweep_runs import RunOutput, SweepEventHandler, SweepWorker
from core.graph.spec import NodeRegistry

#: Runs each actor holds at once: one running, one waiting, so no actor idles between runs.
IN_FLIGHT = 2
#: Times Ray restarts a dead worker process and re-executes its runs.
RESTARTS = 2
#: Times one run is given to another worker after its own stayed dead.
REASSIGNMENTS = 2


@dataclass(frozen=True)
class RayOptions:
    """Where and how to run: ``address`` is ``"auto"`` (a running cluster), ``"local"`` (start
    one on this machine) or a cluster address; ``workers`` None means one per CPU (per GPU
    when the sweep loads models and the cluster has GPUs)."""

    address: str = "auto"
    workers: int | None = None
    device: str = "auto"
    #: GPUs per worker: None asks for one when the sweep loads models and the cluster has any.
    gpus: float | None = None
    cpus: float = 1.0
    budgets: CacheBudgets | None = None


def import_ray() -> Any:
    """The ``ray`` module, or a ``SweepError`` saying how to install it."""
    try:
        import ray
    except ImportError:
        raise SweepError(
            "running on a cluster needs Ray, which is not installed: "
            "pip install 'latentloom[cluster]' (or pip install ray)"
        ) from None
    return ray


def connect(address: str) -> Any:
    """Joins the cluster at ``address`` unless this process already has; returns ``ray``."""
    ray = import_ray()
    if ray.is_initialized():
        return ray
    try:
        if address == "local":
            ray.init(include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    except ConnectionError as exc:
        raise SweepError(
            f"no Ray cluster at {address!r} ({exc}); start one with 'ray start --head' "
            "or use --ray local"
        ) from None
    return ray


class _Progress:
    """Collects step progress from the workers until the driver takes it."""

    def __init__(self) -> None:
        self.items: list[tuple[int, Progress]] = []

    def put(self, index: int, event: Progress) -> None:
        self.items.append((index, event))

    def take(self) -> list[tuple[int, Progress]]:
        items, self.items = self.items, []
        return items


class _Actor:
    """A Ray worker: builds its registry where it runs (its own model roots) and keeps one
    ``SweepWorker`` with its cache for every run it is given."""

    def __init__(
        self,
        registry_factory: Callable[[], NodeRegistry],
        budgets: CacheBudgets | None,
        device: str,
    ) -> None:
        self.worker = SweepWorker(registry_factory(), budgets, device)

    def pid(self) -> int:
        import os

        return os.getpid()

    def run(self, workflow: dict[str, Any], run: SweepRun, outputs: Any, progress: Any) -> Any:
        def forward(event: Any) -> None:
            if isinstance(event, Progress):
                progress.put.remote(run.index, event)

        return self.worker.run(workflow, run, outputs, forward)


def cluster_workers(ray: Any, options: RayOptions, plan: SweepPlan) -> tuple[int, float]:
    """How many workers to start and how many GPUs each asks for."""
    resources = ray.cluster_resources()
    gpus = options.gpus
    if gpus is None:
        gpus = 1.0 if plan.uses_models and resources.get("GPU", 0) >= 1 else 0.0
    if gpus:
        fits = int(resources.get("GPU", 0) // gpus)
    else:
        fits = int(resources.get("CPU", 1) // max(options.cpus, 1e-6))
    if fits < 1:
        need = f"{gpus:g} GPU" if gpus else f"{options.cpus:g} CPU"
        raise SweepError(f"the Ray cluster has no room for a worker asking for {need}")
    # More workers than the cluster can place would wait forever with runs assigned to them.
    count = fits if options.workers is None else min(options.workers, fits)
    return max(1, min(count, len(plan.runs))), gpus


def run_on_ray(
    plan: SweepPlan,
    registry_factory: Callable[[], NodeRegistry],
    options: RayOptions | None = None,
    on_event: SweepEventHandler | None = None,
    cancel: CancelToken | None = None,
    on_started: Callable[[list[Any]], None] | None = None,
) -> Iterator[RunOutput]:
    """Runs the plan on Ray, yielding each run's output as it arrives (any order).

    ``registry_factory`` must be picklable (a module-level function or a partial of one); each
    worker calls it, so model roots are resolved on the worker's machine. ``on_started`` gets
    the actor handles once they exist (tests use it to kill one).
    """
    options = options or RayOptions()
    ray = connect(options.address)
    cancel = cancel or CancelToken()
    count, gpus = cluster_workers(ray, options, plan)
    actor_class = ray.remote(_Actor).options(
        num_cpus=options.cpus,
        num_gpus=gpus,
        max_restarts=RESTARTS,
        max_task_retries=RESTARTS,
    )
    progress = ray.remote(_Progress).options(num_cpus=0).remote()
    actors = [
        actor_class.remote(registry_factory, options.budgets, options.device) for _ in range(count)
    ]
    if on_started is not None:
        on_started(actors)
    order = [run.index for run in plan.runs]
    shares = assign_to_workers(order, plan.keys, count)
    queues = [collections.deque(plan.run(i) for i in share) for share in shares]
    workflow_ref = ray.put(plan.workflow)
    in_flight: dict[Any, tuple[int, SweepRun]] = {}
    alive = set(range(count))
    moved: collections.Counter[int] = collections.Counter()

    def top_up() -> None:
        for worker in sorted(alive):
            busy = sum(1 for w, _ in in_flight.values() if w == worker)
            while busy < IN_FLIGHT:
                if not queues[worker]:
                    _steal(queues, worker, alive)
                if not queues[worker]:
                    break
                run = queues[worker].popleft()
                ref = actors[worker].run.remote(workflow_ref, run, plan.outputs, progress)
                in_flight[ref] = (worker, run)
                busy += 1

    try:
        top_up()
        while in_flight:
            if cancel.cancelled:
                return
            ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=0.2)
            if on_event is not None:
                for index, event in ray.get(progress.take.remote()):
                    on_event(index, event)
            for ref in ready:
                worker, run = in_flight.pop(ref)
                try:
                    output = ray.get(ref)
                except ray.exceptions.RayActorError as exc:
                    alive.discard(worker)
                    moved[run.index] += 1
                    if not alive or moved[run.index] > REASSIGNMENTS:
                        why = _last_line(exc)
                        yield RunOutput(run.index, "failed", f"its worker died: {why}")
                        continue
                    target = min(alive, key=lambda w: len(queues[w]))
                    queues[target].appendleft(run)
                    queues[target].extendleft(reversed(queues[worker]))
                    queues[worker].clear()
                    continue
                except ray.exceptions.RayTaskError as exc:
                    why = _last_line(exc)
                    yield RunOutput(run.index, "failed", f"its worker failed: {why}")
                    continue
                yield output
            top_up()
    finally:
        for actor in actors:
            ray.kill(actor)
        ray.kill(progress)


def _steal(queues: list[collections.deque[SweepRun]], worker: int, alive: set[int]) -> None:
    """Moves the last run of the longest live share to ``worker``'s empty share."""
    donors = [w for w in alive if w != worker and len(queues[w]) > 1]
    if not donors:
        return
    donor = max(donors, key=lambda w: len(queues[w]))
    queues[worker].append(queues[donor].pop())


def _last_line(exc: BaseException) -> str:
    """The last non-empty line of a Ray error (the worker's own exception, when it has one)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__
