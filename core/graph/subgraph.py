"""Subgraph definitions: a graph with declared inputs and outputs, used as one node.

A definition's graph holds two boundary nodes: ``SubgraphInputs`` (id -10), whose outputs are
the definition's inputs, and ``SubgraphOutputs`` (id -20), whose inputs are its outputs. Inner
nodes link to and from them like to any node, so the model's rules (types, one link per
input, no cycle) hold inside a definition unchanged.

An instance is a node whose type is the definition's id. Its spec is derived here: one input
per definition input, one output per definition output. An input whose every inner target is
a widget becomes a widget on the instance (a *promoted* widget), with the first target's
range, choices and current value as its default; any other input is a socket typed as the
definition says. Edits of a definition therefore change every instance at once.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from core.graph import types as t
from core.graph.errors import GraphError
from core.graph.model import (
    SUBGRAPH_INPUTS_ID,
    SUBGRAPH_OUTPUTS_ID,
    Graph,
    GraphChange,
    NodeChanged,
    SubgraphLibrary,
)
from core.graph.spec import Input, NodeRegistry, NodeSpec, Output, SocketInput, WidgetInput

INPUTS_TYPE = "SubgraphInputs"
OUTPUTS_TYPE = "SubgraphOutputs"
#: The category instances are listed under in the palette and the library.
CATEGORY = "subgraphs"


@dataclass(frozen=True)
class BoundarySocket:
    """One declared input or output of a definition: its name and the type it carries."""

    name: str
    type: str


def _not_expanded(ctx: Any, **_: Any) -> Any:
    raise RuntimeError("a subgraph instance runs by expansion into its inner nodes")


def new_definition_id() -> str:
    return str(uuid.uuid4())


class SubgraphDefinition:
    """A reusable group of nodes with declared inputs and outputs. Changed only through the
    commands of ``core.graph.subgraph_commands`` (inner edits: ordinary commands on
    ``graph``)."""

    def __init__(
        self,
        def_id: str,
        name: str,
        registry: NodeRegistry,
        library: SubgraphLibrary,
        inputs: Iterable[BoundarySocket] = (),
        outputs: Iterable[BoundarySocket] = (),
        description: str = "",
    ) -> None:
        self.id = def_id
        self.name = name
        self.description = description
        self.library = library
        self.inputs: list[BoundarySocket] = list(inputs)
        self.outputs: list[BoundarySocket] = list(outputs)
        _check_names(self.inputs, "input")
        _check_names(self.outputs, "output")
        self._spec: NodeSpec | None = None
        self._boundary: dict[str, NodeSpec] = {}
        self.graph = Graph(registry, subgraphs=library, definition=self)
        self.graph.add_node(INPUTS_TYPE, SUBGRAPH_INPUTS_ID, pos=(-300.0, 0.0))
        self.graph.add_node(OUTPUTS_TYPE, SUBGRAPH_OUTPUTS_ID, pos=(600.0, 0.0))
        self.graph.subscribe(self._inner_changed)

    def __repr__(self) -> str:
        return f"SubgraphDefinition({self.id!r}, {self.name!r})"

    # --- derived specs ---------------------------------------------------------------------

    @property
    def spec(self) -> NodeSpec:
        """The spec every instance of this definition has (rebuilt after each change)."""
        if self._spec is None:
            self._spec = self._derive_spec()
        return self._spec

    def forget_spec(self) -> None:
        self._spec = None
        self._boundary = {}

    def boundary_spec(self, type_id: str) -> NodeSpec | None:
        """The spec of a boundary node inside this definition's graph, by type."""
        if type_id not in (INPUTS_TYPE, OUTPUTS_TYPE):
            return None
        spec = self._boundary.get(type_id)
        if spec is None:
            if type_id == INPUTS_TYPE:
                spec = NodeSpec(
                    INPUTS_TYPE,
                    "Inputs",
                    CATEGORY,
                    _not_expanded,
                    outputs=tuple(Output(b.name, b.type) for b in self.inputs),
                    description="What the subgraph receives from the node that holds it.",
                )
            else:
                spec = NodeSpec(
                    OUTPUTS_TYPE,
                    "Outputs",
                    CATEGORY,
                    _not_expanded,
                    inputs=tuple(SocketInput(b.name, b.type, True) for b in self.outputs),
                    description="What the subgraph gives to the node that holds it.",
                )
            self._boundary[type_id] = spec
        return spec

    def instance_input(self, name: str) -> Input:
        """The input of the instance spec that stands for definition input ``name``."""
        boundary = next(b for b in self.inputs if b.name == name)
        links = self.graph.links_from(SUBGRAPH_INPUTS_ID, name)
        targets = [self.graph.spec(lk.dst).input(lk.dst_input) for lk in links]
        if targets and all(isinstance(inp, WidgetInput) for inp in targets):
            first = targets[0]
            assert isinstance(first, WidgetInput)
            node = self.graph.node(links[0].dst)
            default = node.params.get(first.name, first.default)
            return dataclasses.replace(first, name=name, default=default)
        optional = not targets or all(inp is not None and inp.optional for inp in targets)
        return SocketInput(name, boundary.type, optional=optional)

    def _derive_spec(self) -> NodeSpec:
        inputs = tuple(self.instance_input(b.name) for b in self.inputs)
        output_node = False
        for node in self.graph:
            if node.id in (SUBGRAPH_INPUTS_ID, SUBGRAPH_OUTPUTS_ID) or node.muted:
                continue
            try:
                output_node = output_node or self.graph.spec(node.id).output_node
            except GraphError:
                continue
        return NodeSpec(
            type_id=self.id,
            title=self.name,
            category=CATEGORY,
            function=_not_expanded,
            inputs=inputs,
            outputs=tuple(Output(b.name, b.type) for b in self.outputs),
            description=self.description or f"Subgraph {self.name!r}",
            output_node=output_node,
        )

    # --- change notification ---------------------------------------------------------------

    def _inner_changed(self, change: GraphChange) -> None:
        if isinstance(change, NodeChanged) and change.attribute in ("pos", "size"):
            return  # moving inner nodes changes no spec
        self.library.changed(self.id)

    def touch(self) -> None:
        """After a change of the declared inputs or outputs: every spec derived from them is
        rebuilt and every view of a boundary node or an instance is told."""
        self.library.changed(self.id)
        self.graph.refresh_spec(SUBGRAPH_INPUTS_ID)
        self.graph.refresh_spec(SUBGRAPH_OUTPUTS_ID)
        for graph, node_id in self.library.instances(self.id):
            graph.refresh_spec(node_id)

    def sockets(self, side: str) -> list[BoundarySocket]:
        """``inputs`` or ``outputs`` by name."""
        if side not in ("inputs", "outputs"):
            raise ValueError(f"side must be 'inputs' or 'outputs', not {side!r}")
        return self.inputs if side == "inputs" else self.outputs


def _check_names(sockets: list[BoundarySocket], what: str) -> None:
    names = [b.name for b in sockets]
    if len(set(names)) != len(names):
        raise GraphError(f"a subgraph has two {what}s with the same name ({names})")


def unique_name(wanted: str, taken: Iterable[str]) -> str:
    """``wanted``, or ``wanted_2``, ``wanted_3``… when it is taken."""
    taken = set(taken)
    if wanted not in taken:
        return wanted
    n = 2
    while f"{wanted}_{n}" in taken:
        n += 1
    return f"{wanted}_{n}"


def boundary_type(source_type: str, target_type: str) -> str:
    """The type of a boundary socket between two sides: the more specific one."""
    return source_type if target_type == t.ANY else target_type
