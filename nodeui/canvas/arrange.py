"""Arrange: lays the graph out in columns that follow its links from left to right, so each
link runs forward between columns instead of back across nodes. One undo step."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QRectF

from core.graph.commands import Command, EditGroup, Macro, MoveNodes
from core.graph.model import Graph, NodeId
from nodeui.canvas import style as s

if TYPE_CHECKING:
    from nodeui.canvas.protocols import CanvasScene

COLUMN_GAP = 80.0
ROW_GAP = 40.0
GROUP_MARGIN = 16.0


def columns(graph: Graph) -> list[list[NodeId]]:
    """The nodes by column: each node one column right of the latest node feeding it; a node
    fed by nothing sits just left of the first node it feeds (an Empty Latent Image beside
    its sampler, not beside the loader). Within a column, nodes follow the rows of the nodes
    they link to, so links cross as little as possible."""
    feeds: dict[NodeId, set[NodeId]] = {nid: set() for nid in graph.nodes}
    fed_by: dict[NodeId, set[NodeId]] = {nid: set() for nid in graph.nodes}
    for link in graph.links:
        feeds[link.src].add(link.dst)
        fed_by[link.dst].add(link.src)
    order, waiting = [], {nid: len(fed_by[nid]) for nid in graph.nodes}
    ready = sorted(nid for nid, count in waiting.items() if count == 0)
    while ready:
        nid = ready.pop(0)
        order.append(nid)
        for dst in sorted(feeds[nid]):
            waiting[dst] -= 1
            if waiting[dst] == 0:
                ready.append(dst)
    depth: dict[NodeId, int] = {}
    for nid in order:
        depth[nid] = max((depth[src] + 1 for src in fed_by[nid]), default=0)
    for nid in reversed(order):
        if not fed_by[nid] and feeds[nid]:
            depth[nid] = max(0, min(depth[dst] for dst in feeds[nid]) - 1)
    count = max(depth.values(), default=-1) + 1
    cols: list[list[NodeId]] = [[] for _ in range(count)]
    for nid in sorted(depth, key=lambda n: (graph.node(n).pos[1], n)):
        cols[depth[nid]].append(nid)
    for neighbours, sweep in ((fed_by, cols), (feeds, list(reversed(cols))), (fed_by, cols)):
        _order_by_neighbours(sweep, neighbours)
    return cols


def _order_by_neighbours(sweep: list[list[NodeId]], neighbours: dict) -> None:
    """Sorts each column (in sweep order) by the mean row of its already placed neighbours."""
    row: dict[NodeId, float] = {}
    for column in sweep:
        before = {nid: index for index, nid in enumerate(column)}

        def key(nid: NodeId, before: dict[NodeId, int] = before) -> tuple[float, int]:
            rows = [row[n] for n in neighbours[nid] if n in row]
            return (sum(rows) / len(rows) if rows else before[nid], before[nid])

        column.sort(key=key)
        for index, nid in enumerate(column):
            row[nid] = index


def arrange(scene: CanvasScene) -> bool:
    """Moves every node into its column (``columns``), keeping the graph's top-left corner,
    and refits the groups that have a frame of their own; one undo step."""
    graph = scene.graph
    if not graph.nodes:
        return False
    left = min(node.pos[0] for node in graph.nodes.values())
    top = min(node.pos[1] for node in graph.nodes.values())
    positions: dict[NodeId, tuple[float, float]] = {}
    x = left
    for column in columns(graph):
        rects = [scene.nodes[nid].sceneBoundingRect() for nid in column]
        y = top
        for nid, rect in zip(column, rects, strict=True):
            positions[nid] = (x, y)
            y += rect.height() + ROW_GAP
        x += max(rect.width() for rect in rects) + COLUMN_GAP
    edits: list[Command] = [MoveNodes(positions)]
    for gid, group in graph.groups.items():
        if group.rect is None or not group.nodes:
            continue
        frame = QRectF()
        for nid in group.nodes:
            size = scene.nodes[nid].sceneBoundingRect().size()
            frame = frame.united(QRectF(*positions[nid], size.width(), size.height()))
        frame = frame.adjusted(
            -GROUP_MARGIN, -GROUP_MARGIN - s.GROUP_TITLE_HEIGHT, GROUP_MARGIN, GROUP_MARGIN
        )
        edits.append(EditGroup(gid, rect=(frame.x(), frame.y(), frame.width(), frame.height())))
    return scene.push(Macro("Arrange", edits))
