"""What the modules under the scene may use of it, as a protocol.

The scene (``nodeui.canvas.scene.GraphScene``) owns the items and hands mouse events to the
gestures, context menus to ``menus`` and typing to ``inline_edit``; those, and the edits they
make (``edits``, ``arrange``, ``branching``, ``resizing``), get the scene as a ``CanvasScene``
and never import the scene module, so imports in the canvas point one way (a layers contract
in ``pyproject.toml`` keeps it so).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from PySide6.QtCore import QPointF, QRectF, SignalInstance
    from PySide6.QtWidgets import QGraphicsItem, QGraphicsView

    from core.graph.commands import Command
    from core.graph.model import Graph, NodeId
    from core.graph.spec import NodeRegistry
    from nodeui.canvas.items.group import GroupItem
    from nodeui.canvas.items.link import LinkItem
    from nodeui.canvas.items.node import NodeItem
    from nodeui.canvas.items.note import NoteItem
    from nodeui.history import HistoryCursor


class CanvasScene(Protocol):
    """The scene as gestures, menus, inline editors and canvas edits see it."""

    graph: Graph
    registry: NodeRegistry
    nodes: dict[NodeId, NodeItem]
    links: dict[tuple[NodeId, str], LinkItem]
    groups: dict[int, GroupItem]
    notes: dict[int, NoteItem]
    #: The inline editor being typed in (an ``inline_edit.InlineEditor``), if any.
    inline_editor: Any
    #: The open combo menu, if any.
    open_menu: object | None
    #: (scene position, the dragged link's source or None): open the node palette there.
    paletteRequested: SignalInstance
    #: (action, node type): a subgraph action from a node's context menu.
    subgraphActionRequested: SignalInstance
    statusMessage: SignalInstance

    def push(self, command: Command, at: QPointF | None = None) -> bool:
        """Pushes an edit on the undo stack; False (and the refusal shown) if refused."""
        ...

    def refuse(self, reason: str, at: QPointF | None = None) -> None: ...

    def select_nodes(
        self, node_ids: list[int] | set[int], note_ids: list[int] | set[int] = ()
    ) -> None: ...

    def selected_node_ids(self) -> list[int]: ...

    def selected_note_ids(self) -> list[int]: ...

    def nodes_rect(self, node_ids: list[int] | None = None) -> QRectF: ...

    def item_at(self, pos: QPointF) -> QGraphicsItem | None: ...

    def history_cursor(self, node_id: int) -> HistoryCursor | None: ...

    # QGraphicsScene's own methods that the canvas modules call.
    def views(self) -> Sequence[QGraphicsView]: ...

    def addItem(self, item: QGraphicsItem) -> None: ...

    def removeItem(self, item: QGraphicsItem) -> None: ...

    def itemAt(self, pos: QPointF, transform: Any) -> QGraphicsItem | None: ...
