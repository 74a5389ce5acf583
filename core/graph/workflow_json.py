"""A workflow's JSON, read safely: no NaN, infinities or runaway nesting."""

from __future__ import annotations

import json
import math
import os
import sys
from typing import Any

from core.graph.workflow_format import MAX_DEPTH, WorkflowError


def parse_json(text: str, source: str | os.PathLike[str] | None = None) -> Any:
    """Parses a workflow's JSON; anything that is not plain, finite, reasonably nested JSON
    raises ``WorkflowError`` naming the file and, where it can, the field."""
    if not text.strip():
        raise WorkflowError(
            "empty: there is no workflow in it",
            source=source,
            hint="Open a .json workflow or a PNG carrying one",
        )
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise WorkflowError(
            f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})", source=source
        ) from None
    except RecursionError:
        raise WorkflowError(
            f"not a workflow: its JSON nests deeper than {MAX_DEPTH} levels", source=source
        ) from None
    except ValueError:  # an integer with more digits than Python converts (4,300)
        raise WorkflowError(
            f"not a workflow: it holds a number of more than {sys.get_int_max_str_digits():,} "
            "digits",
            source=source,
            hint="Write numbers of a usual size",
        ) from None
    _check_values(data, source)
    return data


def _check_values(data: Any, source: Any) -> None:
    """Refuses NaN, infinities (JSON has neither; 1e400 reads as one) and deep nesting."""
    stack: list[tuple[Any, int, tuple[Any, ...]]] = [(data, 0, ())]
    while stack:
        value, depth, trail = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            raise WorkflowError(
                f"{value} is not a number a workflow can hold",
                source=source,
                field=_trail_name(trail),
                hint="Write a finite number",
            )
        if isinstance(value, (dict, list)):
            if depth >= MAX_DEPTH:
                raise WorkflowError(
                    f"not a workflow: its JSON nests deeper than {MAX_DEPTH} levels",
                    source=source,
                )
            items = value.items() if isinstance(value, dict) else enumerate(value)
            stack.extend((child, depth + 1, (trail, key)) for key, child in items)


def _trail_name(trail: tuple[Any, ...]) -> str:
    """``(((), "nodes"), 0), "params")`` as ``nodes[0].params``."""
    keys = []
    while trail:
        trail, key = trail
        keys.append(key)
    text = ""
    for key in reversed(keys):
        text += f"[{key}]" if isinstance(key, int) else (f".{key}" if text else str(key))
    return text or "(the whole file)"
