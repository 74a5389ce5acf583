"""Dragging a link out of a socket, or picking one up by its input end, and dropping it on a
socket, on empty canvas (the node palette) or nowhere (removed)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF
from PySide6.QtWidgets import QGraphicsSceneMouseEvent

from core.graph import types as t
from core.graph.commands import Command, Connect, Disconnect, Macro
from nodeui.canvas import edits
from nodeui.canvas.gestures.base import Gesture
from nodeui.canvas.items.link import DragLinkItem, LinkItem
from nodeui.canvas.items.node import NodeItem

if TYPE_CHECKING:
    from nodeui.canvas.protocols import CanvasScene


class DragLink(Gesture):
    """Drag a new link from an output or an input, or re-route an existing one picked up from
    its input. Compatible sockets light up; dropping on one connects (replacing what the input
    had), on an incompatible one refuses with the model's reason, and on empty canvas opens
    the palette (a picked-up link is removed instead)."""

    def __init__(
        self,
        scene: CanvasScene,
        item: NodeItem,
        socket: str,
        from_output: bool,
        detached: LinkItem | None = None,
    ) -> None:
        super().__init__(scene)
        self.item, self.socket, self.from_output, self.detached = (
            item,
            socket,
            from_output,
            detached,
        )
        graph = scene.graph
        nid = item.node_id
        self.type = graph.output_type(nid, socket) if from_output else graph.input_type(nid, socket)
        self.temp = DragLinkItem(self.type, from_output)
        self.anchor = item.output_scene_pos(socket) if from_output else item.input_scene_pos(socket)

    @classmethod
    def pick_up(cls, scene: CanvasScene, link_item: LinkItem) -> DragLink:
        link = link_item.link
        return cls(scene, link_item.source, link.src_output, True, detached=link_item)

    def press(self, event: QGraphicsSceneMouseEvent) -> None:
        super().press(event)
        if self.detached is not None:
            self.detached.hide()
        self.scene.addItem(self.temp)
        self.temp.set_ends(self.anchor, event.scenePos())
        self._highlight()

    def _highlight(self) -> None:
        for nid, item in self.scene.nodes.items():
            if nid == self.item.node_id:
                continue
            item.set_highlight(frozenset(self.candidates(item)))

    def candidates(self, item: NodeItem) -> list[str]:
        """The sockets of ``item`` whose resolved type fits the dragged link, in order."""
        graph, nid = self.scene.graph, item.node_id
        if self.from_output:
            names = [slot.name for slot in item.layout.inputs] + [
                row.widget.name for row in item.layout.editors
            ]
            return [n for n in names if t.is_compatible(self.type, graph.input_type(nid, n))]
        return [
            slot.name
            for slot in item.layout.outputs
            if t.is_compatible(graph.output_type(nid, slot.name), self.type)
        ]

    def move(self, event: QGraphicsSceneMouseEvent) -> None:
        super().move(event)
        self.temp.set_ends(self.anchor, event.scenePos())

    def release(self, event: QGraphicsSceneMouseEvent) -> None:
        self._finish()
        pos = event.scenePos()
        if not self.moved and self.detached is None:
            return
        target = self.scene.item_at(pos)
        if isinstance(target, NodeItem) and target is not self.item:
            self._drop_on(target, pos)
        elif isinstance(target, NodeItem):
            self._restore()
        elif self.detached is not None:
            link = self.detached.link
            self.scene.push(Disconnect(link.dst, link.dst_input), pos)
        else:
            pending = edits.PendingLink(self.item.node_id, self.socket, self.from_output, self.type)
            self.scene.paletteRequested.emit(pos, pending)

    def _drop_on(self, target: NodeItem, pos: QPointF) -> None:
        hit = target.hit(target.mapFromScene(pos))
        wanted = "input" if self.from_output else "output"
        if hit.kind == wanted or (self.from_output and hit.kind == "editor"):
            name = hit.name
        else:
            fits = self.candidates(target)
            if self.from_output:
                free = [n for n in fits if self.scene.graph.link_to(target.node_id, n) is None]
                fits = free or fits
            if not fits:
                side = "input" if self.from_output else "output"
                title = target.graph.node(target.node_id).title or target.spec.title
                self._restore()
                self.scene.refuse(f"{title} has no {side} that fits a {self.type} link", pos)
                return
            name = fits[0]
        src, out, dst, inp = (
            (self.item.node_id, self.socket, target.node_id, name)
            if self.from_output
            else (target.node_id, name, self.item.node_id, self.socket)
        )
        command: Command = Connect(src, out, dst, inp)
        if self.detached is not None:
            old = self.detached.link
            if (old.dst, old.dst_input) == (dst, inp):
                self._restore()
                return
            command = Macro("Move Link", [Disconnect(old.dst, old.dst_input), command])
        if not self.scene.push(command, pos):
            self._restore()

    def _restore(self) -> None:
        if self.detached is not None and self.detached.scene() is not None:
            self.detached.show()

    def _finish(self) -> None:
        if self.temp.scene() is not None:
            self.scene.removeItem(self.temp)
        for item in self.scene.nodes.values():
            item.set_highlight(frozenset())

    def cancel(self) -> None:
        self._finish()
        self._restore()
