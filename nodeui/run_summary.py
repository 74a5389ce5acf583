"""What tells queued runs of one workflow apart: the seeds each used and what changed since
the run before it ("KSampler: seed 42→43, steps 20→30; Positive: text edited").

Both read workflow snapshots (``to_dict`` data), the same data the queue keeps, so a summary
describes exactly what ran. No Qt here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.graph.spec import NodeSpec

#: Widget names read as seeds even on node types this install does not know.
SEED_NAMES = ("seed", "noise_seed")
#: A string value shorter than this (and on one line) is shown; a longer one reads "edited".
SHORT_TEXT = 24
#: At most this many changes are spelled out; the rest are counted.
MAX_CHANGES = 4

SpecOf = Callable[[str], "NodeSpec | None"]


def _nodes(workflow: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {int(n["id"]): n for n in workflow.get("nodes", ()) if "id" in n}


def _title(node: dict[str, Any], spec_of: SpecOf) -> str:
    if node.get("title"):
        return str(node["title"])
    spec = spec_of(str(node.get("type", "")))
    return spec.title if spec is not None else str(node.get("type", "?"))


def _seed_names(node: dict[str, Any], spec_of: SpecOf) -> list[str]:
    spec = spec_of(str(node.get("type", "")))
    params = node.get("params", {})
    names = [w.name for w in spec.widgets if w.control_after_run] if spec is not None else []
    names += [name for name in SEED_NAMES if name not in names]
    return [name for name in names if name in params]


def run_seeds(workflow: dict[str, Any], spec_of: SpecOf) -> list[int]:
    """The seeds of the nodes that run (not muted or bypassed), in node order, each once."""
    seeds: list[int] = []
    for node in _nodes(workflow).values():
        if node.get("mode", "normal") != "normal":
            continue
        for name in _seed_names(node, spec_of):
            value = node["params"][name]
            if isinstance(value, int) and value not in seeds:
                seeds.append(value)
    return seeds


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _param_change(name: str, old: Any, new: Any) -> str:
    short = all(
        not isinstance(v, str) or (len(v) < SHORT_TEXT and "\n" not in v) for v in (old, new)
    )
    if isinstance(old, (dict, list)) or isinstance(new, (dict, list)) or not short:
        return f"{name} edited"
    return f"{name} {_value(old)}→{_value(new)}"


def _links(workflow: dict[str, Any]) -> set[tuple[Any, ...]]:
    return {tuple(link) for link in workflow.get("links", ())}


def run_changes(
    previous: dict[str, Any] | None, current: dict[str, Any], spec_of: SpecOf
) -> list[str]:
    """What changed from ``previous`` to ``current``, one entry per node ("KSampler: seed
    42→43, steps 20→30"), then added and removed nodes, links and subgraphs; empty when
    nothing that affects a run changed. Positions and sizes are not changes."""
    if previous is None:
        return []
    before, after = _nodes(previous), _nodes(current)
    changes: list[str] = []
    for node_id, node in after.items():
        old = before.get(node_id)
        if old is None or old.get("type") != node.get("type"):
            continue
        parts: list[str] = []
        old_params, new_params = old.get("params", {}), node.get("params", {})
        for name, value in new_params.items():
            if name in old_params and old_params[name] != value:
                parts.append(_param_change(name, old_params[name], value))
        mode, old_mode = node.get("mode", "normal"), old.get("mode", "normal")
        if mode != old_mode:
            parts.append("enabled" if mode == "normal" else mode)
        if parts:
            changes.append(f"{_title(node, spec_of)}: {', '.join(parts)}")
    for node_id, node in after.items():
        old = before.get(node_id)
        if old is None or old.get("type") != node.get("type"):
            changes.append(f"added {_title(node, spec_of)}")
    for node_id, node in before.items():
        new = after.get(node_id)
        if new is None or new.get("type") != node.get("type"):
            changes.append(f"removed {_title(node, spec_of)}")
    if _links(previous) != _links(current):
        changes.append("links changed")
    if previous.get("subgraphs") != current.get("subgraphs"):
        changes.append("a subgraph edited")
    return changes


def summary(
    previous: dict[str, Any] | None, current: dict[str, Any], spec_of: SpecOf
) -> tuple[str, str]:
    """Short texts for a queue entry: its seeds ("seed 43", "seeds 7, 8", or "") and what
    changed since ``previous`` ("first run", "no changes", or the changes)."""
    seeds = run_seeds(current, spec_of)
    seed_text = ""
    if seeds:
        seed_text = ("seed " if len(seeds) == 1 else "seeds ") + ", ".join(map(str, seeds))
    if previous is None:
        return seed_text, "first run"
    changes = run_changes(previous, current, spec_of)
    if not changes:
        return seed_text, "no changes"
    shown = "; ".join(changes[:MAX_CHANGES])
    more = len(changes) - MAX_CHANGES
    return seed_text, shown + (f"; {more} more" if more > 0 else "")
