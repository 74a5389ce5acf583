"""The changes a ``core.graph.model.Graph`` announces to its observers, one value each.

Each names what changed (a node, link, group or note, and for nodes which attribute or param);
an observer reads the graph for the new state. Events of one kind share a base class, so an
observer may test for "anything about nodes" as well as for one change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from core.graph.elements import Link, NodeId

__all__ = [
    "GraphChange",
    "GroupAdded",
    "GroupChanged",
    "GroupEvent",
    "GroupRemoved",
    "LinkAdded",
    "LinkEvent",
    "LinkRemoved",
    "NodeAdded",
    "NodeChanged",
    "NodeEvent",
    "NodeRemoved",
    "NoteAdded",
    "NoteChanged",
    "NoteEvent",
    "NoteRemoved",
    "Observer",
    "ParamChanged",
]


@dataclass(frozen=True)
class NodeEvent:
    """Something about node ``node_id``."""

    node_id: NodeId


class NodeAdded(NodeEvent):
    """The node was added."""


class NodeRemoved(NodeEvent):
    """The node was removed; its links' removal and its groups' changes are announced first."""


@dataclass(frozen=True)
class NodeChanged(NodeEvent):
    """A node attribute other than its params changed (pos, size, title, flags)."""

    attribute: str


@dataclass(frozen=True)
class ParamChanged(NodeEvent):
    """The node's param ``name`` was set or dropped."""

    name: str


@dataclass(frozen=True)
class LinkEvent:
    """Something about ``link``."""

    link: Link


class LinkAdded(LinkEvent):
    """The link was made."""


class LinkRemoved(LinkEvent):
    """The link was removed."""


@dataclass(frozen=True)
class GroupEvent:
    """Something about group ``group_id``."""

    group_id: int


class GroupAdded(GroupEvent):
    """The group was added."""


class GroupRemoved(GroupEvent):
    """The group was removed."""


class GroupChanged(GroupEvent):
    """The group's title, members, colour or frame changed."""


@dataclass(frozen=True)
class NoteEvent:
    """Something about note ``note_id``."""

    note_id: int


class NoteAdded(NoteEvent):
    """The note was added."""


class NoteRemoved(NoteEvent):
    """The note was removed."""


class NoteChanged(NoteEvent):
    """The note's text, place, size or format changed."""


GraphChange = NodeEvent | LinkEvent | GroupEvent | NoteEvent
Observer = Callable[[GraphChange], None]
