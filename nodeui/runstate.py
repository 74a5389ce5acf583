"""What the canvas shows of a run on each node, and how engine events turn into it.

The shell's worker bridge turns executor events into ``NodeRunState`` values (``apply_event``
does it) and hands them to ``GraphScene.set_node_state``; the canvas only draws them. No Qt
here, so the mapping is testable without a screen.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

from core.engine.events import (
    Event,
    NodeFailed,
    NodeFinished,
    NodeSkipped,
    NodeStarted,
    Progress,
    RunStarted,
)
from core.graph.commands import Command, Macro, SetParam
from core.graph.model import Graph, NodeId


class RunStatus(StrEnum):
    """The phases a node goes through in one run (equal to their names as plain strings)."""

    IDLE = "idle"
    QUEUED = "queued"
    RUNNING = "running"
    CACHED = "cached"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class NodeRunState:
    """How one node stands in the current (or last) run.

    ``status`` is a ``RunStatus`` (a plain string such as ``"failed"`` is accepted too);
    ``progress`` is 0..1 while running (None when unknown); ``seconds`` is the time a finished
    node took; ``message`` is the failure (or skip reason) pinned on the node and ``field`` the
    input or param it is about; ``step`` of ``total`` is the last step a node that reports
    steps (a sampler) reached.
    """

    status: RunStatus = RunStatus.IDLE
    progress: float | None = None
    seconds: float | None = None
    message: str = ""
    field: str | None = None
    step: int | None = None
    total: int | None = None

    def __post_init__(self) -> None:
        # The contract allows plain strings ("failed"); keep the enum member either way.
        object.__setattr__(self, "status", RunStatus(self.status))

    @property
    def label(self) -> str:
        """The short text drawn on the node's title bar ("0.42 s", "cached", "40 %")."""
        if self.status is RunStatus.DONE and self.seconds is not None:
            return f"{self.seconds:.2f} s"
        if self.status is RunStatus.RUNNING and self.progress is not None:
            return f"{round(self.progress * 100)} %"
        if self.status in (RunStatus.CACHED, RunStatus.QUEUED, RunStatus.SKIPPED):
            return self.status.value
        if self.status is RunStatus.CANCELLED:
            return "cancelled" if self.step is None else f"cancelled at step {self.step}"
        return ""


IDLE = NodeRunState()


def apply_event(states: Mapping[NodeId, NodeRunState], event: Event) -> dict[NodeId, NodeRunState]:
    """The states after ``event``: only the nodes the event is about change.

    ``RunStarted`` queues every node of the run and forgets the previous run's states.
    """
    if isinstance(event, RunStarted):
        return {nid: NodeRunState(RunStatus.QUEUED) for nid in event.node_ids}
    out = dict(states)
    if isinstance(event, NodeStarted):
        out[event.node_id] = NodeRunState(RunStatus.RUNNING, progress=0.0)
    elif isinstance(event, Progress):
        fraction = event.step / event.total if event.total else None
        out[event.node_id] = replace(
            out.get(event.node_id, NodeRunState(RunStatus.RUNNING)),
            status=RunStatus.RUNNING,
            progress=fraction,
            step=event.step,
            total=event.total,
        )
    elif isinstance(event, NodeFinished):
        status = RunStatus.CACHED if event.cached else RunStatus.DONE
        out[event.node_id] = NodeRunState(status, seconds=event.seconds)
    elif isinstance(event, NodeFailed):
        out[event.node_id] = NodeRunState(
            RunStatus.FAILED, message=event.message, field=event.field
        )
    elif isinstance(event, NodeSkipped):
        out[event.node_id] = _skipped(out.get(event.node_id), event.reason)
    return out


def _skipped(before: NodeRunState | None, reason: str) -> NodeRunState:
    """A node that was running when the run was cancelled says how far it got; any other
    skipped node says why it did not run."""
    if before is None or before.status is not RunStatus.RUNNING:
        return NodeRunState(RunStatus.SKIPPED, message=reason)
    step, total = before.step, before.total
    where = f" at step {step} of {total}" if step is not None and total else " while running"
    return NodeRunState(
        RunStatus.CANCELLED, before.progress, message=f"cancelled{where}", step=step, total=total
    )


#: The modes a seed widget offers; stored in ``node.ui["control_after_run"][param name]``.
CONTROL_MODES = ("fixed", "randomize", "increment")
#: Seeds stay within what every sampler accepts.
SEED_MAX = 2**53 - 1


def control_mode(graph: Graph, node_id: NodeId, name: str) -> str:
    """The after-run mode of a seed widget ("fixed" unless the node says otherwise)."""
    modes = graph.node(node_id).ui.get("control_after_run", {})
    mode = modes.get(name, "fixed") if isinstance(modes, dict) else "fixed"
    return mode if mode in CONTROL_MODES else "fixed"


def controls_after_run(graph: Graph, rng: random.Random | None = None) -> Command | None:
    """The edit that applies every seed's after-run mode (randomize or increment), as one
    command for the undo stack, or None when every seed is fixed."""
    rng = rng or random.Random()
    edits: list[Command] = []
    for node in graph:
        spec = graph.spec(node.id)
        for widget in spec.widgets:
            if not widget.control_after_run or graph.link_to(node.id, widget.name):
                continue
            mode = control_mode(graph, node.id, widget.name)
            value = node.params.get(widget.name, widget.default)
            high = int(widget.max) if widget.max is not None else SEED_MAX
            low = int(widget.min) if widget.min is not None else 0
            if mode == "randomize":
                edits.append(SetParam(node.id, widget.name, rng.randint(low, high)))
            elif mode == "increment":
                edits.append(SetParam(node.id, widget.name, low if value >= high else value + 1))
    return Macro("Update Seeds", edits) if edits else None
