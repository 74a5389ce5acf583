"""Planning: from the requested outputs to the sub-graph that must be evaluated, in order.

Reroutes and bypassed nodes are resolved away here: every input of a planned node is bound
directly to the output that really produces its value (``Source``), with the conversions the
value needs on the way. Muted nodes block everything that depends on them. Structural problems
(type errors on links, bypasses with nothing to pass, cycles) are collected, attributed to
the nodes that would need them, and reported by validation together with per-node problems.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

import networkx as nx

from core.engine.errors import Problem
from core.graph import types as t
from core.graph.errors import UnknownNodeTypeError
from core.graph.model import Graph, NodeId
from core.graph.spec import REROUTE, NodeRegistry, NodeSpec, WidgetInput, placeholder_spec

# Source, Binding and PlannedNode are named tuples rather than frozen dataclasses: a plan makes
# thousands of them and a run must plan a 1,000-node graph in a few milliseconds.


class Source(NamedTuple):
    """The output that produces an input's value, and the conversions applied on the way."""

    node_id: NodeId
    output: str
    conversions: tuple[t.Conversion, ...] = ()

    @property
    def conversion_name(self) -> str:
        return "+".join(c.name for c in self.conversions)


class Binding(NamedTuple):
    """Where one input of a planned node gets its value.

    ``source`` is None when the input is unlinked (or its link leads to no value); then a widget
    uses its param and an optional socket is not passed. ``dangling`` says why a link that is
    present carries no value (a reroute nothing feeds), for the missing-input message; a link
    with neither leads to a bypass that cannot pass anything, reported on the bypassed node.
    """

    name: str
    is_widget: bool
    source: Source | None
    dangling: str | None = None
    #: Whether a link is attached (it may still carry no value: see ``dangling``).
    linked: bool = False


class PlannedNode(NamedTuple):
    node_id: NodeId
    spec: NodeSpec
    label: str
    bindings: tuple[Binding, ...]
    #: The nodes whose outputs this one reads, after resolving reroutes and bypasses; sorted.
    deps: tuple[NodeId, ...]


@dataclass
class Plan:
    """What a run will do. Only ``order`` is evaluated; the rest is reported."""

    #: Requested nodes that will be evaluated (not muted, bypassed, or blocked).
    targets: tuple[NodeId, ...]
    #: The nodes to evaluate, in topological order (dependencies first).
    order: tuple[NodeId, ...]
    nodes: dict[NodeId, PlannedNode]
    #: Every node the run reports on (evaluated, muted, bypassed, skipped), topologically.
    sequence: tuple[NodeId, ...]
    muted: frozenset[NodeId]
    bypassed: frozenset[NodeId]
    #: Nodes that will not run, with the reason (blocked by a muted node, or not needed).
    skipped: dict[NodeId, str]
    labels: dict[NodeId, str]
    #: Structural problems of the evaluated nodes (validation adds the per-node ones).
    problems: list[Problem] = field(default_factory=list)


class _Resolution(NamedTuple):
    source: Source | None
    dangling: str | None
    problems: tuple[Problem, ...]
    bypassed: tuple[NodeId, ...]


class _Hop(NamedTuple):
    """One step of a resolution through a reroute or a bypassed node (``bypassed``)."""

    upstream: tuple[NodeId, str]
    bypassed: NodeId | None = None
    problem: Problem | None = None
    conversion: t.Conversion | None = None

    def apply(self, up: _Resolution) -> _Resolution:
        """The resolution here, given the one upstream."""
        if self.bypassed is None:
            return up
        source = up.source
        if source is not None and self.conversion is not None:
            source = Source(source.node_id, source.output, (*source.conversions, self.conversion))
        problems = up.problems + ((self.problem,) if self.problem else ())
        return _Resolution(source, up.dangling, problems, (*up.bypassed, self.bypassed))


def default_targets(graph: Graph, registry: NodeRegistry | None = None) -> list[NodeId]:
    """The nodes a run computes when none are requested: output nodes neither muted nor
    bypassed."""
    registry = registry or graph.registry
    out = []
    for node in graph:
        if node.muted or node.bypassed:
            continue
        spec = node.placeholder
        if spec is None and node.type_id in registry:
            spec = registry.get(node.type_id)
        if spec is not None and spec.output_node:
            out.append(node.id)
    return sorted(out)


def make_plan(
    graph: Graph,
    outputs: Iterable[NodeId] | None = None,
    registry: NodeRegistry | None = None,
    labels: dict[NodeId, str] | None = None,
) -> Plan:
    """Plans the evaluation of ``outputs`` (default: every unmuted output node). ``labels``
    names nodes that messages should not call "Title #id" (the nodes inside subgraphs)."""
    planner = _Planner(graph, registry or graph.registry)
    planner.labels.update(labels or {})
    return planner.plan(outputs)


class _Planner:
    def __init__(self, graph: Graph, registry: NodeRegistry) -> None:
        self.graph = graph
        self.registry = registry
        self.nodes = graph.nodes
        self.specs: dict[NodeId, NodeSpec] = {}
        self.labels: dict[NodeId, str] = {}
        self.resolved: dict[tuple[NodeId, str], _Resolution] = {}
        self.out_types: dict[tuple[NodeId, str], str | None] = {}
        self.spec_inputs: dict[str, tuple[NodeSpec, list[tuple[str, bool, str]]]] = {}

    # --- node facts ------------------------------------------------------------------------

    def spec(self, nid: NodeId) -> NodeSpec:
        spec = self.specs.get(nid)
        if spec is None:
            node = self.nodes[nid]
            if node.placeholder is not None:
                spec = node.placeholder
            elif node.type_id in self.graph.subgraphs:
                spec = self.graph.type_spec(node.type_id)
            else:
                try:
                    spec = self.registry.get(node.type_id)
                except UnknownNodeTypeError:
                    spec = placeholder_spec(node.type_id, (), (), node.params)
            self.specs[nid] = spec
        return spec

    def label(self, nid: NodeId) -> str:
        label = self.labels.get(nid)
        if label is None:
            node = self.nodes.get(nid)
            if node is None:
                return f"#{nid}"
            label = f"{node.title or self.spec(nid).title} #{nid}"
            self.labels[nid] = label
        return label

    def output_type(self, nid: NodeId, output: str) -> str | None:
        """The type an output carries (a reroute: what feeds it); None if it has no such output.

        Chains of reroutes are followed in a loop, never by recursion: a file may hold
        thousands of them."""
        key = (nid, output)
        walked: dict[tuple[NodeId, str], None] = {}
        kind = self.out_types.get(key)
        while key not in self.out_types and key not in walked:
            walked[key] = None
            spec = self.spec(key[0])
            out = spec.output(key[1])
            kind = None if out is None else out.type
            feed = self.graph.link_to(key[0], "value") if spec is REROUTE else None
            if feed is None:
                break
            key = (feed.src, feed.src_output)
            kind = self.out_types.get(key, kind)
        for step in walked:
            self.out_types[step] = kind
        return kind

    # --- resolving links -------------------------------------------------------------------

    def check_link(
        self, src: NodeId, src_output: str, dst: NodeId, dst_input: str, dst_type: str
    ) -> tuple[str | None, Problem | None]:
        """The link's source type, and the problem when it cannot feed ``dst_type``."""
        src_type = self.output_type(src, src_output)
        if src_type is None:
            reason = f"{self.label(src)} has no output named '{src_output}'"
        else:
            reason = t.incompatibility_reason(src_type, dst_type)
        if reason is None:
            return src_type, None
        message = (
            f"{self.label(dst)}: input '{dst_input}' is linked to "
            f"{self.label(src)}.{src_output}, but {reason}. "
            f"Reconnect it to a {dst_type} output."
        )
        return src_type, Problem(dst, dst_input, message, "type_mismatch")

    def resolve(self, nid: NodeId, output: str) -> _Resolution:
        """Follows reroutes and bypassed nodes back to the output that produces the value.

        The walk is a loop, never recursion (a file may chain thousands of reroutes or
        bypassed nodes); every step's resolution is cached on the way back."""
        key = (nid, output)
        chain: list[tuple[tuple[NodeId, str], _Hop | None]] = []
        on_path: set[tuple[NodeId, str]] = set()
        res = self.resolved.get(key)
        while res is None:
            if key in on_path:
                res = _Resolution(
                    None, f"{self.label(key[0])}, which is in a loop of links", (), ()
                )
                break
            on_path.add(key)
            hop, res = self._hop(*key)
            chain.append((key, hop))
            if hop is None:
                break
            key = hop.upstream
            res = self.resolved.get(key)
        for step, hop in reversed(chain):
            if hop is not None:
                res = hop.apply(res)
            self.resolved[step] = res
        return res

    def _hop(self, nid: NodeId, output: str) -> tuple[_Hop | None, _Resolution | None]:
        """One step back from ``nid.output``: where to go next, or the final resolution."""
        node = self.nodes[nid]
        spec = self.spec(nid)
        if node.muted:
            return None, _Resolution(Source(nid, output), None, (), ())
        if spec is REROUTE:
            feed = self.graph.link_to(nid, "value")
            if feed is None:
                return None, _Resolution(None, f"{self.label(nid)}, which nothing feeds", (), ())
            return _Hop((feed.src, feed.src_output)), None
        if not node.bypassed:
            return None, _Resolution(Source(nid, output), None, (), ())
        out_type = self.output_type(nid, output)
        for inp in spec.inputs:
            link = self.graph.link_to(nid, inp.name)
            if link is None or inp.link_type != out_type:
                continue
            src_type, problem = self.check_link(
                link.src, link.src_output, nid, inp.name, inp.link_type
            )
            conversion = t.conversion_for(src_type, inp.link_type) if src_type else None
            return _Hop((link.src, link.src_output), nid, problem, conversion), None
        message = (
            f"{self.label(nid)} is bypassed, but none of its linked inputs has type {out_type} "
            f"to pass on to its output '{output}'. Link a {out_type} input, or stop bypassing it."
        )
        problem = Problem(nid, output, message, "bypass_unresolvable")
        return None, _Resolution(None, None, (problem,), (nid,))

    def bind(
        self, nid: NodeId
    ) -> tuple[tuple[Binding, ...], tuple[NodeId, ...], list[Problem], set[NodeId]]:
        """Binds every input of ``nid`` to its source; returns bindings, deps, problems and
        the bypassed nodes passed through."""
        link_to = self.graph.link_to
        nodes = self.nodes
        bindings = []
        deps: set[NodeId] = set()
        problems: list[Problem] = []
        bypassed: set[NodeId] = set()
        for name, is_widget, link_type in self.inputs_of(self.spec(nid)):
            link = link_to(nid, name)
            if link is None:
                bindings.append(Binding(name, is_widget, None))
                continue
            src, src_output = link.src, link.src_output
            src_node = nodes[src]
            src_spec = self.spec(src)
            if not (src_node.muted or src_node.bypassed or src_spec is REROUTE):
                # The common case: a plain node feeds this input directly.
                out = src_spec.output(src_output)
                if out is not None and out.type == link_type:
                    deps.add(src)
                    bindings.append(Binding(name, is_widget, Source(src, src_output), None, True))
                    continue
            src_type, problem = self.check_link(src, src_output, nid, name, link_type)
            if problem is not None:
                problems.append(problem)
            res = self.resolve(src, src_output)
            problems.extend(res.problems)
            bypassed.update(res.bypassed)
            source = res.source
            if source is not None:
                deps.add(source.node_id)
                conversion = t.conversion_for(src_type, link_type) if src_type else None
                if conversion is not None:
                    source = Source(
                        source.node_id, source.output, (*source.conversions, conversion)
                    )
            bindings.append(Binding(name, is_widget, source, res.dangling, True))
        return tuple(bindings), tuple(sorted(deps)), problems, bypassed

    def inputs_of(self, spec: NodeSpec) -> list[tuple[str, bool, str]]:
        """(name, is a widget, link type) for each input of ``spec``, computed once per spec."""
        found = self.spec_inputs.get(spec.type_id)
        if found is None or found[0] is not spec:
            rows = [(i.name, isinstance(i, WidgetInput), i.link_type) for i in spec.inputs]
            found = self.spec_inputs[spec.type_id] = (spec, rows)
        return found[1]

    # --- the plan --------------------------------------------------------------------------

    def plan(self, outputs: Iterable[NodeId] | None) -> Plan:
        requested = (
            default_targets(self.graph, self.registry)
            if outputs is None
            else list(dict.fromkeys(outputs))
        )
        problems: list[Problem] = []
        muted: set[NodeId] = set()
        bypassed: set[NodeId] = set()
        roots: list[NodeId] = []
        for nid in requested:
            node = self.nodes.get(nid)
            if node is None:
                message = f"there is no node #{nid} to run; check the requested outputs"
                problems.append(Problem(nid, None, message, "unknown_node"))
            elif node.muted:
                muted.add(nid)
            elif self.spec(nid) is REROUTE:
                continue  # a reroute has no value of its own to compute
            elif node.bypassed:
                bypassed.add(nid)
            else:
                roots.append(nid)

        planned: dict[NodeId, PlannedNode] = {}
        problems_of: dict[NodeId, list[Problem]] = {}
        edges: list[tuple[NodeId, NodeId]] = []
        stack = list(roots)
        while stack:
            nid = stack.pop()
            if nid in planned or nid in muted:
                continue
            if self.nodes[nid].muted:
                muted.add(nid)
                continue
            bindings, deps, node_problems, passed = self.bind(nid)
            planned[nid] = PlannedNode(nid, self.spec(nid), self.label(nid), bindings, deps)
            problems_of[nid] = node_problems
            bypassed.update(passed)
            edges += [(dep, nid) for dep in deps]
            stack.extend(deps)

        # Nodes go in by id so that the topological order is deterministic.
        dag = nx.DiGraph()
        dag.add_nodes_from(sorted({*planned, *muted, *bypassed}))
        dag.add_edges_from(edges)
        try:
            order_all = list(nx.topological_sort(dag))
        except nx.NetworkXUnfeasible:
            cycle = nx.find_cycle(dag)
            for nid, _ in cycle:
                message = f"{self.label(nid)} is part of a cycle of links; remove one of them."
                problems.append(Problem(nid, None, message, "cycle"))
            return self._finish((), {}, (), muted, bypassed, {}, problems)

        # Muted nodes block everything downstream of them.
        blocked: dict[NodeId, NodeId] = {}
        for nid in order_all:
            pn = planned.get(nid)
            if pn is None:
                continue
            for dep in pn.deps:
                if dep in muted:
                    blocked[nid] = dep
                    break
                if dep in blocked:
                    blocked[nid] = blocked[dep]
                    break
        # Evaluate only what unblocked targets need.
        active: set[NodeId] = set()
        stack = [nid for nid in roots if nid not in blocked]
        while stack:
            nid = stack.pop()
            if nid not in active:
                active.add(nid)
                stack.extend(planned[nid].deps)
        skipped: dict[NodeId, str] = {}
        for nid in planned:
            if nid in blocked:
                skipped[nid] = f"needs {self.label(blocked[nid])}, which is muted"
            elif nid not in active:
                skipped[nid] = "not needed: every node that uses it is skipped"

        order = tuple(nid for nid in order_all if nid in active)
        if not order and not problems and self.nodes:
            problems += self.nothing_to_run(outputs is None, requested, blocked)
        seen: set[tuple[NodeId, str | None, str]] = set()
        for nid in order:
            for problem in problems_of[nid]:
                key = (problem.node_id, problem.field, problem.code)
                if key not in seen:
                    seen.add(key)
                    problems.append(problem)
        targets = tuple(nid for nid in roots if nid in active)
        nodes = {nid: planned[nid] for nid in order}
        return self._finish(targets, nodes, order_all, muted, bypassed, skipped, problems, order)

    def nothing_to_run(
        self, defaulted: bool, requested: list[NodeId], blocked: dict[NodeId, NodeId]
    ) -> list[Problem]:
        """Why a plan evaluates no node at all, pinned to the nodes that explain it."""
        if defaulted and not requested:
            return self.no_output_node()
        problems = []
        for nid in requested:
            node = self.nodes[nid]
            label = self.label(nid)
            if nid in blocked:
                blocker = self.label(blocked[nid])
                message = (
                    f"{label} needs {blocker}, which is muted, so nothing would run. "
                    f"Unmute {blocker}."
                )
            elif node.muted or node.bypassed:
                state = "muted" if node.muted else "bypassed"
                message = f"{label} is {state}, so nothing would run. Turn {state} off."
            else:
                message = f"{label} is a reroute, which computes nothing. Run an output node."
            problems.append(Problem(nid, None, message, "nothing_to_run"))
        return problems

    def no_output_node(self) -> list[Problem]:
        """Problems for a graph none of whose nodes a run would compute by default: its
        muted or bypassed output nodes, else its unknown nodes that feed nothing (they may
        have been outputs), else every node that feeds nothing."""
        idle = [n.id for n in self.graph if self.spec(n.id).output_node]
        if idle:
            return self.nothing_to_run(False, idle, {})
        feeding = {lk.src for lk in self.graph.links}
        ends = sorted(nid for nid in self.nodes if nid not in feeding) or [min(self.nodes)]
        unknown = [nid for nid in ends if self.spec(nid).placeholder]
        if unknown:
            return [
                Problem(
                    nid,
                    None,
                    f"{self.label(nid)}: node type '{self.nodes[nid].type_id}' is not "
                    f"installed, and no installed node here is an output, so nothing would "
                    f"run. Install what provides it, or replace it with an output node such "
                    f"as Save Image.",
                    "unknown_type",
                )
                for nid in unknown
            ]
        return [
            Problem(
                nid,
                None,
                f"{self.label(nid)}: the workflow has no output node (one that saves or shows "
                f"a result), so nothing would run. Connect this node's output to an output "
                f"node such as Save Image or Preview Image.",
                "nothing_to_run",
            )
            for nid in ends
        ]

    def _finish(
        self,
        targets: tuple[NodeId, ...],
        nodes: dict[NodeId, PlannedNode],
        sequence: Iterable[NodeId],
        muted: set[NodeId],
        bypassed: set[NodeId],
        skipped: dict[NodeId, str],
        problems: list[Problem],
        order: tuple[NodeId, ...] = (),
    ) -> Plan:
        sequence = tuple(sequence)
        for nid in sequence:
            self.label(nid)
        return Plan(
            targets=targets,
            order=order,
            nodes=nodes,
            sequence=sequence,
            muted=frozenset(muted),
            bypassed=frozenset(bypassed),
            skipped=skipped,
            labels=self.labels,
            problems=problems,
        )
