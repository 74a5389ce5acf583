"""The engine: plans, validates and runs node graphs with a result cache.

Knows graphs and specs, not diffusion: no torch, no Qt, no ``core.diffusion`` here.

Typical use (the CLI)::

    executor = Executor(registry)
    problems = executor.validate(graph, outputs)   # every problem, nothing runs
    if problems:
        ...print each problem.message, exit non-zero
    report = executor.run(graph, outputs, on_event=print, output_dir=folder, workflow=data)

``run`` validates too and raises ``ValidationError`` (``.problems``, ``str()`` lists them all,
``.to_json()`` for a report file) before running or emitting anything. A returned report
always comes from a run: ``report.status`` is "ok", "failed" or "cancelled".
"""

from __future__ import annotations

from core.engine.cache import CacheBudgets, CacheEntry, ResultCache, measure_bytes, model_bytes
from core.engine.context import CancelToken, NodeContext
from core.engine.errors import Cancelled, NodeError, Problem, ValidationError
from core.engine.events import (
    Event,
    NodeFailed,
    NodeFinished,
    NodeSkipped,
    NodeStarted,
    Preview,
    Progress,
    Record,
    RunFinished,
    RunStarted,
)
from core.engine.executor import STATUSES, Executor, NodeReport, RunReport
from core.engine.keys import compute_keys
from core.engine.plan import Binding, Plan, PlannedNode, Source, default_targets, make_plan
from core.engine.validate import validate, validate_plan

__all__ = [
    "STATUSES",
    "Binding",
    "CacheBudgets",
    "CacheEntry",
    "CancelToken",
    "Cancelled",
    "Event",
    "Executor",
    "NodeContext",
    "NodeError",
    "NodeFailed",
    "NodeFinished",
    "NodeReport",
    "NodeSkipped",
    "NodeStarted",
    "Plan",
    "PlannedNode",
    "Preview",
    "Problem",
    "Progress",
    "Record",
    "ResultCache",
    "RunFinished",
    "RunReport",
    "RunStarted",
    "Source",
    "ValidationError",
    "compute_keys",
    "default_targets",
    "make_plan",
    "measure_bytes",
    "model_bytes",
    "validate",
    "validate_plan",
]
