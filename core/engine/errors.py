"""What can stop a run: validation problems found before it starts, user-facing node errors
and cancellation. Validation reports every problem at once, each pinned to a node and field,
so the editor can mark them all and the CLI can list them all.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from core.graph.model import NodeId


@dataclass(frozen=True)
class Problem:
    """One reason the graph cannot run, pinned to a node and (when it has one) an input/param.

    ``code`` is a stable machine-readable kind: ``missing_input``, ``type_mismatch``,
    ``bad_value``, ``unknown_type``, ``check_failed``, ``bypass_unresolvable``, ``cycle``,
    ``unknown_node``, ``nothing_to_run`` (the graph has nodes but a run would compute none).
    """

    node_id: NodeId
    field: str | None
    message: str
    code: str
    #: Inside a subgraph: the path (instance id, …, inner node id) of the node at fault;
    #: ``node_id`` is then the top-level instance. Empty for top-level nodes.
    path: tuple[NodeId, ...] = ()


class ValidationError(Exception):
    """Raised by ``Executor.run`` when validation found problems; nothing has run."""

    def __init__(self, problems: list[Problem] | tuple[Problem, ...]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__(self.problems)

    def __str__(self) -> str:
        count = len(self.problems)
        head = f"the graph cannot run: {count} problem{'s' if count != 1 else ''}"
        return "\n".join([head + ":", *(f"  - {p.message}" for p in self.problems)])

    def to_dict(self) -> dict[str, Any]:
        """The problems as plain data, for the CLI's ``--report`` file."""
        return {"status": "invalid", "problems": [asdict(p) for p in self.problems]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


class NodeError(Exception):
    """A user-facing failure raised by a node function: its message is shown as is.

    ``field`` names the input or param the failure is about, so the editor can point at it.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class Cancelled(Exception):
    """Raised inside a run when its ``CancelToken`` has been cancelled."""
