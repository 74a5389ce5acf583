"""What a run of an expanded graph reports, told in terms of the graph the user edits.

Problems, events and report entries of nodes inside subgraphs are pinned to the top-level
instance (so the editor marks it) and carry the inner node's ``path`` (so a view inside the
subgraph can mark the inner node); their messages say where: "in Prompt block › KSampler #3:
…". An instance's own entry and its finishing event sum up its inner nodes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from core.engine.errors import Problem
from core.engine.events import (
    Event,
    NodeFailed,
    NodeFinished,
    NodeSkipped,
    NodeStarted,
    Preview,
    Progress,
    Record,
    RunStarted,
)
from core.engine.expand import Expansion
from core.engine.plan import Plan
from core.graph.model import NodeId


def lift_problems(expansion: Expansion, problems: list[Problem]) -> list[Problem]:
    """Problems of inner nodes pinned to their instance, with the inner path kept."""
    lifted = []
    for problem in problems:
        path = expansion.paths.get(problem.node_id)
        if path is None:
            lifted.append(problem)
        else:
            lifted.append(
                dataclasses.replace(
                    problem, node_id=path[0], field=None, message=f"in {problem.message}", path=path
                )
            )
    for flat_id, message in expansion.problems:
        path = expansion.paths.get(flat_id, (flat_id,))
        label = expansion.labels.get(flat_id, f"#{flat_id}")
        lifted.append(
            Problem(path[0], None, f"in {label}: {message}. Reconnect it.", "type_mismatch", path)
        )
    return lifted


class EventLifter:
    """Passes events on with inner nodes' ids lifted to their instance. An instance finishes
    (or is skipped) once, when its last inner node has; after a failure inside it, only the
    failure is told."""

    def __init__(self, expansion: Expansion, plan: Plan, emit: Callable[[Event], None]) -> None:
        self.expansion = expansion
        self.emit = emit
        self.left: dict[NodeId, int] = {}
        for nid in plan.sequence:
            path = expansion.paths.get(nid)
            if path is not None:
                self.left[path[0]] = self.left.get(path[0], 0) + 1
        self.failed: set[NodeId] = set()
        self.seconds: dict[NodeId, float] = {}
        self.records: dict[NodeId, list[Record]] = {}
        self.all_cached: dict[NodeId, bool] = {}
        self.finished: dict[NodeId, bool] = {}
        self.skip_reason: dict[NodeId, str] = {}

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            tops = [self.expansion.top(nid) for nid in event.node_ids]
            self.emit(RunStarted(event.run_id, tuple(dict.fromkeys(tops))))
            return
        node_id = getattr(event, "node_id", None)
        path = None if node_id is None else self.expansion.paths.get(node_id)
        if path is None:
            self.emit(event)
            return
        top = path[0]
        if isinstance(event, (NodeStarted, Progress, Preview)):
            self.emit(dataclasses.replace(event, node_id=top, path=path))
        elif isinstance(event, NodeFailed):
            if top not in self.failed:
                self.failed.add(top)
                label = self.expansion.labels.get(node_id, "")
                message = f"in {label}: {event.message}"
                self.emit(NodeFailed(top, message, None, path=path))
            self._count_down(top)
        elif isinstance(event, NodeFinished):
            self.seconds[top] = self.seconds.get(top, 0.0) + event.seconds
            self.records.setdefault(top, []).extend(event.records)
            self.all_cached[top] = self.all_cached.get(top, True) and event.cached
            self.finished[top] = True
            self._count_down(top)
        elif isinstance(event, NodeSkipped):
            self.skip_reason.setdefault(top, event.reason)
            self._count_down(top)
        else:
            self.emit(event)

    def _count_down(self, top: NodeId) -> None:
        self.left[top] = self.left.get(top, 1) - 1
        if self.left[top] > 0 or top in self.failed:
            return
        if self.finished.get(top):
            self.emit(
                NodeFinished(
                    top,
                    self.seconds.get(top, 0.0),
                    self.all_cached.get(top, False),
                    tuple(self.records.get(top, ())),
                )
            )
        else:
            self.emit(NodeSkipped(top, self.skip_reason.get(top, "not needed")))
