"""Events the executor reports while it runs, delivered in order to ``on_event``.

A run emits ``RunStarted``, then for every node of the plan in topological order either
``NodeStarted`` (followed by ``Progress``/``Preview`` and ``NodeFinished`` or ``NodeFailed``),
or ``NodeFinished(cached=True)``, or ``NodeSkipped``; and finally ``RunFinished``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.graph.model import NodeId


@dataclass(frozen=True)
class Record:
    """A UI output a node recorded with ``ctx.record`` (a saved file's path, an image to show)."""

    kind: str
    value: Any


@dataclass(frozen=True)
class RunStarted:
    run_id: str
    #: Every node the run will report on, in the order their events will come.
    node_ids: tuple[NodeId, ...]


@dataclass(frozen=True)
class NodeEvent:
    """An event about node ``node_id``."""

    node_id: NodeId
    #: Inside a subgraph: the path (instance id, …, inner node id) of the node this is about;
    #: ``node_id`` is then the top-level instance. Empty for top-level nodes. Keyword-only,
    #: so it comes after each event's own fields.
    path: tuple[NodeId, ...] = field(default=(), kw_only=True)


@dataclass(frozen=True)
class NodeStarted(NodeEvent):
    """The node began to run."""


@dataclass(frozen=True)
class Progress(NodeEvent):
    step: int
    total: int


@dataclass(frozen=True)
class Preview(NodeEvent):
    """A picture of work in progress (a sampler step); ``image`` is opaque to the engine."""

    image: Any


@dataclass(frozen=True)
class NodeFinished(NodeEvent):
    seconds: float
    cached: bool
    #: The node's recorded UI outputs; a cached node reports those of the run that made it.
    records: tuple[Record, ...] = ()


@dataclass(frozen=True)
class NodeFailed(NodeEvent):
    message: str
    field: str | None = None


@dataclass(frozen=True)
class NodeSkipped(NodeEvent):
    """The node did not run: muted, bypassed, blocked by a muted or failed node, or cancelled."""

    reason: str


@dataclass(frozen=True)
class RunFinished:
    run_id: str
    seconds: float
    status: str  # "ok" | "failed" | "cancelled"


Event = (
    RunStarted
    | NodeStarted
    | Progress
    | Preview
    | NodeFinished
    | NodeFailed
    | NodeSkipped
    | RunFinished
)
