"""Typed errors raised by the graph model. The view asks the model; it never re-checks."""

from __future__ import annotations


class GraphError(Exception):
    """Base of every error the graph model raises for an edit it refuses."""


class UnknownNodeTypeError(GraphError):
    pass


class DuplicateNodeTypeError(GraphError):
    pass


class NodeNotFoundError(GraphError):
    pass


class DuplicateIdError(GraphError):
    pass


class UnknownSocketError(GraphError):
    """An input or output name the node's spec does not have."""


class UnknownParamError(GraphError):
    pass


class IncompatibleTypesError(GraphError):
    pass


class CycleError(GraphError):
    pass


class InputOccupiedError(GraphError):
    """The input already has a link; disconnect it first (the Connect command does this)."""


class GroupNotFoundError(GraphError):
    pass


class NoteNotFoundError(GraphError):
    """No note with the given id."""
