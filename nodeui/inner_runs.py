"""Run states of the nodes inside subgraph instances, by path (instance id, …, inner node id).

The engine runs an instance as its inner nodes and reports them lifted onto the top-level
instance: while it runs, ``NodeStarted``, ``Progress``, ``Preview`` and ``NodeFailed`` carry
the inner node's ``path``; how each inner node ended (its time, whether it was cached, its
records) comes in the run's report (``RunReport.inner``). ``InnerStates`` turns both into
``NodeRunState`` values per path, so a view of the subgraph can draw them on its nodes like
top-level ones. No Qt here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from core.engine.events import (
    Event,
    NodeFailed,
    NodeFinished,
    NodeSkipped,
    NodeStarted,
    RunStarted,
)
from nodeui.runstate import NodeRunState, RunStatus, apply_event

Path = tuple[int, ...]


def _report_event(path: Path, entry: Any) -> Event:
    """The event that tells what a report entry says (``NodeReport``, duck-typed)."""
    status = entry.status
    if status in ("ran", "cached"):
        return NodeFinished(path, entry.seconds, status == "cached")  # type: ignore[arg-type]
    if status == "failed":
        return NodeFailed(path, entry.message, entry.field)  # type: ignore[arg-type]
    return NodeSkipped(path, entry.message or status)  # type: ignore[arg-type]


class InnerStates:
    """The states of one run's inner nodes, by path."""

    def __init__(self) -> None:
        self.states: dict[Path, NodeRunState] = {}

    def _apply(self, path: Path, event: Event) -> dict[Path, NodeRunState]:
        old = self.states.get(path)
        keyed = replace(event, node_id=path)  # type: ignore[type-var]
        new = apply_event({path: old} if old is not None else {}, keyed).get(path)
        if new is None or new == old:
            return {}
        self.states[path] = new
        return {path: new}

    def _settle(self, keep: Path = ()) -> dict[Path, NodeRunState]:
        """Inner nodes still running once another node starts (or their instance ends) have
        finished: nodes run one at a time, and a failure would have said so. Their time and
        whether they were cached come with the report."""
        changed: dict[Path, NodeRunState] = {}
        for path, state in list(self.states.items()):
            if state.status is RunStatus.RUNNING and path != keep:
                self.states[path] = changed[path] = NodeRunState(RunStatus.DONE)
        return changed

    def on_event(self, event: Event) -> dict[Path, NodeRunState]:
        """The inner states ``event`` changed."""
        if isinstance(event, RunStarted):
            self.states.clear()
            return {}
        path: Path = tuple(getattr(event, "path", ()) or ())
        changed: dict[Path, NodeRunState] = {}
        # A skipped or failed instance says nothing of its running node: cancelled or failed,
        # the report tells which.
        if isinstance(event, NodeStarted) or (not path and isinstance(event, NodeFinished)):
            changed.update(self._settle(keep=path))
        if path:
            changed.update(self._apply(path, event))
        return changed

    def on_report(self, inner: Mapping[Path, Any]) -> dict[Path, NodeRunState]:
        """The final states from the report's entries of inner nodes (``RunReport.inner``)."""
        changed: dict[Path, NodeRunState] = {}
        for path, entry in inner.items():
            changed.update(self._apply(tuple(path), _report_event(tuple(path), entry)))
        return changed

    def under(self, prefix: Path) -> Iterable[tuple[Path, NodeRunState]]:
        """The states of the inner nodes whose path starts with ``prefix``."""
        size = len(prefix)
        return ((p, s) for p, s in self.states.items() if p[:size] == prefix and len(p) > size)


#: Which state an instance inside a subgraph shows when its nodes differ, most telling first.
_PRECEDENCE = (
    RunStatus.FAILED,
    RunStatus.RUNNING,
    RunStatus.CANCELLED,
    RunStatus.QUEUED,
    RunStatus.DONE,
    RunStatus.CACHED,
    RunStatus.SKIPPED,
)


def summed_state(states: Iterable[NodeRunState]) -> NodeRunState | None:
    """One state for a nested instance from those of its nodes, as the engine sums a
    top-level instance: a failure or a running node wins; done counts the time of all."""
    found = list(states)
    if not found:
        return None
    for status in _PRECEDENCE:
        chosen = [s for s in found if s.status is status]
        if not chosen:
            continue
        if status is RunStatus.DONE:
            seconds = [s.seconds for s in found if s.seconds is not None]
            return NodeRunState(RunStatus.DONE, seconds=sum(seconds) if seconds else None)
        return chosen[0]
    return found[0]
