"""“Continue from step k” on the canvas: the new sampler and its Latent From History go beside
the old branch (never on top of it), the new sampler's result runs through a copy of the old
one's decode / preview / save path, and the new branch is selected and scrolled into view.
One undo step."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QRectF

from core.graph.branching import copy_downstream
from core.graph.commands import AddNode, Macro
from core.graph.model import Node, NodeId
from nodeui.canvas import style as s
from nodeui.canvas.layout import compute_layout

if TYPE_CHECKING:
    from nodeui.canvas.protocols import CanvasScene

#: The sampler output whose path to the outputs the new branch copies.
RESULT = "LATENT"
#: Space between the old branch and the new one, and between stacked helper nodes.
GAP = 60.0
SPACING = 30.0


def continue_from_step(scene: CanvasScene, sampler_id: NodeId, step: int) -> NodeId | None:
    """Adds the branch that continues ``sampler_id`` from ``step`` (``nodes.previews``), with
    a copy of the sampler's downstream path fed by the new sampler, placed below the old
    branch where nothing else is. Selects the new nodes and returns the new sampler (None when
    refused)."""
    from nodes.previews import continue_from_step as branch

    cursor = scene.history_cursor(sampler_id)
    if cursor is None:
        scene.refuse("run the sampler first: it has no step history yet")
        return None
    graph = scene.graph
    macro = branch(graph, sampler_id, step, cursor.total)
    added = [cmd for cmd in macro.commands if isinstance(cmd, AddNode)]
    sampler = added[-1]
    assert sampler.node_id is not None
    first_copy = max(cmd.node_id or 0 for cmd in added) + 1
    copying, copies = copy_downstream(graph, sampler_id, sampler.node_id, (RESULT,), first_copy)
    _place(scene, sampler_id, sampler, added[:-1], copies, copying)
    if not scene.push(Macro(macro.text, [*macro.commands, *copying])):
        return None
    new_ids = [cmd.node_id for cmd in added if cmd.node_id is not None] + list(copies.values())
    scene.select_nodes(new_ids)
    rect = scene.nodes_rect(new_ids)
    for view in scene.views():
        view.ensureVisible(rect, 40, 40)
    return sampler.node_id


def _planned_rect(scene: CanvasScene, command: AddNode, media: bool) -> QRectF:
    """The rect a node added by ``command`` will take (with room for its pictures)."""
    spec = scene.registry.get(command.type_id)
    node = Node(0, command.type_id, dict(command.params), command.pos)
    scrub = media and "HISTORY" in {out.name for out in spec.outputs}
    layout = compute_layout(spec, node, frozenset(), media, scrub=scrub)
    return QRectF(command.pos[0], command.pos[1], layout.width, layout.height)


def _place(
    scene: CanvasScene,
    old_sampler: NodeId,
    sampler: AddNode,
    helpers: list[AddNode],
    copies: dict[NodeId, NodeId],
    copy_edits: list,
) -> None:
    """Sets the positions of the new nodes: the branch is the old one moved down by the
    least distance that overlaps no node, the helpers in a column left of the new sampler."""
    old_items = [scene.nodes[nid] for nid in (old_sampler, *copies) if nid in scene.nodes]
    old_rect = QRectF()
    for item in old_items:
        old_rect = old_rect.united(item.sceneBoundingRect())
    x, y = scene.graph.node(old_sampler).pos
    sampler.pos = (x, y)
    sampler_rect = _planned_rect(scene, sampler, media=True)
    shapes: list[tuple[object, QRectF]] = [(sampler, sampler_rect)]
    top = y
    for helper in helpers:
        helper.pos = (0.0, 0.0)
        rect = _planned_rect(scene, helper, media=False)
        rect.moveTo(x - rect.width() - 2 * SPACING, top)
        shapes.append((helper, rect))
        top = rect.bottom() + SPACING
    placed_copies = {cmd.node_id: cmd for cmd in copy_edits if isinstance(cmd, AddNode)}
    for original, copy_id in copies.items():
        command = placed_copies[copy_id]
        item = scene.nodes.get(original)
        rect = item.sceneBoundingRect() if item is not None else QRectF(0, 0, s.NODE_WIDTH, 100)
        rect.moveTo(*scene.graph.node(original).pos)
        shapes.append((command, rect))
    others = [item.sceneBoundingRect() for item in scene.nodes.values()]
    dy = old_rect.height() + GAP
    for _ in range(50):  # moves down past whatever the branch would cover, until nothing
        hits = [
            other
            for _, rect in shapes
            for other in others
            if rect.translated(0, dy)
            .adjusted(-SPACING, -SPACING, SPACING, SPACING)
            .intersects(other)
        ]
        if not hits:
            break
        planned_top = min(rect.top() for _, rect in shapes)
        dy = max(dy + SPACING, max(h.bottom() for h in hits) + GAP - planned_top)
    for command, rect in shapes:
        command.pos = (rect.left(), rect.top() + dy)  # type: ignore[attr-defined]
