"""Cache keys: a Merkle hash of what produces each node's outputs.

A key covers the node's type and spec version, its widget values not driven by links, for each
linked input the upstream key, output and conversion, and the spec's fingerprint of outside
state (a file's hash). Node ids, titles and positions are not part of it, so moving or
renumbering nodes keeps their results, and equal sub-graphs share them.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

from core.engine.plan import Plan
from core.graph.model import Graph, NodeId

_SCALARS = (str, int, float, bool, type(None))


def canonical(value: Any) -> str:
    """A deterministic text for a param value: dicts are sorted, containers recursed."""
    if isinstance(value, _SCALARS):
        return repr(value)
    if isinstance(value, dict):
        items = sorted((canonical(k), canonical(v)) for k, v in value.items())
        return "{" + ",".join(f"{k}:{v}" for k, v in items) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(canonical(v) for v in value) + "]"
    if isinstance(value, (set, frozenset)):
        return "{" + ",".join(sorted(canonical(v) for v in value)) + "}"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = dataclasses.fields(value)
        return type(value).__name__ + canonical({f.name: getattr(value, f.name) for f in fields})
    return f"{type(value).__qualname__}:{value!r}"


def compute_keys(graph: Graph, plan: Plan) -> tuple[dict[NodeId, str | None], dict[NodeId, str]]:
    """Keys of every node in ``plan.order``, top-down.

    Returns the keys and, for nodes whose ``fingerprint`` hook raised, the error text. Such a
    node, and everything downstream of it, gets the key None (it cannot be cached).
    """
    keys: dict[NodeId, str | None] = {}
    errors: dict[NodeId, str] = {}
    nodes = graph.nodes
    sha256 = hashlib.sha256
    for nid in plan.order:
        pn = plan.nodes[nid]
        spec = pn.spec
        params = nodes[nid].params
        parts = [repr(spec.type_id), str(spec.version)]
        unknown = False
        for binding in pn.bindings:
            source = binding.source
            if source is None:
                if binding.is_widget:
                    name = binding.name
                    value = params[name] if name in params else spec.input(name).default
                    text = repr(value) if type(value) in _SCALARS else canonical(value)
                    parts.append(f"w{name!r}={text}")
                continue
            upstream = keys[source.node_id]
            if upstream is None:
                unknown = True
                break
            conversion = source.conversion_name if source.conversions else ""
            parts.append(f"l{binding.name!r}={upstream}:{source.output!r}:{conversion}")
        if unknown:
            keys[nid] = None
            continue
        if spec.fingerprint is not None:
            try:
                parts.append("f" + canonical(spec.fingerprint(params)))
            except Exception as exc:  # reported as the node's failure by the executor
                errors[nid] = f"could not fingerprint its inputs ({type(exc).__name__}: {exc})"
                keys[nid] = None
                continue
        keys[nid] = sha256("\x1f".join(parts).encode()).hexdigest()
    return keys, errors
