"""Node packs as data: what a pack declares (``NodePack``) and what became of it at start
(``PackReport``).

A node pack is an installed Python distribution that names a callable in the
``latentloom.nodes`` entry-point group; ``nodes.packs`` finds, loads and checks them. This module
holds only the plain data both the registry and the editor read, so ``core.graph`` can say which
pack a placeholder came from without importing the loader.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from core.graph.spec import NodeSpec

#: The entry-point group a node pack declares in its ``pyproject.toml``.
ENTRY_POINT_GROUP = "latentloom.nodes"


@dataclass(frozen=True)
class NodePack:
    """What a pack's entry point may return instead of a plain list of specs: its specs and the
    socket types it introduces (names such as ``"EXAMPLE_COLOUR"``, upper case)."""

    specs: tuple[NodeSpec, ...]
    socket_types: tuple[str, ...] = ()

    def __init__(self, specs: Iterable[NodeSpec], socket_types: Iterable[str] = ()) -> None:
        object.__setattr__(self, "specs", tuple(specs))
        object.__setattr__(self, "socket_types", tuple(socket_types))


class PackStatus(StrEnum):
    """How a pack ended up: loaded, refused because loading or checking it failed, or switched
    off by the user (its code was not run)."""

    OK = "ok"
    FAILED = "failed"
    DISABLED = "disabled"


@dataclass(frozen=True)
class PackReport:
    """One installed pack as the editor and the CLI show it."""

    #: The distribution's name (``latentloom-example-pack``): what workflows and settings use.
    name: str
    version: str
    status: PackStatus
    #: One line saying what went wrong (FAILED only).
    error: str = ""
    #: The entry points it declares (``example = latentloom_example_pack:node_pack``).
    entry_points: tuple[str, ...] = ()
    #: The node types it added (OK only).
    node_types: tuple[str, ...] = ()
    #: The socket types it introduced (OK only).
    socket_types: tuple[str, ...] = ()

    def summary(self) -> str:
        """One line: ``name version: ok, 3 node types`` or the reason it is not loaded."""
        head = f"{self.name} {self.version}".rstrip()
        if self.status is PackStatus.OK:
            count = len(self.node_types)
            return f"{head}: ok, {count} node type{'' if count == 1 else 's'}"
        if self.status is PackStatus.DISABLED:
            return f"{head}: disabled"
        return f"{head}: failed, skipped ({self.error})"


def missing_pack_reason(pack: str, report: PackReport | None) -> str:
    """Why the node types of ``pack`` are not available: a phrase such as ``"node pack 'x',
    which is disabled"`` for placeholder titles and validation messages."""
    if report is None:
        state = "which is not installed"
    elif report.status is PackStatus.DISABLED:
        state = "which is disabled"
    elif report.status is PackStatus.FAILED:
        state = "which failed to load"
    else:
        state = "which no longer provides it"
    return f"node pack {pack!r}, {state}"


def missing_pack_advice(report: PackReport | None) -> str:
    """What the user can do about a node whose pack is missing, disabled or broken."""
    if report is None:
        return "Install the pack into LatentLoom's Python environment, or replace the node."
    if report.status is PackStatus.DISABLED:
        return (
            "Enable it in Settings → Node packs (or take it out of $LATENTLOOM_DISABLED_PACKS), "
            "or replace the node."
        )
    if report.status is PackStatus.FAILED:
        return "Fix or update the pack (`main.py packs` shows its error), or replace the node."
    return "Install a version of the pack that has it, or replace the node."
