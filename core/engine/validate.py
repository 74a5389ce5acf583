"""Validation: every reason a plan cannot run, found before anything runs, all at once.

Each problem is pinned to its node and input/param and says what to do about it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from core.engine.errors import Problem
from core.engine.plan import Plan, make_plan
from core.graph.model import Graph, NodeId
from core.graph.packs import missing_pack_advice, missing_pack_reason
from core.graph.spec import CheckFn, NodeRegistry, SocketInput, WidgetInput


def validate(
    graph: Graph, outputs: Iterable[NodeId] | None = None, registry: NodeRegistry | None = None
) -> list[Problem]:
    """Every problem that would stop a run of ``outputs`` (default: all output nodes)."""
    return validate_plan(graph, make_plan(graph, outputs, registry))


def validate_plan(graph: Graph, plan: Plan) -> list[Problem]:
    """The plan's structural problems plus those of each node to evaluate, in plan order."""
    problems = list(plan.problems)
    nodes = graph.nodes
    for nid in plan.order:
        pn = plan.nodes[nid]
        spec = pn.spec
        label = pn.label
        if spec.placeholder:
            message = (
                f"{label}: node type '{nodes[nid].type_id}' is not installed. Install what "
                f"provides it, or replace the node."
            )
            if spec.pack is not None:
                report = graph.registry.pack_report(spec.pack)
                message = (
                    f"{label}: node type '{nodes[nid].type_id}' comes from "
                    f"{missing_pack_reason(spec.pack, report)}. {missing_pack_advice(report)}"
                )
            problems.append(Problem(nid, None, message, "unknown_type"))
            continue
        params = nodes[nid].params
        for binding in pn.bindings:
            if binding.source is not None:
                continue
            inp = spec.input(binding.name)
            if isinstance(inp, WidgetInput):
                value = params.get(inp.name, inp.default)
                reason = inp.check_value(value)
                if reason is not None:
                    message = f"{label}: '{inp.name}' is invalid: {reason}. Change its value."
                    problems.append(Problem(nid, inp.name, message, "bad_value"))
            elif isinstance(inp, SocketInput) and not inp.optional:
                if binding.dangling is not None:
                    message = (
                        f"{label}: input '{inp.name}' is linked to {binding.dangling}. "
                        f"Feed it a {inp.type} output."
                    )
                elif binding.linked:
                    continue  # the link leads to a bypass already reported on that node
                else:
                    message = (
                        f"{label}: input '{inp.name}' needs a {inp.type} link but none is "
                        f"connected. Connect a {inp.type} output to it."
                    )
                problems.append(Problem(nid, inp.name, message, "missing_input"))
        if spec.check is not None:
            # A linked widget's stored value is not what the node will get: hide it from the
            # hook, which sees only the values this run would use as they are.
            linked = {b.name for b in pn.bindings if b.is_widget and b.linked}
            own = {name: value for name, value in params.items() if name not in linked}
            problems.extend(_run_check(nid, label, spec.check, own))
    return problems


def _run_check(nid: NodeId, label: str, check: CheckFn, params: Mapping[str, Any]) -> list[Problem]:
    """The spec's own check hook; a check that raises is reported, never propagated."""
    try:
        found = list(check(MappingProxyType(params)))
    except Exception as exc:  # a buggy check must not crash validation
        message = (
            f"{label}: checking its settings failed ({type(exc).__name__}: {exc}). "
            f"Fix the settings, or report this as a bug in the node."
        )
        return [Problem(nid, None, message, "check_failed")]
    problems = []
    for field, text in found:
        where = f"'{field}': " if field else ""
        problems.append(Problem(nid, field or None, f"{label}: {where}{text}", "check_failed"))
    return problems
