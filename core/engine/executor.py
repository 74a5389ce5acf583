"""The executor: plans, validates, and runs a graph node by node with a persistent cache.

``Executor.run`` raises ``ValidationError`` (listing every problem) before anything runs when
the graph is invalid; otherwise it returns a ``RunReport`` and never lets a node's exception
escape. A value no later node needs, and the cache does not keep, is dropped as soon as its
last consumer has run.
"""

from __future__ import annotations

import json
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.engine.allocator import keep_freed_memory, release_freed_memory
from core.engine.cache import CacheBudgets, CacheEntry, ResultCache
from core.engine.context import CancelToken, NodeContext
from core.engine.errors import Cancelled, NodeError, Problem, ValidationError
from core.engine.events import (
    Event,
    NodeFailed,
    NodeFinished,
    NodeSkipped,
    NodeStarted,
    Record,
    RunFinished,
    RunStarted,
)
from core.engine.expand import Expansion, expand, has_instances
from core.engine.keys import compute_keys
from core.engine.plan import Plan, PlannedNode, make_plan
from core.engine.subgraph_run import EventLifter, lift_problems
from core.engine.validate import validate_plan
from core.graph.model import Graph, NodeId
from core.graph.spec import NodeRegistry

#: Statuses a node can end a run with.
STATUSES = ("ran", "cached", "failed", "skipped", "cancelled", "muted", "bypassed")


@dataclass(frozen=True)
class NodeReport:
    """How one node fared in a run."""

    node_id: NodeId
    label: str
    status: str  # one of STATUSES
    seconds: float = 0.0
    message: str = ""
    field: str | None = None
    records: tuple[Record, ...] = ()
    #: The Python traceback of an unexpected failure, for debugging (empty otherwise).
    traceback: str = ""


@dataclass
class RunReport:
    """The outcome of a run: every reported node in plan order, and the targets' outputs."""

    run_id: str
    status: str  # "ok" | "failed" | "cancelled"
    seconds: float
    entries: dict[NodeId, NodeReport]
    #: For each evaluated target node, its output values (one per output of its spec).
    outputs: dict[NodeId, tuple[Any, ...]] = field(default_factory=dict)
    #: How each node inside a subgraph fared, by its path (instance id, …, inner node id);
    #: ``entries`` holds one summing-up entry per instance.
    inner: dict[tuple[NodeId, ...], NodeReport] = field(default_factory=dict)

    @property
    def ran_count(self) -> int:
        return sum(1 for entry in self.entries.values() if entry.status == "ran")

    def ran(self) -> list[NodeId]:
        """The nodes whose functions were called and succeeded, in order."""
        return [nid for nid, entry in self.entries.items() if entry.status == "ran"]

    def status_of(self, node_id: NodeId) -> str:
        return self.entries[node_id].status

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": self.status,
            "seconds": round(self.seconds, 6),
            "ran_count": self.ran_count,
            "nodes": [
                {
                    "id": e.node_id,
                    "label": e.label,
                    "status": e.status,
                    "seconds": round(e.seconds, 6),
                    "message": e.message,
                    "field": e.field,
                    "records": [{"kind": r.kind, "value": _jsonable(r.value)} for r in e.records],
                }
                for e in self.entries.values()
            ],
        }

    def to_json(self) -> str:
        """The report as JSON text, for the CLI's ``--report`` file."""
        return json.dumps(self.to_dict(), indent=2)


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    shape = getattr(value, "shape", None)
    if shape is not None:
        return f"<{type(value).__name__} shape {tuple(shape)}>"
    return f"<{type(value).__name__}>"


def _ignore(event: Event) -> None:
    pass


def _structure(
    graph: Graph, registry: NodeRegistry, outputs: tuple[NodeId, ...] | None
) -> tuple[Any, ...]:
    """Everything a plan is made from: which nodes, their types, flags and titles, the links,
    the registry and the requested outputs. Equal structures give equal plans."""
    nodes = tuple((n.id, n.type_id, n.muted, n.bypassed, n.title, id(n.placeholder)) for n in graph)
    links = tuple((lk.src, lk.src_output, lk.dst, lk.dst_input) for lk in graph.links)
    subgraphs = tuple(id(d.spec) for d in graph.subgraphs)
    return (id(registry), len(registry), outputs, nodes, links, subgraphs)


class Executor:
    """Runs graphs of ``registry``'s node types, keeping results in a cache across runs.

    One run at a time: concurrent calls to ``run`` wait for each other.
    """

    def __init__(self, registry: NodeRegistry, budgets: CacheBudgets | None = None) -> None:
        self.registry = registry
        self.cache = ResultCache(budgets or CacheBudgets())
        self._lock = threading.Lock()
        self._last_plan: tuple[tuple[Any, ...], Plan] | None = None

    def plan(
        self,
        graph: Graph,
        outputs: Iterable[NodeId] | None = None,
        labels: dict[NodeId, str] | None = None,
    ) -> Plan:
        """The plan for ``outputs``; the last one is reused while the graph's structure is
        unchanged (param edits do not change a plan, only validation and cache keys)."""
        outputs = None if outputs is None else tuple(outputs)
        signature = _structure(graph, self.registry, outputs)
        last = self._last_plan
        if last is not None and last[0] == signature:
            return last[1]
        plan = make_plan(graph, outputs, self.registry, labels)
        self._last_plan = (signature, plan)
        return plan

    def _prepare(
        self, graph: Graph, outputs: Iterable[NodeId] | None
    ) -> tuple[Graph, Plan, list[Problem], Expansion | None]:
        """The graph to run (subgraph instances expanded), its plan and its problems."""
        if not has_instances(graph):
            plan = self.plan(graph, outputs)
            return graph, plan, validate_plan(graph, plan), None
        expansion = expand(graph)
        flat = expansion.graph
        plan = self.plan(flat, expansion.targets(outputs), expansion.labels)
        problems = lift_problems(expansion, validate_plan(flat, plan))
        return flat, plan, problems, expansion

    def validate(self, graph: Graph, outputs: Iterable[NodeId] | None = None) -> list[Problem]:
        """Every problem that would stop ``run`` with the same arguments; empty when none."""
        return self._prepare(graph, outputs)[2]

    def clear_cache(self) -> None:
        with self._lock:
            self.cache.clear()

    def run(
        self,
        graph: Graph,
        outputs: Iterable[NodeId] | None = None,
        on_event: Callable[[Event], None] | None = None,
        cancel: CancelToken | None = None,
        output_dir: Path | str = "output",
        workflow: dict[str, Any] | None = None,
        device: str = "auto",
        preview_vae_every: int = 0,
    ) -> RunReport:
        """Evaluates ``outputs`` (default: every output node that is not muted or bypassed).

        ``preview_vae_every`` > 0 asks samplers for a full VAE decode of their live preview
        every that many steps; it changes what is shown, never a result or a cache key.

        Raises ``ValidationError`` with every problem, before running anything or emitting any
        event, when the graph cannot run. Node failures and cancellation end up in the report.
        """
        with self._lock:
            start = time.perf_counter()
            graph, plan, problems, expansion = self._prepare(graph, outputs)
            if problems:
                raise ValidationError(problems)
            emit = on_event or _ignore
            if expansion is not None and on_event is not None:
                emit = EventLifter(expansion, plan, on_event)
            run = _Run(
                self.cache,
                graph,
                plan,
                emit,
                cancel or CancelToken(),
                Path(output_dir),
                workflow,
                device,
                preview_vae_every,
            )
            keep_freed_memory()
            try:
                report = run.execute(start)
            finally:
                del run  # its values go before the free memory is handed back
                release_freed_memory()
            return report if expansion is None else _fold(report, expansion)


class _Run:
    """The state of one run: which nodes must run, the live values, and the report."""

    def __init__(
        self,
        cache: ResultCache,
        graph: Graph,
        plan: Plan,
        emit: Callable[[Event], None],
        cancel: CancelToken,
        output_dir: Path,
        workflow: dict[str, Any] | None,
        device: str,
        preview_vae_every: int = 0,
    ) -> None:
        self.cache = cache
        self.graph = graph
        self.plan = plan
        self.emit = emit
        self.cancel = cancel
        self.output_dir = output_dir
        self.workflow = workflow
        self.device = device
        self.preview_vae_every = preview_vae_every
        self.entries: dict[NodeId, NodeReport] = {}
        self.values: dict[NodeId, tuple[Any, ...]] = {}
        #: For each node whose value is held, how many nodes still to run will read it.
        self.readers_left: dict[NodeId, int] = {}
        #: For nodes that did not produce a value, the failed or muted node to blame.
        self.blame: dict[NodeId, str] = {}
        self.cancelled = False
        self.keys: dict[NodeId, str | None] = {}

    def execute(self, start: float) -> RunReport:
        """Runs the plan; ``start`` is when the run began (planning included)."""
        run_id = uuid.uuid4().hex[:12]
        plan = self.plan
        keys, key_errors = compute_keys(self.graph, plan)
        self.keys = keys

        # Walk back from the targets: a node runs only when its key misses and its value is
        # needed (it is a target, or a node that runs reads it). Hits are pinned here so that
        # evictions during the run cannot lose them.
        targets = set(plan.targets)
        wanted = set(targets)
        must_run: set[NodeId] = set()
        cached: dict[NodeId, CacheEntry] = {}
        for nid in reversed(plan.order):
            if nid not in wanted:
                continue
            key = keys[nid]
            entry = self.cache.get(key) if key is not None else None
            if entry is not None:
                cached[nid] = entry
                self.values[nid] = entry.outputs
            else:
                must_run.add(nid)
                wanted.update(plan.nodes[nid].deps)
        for nid in must_run:
            for dep in plan.nodes[nid].deps:
                self.readers_left[dep] = self.readers_left.get(dep, 0) + 1

        self.emit(RunStarted(run_id, plan.sequence))
        for nid in plan.sequence:
            if nid in must_run:
                self._run_node(plan.nodes[nid], key_errors.get(nid))
            elif nid in plan.nodes:
                self._report_cached(nid, cached.pop(nid, None))
            else:
                self._report_not_run(nid)
            if nid not in targets and self.readers_left.get(nid, 0) == 0:
                self.values.pop(nid, None)

        statuses = {entry.status for entry in self.entries.values()}
        status = "cancelled" if "cancelled" in statuses else "ok"
        if status == "ok" and "failed" in statuses:
            status = "failed"
        seconds = time.perf_counter() - start
        self.emit(RunFinished(run_id, seconds, status))
        outputs = {nid: self.values[nid] for nid in plan.targets if nid in self.values}
        return RunReport(run_id, status, seconds, self.entries, outputs)

    # --- reporting nodes that do not run ---------------------------------------------------

    def _report_cached(self, nid: NodeId, entry: CacheEntry | None) -> None:
        if entry is None:
            message = "not needed: a result downstream of it is cached"
            records: tuple[Record, ...] = ()
        else:
            message, records = "", entry.records
        label = self.plan.labels[nid]
        self.entries[nid] = NodeReport(nid, label, "cached", 0.0, message, records=records)
        if self.emit is not _ignore:  # a fully cached re-run reports 1,000s of these
            self.emit(NodeFinished(nid, 0.0, True, records))

    def _report_not_run(self, nid: NodeId) -> None:
        plan = self.plan
        if nid in plan.muted:
            status, reason = "muted", "muted"
        elif nid in plan.bypassed:
            status, reason = "bypassed", "bypassed: its inputs are passed through"
        else:
            status, reason = "skipped", plan.skipped.get(nid, "not needed")
        self.entries[nid] = NodeReport(nid, plan.labels[nid], status, 0.0, reason)
        self.emit(NodeSkipped(nid, reason))

    def _skip(self, pn: PlannedNode, status: str, reason: str) -> None:
        self.entries[pn.node_id] = NodeReport(pn.node_id, pn.label, status, 0.0, reason)
        self.emit(NodeSkipped(pn.node_id, reason))

    def _fail(
        self,
        pn: PlannedNode,
        seconds: float,
        message: str,
        field: str | None = None,
        records: tuple[Record, ...] = (),
        trace: str = "",
    ) -> None:
        nid = pn.node_id
        self.blame[nid] = f"needs {pn.label}, which failed"
        self.entries[nid] = NodeReport(
            nid, pn.label, "failed", seconds, message, field, records, trace
        )
        self.emit(NodeFailed(nid, message, field))

    def _release_inputs(self, pn: PlannedNode) -> None:
        """This node no longer needs its inputs: drop values nobody else will read."""
        targets = self.plan.targets
        for dep in pn.deps:
            left = self.readers_left[dep] - 1
            self.readers_left[dep] = left
            if left == 0 and dep not in targets:
                self.values.pop(dep, None)

    # --- running a node --------------------------------------------------------------------

    def _run_node(self, pn: PlannedNode, key_error: str | None) -> None:
        """Runs one node (or skips it); kept in its own frame so no value outlives it."""
        try:
            self._evaluate(pn, key_error)
        finally:
            self._release_inputs(pn)

    def _evaluate(self, pn: PlannedNode, key_error: str | None) -> None:
        nid = pn.node_id
        if self.cancelled or self.cancel.cancelled:
            self.cancelled = True
            self._skip(pn, "cancelled", "the run was cancelled")
            return
        for dep in pn.deps:
            if dep not in self.values:
                blame = self.blame.get(dep, f"needs {self.plan.labels[dep]}, which did not run")
                self.blame[nid] = blame
                self._skip(pn, "skipped", blame)
                return
        if key_error is not None:
            self._fail(pn, 0.0, key_error)
            return
        key = self.keys[nid]
        entry = self.cache.get(key) if key is not None else None
        if entry is not None:  # an equal node earlier in this run made it
            self.values[nid] = entry.outputs
            self._report_cached(nid, entry)
            return
        try:
            kwargs = self._inputs(pn)
        except Exception as exc:
            self._fail(pn, 0.0, f"could not prepare its inputs: {exc}", trace=_trace())
            return

        spec = pn.spec
        ctx = NodeContext(
            nid,
            pn.label,
            self.cancel,
            self.emit,
            self.output_dir,
            self.workflow,
            self.device,
            self.preview_vae_every,
        )
        self.emit(NodeStarted(nid))
        started = time.perf_counter()
        try:
            result = spec.function(ctx, **kwargs)
        except Cancelled:
            self.cancelled = True
            self._skip(pn, "cancelled", "cancelled while running")
            return
        except NodeError as exc:
            seconds = time.perf_counter() - started
            self._fail(pn, seconds, exc.message, exc.field, tuple(ctx.records), _trace())
            return
        except Exception as exc:
            seconds = time.perf_counter() - started
            message = f"{type(exc).__name__}: {exc}"
            self._fail(pn, seconds, message, None, tuple(ctx.records), _trace())
            return
        finally:
            del kwargs
        seconds = time.perf_counter() - started
        records = tuple(ctx.records)
        outputs, error = _normalise(result, len(spec.outputs))
        del result
        if error is not None:
            self._fail(pn, seconds, error, None, records)
            return
        self.values[nid] = outputs
        if key is not None:
            self.cache.put(key, outputs, [o.type for o in spec.outputs], records)
        self.entries[nid] = NodeReport(nid, pn.label, "ran", seconds, records=records)
        self.emit(NodeFinished(nid, seconds, False, records))

    def _inputs(self, pn: PlannedNode) -> dict[str, Any]:
        """Keyword arguments for the node function: linked values (converted) and params.

        An optional socket with no link is not passed, so the function's default applies.
        """
        params = self.graph.nodes[pn.node_id].params
        values = self.values
        outputs_of = {}
        kwargs: dict[str, Any] = {}
        for binding in pn.bindings:
            source = binding.source
            if source is None:
                if binding.is_widget:
                    name = binding.name
                    kwargs[name] = params[name] if name in params else pn.spec.input(name).default
                continue
            names = outputs_of.get(source.node_id)
            if names is None:
                spec = self.plan.nodes[source.node_id].spec
                names = outputs_of[source.node_id] = {o.name: i for i, o in enumerate(spec.outputs)}
            value = values[source.node_id][names[source.output]]
            for conversion in source.conversions:
                try:
                    value = conversion.apply(value)
                except Exception as exc:
                    raise ValueError(
                        f"input '{binding.name}': {conversion.name} failed on {value!r} ({exc})"
                    ) from exc
            kwargs[binding.name] = value
        return kwargs


def _fold(report: RunReport, expansion: Expansion) -> RunReport:
    """The report with inner nodes moved to ``inner`` and one entry per instance."""
    entries: dict[NodeId, NodeReport] = {}
    inner: dict[tuple[NodeId, ...], NodeReport] = {}
    grouped: dict[NodeId, list[NodeReport]] = {}
    for nid, entry in report.entries.items():
        path = expansion.paths.get(nid)
        if path is None:
            entries[nid] = entry
            continue
        inner[path] = entry
        if path[0] not in grouped:
            grouped[path[0]] = []
            entries[path[0]] = entry  # keeps the instance's place in the order
        grouped[path[0]].append(entry)
    for top, members in grouped.items():
        statuses = [m.status for m in members]
        failed = next((m for m in members if m.status == "failed"), None)
        status = next(
            (s for s in ("failed", "cancelled", "ran", "cached") if s in statuses), statuses[0]
        )
        entries[top] = NodeReport(
            top,
            expansion.instance_labels.get(top, members[0].label),
            status,
            sum(m.seconds for m in members),
            f"in {failed.label}: {failed.message}" if failed else "",
            None,
            tuple(r for m in members for r in m.records),
            failed.traceback if failed else "",
        )
    outputs = {nid: v for nid, v in report.outputs.items() if nid not in expansion.paths}
    return RunReport(report.run_id, report.status, report.seconds, entries, outputs, inner)


def _normalise(result: Any, count: int) -> tuple[tuple[Any, ...], str | None]:
    """The node's return value as one value per output, or why it does not fit."""
    if count == 1:
        if isinstance(result, tuple) and len(result) == 1:
            return result, None
        return (result,), None
    if count == 0:
        if result is None or (isinstance(result, tuple) and not result):
            return (), None
        return (), f"returned {type(result).__name__} but the node has no outputs"
    if isinstance(result, (tuple, list)) and len(result) == count:
        return tuple(result), None
    got = f"{len(result)} values" if isinstance(result, (tuple, list)) else type(result).__name__
    return (), f"returned {got} but the node has {count} outputs"


def _trace() -> str:
    return traceback.format_exc()
