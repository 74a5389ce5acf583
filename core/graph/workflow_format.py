"""What the workflow modules share: the format's name and versions, ``WorkflowError`` and the
loaded ``Workflow``, and the small checks that word their messages."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.graph.model import Graph

FORMAT = "latentloom"
VERSION = 3
#: The version written for a workflow without subgraphs: older LatentLoom reads it.
VERSION_WITHOUT_SUBGRAPHS = 2
#: The PNG text chunk that carries a workflow.
PNG_KEY = "latentloom"
#: The largest workflow file read: workflows are kilobytes, so a bigger file is not one.
MAX_FILE_BYTES = 64 * 1024 * 1024
#: How deeply a workflow's JSON may nest; real ones (LatentLoom's, ComfyUI's) stay under 20.
MAX_DEPTH = 100


class WorkflowError(Exception):
    """A workflow file that cannot be opened, with where the problem is."""

    def __init__(
        self,
        problem: str,
        *,
        source: str | os.PathLike[str] | None = None,
        node_id: object = None,
        field: str | None = None,
        hint: str = "",
    ) -> None:
        self.problem, self.source, self.node_id, self.field, self.hint = (
            problem,
            source,
            node_id,
            field,
            hint,
        )
        where = [str(source) if source is not None else "workflow"]
        if node_id is not None:
            where.append(f"node {node_id}")
        if field is not None:
            where.append(f"field {field!r}")
        message = f"{', '.join(where)}: {problem}"
        super().__init__(f"{message}. {hint}" if hint else message)


@dataclass
class Workflow:
    """A loaded workflow: the graph plus what only the editor cares about."""

    graph: Graph
    view: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    source: Path | None = None

    @property
    def placeholders(self) -> list[int]:
        """Ids of nodes whose type this install lacks."""
        return [n.id for n in self.graph if n.placeholder is not None]


KIND_NAMES = {
    dict: "an object",
    list: "a list",
    int: "a whole number",
    str: "text",
    bool: "true or false",
    float: "a number",
}


def show_value(value: Any, limit: int = 60) -> str:
    """``value`` as JSON, shortened to ``limit`` characters for a message."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def expect(value: Any, kind: type | tuple[type, ...], what: str, **where: Any) -> Any:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (bool not in kinds and isinstance(value, bool)):
        names = " or ".join(KIND_NAMES.get(k, k.__name__) for k in kinds)
        raise WorkflowError(f"{what} should be {names}, found {show_value(value)}", **where)
    return value


def mode_name(bypassed: bool, muted: bool) -> str:
    """A node's ``mode`` as saved: ``normal``, ``bypassed`` or ``muted``."""
    return "muted" if muted else "bypassed" if bypassed else "normal"
