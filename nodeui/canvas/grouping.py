"""Which groups dragged nodes belong to once they are dropped.

A group's members are listed in the model (``Group.nodes``); on the canvas a node joins a group
by being dropped inside its frame and leaves it by being dragged out, as in ComfyUI, where a
node belongs to the groups its centre lies in. The frames are those the groups had when the
drag began (a frame that fits its members would otherwise follow the node out).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QPointF, QRectF

from core.graph.model import NodeId
from nodeui.canvas import style as s

if TYPE_CHECKING:
    from nodeui.canvas.protocols import CanvasScene

#: Room a group keeps around a member it grows to hold.
MARGIN = 12.0


def frames(scene: CanvasScene) -> dict[int, QRectF]:
    """Every group's frame now, in scene coordinates."""
    return {gid: item.scene_rect() for gid, item in scene.groups.items()}


def regroup(
    scene: CanvasScene,
    moves: Mapping[NodeId, QPointF],
    before: Mapping[int, QRectF],
) -> dict[int, dict[str, Any]]:
    """The group changes for nodes dropped at new top-left corners ``moves``: a node whose
    centre lies in a group's frame is a member, and the frame grows to hold it whole; a member
    dragged out of the frame leaves. A frame that only fitted its members keeps where it was
    once one leaves, so it does not jump to the others."""
    graph = scene.graph
    changes: dict[int, dict[str, Any]] = {}
    boxes = {nid: _box_at(scene, nid, pos) for nid, pos in moves.items()}
    for gid, frame in before.items():
        group = graph.groups.get(gid)
        if group is None:
            continue
        members = set(group.nodes)
        grown = QRectF(frame)
        for nid, box in boxes.items():
            if frame.contains(box.center()):
                members.add(nid)
                grown = _holding(grown, box)
            else:
                members.discard(nid)
        change: dict[str, Any] = {}
        if members != group.nodes:
            change["nodes"] = frozenset(members)
        if group.rect is not None and grown != frame:
            change["rect"] = _tuple(grown)
        elif group.rect is None and members < group.nodes:
            change["rect"] = _tuple(frame)
        if change:
            changes[gid] = change
    return changes


def light_targets(
    scene: CanvasScene, moves: Mapping[NodeId, QPointF], before: Mapping[int, QRectF]
) -> None:
    """While a drag goes on, lights the frames the dragged nodes would join if dropped now
    (empty ``moves``: none)."""
    changes = regroup(scene, moves, before) if moves else {}
    for gid, item in scene.groups.items():
        group = scene.graph.groups.get(gid)
        joined = changes.get(gid, {}).get("nodes")
        item.set_lit(group is not None and joined is not None and joined > group.nodes)


def _box_at(scene: CanvasScene, node_id: NodeId, pos: QPointF) -> QRectF:
    item = scene.nodes[node_id]
    return item.sceneBoundingRect().translated(pos - item.pos())


def _holding(frame: QRectF, box: QRectF) -> QRectF:
    """``frame`` grown to hold ``box`` with a margin, the title bar staying above it."""
    need = box.adjusted(-MARGIN, -MARGIN - s.GROUP_TITLE_HEIGHT, MARGIN, MARGIN)
    return frame.united(need)


def _tuple(rect: QRectF) -> tuple[float, float, float, float]:
    return (rect.x(), rect.y(), rect.width(), rect.height())
