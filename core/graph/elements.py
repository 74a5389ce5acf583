"""What a graph is made of: nodes, links, groups and notes, as plain values.

``core.graph.model.Graph`` holds them and is the only thing that changes them; they are here,
apart from it, so that code that only reads them needs no graph.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from core.graph.spec import NodeSpec

__all__ = [
    "BOUNDARY_IDS",
    "SUBGRAPH_INPUTS_ID",
    "SUBGRAPH_OUTPUTS_ID",
    "Group",
    "Link",
    "Node",
    "NodeId",
    "Note",
]

NodeId = int

#: The ids of a subgraph definition's boundary nodes inside its graph (ComfyUI uses the same).
SUBGRAPH_INPUTS_ID = -10
SUBGRAPH_OUTPUTS_ID = -20
BOUNDARY_IDS = (SUBGRAPH_INPUTS_ID, SUBGRAPH_OUTPUTS_ID)


@dataclass
class Node:
    """One node instance. Mutated only through ``Graph`` so observers hear every change."""

    id: NodeId
    type_id: str
    params: dict[str, Any] = field(default_factory=dict)
    pos: tuple[float, float] = (0.0, 0.0)
    size: tuple[float, float] | None = None
    title: str | None = None
    bypassed: bool = False
    muted: bool = False
    collapsed: bool = False
    #: Editor-only settings saved with the node, e.g. {"control_after_run": {"seed": "fixed"}}.
    ui: dict[str, Any] = field(default_factory=dict)
    #: The spec of a node type this install lacks, rebuilt from the file (see placeholder_spec).
    placeholder: NodeSpec | None = None

    def snapshot(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type_id,
            "params": copy.deepcopy(self.params),
            "pos": tuple(self.pos),
            "size": None if self.size is None else tuple(self.size),
            "title": self.title,
            "bypassed": self.bypassed,
            "muted": self.muted,
            "collapsed": self.collapsed,
            "ui": copy.deepcopy(self.ui),
            "placeholder": self.placeholder is not None,
        }


@dataclass(frozen=True)
class Link:
    """From output ``src_output`` of node ``src`` to input ``dst_input`` of node ``dst``."""

    src: NodeId
    src_output: str
    dst: NodeId
    dst_input: str


@dataclass(frozen=True)
class Group:
    """A titled, coloured frame; its member nodes move with it."""

    id: int
    title: str
    nodes: frozenset[NodeId]
    color: str = "#3f5f7f"
    rect: tuple[float, float, float, float] | None = None


@dataclass(frozen=True)
class Note:
    """A text note on the canvas, for the people reading the graph: saved with it, never
    planned or run. ``markdown`` notes are shown as formatted text."""

    id: int
    text: str
    pos: tuple[float, float] = (0.0, 0.0)
    size: tuple[float, float] = (260.0, 120.0)
    markdown: bool = False
