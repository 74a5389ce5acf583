"""One class per mouse gesture on the canvas.

The scene asks ``for_press`` which gesture a press starts and forwards the following moves
and the release to it; no gesture logic lives in the scene's mouse handlers. Drags that edit
(moving nodes, a number or slider drag) push one command per move with one gesture token, so
the whole drag merges into one undo step. Scrubbing a sampler's step history is view state:
its gestures move a ``HistoryCursor`` and never touch the graph or the undo stack.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QPen
from PySide6.QtWidgets import QGraphicsProxyWidget, QGraphicsRectItem, QGraphicsSceneMouseEvent

from core.graph import types as t
from core.graph.commands import (
    Command,
    Connect,
    Disconnect,
    EditGroup,
    EditNote,
    Macro,
    MoveNodes,
    SetNodeAttribute,
    SetParam,
)
from core.graph.spec import WidgetInput
from nodeui.canvas import edits, grouping, inline_edit, resizing
from nodeui.canvas import style as s
from nodeui.canvas.items.group import GroupItem
from nodeui.canvas.items.link import DragLinkItem, LinkItem
from nodeui.canvas.items.node import Hit, NodeItem
from nodeui.canvas.items.note import NoteItem
from nodeui.canvas.layout import COMBO, MULTILINE, NUMBER, SLIDER, TEXT, TOGGLE
from nodeui.runstate import CONTROL_MODES, control_mode

if TYPE_CHECKING:
    from nodeui.canvas.scene import GraphScene

#: Scene-pixels a press must travel before it counts as a drag.
DRAG_THRESHOLD = 3.0
#: Screen pixels of horizontal drag per step of a number editor.
PIXELS_PER_STEP = 6.0


class Gesture:
    """A press-move-release interaction. Subclasses override the three steps."""

    def __init__(self, scene: GraphScene) -> None:
        self.scene = scene
        self.origin = QPointF()
        self.moved = False

    def press(self, event: QGraphicsSceneMouseEvent) -> None:
        self.origin = event.scenePos()

    def move(self, event: QGraphicsSceneMouseEvent) -> None:
        delta = event.scenePos() - self.origin
        if not self.moved and max(abs(delta.x()), abs(delta.y())) >= DRAG_THRESHOLD:
            self.moved = True

    def release(self, event: QGraphicsSceneMouseEvent) -> None:
        """Ends the gesture."""

    def cancel(self) -> None:
        """Abandons the gesture (Escape, the view lost the mouse)."""


class RubberBandSelect(Gesture):
    """Drag on empty canvas: selects the nodes the band touches. Shift adds to the
    selection, Ctrl toggles; a plain click clears it."""

    def __init__(self, scene: GraphScene) -> None:
        super().__init__(scene)
        self.band: QGraphicsRectItem | None = None
        self.base: set[int] = set()
        self.mode = "replace"

    def press(self, event: QGraphicsSceneMouseEvent) -> None:
        super().press(event)
        mods = event.modifiers()
        if mods & Qt.KeyboardModifier.ControlModifier:
            self.mode = "toggle"
        elif mods & Qt.KeyboardModifier.ShiftModifier:
            self.mode = "add"
        self.base = set(self.scene.selected_node_ids())

    def move(self, event: QGraphicsSceneMouseEvent) -> None:
        super().move(event)
        if not self.moved:
            return
        rect = QRectF(self.origin, event.scenePos()).normalized()
        if self.band is None:
            self.band = QGraphicsRectItem()
            pen = QPen(s.EDITOR_ACCENT, 1.0)
            pen.setCosmetic(True)
            self.band.setPen(pen)
            self.band.setBrush(s.color("#306aa5e0"))
            self.band.setZValue(20.0)
            self.scene.addItem(self.band)
        self.band.setRect(rect)
        self._select(rect)

    def _select(self, rect: QRectF) -> None:
        inside = {
            nid
            for nid, item in self.scene.nodes.items()
            if rect.intersects(item.sceneBoundingRect())
        }
        if self.mode == "add":
            chosen = self.base | inside
        elif self.mode == "toggle":
            chosen = self.base ^ inside
        else:
            chosen = inside
        self.scene.select_nodes(chosen)

    def release(self, event: QGraphicsSceneMouseEvent) -> None:
        self._remove_band()
        if not self.moved and self.mode == "replace":
            self.scene.select_nodes([])

    def cancel(self) -> None:
        self._remove_band()
        self.scene.select_nodes(self.base)

    def _remove_band(self) -> None:
        if self.band is not None:
            self.scene.removeItem(self.band)
            self.band = None


class MoveSelection(Gesture):
    """Press on a node's title or body: selects it (Ctrl toggles, Shift adds) and drags every
    selected node; the drag is one ``MoveNodes`` undo step. Dropped inside a group's frame a
    node joins the group, dragged out of it it leaves (``grouping``), in the same step."""

    def __init__(self, scene: GraphScene, item: NodeItem) -> None:
        super().__init__(scene)
        self.item = item
        self.token = object()
        self.start: dict[int, tuple[float, float]] = {}
        self.deferred_select = False
        self.frames = grouping.frames(scene)

    def press(self, event: QGraphicsSceneMouseEvent) -> None:
        super().press(event)
        mods = event.modifiers()
        selected = set(self.scene.selected_node_ids())
        nid = self.item.node_id
        if mods & Qt.KeyboardModifier.ControlModifier:
            selected ^= {nid}
        elif mods & Qt.KeyboardModifier.ShiftModifier:
            selected |= {nid}
        elif nid not in selected:
            selected = {nid}
        else:
            self.deferred_select = True  # a click (no drag) in a selection selects only this
        self.scene.select_nodes(selected)
        self.start = {n: self.scene.graph.node(n).pos for n in selected}

    def _positions(self, event: QGraphicsSceneMouseEvent) -> dict[int, tuple[float, float]]:
        delta = event.scenePos() - self.origin
        return {n: (x + delta.x(), y + delta.y()) for n, (x, y) in self.start.items()}

    def move(self, event: QGraphicsSceneMouseEvent) -> None:
        super().move(event)
        if not self.moved or not self.start:
            return
        self.scene.push(MoveNodes(self._positions(event), gesture=self.token))

    def release(self, event: QGraphicsSceneMouseEvent) -> None:
        if self.deferred_select and not self.moved:
            self.scene.select_nodes([self.item.node_id])
        if not self.moved or not self.start or not self.frames:
            return
        positions = self._positions(event)
        moves = {n: QPointF(x, y) for n, (x, y) in positions.items()}
        groups = grouping.regroup(self.scene, moves, self.frames)
        if groups:
            self.scene.push(MoveNodes(positions, gesture=self.token, groups=groups))


class MoveGroup(Gesture):
    """Drag a group's title bar: the frame and its member nodes move; one undo step."""

    def __init__(self, scene: GraphScene, item: GroupItem) -> None:
        super().__init__(scene)
        self.item = item
        self.start_pos = item.pos()
        self.members: dict[int, tuple[float, float]] = {}

    def press(self, event: QGraphicsSceneMouseEvent) -> None:
        super().press(event)
        group = self.scene.graph.groups[self.item.group_id]
        self.members = {n: self.scene.graph.node(n).pos for n in group.nodes}

    def move(self, event: QGraphicsSceneMouseEvent) -> None:
        super().move(event)
        if not self.moved:
            return
        # Items follow the cursor; the model changes once, on release.
        delta = event.scenePos() - self.origin
        self.item.setPos(self.start_pos + delta)
        for nid, (x, y) in self.members.items():
            node = self.scene.nodes[nid]
            node.setPos(QPointF(x + delta.x(), y + delta.y()))
            node.update_links()

    def release(self, event: QGraphicsSceneMouseEvent) -> None:
        if not self.moved:
            return
        delta = event.scenePos() - self.origin
        group = self.scene.graph.groups[self.item.group_id]
        commands: list[Command] = []
        if self.members:
            commands.append(
                MoveNodes({n: (x + delta.x(), y + delta.y()) for n, (x, y) in self.members.items()})
            )
        if group.rect is not None:
            x, y, w, h = group.rect
            commands.append(EditGroup(group.id, rect=(x + delta.x(), y + delta.y(), w, h)))
        if commands and not self.scene.push(Macro("Move Group", commands)):
            self.cancel()

    def cancel(self) -> None:
        self.item.setPos(self.start_pos)
        for nid in self.members:
            self.scene.nodes[nid].refresh_position()


class MoveNote(Gesture):
    """Press on a note: selects it (Shift or Ctrl adds it to the selection); a drag moves it,
    one ``EditNote`` undo step."""

    def __init__(self, scene: GraphScene, item: NoteItem) -> None:
        super().__init__(scene)
        self.item = item
        self.token = object()
        self.start = (0.0, 0.0)

    def press(self, event: QGraphicsSceneMouseEvent) -> None:
        super().press(event)
        adding = event.modifiers() & (
            Qt.KeyboardModifier.ShiftModifier | Qt.KeyboardModifier.ControlModifier
        )
        notes = set(self.scene.selected_note_ids()) if adding else set()
        nodes = self.scene.selected_node_ids() if adding else []
        self.scene.select_nodes(nodes, notes | {self.item.note_id})
        self.start = self.scene.graph.notes[self.item.note_id].pos

    def move(self, event: QGraphicsSceneMouseEvent) -> None:
        super().move(event)
        if not self.moved:
            return
        delta = event.scenePos() - self.origin
        pos = (self.start[0] + delta.x(), self.start[1] + delta.y())
        self.scene.push(EditNote(self.item.note_id, gesture=self.token, pos=pos))


class DragLink(Gesture):
    """Drag a new link from an output or an input, or re-route an existing one picked up from
    its input. Compatible sockets light up; dropping on one connects (replacing what the input
    had), on an incompatible one refuses with the model's reason, and on empty canvas opens
    the palette (a picked-up link is removed instead)."""

    def __init__(
        self,
        scene: GraphScene,
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
    def pick_up(cls, scene: GraphScene, link_item: LinkItem) -> DragLink:
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


def step_of(widget: WidgetInput) -> float:
    if widget.step:
        return widget.step
    return 1 if widget.type == t.INT else 0.01


def clamp(widget: WidgetInput, value: float) -> Any:
    """The value kept within the widget's range and of its type (editor comfort; the model
    and validation still have the last word)."""
    if widget.min is not None:
        value = max(widget.min, value)
    if widget.max is not None:
        value = min(widget.max, value)
    if widget.type == t.INT:
        return round(value)
    return round(float(value), 10)


class DragNumber(Gesture):
    """Horizontal drag on a number editor changes it by its step every few pixels; a click on
    the arrows steps it once. One drag is one undo step."""

    def __init__(self, scene: GraphScene, item: NodeItem, name: str) -> None:
        super().__init__(scene)
        self.item, self.name = item, name
        self.row = item.layout.editor(name)
        assert self.row is not None
        self.widget = self.row.widget
        self.token = object()
        self.start_value: Any = 0
        self.start_x = 0.0

    def press(self, event: QGraphicsSceneMouseEvent) -> None:
        super().press(event)
        self.start_value = self.scene.graph.node(self.item.node_id).params.get(self.name, 0)
        self.start_x = float(event.screenPos().x())

    def move(self, event: QGraphicsSceneMouseEvent) -> None:
        super().move(event)
        if not self.moved:
            return
        steps = math.trunc((event.screenPos().x() - self.start_x) / PIXELS_PER_STEP)
        self._set(self.start_value + steps * step_of(self.widget), self.token)

    def _set(self, value: float, token: object) -> None:
        value = clamp(self.widget, value)
        if value != self.scene.graph.node(self.item.node_id).params.get(self.name):
            self.scene.push(SetParam(self.item.node_id, self.name, value, gesture=token))

    def release(self, event: QGraphicsSceneMouseEvent) -> None:
        if self.moved:
            return
        local = self.item.mapFromScene(event.scenePos())
        rect = self.row.rect
        if local.x() < rect.left() + 16:
            self._set(self.start_value - step_of(self.widget), object())
        elif local.x() > rect.right() - 16:
            self._set(self.start_value + step_of(self.widget), object())


class FollowPointer(Gesture):
    """A gesture that applies the pointer's scene position on press and on every move."""

    def press(self, event: QGraphicsSceneMouseEvent) -> None:
        super().press(event)
        self._set(event.scenePos())

    def move(self, event: QGraphicsSceneMouseEvent) -> None:
        super().move(event)
        self._set(event.scenePos())

    def _set(self, pos: QPointF) -> None:
        raise NotImplementedError


class DragSlider(FollowPointer):
    """Press or drag on a bounded float's slider sets it from the cursor's position; one drag
    is one undo step."""

    def __init__(self, scene: GraphScene, item: NodeItem, name: str) -> None:
        super().__init__(scene)
        self.item, self.name = item, name
        row = item.layout.editor(name)
        assert row is not None
        self.row = row
        self.token = object()

    def _set(self, pos: QPointF) -> None:
        widget, rect = self.row.widget, self.row.rect
        x = self.item.mapFromScene(pos).x()
        fraction = min(1.0, max(0.0, (x - rect.left()) / max(rect.width(), 1.0)))
        lo, hi = float(widget.min or 0.0), float(widget.max or 1.0)
        step = step_of(widget)
        value = clamp(widget, lo + round(fraction * (hi - lo) / step) * step)
        if value != self.scene.graph.node(self.item.node_id).params.get(self.name):
            self.scene.push(SetParam(self.item.node_id, self.name, value, gesture=self.token))


class ClickControl(Gesture):
    """A click (no drag) on a control: a toggle, a combo, a text field, a seed's after-run
    chip, the collapse arrow, or Alt+click on a link (adds a reroute dot)."""

    def __init__(self, scene: GraphScene, target: Any, hit: Hit) -> None:
        super().__init__(scene)
        self.target, self.hit = target, hit

    def release(self, event: QGraphicsSceneMouseEvent) -> None:
        if self.moved:
            return
        scene, hit, target = self.scene, self.hit, self.target
        if hit.kind == "reroute":
            edits.insert_reroute(scene, target.link, event.scenePos())
            return
        nid = target.node_id
        node = scene.graph.node(nid)
        if hit.kind == "collapse":
            scene.push(SetNodeAttribute([nid], "collapsed", not node.collapsed))
        elif hit.kind == "mode":
            modes = dict(node.ui.get("control_after_run", {}))
            current = control_mode(scene.graph, nid, hit.name)
            modes[hit.name] = CONTROL_MODES[(CONTROL_MODES.index(current) + 1) % 3]
            scene.push(SetNodeAttribute([nid], "ui", {**node.ui, "control_after_run": modes}))
        elif hit.kind == "editor":
            row = target.layout.editor(hit.name)
            if row.kind == TOGGLE:
                scene.push(SetParam(nid, hit.name, not node.params.get(hit.name)))
            elif row.kind == COMBO:
                inline_edit.open_combo(scene, target, row, event.screenPos())
            elif row.kind in (TEXT, MULTILINE):
                inline_edit.open_text(scene, target, row)


class ScrubHistory(FollowPointer):
    """Press or drag on a finished sampler's history slider: shows the step under the cursor
    (on the node and in the viewer following it). View state only: nothing is pushed."""

    def __init__(self, scene: GraphScene, item: NodeItem) -> None:
        super().__init__(scene)
        self.item = item

    def _set(self, pos: QPointF) -> None:
        cursor, rect = self.item.history_cursor, self.item.layout.scrub_rect
        if cursor is None or rect is None or cursor.count == 0:
            return
        x = self.item.mapFromScene(pos).x()
        fraction = min(1.0, max(0.0, (x - rect.left()) / max(rect.width(), 1.0)))
        cursor.set_index(round(fraction * (cursor.count - 1)))


class ToggleHistoryPicture(Gesture):
    """A click on a history row's chip switches its picture between x̂₀ and x_t (view state)."""

    def __init__(self, scene: GraphScene, item: NodeItem) -> None:
        super().__init__(scene)
        self.item = item

    def release(self, event: QGraphicsSceneMouseEvent) -> None:
        cursor = self.item.history_cursor
        if not self.moved and cursor is not None:
            cursor.toggle_which()


def for_press(scene: GraphScene, event: QGraphicsSceneMouseEvent) -> Gesture | None:
    """The gesture a press starts, or None to let Qt handle it (an inline editor)."""
    if event.button() != Qt.MouseButton.LeftButton:
        return None
    pos = event.scenePos()
    top = scene.itemAt(pos, scene.views()[0].transform()) if scene.views() else None
    if isinstance(top, QGraphicsProxyWidget):
        return None
    item = scene.item_at(pos)
    if isinstance(item, NodeItem):
        hit = item.hit(item.mapFromScene(pos))
        return _node_gesture(scene, item, hit)
    if isinstance(item, LinkItem) and event.modifiers() & Qt.KeyboardModifier.AltModifier:
        return ClickControl(scene, item, Hit("reroute"))
    if isinstance(item, NoteItem):
        return MoveNote(scene, item)
    if isinstance(item, GroupItem) and item.grip_rect().contains(item.mapFromScene(pos)):
        return resizing.ResizeGroup(scene, item)
    if isinstance(item, GroupItem) and item.title_rect().contains(item.mapFromScene(pos)):
        return MoveGroup(scene, item)
    return RubberBandSelect(scene)


def _node_gesture(scene: GraphScene, item: NodeItem, hit: Hit) -> Gesture:
    if hit.kind == "output":
        return DragLink(scene, item, hit.name, from_output=True)
    if hit.kind == "input":
        link = scene.links.get((item.node_id, hit.name))
        if link is not None:
            return DragLink.pick_up(scene, link)
        return DragLink(scene, item, hit.name, from_output=False)
    if hit.kind == "editor":
        row = item.layout.editor(hit.name)
        if row is not None and row.kind == NUMBER:
            return DragNumber(scene, item, hit.name)
        if row is not None and row.kind == SLIDER:
            return DragSlider(scene, item, hit.name)
        return ClickControl(scene, item, hit)
    if hit.kind in ("mode", "collapse"):
        return ClickControl(scene, item, hit)
    if hit.kind == "scrub":
        return ScrubHistory(scene, item)
    if hit.kind == "which":
        return ToggleHistoryPicture(scene, item)
    if hit.kind == "resize":
        return resizing.ResizeNode(scene, item)
    return MoveSelection(scene, item)


def double_click(scene: GraphScene, event: QGraphicsSceneMouseEvent) -> bool:
    """Double-click actions: title collapses, an editor opens for typing, a link gets a
    reroute dot, a group title is renamed, a note's text opens for editing, empty canvas
    opens the palette."""
    if event.button() != Qt.MouseButton.LeftButton:
        return False
    pos = event.scenePos()
    item = scene.item_at(pos)
    if isinstance(item, NodeItem):
        hit = item.hit(item.mapFromScene(pos))
        if hit.kind == "title":
            node = scene.graph.node(item.node_id)
            scene.push(SetNodeAttribute([item.node_id], "collapsed", not node.collapsed))
        elif hit.kind == "editor":
            row = item.layout.editor(hit.name)
            local_x = item.mapFromScene(pos).x()
            on_arrow = row is not None and (
                local_x < row.rect.left() + 16 or local_x > row.rect.right() - 16
            )
            if row is not None and row.kind == NUMBER and on_arrow:
                stepper = DragNumber(scene, item, hit.name)
                stepper.press(event)
                stepper.release(event)  # a quick second click on an arrow steps again
            elif row is not None and row.kind in (NUMBER, SLIDER, TEXT, MULTILINE):
                inline_edit.open_text(scene, item, row)
        return True
    if isinstance(item, LinkItem):
        edits.insert_reroute(scene, item.link, pos)
        return True
    if isinstance(item, NoteItem):
        inline_edit.edit_note(scene, item)
        return True
    if isinstance(item, GroupItem) and item.title_rect().contains(item.mapFromScene(pos)):
        inline_edit.rename_group(scene, item)
        return True
    scene.paletteRequested.emit(pos, None)
    return True
