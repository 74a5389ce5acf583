"""The gestures on a node's painted controls: number drags and steps, sliders, combos,
toggles, seed modes, collapsing, reroute dots and the step-history scrubber."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QPointF
from PySide6.QtWidgets import QGraphicsSceneMouseEvent

from core.graph import types as t
from core.graph.commands import SetNodeAttribute, SetParam
from core.graph.spec import WidgetInput
from nodeui.canvas import edits, inline_edit
from nodeui.canvas.gestures.base import FollowPointer, Gesture
from nodeui.canvas.items.node import Hit, NodeItem
from nodeui.canvas.layout import COMBO, MULTILINE, TEXT, TOGGLE
from nodeui.runstate import CONTROL_MODES, control_mode

if TYPE_CHECKING:
    from nodeui.canvas.protocols import CanvasScene


#: Screen pixels of horizontal drag per step of a number editor.
PIXELS_PER_STEP = 6.0


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

    def __init__(self, scene: CanvasScene, item: NodeItem, name: str) -> None:
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


class DragSlider(FollowPointer):
    """Press or drag on a bounded float's slider sets it from the cursor's position; one drag
    is one undo step."""

    def __init__(self, scene: CanvasScene, item: NodeItem, name: str) -> None:
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

    def __init__(self, scene: CanvasScene, target: Any, hit: Hit) -> None:
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

    def __init__(self, scene: CanvasScene, item: NodeItem) -> None:
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

    def __init__(self, scene: CanvasScene, item: NodeItem) -> None:
        super().__init__(scene)
        self.item = item

    def release(self, event: QGraphicsSceneMouseEvent) -> None:
        cursor = self.item.history_cursor
        if not self.moved and cursor is not None:
            cursor.toggle_which()
