"""The adapter between core graph commands and Qt's ``QUndoStack``.

Core commands do and undo edits on the model; Qt only keeps the history. ``push`` does the
command first, in Python, so a refused edit returns its ``GraphError`` message and leaves
nothing on the stack (an exception raised inside a Qt virtual would be lost); only an applied
command is recorded. Consecutive commands that core says
merge (a drag's ``MoveNodes``, a slider's ``SetParam`` with the same gesture token) become one
undo step; a merged ``SetParam`` that ends where it started (typing, then Escape) leaves the
history altogether.
"""

from __future__ import annotations

import copy

from PySide6.QtGui import QUndoCommand, QUndoStack

from core.graph.commands import Command, EditNote, MoveNodes, SetNodeAttribute, SetParam
from core.graph.errors import GraphError
from core.graph.model import Graph

#: The QUndoCommand id shared by every command that core may merge; core decides the rest.
_MERGEABLE_ID = 0x4C4C


class GraphUndoCommand(QUndoCommand):
    """One core command on the Qt undo stack. The first ``redo`` (Qt calls it on push) is
    skipped because ``push`` already did the command."""

    def __init__(self, graph: Graph, command: Command, start_value: object = None) -> None:
        super().__init__(command.text)
        self.graph = graph
        self.command = command
        #: For a ``SetParam``: the param's value before the first edit of the step.
        self.start_value = start_value
        self._already_done = True

    def redo(self) -> None:
        if self._already_done:
            self._already_done = False
            return
        self.command.do(self.graph)

    def undo(self) -> None:
        self.command.undo(self.graph)

    def id(self) -> int:
        return (
            _MERGEABLE_ID
            if isinstance(self.command, (MoveNodes, SetParam, EditNote, SetNodeAttribute))
            else -1
        )

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, GraphUndoCommand) or other.graph is not self.graph:
            return False
        if not self.command.merge(other.command):
            return False
        if isinstance(self.command, SetParam) and self.command.value == self.start_value:
            self.setObsolete(True)  # back where it started: nothing to undo
        if isinstance(self.command, SetNodeAttribute) and self.command.restores():
            self.setObsolete(True)  # a cancelled resize
        return True


def push(stack: QUndoStack, graph: Graph, command: Command) -> str | None:
    """Does ``command`` on ``graph`` once and records it on ``stack``.

    Returns None when applied, or the ``GraphError`` message when the model refused the edit
    (nothing recorded, graph unchanged). This is the only way the editor changes a graph.
    """
    start_value = None
    if isinstance(command, SetParam) and command.node_id in graph:
        start_value = copy.deepcopy(graph.node(command.node_id).params.get(command.name))
    try:
        command.do(graph)
    except GraphError as exc:
        return str(exc)
    stack.push(GraphUndoCommand(graph, command, start_value))
    return None
