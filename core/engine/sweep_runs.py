"""Running a sweep's runs: the worker both runners use, and the local runner.

A ``SweepWorker`` is an executor with its own cache. It runs one ``SweepRun`` at a time on a
fresh copy of the sweep's workflow, in a private staging folder, and hands back the files the
run wrote (their bytes, each picture with its run's workflow embedded) so that the caller
publishes them where it wants through ``core.files``: the same code serves this machine and a
Ray worker on another one. Output nodes always run (their cached result would write nothing),
everything upstream of them comes from the cache when it can.
"""

from __future__ import annotations

import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.engine.cache import CacheBudgets
from core.engine.context import CancelToken
from core.engine.errors import ValidationError
from core.engine.events import Event
from core.engine.executor import Executor
from core.engine.keys import compute_keys
from core.engine.sweep import SweepPlan, SweepRun, run_graph
from core.graph.model import NodeId
from core.graph.spec import NodeRegistry
from core.graph.workflow import to_dict

#: ``on_event(run index, engine event)``: what a run reports while it works.
SweepEventHandler = Callable[[int, Event], None]


@dataclass(frozen=True)
class RunOutput:
    """What one run produced, ready to be published by the caller."""

    index: int
    status: str  # "ok" | "failed" | "invalid" | "cancelled"
    message: str = ""
    #: (name inside the output folder as the run wrote it, contents), in writing order.
    files: tuple[tuple[str, bytes], ...] = ()
    #: Node functions called, and nodes answered from the cache.
    ran: int = 0
    cached: int = 0
    seconds: float = 0.0
    #: Which worker ran it (a host and process id), for the index and the logs.
    worker: str = ""


class SweepWorker:
    """Runs sweep runs with one executor, so its cache serves every run given to it."""

    def __init__(
        self,
        registry: NodeRegistry,
        budgets: CacheBudgets | None = None,
        device: str = "auto",
        name: str = "",
        executor: Executor | None = None,
    ) -> None:
        """``executor``: run on this one and share its cache (the editor's), instead of a new
        one of ``registry`` with ``budgets``."""
        self.executor = executor or Executor(registry, budgets)
        self.device = device
        self.name = name or f"{platform.node()}:{os.getpid()}"

    def run(
        self,
        workflow: Mapping[str, Any],
        run: SweepRun,
        outputs: Iterable[NodeId] | None = None,
        on_event: Callable[[Event], None] | None = None,
        cancel: CancelToken | None = None,
    ) -> RunOutput:
        """Runs ``run`` of ``workflow``; never raises for a failing or invalid run."""
        started = time.perf_counter()
        executor = self.executor
        graph = run_graph(workflow, run, executor.registry)
        outputs = None if outputs is None else tuple(outputs)
        plan = executor.plan(graph, outputs)
        keys, _ = compute_keys(graph, plan)
        for nid in plan.targets:  # an output node writes its files only when it runs
            key = keys.get(nid)
            if key is not None and plan.nodes[nid].spec.output_node:
                executor.cache.discard(key)
        staging = Path(tempfile.mkdtemp(prefix="latentloom-sweep-"))
        try:
            try:
                report = executor.run(
                    graph,
                    outputs,
                    on_event=on_event,
                    cancel=cancel,
                    output_dir=staging,
                    workflow=to_dict(graph, workflow.get("ui", {}).get("view")),
                    device=self.device,
                )
            except ValidationError as exc:
                message = "; ".join(p.message for p in exc.problems[:3])
                seconds = time.perf_counter() - started
                return RunOutput(run.index, "invalid", message, seconds=seconds, worker=self.name)
            files = tuple(_staged_files(staging, report.entries.values()))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        failures = [e for e in report.entries.values() if e.status == "failed"]
        message = "; ".join(f"{e.label}: {e.message}" for e in failures)
        statuses = [e.status for e in report.entries.values()]
        return RunOutput(
            run.index,
            report.status,
            message,
            files,
            ran=statuses.count("ran"),
            cached=statuses.count("cached"),
            seconds=time.perf_counter() - started,
            worker=self.name,
        )


def _staged_files(staging: Path, entries: Iterable[Any]) -> Iterator[tuple[str, bytes]]:
    """The files the run's nodes recorded, read back from the staging folder."""
    for entry in entries:
        for record in entry.records:
            if record.kind != "file":
                continue
            path = Path(record.value)
            try:
                name = path.relative_to(staging).as_posix()
            except ValueError:
                continue  # written by an earlier run: its bytes were handed back then
            yield name, path.read_bytes()


def run_locally(
    plan: SweepPlan,
    worker: SweepWorker,
    on_event: SweepEventHandler | None = None,
    cancel: CancelToken | None = None,
) -> Iterator[RunOutput]:
    """Runs the plan's runs in its order on ``worker``, yielding each run's output as it ends.

    Stops after the run in progress once ``cancel`` is set.
    """
    cancel = cancel or CancelToken()
    for run in plan.runs:
        if cancel.cancelled:
            return
        handler = None if on_event is None else _bound(on_event, run.index)
        yield worker.run(plan.workflow, run, plan.outputs, handler, cancel)


def _bound(on_event: SweepEventHandler, index: int) -> Callable[[Event], None]:
    return lambda event: on_event(index, event)
